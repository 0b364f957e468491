"""The algorithm registry (``agents.algos.ALGOS``): a new algorithm is one ``register`` call,
after which ``mte train --algo``, the sweep grid's ``algo`` axis, the sweep point's training,
``agents.load`` and ``agents.untrained`` all know it."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from multitask_evidence import agents
from multitask_evidence.agents.algos import ALGOS, Algo, for_kind, get, register, unregister
from multitask_evidence.agents.run import (
    MODEL_FILE,
    load_state,
    prepare_run_dir,
    read_config,
    read_spec,
)
from multitask_evidence.common.files import atomic_torch_save
from multitask_evidence.envs import TaskSpec
from multitask_evidence.experiments.cli import main
from multitask_evidence.experiments.point import train_point
from multitask_evidence.experiments.sweep import default_config_class, parse_grid

TINY = {"n_tasks": 2, "sigma": 0.3, "stimulus_steps": 4}


@dataclass
class ToyConfig:
    """A linear read-out of the observation (a stand-in algorithm)."""

    hidden_size: int = 4
    """Units of the linear map."""
    seed: int = 0
    """Seed of the weights."""
    progress: bool = True
    """Unused (the registry's sweep point turns it off)."""

    def __post_init__(self) -> None:
        if self.hidden_size < 1:
            raise ValueError(f"ToyConfig.hidden_size must be >= 1, got {self.hidden_size!r}")


@dataclass
class ToyAgent:
    net: torch.nn.Linear
    spec: TaskSpec
    config: ToyConfig
    final: dict[str, Any] = dataclasses.field(default_factory=dict)

    def hidden_and_outputs(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            h = self.net(torch.as_tensor(obs, dtype=torch.float32))
        return h.numpy(), h[..., : self.spec.n_tasks].numpy()


def _build(spec: TaskSpec, config: ToyConfig) -> torch.nn.Linear:
    torch.manual_seed(config.seed)
    return torch.nn.Linear(spec.obs_dim, config.hidden_size)


def toy_train(spec: TaskSpec, config: ToyConfig, run_dir: Any = None, resume: bool = False):
    path, _ = prepare_run_dir(run_dir, "toy", spec, config, resume, MODEL_FILE)
    net = _build(spec, config)
    atomic_torch_save(net.state_dict(), path / MODEL_FILE)
    return ToyAgent(net, spec, config, final={"acc": 0.5, "step": 1})


def toy_load(run_dir: Any, device: str = "cpu") -> ToyAgent:
    spec, config = read_spec(run_dir), read_config(run_dir, ToyConfig, "toy")
    net = _build(spec, config)
    load_state(net, Path(run_dir) / MODEL_FILE)
    return ToyAgent(net, spec, config)


def toy_untrained(agent: ToyAgent) -> ToyAgent:
    with torch.random.fork_rng(devices=[]):
        return ToyAgent(_build(agent.spec, agent.config), agent.spec, agent.config)


@pytest.fixture
def toy():
    algo = register(Algo("toy", ToyConfig, toy_train, toy_load, "toy", toy_untrained))
    yield algo
    unregister("toy")
    assert "toy" not in ALGOS


def test_registry_holds_every_algorithm() -> None:
    assert list(ALGOS)[:3] == ["supervised", "ppo", "sb3-recurrent-ppo"]
    assert get("supervised").config_cls is agents.TrainConfig
    assert for_kind("sb3").name == "sb3-recurrent-ppo"
    # the RL package's (config, train) pairs are read from the same entries
    from multitask_evidence.agents.rl import ALGOS as RL

    assert RL == {n: (a.config_cls, a.train) for n, a in ALGOS.items() if n != "supervised"}
    with pytest.raises(ValueError, match="algo must be one of"):
        get("nope")
    with pytest.raises(ValueError, match="already registered"):
        register(ALGOS["ppo"])


def test_a_registered_algorithm_is_known_everywhere(toy, tmp_path, monkeypatch, capsys) -> None:
    # the sweep resolves it by name from the grid
    assert default_config_class("toy") is ToyConfig
    grid = parse_grid({"algo": ["toy"], "hidden_size": [3, 5], **TINY})
    points = grid.points()
    assert [(p.algo, p.agent["hidden_size"]) for p in points] == [("toy", 3), ("toy", 5)]
    with pytest.raises(ValueError, match="hidden_size must be >= 1"):
        parse_grid({"algo": ["toy"], "hidden_size": [0]})

    # the sweep point trains it
    final = train_point(points[0], tmp_path / "point")
    assert final == {"acc": 0.5, "step": 1}
    stored = json.loads((tmp_path / "point" / "config.json").read_text())
    assert stored == {"kind": "toy", "hidden_size": 3, "seed": 0, "progress": False}

    # mte train --algo toy parses its options and trains it
    argv = ["train", "--algo", "toy", "--hidden-size", "6", "--n-tasks", "2",
            "--runs-dir", str(tmp_path), "--name", "cli"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["mte", *argv])
    assert main(argv) == 0
    assert "training toy" in capsys.readouterr().out

    # agents.load / agents.untrained dispatch to it by kind and by config
    loaded = agents.load(tmp_path / "cli")
    assert isinstance(loaded, ToyAgent) and loaded.config == ToyConfig(hidden_size=6)
    fresh = agents.untrained(loaded)
    for a, b in zip(fresh.net.parameters(), loaded.net.parameters()):
        assert torch.equal(a, b)  # the toy "trains" nothing: untrained == trained weights
