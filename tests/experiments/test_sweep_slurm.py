"""Sweeps through the SLURM backend, on submitit's local executor (each job a process on this
machine, the same submit / poll / result path as on a queue): the same rows as the local pool,
failure isolation, a job that dies, resume, and the options' checks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

submitit = pytest.importorskip("submitit")
cloudpickle = pytest.importorskip("cloudpickle")

from multitask_evidence.experiments.backends import (  # noqa: E402
    SlurmBackend,
    lock_path,
    make_backend,
    parse_sbatch_args,
    parse_slurm_mem,
    parse_slurm_time,
)
from multitask_evidence.experiments.sweep import SweepPaths, parse_grid, run_sweep  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_sweep  # noqa: E402

HERE = Path(__file__).resolve().parent
# the job processes import the package from the checkout, not from wherever pytest runs
ROOT = str(HERE.parents[1])

VOLATILE = {"elapsed_s", "cpu_s", "host", "finished_at", "run_dir", "job_id"}


def dying_point(point, run_dir, die_n=None):
    """Like test_sweep.fake_point, but the job's process dies outright at n_tasks == die_n
    (as a job killed for its time limit or memory would)."""
    os.makedirs(run_dir, exist_ok=True)
    if point.task["n_tasks"] == die_n:
        os._exit(3)
    return {"ood_r2": 1.0 - 1.0 / point.task["n_tasks"]}


@pytest.fixture(autouse=True)
def _jobs_get_the_point_functions(monkeypatch):
    """Job processes cannot import the test modules: ship the point functions by value (and
    let the jobs import this checkout's package)."""
    mod = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(test_sweep)
    cloudpickle.register_pickle_by_value(mod)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    yield
    cloudpickle.unregister_pickle_by_value(test_sweep)
    cloudpickle.unregister_pickle_by_value(mod)


def _local(**kw):
    return make_backend(
        "slurm", workers=2, slurm={"cluster": "local", "poll_s": 0.05, "result_wait_s": 0, **kw}
    )


def _stable(rows):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def test_slurm_sweep_matches_the_local_pool_isolates_failure_and_resumes(tmp_path):
    grid = parse_grid({"n_tasks": [2, 3, 6]}, [0, 1])
    opts = {"fail_n": 3}
    pool = run_sweep(
        grid, tmp_path / "pool", workers=2, point_fn=test_sweep.fake_point,
        point_kwargs=opts, progress=False,
    )  # fmt: skip
    be = _local()
    res = run_sweep(
        grid, tmp_path / "sl", backend=be, point_fn=test_sweep.fake_point,
        point_kwargs=opts, progress=False,
    )  # fmt: skip
    assert res.n_ran == 6 and res.n_failed == 2 and pool.n_failed == 2
    assert _stable(res.rows) == _stable(pool.rows)  # the same table, row for row
    ok = [r for r in res.rows if r["status"] == "ok"]
    assert sorted(r["n_tasks"] for r in ok) == [2, 2, 6, 6]
    assert all(r["ood_r2"] == pytest.approx(1 - 1 / r["n_tasks"]) for r in ok)
    failed = [r for r in res.rows if r["status"] == "failed"]
    assert all("injected failure at n_tasks=3" in r["error"] for r in failed)
    # each point ran as its own job, whose files live in the sweep folder
    paths = SweepPaths(tmp_path / "sl")
    job_ids = {json.loads(paths.row(r["id"]).read_text())["job_id"] for r in ok}
    assert len(job_ids) == 4
    for j in job_ids:
        assert (tmp_path / "sl" / "slurm" / j).is_dir()
    assert all(test_sweep.calls(Path(r["run_dir"])) == 1 for r in res.rows)
    # re-run: finished points are skipped, the failed ones run again (and now pass)
    res2 = run_sweep(
        grid, tmp_path / "sl", backend=_local(), point_fn=test_sweep.fake_point, progress=False
    )
    assert res2.n_skipped == 4 and res2.n_ran == 2 and res2.ok
    for r in res2.rows:
        assert test_sweep.calls(Path(r["run_dir"])) == (2 if r["n_tasks"] == 3 else 1)


def test_a_job_that_dies_is_a_failed_point_and_its_lock_is_released(tmp_path):
    grid = parse_grid({"n_tasks": [2, 5]})
    res = run_sweep(
        grid, tmp_path, backend=_local(), point_fn=dying_point,
        point_kwargs={"die_n": 5}, progress=False,
    )  # fmt: skip
    assert res.n_failed == 1
    (dead,) = res.failed
    assert dead["n_tasks"] == 5
    assert "slurm job" in dead["error"] and "ended without a result" in dead["error"]
    assert not os.path.exists(lock_path(dead["run_dir"]))  # the dead job's lock is gone
    (good,) = [r for r in res.rows if r["status"] == "ok"]
    assert good["ood_r2"] == pytest.approx(0.5)
    res2 = run_sweep(grid, tmp_path, backend=_local(), point_fn=dying_point, progress=False)
    assert res2.ok and res2.n_skipped == 1 and res2.n_ran == 1


@pytest.mark.slow
def test_slurm_jobs_train_ensembles_with_the_rows_of_the_local_pool(tmp_path):
    axes = {"n_tasks": [3], "steps": [20], "hidden_size": [16], "eval_trials": [256]}
    grid = parse_grid({**axes, "eval_every": [20]}, [0, 1, 2, 3])
    opts = {"probe_n": 1024}
    res = run_sweep(grid, tmp_path / "sl", backend=_local(), point_kwargs=opts, progress=False)
    pool = run_sweep(grid, tmp_path / "pool", workers=2, point_kwargs=opts, progress=False)
    assert res.ok and pool.ok
    # two jobs (2 workers), each an ensemble of two networks recording one row per network
    paths = SweepPaths(tmp_path / "sl")
    jobs = [json.loads(paths.row(r["id"]).read_text())["job_id"] for r in res.rows]
    assert jobs[0] == jobs[1] != jobs[2] == jobs[3]
    seconds = [r["train_seconds"] for r in res.rows]
    assert seconds[0] == seconds[1] and seconds[2] == seconds[3]

    # the same ensembles as on the local pool: the same networks, the same numbers
    def same(rows):
        return [{k: v for k, v in r.items() if k != "train_seconds"} for r in _stable(rows)]

    assert same(res.rows) == same(pool.rows)
    assert len({r["ood_r2"] for r in res.rows}) == 4


def test_slurm_options_become_the_jobs_sbatch_options(tmp_path):
    be = make_backend(
        "slurm",
        workers=5,
        threads=4,
        slurm={
            "cluster": "local",
            "partition": "cpu",
            "time": "1-02:30:00",
            "mem": "8G",
            "account": "lab",
            "qos": "long",
            "sbatch": ["constraint=avx512", "--exclude=node3"],
        },
    )
    assert be.capacity() == 5
    be.cluster = "slurm"  # what a SLURM submission would get
    p = be.parameters()
    assert p["timeout_min"] == 24 * 60 + 150 and p["cpus_per_task"] == 4
    assert p["slurm_partition"] == "cpu" and p["slurm_mem"] == "8192M"
    assert p["slurm_account"] == "lab" and p["slurm_qos"] == "long"
    assert p["slurm_additional_parameters"] == {"constraint": "avx512", "exclude": "node3"}
    be.use_sweep_dir(tmp_path)
    assert be.folder == str(tmp_path / "slurm")
    # and submitit turns them into the sbatch script
    from submitit.slurm.slurm import _make_sbatch_string

    text = _make_sbatch_string(
        command="python -u -m submitit.core._submit x",
        folder=str(tmp_path),
        partition=p["slurm_partition"],
        time=p["timeout_min"],
        cpus_per_task=4,
        mem=p["slurm_mem"],
        account="lab",
        qos="long",
        additional_parameters=p["slurm_additional_parameters"],
    )
    for line in (
        "#SBATCH --partition=cpu",
        "#SBATCH --time=1590",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8192M",
        "#SBATCH --account=lab",
        "#SBATCH --qos=long",
        "#SBATCH --constraint=avx512",
        "#SBATCH --exclude=node3",
    ):
        assert line in text, line


@pytest.mark.parametrize(
    ("value", "minutes"),
    [(90, 90), ("90", 90), ("5:30", 6), ("2:00:00", 120), ("1-0", 1440), ("0-1:05", 65)],
)
def test_slurm_time_forms(value, minutes):
    assert parse_slurm_time(value) == minutes


def test_slurm_memory_and_sbatch_forms():
    assert parse_slurm_mem("512M") == "512M"
    assert parse_slurm_mem("1.5GB") == "1536M"
    assert parse_slurm_mem(2) == "2048M"
    assert parse_sbatch_args(["gres=gpu:1", "exclusive"]) == {"gres": "gpu:1", "exclusive": True}


@pytest.mark.parametrize(
    ("opts", "msg"),
    [
        ({"time": "2h"}, "slurm time must be"),
        ({"time": 0}, "at least one minute"),
        ({"mem": "lots"}, "slurm memory must be"),
        ({"partition": "cpu; rm -rf ~"}, "slurm partition must be"),
        ({"account": ""}, "slurm account must be"),
        ({"sbatch": ["partition=gpu"]}, "set by the backend; use its partition option"),
        ({"sbatch": ["output=/tmp/x"]}, "'output' is set by the backend"),
        ({"sbatch": ["=3"]}, "not an option name"),
        ({"sbatch": ["comment=a\nb"]}, "multi-line"),
        ({"cluster": "pbs"}, "'slurm' or 'local'"),
        ({"partiton": "cpu"}, "unknown slurm option(s) ['partiton']"),
    ],
)
def test_bad_slurm_options_are_one_line_errors(opts, msg):
    with pytest.raises(ValueError) as err:
        make_backend("slurm", slurm={"cluster": "local", **opts})
    assert msg in str(err.value) and "\n" not in str(err.value)


def test_slurm_options_need_the_slurm_backend():
    with pytest.raises(ValueError, match="only used with backend='slurm'"):
        make_backend("local", slurm={"partition": "cpu"})


def test_missing_submitit_and_sbatch_are_named(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ValueError, match="needs SLURM's sbatch on PATH"):
        SlurmBackend(partition="cpu")
    monkeypatch.setitem(sys.modules, "submitit", None)  # import fails as if not installed
    with pytest.raises(
        ValueError, match=r"needs submitit: pip install 'multitask-evidence\[slurm\]'"
    ):
        SlurmBackend(cluster="local")


# ---- the command line -------------------------------------------------------------------------
def _fake_sbatch(tmp_path, monkeypatch):
    """An executable named sbatch on PATH (never run: the sweep itself is intercepted)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\nexit 1\n")
    sbatch.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_mte_sweep_backend_slurm_builds_the_jobs_from_its_flags(tmp_path, monkeypatch, capsys):
    import multitask_evidence.experiments.sweep as sweep_mod
    from multitask_evidence.experiments.cli import main

    _fake_sbatch(tmp_path, monkeypatch)
    seen = {}

    def fake_run_sweep(grid, sweep_dir, *, backend, **kw):
        seen.update(backend=backend, sweep_dir=sweep_dir, **kw)
        raise ValueError("stop here")

    monkeypatch.setattr(sweep_mod, "run_sweep", fake_run_sweep)
    argv = ["sweep", "--set", "n_tasks=2,6", "--dir", str(tmp_path / "sw"), "--backend", "slurm"]
    argv += ["--slurm-partition", "cpu", "--slurm-time", "0-3", "--slurm-mem", "6G"]
    argv += ["--slurm-account", "lab", "--slurm-sbatch", "constraint=avx2", "--threads", "2"]
    argv += ["--slurm-setup", "module load python", "--workers", "10"]
    assert main(argv) == 2
    be = seen["backend"]
    assert isinstance(be, SlurmBackend)
    assert (be.partition, be.time_min, be.mem, be.account) == ("cpu", 180, "6144M", "lab")
    assert (be.threads, be.capacity(), be.setup) == (2, 10, ["module load python"])
    assert be.sbatch == {"constraint": "avx2"}


@pytest.mark.parametrize(
    ("argv", "msg"),
    [
        (["sweep", "--set", "n_tasks=2", "--slurm-partition", "cpu"], "--slurm-partition needs --backend slurm"),
        (["reproduce", "fig3", "--slurm-qos", "long"], "--slurm-qos needs --backend slurm"),
        (["sweep", "--set", "n_tasks=2", "--backend", "slurm", "--slurm-time", "2h"], "slurm time must be"),
        (["sweep", "--set", "n_tasks=2", "--backend", "slurm", "--slurm-sbatch", "time=5"], "'time' is set by the backend"),
        (["reproduce", "fig3", "--backend", "slurm", "--slurm-mem", "x"], "slurm memory must be"),
    ],
)  # fmt: skip
def test_mte_slurm_flag_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, msg):
    from multitask_evidence.experiments.cli import main

    _fake_sbatch(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err and err.startswith(f"mte {argv[0]}: error:")
    assert not (tmp_path / "runs").exists()  # nothing written


def test_mte_sweep_backend_slurm_without_sbatch(tmp_path, monkeypatch, capsys):
    from multitask_evidence.experiments.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--set", "n_tasks=2", "--backend", "slurm", "--no-progress"]) == 2
    assert "needs SLURM's sbatch on PATH" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
