"""Encoder families and where the noise enters: values worked out by hand, seeding, JSON round
trips, one generator behind env, vector env, ensembles and ``generate``, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from multitask_evidence import envs
from multitask_evidence.agents.ensemble.trials import EnsembleTrials
from multitask_evidence.envs import TaskSpec, generate, task_geometry
from multitask_evidence.envs.encoders import (
    ENCODER_KINDS,
    PLACE_CELL_BOX,
    Encoder,
    encoder_names,
    register_encoder,
)

SMALL = {"n_tasks": 6, "stimulus_steps": 5}
PLACE = {"encoder": "place_cells", "noise_stage": "features", "sigma": 1.0}


def test_defaults_are_filled_in_from_the_family() -> None:
    assert TaskSpec().encoder_sizes == (100, 100, 40) and TaskSpec().encoder_scale is None
    s = TaskSpec(encoder="place_cells")
    assert (s.encoder_sizes, s.encoder_scale, s.obs_dim) == ((100,), 0.1, 101)
    f = TaskSpec(encoder="fourier", encoder_sizes=(64,))
    assert (f.encoder_scale, f.evidence_dim, f.noise_dim) == (1.0, 64, 2)
    assert TaskSpec(**PLACE).noise_dim == 100  # noise per feature
    # replace() swaps the family's filled-in defaults, keeps the ones the user chose
    assert TaskSpec().replace(encoder="place_cells").encoder_sizes == (100,)
    assert s.replace(encoder="relu_mlp").encoder_scale is None
    assert TaskSpec(encoder_sizes=(8, 4)).replace(encoder="quadratic").encoder_sizes == (8, 4)
    assert TaskSpec(encoder_sizes=np.array([8, 4])).encoder_sizes == (8, 4)


@pytest.mark.parametrize(
    "kwargs",
    [
        PLACE,
        {"encoder": "fourier", "encoder_scale": 3.0, "encoder_mix": True, "encoder_sizes": (20,)},
        {"encoder": "place_cells", "latent_dim": 3, "encoder_sizes": (27,), "encoder_scale": 0.2},
        {"encoder": "quadratic", "noise_stage": "features", "sigma": 0.1},
    ],
)
def test_new_fields_round_trip_json(kwargs: dict) -> None:
    spec = TaskSpec(**kwargs)
    assert TaskSpec.from_json(spec.to_json()) == spec
    assert hash(TaskSpec.from_json(spec.to_json())) == hash(spec)


def test_place_cells_values_by_hand() -> None:
    spec = TaskSpec(encoder="place_cells", encoder_sizes=(9,), encoder_scale=0.3)
    geo = task_geometry(spec)
    centres = geo.encoder[0]
    axis = np.array([-PLACE_CELL_BOX, 0.0, PLACE_CELL_BOX])
    np.testing.assert_allclose(np.sort(np.unique(centres[:, 0])), axis, atol=1e-7)
    x = np.array([[0.0, 0.0], [0.1, -0.2]])
    f = geo.encode(x)
    # the bump centred at (0, 0) answers 1 there and exp(-(0.01 + 0.04) / (2 * 0.09)) at x[1]
    k0 = int(np.flatnonzero((centres == 0).all(axis=1))[0])
    np.testing.assert_allclose(f[0, k0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(f[1, k0], np.exp(-0.05 / 0.18), rtol=1e-5)
    d2 = ((x[:, None, :] - centres[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_allclose(f, np.exp(-d2 / 0.18), rtol=1e-5, atol=1e-7)


def test_fourier_values_and_seeding() -> None:
    spec = TaskSpec(encoder="fourier", encoder_sizes=(16,), encoder_scale=2.5, seed=4)
    geo = task_geometry(spec)
    w, b = geo.encoder
    x = np.array([[0.3, -0.1]])
    np.testing.assert_allclose(geo.encode(x), np.cos(2.5 * x @ w + b), rtol=1e-5, atol=1e-6)
    again = task_geometry(TaskSpec.from_json(spec.to_json())).encoder
    np.testing.assert_array_equal(again[0], w)  # the task seed fixes the features
    other = task_geometry(spec.replace(seed=5)).encoder
    assert not np.allclose(other[0], w)


def test_mixing_is_a_seeded_rotation() -> None:
    plain = task_geometry(TaskSpec(encoder="place_cells"))
    mixed = task_geometry(TaskSpec(encoder="place_cells", encoder_mix=True))
    q = mixed.mix.astype(np.float64)
    np.testing.assert_allclose(q @ q.T, np.eye(100), atol=1e-5)
    x = np.random.default_rng(0).random((5, 2)) - 0.5
    np.testing.assert_allclose(mixed.encode(x), plain.encode(x) @ mixed.mix, rtol=1e-5, atol=1e-6)
    # distances are kept, single features are no longer bumps
    fa, fb = plain.encode(x), mixed.encode(x)
    np.testing.assert_allclose(
        np.linalg.norm(fa[0] - fa[1]), np.linalg.norm(fb[0] - fb[1]), rtol=1e-5
    )
    assert fb.min() < -0.01
    seed1 = task_geometry(TaskSpec(encoder="place_cells", encoder_mix=True, seed=1)).mix
    assert not np.allclose(seed1, mixed.mix)


def test_noise_in_feature_space() -> None:
    spec = TaskSpec(**PLACE, stimulus_steps=400, n_tasks=4)
    b = generate(spec, 50, 3)
    s0, s1 = spec.stimulus_start, spec.evidence_stop
    clean = task_geometry(spec).encode(b.latent)  # f(x*)
    noise = b.evidence[:, s0:s1] - clean[:, None, :].astype(np.float64)
    assert b.evidence.shape == (50, spec.n_steps, 100)
    assert abs(noise.std() - 1.0) < 0.01 and abs(noise.mean()) < 0.01
    # the observation is the noisy feature vector itself, f(0) outside the evidence steps
    np.testing.assert_array_equal(b.obs[:, s0:s1, :-1], b.evidence[:, s0:s1].astype(np.float32))
    np.testing.assert_allclose(
        b.obs[:, 0, :-1],
        np.broadcast_to(task_geometry(spec).encode(np.zeros(2)), (50, 100)),
        rtol=1e-6,
    )
    # the time average converges to f(x*), not to f of an average of noisy latents
    np.testing.assert_allclose(b.obs[:, s0:s1, :-1].mean(1), clean, atol=0.2)


def test_env_and_ensemble_equal_generate_with_feature_noise() -> None:
    spec = TaskSpec(**SMALL, **PLACE)
    k = 4
    env = envs.MultiTaskEvidenceEnv(spec, block_size=k)
    batch = generate(spec, k, np.random.default_rng(7))
    for i in range(k):
        obs0, info = env.reset(seed=7) if i == 0 else env.reset()
        np.testing.assert_array_equal(obs0, batch.obs[i, 0])
        np.testing.assert_array_equal(info["latent"], batch.latent[i])
        for t in range(spec.n_steps - 1):
            obs, *_ = env.step(np.zeros(spec.n_tasks, np.int64))
            np.testing.assert_array_equal(obs, batch.obs[i, t + 1])
        env.step(np.zeros(spec.n_tasks, np.int64))
    specs = [spec.replace(seed=s, encoder_scale=w) for s, w in ((0, 0.1), (1, 0.3))]
    drawn = EnsembleTrials(specs).draw(6, [np.random.default_rng(s) for s in (10, 11)])
    for s, r, member in zip(specs, (10, 11), drawn.members):
        solo = generate(s, 6, np.random.default_rng(r))
        np.testing.assert_array_equal(member.obs, solo.obs)
        np.testing.assert_array_equal(member.evidence, solo.evidence)


def test_a_user_family_in_one_registration() -> None:
    def build(spec: TaskSpec, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        return (rng.standard_normal((spec.latent_dim, spec.encoder_sizes[-1])).astype(np.float32),)

    def apply(spec: TaskSpec, params: tuple, x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ params[0])

    register_encoder("tanh_proj", Encoder(build, apply, (12,), lambda s: 2 * 12))
    try:
        assert "tanh_proj" in encoder_names()
        spec = TaskSpec(encoder="tanh_proj", noise_stage="features", sigma=0.3, **SMALL)
        b = generate(spec, 3, 0)
        assert b.obs.shape == (3, spec.n_steps, 13)
        w = task_geometry(spec).encoder[0]
        s0 = spec.stimulus_start
        np.testing.assert_allclose(
            b.evidence[:, s0 : spec.evidence_stop].mean(1), np.tanh(b.latent @ w), atol=0.5
        )
        with pytest.raises(ValueError, match="already registered"):
            register_encoder("tanh_proj", ENCODER_KINDS["tanh_proj"])
    finally:
        ENCODER_KINDS.remove("tanh_proj")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"encoder": "place_cells", "encoder_sizes": (99,)}, r"K = m\^D .*e\.g\. \[100\]"),
        ({"encoder": "place_cells", "encoder_sizes": (100, 100)}, "one width K"),
        ({"encoder": "fourier", "encoder_sizes": (10, 10)}, "one width"),
        ({"encoder_scale": 0.2}, r"encoder_scale applies to .*'relu_mlp'"),
        ({"encoder": "place_cells", "encoder_scale": 0.0}, "encoder_scale"),
        ({"encoder": "place_cells", "encoder_scale": float("nan")}, "encoder_scale"),
        ({"encoder": "none", "encoder_mix": True}, "encoder_mix needs an encoder"),
        ({"encoder_mix": "yes"}, "encoder_mix must be true or false"),
        ({"noise_stage": "pixels"}, r"noise_stage must be one of \['latent', 'features'\]"),
        ({"noise_stage": "features", "noise": "ar1"}, "noise='gaussian'"),
        ({"noise_stage": "features", "targets": "ddm_bound"}, "targets 'paper'"),
        ({"encoder": "pixels"}, "encoder must be one of .*'place_cells', 'fourier'"),
        ({"encoder": "fourier", "encoder_sizes": (10**10,)}, "would take about"),
        ({"encoder": "fourier", "encoder_sizes": (10**5,), "encoder_mix": True}, "would take"),
    ],
)
def test_bad_encoder_settings_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TaskSpec(**kwargs)
