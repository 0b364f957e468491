"""The registered ids in Stable-Baselines3's own tooling: make_vec_env and sb3-contrib's
RecurrentPPO straight from the id (no project wrappers)."""

from __future__ import annotations

import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env

from multitask_evidence import envs  # noqa: F401  (registers the ids)


def test_make_vec_env_plays_trials():
    venv = make_vec_env("MultiTaskEvidence-v0", n_envs=2, seed=0)
    obs = venv.reset()
    assert obs.shape == (2, 41) and venv.action_space.nvec.tolist() == [2] * 24
    ends = 0
    for _ in range(22):
        obs, reward, done, info = venv.step(np.stack([venv.action_space.sample()] * 2))
        ends += int(done.sum())
    assert ends == 2  # one trial of 22 steps each, never cut short
    assert all(0.0 <= i["episode"]["r"] <= 1.0 for i in info)  # Monitor's episode return
    assert not any(i.get("TimeLimit.truncated") for i in info)
    venv.close()


def test_recurrent_ppo_learns_a_few_steps():
    torch.set_num_threads(1)
    venv = make_vec_env(
        "MultiTaskEvidence-v0", n_envs=2, seed=0, env_kwargs={"n_tasks": 3, "stimulus_steps": 4}
    )
    model = RecurrentPPO(
        "MlpLstmPolicy",
        venv,
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"lstm_hidden_size": 8, "net_arch": [8], "n_lstm_layers": 1},
    )
    model.learn(256)
    assert model.num_timesteps == 256
    action, state = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (2, 3) and state[0].shape == (1, 2, 8)
    venv.close()
