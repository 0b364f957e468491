"""The ideal observer (docs/science.md §3): values against brute force, theory and simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from multitask_evidence.envs import TaskSpec, generate, task_geometry
from multitask_evidence.envs.ideal import (
    IdealObserver,
    best_report,
    expected_reward,
    ideal_accuracy,
    ideal_accuracy_curve,
    realised_reward,
)
from multitask_evidence.envs.trials import noise_scales

PAPER = TaskSpec(encoder="none")


# ---- an independent brute-force posterior -------------------------------------------------
def _raw_loglik(spec: TaskSpec, x: np.ndarray, pts: np.ndarray, axis: int) -> np.ndarray:
    """Log-likelihood [P] of candidate values pts [P] of ONE latent axis given that axis's raw
    evidence x [t], from the noise density itself (no sufficient statistics). The noise axes
    are independent, so the joint log-likelihood is the sum over axes."""
    eps = x[None, :] - pts[:, None]  # [P, t]
    s = spec.sigma * (spec.anisotropy if spec.noise == "anisotropic" and axis > 0 else 1.0)
    if spec.noise in ("gaussian", "anisotropic"):
        return -0.5 * (eps**2).sum(1) / s**2
    if spec.noise == "ar1":  # x1 stationary, then innovations of variance s^2 (1 - a^2)
        a = spec.ar_coef
        innov = eps[:, 1:] - a * eps[:, :-1]
        return -0.5 * eps[:, 0] ** 2 / s**2 - 0.5 * (innov**2).sum(1) / (s**2 * (1 - a * a))
    z = (eps + s * np.euler_gamma) / s  # Gumbel(0, s) shifted to mean 0
    return (-z - np.exp(-z)).sum(1)


def _brute_posterior(spec: TaskSpec, x: np.ndarray, g: int, steps: tuple[int, ...]) -> np.ndarray:
    """P(y = 1 | X(1..t)) [len(steps), N] for one trial x [Ts, D]: plain midpoint grid with g
    points per axis on mean +- 7 (bounding) SD clipped to the prior's box, raw likelihood x
    prior density, hard labels (its own error is ~ the cell size, a few 1e-4 here)."""
    geo, d = task_geometry(spec), spec.latent_dim
    scales = noise_scales(spec) * np.sqrt((1 + spec.ar_coef) / (1 - spec.ar_coef))
    if spec.noise == "gumbel":
        scales = scales * 1.5  # the Gumbel posterior has an exponential left tail
    out = []
    for t in steps:
        mean = x[:t].mean(0)
        lo = np.clip(mean - 7 * scales / np.sqrt(t), -0.5, 0.5)
        hi = np.clip(mean + 7 * scales / np.sqrt(t), -0.5, 0.5)
        axes = [lo[k] + (hi[k] - lo[k]) * (np.arange(g) + 0.5) / g for k in range(d)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
        lls = [_raw_loglik(spec, x[:t, k], axes[k], k) for k in range(d)]
        ll = lls[0] if d == 1 else (lls[0][:, None] + lls[1][None, :]).reshape(-1)
        if spec.prior == "correlated" and d == 2:
            z, r = ndtri(pts + 0.5), spec.rho
            ll -= (r * r * (z**2).sum(-1) - 2 * r * z[:, 0] * z[:, 1]) / (2 * (1 - r * r))
        w = np.exp(ll - ll.max())
        out.append(w @ geo.labels(pts) / w.sum())
    return np.array(out)


BRUTE_CASES = [
    (dict(), 1e-3),
    (dict(noise="anisotropic"), 1e-3),
    (dict(noise="ar1"), 1e-3),
    (dict(noise="gumbel"), 1e-3),
    (dict(prior="correlated", rho=0.6), 5e-3),  # documented: copula grid ~ a few 1e-3
    (dict(boundaries="circles", n_tasks=8), 1e-3),
    (dict(boundaries="hyperbolic", n_tasks=8), 1e-3),
    (dict(latent_dim=1, n_tasks=5, offset_scale=0.3), 1e-3),
    (dict(latent_dim=1, boundaries="circles", n_tasks=4, noise="gumbel"), 1e-3),
    # the brute force itself aliases on offset diagonal lines (~1e-3; exact is checked below)
    (dict(offset_scale=0.4, n_tasks=6, sigma=0.12), 2e-3),
]


@pytest.mark.parametrize(("kw", "tol"), BRUTE_CASES, ids=lambda v: str(v))
def test_exact_matches_brute_force(kw: dict, tol: float) -> None:
    spec = TaskSpec(encoder="none", stimulus_steps=6, **{"n_tasks": 12, **kw})
    batch = generate(spec, 3, np.random.default_rng(11))
    obs = IdealObserver(spec, "exact")
    steps = (1, 3, 6)
    p = obs.posterior(batch.stimulus_evidence)[:, np.array(steps) - 1]
    g = 800 if spec.latent_dim == 2 else 20_000
    ref = np.stack([_brute_posterior(spec, x, g, steps) for x in batch.stimulus_evidence])
    assert p.shape == ref.shape == (3, 3, spec.n_tasks)
    assert np.abs(p - ref).max() < tol
    # Monte Carlo agrees too, to its sampling error
    pm = IdealObserver(spec, "mc", n_mc=8192).posterior(batch.stimulus_evidence)
    pm = pm[:, np.array(steps) - 1]
    assert np.abs(pm - ref).max() < 0.05
    assert np.abs(pm - ref).mean() < 0.006


def test_truncnorm_quadrature_converged() -> None:
    """The default 32 Gauss-Legendre nodes agree with 256 nodes, for narrow and wide posteriors,
    anisotropic noise and offsets (the nodes follow the posterior, so small sigma is no harder)."""
    for kw in (
        dict(sigma=0.02),
        dict(sigma=0.6),
        dict(noise="anisotropic"),
        dict(offset_scale=0.4),
    ):
        spec = PAPER.replace(stimulus_steps=8, **kw)
        x = generate(spec, 100, np.random.default_rng(12)).stimulus_evidence
        p = IdealObserver(spec, "exact").posterior(x)
        ref = IdealObserver(spec, "exact", n_quad=256).posterior(x)
        assert np.abs(p - ref).max() < 2e-4


def test_flat_is_the_spec_closed_form() -> None:
    """docs/science.md §3: P = Phi(sqrt(t)/sigma (c . mu(t) + b)), mu(t) the running mean."""
    spec = PAPER.replace(offset_scale=0.2)
    geo = task_geometry(spec)
    x = generate(spec, 50, np.random.default_rng(0)).stimulus_evidence
    t = np.arange(1, spec.stimulus_steps + 1)[None, :, None]
    mu = np.cumsum(x, axis=1) / t
    expect = ndtr(np.sqrt(t) / spec.sigma * (mu @ geo.normals.T + geo.offsets))
    np.testing.assert_allclose(IdealObserver(spec, "flat").posterior(x), expect, atol=1e-12)


def test_flat_ar1_is_gls() -> None:
    """AR(1): the flat posterior is N(GLS estimate, (1' S^-1 1)^-1) from the full covariance."""
    spec = PAPER.replace(noise="ar1", latent_dim=1, n_tasks=3, offset_scale=0.3)
    geo = task_geometry(spec)
    x = generate(spec, 20, np.random.default_rng(1)).stimulus_evidence  # [B, T, 1]
    p = IdealObserver(spec, "flat").posterior(x)
    a, s = spec.ar_coef, spec.sigma
    for t in (1, 2, 5, spec.stimulus_steps):
        lags = np.abs(np.subtract.outer(np.arange(t), np.arange(t)))
        prec = np.linalg.inv(s**2 * a**lags)
        var = 1.0 / prec.sum()
        mu = var * (x[:, :t, 0] @ prec.sum(0))
        c = geo.normals[:, 0]
        expect = ndtr((mu[:, None] * c + geo.offsets) / np.sqrt(var))
        np.testing.assert_allclose(p[:, t - 1], expect, atol=1e-10)


def test_exact_equals_flat_in_the_middle_and_differs_at_edges() -> None:
    spec = PAPER.replace(sigma=0.1)
    exact, flat = IdealObserver(spec, "exact"), IdealObserver(spec, "flat")
    rng = np.random.default_rng(2)
    mid = generate(spec, 200, rng, latent=rng.uniform(-0.15, 0.15, (200, 2)))
    np.testing.assert_allclose(exact.decision_probs(mid), flat.decision_probs(mid), atol=1e-6)
    # at an edge, the bound moves the posterior mean inwards: the probabilities change
    spec = PAPER.replace(sigma=0.6)
    exact, flat = IdealObserver(spec, "exact"), IdealObserver(spec, "flat")
    edge = generate(spec, 200, rng, latent=np.tile([0.49, 0.45], (200, 1)))
    diff = np.abs(exact.decision_probs(edge) - flat.decision_probs(edge))
    assert diff.mean() > 0.01


def test_mc_matches_flat_in_high_dimension_away_from_edges() -> None:
    spec = TaskSpec(latent_dim=4, n_tasks=8, sigma=0.1, encoder="none", stimulus_steps=5)
    rng = np.random.default_rng(3)
    batch = generate(spec, 20, rng, latent=rng.uniform(-0.1, 0.1, (20, 4)))
    pm = IdealObserver(spec, "mc", n_mc=16384).decision_probs(batch)
    pf = IdealObserver(spec, "flat").decision_probs(batch)
    assert np.abs(pm - pf).max() < 0.04
    assert np.abs(pm - pf).mean() < 0.008


def test_decision_probs_is_the_last_posterior_step() -> None:
    for kw in (dict(), dict(noise="ar1"), dict(noise="gumbel"), dict(boundaries="circles")):
        spec = PAPER.replace(stimulus_steps=5, **kw)
        batch = generate(spec, 40, np.random.default_rng(4))
        obs = IdealObserver(spec)
        np.testing.assert_allclose(
            obs.decision_probs(batch), obs.posterior(batch.stimulus_evidence)[:, -1], atol=1e-12
        )


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(offset_scale=0.3),
        dict(noise="gumbel"),
        dict(prior="correlated", rho=0.5),
        dict(boundaries="hyperbolic"),
        dict(latent_dim=1, n_tasks=3),
        dict(latent_dim=3),
    ],
    ids=lambda v: str(v),
)
def test_extreme_evidence_gives_the_corner_point_mass(kw: dict) -> None:
    """Evidence far outside the box (any method): finite, and the posterior is the nearest
    corner's labels (the bounded prior's limit), with no overflow warnings."""
    spec = TaskSpec(encoder="none", stimulus_steps=5, sigma=0.01, **{"n_tasks": 8, **kw})
    d = spec.latent_dim
    for sign in (1.0, -1.0):
        x = np.full((1, 5, d), 50.0 * sign)
        corner = task_geometry(spec).labels(np.full((1, d), 0.5 * sign))
        for method in ("auto", "mc"):
            with np.errstate(over="raise", invalid="raise"):
                p = IdealObserver(spec, method).posterior(x)
            np.testing.assert_allclose(p[0, -1], corner[0], atol=1e-6)


