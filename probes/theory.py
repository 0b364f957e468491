"""Theory predictions the probes check against (docs/science.md §7).

* :func:`ceiling` -- the r^2 of mu (the paper's Eq. 7) after t evidence steps,
  1 - v(t) / Var_prior(x*), where v(t) is the variance of the optimal unbiased linear estimate
  mu(t) of x* from X(1..t). For isotropic i.i.d. Gaussian noise v(t) = sigma^2 / t and
  Var_prior = 1/12, i.e. the familiar 1 - 12 sigma^2 / t (0.976 for sigma = 0.2, t = 20). It is
  the r^2 of mu itself, not a bound on a linear read-out: mu shrunk towards 0 reaches
  V / (V + v(t)) (``form='linear_shrunk'``), and the Bayes posterior mean more.
  Generalised per spec: anisotropic noise (per-axis sigma_d), AR(1) noise (v(t) of the generalised
  least-squares mean of a correlated sample), Gumbel noise (its variance pi^2 sigma^2 / 6), the
  Gaussian-copula prior (its marginals are still U[-0.5, 0.5], so Var_prior = 1/12 per axis).
  Over D axes the r^2 uses the paper's convention: 1 - mean_d MSE_d / mean_d Var_d.
* :func:`bayes_bound` -- the best r^2 *any* estimator can reach, the Bayes posterior mean under
  the bounded prior: 1 - E[Var(x* | X(1..t))] / Var_prior (0.9779 / 0.9195 / 0.8364 at sigma =
  0.2 / 0.4 / 0.6, t = 20, against the r^2 of mu 0.976 / 0.904 / 0.784), with
  :func:`bayes_bound_curve` over a trial's steps and :func:`posterior_mean` per trial.
* :func:`extract_mu` -- the closed-form inversion of the flat-prior ideal observer,
  mu_hat = (C^T C)^-1 C^T [s(t) Phi^-1(Y) - b], applied to any agent's output probabilities
  (or logits), and :func:`extraction_error` -- how close that agent-implied estimate is to mu(t).

Everything is numpy; shapes are documented per function (t counts evidence steps seen).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import log_expit, log_ndtr, ndtr, ndtri, ndtri_exp

from multitask_evidence.envs import TaskSpec, task_geometry
from multitask_evidence.envs.ideal.features import MAX_LATENT_DIM as FEATURE_GRID_MAX_D
from multitask_evidence.envs.trials import noise_scales


# ---- prior and noise moments --------------------------------------------------------------
def prior_covariance(spec: TaskSpec) -> np.ndarray:
    """Covariance [D, D] of x* under the spec's prior.

    Uniform U[-0.5, 0.5]^D: I / 12. Gaussian copula x = Phi(z) - 0.5 with corr(z) = rho: the
    marginals are still uniform (variance 1/12) and Cov(Phi(z_i), Phi(z_j)) = arcsin(rho/2)/(2 pi).
    """
    d = spec.latent_dim
    cov = np.eye(d) / 12.0
    if spec.prior == "correlated":
        off = np.arcsin(spec.rho / 2.0) / (2.0 * np.pi)
        cov = cov + off * (np.ones((d, d)) - np.eye(d))
    return cov


def prior_variance(spec: TaskSpec) -> np.ndarray:
    """Per-axis prior variance [D] of x* (1/12 for every prior the package has)."""
    return np.diag(prior_covariance(spec)).copy()


@functools.lru_cache(maxsize=256)
def _gls_unit_variance(n: int, ar_coef: float) -> float:
    """Variance of the best linear unbiased estimate of a constant from n samples of unit-variance
    AR(1) noise with coefficient ar_coef: 1 / (1^T R^-1 1), R_ij = a^|i-j|."""
    idx = np.arange(n)
    r = ar_coef ** np.abs(idx[:, None] - idx[None, :])
    return float(1.0 / np.linalg.solve(r, np.ones(n)).sum())


def estimate_variance(spec: TaskSpec, t: int | np.ndarray) -> np.ndarray:
    """Per-axis variance v_d(t) [..., D] of the optimal unbiased linear estimate of x* after t
    evidence steps (t may be an array; t = 0 gives +inf: no evidence yet).

    i.i.d. noise: sigma_d^2 / t (sigma_d from ``envs.trials.noise_scales``: anisotropic axes,
    Gumbel SD). AR(1): sigma^2 / (1^T R_t^-1 1) (generalised least squares).
    """
    t_arr = np.asarray(t)
    if np.any(t_arr < 0) or np.any(t_arr != np.round(t_arr)):
        raise ValueError(f"t (evidence steps seen) must be non-negative integers, got {t!r}")
    scales2 = noise_scales(spec) ** 2  # [D]
    flat = t_arr.reshape(-1).astype(int)
    if spec.noise == "ar1":
        unit = np.array(
            [np.inf if k == 0 else _gls_unit_variance(int(k), float(spec.ar_coef)) for k in flat]
        )
    else:
        with np.errstate(divide="ignore"):
            unit = np.where(flat > 0, 1.0 / np.maximum(flat, 1), np.inf)
    out = unit[:, None] * scales2[None, :]
    return out.reshape(*t_arr.shape, spec.latent_dim)


CEILING_FORMS = ("spec", "linear_shrunk")


def ceiling(spec: TaskSpec, t: int | np.ndarray | None = None, *, form: str = "spec") -> Any:
    """The r^2 of mu (the paper's Eq. 7) after t evidence steps: a reference for decoding x*.

    Default t: the evidence steps seen at the decision step, where the probes read the state
    (:func:`decision_evidence_steps`): stimulus_steps, or stimulus_steps + 1 for
    targets='free_rt_paper', whose evidence also arrives at the decision step; there it is
    1 - 12 sigma^2 / (T + 1), the paper's Fig. 5a line (see :func:`fig5a_line`).

    form='spec' (the headline number, the name kept for compatibility): 1 - mean_d v_d(t) /
    mean_d Var_d, the r^2 of the unbiased estimate mu(t) itself (1 - 12 sigma^2 / t for
    i.i.d. noise); not a bound on a linear read-out; may be negative for tiny t and large sigma.
    form='linear_shrunk': the best *shrunk* linear estimate of x* from mu(t),
    1 - mean_d [Var_d v_d / (Var_d + v_d)] / mean_d Var_d (always in [0, 1], slightly above
    'spec'; an in-distribution ridge decoder can reach it, e.g. 0.9766 against 0.976 at
    sigma = 0.2, t = 20).
    Neither is the Bayes bound: the posterior mean under the bounded prior is nonlinear in mu
    and does better (:func:`bayes_bound`).
    Returns a float for scalar t, else an array of t's shape; None for noise in feature space
    (``noise_stage='features'``), where no evidence mean lives in latent space: there the
    Bayes bound (:func:`bayes_bound`) is the reference.
    """
    if form not in CEILING_FORMS:
        raise ValueError(f"form must be one of {list(CEILING_FORMS)}, got {form!r}")
    if spec.noise_stage == "features":
        return None  # no evidence mean in latent space: the Bayes bound is the reference
    if t is None:
        t = decision_evidence_steps(spec)
    var = prior_variance(spec)
    v = estimate_variance(spec, t)
    if form == "spec":
        mse = np.where(np.isinf(v), var, v)  # no evidence: the prior mean, r^2 = 0
    else:
        mse = np.where(np.isinf(v), var, var * v / (var + np.where(np.isinf(v), 0.0, v)))
    r2 = 1.0 - mse.mean(axis=-1) / var.mean()
    return float(r2) if np.ndim(r2) == 0 else r2


def evidence_steps(spec: TaskSpec) -> np.ndarray:
    """[n_steps] number of evidence steps seen at each step of a trial (0 before the stimulus,
    stimulus_steps during the delay and decision; for targets='free_rt_paper' the count keeps
    rising through the decision steps, which carry evidence)."""
    k = np.arange(spec.n_steps)
    return np.clip(k - spec.stimulus_start + 1, 0, spec.evidence_steps)


def decision_evidence_steps(spec: TaskSpec) -> int:
    """Evidence steps seen at the (first) decision step, where the probes read the hidden state:
    stimulus_steps, or stimulus_steps + 1 for targets='free_rt_paper'."""
    return int(evidence_steps(spec)[spec.decision_start])


def fig5a_line(
    stimulus_steps: int | np.ndarray, spec: TaskSpec | None = None, *, form: str = "spec"
) -> Any:
    """The theory line of the paper's Fig. 5a: the r^2 of mu (the paper's Eq. 7) at the read-out
    of free-reaction-time networks against trial duration, 1 - 12 sigma^2 / (T + 1) for T stimulus steps (0.48 / (T + 1) at
    sigma = 0.2); the + 1 is the sample that arrives at the decision step, where the state is read.

    stimulus_steps: T, scalar or array. spec: the task (noise, sigma; default the paper's,
    sigma = 0.2); it is taken with targets='free_rt_paper' and each T, i.e. this is
    ``ceiling(spec.replace(targets='free_rt_paper', stimulus_steps=T))``.
    Returns a float for scalar T, else an array of T's shape.
    """
    base = (spec or TaskSpec()).replace(
        targets="free_rt_paper", boundaries="lines", offset_scale=0.0, delay_steps=0
    )
    ts = np.asarray(stimulus_steps)
    if np.any(ts < 1) or np.any(ts != np.round(ts)):
        raise ValueError(f"stimulus_steps must be positive integers, got {stimulus_steps!r}")
    out = np.array(
        [ceiling(base.replace(stimulus_steps=int(t)), form=form) for t in ts.reshape(-1)]
    ).reshape(ts.shape)
    return float(out) if out.ndim == 0 else out


def ceiling_curve(spec: TaskSpec, *, form: str = "spec") -> np.ndarray | None:
    """:func:`ceiling` (the r^2 of mu, the paper's Eq. 7, by default) [n_steps] at each step of
    a trial (0 before any evidence); None for noise in feature space (see :func:`ceiling`)."""
    if spec.noise_stage == "features":
        return None
    return np.asarray(ceiling(spec, evidence_steps(spec), form=form))


# ---- the Bayes (MMSE) bound ---------------------------------------------------------------
# The prior box of every axis is [-0.5, 0.5] (uniform prior, or the copula's uniform marginals).
_BOX = 0.5
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(24)
_GL12_NODES, _GL12_WEIGHTS = np.polynomial.legendre.leggauss(12)
_EDGE_SD = 12.0  # half-width (in posterior SDs) of the box-edge region the quadrature resolves
_BAYES_MC_TRIALS = 4000
_BAYES_MC_SAMPLES = 256
_BAYES_MC_SEED = 20250
# every step of every trial costs one [F] x [F, G] product on the feature-noise grid
_FEATURE_BAYES_TRIALS = 1000


def truncnorm_moments(loc: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of N(loc, scale^2) truncated to the box [-0.5, 0.5] (elementwise).

    loc, scale: broadcastable arrays (latent units; scale > 0). Returns (mean, var) of their
    broadcast shape. Computed in log space after reflecting loc to >= 0, so the box lies in the
    lower tail of the normal, where log Phi keeps full relative precision: exact to ~1e-12 even
    when the box is tens of SDs from loc (the posterior then hugs the nearest edge).
    """
    loc = np.asarray(loc, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    sgn = np.where(loc < 0, -1.0, 1.0)
    m = np.abs(loc)
    a = (-_BOX - m) / scale  # a < b, and a < 0 always
    b = (_BOX - m) / scale
    la, lb = log_ndtr(a), log_ndtr(b)
    log_z = lb + np.log1p(-np.exp(la - lb))  # log(Phi(b) - Phi(a))
    log_phi_a = -0.5 * a**2 - 0.5 * np.log(2 * np.pi)
    log_phi_b = -0.5 * b**2 - 0.5 * np.log(2 * np.pi)
    ra, rb = np.exp(log_phi_a - log_z), np.exp(log_phi_b - log_z)  # phi / Z at both edges
    mean = m + scale * (ra - rb)
    var = scale**2 * (1.0 + a * ra - b * rb - (ra - rb) ** 2)
    mean = np.clip(mean, -_BOX, _BOX)
    var = np.clip(var, 0.0, 1.0 / 12.0)  # never above the variance of the uniform box
    return sgn * mean, var


def _expected_truncnorm_variance(s: float) -> float:
    """E over mu of Var(x | mu) for x ~ U[-0.5, 0.5], mu = x + N(0, s^2) (latent units^2).

    The marginal density of mu is Z(mu) = Phi((0.5 - mu)/s) - Phi((-0.5 - mu)/s), the
    normaliser of the truncated posterior, so E[Var] = int Z(mu) Var(x | mu) dmu. The integrand
    is even in mu; where the box edges are more than _EDGE_SD SDs away it equals s^2 to double
    precision (the untruncated posterior), and the edge region [0.5 - 12 s, 0.5 + 12 s] is
    integrated by composite Gauss-Legendre (24 nodes per half-SD panel): error < 1e-10.
    """
    if not np.isfinite(s):
        return 1.0 / 12.0
    if s <= 0:
        return 0.0
    lo = max(0.0, _BOX - _EDGE_SD * s)
    hi = _BOX + _EDGE_SD * s
    n_panels = int(np.ceil((hi - lo) / (0.5 * s)))
    edges = np.linspace(lo, hi, n_panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    mu = edges[:-1, None] + half * (_GL_NODES[None, :] + 1.0)
    w = half * _GL_WEIGHTS[None, :]
    a, b = (-_BOX - mu) / s, (_BOX - mu) / s
    z = ndtr(b) - ndtr(a)
    _, var = truncnorm_moments(mu, np.full_like(mu, s))
    # the far edge -0.5 is >= 0.5 >= 12 s away from the interior strip [0, lo]: there Z Var = s^2
    return float(2.0 * (s**2 * lo + (w * z * var).sum()))


def _expected_location_variance(log_kernel: Any, y_lo: float, y_hi: float, width: float) -> float:
    """E over m of Var(x | m) for x ~ U[-0.5, 0.5] and a statistic m = x + y, y ~ f (latent
    units^2), where f (log density ``log_kernel(y)``, unnormalised, support within [y_lo, y_hi],
    spread ~ ``width``) is a location family whose likelihood in x is f(m - x).

    Double composite Gauss-Legendre (12 nodes per panel of width <= width / 2) over (m, x): the posterior
    is f(m - x) on the box, its normaliser is the marginal density of m.
    """

    def nodes(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        n = max(2, int(np.ceil((hi - lo) / (0.5 * width))))
        e = np.linspace(lo, hi, n + 1)
        h = 0.5 * np.diff(e)[:, None]
        return (e[:-1, None] + h * (_GL12_NODES + 1.0)).ravel(), (h * _GL12_WEIGHTS).ravel()

    x, wx = nodes(-_BOX, _BOX)
    m, wm = nodes(-_BOX + y_lo, _BOX + y_hi)
    y = np.linspace(y_lo, y_hi, 4001)
    log_norm = float(np.log(np.trapezoid(np.exp(log_kernel(y) - log_kernel(y).max()), y)))
    log_norm += float(log_kernel(y).max())
    total = 0.0
    for rows in np.array_split(np.arange(m.size), max(1, m.size * x.size // 2_000_000)):
        f = np.exp(log_kernel(m[rows, None] - x[None, :]) - log_norm) * wx  # [m, x]
        z = f.sum(axis=1)
        m1 = f @ x
        m2 = f @ x**2
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(z > 0, m2 / z - (m1 / np.where(z > 0, z, 1.0)) ** 2, 0.0)
        total += float((wm[rows] * z * np.maximum(var, 0.0)).sum())
    return total


def _gumbel_log_kernel(t: int, beta: float) -> tuple[Any, float, float, float]:
    """Density of y = mhat - x for Gumbel noise (scale beta, centred): y = beta log(t / G) with
    G ~ Gamma(t, 1) (mhat is the likelihood's mode, see ``envs.ideal``). Returns (log density up
    to a constant, y_lo, y_hi, SD)."""
    from scipy.special import polygamma
    from scipy.stats import gamma as gamma_dist

    def log_kernel(y: np.ndarray) -> np.ndarray:
        u = -np.asarray(y) / beta  # log(G / t)
        return t * u - t * np.exp(np.minimum(u, 700.0))

    g_lo, g_hi = gamma_dist.ppf([1e-13, 1.0 - 1e-13], t)
    y_lo, y_hi = beta * np.log(t / g_hi), beta * np.log(t / g_lo)
    sd = beta * float(np.sqrt(polygamma(1, t)))
    return log_kernel, float(y_lo), float(y_hi), sd


@dataclass
class BayesBoundMethod:
    """How :func:`bayes_bound` computes the bound for a spec.

    method: 'quadrature' (deterministic, error < 1e-6), 'monte_carlo' (fixed seed, so repeatable;
    standard error ~3e-4 in r^2 at sigma = 0.4, t = 20) or None (not computed); detail: why,
    in words.
    """

    method: str | None
    detail: str


def bayes_bound_method(spec: TaskSpec) -> BayesBoundMethod:
    """Which computation :func:`bayes_bound` uses for ``spec`` (and why)."""
    gaussian = spec.noise in ("gaussian", "anisotropic", "ar1")
    if spec.noise_stage == "features":
        if spec.latent_dim > FEATURE_GRID_MAX_D:
            return BayesBoundMethod(
                None, f"noise in feature space: the posterior grid needs latent_dim <= "
                f"{FEATURE_GRID_MAX_D}")
        return BayesBoundMethod(
            "monte_carlo",
            f"noise in feature space: {_FEATURE_BAYES_TRIALS} trials (seed {_BAYES_MC_SEED}), "
            "posterior variance on the ideal observer's grid (envs.ideal.features)",
        )
    if spec.prior == "uniform" and gaussian:
        return BayesBoundMethod(
            "quadrature",
            "uniform prior, Gaussian-likelihood noise: per-axis truncated-normal posterior "
            "(closed-form variance), expectation over mu by Gauss-Legendre quadrature",
        )
    if spec.prior == "uniform" and spec.noise == "gumbel":
        return BayesBoundMethod(
            "quadrature",
            "uniform prior, Gumbel noise: per-axis posterior f(mhat - x) on the box, double "
            "Gauss-Legendre quadrature over (mhat, x)",
        )
    if spec.prior == "correlated" and gaussian:
        return BayesBoundMethod(
            "monte_carlo",
            f"Gaussian-copula prior: {_BAYES_MC_TRIALS} trials (seed {_BAYES_MC_SEED}), posterior "
            f"moments by importance sampling ({_BAYES_MC_SAMPLES} draws per trial from the "
            "uniform-prior truncated-normal posterior, weighted by the copula density)",
        )
    return BayesBoundMethod(
        None,
        f"no Bayes bound for prior={spec.prior!r} with noise={spec.noise!r} (the posterior "
        "neither factorises per axis nor has a Gaussian likelihood to sample around)",
    )


def _truncnorm_sample(loc: np.ndarray, scale: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draws of N(loc, scale^2) truncated to [-0.5, 0.5] from uniforms u
    (broadcast shapes). Reflected to loc >= 0 and done in log space (log Phi, ndtri_exp), so a
    box far in the normal's tail still gives draws inside it."""
    sgn = np.where(loc < 0, -1.0, 1.0)
    m = np.abs(loc)
    la, lb = log_ndtr((-_BOX - m) / scale), log_ndtr((_BOX - m) / scale)
    # log(Phi(a) + u (Phi(b) - Phi(a))) = lb + log(u + (1 - u) Phi(a) / Phi(b))
    log_q = lb + np.log(u + (1.0 - u) * np.exp(la - lb))
    x = m + scale * ndtri_exp(np.minimum(log_q, 0.0))
    return sgn * np.clip(x, -_BOX, _BOX)


def _copula_expected_variance(spec: TaskSpec, t: int) -> np.ndarray:
    """Monte Carlo E[Var(x_d | X(1..t))] [D] under the Gaussian-copula prior (Gaussian-family
    noise), fixed seed: x* from the prior, the sufficient statistic mu ~ N(x*, v(t)), posterior
    moments by self-normalised importance sampling from the per-axis truncated-normal posterior
    of the uniform prior (the proposal), weighted by the copula density."""
    from multitask_evidence.envs.trials import sample_latents

    d = spec.latent_dim
    v = estimate_variance(spec, t)  # [D]
    rng = np.random.default_rng(np.random.SeedSequence([_BAYES_MC_SEED, int(t)]))
    x = sample_latents(spec, rng, _BAYES_MC_TRIALS)
    mu = x + rng.standard_normal(x.shape) * np.sqrt(v)
    s = np.sqrt(v)[None, None, :]
    u = rng.random((_BAYES_MC_TRIALS, _BAYES_MC_SAMPLES, d))
    draws = _truncnorm_sample(mu[:, None, :], s, u)  # [n, K, D]
    z = ndtri(np.clip(draws + 0.5, 1e-300, 1.0 - 1e-16))
    corr = np.full((d, d), spec.rho) + (1.0 - spec.rho) * np.eye(d)
    quad = np.linalg.inv(corr) - np.eye(d)
    logw = -0.5 * np.einsum("nki,ij,nkj->nk", z, quad, z)
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    m1 = np.einsum("nk,nkd->nd", w, draws)
    m2 = np.einsum("nk,nkd->nd", w, draws**2)
    # weighted sample variance, debiased by 1 - sum w^2 (= 1 - 1/K for equal weights)
    debias = 1.0 - (w**2).sum(axis=1, keepdims=True)
    return (np.maximum(m2 - m1**2, 0.0) / debias).mean(axis=0)


_FEATURE_VARIANCE_TABLES: dict[tuple[Any, ...], np.ndarray] = {}
"""The last few feature-noise posterior-variance tables, keyed by :func:`_information_key`: the
networks of a sweep that differ only in their boundaries or N share one (about 10 s each)."""


def _information_key(spec: TaskSpec) -> tuple[Any, ...]:
    """What the posterior over x* depends on: every TaskSpec field except those that shape only
    the labels (N, boundaries, targets) and the seed, which enters through the encoder's
    parameters, hashed."""
    labels_only = {"n_tasks", "boundaries", "offset_scale", "targets", "ddm_bound", "seed"}
    fields = tuple(
        (f.name, repr(getattr(spec, f.name)))
        for f in dataclasses.fields(spec)
        if f.name not in labels_only
    )
    geo = task_geometry(spec)
    digest = hashlib.sha1()
    for arr in (*geo.encoder, *(() if geo.mix is None else (geo.mix,))):
        a = np.ascontiguousarray(arr)
        digest.update(repr((a.dtype.str, a.shape)).encode())
        digest.update(a.tobytes())
    return (*fields, digest.hexdigest())


def _feature_expected_variance(spec: TaskSpec, t: int | np.ndarray) -> np.ndarray:
    """E[Var(x*_d | X(1..t))] [..., D] with noise in feature space: fixed trials (seed
    ``_BAYES_MC_SEED``), every step's posterior on the ideal observer's grid in one pass."""
    from multitask_evidence.envs.ideal import IdealObserver
    from multitask_evidence.envs.trials import generate

    t_arr = np.asarray(t)
    if np.any(t_arr < 0) or np.any(t_arr != np.round(t_arr)) or np.any(
        t_arr > spec.evidence_steps
    ):
        raise ValueError(
            f"t (evidence steps seen) must be integers in [0, {spec.evidence_steps}], got {t!r}"
        )
    key = _information_key(spec)
    table = _FEATURE_VARIANCE_TABLES.get(key)
    if table is None:
        batch = generate(spec, _FEATURE_BAYES_TRIALS, np.random.default_rng(_BAYES_MC_SEED))
        obs = IdealObserver(spec)
        mean, second = obs.posterior_moments(batch.stimulus_evidence)  # [n, Ts, D] each
        per_step = np.maximum(second - mean**2, 0.0).mean(axis=0)  # [Ts, D]
        table = np.concatenate([prior_variance(spec)[None], per_step])  # row k: k samples seen
        if len(_FEATURE_VARIANCE_TABLES) >= 8:
            _FEATURE_VARIANCE_TABLES.pop(next(iter(_FEATURE_VARIANCE_TABLES)))
        _FEATURE_VARIANCE_TABLES[key] = table
    return table[t_arr.astype(int)].copy()


def expected_posterior_variance(spec: TaskSpec, t: int | np.ndarray) -> np.ndarray | None:
    """E[Var(x*_d | X(1..t))] [..., D] (latent units^2), the Bayes MMSE per axis after t
    evidence steps (t may be an array; t = 0 gives the prior variance). None when
    :func:`bayes_bound_method` has no method for the spec."""
    how = bayes_bound_method(spec)
    if how.method is None:
        return None
    if spec.noise_stage == "features":
        return _feature_expected_variance(spec, t)
    t_arr = np.asarray(t)
    v = estimate_variance(spec, t_arr)  # validates t; [..., D]
    flat_t = t_arr.reshape(-1).astype(int)
    out = np.empty((flat_t.size, spec.latent_dim))
    for i, k in enumerate(flat_t):  # a loop over the distinct evidence counts (<= T of them)
        if k == 0:
            out[i] = prior_variance(spec)
        elif spec.prior == "correlated":
            out[i] = _copula_expected_variance(spec, int(k))
        elif spec.noise == "gumbel":
            kern = _gumbel_log_kernel(int(k), float(spec.sigma))
            # i.i.d. axes with one scale: one integral serves every axis
            out[i] = _expected_location_variance(*kern)
        else:
            out[i] = [
                _expected_truncnorm_variance(float(s))
                for s in np.sqrt(v.reshape(-1, v.shape[-1])[i])
            ]
    return out.reshape(*t_arr.shape, spec.latent_dim)


def bayes_bound(spec: TaskSpec, t: int | np.ndarray | None = None) -> Any:
    """Bayes bound on decoding x* after t evidence steps (default: those seen at the decision
    step, :func:`decision_evidence_steps`): the r^2 of
    the posterior mean E[x* | X(1..t)] under the task's own prior, which no estimator, linear or
    not, can beat in expectation.

    r^2_bayes(t) = 1 - mean_d E[Var(x*_d | X)] / mean_d Var_prior_d (the paper's convention, as in
    :func:`ceiling`). It lies above the r^2 of mu (the paper's Eq. 7; the bounded prior is
    informative near the box edges) and meets it as sigma^2 / t -> 0; e.g. sigma = 0.2, t = 20:
    0.9780 against 0.976.
    How it is computed (:func:`bayes_bound_method`): uniform prior with Gaussian, anisotropic
    (per-axis sigma_d) or AR(1) noise (the GLS likelihood is Gaussian with variance v_d(t)):
    deterministic quadrature over the truncated-normal posterior; uniform prior with Gumbel
    noise: deterministic double quadrature; Gaussian-copula prior with Gaussian-family noise:
    Monte Carlo with a fixed seed (repeatable; SE ~3e-4); copula prior with Gumbel noise: None.
    The bound concerns the raw evidence; an encoder f only loses information, so it bounds
    decoding from encoded observations too.
    Returns a float for scalar t, an array of t's shape otherwise, or None (no method).
    """
    if t is None:
        t = decision_evidence_steps(spec)
    ev = expected_posterior_variance(spec, t)
    if ev is None:
        return None
    r2 = 1.0 - ev.mean(axis=-1) / prior_variance(spec).mean()
    return float(r2) if np.ndim(r2) == 0 else r2


def bayes_bound_curve(spec: TaskSpec) -> np.ndarray | None:
    """Bayes bound r^2 [n_steps] at each step of a trial (0 before any evidence), like
    :func:`ceiling_curve`; None when the spec has no method."""
    steps = evidence_steps(spec)
    uniq, inv = np.unique(steps, return_inverse=True)
    vals = bayes_bound(spec, uniq)
    return None if vals is None else np.asarray(vals)[inv]


def _gls_weights(spec: TaskSpec, t: int) -> np.ndarray:
    """Weights [t] of the best linear unbiased estimate of x* from X(1..t) (uniform for i.i.d.
    noise; R_t^-1 1 / 1^T R_t^-1 1 for AR(1))."""
    if spec.noise != "ar1":
        return np.full(t, 1.0 / t)
    idx = np.arange(t)
    r = float(spec.ar_coef) ** np.abs(idx[:, None] - idx[None, :])
    w = np.linalg.solve(r, np.ones(t))
    return w / w.sum()


def posterior_mean(spec: TaskSpec, stimulus_evidence: np.ndarray) -> np.ndarray:
    """Bayes posterior mean E[x* | X(1..t)] [B, Ts, D] at every evidence step t = 1..Ts.

    stimulus_evidence: [B, Ts, D] raw evidence (``TrialBatch.stimulus_evidence``).
    Uniform prior with Gaussian, anisotropic or AR(1) noise only (the posterior is then a
    truncated normal per axis around the GLS estimate mu_d(t) with variance v_d(t)).
    """
    if spec.prior != "uniform" or spec.noise not in ("gaussian", "anisotropic", "ar1"):
        raise ValueError(
            "posterior_mean needs the uniform prior and Gaussian-likelihood noise "
            f"(gaussian, anisotropic, ar1), got prior={spec.prior!r}, noise={spec.noise!r}"
        )
    x = np.asarray(stimulus_evidence, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != spec.latent_dim:
        raise ValueError(f"stimulus_evidence must be [B, Ts, {spec.latent_dim}], got {x.shape}")
    ts = x.shape[1]
    steps = np.arange(1, ts + 1)
    if spec.noise == "ar1":
        mu = np.stack([x[:, :k].transpose(0, 2, 1) @ _gls_weights(spec, k) for k in steps], axis=1)
    else:
        mu = np.cumsum(x, axis=1) / steps[None, :, None]
    scale = np.sqrt(estimate_variance(spec, steps))[None]  # [1, Ts, D]
    return truncnorm_moments(mu, scale)[0]


# ---- closed-form extraction of mu from output probabilities -------------------------------
def _probit(probs: np.ndarray | None, logits: np.ndarray | None) -> np.ndarray:
    """Phi^-1 of the output probabilities, computed stably (from logits when given)."""
    if logits is not None:
        lg = np.asarray(logits, dtype=np.float64)
        # Phi^-1(sigmoid(l)) from log-probabilities, symmetric so neither tail saturates
        pos = -ndtri_exp(log_expit(-np.abs(lg)))
        return np.where(lg >= 0, pos, -pos)
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return ndtri(p)


def extract_mu(
    spec: TaskSpec,
    t: int | np.ndarray,
    probs: np.ndarray | None = None,
    *,
    logits: np.ndarray | None = None,
    weighting: str = "precision",
) -> np.ndarray:
    """Agent-implied estimate of x* from output probabilities: invert Y_i = Phi((c_i.mu + b_i)/s_i).

    spec: a linear task (boundaries 'lines' or 'random'), N >= D with C of full column rank.
    t: evidence steps seen, scalar or broadcastable to the leading axes of ``probs`` (e.g. [T]
       for probs [n, T, N]); every t must be >= 1.
    probs: [..., N] probabilities P(y_i = 1); or ``logits`` [..., N] (sigmoid pre-activations),
       which avoids the saturation of probabilities near 0 and 1.
    weighting: 'uniform' is the closed-form mu = (C^T C)^-1 C^T [s Phi^-1(Y) - b] (outputs
       that are exactly 0 or 1 are dropped); 'precision' (default) weights task i by phi(z_i)^2,
       the inverse variance of the rounding error of Phi^-1(Y_i), so saturated outputs do not
       spoil the estimate. Both are exact on exact inputs. Logits are never saturated and are
       always weighted uniformly.
    s_i = sqrt(sum_d c_id^2 v_d(t)) generalises sigma / sqrt(t) to anisotropic / AR(1) noise.
    Returns mu_hat [..., D].

    The ideal observer's outputs give mu back (r^2 of mu_hat = the r^2 of mu, 0.976 on the paper
    task), yet a trained network that is 0.99 of the ideal observer's accuracy gives only
    ~0.67, because its outputs are miscalibrated exactly where the extraction reads mu's radius:
    with boundaries through the origin the near-boundary outputs fix only mu's angle, and its
    radius sits in outputs deep in the tails (|Phi^-1(Y)| ~ 5-15, within 1e-6 of 0 or 1), where
    the cross-entropy barely constrains a network and its probits are 0.4-0.65 of the ideal
    observer's (a probit temperature of 2 alone takes ideal outputs from 0.976 to 0.75).
    """
    if not spec.is_linear:
        raise ValueError(
            f"extract_mu needs a linear task (boundaries 'lines' or 'random'), got "
            f"boundaries={spec.boundaries!r}"
        )
    if weighting not in ("precision", "uniform"):
        raise ValueError(f"weighting must be 'precision' or 'uniform', got {weighting!r}")
    if (probs is None) == (logits is None):
        raise ValueError("give exactly one of probs or logits")
    arr = np.asarray(probs if probs is not None else logits)
    n, d = spec.n_tasks, spec.latent_dim
    if arr.ndim < 1 or arr.shape[-1] != n:
        raise ValueError(f"probs/logits must have last axis n_tasks={n}, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ValueError("probs/logits contain NaN")
    if probs is not None and (np.any(arr < 0) or np.any(arr > 1)):
        raise ValueError("probs must lie in [0, 1]")
    if n < d:
        raise ValueError(f"extraction needs n_tasks >= latent_dim, got N={n} < D={d}")
    geo = task_geometry(spec)
    c, b = geo.normals, geo.offsets  # [N, D], [N]
    t_arr = np.asarray(t)
    if np.any(t_arr < 1):
        raise ValueError(f"t must be >= 1 evidence step for extraction, got {t!r}")
    v = estimate_variance(spec, t_arr)  # [..., D]
    s = np.sqrt(v @ (c.T**2))  # [..., N]
    z = _probit(probs, logits)  # [..., N]
    finite = np.isfinite(z)
    # Outputs of exactly 0 or 1 only bound z; keep them at the largest finite |z| with a
    # negligible weight so every system stays full rank (exact where >= D outputs are unsaturated).
    z_max = float(ndtri(1.0 - np.finfo(np.float64).epsneg))
    z = np.where(finite, z, np.sign(z) * z_max)
    if weighting == "precision" and probs is not None:
        # Phi^-1(Y) is computed from Y with relative error eps*Y below 1/2 and absolute error eps
        # above it, so its error SD is eps * Y / phi(z): weight by the inverse variance.
        pdf = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
        p64 = np.where(finite, np.maximum(np.asarray(probs, dtype=np.float64), 1e-300), 1.0)
        w = np.where(finite, (pdf / p64) ** 2, 0.0)
        w = w / np.maximum(w.max(axis=-1, keepdims=True), 1e-300)  # scale-free per trial
        w = np.where(finite, np.maximum(w, 1e-200), 1e-250)
    else:
        w = np.where(finite, 1.0, 1e-40)
    rank_ok = np.linalg.matrix_rank(c) == d
    if not rank_ok:
        raise ValueError("the task normals C do not have full column rank; extraction impossible")
    # broadcast the per-t scale over trials: s has t's shape + [N]
    s_b = np.broadcast_to(s, np.broadcast_shapes(s.shape, z.shape))
    rhs = s_b * z - b  # [..., N]
    # Weighted least squares by QR of sqrt(W) C (not the normal equations, which would square
    # the huge spread of the precision weights): mu = R^-1 Q^T sqrt(W) rhs.
    sw = np.sqrt(w)
    q, r = np.linalg.qr(sw[..., :, None] * c)  # [..., N, D], [..., D, D]
    qtb = np.einsum("...nd,...n->...d", q, sw * rhs)
    try:
        return np.linalg.solve(r, qtb[..., None])[..., 0]
    except np.linalg.LinAlgError:
        # some trial has fewer than D informative outputs: minimum-norm answer in the directions
        # its outputs do not determine
        return (np.linalg.pinv(r, rcond=1e-13) @ qtb[..., None])[..., 0]


def ideal_probs(spec: TaskSpec, mu: np.ndarray, t: int | np.ndarray) -> np.ndarray:
    """Flat-prior ideal-observer probabilities Phi((C mu + b) / s(t)) [..., N] for mu [..., D]
    (docs/science.md §3; the forward model that :func:`extract_mu` inverts)."""
    geo = task_geometry(spec)
    s = np.sqrt(estimate_variance(spec, np.asarray(t)) @ (geo.normals.T**2))
    return ndtr((np.asarray(mu) @ geo.normals.T + geo.offsets) / s)


@dataclass
class ExtractionResult:
    """How close the agent-implied estimate mu_hat is to the evidence mean mu(t).

    steps: evidence steps t of each column; rmse: RMSE(mu_hat, mu) per t (latent units);
    r2_vs_mu: 1 - MSE(mu_hat, mu) / Var_prior per t; r2_latent: 1 - MSE(mu_hat, x*) / Var_prior
    per t (directly comparable to ``ceiling``); ceiling: the r^2 of mu (the paper's Eq. 7) per t,
    which ideal outputs reach; decision_*: at the last t.
    """

    steps: list[int]
    rmse: list[float]
    r2_vs_mu: list[float]
    r2_latent: list[float]
    ceiling: list[float]
    decision_rmse: float
    decision_r2_vs_mu: float
    decision_r2_latent: float
    decision_ceiling: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extraction_error(
    spec: TaskSpec,
    mu: np.ndarray,
    latent: np.ndarray,
    steps: np.ndarray,
    probs: np.ndarray | None = None,
    *,
    logits: np.ndarray | None = None,
    weighting: str = "precision",
) -> ExtractionResult:
    """Compare the agent-implied mu_hat with mu(t) and x*.

    mu: [n, S, D] running evidence mean at the S chosen steps; latent: [n, D] x*;
    steps: [S] evidence steps seen (>= 1); probs or logits: [n, S, N] agent outputs at those steps.
    """
    mu = np.asarray(mu, dtype=np.float64)
    latent = np.asarray(latent, dtype=np.float64)
    steps = np.asarray(steps)
    out = np.asarray(probs if probs is not None else logits)
    if mu.ndim != 3 or out.ndim != 3 or mu.shape[:2] != out.shape[:2]:
        raise ValueError(
            f"mu [n, S, D] and probs/logits [n, S, N] must share n and S, got {mu.shape}, {out.shape}"
        )
    if latent.shape != (mu.shape[0], mu.shape[2]) or steps.shape != (mu.shape[1],):
        raise ValueError(
            f"latent must be [n, D] = {(mu.shape[0], mu.shape[2])} and steps [S] = ({mu.shape[1]},), "
            f"got {latent.shape}, {steps.shape}"
        )
    mu_hat = extract_mu(spec, steps, probs, logits=logits, weighting=weighting)
    var = prior_variance(spec).mean()
    mse_mu = ((mu_hat - mu) ** 2).mean(axis=(0, 2))
    mse_x = ((mu_hat - latent[:, None, :]) ** 2).mean(axis=(0, 2))
    ceil = np.asarray(ceiling(spec, steps), dtype=float).reshape(-1)
    return ExtractionResult(
        steps=[int(s) for s in steps],
        rmse=np.sqrt(mse_mu).tolist(),
        r2_vs_mu=(1 - mse_mu / var).tolist(),
        r2_latent=(1 - mse_x / var).tolist(),
        ceiling=ceil.tolist(),
        decision_rmse=float(np.sqrt(mse_mu[-1])),
        decision_r2_vs_mu=float(1 - mse_mu[-1] / var),
        decision_r2_latent=float(1 - mse_x[-1] / var),
        decision_ceiling=float(ceil[-1]),
    )
