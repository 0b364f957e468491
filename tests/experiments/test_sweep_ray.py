"""Sweeps on a real local Ray cluster (2 CPUs, started once for this module and shut down)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from multitask_evidence.experiments.backends import RayBackend, start_local_ray  # noqa: E402
from multitask_evidence.experiments.sweep import parse_grid, run_sweep  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_sweep  # noqa: E402

pytestmark = pytest.mark.slow  # Ray's start costs ~10-20 s on 2 cores


@pytest.fixture(scope="module")
def cluster():
    """One local cluster for the module, bound to 127.0.0.1, no dashboard."""
    if ray.is_initialized():  # pragma: no cover - another module left one running
        ray.shutdown()
    start_local_ray(2, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    # the workers cannot import the test modules: ship the point functions by value
    ray.cloudpickle.register_pickle_by_value(test_sweep)
    yield
    ray.cloudpickle.unregister_pickle_by_value(test_sweep)
    ray.shutdown()


def test_ray_sweep_isolates_failure_and_resumes(cluster, tmp_path):
    grid = parse_grid({"n_tasks": [2, 3, 6]}, [0, 1])
    be = RayBackend()
    res = run_sweep(
        grid,
        tmp_path,
        backend=be,
        point_fn=test_sweep.fake_point,
        point_kwargs={"fail_n": 3},
        progress=False,
    )
    assert be.capacity() == 2  # the cluster's CPUs, one per point
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}  # localhost only
    assert ray.is_initialized()  # a cluster we did not start is left running
    assert res.n_ran == 6 and res.n_failed == 2
    ok = [r for r in res.rows if r["status"] == "ok"]
    assert sorted(r["n_tasks"] for r in ok) == [2, 2, 6, 6]
    assert all(r["ood_r2"] == pytest.approx(1 - 1 / r["n_tasks"]) for r in ok)
    failed = [r for r in res.rows if r["status"] == "failed"]
    assert all("injected failure at n_tasks=3" in r["error"] for r in failed)
    res2 = run_sweep(grid, tmp_path, backend="ray", point_fn=test_sweep.fake_point, progress=False)
    assert res2.n_skipped == 4 and res2.n_ran == 2 and res2.ok
    assert all(test_sweep.calls(Path(r["run_dir"])) == 1 for r in ok)


def test_ray_sweep_trains_ensembles_and_probes_for_real(cluster, tmp_path):
    grid = parse_grid(
        {
            "n_tasks": [6],
            "steps": [30],
            "hidden_size": [16],
            "eval_trials": [256],
            "eval_every": [30],
        },
        [0, 1, 2, 3],
    )
    res = run_sweep(grid, tmp_path, backend="ray", point_kwargs={"probe_n": 1024}, progress=False)
    assert res.ok, res.failed
    # 2 CPUs: two Ray tasks, each an ensemble of two networks (members share the training time)
    seconds = [r["train_seconds"] for r in res.rows]
    assert seconds[0] == seconds[1] and seconds[2] == seconds[3] and seconds[1] != seconds[2]
    for row in res.rows:
        assert row["train_steps"] == 30
        assert row["ceiling"] == pytest.approx(0.976)
        assert 0.0 < row["id_r2"] <= 0.996
        assert (Path(row["run_dir"]) / "model.pt").exists()
    table = json.loads((tmp_path / "results.json").read_text())
    assert [r["id_r2"] for r in table] == [r["id_r2"] for r in res.rows]
    assert len({r["id_r2"] for r in res.rows}) == 4  # four different networks
