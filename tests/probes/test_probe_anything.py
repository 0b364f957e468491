"""Recording agents from elsewhere: sb3-contrib RecurrentPPO, step-function agents, torch modules;
the docs page's examples run; recordings save and load without pickle."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from multitask_evidence import (
    envs,  # noqa: F401  (registers the ids)
    probes,
)
from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.probes.adapters import StepAgent, as_recordable

DOC = Path(__file__).parents[2] / "docs" / "probe_anything.md"
SPEC = TaskSpec(n_tasks=3, stimulus_steps=5)


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_page_has_one_example_per_kind_and_each_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = _doc_blocks()
    assert len(blocks) == 5
    spaces = []
    for i, code in enumerate(blocks):
        ns: dict = {}
        exec(compile(code, f"{DOC.name}[{i}]", "exec"), ns)  # noqa: S102 - the docs' own code
        spaces.append(ns)
    sb3, clean, module, saved, compared = spaces
    assert compared["c"].cka_p < 0.01 and 0.9 < compared["c"].cka <= 1
    assert sb3["rec"].hidden.shape == (512, 7, 16) and sb3["rec"].spec == SPEC
    assert -5 < sb3["ood"].r2_median <= 1
    assert clean["rec"].hidden.shape == (256, 7, 16) and clean["rec"].outputs.shape == (256, 7, 3)
    assert np.all((clean["rec"].outputs > 0) & (clean["rec"].outputs < 1))
    assert module["rec"].at().shape == (256, 16)
    assert (tmp_path / "recording.npz").is_file()


def _tiny_recurrent_ppo(**env_kwargs):
    torch.manual_seed(0)
    venv = make_vec_env("MultiTaskEvidence-v0", n_envs=1, seed=0, env_kwargs=env_kwargs)
    return RecurrentPPO(
        "MlpLstmPolicy",
        venv,
        n_steps=16,
        batch_size=16,
        seed=0,
        device="cpu",
        policy_kwargs={"lstm_hidden_size": 8, "net_arch": [8]},
    )


def test_sb3_hidden_is_the_actor_lstms_h_as_predict_carries_it():
    torch.set_num_threads(1)
    model = _tiny_recurrent_ppo(n_tasks=3, stimulus_steps=5)
    rec = probes.record(model, n=6, seed=4)  # spec read from the model's env
    assert rec.spec == SPEC
    obs = generate(SPEC, 6, np.random.default_rng(4)).obs
    state, start = None, np.ones(6, dtype=bool)
    for t in range(SPEC.n_steps):  # sb3's own stepping API, state reset at the trial start
        _, state = model.predict(obs[:, t], state=state, episode_start=start, deterministic=True)
        start = np.zeros(6, dtype=bool)
        np.testing.assert_allclose(rec.hidden[:, t], state[0][0], atol=1e-6)
    # outputs: P(answer 1) per task from the actor's categorical heads
    assert rec.outputs.shape == (6, SPEC.n_steps, 3)
    assert np.all((rec.outputs > 0) & (rec.outputs < 1))


def test_sb3_spec_checks():
    model = _tiny_recurrent_ppo(n_tasks=3, stimulus_steps=5)
    with pytest.raises(ValueError, match="obs_dim"):
        as_recordable(model, TaskSpec(n_tasks=3, latent_dim=3, encoder="none"))
    flat = PPO(
        "MlpPolicy", make_vec_env("MultiTaskEvidence-v0", n_envs=1), n_steps=16, batch_size=16
    )
    with pytest.raises(ValueError, match="no recurrent state"):
        as_recordable(flat, SPEC)


class Leaky(torch.nn.Module):
    """h_t = 0.5 h_{t-1} + obs_t[:3]; outputs sigmoid(h)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.seen_training = []

    def initial_state(self, batch_size):
        return torch.zeros(batch_size, 3)

    def step(self, obs, h):
        self.seen_training.append(self.training)
        h = 0.5 * h + self.scale * obs[:, :3]
        return h, torch.sigmoid(h), h


def test_step_module_values_eval_mode_and_state_reset():
    net = Leaky()
    rec = probes.record(net, SPEC, n=5, seed=2, batch_size=2)
    obs = generate(SPEC, 5, np.random.default_rng(2)).obs[:, :, :3].astype(np.float64)
    h, want = np.zeros((5, 3)), []
    for t in range(SPEC.n_steps):
        h = 0.5 * h + obs[:, t]
        want.append(h)
    want = np.stack(want, axis=1)
    np.testing.assert_allclose(rec.hidden, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rec.outputs, 1 / (1 + np.exp(-want)), rtol=1e-5)
    assert net.training and not any(net.seen_training)  # eval while recording, restored after


def test_plain_step_function_and_bad_agents():
    calls = []

    def step(obs, state):
        calls.append(state)
        return obs[:, :2], torch.full((obs.shape[0], 3), 0.5), state + 1

    rec = probes.record(as_recordable(step, SPEC, initial_state=lambda b: 0), n=4, seed=0)
    assert rec.hidden.shape == (4, SPEC.n_steps, 2) and np.all(rec.outputs == 0.5)
    assert calls == list(range(SPEC.n_steps))  # state threaded through, fresh per batch
    with pytest.raises(ValueError, match="initial_state"):
        as_recordable(step, SPEC)  # a bare callable without initial_state is not a step agent
    bad = StepAgent(lambda o, s: (o, s), lambda b: None, SPEC)
    with pytest.raises(ValueError, match="must return"):
        probes.record(bad, n=2)
    wrong = StepAgent(lambda o, s: (o[0], o, s), lambda b: None, SPEC)
    with pytest.raises(ValueError, match="hidden of shape"):
        probes.record(wrong, n=2)
    with pytest.raises(ValueError, match="cannot record"):
        probes.record(object(), SPEC, n=2)


def test_recording_file_is_plain_arrays(tmp_path):
    rec = probes.record(Leaky(), SPEC, n=8, seed=1)
    path = rec.save(tmp_path / "rec.npz")
    with np.load(path, allow_pickle=False) as z:  # raises if any entry needed unpickling
        assert {k: z[k].dtype.kind for k in z.files}["meta"] == "U"
        assert all(z[k].dtype != object for k in z.files)
    back = probes.load_recording(path)
    assert back.spec == SPEC and back.seed == 1
    for name in ("hidden", "outputs", "latent", "labels", "mu", "step", "period"):
        np.testing.assert_array_equal(getattr(back, name), getattr(rec, name))
