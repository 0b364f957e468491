"""A damaged run folder is refused on resume, load and probe with one ValueError naming the file
and the field: checkpoints that are not dicts of training state, counters outside the run's
length, non-finite training times, optimizer state of other shapes; config.json fields that are
not plain finite values; metrics rows without their step counter. Nothing is written to a
folder whose resume is refused."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from multitask_evidence.agents import load, train
from multitask_evidence.agents.ensemble import default_ensemble_dir, train_ensemble
from multitask_evidence.agents.ensemble.trainer import ensemble_members
from multitask_evidence.agents.rl import ALGOS
from multitask_evidence.agents.rl import load as rl_load
from multitask_evidence.agents.run import read_metrics
from multitask_evidence.experiments.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_agents_bad_input as bad_input  # noqa: E402
import test_payloads as payloads  # noqa: E402

torch.set_num_threads(1)

# the run folders of those modules, trained once per module here too: a finished supervised run
# (4 steps, 2 tasks) copied per test, and one run of each kind (supervised, ppo, sb3)
TINY, RL_TINY, _cfg = bad_input.TINY, payloads.TINY, bad_input._cfg
run_dir, copy, trained = bad_input.run_dir, bad_input.copy, payloads.trained


def _refused(action: Any, path: Path, *patterns: str) -> str:
    """The one ValueError ``action()`` raises: it names ``path`` and matches ``patterns``."""
    with pytest.raises(ValueError) as err:
        action()
    msg = str(err.value)
    assert str(path) in msg, msg
    for pattern in patterns:
        assert re.search(pattern, msg), (pattern, msg)
    return msg


def _edit_checkpoint(path: Path, edit: Any) -> None:
    """Rewrite the checkpoint at ``path`` as ``edit(its content)``."""
    torch.save(edit(torch.load(path, weights_only=True)), path)


def _resume(d: Path) -> Any:
    return train(TINY, _cfg(), d, resume=True)


def _with(key: str, value: Any) -> Any:
    return lambda ck: {**ck, key: value}


def _bad_moment(ck: dict) -> dict:
    """Adam's first moment of the first parameter in the wrong shape."""
    state = ck["optimizer"]["state"]
    state[next(iter(state))]["exp_avg"] = torch.zeros(3, 3)
    return ck


def _nan_moment(ck: dict) -> dict:
    """Adam's second moment of the first parameter holding a NaN."""
    state = ck["optimizer"]["state"]
    state[next(iter(state))]["exp_avg_sq"].view(-1)[0] = float("nan")
    return ck


def _bad_setting(key: str, value: Any) -> Any:
    def edit(ck: dict) -> dict:
        ck["optimizer"]["param_groups"][0][key] = value
        return ck

    return edit


# ---- supervised checkpoints --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda ck: torch.zeros(3), r"not a valid training checkpoint .*got Tensor"),
        (lambda ck: [ck], r"not a valid training checkpoint .*got list"),
        (lambda ck: {k: v for k, v in ck.items() if k != "np_rng"}, r"an incomplete training checkpoint \(fields \['np_rng'\] missing"),
        (_with("step", -5), r"step must be an integer >= 0, got -5"),
        (_with("step", 10**9), r"step must be at most 4 \(TrainConfig.steps"),
        (_with("step", "x"), r"step must be an integer >= 0, got 'x'"),
        (_with("step", 2.5), r"step must be an integer >= 0, got 2.5"),
        (_with("step", True), r"step must be an integer >= 0, got True"),
        (_with("train_seconds", float("nan")), r"train_seconds must be a finite number >= 0"),
        (_with("train_seconds", float("inf")), r"train_seconds must be a finite number >= 0"),
        (_with("train_seconds", -1.0), r"train_seconds must be a finite number >= 0"),
        (_bad_moment, r"optimizer state 'exp_avg' of parameter 0 .*shape \(24, 3\), got \(3, 3\)"),
        (_nan_moment, r"optimizer state 'exp_avg_sq' of parameter 0 .*must be finite"),
        (_with("optimizer", torch.zeros(2)), r"optimizer must be an optimizer state dict"),
        (_bad_setting("betas", (0.9, float("nan"))), r"optimizer setting 'betas'"),
        (_bad_setting("lr", "fast"), r"optimizer setting 'lr'"),
        (_bad_setting("params", [0]), r"optimizer state does not fit"),
        (_with("model", {"w": torch.zeros(2)}), r"the weights do not fit the network"),
        (_with("np_rng", torch.zeros(3)), r"np_rng / torch_rng are not RNG states"),
        (_with("np_rng", 5), r"np_rng / torch_rng are not RNG states"),
        (_with("torch_rng", torch.zeros(3)), r"np_rng / torch_rng are not RNG states"),
    ],
)  # fmt: skip
def test_bad_supervised_checkpoints_are_named(copy, edit, pattern) -> None:
    path = copy / "checkpoint.pt"
    _edit_checkpoint(path, edit)
    log = (copy / "metrics.jsonl").read_bytes()
    _refused(lambda: _resume(copy), path, pattern)
    assert (copy / "metrics.jsonl").read_bytes() == log, "a refused resume wrote to the folder"


