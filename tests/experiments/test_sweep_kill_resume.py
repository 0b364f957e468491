"""A killed sweep driver takes its pool workers with it, a point folder has one writer at a
time (stale locks are taken over), and the re-run trains the interrupted point once more."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from multitask_evidence.experiments.backends import (
    FolderInUseError,
    PointLock,
    execute_point,
    lock_path,
)
from multitask_evidence.experiments.sweep import parse_grid, run_sweep

HERE = Path(__file__).resolve().parent


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaps counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:  # pragma: no cover - no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.mark.slow
def test_killed_driver_takes_its_worker_with_it(tmp_path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from test_sweep import fake_point
        from multitask_evidence.experiments.sweep import parse_grid, run_sweep
        if __name__ == "__main__":
            grid = parse_grid({{"n_tasks": [2, 5]}})
            run_sweep(grid, {str(tmp_path / "sw")!r}, workers=1, point_fn=fake_point,
                      point_kwargs={{"slow_n": 5, "slow_s": 60}}, progress=False)
    """)
    )
    root = str(HERE.parents[1])  # this checkout's packages, in the driver and its workers
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    grid = parse_grid({"n_tasks": [2, 5]})
    slow = next(p for p in grid.points() if p.task["n_tasks"] == 5)
    calls = tmp_path / "sw" / "runs" / slow.id / "calls.txt"
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not calls.exists():
            time.sleep(0.1)
        assert calls.exists(), "the slow point started"
        worker = int(calls.read_text().split()[0])
        assert Path(lock_path(calls.parent)).exists()  # the worker holds the point's lock
    finally:
        proc.send_signal(signal.SIGKILL)  # the driver only, not its process group
        proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline and not _gone(worker):
        time.sleep(0.1)
    assert _gone(worker), "the pool worker outlived its driver"

    from test_sweep import fake_point

    res = run_sweep(grid, tmp_path / "sw", workers=1, point_fn=fake_point, progress=False)
    assert res.ok and res.n_ran == 1 and res.n_skipped == 1
    # the interrupted point ran twice in all (once killed), never with two writers at once
    assert len(calls.read_text().split()) == 2
    assert not Path(lock_path(calls.parent)).exists()


def test_point_lock_one_writer_and_stale_recovery(tmp_path) -> None:
    run = tmp_path / "runs" / "p1"
    with PointLock(run) as lock:
        text = Path(lock.path).read_text().split()
        assert text[1] == str(os.getpid())
        assert oct(os.stat(lock.path).st_mode & 0o777) == oct(0o644 & ~_umask())
        with pytest.raises(FolderInUseError, match=r"is being written by process \d+"):
            PointLock(run).acquire()
    assert not Path(lock_path(run)).exists()
    # a lock left by a process that is gone is taken over
    Path(lock_path(run)).write_text(f"{os.uname().nodename} {_dead_pid()} None\n")
    with PointLock(run) as lock:
        assert Path(lock.path).read_text().split()[1] == str(os.getpid())
    # release never removes a lock another owner holds
    Path(lock_path(run)).write_text("otherhost 1 None\n")
    PointLock(run).release()
    assert Path(lock_path(run)).exists()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _record_point(point, run_dir):
    return {"ok": 1.0}


def test_a_locked_point_fails_cleanly_instead_of_a_second_writer(tmp_path) -> None:
    grid = parse_grid({"n_tasks": [2]})
    (point,) = grid.points()
    run = tmp_path / "runs" / point.id
    with PointLock(run):  # a live writer (this process) holds the folder
        out = execute_point(_record_point, point, str(run), {})
    assert out["status"] == "failed"
    assert "FolderInUseError" in out["error"] and str(run) in out["error"]
    out = execute_point(_record_point, point, str(run), {})
    assert out["status"] == "ok" and out["metrics"] == {"ok": 1.0}


