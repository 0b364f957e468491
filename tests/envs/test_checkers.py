"""Gymnasium's and SB3's env checkers over every registered id and a matrix of variants."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from multitask_evidence import envs

SMALL = {"n_tasks": 6, "stimulus_steps": 5}

VARIANTS = [
    {"boundaries": "lines"},
    {"boundaries": "random", "latent_dim": 2, "offset_scale": 0.2},
    {"boundaries": "hyperbolic", "n_tasks": 8},
    {"boundaries": "circles"},
    {"prior": "correlated", "rho": 0.5},
    {"noise": "anisotropic"},
    {"noise": "ar1"},
    {"noise": "gumbel"},
    {"encoder": "none"},
    {"encoder": "quadratic"},
    {"encoder": "place_cells", "encoder_scale": 0.3},
    {"targets": "latent"},
    {"encoder": "place_cells", "noise_stage": "features", "sigma": 1.0},
    {"encoder": "fourier", "encoder_mix": True, "noise_stage": "features", "sigma": 0.5},
    {"encoder": "place_cells", "noise_stage": "features", "sigma": 1.0, "report": "confidence"},
    {"encoder": "place_cells", "noise_stage": "features", "sigma": 1.0, "response": "free"},
    {"latent_dim": 1},
    {"latent_dim": 5},
    {"latent_dim": 5, "boundaries": "circles", "encoder": "none"},
    {"delay_steps": 2, "decision_steps": 2, "fixation_steps": 0},
    {"report": "wager", "offer_prob": 0.5},
    {"report": "wager", "response": "free", "evidence_cost": 0.01},
    {"report": "confidence", "scoring": "brier"},
    {"report": "confidence", "response": "free"},
    {"response": "free", "latent_dim": 5},
]
# SB3's checker recommends a symmetric [-1, 1] Box for continuous actions; the confidence report
# is a probability in [0, 1] by design, so that one recommendation is expected.
SB3_EXPECTED = ("symmetric and normalized Box action space",)


def _gym_check(env: gym.Env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        check_env(env.unwrapped, skip_render_check=True)


def _sb3_check(env: gym.Env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(env)
    unexpected = [
        str(w.message) for w in caught if not any(e in str(w.message) for e in SB3_EXPECTED)
    ]
    assert not unexpected, unexpected


@pytest.mark.parametrize("env_id", list(envs.ENV_IDS))
def test_registered_ids_pass_checkers(env_id: str) -> None:
    env = gym.make(env_id)
    task = env.unwrapped.task_spec
    assert (task.latent_dim, task.n_tasks, task.sigma, task.stimulus_steps) == (2, 24, 0.2, 20)
    assert task.encoder == "relu_mlp" and env.observation_space.shape == (41,)
    _gym_check(env)
    _sb3_check(gym.make(env_id))


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v))
def test_variants_pass_checkers(variant: dict) -> None:
    kwargs = SMALL | variant
    env = gym.make("MultiTaskEvidence-v0", **kwargs)
    _gym_check(env)
    _sb3_check(gym.make("MultiTaskEvidence-v0", **kwargs))
    # a few random trials, every observation inside the space, rewards within the score range
    e = env.unwrapped
    e.action_space.seed(0)
    e.reset(seed=1)
    for _ in range(60):
        obs, r, term, trunc, info = e.step(e.action_space.sample())
        assert e.observation_space.contains(obs) and np.isfinite(r) and not trunc
        if term:
            assert info["latent"].shape == (e.task_spec.latent_dim,)
            e.reset()


def test_vector_env_spaces_and_metadata() -> None:
    for env_id in envs.ENV_IDS:
        venv = gym.make_vec(env_id, 3, vectorization_mode="vector_entry_point", **SMALL)
        assert isinstance(venv.unwrapped, envs.MultiTaskEvidenceVectorEnv)
        assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
        single = gym.make(env_id, **SMALL)
        assert venv.single_action_space == single.action_space
        assert venv.single_observation_space == single.observation_space
        obs, info = venv.reset(seed=0)
        assert venv.observation_space.contains(obs)
        obs, r, term, trunc, info = venv.step(venv.action_space.sample())
        assert venv.observation_space.contains(obs) and r.shape == (3,)
