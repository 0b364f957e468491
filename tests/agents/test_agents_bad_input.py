"""Bad input to the agents' Python API: damaged or mismatched run folders, names that would
leave their folder, resumes with other settings, sizes that would not fit, divergence."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
import torch

from multitask_evidence import agents
from multitask_evidence.agents import TrainConfig, TrainingDivergedError, load, train
from multitask_evidence.agents.rl import ALGOS
from multitask_evidence.agents.rl.ppo_config import PPOConfig
from multitask_evidence.agents.rl.sb3 import SB3Config
from multitask_evidence.agents.run import child_path, read_metrics
from multitask_evidence.common.files import atomic_write_text, file_mode
from multitask_evidence.envs import TaskSpec

torch.set_num_threads(1)

TINY = TaskSpec(n_tasks=2, sigma=0.1, stimulus_steps=3, encoder="none")


def _cfg(**kw) -> TrainConfig:
    base = dict(
        arch="gru", hidden_size=8, steps=4, batch_size=8, eval_every=2, eval_trials=64,
        checkpoint_every=2, progress=False, device="cpu", num_threads=1,
    )  # fmt: skip
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("r") / "run"
    train(TINY, _cfg(), d)
    return d


@pytest.fixture
def copy(run_dir, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    return d


# ---- damaged run folders ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("model.pt", b"", "model.pt: not a readable weights-only checkpoint: truncated"),
        ("model.pt", b"not a zip", "model.pt: not a readable weights-only checkpoint"),
        ("model.pt", "HALF", "model.pt: not a readable weights-only checkpoint: truncated"),
        ("config.json", b"{not json", "config.json: not valid JSON"),
        ("config.json", b"[1, 2]", "config.json: expected a config object"),
        ("spec.json", b'{"n_tasks": -1}', "spec.json: not a valid TaskSpec"),
        ("spec.json", b"\x80\x04garbage", "spec.json: not valid JSON"),
    ],
)
def test_damaged_files_are_named(copy, name, content, match) -> None:
    path = copy / name
    if content == "HALF":
        content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load(copy)


def test_weights_that_do_not_fit_the_spec_are_named(copy) -> None:
    spec = json.loads((copy / "spec.json").read_text())
    (copy / "spec.json").write_text(json.dumps({**spec, "n_tasks": 5}))
    with pytest.raises(ValueError, match="model.pt: the weights do not fit the network"):
        load(copy)


def test_metrics_log_partial_tail_dropped_bad_line_named(copy) -> None:
    good = (copy / "metrics.jsonl").read_text()
    (copy / "metrics.jsonl").write_text(good + '{"step": 9, "lo')
    assert [r["step"] for r in read_metrics(copy)] == [2, 4]
    (copy / "metrics.jsonl").write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match="metrics.jsonl: line 2 is not a JSON object"):
        read_metrics(copy)
    (copy / "metrics.jsonl").write_bytes(b"\x80\x04\x95")
    with pytest.raises(ValueError, match="metrics.jsonl: not a metrics log"):
        read_metrics(copy)


# ---- names -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["../x", "/tmp/x", "a/../../x", "", ".", "a//b", "a/./b", "x\0y", 3]
)
def test_names_that_leave_their_folder_are_refused(name, tmp_path) -> None:
    with pytest.raises(ValueError, match="--name must be a folder name"):
        child_path(tmp_path, name, "--name")


@pytest.mark.parametrize("name", ["exp1", "grp/exp1", "a.b-c_d=1", "..x", "x.."])
def test_names_inside_their_folder_are_valid(name, tmp_path) -> None:
    p = child_path(tmp_path, name, "--name")
    assert p == tmp_path / name and tmp_path in p.parents


def test_a_symlink_inside_the_runs_folder_cannot_lead_a_run_out_of_it(tmp_path) -> None:
    runs, outside = tmp_path / "runs", tmp_path / "elsewhere"
    (outside / "victim").mkdir(parents=True)
    runs.mkdir()
    (runs / "link").symlink_to(outside)
    (runs / "victim").symlink_to(outside / "victim")
    for name in ("link/x", "victim", "link/victim/deeper"):
        with pytest.raises(ValueError, match=f"--name {name!r} leads out of .* through a symlink"):
            child_path(runs, name, "--name")
    # a link that stays inside is fine, and so is a runs folder that is itself a link
    (runs / "inner").mkdir()
    (runs / "alias").symlink_to(runs / "inner")
    assert child_path(runs, "alias/x", "--name") == runs / "alias" / "x"
    (tmp_path / "runs-link").symlink_to(outside)
    assert child_path(tmp_path / "runs-link", "victim", "--name") == tmp_path / "runs-link" / "victim"


# ---- file modes --------------------------------------------------------------------------------
def test_run_files_are_readable_as_the_umask_allows(run_dir, tmp_path) -> None:
    old = os.umask(0o022)
    try:
        assert file_mode() == 0o644
        atomic_write_text(tmp_path / "a.txt", "x")
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
        os.umask(0o077)
        assert file_mode() == 0o600
        atomic_write_text(tmp_path / "b.txt", "x")
        assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    for name in ("spec.json", "config.json", "model.pt", "checkpoint.pt", "metrics.jsonl"):
        mode = stat.S_IMODE((run_dir / name).stat().st_mode)
        assert mode == 0o666 & ~old, (name, oct(mode))


# ---- resume ------------------------------------------------------------------------------------
def test_resume_with_other_settings_names_them(copy) -> None:
    with pytest.raises(ValueError, match=r"config fields \['hidden_size', 'lr'\] differ"):
        train(TINY, _cfg(hidden_size=16, lr=0.1), copy, resume=True)
    with pytest.raises(ValueError, match=r"spec fields \['sigma'\] differ"):
        train(TINY.replace(sigma=0.3), _cfg(), copy, resume=True)
    # runtime fields may change: the finished run is continued (nothing left to do)
    run = train(TINY, _cfg(progress=True, max_seconds=5.0), copy, resume=True)
    assert [m["step"] for m in run.metrics] == [2, 4]


@pytest.mark.parametrize("algo", ["ppo", "sb3-recurrent-ppo"])
def test_rl_resume_with_other_settings_names_them(algo, tmp_path) -> None:
    cls, fit = ALGOS[algo]
    small = (
        PPOConfig(num_envs=8, total_steps=8 * TINY.n_steps, hidden_size=8, eval_trials=16,
                  progress=False, device="cpu")
        if algo == "ppo"
        else SB3Config(total_steps=64, n_envs=2, n_steps=32, batch_size=64, n_epochs=1,
                       eval_every=64, eval_trials=16, lstm_hidden_size=8, progress=False)
    )  # fmt: skip
    fit(TINY, small, tmp_path / "r")
    import dataclasses

    with pytest.raises(ValueError, match=r"config fields \['lr'\] differ"):
        fit(TINY, dataclasses.replace(small, lr=0.5), tmp_path / "r", True)


# ---- sizes and divergence --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (
            dict(hidden_size=10**6),
            r"TrainConfig.hidden_size=1000000 .* would take about [\d.]+ TiB",
        ),
        (dict(batch_size=10**9), r"TrainConfig.batch_size=1000000000 .* GiB"),
        (dict(eval_trials=10**10), r"TrainConfig.eval_trials=10000000000 .* of memory"),
    ],
)
def test_huge_training_sizes_are_refused_before_allocation(kw, match, tmp_path) -> None:
    with pytest.raises(ValueError, match=match):
        train(TINY, _cfg(**kw), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_rl_huge_sizes_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="PPOConfig.num_envs=1000000000 .* memory"):
        ALGOS["ppo"][1](TINY, PPOConfig(num_envs=10**9, progress=False), tmp_path / "p")
    with pytest.raises(ValueError, match="SB3Config.lstm_hidden_size=1000000 .* memory"):
        ALGOS["sb3-recurrent-ppo"][1](
            TINY, SB3Config(lstm_hidden_size=10**6, progress=False), tmp_path / "s"
        )


def test_divergence_before_any_checkpoint_says_so(tmp_path, monkeypatch) -> None:
    real = agents.trainer.objective
    monkeypatch.setattr(
        agents.trainer, "objective", lambda *a: real(*a) * torch.tensor(float("nan"))
    )
    with pytest.raises(TrainingDivergedError, match="no checkpoint was written before it"):
        train(TINY, _cfg(checkpoint_every=100), tmp_path / "r")
    assert not (tmp_path / "r" / "checkpoint.pt").exists()