# ---- the Bayes rule against simulation ------------------------------------------------------
def _per_trial_se(correct: np.ndarray) -> float:
    """Standard error of a mean accuracy, trials independent, tasks within a trial not."""
    per_trial = correct.mean(axis=1)
    return float(per_trial.std(ddof=1) / np.sqrt(len(per_trial)))


def test_paper_task_accuracy_and_bayes_rule() -> None:
    """Accuracy ~ 0.960 (SPEC 7), equal to the observer's own prediction within sampling error,
    and not beaten by the flat rule or the sign of c . (median of samples)."""
    n = 20_000
    batch = generate(PAPER, n, np.random.default_rng(5))
    obs = IdealObserver(PAPER)
    assert obs.method == "exact" and obs.engine == "truncnorm"
    p = obs.decision_probs(batch)
    y = batch.labels > 0.5
    correct = (p > 0.5) == y
    acc, se = correct.mean(), _per_trial_se(correct)
    assert 0.955 < acc < 0.965
    assert abs(acc - obs.predicted_accuracy(batch, p)) < 4 * se
    geo = task_geometry(PAPER)
    alternatives = {
        "flat": IdealObserver(PAPER, "flat").decision_probs(batch) > 0.5,
        "median": np.median(batch.stimulus_evidence, axis=1) @ geo.normals.T > 0,
    }
    for name, choice in alternatives.items():
        diff = correct.astype(float) - (choice == y)
        assert diff.mean() > -3 * _per_trial_se(diff), name
    # the median rule is clearly worse (less efficient estimator for Gaussian noise)
    assert (correct.astype(float) - (alternatives["median"] == y)).mean() > 0.003


