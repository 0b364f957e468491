"""Sweeps on the local process pool: grids, validation, failure isolation, resume after a kill,
and one real train + probe sweep through `mte sweep`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from multitask_evidence.experiments.sweep import (
    SweepPaths,
    grid_from_cli,
    load_results,
    parse_grid,
    run_sweep,
    union,
)

HERE = Path(__file__).resolve().parent


# ---- point functions for the engine tests (module level: they must pickle) ------------------
def fake_point(point, run_dir, fail_n=None, sleep=0.0, slow_n=None, slow_s=0.0):
    """Trains nothing: counts its calls in run_dir/calls.txt and returns metrics from params."""
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "calls.txt"), "a") as fh:
        fh.write(f"{os.getpid()}\n")
    n = point.task["n_tasks"]
    time.sleep(slow_s if n == slow_n else sleep)
    if n == fail_n:
        raise RuntimeError(f"injected failure at n_tasks={n}")
    return {"ood_r2": 1.0 - 1.0 / n, "ood_r2_values": [1.0 - 1.0 / n] * 4, "seed_seen": point.seed}


def calls(run_dir: Path) -> int:
    f = run_dir / "calls.txt"
    return len(f.read_text().splitlines()) if f.exists() else 0


# ---- grids -----------------------------------------------------------------------------------
def test_grid_from_cli_expands_types_and_seeds():
    grid, _ = grid_from_cli(["n_tasks=2,6,24", "arch=rnn,gru", "sigma=0.3", "steps=1e2"], "0-1")
    points = grid.points()
    assert len(grid) == len(points) == 12
    first = points[0]
    assert first.task == {"n_tasks": 2, "sigma": 0.3, "seed": 0}  # its own task draw
    assert first.agent == {"arch": "rnn", "steps": 100, "seed": 0}
    assert first.algo == "supervised"
    assert {p.seed for p in points} == {0, 1}
    assert [p.agent["seed"] for p in points[:2]] == [0, 1]  # 'seed' is the network seed
    assert [p.task["seed"] for p in points[:2]] == [0, 1]  # ... and draws the task
    assert len({p.id for p in points}) == 12
    assert first.id.startswith("n_tasks=2_arch=rnn_seed=0-")  # fixed axes do not name points


def test_same_grid_from_yaml_and_cli_has_same_point_ids(tmp_path):
    f = tmp_path / "grid.yaml"
    f.write_text("grid:\n  n_tasks: [2, 6]\n  sigma: 0.3\nseeds: [0]\npoint: {probe_n: 512}\n")
    g_file, opts = grid_from_cli(file=f)
    g_cli, _ = grid_from_cli(["n_tasks=2,6", "sigma=0.3"], "0")
    assert opts == {"probe_n": 512}
    assert [p.id for p in g_file.points()] == [p.id for p in g_cli.points()]
    j = tmp_path / "grid.json"
    j.write_text(json.dumps({"n_tasks": [3], "task.seed": [1, 2]}))
    g_json, _ = grid_from_cli(file=j)
    assert [p.task for p in g_json.points()] == [
        {"n_tasks": 3, "seed": 1},
        {"n_tasks": 3, "seed": 2},
    ]


@pytest.mark.parametrize(
    ("sets", "field", "what"),
    [
        (["n_taskz=2,6"], "n_taskz", "unknown"),
        (["n_tasks="], "n_tasks", "empty"),
        (["n_tasks=[]"], "n_tasks", "empty"),
        (["n_tasks=2,six"], "n_tasks", "type mismatch"),
        (["sigma=0.1,loud"], "sigma", "type mismatch"),
        (["arch=rnn,gpt9"], "arch", "must be one of"),
        (["steps=10.5"], "steps", "type mismatch"),
        (["progress=maybe"], "progress", "type mismatch"),
        (["n_tasks=0"], "n_tasks", "invalid task"),
        (["agent.nope=1"], "nope", "not a field"),
        (["n_tasks=2,2"], "n_tasks", "repeats"),
        (["algo=dqn"], "algo", "must be one of"),
    ],
)
def test_bad_grids_fail_before_training_naming_the_field(tmp_path, sets, field, what):
    with pytest.raises(ValueError) as err:
        grid, _ = grid_from_cli(sets, None)
        run_sweep(grid, tmp_path / "sw", point_fn=fake_point)
    msg = str(err.value)
    assert field in msg and what in msg, msg
    assert not (tmp_path / "sw").exists()  # nothing started


def test_bad_grid_file_and_seeds(tmp_path):
    f = tmp_path / "g.yaml"
    f.write_text("grid:\n  n_tasks: []\n")
    with pytest.raises(ValueError, match="'n_tasks' has an empty list"):
        grid_from_cli(file=f)
    f.write_text("grid: {n_tasks: [2]}\nsweeps: 3\n")
    with pytest.raises(ValueError, match="unknown top-level key"):
        grid_from_cli(file=f)
    with pytest.raises(ValueError, match="'seed'"):
        grid_from_cli(["n_tasks=2"], "0,x")
    with pytest.raises(ValueError, match="'latent_dim'"):
        parse_grid({"latent_dim": [2, "three"]})


def test_union_of_blocks_keeps_per_block_budgets():
    a = parse_grid({"arch": ["rnn"], "n_tasks": [2, 6], "steps": [30]})
    b = parse_grid({"arch": ["gru"], "n_tasks": [2, 6], "steps": [20]})
    points = union([a, b]).points()
    assert [(p.agent["arch"], p.agent["steps"]) for p in points] == [
        ("rnn", 30),
        ("rnn", 30),
        ("gru", 20),
        ("gru", 20),
    ]
    assert len({p.id for p in points}) == 4
    with pytest.raises(ValueError, match="same point more than once"):
        union([a, a]).points()


# ---- the engine on the local pool --------------------------------------------------------------
def test_injected_failure_is_recorded_while_the_rest_complete(tmp_path):
    grid = parse_grid({"n_tasks": [2, 6, 12]}, [0, 1])
    res = run_sweep(
        grid, tmp_path, workers=2, point_fn=fake_point, point_kwargs={"fail_n": 6}, progress=False
    )
    assert res.n_ran == 6 and res.n_failed == 2 and res.n_skipped == 0
    by_status = {}
    for r in res.rows:
        by_status.setdefault(r["status"], []).append(r)
    assert len(by_status["ok"]) == 4 and len(by_status["failed"]) == 2
    assert all(r["n_tasks"] == 6 for r in by_status["failed"])
    assert all("injected failure at n_tasks=6" in r["error"] for r in by_status["failed"])
    for r in by_status["ok"]:
        assert r["ood_r2"] == pytest.approx(1 - 1 / r["n_tasks"])
        assert r["seed_seen"] == r["seed"]
    paths = SweepPaths(tmp_path)
    err = json.loads(paths.error(by_status["failed"][0]["id"]).read_text())
    assert "RuntimeError" in err["error"] and "Traceback" in err["traceback"]
    # the table: every parameter and metric, failed rows included
    header = (tmp_path / "results.csv").read_text().splitlines()[0].split(",")
    for col in ("id", "status", "n_tasks", "seed", "ood_r2", "ood_r2_values", "error", "run_dir"):
        assert col in header
    assert len(load_results(tmp_path)) == 6

    # re-run: done points are skipped, the failed ones are retried (and now succeed)
    res2 = run_sweep(grid, tmp_path, workers=2, point_fn=fake_point, progress=False)
    assert res2.n_skipped == 4 and res2.n_ran == 2 and res2.ok
    for r in res2.rows:
        assert calls(Path(r["run_dir"])) == (2 if r["n_tasks"] == 6 else 1)
        assert not paths.error(r["id"]).exists()


def test_killed_sweep_resumes_skipping_finished_points(tmp_path):
    """Kill a running `run_sweep` (SIGKILL to its process group) and run it again: points that
    had finished are not run again; the one that was running is."""
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from test_sweep import fake_point
        from multitask_evidence.experiments.sweep import parse_grid, run_sweep
        if __name__ == "__main__":
            grid = parse_grid({{"n_tasks": [2, 3, 4, 5]}})
            run_sweep(grid, {str(tmp_path / "sw")!r}, workers=1, point_fn=fake_point,
                      point_kwargs={{"slow_n": 5, "slow_s": 60}}, progress=False)
    """)
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = tmp_path / "sw" / "rows"
    grid = parse_grid({"n_tasks": [2, 3, 4, 5]})
    slow = next(p for p in grid.points() if p.task["n_tasks"] == 5)
    # fake_point appends its pid to calls.txt before it sleeps: a non-empty file says it started
    started = SweepPaths(tmp_path / "sw").run_dir(slow.id) / "calls.txt"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            if started.exists() and started.read_text().strip():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the slow point did not start within 90 s")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = {p.name for p in rows.glob("*.json")}
    assert len(done_before) == 3, done_before
    res = run_sweep(grid, tmp_path / "sw", workers=1, point_fn=fake_point, progress=False)
    assert res.n_skipped == 3 and res.n_ran == 1 and res.ok
    for r in res.rows:
        n_calls = calls(Path(r["run_dir"]))
        assert n_calls == (2 if r["n_tasks"] == 5 else 1), (r["n_tasks"], n_calls)