def test_a_bare_tensor_in_model_pt_is_named(copy) -> None:
    torch.save(torch.zeros(3), copy / "model.pt")
    _refused(lambda: load(copy), copy / "model.pt", "expected a state dict, got Tensor")


# ---- config.json -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "text", "pattern"),
    [
        ("hidden_size", "[8]", r"field 'hidden_size' must be a number, string, true/false or null"),
        ("lr", "1e400", r"field 'lr' must be a finite number, got inf"),
        ("seed", '{"a": 1}', r"field 'seed' must be a number, string"),
        ("kind", "5", r"field 'kind' must be a string"),
    ],
)  # fmt: skip
def test_config_fields_that_are_not_plain_values_are_named(copy, field, text, pattern) -> None:
    path = copy / "config.json"
    raw = json.loads(path.read_text())
    raw[field] = "PLACEHOLDER"
    path.write_text(json.dumps(raw).replace('"PLACEHOLDER"', text))
    for action in (lambda: _resume(copy), lambda: load(copy)):
        _refused(action, path, pattern)


def test_a_deeply_nested_config_is_named(copy) -> None:
    path = copy / "config.json"
    path.write_text('{"hidden_size": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _refused(lambda: load(copy), path, "nested too deeply")


# ---- metrics.jsonl -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rows", "pattern"),
    [
        ('{"loss": 1.0}\n', r"line 1 has no 'step' field"),
        ('{"step": 2}\n{"step": "4"}\n', r"line 2: field 'step' must be an integer >= 0, got '4'"),
        ('{"step": -2}\n', r"line 1: field 'step' must be an integer >= 0, got -2"),
        ('{"step": 2.0}\n', r"line 1: field 'step' must be an integer >= 0, got 2.0"),
        ('{"step": null}\n', r"line 1: field 'step' must be an integer >= 0, got None"),
    ],
)
def test_metrics_rows_without_their_step_are_named(copy, rows, pattern) -> None:
    path = copy / "metrics.jsonl"
    path.write_text(rows)
    _refused(lambda: read_metrics(copy), path, pattern)
    _refused(lambda: _resume(copy), path, pattern)
    assert path.read_text() == rows, "a refused resume rewrote the log"


# ---- probe (the CLI checks the folder before recording anything) ------------------------------
@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("config.json", "LIST", r"config.json: field 'hidden_size' must be a number"),
        ("config.json", "HUGE", r"config.json: field 'hidden_size' must be a finite number"),
        ("metrics.jsonl", '{"loss": 1.0}\n', r"metrics.jsonl: line 1 has no 'step' field"),
        ("metrics.jsonl", '{"step": "x"}\n', r"metrics.jsonl: line 1: field 'step' must be an"),
    ],
)
def test_probe_names_the_damaged_file(copy, name, content, pattern, capsys) -> None:
    path = copy / name
    if name == "config.json":
        raw = json.loads(path.read_text())
        raw["hidden_size"] = "PLACEHOLDER"
        value = "[8]" if content == "LIST" else "1e400"
        content = json.dumps(raw).replace('"PLACEHOLDER"', value)
    path.write_text(content)
    args = ["probe", str(copy), "--n", "64", "--shuffles", "0", "--no-figures"]
    assert main([*args, "--no-fixed-points", "--no-tuning", "--no-tensorboard"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mte probe: error: ") and str(path) in err, err
    assert re.search(pattern, err), err
    assert not (copy / "probe.json").exists()


# ---- RL checkpoints ----------------------------------------------------------------------------
def _rl_resume(kind: str, d: Path) -> Any:
    if kind == "ppo":
        return ALGOS["ppo"][1](RL_TINY, payloads._ppo_cfg(), d, True)
    return ALGOS["sb3-recurrent-ppo"][1](RL_TINY, payloads._sb3_cfg(), d, True)


def _bad_rl_moment(key: str) -> Any:
    def edit(ck: dict) -> dict:
        state = ck[key]["state"]
        state[next(iter(state))]["exp_avg"] = torch.zeros(1)
        return ck

    return edit


@pytest.mark.parametrize(
    ("kind", "edit", "pattern"),
    [
        ("ppo", lambda ck: torch.zeros(3), r"not a valid PPO checkpoint .*got Tensor"),
        ("ppo", _with("update", -1), r"update must be an integer >= 0, got -1"),
        ("ppo", _with("update", 10**9), r"update must be at most \d+ \(the updates in PPOConfig.total_steps"),
        ("ppo", _with("env_steps", 10**9), r"env_steps must be at most \d+ \(\d+ updates of at most"),
        ("ppo", _with("train_seconds", float("nan")), r"train_seconds must be a finite number"),
        ("ppo", _bad_rl_moment("optimizer"), r"optimizer state 'exp_avg' .*got \(1,\)"),
        ("sb3", lambda ck: torch.zeros(3), r"not a valid sb3 training checkpoint .*got Tensor"),
        ("sb3", _with("num_timesteps", -5), r"num_timesteps must be an integer >= 0"),
        ("sb3", _with("num_timesteps", 10**9), r"num_timesteps must be at most \d+ \(SB3Config"),
        ("sb3", _with("n_updates", "7"), r"n_updates must be an integer >= 0, got '7'"),
        ("sb3", _with("train_seconds", float("nan")), r"train_seconds must be a finite number"),
        ("sb3", _with("last_obs", torch.zeros(5, 5)), r"last_obs must be a tensor of shape"),
        ("sb3", _with("lstm", [torch.zeros(1)] * 4), r"lstm\[0\] must be a tensor of shape"),
        ("sb3", _bad_rl_moment("optimizer"), r"optimizer state 'exp_avg' .*got \(1,\)"),
        ("sb3", _with("torch_rng", torch.zeros(3)), r"not a complete sb3 training checkpoint"),
        ("sb3", _with("envs", 5), r"not a complete sb3 training checkpoint"),
    ],
)  # fmt: skip
def test_bad_rl_checkpoints_are_named(trained, tmp_path, kind, edit, pattern) -> None:
    d = tmp_path / kind
    shutil.copytree(trained[kind], d)
    path = d / ("checkpoint.pt" if kind == "ppo" else "sb3_checkpoint.pt")
    _edit_checkpoint(path, edit)
    _refused(lambda: _rl_resume(kind, d), path, pattern)


@pytest.mark.parametrize(("kind", "key"), [("ppo", "update"), ("sb3", "env_steps")])
def test_rl_metrics_rows_without_their_counter_are_named(trained, tmp_path, kind, key) -> None:
    d = tmp_path / kind
    shutil.copytree(trained[kind], d)
    (d / "metrics.jsonl").write_text(f'{{"{key}": "1"}}\n')
    pattern = rf"line 1: field '{key}' must be an integer >= 0"
    _refused(lambda: read_metrics(d), d / "metrics.jsonl", pattern)
    _refused(lambda: _rl_resume(kind, d), d / "metrics.jsonl", pattern)


def test_rl_config_fields_that_are_not_plain_values_are_named(trained, tmp_path) -> None:
    d = tmp_path / "ppo"
    shutil.copytree(trained["ppo"], d)
    raw = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**raw, "hidden_size": [8]}))
    for action in (lambda: rl_load(d), lambda: _rl_resume("ppo", d)):
        _refused(action, d / "config.json", r"field 'hidden_size' must be a number")


