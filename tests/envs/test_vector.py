"""The native vector env: trial-for-trial equal to single envs seeded s + i, NEXT_STEP autoreset,
reset options, bad actions."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from multitask_evidence import envs

SMALL = {"n_tasks": 6, "stimulus_steps": 5}

CONFIGS = [
    {},
    {"report": "wager", "offer_prob": 0.5},
    {"report": "confidence", "scoring": "brier", "decision_steps": 2, "delay_steps": 1},
    {"response": "free", "evidence_cost": 0.01},
    {"report": "confidence", "response": "free"},
    {"report": "wager", "response": "free", "latent_dim": 3},
    {"encoder": "place_cells", "noise_stage": "features", "sigma": 1.0, "report": "confidence"},
    {"encoder": "fourier", "encoder_mix": True, "noise_stage": "features", "response": "free"},
]


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: "-".join(f"{k}={c[k]}" for k in c) or "default"
)
def test_vector_equals_single_envs(config: dict) -> None:
    m, k = 5, 3  # small blocks so that blocks are refilled at different times
    kw = SMALL | config | {"block_size": k}
    venv = gym.make_vec("MultiTaskEvidence-v0", m, vectorization_mode="vector_entry_point", **kw)
    singles = [gym.make("MultiTaskEvidence-v0", **kw) for _ in range(m)]
    obs, vinfo = venv.reset(seed=20)
    for i, env in enumerate(singles):
        o, info = env.reset(seed=20 + i)
        np.testing.assert_array_equal(obs[i], o)
        np.testing.assert_array_equal(vinfo["latent"][i], info["latent"])
    venv.action_space.seed(1)
    free = config.get("response") == "free"
    restart = np.zeros(m, dtype=bool)
    n_ends = 0
    for t in range(150):
        actions = venv.action_space.sample()
        if free:  # commit at varied times so that the envs drift apart
            actions[:, -1] = ((np.arange(m) + t) % 4 == 0) * (
                1 if actions.dtype.kind == "i" else 0.9
            )
        obs, rew, term, trunc, vinfo = venv.step(actions)
        assert not trunc.any()
        for i, env in enumerate(singles):
            if restart[i]:  # NEXT_STEP: the action is ignored, the next trial starts
                o, info = env.reset()
                r, te = 0.0, False
            else:
                o, r, te, _, info = env.step(actions[i])
            np.testing.assert_allclose(obs[i], o, rtol=1e-6, atol=1e-6)
            assert rew[i] == pytest.approx(r, abs=1e-12) and term[i] == te
            assert vinfo["step"][i] == info["step"] and vinfo["period"][i] == info["period"]
            np.testing.assert_array_equal(vinfo["labels"][i], info["labels"])
            if te:
                n_ends += 1
                for key in ("reaction_time", "aborted"):
                    if key in info:
                        assert vinfo[key][i] == info[key] and vinfo["_" + key][i]
                if "correct" in info:
                    assert vinfo["_correct"][i]
                    np.testing.assert_array_equal(vinfo["correct"][i], info["correct"])
                    assert vinfo["score"][i] == pytest.approx(info["score"])
                    np.testing.assert_allclose(
                        vinfo["ideal_action"][i], info["ideal_action"], atol=1e-9
                    )
                    assert vinfo["ideal_reward"][i] == pytest.approx(info["ideal_reward"], abs=1e-9)
            elif "_correct" in vinfo:
                assert not vinfo["_correct"][i]
        restart = term
    assert n_ends >= 2 * m * k  # several blocks were played


def test_vector_seed_list_reset_mask_and_options() -> None:
    venv = envs.MultiTaskEvidenceVectorEnv(3, **SMALL)
    obs, info = venv.reset(seed=[5, 9, 5])
    np.testing.assert_array_equal(info["latent"][0], info["latent"][2])
    assert not np.array_equal(info["latent"][0], info["latent"][1])
    before = info["latent"].copy()
    obs, info = venv.reset(options={"reset_mask": np.array([False, True, False])})
    np.testing.assert_array_equal(info["latent"][[0, 2]], before[[0, 2]])
    assert not np.array_equal(info["latent"][1], before[1])
    x = np.array([[0.1, 0.2], [-0.3, 0.4], [0.2, -0.1]])
    obs, info = venv.reset(options={"latent": x})
    np.testing.assert_array_equal(info["latent"], x)
    np.testing.assert_array_equal(info["labels"], envs.task_geometry(venv.task_spec).labels(x))
    _, info = venv.reset(options={"region": {"orthants": [0]}})
    assert np.all(info["latent"] < 0)
    with pytest.raises(ValueError, match="reset_mask"):
        venv.reset(options={"reset_mask": [1, 0, 1]})
    with pytest.raises(ValueError, match="seed"):
        venv.reset(seed=[1, 2])


def test_vector_bad_actions_raise() -> None:
    venv = envs.MultiTaskEvidenceVectorEnv(4, **SMALL)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros((4, 6), np.int64))
    venv.reset(seed=0)
    good = np.zeros((4, 6), np.int64)
    for bad in (good[:3], good[:, :5], good.astype(float) + np.nan, good + 2, good - 1, good + 0.5):
        with pytest.raises(ValueError):
            venv.step(bad)
    venv.step(good)
    cenv = envs.MultiTaskEvidenceVectorEnv(2, report="confidence", **SMALL)
    cenv.reset(seed=0)
    for v in (-0.1, 1.1, np.nan):
        a = np.full((2, 6), 0.5, np.float32)
        a[1, 2] = v
        with pytest.raises(ValueError):
            cenv.step(a)


def test_vector_fixed_rt_rewards_and_autoreset() -> None:
    venv = envs.MultiTaskEvidenceVectorEnv(8, **SMALL)
    obs, info = venv.reset(seed=3)
    t_all = venv.task_spec.n_steps
    total = np.zeros(8)
    for _ in range(t_all):
        obs, r, term, _, info = venv.step(info["labels"].astype(np.int64))
        total += r
    assert term.all() and np.allclose(total, 1.0) and info["_ideal_reward"].all()
    assert info["correct"].all()
    obs, r, term, _, info = venv.step(np.zeros((8, 6), np.int64))  # autoreset step
    assert np.all(r == 0) and not term.any() and np.all(info["step"] == 0)
    assert np.all(obs[:, -1] == 1.0)  # go channel of the new trial's first step
