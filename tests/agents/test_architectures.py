"""The architecture registry: a network added by one ``register_architecture`` call trains with
the normal trainer, takes its recipe from the registry, saves, loads and is probed; bad
registrations are refused with one line."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from multitask_evidence import agents
from multitask_evidence.agents import TrainConfig
from multitask_evidence.agents.architectures import (
    ARCHS,
    register_architecture,
    unregister_architecture,
)
from multitask_evidence.agents.config import MODEL_DEFAULTS, PRESETS
from multitask_evidence.agents.networks import RecurrentCore
from multitask_evidence.envs import TaskSpec, generate

torch.set_num_threads(1)

SPEC = TaskSpec(n_tasks=2, sigma=0.1, stimulus_steps=5, encoder="none", targets="decision_only")


class LinearRecurrent(RecurrentCore):
    """h_t = W_rec h_{t-1} + W_in u_t + b: one linear recurrent layer (a learnable integrator)."""

    def __init__(self, obs_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.obs_dim, self.hidden_size = obs_dim, hidden_size
        self.inp = nn.Linear(obs_dim, hidden_size)
        self.rec = nn.Linear(hidden_size, hidden_size, bias=False)
        with torch.no_grad():
            self.rec.weight.copy_(0.5 * torch.eye(hidden_size))

    def initial_state(self, batch_size: int, device: Any = None) -> Tensor:
        return torch.zeros(batch_size, self.hidden_size, device=device or self.inp.weight.device)

    def step(self, obs_t: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h = self.rec(state) + self.inp(obs_t)
        return h, h

    def forward(self, obs: Tensor) -> Tensor:
        h, out = self.initial_state(obs.shape[0], obs.device), []
        for t in range(obs.shape[1]):
            h, _ = self.step(obs[:, t], h)
            out.append(h)
        return torch.stack(out, dim=1)


def build_linear(obs_dim: int, hidden_size: int, **_: Any) -> RecurrentCore:
    return LinearRecurrent(obs_dim, hidden_size)


@pytest.fixture
def linear_arch():
    entry = register_architecture(
        "linear_rnn",
        build_linear,
        summary="one linear recurrent layer",
        recipes={
            "paper": {"steps": 500},
            "default": {"steps": 60, "batch_size": 64, "lr": 1e-2, "eval_every": 20},
        },
    )
    try:
        yield entry
    finally:
        unregister_architecture("linear_rnn")


def test_registered_architecture_trains_saves_loads_and_probes(linear_arch, tmp_path) -> None:
    # the registry is the one place: choices, presets and model defaults all see the new entry
    assert "linear_rnn" in ARCHS and list(ARCHS)[-1] == "linear_rnn"
    assert PRESETS["default"]["steps"]["linear_rnn"] == 60
    assert PRESETS["default"]["batch_size"]["linear_rnn"] == 64
    assert PRESETS["default"]["batch_size"]["transformer"] == 32  # others keep theirs
    assert PRESETS["paper"]["batch_size"] == 16  # a shared value stays one value
    assert MODEL_DEFAULTS["dropout"]["linear_rnn"] == 0.0

    cfg = TrainConfig(arch="linear_rnn", hidden_size=8, eval_trials=512, progress=False,
                      device="cpu")  # fmt: skip
    resolved = cfg.resolve()
    assert (resolved.steps, resolved.batch_size, resolved.lr) == (60, 64, 1e-2)
    assert (resolved.schedule, resolved.grad_clip) == ("cosine", 1.0)  # the preset's shared values

    run = agents.train(SPEC, cfg, tmp_path / "run")
    losses = [m["loss"] for m in run.metrics]
    assert [m["step"] for m in run.metrics] == [20, 40, 60]
    assert losses[-1] < 0.5 * losses[0], losses  # measured 0.61 -> 0.18
    assert run.final["frac_ideal"] > 0.9, run.final  # measured 0.99

    loaded = agents.load(tmp_path / "run")
    assert isinstance(loaded.network.core, LinearRecurrent)
    assert loaded.config.arch == "linear_rnn" and loaded.config.steps == 60
    obs = generate(SPEC, 64, np.random.default_rng(0)).obs
    h_run, y_run = run.hidden_and_outputs(obs)
    h_load, y_load = loaded.hidden_and_outputs(obs)
    np.testing.assert_array_equal(h_run, h_load)
    np.testing.assert_array_equal(y_run, y_load)
    assert h_load.shape == (64, SPEC.n_steps, 8)

    # the step-wise form gives the forward numbers (what RL rollouts would use)
    core = loaded.network.core
    x = torch.from_numpy(obs[:4])
    state, steps = core.initial_state(4), []
    with torch.no_grad():
        for t in range(x.shape[1]):
            h, state = core.step(x[:, t], state)
            steps.append(h)
        torch.testing.assert_close(torch.stack(steps, 1), core(x))

    # the untrained control is built through the registry too, and differs from the trained net
    fresh = agents.untrained(loaded)
    assert isinstance(fresh.network.core, LinearRecurrent)
    assert not np.allclose(fresh.hidden_and_outputs(obs)[0], h_load)

    from multitask_evidence.probes import probe_run

    report = probe_run(tmp_path / "run", n=1024, fixed_points=False, tuning=False,
                       figures=False, tensorboard=False, over_time=False)  # fmt: skip
    head = report.to_dict()["headline"]
    # a linear integrator of the evidence holds x* linearly: at the theory's ceiling (measured
    # 0.968 against 0.976), trained or not (0.951 untrained)
    assert head["ceiling"] - 0.03 < head["ood_r2_median"] <= 1.0, head
    assert head["untrained_ood_r2"] > 0.85, head


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(name="rnn"), "already registered"),
        (dict(name="bad name"), "identifier"),
        (dict(build=3), "build must be callable"),
        (dict(recipes={"paper": {"steps": 1}}), r"recipes must give every preset"),
        (dict(recipes={"paper": {"steps": 1}, "default": {"lr": 1}}), "must set 'steps'"),
        (dict(recipes={"paper": {"steps": 1}, "default": {"steps": 1, "momentum": 0.9}}),
         "may set"),  # fmt: skip
        (dict(recipes={"paper": {"steps": 0}, "default": {"steps": 1}}), r"\['steps'\] must be"),
        (dict(model={"dropout": 1.5}), r"model\['dropout'\] must be"),
        (dict(model={"width": 3}), "model may set"),
        (dict(inits=("default",), model={"init": "orthogonal"}), r"model\['init'\] must be"),
    ],
)
def test_bad_registrations_are_one_line(kw: dict, match: str) -> None:
    args = dict(
        name="toy_bad",
        build=build_linear,
        summary="x",
        recipes={"paper": {"steps": 1}, "default": {"steps": 1}},
    ) | kw
    name, build = args.pop("name"), args.pop("build")
    with pytest.raises(ValueError, match=match) as err:
        register_architecture(name, build, **args)
    assert "\n" not in str(err.value)
    assert "toy_bad" not in ARCHS and "bad name" not in ARCHS


def test_architecture_checks_apply_to_every_config() -> None:
    from multitask_evidence.agents.rl.ppo_config import PPOConfig

    for cls in (TrainConfig, PPOConfig):
        with pytest.raises(ValueError, match=f"{cls.__name__}.n_heads must divide hidden_size"):
            cls(arch="transformer", hidden_size=10, n_heads=4)
        with pytest.raises(ValueError, match=rf"{cls.__name__}.init must be one of \['default', "
                                             r"'torch'\] for arch='transformer'"):  # fmt: skip
            cls(arch="transformer", init="identity")
        with pytest.raises(ValueError, match=f"{cls.__name__}.arch must be one of"):
            cls(arch="mamba")