def test_gumbel_bayes_rule_beats_the_mean_rule() -> None:
    """For Gumbel noise the sample mean is not sufficient: the Bayes rule is clearly better."""
    spec = PAPER.replace(noise="gumbel", n_tasks=8, sigma=0.4)
    batch = generate(spec, 3000, np.random.default_rng(6))
    obs = IdealObserver(spec)
    p = obs.decision_probs(batch)
    y = batch.labels > 0.5
    correct = ((p > 0.5) == y).astype(float)
    mean_rule = (batch.stimulus_evidence.mean(1) @ task_geometry(spec).normals.T > 0) == y
    diff = correct - mean_rule
    assert diff.mean() > 4 * _per_trial_se(diff)
    assert abs(correct.mean() - obs.predicted_accuracy(batch, p)) < 4 * _per_trial_se(correct)


CALIBRATION_CASES = [
    dict(),
    dict(noise="anisotropic"),
    dict(noise="ar1"),
    dict(noise="gumbel"),
    dict(prior="correlated", rho=0.7),
    dict(boundaries="circles", n_tasks=6),
    dict(boundaries="hyperbolic", n_tasks=8),
    dict(latent_dim=1, n_tasks=4, offset_scale=0.3),
    dict(latent_dim=3, n_tasks=6),  # flat (ignores the edges)
    dict(latent_dim=3, n_tasks=6, noise="gumbel"),  # mc
]


