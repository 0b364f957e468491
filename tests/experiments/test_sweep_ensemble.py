"""Sweeps that train compatible supervised points as ensembles: which points group and how the
groups spread over the workers, the same rows as training each point alone, one failing member
isolated from the others, and a killed ensemble that resumes to the uninterrupted weights."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

from multitask_evidence.agents import TrainConfig, train
from multitask_evidence.agents.ensemble import default_ensemble_dir, train_ensemble
from multitask_evidence.agents.ensemble.trials import EnsembleTrials
from multitask_evidence.envs import TaskSpec
from multitask_evidence.experiments.backends import run_unit
from multitask_evidence.experiments.point import ensemble_key, train_group
from multitask_evidence.experiments.sweep import load_results, parse_grid, plan_units, run_sweep

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "agents"))
from test_ensemble import _interrupt_at_batch  # noqa: E402
from test_train_kill_resume import assert_logs_clean, assert_same_weights  # noqa: E402

sys.path.insert(0, str(HERE))
from test_sweep_kill_resume import kill_mid_training, start_driver  # noqa: E402

TINY = {
    "n_tasks": [3],
    "hidden_size": [16],
    "eval_trials": [256],
    "checkpoint_every": [5],
}


class InlineBackend:
    """Runs each unit in this process when it is submitted (so that monkeypatches apply)."""

    name = "inline"

    def __init__(self, slots: int = 1) -> None:
        self.slots = slots
        self.units: list[list[str]] = []
        self._done: dict[int, object] = {}

    def start(self) -> None:
        pass

    def capacity(self) -> int:
        return self.slots

    def submit(self, fn, point, run_dir, kwargs):
        ids = [p.id for p in point] if isinstance(run_dir, list) else [point.id]
        self.units.append(ids)
        handle = len(self._done)
        self._done[handle] = run_unit(fn, point, run_dir, kwargs)
        return handle

    def wait(self, handles, timeout):
        return list(handles)

    def result(self, handle):
        return self._done.pop(handle)

    def close(self, cancel: bool = False) -> None:
        pass


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(Path(run_dir) / "model.pt", weights_only=True)


# ---- which points group ------------------------------------------------------------------------
def test_plan_units_groups_splits_and_spreads_over_the_workers():
    pts = ["a0", "a1", "a2", "a3", "a4", "b0", "b1", "x0", "a5"]

    def key(s):
        return None if s[0] == "x" else s[0]

    assert plan_units(pts, 1, 32, key) == [
        ["a0", "a1", "a2", "a3", "a4", "a5"],
        ["b0", "b1"],
        ["x0"],
    ]
    # at most max_size per ensemble, in near-equal parts
    assert plan_units(pts, 1, 4, key) == [
        ["a0", "a1", "a2"],
        ["a3", "a4", "a5"],
        ["b0", "b1"],
        ["x0"],
    ]
    # fewer groups than workers: the largest (per part) splits until every worker has one
    assert plan_units(pts, 5, 32, key) == [
        ["a0", "a1"],
        ["a2", "a3"],
        ["a4", "a5"],
        ["b0", "b1"],
        ["x0"],
    ]
    # a tie (parts of 2 in "a" and "b") splits the first group in grid order
    assert plan_units(pts, 6, 32, key) == [
        ["a0", "a1"],
        ["a2", "a3"],
        ["a4"],
        ["a5"],
        ["b0", "b1"],
        ["x0"],
    ]
    assert plan_units(pts, 100, 32, key) == [
        [p] for p in ["a0", "a1", "a2", "a3", "a4", "a5", "b0", "b1", "x0"]
    ]
    assert plan_units(pts, 1, 32, None) == [[p] for p in pts]
    # more units than workers: rounded up to a multiple of the workers, so that no worker idles
    # through the last round (5 ensembles of 5 on 2 workers: the first tie splits, 3 + 2)
    five = [f"{g}{i}" for g in "abcde" for i in range(5)]
    assert [len(u) for u in plan_units(five, 2, 32, lambda s: s[0])] == [3, 2, 5, 5, 5, 5]
    assert plan_units(five, 2, 32, lambda s: s[0])[:2] == [["a0", "a1", "a2"], ["a3", "a4"]]
    assert [len(u) for u in plan_units(five, 5, 32, lambda s: s[0])] == [5] * 5  # a multiple
    assert len(plan_units(five[:3], 2, 32, lambda s: None)) == 3  # units of one cannot split
    assert plan_units(pts, 1, 1, key) == [[p] for p in pts]  # no ensembles: grid order
    with pytest.raises(ValueError, match=r"slots must be an integer >= 1, got 0"):
        plan_units(pts, 0, 4, key)


def test_ensemble_key_needs_one_config_and_task_shape_but_not_one_seed_or_sigma():
    grid = parse_grid({"arch": ["rnn", "gru"], "n_tasks": [2, 6], "sigma": [0.2, 0.3]}, [0, 1])
    keys = {}
    for p in grid.points():
        keys.setdefault(ensemble_key(p), []).append(p)
    assert len(keys) == 4  # arch x n_tasks; seeds, task draws and sigma share an ensemble
    for members in keys.values():
        assert len({(p.agent["arch"], p.task["n_tasks"]) for p in members}) == 1
        assert {(p.seed, p.task["sigma"]) for p in members} == {
            (s, g) for s in (0, 1) for g in (0.2, 0.3)
        }
    # a different recipe, or an RL algorithm, does not group
    (lr,) = parse_grid({"arch": ["rnn"], "n_tasks": [2], "lr": [0.01]}).points()
    assert ensemble_key(lr) not in keys
    (ppo,) = parse_grid({"algo": ["ppo"]}).points()
    assert ensemble_key(ppo) is None


def test_only_architectures_registered_for_ensembles_group():
    """The LSTM trains alone (the solo fused kernel wins at the default batch), and so does an
    architecture registered without ensemble=True (agents.ensemble has no stacked form of it)."""
    from torch import nn

    from multitask_evidence.agents.architectures import (
        register_architecture,
        unregister_architecture,
    )

    for arch, groups in (("rnn", True), ("rnn_nonleaky", True), ("gru", True),
                         ("transformer", True), ("lstm", False)):  # fmt: skip
        points = parse_grid({"arch": [arch], "n_tasks": [2]}, [0, 1]).points()
        keys = {ensemble_key(p) for p in points}
        assert (keys != {None} and len(keys) == 1) is groups, arch
    register_architecture(
        "toy_linear",
        lambda obs_dim, hidden_size, **_: nn.Linear(obs_dim, hidden_size),
        summary="a toy", recipes={"paper": {"steps": 10}, "default": {"steps": 10}},
    )  # fmt: skip
    try:
        points = parse_grid({"arch": ["toy_linear"], "n_tasks": [2]}, [0, 1]).points()
        assert {ensemble_key(p) for p in points} == {None}
    finally:
        unregister_architecture("toy_linear")


def test_run_sweep_rejects_bad_ensemble_options(tmp_path):
    grid = parse_grid({"n_tasks": [2]})
    with pytest.raises(ValueError, match=r"max_ensemble must be an integer >= 1, got 0"):
        run_sweep(grid, tmp_path, max_ensemble=0, progress=False)
    with pytest.raises(ValueError, match=r"ensemble must be True or False, got 'yes'"):
        run_sweep(grid, tmp_path, ensemble="yes", progress=False)
    assert not any(tmp_path.iterdir())  # nothing written


# ---- the same rows with and without ensembles ----------------------------------------------------
@pytest.mark.slow
def test_ensemble_sweep_gives_the_rows_of_the_solo_sweep(tmp_path):
    from multitask_evidence.experiments.cli import main

    argv = ["sweep", "--set", "arch=rnn,gru", "--seeds", "0-2", "--probe-n", "1024"]
    argv += ["--set", "n_tasks=3", "--set", "steps=20", "--set", "hidden_size=16"]
    argv += ["--set", "eval_trials=256", "--set", "eval_every=10", "--set", "checkpoint_every=10"]
    argv += ["--workers", "2", "--no-progress"]
    assert main([*argv, "--dir", str(tmp_path / "ens")]) == 0
    assert main([*argv, "--dir", str(tmp_path / "solo"), "--no-ensemble"]) == 0
    ens, solo = load_results(tmp_path / "ens"), load_results(tmp_path / "solo")
    assert [r["id"] for r in ens] == [r["id"] for r in solo] and len(ens) == 6
    # two ensembles of 3 (one per architecture, 2 workers): members share the training time
    for arch in ("rnn", "gru"):
        assert len({r["train_seconds"] for r in ens if r["arch"] == arch}) == 1
        assert len({r["train_seconds"] for r in solo if r["arch"] == arch}) == 3
    volatile = {"elapsed_s", "cpu_s", "host", "finished_at", "run_dir", "train_seconds"}
    for a, b in zip(ens, solo):
        assert a.keys() == b.keys()
        assert a["status"] == b["status"] == "ok" and a["train_steps"] == 20
        for k in a.keys() - volatile:
            if isinstance(a[k], float):
                assert a[k] == pytest.approx(b[k], rel=1e-3, abs=1e-3), (a["id"], k)
            elif isinstance(a[k], list) and a[k] and isinstance(a[k][0], float):
                assert a[k] == pytest.approx(b[k], rel=1e-3, abs=1e-3), (a["id"], k)
            elif k not in ("id",):
                assert a[k] == b[k], (a["id"], k)
        for name, w in _weights(a["run_dir"]).items():
            torch.testing.assert_close(w, _weights(b["run_dir"])[name], rtol=0, atol=1e-5)
    header = (tmp_path / "ens" / "results.csv").read_text().splitlines()[0]
    assert header == (tmp_path / "solo" / "results.csv").read_text().splitlines()[0]
    # finished ensembles leave no joint checkpoint behind: every member folder holds its state
    assert not list((tmp_path / "ens" / "runs").glob(".ensemble-*"))


# ---- failure isolation -------------------------------------------------------------------------
@pytest.mark.slow
def test_a_diverging_member_fails_alone_and_the_others_finish(tmp_path, monkeypatch):
    import multitask_evidence.agents.ensemble.trainer as ens_trainer
    import multitask_evidence.agents.trainer as solo_trainer

    grid = parse_grid({**TINY, "arch": ["rnn"], "steps": [20], "eval_every": [20]}, [0, 1, 2])
    real_member, real_solo = ens_trainer.member_objective, solo_trainer.objective
    calls = {"n": 0}

    def member_objective(model, readout, targets, mask, spec):
        out = real_member(model, readout, targets, mask, spec)
        calls["n"] += 1
        if calls["n"] >= 8:  # member 1 diverges at step 8 (last joint checkpoint: step 5)
            out = out.clone()
            out[1] = float("nan")
        return out

    def objective(network, readout, targets, mask, spec):
        loss = real_solo(network, readout, targets, mask, spec)
        return loss * float("nan") if spec.seed == 1 else loss  # diverges alone too

    monkeypatch.setattr(ens_trainer, "member_objective", member_objective)
    monkeypatch.setattr(solo_trainer, "objective", objective)
    be = InlineBackend(slots=1)
    res = run_sweep(grid, tmp_path, backend=be, point_kwargs={"probe_n": 1024}, progress=False)
    assert be.units == [[p.id for p in grid.points()]]  # one ensemble of 3
    assert calls["n"] == 8
    assert res.n_ran == 3 and res.n_failed == 1
    (bad,) = res.failed
    assert bad["seed"] == 1 and bad["error"].startswith("TrainingDivergedError: loss became nan")
    ok = [r for r in res.rows if r["status"] == "ok"]
    assert [r["seed"] for r in ok] == [0, 2]
    for r in ok:  # resumed alone from the ensemble's step-5 checkpoint: the solo run's weights
        assert r["train_steps"] == 20
        p = next(p for p in grid.points() if p.id == r["id"])
        ref = train(TaskSpec(**p.task), TrainConfig(**p.agent, progress=False))
        for name, w in _weights(r["run_dir"]).items():
            torch.testing.assert_close(w, ref.network.state_dict()[name], rtol=0, atol=1e-5)
    # the next run retries the failed point alone (it resumes its own checkpoint)
    monkeypatch.setattr(solo_trainer, "objective", real_solo)
    be2 = InlineBackend(slots=1)
    res2 = run_sweep(grid, tmp_path, backend=be2, point_kwargs={"probe_n": 1024}, progress=False)
    assert res2.ok and res2.n_ran == 1 and res2.n_skipped == 2
    assert be2.units == [[bad["id"]]]


def test_a_member_locked_by_another_writer_fails_alone(tmp_path):
    from multitask_evidence.experiments.backends import PointLock, execute_group

    def group_fn(points, run_dirs):
        return [{"status": "ok", "metrics": {"n": len(points)}} for _ in points]

    grid = parse_grid({"n_tasks": [2]}, [0, 1, 2])
    pts = grid.points()
    dirs = [str(tmp_path / p.id) for p in pts]
    with PointLock(dirs[1]):
        out = execute_group(group_fn, pts, dirs, {})
    assert [o["status"] for o in out] == ["ok", "failed", "ok"]
    assert out[0]["metrics"] == {"n": 2}  # the group trained without the locked member
    assert "FolderInUseError" in out[1]["error"] and dirs[1] in out[1]["error"]

    def broken(points, run_dirs):
        raise RuntimeError("boom")

    out = execute_group(broken, pts, dirs, {})
    assert [o["status"] for o in out] == ["failed"] * 3
    assert all(o["error"] == "RuntimeError: boom" for o in out)


# ---- resume ---------------------------------------------------------------------------------------
def test_regrouped_members_resume_from_their_own_checkpoints(tmp_path, monkeypatch):
    """Members cut at step 5 in one ensemble resume in another grouping (no joint checkpoint)
    from their own folders, bit for bit; a fresh member beside them trains alone."""
    grid = parse_grid({**TINY, "arch": ["gru"], "steps": [12], "eval_every": [6]}, [0, 1, 2])
    pts = grid.points()
    specs = [TaskSpec(**p.task) for p in pts]
    cfgs = [TrainConfig(**p.agent, progress=False) for p in pts]
    whole = train_ensemble(specs[:2], cfgs[:2], [tmp_path / "w0", tmp_path / "w1"])
    dirs = [tmp_path / "runs" / p.id for p in pts]
    real = _interrupt_at_batch(8, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(specs[:2], cfgs[:2], dirs[:2])
    monkeypatch.setattr(EnsembleTrials, "draw", real)
    assert torch.load(dirs[0] / "checkpoint.pt", weights_only=True)["step"] == 5
    shutil.rmtree(default_ensemble_dir(dirs[:2]))  # as if the members were grouped otherwise
    finals = train_group(pts, dirs)
    assert [f["step"] for f in finals] == [12, 12, 12]
    for k in range(2):
        assert_same_weights(dirs[k], tmp_path / f"w{k}")
        rows = [json.loads(x) for x in (dirs[k] / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [6, 12]
        assert rows[-1]["loss"] == whole[k].final["loss"]
    solo = train(specs[2], cfgs[2])
    for name, w in _weights(dirs[2]).items():
        torch.testing.assert_close(w, solo.network.state_dict()[name], rtol=0, atol=0)
    assert not list((tmp_path / "runs").glob(".ensemble-*"))


@pytest.mark.slow
def test_killed_ensemble_sweep_resumes_to_the_uninterrupted_weights(tmp_path):
    axes = {
        "n_tasks": [3],
        "arch": ["gru"],
        "hidden_size": [8],
        "steps": [400],
        "batch_size": [16],
        "eval_every": [100],
        "checkpoint_every": [20],
        "eval_trials": [64],
    }
    seeds = [0, 1]
    proc = start_driver(
        tmp_path,
        f"""
        from multitask_evidence.experiments.sweep import parse_grid, run_sweep
        if __name__ == "__main__":
            run_sweep(parse_grid({axes!r}, {seeds!r}), {str(tmp_path / "sw")!r}, workers=1,
                      point_kwargs={{"probe_n": 1024}}, progress=False)
        """,
    )
    points = parse_grid(axes, seeds).points()
    runs = [tmp_path / "sw" / "runs" / p.id for p in points]
    joint = default_ensemble_dir(runs) / "ensemble_checkpoint.pt"
    kill_mid_training(proc, joint, 60, 400)
    assert not list((tmp_path / "sw" / "rows").glob("*.json"))  # nothing finished
    time.sleep(1.0)  # the worker notices its parent is gone
    res = run_sweep(
        parse_grid(axes, seeds), tmp_path / "sw", workers=1, point_kwargs={"probe_n": 1024},
        progress=False,
    )  # fmt: skip
    assert res.ok and res.n_ran == 2
    assert res.rows[0]["train_seconds"] == res.rows[1]["train_seconds"]  # one ensemble
    assert not joint.parent.exists()
    # the same members trained without interruption
    refs = [tmp_path / "ref0", tmp_path / "ref1"]
    train_ensemble(
        [TaskSpec(**p.task) for p in points],
        [TrainConfig(**p.agent, progress=False) for p in points],
        refs,
    )
    for run, ref in zip(runs, refs):
        assert_same_weights(run, ref)
        steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert_logs_clean(run, "step", steps)
        assert steps == [100, 200, 300, 400]


def test_mte_sweep_max_ensemble_must_be_positive(tmp_path, monkeypatch, capsys):
    from multitask_evidence.experiments.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--set", "n_tasks=2", "--max-ensemble", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "mte sweep: error: --max-ensemble must be >= 1, got 0"
    assert not (tmp_path / "runs").exists()
