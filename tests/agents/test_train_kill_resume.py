"""Kill a training run at a bad moment, resume it: the logs hold every step once, in increasing
order, and the final weights equal those of an uninterrupted run (supervised before and after
its first checkpoint, native PPO, sb3 RecurrentPPO)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from multitask_evidence import agents
from multitask_evidence.agents import TrainConfig, train
from multitask_evidence.agents.rl import ALGOS
from multitask_evidence.agents.rl.ppo_config import PPOConfig
from multitask_evidence.agents.rl.sb3 import SB3Config
from multitask_evidence.agents.run import _event_records
from multitask_evidence.envs import TaskSpec

torch.set_num_threads(1)

TINY = TaskSpec(n_tasks=1, sigma=0.1, stimulus_steps=3, encoder="none")


class Killed(BaseException):
    """Stands for SIGKILL: nothing catches it, no final checkpoint is written."""


def kill_after_row(monkeypatch, key: str, value: int) -> None:
    """Raise :class:`Killed` right after the metrics row with ``row[key] == value`` is written."""
    write = agents.run.MetricsLog.write

    def dying(self, record):
        write(self, record)
        if record.get(key) == value:
            raise Killed

    monkeypatch.setattr(agents.run.MetricsLog, "write", dying)


def tb_steps(run_dir: Path) -> dict[str, list[int]]:
    """Scalar tag -> steps, over every event file of the run, in file order."""
    from tensorboard.compat.proto.event_pb2 import Event

    out: dict[str, list[int]] = defaultdict(list)
    for path in sorted(run_dir.rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        for raw, _ in _event_records(path):
            ev = Event.FromString(raw[12:-4])
            for v in ev.summary.value:
                out[v.tag].append(int(ev.step))
    return out


def assert_logs_clean(run_dir: Path, key: str, expected: list[int]) -> None:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r[key] for r in rows] == expected
    tags = tb_steps(run_dir)
    assert tags, "tensorboard events were written"
    for tag, steps in tags.items():
        assert all(a < b for a, b in zip(steps, steps[1:])), (tag, steps)


def assert_same_weights(a: Path, b: Path) -> None:
    wa = torch.load(a / "model.pt", weights_only=True)
    wb = torch.load(b / "model.pt", weights_only=True)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=k)


def _sup() -> TrainConfig:
    return TrainConfig(
        arch="gru", hidden_size=8, steps=8, batch_size=16, eval_every=1, eval_trials=64,
        checkpoint_every=4, progress=False, device="cpu", num_threads=1,
    )  # fmt: skip


@pytest.mark.parametrize("kill_at", [2, 6])  # before / after the first checkpoint (step 4)
def test_supervised_kill_and_resume(kill_at: int, tmp_path, monkeypatch) -> None:
    train(TINY, _sup(), tmp_path / "full")
    with monkeypatch.context() as m:
        kill_after_row(m, "step", kill_at)
        with pytest.raises(Killed):
            train(TINY, _sup(), tmp_path / "cut")
    assert (tmp_path / "cut" / "checkpoint.pt").exists() == (kill_at > 4)
    rows = (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == kill_at  # rows past the checkpoint exist before the resume
    train(TINY, _sup(), tmp_path / "cut", resume=True)
    assert_logs_clean(tmp_path / "cut", "step", list(range(1, 9)))
    assert_same_weights(tmp_path / "full", tmp_path / "cut")


def _ppo() -> PPOConfig:
    return PPOConfig(
        arch="gru", hidden_size=8, critic_hidden=0, num_envs=16, total_steps=16 * TINY.n_steps * 6,
        eval_every=1, checkpoint_every=2, eval_trials=32, progress=False, device="cpu",
    )  # fmt: skip


def test_ppo_kill_and_resume(tmp_path, monkeypatch) -> None:
    fit = ALGOS["ppo"][1]
    fit(TINY, _ppo(), tmp_path / "full")
    with monkeypatch.context() as m:
        kill_after_row(m, "update", 3)  # checkpoint at update 2
        with pytest.raises(Killed):
            fit(TINY, _ppo(), tmp_path / "cut")
    fit(TINY, _ppo(), tmp_path / "cut", resume=True)
    assert_logs_clean(tmp_path / "cut", "update", list(range(1, 7)))
    assert_same_weights(tmp_path / "full", tmp_path / "cut")


def _sb3() -> SB3Config:
    return SB3Config(
        total_steps=1024, eval_every=256, eval_trials=64, n_envs=4, n_steps=64, lr=1e-3,
        batch_size=128, n_epochs=2, lstm_hidden_size=16, net_arch=16, progress=False,
    )  # fmt: skip


def test_sb3_kill_and_resume(tmp_path, monkeypatch) -> None:
    fit = ALGOS["sb3-recurrent-ppo"][1]
    fit(TINY, _sb3(), tmp_path / "full")
    with monkeypatch.context() as m:
        # evaluation at 768 is logged mid-rollout; the last checkpoint is at step 512
        kill_after_row(m, "env_steps", 768)
        with pytest.raises(Killed):
            fit(TINY, _sb3(), tmp_path / "cut")
    assert (
        torch.load(tmp_path / "cut" / "sb3_checkpoint.pt", weights_only=True)["num_timesteps"]
        == 512
    )
    fit(TINY, _sb3(), tmp_path / "cut", resume=True)
    assert_logs_clean(tmp_path / "cut", "env_steps", [256, 512, 768, 1024])
    assert_same_weights(tmp_path / "full", tmp_path / "cut")
    full = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    cut = [json.loads(x) for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["eval/mean_reward"] for r in full] == [r["eval/mean_reward"] for r in cut]
