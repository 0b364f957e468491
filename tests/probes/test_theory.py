"""Theory: the ceiling's numbers (docs/science.md §7) and the exact inversion of the ideal observer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit

from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.probes import theory
from multitask_evidence.probes.record import running_mean


@pytest.mark.parametrize(
    "sigma, expected", [(0.1, 0.994), (0.2, 0.976), (0.3, 0.946), (0.4, 0.904), (0.6, 0.784)]
)
def test_ceiling_matches_spec_table(sigma, expected):
    spec = TaskSpec(sigma=sigma)
    assert theory.ceiling(spec) == pytest.approx(1 - 12 * sigma**2 / 20, abs=1e-12)
    assert round(theory.ceiling(spec), 3) == expected


def test_ceiling_generalisations():
    s = TaskSpec()
    # shrinkage form: Var / (Var + v) = (1/12) / (1/12 + 0.002)
    assert theory.ceiling(s, form="linear_shrunk") == pytest.approx((1 / 12) / (1 / 12 + 0.002))
    with pytest.raises(ValueError, match="form must be one of"):
        theory.ceiling(s, form="bayes")  # the Bayes bound is bayes_bound(), not a linear form
    # anisotropic sigma_2 = 2 sigma_1: mean noise variance (1 + 4) / 2 sigma^2 / t
    an = s.replace(noise="anisotropic")
    assert theory.ceiling(an) == pytest.approx(1 - 12 * 0.04 * 2.5 / 20)
    # Gumbel: variance pi^2 sigma^2 / 6
    gu = s.replace(noise="gumbel")
    assert theory.ceiling(gu) == pytest.approx(1 - 12 * np.pi**2 * 0.04 / 6 / 20)
    # AR(1): GLS variance is between iid (1/t) and fully correlated (1)
    ar = s.replace(noise="ar1")
    assert theory.ceiling(s) > theory.ceiling(ar) > 1 - 12 * 0.04
    # AR(1) with coefficient 0 is iid
    assert theory.ceiling(s.replace(noise="ar1", ar_coef=0.0)) == pytest.approx(theory.ceiling(s))
    # copula prior keeps uniform marginals: same ceiling, covariance arcsin(rho/2) / (2 pi)
    co = s.replace(prior="correlated", rho=0.6)
    assert theory.ceiling(co) == pytest.approx(theory.ceiling(s))
    z = np.random.default_rng(0).multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], 400_000)
    from scipy.special import ndtr

    emp = np.cov(ndtr(z).T)
    assert theory.prior_covariance(co) == pytest.approx(emp, abs=1e-3)


def test_ceiling_curve_over_the_trial():
    s = TaskSpec()
    c = theory.ceiling_curve(s)
    assert c.shape == (s.n_steps,)
    assert c[0] == 0.0  # fixation: no evidence
    assert c[1] == pytest.approx(1 - 12 * 0.04)  # t = 1
    assert c[-1] == pytest.approx(0.976)
    # Fig. 5a's marked theory 1 - 0.48 / (steps + 1)
    assert c[5] == pytest.approx(1 - 0.48 / 5)


@pytest.mark.parametrize(
    "spec, atol",
    [
        (TaskSpec(), 1e-12),
        (TaskSpec(latent_dim=5, n_tasks=12, offset_scale=0.1, noise="anisotropic"), 1e-9),
        (TaskSpec(latent_dim=3, n_tasks=6, boundaries="random", sigma=0.5), 1e-9),
    ],
    ids=["paper", "D5-offsets-anisotropic", "D3-N6-sigma0.5"],
)
def test_extraction_recovers_mu_from_ideal_probabilities(spec, atol):
    b = generate(spec, 400, np.random.default_rng(3))
    mu, seen = running_mean(spec, b.evidence)
    k = np.arange(spec.stimulus_start, spec.decision_start + 1)
    t = seen[k]
    probs = theory.ideal_probs(spec, mu[:, k], t)
    if spec.sigma < 0.5:
        assert (probs == 1.0).any()  # saturated outputs are part of the test
    mu_hat = theory.extract_mu(spec, t, probs)
    # exact wherever at least D outputs carry information (are not rounded to exactly 0 or 1)
    informative = ((probs > 0) & (probs < 1)).sum(axis=-1) >= spec.latent_dim
    assert informative.mean() > 0.9
    np.testing.assert_allclose(mu_hat[informative], mu[:, k][informative], rtol=0, atol=atol)
    assert np.isfinite(mu_hat).all()
    if informative.all():
        res = theory.extraction_error(spec, mu[:, k], b.latent, t, probs)
        assert res.decision_rmse < atol
        assert res.decision_r2_vs_mu == pytest.approx(1.0)
        mu_t = mu[:, spec.decision_start]
        assert res.decision_r2_latent == pytest.approx(1 - ((mu_t - b.latent) ** 2).mean() * 12)


def test_extraction_from_logits_and_uniform_weighting():
    spec = TaskSpec()
    b = generate(spec, 200, np.random.default_rng(4))
    mu, _ = running_mean(spec, b.evidence)
    mu_t = mu[:, spec.decision_start]
    # an agent that reports sigmoid(l) with Phi^-1(sigmoid(l)) = the ideal z: l = logit(Phi(z))
    z = (mu_t @ theory.task_geometry(spec).normals.T) / (0.2 / np.sqrt(20))
    z = np.clip(z, -6, 6)  # keep logit(Phi(z)) finite in float64
    from scipy.special import ndtr

    mu_ref = theory.extract_mu(spec, 20, ndtr(z), weighting="uniform")
    mu_log = theory.extract_mu(spec, 20, logits=logit(ndtr(z)))
    np.testing.assert_allclose(mu_log, mu_ref, atol=1e-8)


def test_extraction_bad_input():
    s = TaskSpec()
    with pytest.raises(ValueError, match="last axis n_tasks=24"):
        theory.extract_mu(s, 20, np.full((3, 5), 0.5))
    with pytest.raises(ValueError, match="NaN"):
        theory.extract_mu(s, 20, np.full((3, 24), np.nan))
    with pytest.raises(ValueError, match="linear task"):
        theory.extract_mu(TaskSpec(boundaries="circles"), 20, np.full((3, 24), 0.5))
    with pytest.raises(ValueError, match="n_tasks >= latent_dim"):
        theory.extract_mu(TaskSpec(latent_dim=3, n_tasks=2), 20, np.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="t must be >= 1"):
        theory.extract_mu(s, 0, np.full((3, 24), 0.5))
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        theory.extract_mu(s, 20, np.full((3, 24), 1.5))


def test_extraction_inverts_envs_ideal_observer():
    """The flat-prior IdealObserver of envs.ideal gives mu(t) back through extract_mu."""
    from multitask_evidence.envs.ideal import IdealObserver

    spec = TaskSpec()
    b = generate(spec, 300, np.random.default_rng(0))
    probs = IdealObserver(spec, method="flat").posterior(b.stimulus_evidence)  # [B, T, N]
    mu, _ = running_mean(spec, b.evidence)
    t = np.arange(1, spec.stimulus_steps + 1)
    mu_hat = theory.extract_mu(spec, t, probs)
    np.testing.assert_allclose(mu_hat, mu[:, spec.stimulus_start : spec.decision_start], atol=1e-12)


@pytest.mark.parametrize("t", [3, 5, 10, 20])
def test_fig5a_line_counts_the_sample_at_the_decision_step(t):
    """Free-RT networks (targets='free_rt_paper') are read where evidence still arrives:
    T + 1 samples, 1 - 12 sigma^2 / (T + 1) = 1 - 0.48 / (T + 1) at sigma = 0.2."""
    want = 1 - 0.48 / (t + 1)
    assert theory.fig5a_line(t) == pytest.approx(want, abs=1e-12)
    free = TaskSpec(targets="free_rt_paper", stimulus_steps=t)
    assert theory.decision_evidence_steps(free) == t + 1
    assert theory.ceiling(free) == pytest.approx(want, abs=1e-12)
    # the project's own free-RT variant and the paper's fixed-RT task are read after T samples
    for kind in ("ddm_bound", "paper"):
        assert theory.ceiling(free.replace(targets=kind)) == pytest.approx(1 - 0.48 / t)
    np.testing.assert_allclose(
        theory.fig5a_line(np.array([3, 5, 10, 20])), 1 - 0.48 / np.array([4, 6, 11, 21])
    )
    assert theory.fig5a_line(t, TaskSpec(sigma=0.4)) == pytest.approx(1 - 12 * 0.16 / (t + 1))
    # the per-step count rises through the decision step
    assert theory.evidence_steps(free).tolist() == [0, *range(1, t + 2)]


# ---- the Bayes (MMSE) bound ----------------------------------------------------------------
def _grid_posterior_mean(mu: np.ndarray, s: float, n_grid: int = 801) -> np.ndarray:
    """E[x | mu] for x ~ U[-0.5, 0.5], mu ~ N(x, s^2), by a midpoint grid over x (independent of
    the closed-form truncated-normal moments)."""
    grid = (np.arange(n_grid) + 0.5) / n_grid - 0.5
    out = np.empty_like(mu)
    for rows in np.array_split(np.arange(mu.size), 8):
        w = np.exp(-0.5 * ((mu.reshape(-1)[rows, None] - grid[None, :]) / s) ** 2)
        out.reshape(-1)[rows] = (w @ grid) / w.sum(axis=1)
    return out


def _r2_and_se(pred: np.ndarray, latent: np.ndarray) -> tuple[float, float]:
    """Prior-normalised r^2 of predictions [n, D] and its standard error over trials."""
    per_trial = ((pred - latent) ** 2).mean(axis=1) * 12.0
    return 1.0 - per_trial.mean(), per_trial.std() / np.sqrt(per_trial.size)


@pytest.mark.parametrize("sigma, table", [(0.2, 0.978), (0.4, 0.920), (0.6, 0.836)])
def test_bayes_bound_matches_brute_force_posterior_mean(sigma, table):
    spec = TaskSpec(sigma=sigma, encoder="none")
    b = generate(spec, 40000, np.random.default_rng(11))
    mu = b.stimulus_evidence.mean(axis=1)
    r2, se = _r2_and_se(_grid_posterior_mean(mu, sigma / np.sqrt(20)), b.latent)
    bound = theory.bayes_bound(spec)
    assert se < 1e-3
    assert bound == pytest.approx(r2, abs=max(3e-3, 3 * se))
    assert round(bound, 3) == table
    # the best (shrunk) linear read-out of mu sits below by a margin far beyond the Monte Carlo
    # error
    assert (
        bound - theory.ceiling(spec, form="linear_shrunk")
        > {0.2: 1e-3, 0.4: 7e-3, 0.6: 0.013}[sigma]
    )


def test_truncnorm_moments_known_values_and_far_tails():
    m, v = theory.truncnorm_moments(np.array([0.0, 0.0, 0.3]), np.array([1e-3, 1e3, 1e-2]))
    # narrow: untruncated; very wide: uniform on the box (mean 0, variance 1/12)
    assert m[:2] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert v[0] == pytest.approx(1e-6, rel=1e-9) and v[1] == pytest.approx(1 / 12, rel=1e-5)
    assert m[2] == pytest.approx(0.3, abs=1e-12) and v[2] == pytest.approx(1e-4, rel=1e-9)
    # a box 50 SDs below loc: the posterior is exponential from the edge, mean 0.5 - s^2 / d
    # (d = loc - 0.5), variance (s^2 / d)^2, to first order in s / d
    s, d = 0.01, 0.5
    m, v = theory.truncnorm_moments(np.array([0.5 + d, -0.5 - d]), np.array([s, s]))
    lam = s**2 / d
    assert m == pytest.approx([0.5 - lam, -0.5 + lam], rel=1e-5)
    assert v == pytest.approx([lam**2, lam**2], rel=1e-2)
    assert np.isfinite(theory.truncnorm_moments(np.array([40.0]), np.array([0.01]))[0]).all()


def test_bayes_bound_sits_above_the_linear_ceilings_and_meets_them_as_noise_vanishes():
    for spec in (
        TaskSpec(sigma=0.2),
        TaskSpec(sigma=0.6),
        TaskSpec(sigma=0.3, noise="anisotropic"),
        TaskSpec(sigma=0.2, noise="ar1"),
        TaskSpec(latent_dim=3, n_tasks=6, sigma=0.4),
    ):
        curve = theory.bayes_bound_curve(spec)
        assert curve.shape == (spec.n_steps,) and curve[0] == 0.0
        lin = theory.ceiling_curve(spec, form="linear_shrunk")
        assert np.all(curve[1:] > lin[1:]) and np.all(lin >= theory.ceiling_curve(spec))
        assert np.all(np.diff(curve) >= 0) and curve[-1] < 1.0
        assert curve[-1] == pytest.approx(theory.bayes_bound(spec))
    # E[Var] / (sigma^2 / t) -> 1 as sigma^2 / t -> 0, so the gap to the r^2 of mu (the paper's
    # Eq. 7), relative to 1 - that, shrinks in proportion to the posterior SD (edge effect ~ s)
    gaps = []
    for sigma in (0.2, 0.02, 0.002):
        spec = TaskSpec(sigma=sigma)
        lin = theory.ceiling(spec)
        gaps.append((theory.bayes_bound(spec) - lin) / (1 - lin))
    assert gaps[0] > gaps[1] > gaps[2] > 0
    assert gaps[1] / gaps[0] == pytest.approx(0.1, rel=0.1)
    assert gaps[2] / gaps[1] == pytest.approx(0.1, rel=0.02)
    assert gaps[2] < 2e-3
    assert theory.bayes_bound(TaskSpec(), 0) == 0.0


def test_bayes_bound_for_the_noise_and_prior_variants():
    rng = np.random.default_rng(5)
    # anisotropic: each axis on its own sigma_d
    an = TaskSpec(sigma=0.2, noise="anisotropic")
    per_axis = [theory.bayes_bound(TaskSpec(sigma=s)) for s in (0.2, 0.4)]
    assert theory.bayes_bound(an) == pytest.approx(1 - np.mean([1 - p for p in per_axis]))
    # AR(1): the exact posterior mean on generated trials reaches the quadrature
    ar = TaskSpec(sigma=0.3, noise="ar1", encoder="none")
    b = generate(ar, 20000, rng)
    pm = theory.posterior_mean(ar, b.stimulus_evidence)[:, -1]
    r2, se = _r2_and_se(pm, b.latent)
    assert theory.bayes_bound(ar) == pytest.approx(r2, abs=3 * se)
    assert theory.bayes_bound(ar) > theory.ceiling(ar, form="linear_shrunk") + 0.01
    # Gumbel: against a brute-force grid posterior built from the raw evidence's likelihood
    gu = TaskSpec(sigma=0.3, noise="gumbel", encoder="none")
    b = generate(gu, 20000, rng)
    grid = (np.arange(801) + 0.5) / 801 - 0.5
    ev = b.stimulus_evidence  # [n, T, D]
    pm = np.empty_like(b.latent)
    for d in range(2):
        # sum over steps of the standard-Gumbel log density of (X_s - x) / beta + gamma, with
        # the x-dependence pulled out of the sums
        sum_x = ev[:, :, d].sum(axis=1, keepdims=True)
        sum_e = np.exp(-ev[:, :, d] / 0.3).sum(axis=1, keepdims=True)
        logl = -(sum_x - 20 * grid) / 0.3 - np.exp(grid / 0.3 - np.euler_gamma) * sum_e
        w = np.exp(logl - logl.max(axis=1, keepdims=True))
        pm[:, d] = (w @ grid) / w.sum(axis=1)
    r2, se = _r2_and_se(pm, b.latent)
    assert theory.bayes_bound(gu) == pytest.approx(r2, abs=3 * se)
    assert theory.bayes_bound_method(gu).method == "quadrature"
    # copula prior: Monte Carlo; with rho = 0 it is the uniform prior
    co0 = TaskSpec(sigma=0.4, prior="correlated", rho=0.0)
    assert theory.bayes_bound_method(co0).method == "monte_carlo"
    assert theory.bayes_bound(co0) == pytest.approx(
        theory.bayes_bound(TaskSpec(sigma=0.4)), abs=1e-3
    )
    assert theory.bayes_bound(co0) == theory.bayes_bound(co0)  # fixed seed: repeatable
    co = co0.replace(rho=0.6)
    assert theory.bayes_bound(co) > theory.bayes_bound(co0) + 2e-3  # a correlated prior informs
    none = TaskSpec(prior="correlated", rho=0.5, noise="gumbel")
    how = theory.bayes_bound_method(none)
    assert how.method is None and "gumbel" in how.detail
    assert theory.bayes_bound(none) is None and theory.bayes_bound_curve(none) is None
    with pytest.raises(ValueError, match="uniform prior"):
        theory.posterior_mean(gu, b.stimulus_evidence)


def test_no_in_distribution_decoder_beats_the_bayes_bound():
    """Rich nonlinear read-outs of the evidence, fit by the project's decoder on generated trials,
    stay at or below the Bayes bound (within 3 standard errors); the exact posterior mean reaches
    it; both beat the best linear read-out of mu, so the bound is the one that binds."""
    from multitask_evidence.probes.decoding import decode

    spec = TaskSpec(sigma=0.6, encoder="none")
    rng = np.random.default_rng(21)
    train, test = generate(spec, 20000, rng), generate(spec, 20000, rng)

    def features(batch):
        mu = batch.stimulus_evidence.mean(axis=1)
        pm = theory.posterior_mean(spec, batch.stimulus_evidence)[:, -1]
        poly = [mu**k for k in range(1, 8)] + [mu[:, :1] * mu[:, 1:]]
        return np.concatenate([*poly, np.tanh(3 * mu), pm], axis=1), pm

    f_tr, _ = features(train)
    f_te, pm_te = features(test)
    bound = theory.bayes_bound(spec)
    lin = theory.ceiling(spec, form="linear_shrunk")
    res = decode(f_tr, train.latent, f_te, test.latent, var_prior=1 / 12)
    pred = f_te @ np.asarray(res.weights) + np.asarray(res.intercept)
    _, se = _r2_and_se(pred, test.latent)  # the standard error over test trials
    assert res.r2 <= bound + 3 * se
    assert res.r2 > lin + 3 * se  # the nonlinear features beat the best linear read-out of mu
    r2_pm, se_pm = _r2_and_se(pm_te, test.latent)
    assert r2_pm == pytest.approx(bound, abs=3 * se_pm)
    # a linear decoder of mu alone stays at the shrunk linear read-out's r^2
    mu_tr, mu_te = (b.stimulus_evidence.mean(axis=1) for b in (train, test))
    res_lin = decode(mu_tr, train.latent, mu_te, test.latent, var_prior=1 / 12)
    assert res_lin.r2 == pytest.approx(lin, abs=3 * se)