def test_mte_train_refuses_a_folder_in_use(tmp_path, monkeypatch, capsys) -> None:
    from multitask_evidence.experiments.cli import main

    argv = ["train", "--steps", "2", "--name", "r", "--runs-dir", str(tmp_path), "--no-progress"]
    monkeypatch.setattr(sys, "argv", ["mte", *argv])
    with PointLock(tmp_path / "r"):
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mte train: error: run folder") and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def start_driver(tmp_path: Path, body: str) -> subprocess.Popen:
    """Run ``body`` (a script, dedented) as a sweep driver process that imports this checkout
    and the test modules here."""
    script = tmp_path / "run.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(HERE)!r})\n" + textwrap.dedent(body))
    root = str(HERE.parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )


def kill_mid_training(
    proc: subprocess.Popen, checkpoint: Path, lo: int, hi: int, timeout: float = 180
) -> int:
    """SIGKILL the driver ``proc`` (not its process group: its workers must follow on their own)
    once the training checkpoint file holds a step in [lo, hi); returns that step."""
    import torch

    killed_at = None
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and killed_at is None:
            try:
                step = int(torch.load(checkpoint, weights_only=True)["step"])
            except Exception:  # noqa: BLE001 - not written yet, or being renamed
                step = 0
            if lo <= step < hi:
                killed_at = step
            time.sleep(0.05)
        assert killed_at is not None, f"{checkpoint} reached a step in [{lo}, {hi})"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return killed_at


def slow_train_point(point, run_dir):
    """A real supervised training point that pauses 0.2 s at every evaluation, so that a driver
    can be killed while it trains (the pause neither changes the network nor draws from an RNG)."""
    from multitask_evidence import agents
    from multitask_evidence.envs import TaskSpec

    resume = (Path(run_dir) / "config.json").exists()
    cfg = agents.TrainConfig(**{**point.agent, "progress": False})
    agents.train(
        TaskSpec(**point.task),
        cfg,
        run_dir,
        resume=resume,
        on_eval=lambda row, net: time.sleep(0.2),
    )
    return {"ood_r2": 0.5}


@pytest.mark.slow
def test_killed_sweep_of_real_training_resumes_to_the_uninterrupted_weights(tmp_path) -> None:
    import json

    from multitask_evidence import agents
    from multitask_evidence.envs import TaskSpec

    sys.path.insert(0, str(HERE.parents[1] / "tests" / "agents"))
    from test_train_kill_resume import assert_logs_clean, assert_same_weights

    axes = {
        "n_tasks": [3],
        "arch": ["gru"],
        "hidden_size": [8],
        "steps": [200],
        "batch_size": [16],
        "eval_every": [20],
        "checkpoint_every": [20],
        "eval_trials": [64],
    }
    proc = start_driver(
        tmp_path,
        f"""
        from test_sweep_kill_resume import slow_train_point
        from multitask_evidence.experiments.sweep import parse_grid, run_sweep
        if __name__ == "__main__":
            run_sweep(parse_grid({axes!r}), {str(tmp_path / "sw")!r}, workers=1,
                      point_fn=slow_train_point, progress=False)
        """,
    )
    (point,) = parse_grid(axes).points()
    run = tmp_path / "sw" / "runs" / point.id
    kill_mid_training(proc, run / "checkpoint.pt", 60, 200)
    assert not (tmp_path / "sw" / "rows" / f"{point.id}.json").exists()  # not finished
    time.sleep(1.0)  # the worker notices its parent is gone
    res = run_sweep(
        parse_grid(axes), tmp_path / "sw", workers=1, point_fn=slow_train_point, progress=False
    )
    assert res.ok and res.n_ran == 1
    # the same point trained without interruption
    ref = tmp_path / "ref"
    agents.train(
        TaskSpec(**point.task), agents.TrainConfig(**{**point.agent, "progress": False}), ref
    )
    assert_same_weights(run, ref)
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert_logs_clean(run, "step", steps)
    assert steps == list(range(20, 201, 20))
