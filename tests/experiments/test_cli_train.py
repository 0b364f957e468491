"""`mte train`: help documents every option; tiny runs for every architecture; errors."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
import torch

from multitask_evidence.agents import TrainConfig, load
from multitask_evidence.envs import TaskSpec
from multitask_evidence.experiments.cli import main
from multitask_evidence.experiments.dataclass_args import field_docs

torch.set_num_threads(1)

TINY = [
    "--n-tasks",
    "3",
    "--sigma",
    "0.3",
    "--stimulus-steps",
    "6",
    "--steps",
    "4",
    "--batch-size",
    "8",
    "--eval-every",
    "2",
    "--eval-trials",
    "64",
    "--hidden-size",
    "8",
    "--n-heads",
    "2",
    "--no-progress",
]


def _main(argv: list[str], monkeypatch) -> int:
    # the agent options depend on --algo, which add_arguments reads from sys.argv
    monkeypatch.setattr(sys, "argv", ["mte", *argv])
    return main(argv)


def test_help_documents_every_field(monkeypatch, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        _main(["train", "--help"], monkeypatch)
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for f in dataclasses.fields(TaskSpec):
        if f.name != "extra":
            flag = "--task-seed" if f.name == "seed" else "--" + f.name.replace("_", "-")
            assert flag in out, flag
    docs = field_docs(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        assert f.name in docs and docs[f.name], f"TrainConfig.{f.name} has no docstring"
        if f.name != "algo":
            assert "--" + f.name.replace("_", "-") in out
            assert docs[f.name].split()[0] in out
    for flag in ("--algo", "--name", "--runs-dir", "--resume"):
        assert flag in out
    assert "Adam learning rate" in out and "from preset" in out


@pytest.mark.parametrize("arch", ["rnn", "rnn_nonleaky", "gru", "lstm", "transformer"])
def test_train_every_arch(arch: str, tmp_path, monkeypatch, capsys) -> None:
    rc = _main(
        ["train", *TINY, "--arch", arch, "--name", "r", "--runs-dir", str(tmp_path)], monkeypatch
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "r") in out and "tensorboard --logdir" in out
    spec = TaskSpec.from_json((tmp_path / "r" / "spec.json").read_text())
    assert (spec.n_tasks, spec.sigma, spec.stimulus_steps) == (3, 0.3, 6)
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["arch"] == arch and cfg["steps"] == 4 and cfg["batch_size"] == 8
    assert load(tmp_path / "r").network.hidden_size == 8


def test_existing_run_and_resume(tmp_path, monkeypatch, capsys) -> None:
    argv = ["train", *TINY, "--name", "r", "--runs-dir", str(tmp_path)]
    assert _main(argv, monkeypatch) == 0
    assert _main(argv, monkeypatch) == 2
    assert "already exists" in capsys.readouterr().err
    assert _main([*argv, "--resume"], monkeypatch) == 0


def test_resume_reads_the_stored_run(tmp_path, monkeypatch, capsys) -> None:
    argv = ["train", *TINY, "--name", "r", "--runs-dir", str(tmp_path)]
    assert _main(argv, monkeypatch) == 0
    stored = (tmp_path / "r" / "config.json").read_text()
    # only the name: the task and config come from the folder, not from the defaults
    assert (
        _main(["train", "--name", "r", "--runs-dir", str(tmp_path), "--resume"], monkeypatch) == 0
    )
    assert (tmp_path / "r" / "config.json").read_text() == stored
    assert TaskSpec.from_json((tmp_path / "r" / "spec.json").read_text()).n_tasks == 3
    assert _main(["train", "--resume", "--runs-dir", str(tmp_path)], monkeypatch) == 2
    assert "--resume needs --name" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch", "mamba"], "arch must be one of"),
        (["--arch", "transformer", "--hidden-size", "9", "--n-heads", "2"], "n_heads must divide"),
        (["--sigma", "-1"], "sigma"),
    ],
)
def test_bad_arguments(extra, message, tmp_path, monkeypatch, capsys) -> None:
    assert _main(["train", *TINY, *extra, "--runs-dir", str(tmp_path)], monkeypatch) == 2
    assert message in capsys.readouterr().err


def test_rl_algo_options(monkeypatch, capsys) -> None:
    pytest.importorskip("multitask_evidence.agents.rl")
    with pytest.raises(SystemExit):
        _main(["train", "--algo", "ppo", "--help"], monkeypatch)
    out = capsys.readouterr().out
    assert "PPOConfig fields" in out and "--n-tasks" in out