# ---- ensembles ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> tuple[list, list, list[Path]]:
    """(specs, configs, member folders) of a finished two-member ensemble (4 steps)."""
    root = tmp_path_factory.mktemp("ens")
    specs, cfgs = ensemble_members(TINY, _cfg(), seeds=[1, 2])
    dirs = [root / "m0", root / "m1"]
    train_ensemble(specs, cfgs, dirs)
    return specs, cfgs, dirs


def _copy_ensemble(ensemble: tuple, tmp_path: Path) -> tuple[list, list, list[Path], Path]:
    specs, cfgs, dirs = ensemble
    shutil.copytree(dirs[0].parent, tmp_path / "ens")
    new = [tmp_path / "ens" / d.name for d in dirs]
    return specs, cfgs, new, default_ensemble_dir(new) / "ensemble_checkpoint.pt"


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda ck: torch.zeros(3), r"not a valid ensemble checkpoint .*got Tensor"),
        (_with("step", -5), r"step must be an integer >= 0, got -5"),
        (_with("step", 10**9), r"step must be at most 4"),
        (_with("train_seconds", float("nan")), r"train_seconds must be a finite number"),
        (_bad_moment, r"optimizer state 'exp_avg' of parameter 0 .*\(2, 24, 3\), got \(3, 3\)"),
    ],
)
def test_bad_joint_checkpoints_are_named(ensemble, tmp_path, edit, pattern) -> None:
    specs, cfgs, dirs, joint = _copy_ensemble(ensemble, tmp_path)
    _edit_checkpoint(joint, edit)
    _refused(lambda: train_ensemble(specs, cfgs, dirs, resume=True), joint, pattern)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda ck: torch.zeros(3), r"not a valid training checkpoint .*got Tensor"),
        (_with("step", 10**9), r"step must be at most 4"),
        (_bad_moment, r"optimizer state 'exp_avg' of parameter 0 .*shape \(24, 3\), got \(3, 3\)"),
    ],
)
def test_bad_member_checkpoints_are_named(ensemble, tmp_path, edit, pattern) -> None:
    specs, cfgs, dirs, joint = _copy_ensemble(ensemble, tmp_path)
    joint.unlink()  # resume from the members' own checkpoints
    path = dirs[1] / "checkpoint.pt"
    _edit_checkpoint(path, edit)
    _refused(lambda: train_ensemble(specs, cfgs, dirs, resume=True), path, pattern)