@pytest.mark.parametrize("kw", CALIBRATION_CASES, ids=lambda v: str(v))
def test_calibrated_for_every_variant(kw: dict) -> None:
    """Among (trial, task) pairs with p in a bin, the fraction with y = 1 matches mean p."""
    spec = TaskSpec(encoder="none", sigma=0.4, stimulus_steps=4, **{"n_tasks": 8, **kw})
    n = 1500 if spec.latent_dim <= 2 else 800
    batch = generate(spec, n, np.random.default_rng(7))
    obs = IdealObserver(spec, n_mc=2048)
    p = obs.decision_probs(batch)
    y = batch.labels
    bins = np.minimum((p * 10).astype(int), 9)
    checked = 0
    for k in range(10):
        sel = bins == k
        trials = np.any(sel, axis=1).sum()
        if trials < 40:
            continue
        pk = p[sel].mean()
        # SE as if only one pair per trial were informative (tasks of a trial are correlated)
        se = np.sqrt(max(pk * (1 - pk), 0.02) / trials)
        tol = 4.5 * se + (0.01 if obs.engine in ("mc", "flat") else 0.0)
        assert abs(y[sel].mean() - pk) < tol, (k, y[sel].mean(), pk)
        checked += 1
    assert checked >= 4
    # sharpness consistency: E[(y - p)^2] = E[p (1 - p)] for a calibrated forecaster
    assert abs(((y - p) ** 2).mean() - (p * (1 - p)).mean()) < 0.01


def test_accuracy_curve_rises() -> None:
    curve = ideal_accuracy_curve(PAPER, n=1500, seed=8)
    assert curve.shape == (PAPER.stimulus_steps,)
    assert curve[0] < 0.85 < 0.95 < curve[-1]
    assert np.all(np.diff(curve) > -0.006)
    # the observer's predicted curve is close to the realised one at every step
    batch = generate(PAPER, 1500, np.random.default_rng(8))
    p = IdealObserver(PAPER).posterior(batch.stimulus_evidence)
    np.testing.assert_allclose(np.maximum(p, 1 - p).mean(axis=(0, 2)), curve, atol=0.01)


