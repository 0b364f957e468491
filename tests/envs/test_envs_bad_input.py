"""Bad and unusual input to the task and the envs: refused with a message naming the field, or
accepted when it is valid (numpy scalars, big-endian actions)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from multitask_evidence import envs  # noqa: F401  (registers the ids)
from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.envs.env import MultiTaskEvidenceEnv


# ---- numeric fields ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_tasks", 0),
        ("n_tasks", -3),
        ("n_tasks", 2.5),
        ("n_tasks", True),
        ("n_tasks", "6"),
        ("latent_dim", 0),
        ("stimulus_steps", 0),
        ("sigma", 0.0),
        ("sigma", -0.1),
        ("sigma", math.nan),
        ("sigma", math.inf),
        ("sigma", "0.2"),
        ("sigma", np.float32(np.nan)),
        ("decision_steps", np.int64(0)),
        ("seed", -1),
        ("encoder_sizes", (0, 4)),
        ("encoder_sizes", ()),
    ],
)
def test_bad_numbers_name_the_field(field, value) -> None:
    with pytest.raises(ValueError, match=f"TaskSpec.{field}"):
        TaskSpec(**{field: value})


def test_numpy_scalars_are_valid_and_stored_as_python_numbers() -> None:
    spec = TaskSpec(
        n_tasks=np.int64(6),
        sigma=np.float32(0.25),
        stimulus_steps=np.int32(5),
        encoder_sizes=(np.int64(8), np.int16(4)),
        seed=np.uint8(3),
    )
    assert spec == TaskSpec(n_tasks=6, sigma=0.25, stimulus_steps=5, encoder_sizes=(8, 4), seed=3)
    assert type(spec.n_tasks) is int and type(spec.sigma) is float
    assert TaskSpec.from_json(spec.to_json()) == spec
    env = gym.make("MultiTaskEvidence-v0", n_tasks=np.int64(3), sigma=np.float32(0.3))
    assert env.action_space.shape == (3,)


@pytest.mark.parametrize(
    ("kw", "memory"),
    [
        (dict(n_tasks=10**9), "GiB"),
        (dict(stimulus_steps=10**8), "GiB"),
        (dict(encoder_sizes=(10**6, 10**6)), "TiB"),
    ],
)
def test_huge_sizes_name_the_memory_they_would_take(kw, memory) -> None:
    with pytest.raises(ValueError, match=rf"would take about [\d.]+ {memory} of memory \(limit"):
        TaskSpec(**kw)


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda: generate(TaskSpec(), 10**12, 0), r"generate\(n=1000000000000\)"),
        (
            lambda: gym.make_vec(
                "MultiTaskEvidence-v0", 10**9, vectorization_mode="vector_entry_point"
            ),
            r"num_envs=1000000000 x block_size=16",
        ),
        (lambda: gym.make("MultiTaskEvidence-v0", block_size=10**12), r"block_size=1000000000000"),
    ],
)
def test_api_sizes_are_refused_before_allocating(call, what) -> None:
    # the same estimate as the CLI's: one line naming the argument, not a MemoryError
    with pytest.raises(ValueError, match=what + r".* would take about [\d.]+ (PiB|TiB) of memory"):
        call()


# ---- actions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["<i8", ">i8", ">i4", ">u2", "i1"])
def test_integer_actions_in_any_byte_order(dtype) -> None:
    rewards = []
    for dt in ("<i8", dtype):
        env = gym.make("MultiTaskEvidence-v0", n_tasks=3, stimulus_steps=2)
        env.reset(seed=1)
        done, total = False, 0.0
        while not done:
            _, r, done, _, _ = env.step(np.array([1, 0, 1], dtype=dt))
            total += r
        rewards.append(total)
    assert rewards[0] == rewards[1]
    env.reset(seed=1)
    with pytest.raises(ValueError, match="out of range"):
        env.step(np.array([2, 0, 1], dtype=">i8"))


def test_vector_env_takes_big_endian_actions() -> None:
    kw = dict(num_envs=4, vectorization_mode="vector_entry_point", n_tasks=3, stimulus_steps=2)
    out = []
    for dt in ("<i8", ">i8"):
        vec = gym.make_vec("MultiTaskEvidence-v0", **kw)
        vec.reset(seed=0)
        total = np.zeros(4)
        for _ in range(4):
            _, r, *_ = vec.step(np.ones((4, 3), dtype=dt))
            total += r
        out.append(total)
    np.testing.assert_array_equal(out[0], out[1])


# ---- reset options ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("latent", "match"),
    [
        ([5.0, 0.0], r"prior's support \[-0.5, 0.5\]\^2"),
        ([0.0, -0.51], "prior's support"),
        ([0.1], r"shape \(2,\)"),
        ([np.nan, 0.0], "finite"),
        (["a", "b"], "must be numbers"),
    ],
)
def test_latent_outside_the_prior_is_refused(latent, match) -> None:
    env = gym.make("MultiTaskEvidence-v0", n_tasks=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.reset(options={"latent": latent})


def test_latent_on_the_prior_edge_is_used() -> None:
    env = gym.make("MultiTaskEvidence-v0", n_tasks=3)
    env.reset(seed=0)
    _, info = env.reset(options={"latent": [0.5, -0.5]})
    np.testing.assert_array_equal(info["latent"], [0.5, -0.5])
    vec = gym.make_vec(
        "MultiTaskEvidence-v0", num_envs=2, vectorization_mode="vector_entry_point", n_tasks=3
    )
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="prior's support"):
        vec.reset(options={"latent": [[0.0, 0.0], [0.0, 0.7]]})


# ---- env state (exact resume of RL training) -----------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"response": "free"}, {"report": "wager", "offer_prob": 0.5}])
def test_env_state_round_trip_continues_identically(kw) -> None:
    spec = TaskSpec(n_tasks=3, stimulus_steps=3)
    a = MultiTaskEvidenceEnv(spec, block_size=4, **kw)
    a.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(7):  # into the second block, mid-trial
        _, _, done, _, _ = a.step(a.action_space.sample())
        if done:
            a.reset()
    b = MultiTaskEvidenceEnv(spec, block_size=4, **kw)
    b.set_state(a.get_state())
    for _ in range(30):
        act = rng.integers(0, a.action_space.nvec)
        ra, rb = a.step(act), b.step(act)
        np.testing.assert_array_equal(ra[0], rb[0])
        assert ra[1:4] == rb[1:4]
        if ra[2]:
            np.testing.assert_array_equal(a.reset()[0], b.reset()[0])


def test_env_state_that_does_not_fit_is_refused() -> None:
    a = MultiTaskEvidenceEnv(TaskSpec(n_tasks=3), block_size=4)
    a.reset(seed=0)
    state = a.get_state()
    with pytest.raises(ValueError, match="block shapes"):
        MultiTaskEvidenceEnv(TaskSpec(n_tasks=3, stimulus_steps=5), block_size=4).set_state(state)
    with pytest.raises(ValueError, match="position"):
        MultiTaskEvidenceEnv(TaskSpec(n_tasks=3), block_size=4).set_state({**state, "pos": 9})
    with pytest.raises(ValueError, match="rng"):
        MultiTaskEvidenceEnv(TaskSpec(n_tasks=3), block_size=4).set_state({**state, "rng": {}})
