"""Theory: the ceiling's numbers (SPEC section 6) and the exact inversion of the ideal observer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit

from envs import TaskSpec, generate
from probes import theory
from probes.record import running_mean


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
    assert theory.ceiling(s, form="bayes") == pytest.approx((1 / 12) / (1 / 12 + 0.002))
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
    from envs.ideal import IdealObserver

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