def test_ideal_accuracy_helper_and_sigma_ordering() -> None:
    accs = [ideal_accuracy(PAPER.replace(sigma=s), n=3000, seed=9) for s in (0.1, 0.3, 0.6)]
    assert accs[0] > accs[1] > accs[2] > 0.75
    assert accs[0] > 0.975


# ---- reports --------------------------------------------------------------------------------
def test_best_report_is_the_argmax_of_expected_reward() -> None:
    p = np.linspace(0.0, 1.0, 201)
    for sure in (0.55, 0.7, 0.9):
        action = best_report(p, "wager", sure)
        value = np.stack([1 - p, p, np.full_like(p, sure)])  # below, above, opt out
        best = value.max(0)
        np.testing.assert_allclose(value[action, np.arange(p.size)], best)
        np.testing.assert_allclose(expected_reward(p, "wager", sure), best)
    np.testing.assert_array_equal(best_report(p, "choice"), (p > 0.5).astype(int))
    np.testing.assert_allclose(best_report(p, "confidence"), p)


def test_reporting_the_posterior_beats_distorted_reports() -> None:
    spec = PAPER.replace(sigma=0.4, stimulus_steps=8)
    batch = generate(spec, 4000, np.random.default_rng(10))
    obs = IdealObserver(spec)
    p = obs.decision_probs(batch)
    y = batch.labels > 0.5
    true_log = np.log2(np.where(y, p, 1 - p)).mean()
    assert obs.log_score(batch, probs=p) == pytest.approx(true_log)
    assert obs.log_score(batch, probs=p, normalised=True) == pytest.approx(1 + true_log)
    for scoring in ("log", "brier"):
        honest = realised_reward(p, y, "confidence", scoring=scoring).mean()
        # the observer predicts its own score
        assert abs(honest - expected_reward(p, "confidence", scoring=scoring).mean()) < 0.01
        for q in (0.5 + 0.8 * (p - 0.5), np.clip(0.5 + 1.2 * (p - 0.5), 1e-6, 1 - 1e-6), p**1.3):
            assert honest > realised_reward(q, y, "confidence", scoring=scoring).mean()
    # wagers: the optimal threshold beats the neighbouring ones on realised reward
    best = realised_reward(p, y, "wager", 0.7).mean()
    for other in (0.6, 0.8):
        act = np.where(np.maximum(p, 1 - p) < other, 2, (p > 0.5).astype(int))
        reward = np.where(act == 2, 0.7, act == y).mean()
        assert best > reward


# ---- bad input ------------------------------------------------------------------------------
def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match="method must be one of"):
        IdealObserver(PAPER, "bayes")
    with pytest.raises(ValueError, match="method='flat' needs linear"):
        IdealObserver(PAPER.replace(boundaries="circles"), "flat")
    with pytest.raises(ValueError, match="method='flat' needs linear"):
        IdealObserver(PAPER.replace(noise="gumbel"), "flat")
    with pytest.raises(ValueError, match="method='exact' needs latent_dim <= 2"):
        IdealObserver(PAPER.replace(latent_dim=3), "exact")
    with pytest.raises(ValueError, match="n_mc"):
        IdealObserver(PAPER, "mc", n_mc=0)
    obs = IdealObserver(PAPER)
    with pytest.raises(ValueError, match="stimulus_evidence must have shape"):
        obs.posterior(np.zeros((4, 20, 3)))
    with pytest.raises(ValueError, match="finite"):
        obs.posterior(np.full((1, 20, 2), np.nan))
    with pytest.raises(ValueError, match="report must be one of"):
        best_report(np.array([0.5]), "bet")
    with pytest.raises(ValueError, match="sure_reward"):
        best_report(np.array([0.5]), "wager", sure_reward=2.0)
    assert IdealObserver(PAPER.replace(latent_dim=5)).method == "flat"
    assert IdealObserver(PAPER.replace(latent_dim=5, noise="gumbel")).method == "mc"
