"""The ideal observer when the noise enters in feature space: against brute-force Monte Carlo,
against a finer grid, its posterior mean, and the noise calibration."""

from __future__ import annotations

import numpy as np
import pytest

from multitask_evidence.envs import TaskSpec, generate, task_geometry
from multitask_evidence.envs.feature_noise import calibrate_sigma, ideal_accuracy_at, paper_task
from multitask_evidence.envs.ideal import IdealObserver, ideal_accuracy
from multitask_evidence.envs.trials import sample_latents


def _monte_carlo(spec: TaskSpec, evidence: np.ndarray, n: int = 400_000, seed: int = 5):
    """Self-normalised importance sampling from the prior: P(y_i = 1) [B, N], E[x*] [B, D] and
    the standard errors of the probabilities [B, N]."""
    rng = np.random.default_rng(seed)
    xs = sample_latents(spec, rng, n)
    geo = task_geometry(spec)
    f = geo.encode(xs).astype(np.float64)
    lab = geo.labels(xs)
    m, t = evidence.mean(axis=1), evidence.shape[1]
    logw = (t / spec.sigma**2) * (m @ f.T - 0.5 * (f * f).sum(1))
    logw -= logw.max(axis=1, keepdims=True)
    w = np.exp(logw)
    w /= w.sum(axis=1, keepdims=True)
    p = w @ lab
    w2 = w**2
    # sum_j w_j^2 (y_j - p)^2 with y_j in {0, 1}
    se = np.sqrt(np.maximum((1.0 - 2.0 * p) * (w2 @ lab) + p**2 * w2.sum(axis=1, keepdims=True), 0))
    return p, w @ xs, se


@pytest.mark.parametrize(
    "kwargs",
    [
        {"encoder": "place_cells", "encoder_scale": 0.3, "sigma": 1.0},
        {"encoder": "place_cells", "encoder_scale": 0.1, "sigma": 1.5, "boundaries": "circles"},
        {"encoder": "fourier", "encoder_scale": 3.0, "sigma": 1.0, "encoder_mix": True},
        {"encoder": "place_cells", "sigma": 1.0, "prior": "correlated", "rho": 0.5},
    ],
)
def test_observer_matches_monte_carlo(kwargs: dict) -> None:
    spec = TaskSpec(noise_stage="features", stimulus_steps=2, n_tasks=6, **kwargs)
    batch = generate(spec, 12, 1)
    obs = IdealObserver(spec)
    assert obs.engine == "features"
    p = obs.final_posterior(batch.stimulus_evidence)
    p_mc, mean_mc, se = _monte_carlo(spec, batch.stimulus_evidence)
    # within 4 Monte Carlo standard errors plus the grid's own tolerance (module docstring)
    assert np.all(np.abs(p - p_mc) <= 4 * se + 3e-3), np.abs(p - p_mc).max()
    mean = obs.posterior_mean(batch.stimulus_evidence)[:, -1]
    np.testing.assert_allclose(mean, mean_mc, atol=5e-3)


def test_grid_tolerance_at_a_task_as_informative_as_the_papers() -> None:
    spec = TaskSpec(encoder="place_cells", noise_stage="features", sigma=1.3, n_tasks=12)
    assert 0.94 < ideal_accuracy(spec, 1000) < 0.98  # about the paper task's 0.96
    batch = generate(spec, 60, 2)
    p = IdealObserver(spec).final_posterior(batch.stimulus_evidence)
    fine = IdealObserver(spec, n_grid=192).final_posterior(batch.stimulus_evidence)
    assert np.abs(p - fine).max() < 3e-3


def test_every_step_and_the_last_agree() -> None:
    spec = TaskSpec(
        encoder="place_cells", noise_stage="features", sigma=1.0, n_tasks=4, stimulus_steps=6
    )
    batch = generate(spec, 8, 3)
    obs = IdealObserver(spec)
    every = obs.posterior(batch.stimulus_evidence)
    np.testing.assert_allclose(every[:, -1], obs.final_posterior(batch.stimulus_evidence))
    np.testing.assert_allclose(every[:, 0], obs.final_posterior(batch.stimulus_evidence[:, :1]))
    # more evidence, more confident on average
    conf = np.abs(every - 0.5).mean(axis=(0, 2))
    assert conf[-1] > conf[0]


def test_calibration_hits_its_target() -> None:
    spec = TaskSpec(encoder="place_cells", encoder_scale=0.3, noise_stage="features", n_tasks=6)
    sigma = calibrate_sigma(spec, target=0.9, n=400, rel_tol=1e-3)
    rng = np.random.default_rng(0)
    latent = sample_latents(spec, rng, 400)
    unit = rng.standard_normal((400, spec.evidence_steps, spec.noise_dim))
    assert abs(ideal_accuracy_at(spec, latent, unit, sigma) - 0.9) < 0.01
    # the default target: the paper's task with the same tasks and timing
    assert paper_task(spec).encoder == "relu_mlp" and paper_task(spec).noise_stage == "latent"
    s_default = calibrate_sigma(spec, n=400, rel_tol=1e-2)
    target = ideal_accuracy(paper_task(spec), 4000)
    assert abs(ideal_accuracy(spec.replace(sigma=s_default), 4000) - target) < 0.01


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: calibrate_sigma(TaskSpec()), "noise_stage='features'"),
        (
            lambda: calibrate_sigma(TaskSpec(noise_stage="features"), target=0.4),
            r"target must be a finite number in \(0.5, 1.0\)",
        ),
        (
            lambda: IdealObserver(TaskSpec(noise_stage="features"), method="mc"),
            r"allowed methods for this spec: \['auto', 'exact'\]",
        ),
        (
            lambda: IdealObserver(TaskSpec(noise_stage="features", latent_dim=4)),
            "latent_dim <= 3",
        ),
        (
            lambda: IdealObserver(TaskSpec()).posterior_mean(np.zeros((1, 20, 2))),
            "probes.theory.posterior_mean",
        ),
        (
            lambda: IdealObserver(TaskSpec(noise_stage="features")).final_posterior(
                np.zeros((1, 20, 2))
            ),
            r"\[B, Ts, 40\]",
        ),
    ],
)
def test_bad_calls_name_what_is_allowed(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