# ---- one real sweep: train + probe through the command line -----------------------------------
@pytest.mark.slow
def test_mte_sweep_trains_and_probes_for_real(tmp_path, capsys):
    from multitask_evidence.experiments.cli import main

    argv = [
        "sweep",
        "--set",
        "n_tasks=2,24",
        "--set",
        "steps=40",
        "--set",
        "hidden_size=16",
        "--set",
        "eval_trials=256",
        "--set",
        "eval_every=40",
        "--probe-n",
        "1024",
        "--workers",
        "2",
        "--dir",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(argv) == 0
    rows = load_results(tmp_path)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for r in rows:
        run_dir = Path(r["run_dir"])
        for f in ("spec.json", "config.json", "model.pt", "metrics.jsonl", "probe.json"):
            assert (run_dir / f).exists(), f
        assert json.loads((run_dir / "spec.json").read_text())["n_tasks"] == r["n_tasks"]
        assert r["train_steps"] == 40
        assert r["ceiling"] == pytest.approx(1 - 12 * 0.2**2 / 20)  # docs/science.md §7: 0.976
        assert -1.0 < r["ood_r2"] <= r["ceiling"] + 0.02
        assert 0.0 < r["id_r2"] <= r["ceiling"] + 0.02
        assert len(r["ood_r2_values"]) >= 4  # folds x fits, for pooling across networks
        assert 0.0 <= r["angle_deg"] <= 180.0
    # re-running the same command trains nothing
    assert main(argv) == 0
    assert "0 run now, 2 skipped" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["local", "slurm"])
@pytest.mark.parametrize(
    "field, value", [("workers", 2.5), ("workers", 0), ("workers", True), ("threads", 1.5)]
)
def test_backends_refuse_a_worker_or_thread_count_that_is_not_a_whole_number(kind, field, value):
    from multitask_evidence.experiments.backends import make_backend

    # 2.5 workers used to be taken silently as 2
    with pytest.raises(ValueError, match=f"{field} must be an integer >= 1, got {value!r}"):
        make_backend(kind, **{field: value})
