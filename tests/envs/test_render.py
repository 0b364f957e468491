"""Rendering the trial (rgb_array / human), the episode length Gymnasium sees, and the checker."""

from __future__ import annotations

import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from multitask_evidence import envs
from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.envs.ideal import IdealObserver
from multitask_evidence.envs.render import (
    RENDER_FPS,
    RENDER_SHAPE,
    display_available,
    report_values,
)

SMALL = {"n_tasks": 4, "stimulus_steps": 4}


@pytest.mark.parametrize("env_id", sorted(envs.ENV_IDS))
def test_rgb_array_frame_of_the_trial_so_far(env_id):
    env = gym.make(env_id, render_mode="rgb_array", **SMALL)
    env.reset(seed=0)
    wait = np.zeros(env.action_space.shape, dtype=env.action_space.dtype)  # never commits
    env.step(wait)
    first = env.render()
    for _ in range(2):
        env.step(wait)
    frame = env.render()
    assert frame.shape == RENDER_SHAPE and frame.dtype == np.uint8
    assert frame.std() > 10  # a drawing, not a blank canvas
    assert np.mean(first != frame) > 0.001  # the later frame shows more of the trial
    env.close()


def test_metadata_and_modes():
    meta = envs.MultiTaskEvidenceEnv.metadata
    # the paper's link travels with the env, as in neurogym, and instances keep it
    assert meta["paper_link"] == "https://arxiv.org/abs/2407.11249"
    assert "Multi-task" in meta["paper_name"] and "multi-task" in meta["tags"]
    assert envs.MultiTaskEvidenceEnv(**SMALL).metadata["paper_link"] == meta["paper_link"]
    assert meta["render_modes"] == ["rgb_array", "human"]
    one = envs.MultiTaskEvidenceEnv(**SMALL).metadata["render_modes"]
    assert one == (["rgb_array", "human"] if display_available() else ["rgb_array"])
    assert meta["render_fps"] == RENDER_FPS == 10
    with pytest.raises(ValueError, match="render_mode"):
        gym.make("MultiTaskEvidence-v0", render_mode="ansi")
    env = gym.make("MultiTaskEvidence-v0", **SMALL)
    env.reset(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert env.render() is None
    assert any("render_mode" in str(w.message) for w in caught)


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="those always have a display")
def test_human_needs_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="needs a display"):
        envs.MultiTaskEvidenceEnv(render_mode="human", **SMALL)
    with pytest.raises(RuntimeError, match="needs a display"):
        gym.make("MultiTaskEvidence-v0", render_mode="human", **SMALL)


def test_render_before_reset_is_refused():
    env = envs.MultiTaskEvidenceEnv(render_mode="rgb_array", **SMALL)
    with pytest.raises(gym.error.ResetNeeded):
        env.render()


def test_drawn_posterior_is_the_ideal_observers():
    spec = TaskSpec(**SMALL)
    env = envs.MultiTaskEvidenceEnv(spec, render_mode="rgb_array")
    env.reset(seed=3)
    batch = generate(spec, 16, np.random.default_rng(3))  # the env's first block
    q = IdealObserver(spec).posterior(batch.stimulus_evidence[:1])[0]  # [Ts, N]
    post = env._trial_posterior()
    s0, ts = spec.stimulus_start, spec.stimulus_steps
    assert post.shape == (spec.n_steps, spec.n_tasks)
    assert np.all(np.isnan(post[:s0]))
    np.testing.assert_allclose(post[s0 : s0 + ts], q)
    np.testing.assert_allclose(post[-1], q[-1])  # held at the decision step


def test_report_values():
    a = np.array([[0, 1, 2, 1]])
    np.testing.assert_array_equal(report_values(a, "wager", free=False), [[0, 1, 0.5, 1]])
    np.testing.assert_array_equal(report_values(a, "choice", free=True), [[0, 1, 2]])


@pytest.mark.parametrize("env_id", sorted(envs.ENV_IDS))
def test_check_env_with_render_mode(env_id):
    env = gym.make(env_id, render_mode="rgb_array", **SMALL).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=False)


@pytest.mark.parametrize(
    ("env_id", "steps"), [("MultiTaskEvidence-v0", 33), ("MultiTaskEvidenceFreeRT-v0", 31)]
)
def test_max_episode_steps_follows_the_trial_and_nothing_truncates(env_id, steps):
    assert gym.spec(env_id).max_episode_steps is None  # no TimeLimit wrapper
    env = gym.make(env_id, n_tasks=4, stimulus_steps=30, delay_steps=1)
    assert env.spec.max_episode_steps == steps
    assert gym.make(env_id).spec.max_episode_steps == (22 if "Free" not in env_id else 21)
    env.reset(seed=0)
    wait = np.zeros(env.action_space.shape, dtype=np.int64)
    n, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, _, terminated, truncated, _ = env.step(wait)
        n += 1
    assert (n, terminated, truncated) == (steps, True, False)
