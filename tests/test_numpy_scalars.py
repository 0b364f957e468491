"""Numpy scalars are numbers wherever a number is accepted: configs store them as Python
numbers (so they write to JSON), env options and vector-env seeds take them, and a value that
is not an integer stays refused whatever its type."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest

import multitask_evidence  # noqa: F401 - registers the ids
from multitask_evidence import agents
from multitask_evidence.agents.rl import PPOConfig
from multitask_evidence.agents.rl.sb3 import SB3Config
from multitask_evidence.common.validate import check_int, check_number, plain
from multitask_evidence.envs import TaskSpec


def test_plain_and_the_checks() -> None:
    assert type(plain(np.int64(3))) is int and type(plain(np.float32(0.5))) is float
    assert plain(True) is True and plain("a") == "a" and plain(np.bool_(True)) == np.bool_(True)
    check_int("n", np.int32(4), 1)
    check_number("x", np.float64(0.3), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 2.5"):
        check_int("n", np.float64(2.5), 1)
    with pytest.raises(ValueError, match="x must be a finite number"):
        check_number("x", np.float64("nan"), 0.0, 1.0)


@pytest.mark.parametrize(
    ("cls", "field", "value", "kind"),
    [
        (agents.TrainConfig, "steps", np.int64(7), int),
        (agents.TrainConfig, "lr", np.float32(1e-3), float),
        (agents.TrainConfig, "hidden_size", np.int32(8), int),
        (PPOConfig, "num_envs", np.int64(4), int),
        (SB3Config, "n_steps", np.int64(32), int),
        (TaskSpec, "n_tasks", np.int16(6), int),
        (TaskSpec, "sigma", np.float32(0.25), float),
    ],
)
def test_configs_store_python_numbers(cls, field, value, kind) -> None:
    cfg = cls(**{field: value})
    assert type(getattr(cfg, field)) is kind and getattr(cfg, field) == pytest.approx(value)
    json.dumps(dataclasses.asdict(cfg))  # nothing numpy left to trip the writer


def test_env_options_and_vector_seeds_take_numpy_numbers() -> None:
    env = gym.make(
        "MultiTaskEvidence-v0",
        report="wager",
        sure_reward=np.float32(0.6),
        offer_prob=np.float64(0.5),
        n_tasks=4,
    )
    env.reset(seed=np.int64(3))
    kw = {"vectorization_mode": "vector_entry_point", "n_tasks": 4}
    a = gym.make_vec("MultiTaskEvidence-v0", 2, **kw)
    b = gym.make_vec("MultiTaskEvidence-v0", 2, **kw)
    obs_a, _ = a.reset(seed=[np.int64(1), np.int64(2)])
    obs_b, _ = b.reset(seed=[1, 2])
    np.testing.assert_array_equal(obs_a, obs_b)
