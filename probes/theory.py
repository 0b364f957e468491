"""Theory predictions the probes check against (SPEC.md section 6).

* :func:`ceiling` -- the best r^2 any linear decoding of x* can reach after t evidence steps,
  r^2_max(t) = 1 - v(t) / Var_prior(x*), where v(t) is the variance of the optimal unbiased
  linear estimate of x* from X(1..t). For isotropic i.i.d. Gaussian noise v(t) = sigma^2 / t and
  Var_prior = 1/12, i.e. the SPEC's 1 - 12 sigma^2 / t (0.976 for sigma = 0.2, t = 20).
  Generalised per spec: anisotropic noise (per-axis sigma_d), AR(1) noise (v(t) of the generalised
  least-squares mean of a correlated sample), Gumbel noise (its variance pi^2 sigma^2 / 6), the
  Gaussian-copula prior (its marginals are still U[-0.5, 0.5], so Var_prior = 1/12 per axis).
  Over D axes the r^2 uses the paper's convention: 1 - mean_d MSE_d / mean_d Var_d.
* :func:`extract_mu` -- the closed-form inversion of the flat-prior ideal observer,
  mu_hat = (C^T C)^-1 C^T [s(t) Phi^-1(Y) - b], applied to any agent's output probabilities
  (or logits), and :func:`extraction_error` -- how close that agent-implied estimate is to mu(t).

Everything is numpy; shapes are documented per function (t counts evidence steps seen).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.special import log_expit, ndtr, ndtri, ndtri_exp

from envs import TaskSpec, task_geometry
from envs.trials import noise_scales


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


def ceiling(spec: TaskSpec, t: int | np.ndarray | None = None, *, form: str = "spec") -> Any:
    """Ceiling of linear decoding of x* after t evidence steps.

    Default t: the evidence steps seen at the decision step, where the probes read the state
    (:func:`decision_evidence_steps`): stimulus_steps, or stimulus_steps + 1 for
    targets='free_rt_paper', whose evidence also arrives at the decision step; there the SPEC
    form is 1 - 12 sigma^2 / (T + 1), the paper's Fig. 5a line (see :func:`fig5a_line`).

    form='spec' (the SPEC's number, the headline): 1 - mean_d v_d(t) / mean_d Var_d, the r^2 of
    the unbiased estimate mu(t) itself; may be negative for tiny t and large sigma.
    form='bayes': the best *shrunk* linear estimate, 1 - mean_d [Var_d v_d / (Var_d + v_d)] /
    mean_d Var_d (always in [0, 1], slightly above 'spec'; an in-distribution ridge decoder can
    reach it, e.g. 0.9766 against 0.976 at sigma = 0.2, t = 20).
    Returns a float for scalar t, else an array of t's shape.
    """
    if form not in ("spec", "bayes"):
        raise ValueError(f"form must be 'spec' or 'bayes', got {form!r}")
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
    """The theory line of the paper's Fig. 5a: OOD r^2 ceiling of free-reaction-time networks
    against trial duration, 1 - 12 sigma^2 / (T + 1) for T stimulus steps (0.48 / (T + 1) at
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


def ceiling_curve(spec: TaskSpec, *, form: str = "spec") -> np.ndarray:
    """Ceiling r^2 [n_steps] at each step of a trial (0 before any evidence)."""
    return np.asarray(ceiling(spec, evidence_steps(spec), form=form))


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
    weighting: 'uniform' is the SPEC's formula mu = (C^T C)^-1 C^T [s Phi^-1(Y) - b] (outputs
       that are exactly 0 or 1 are dropped); 'precision' (default) weights task i by phi(z_i)^2,
       the inverse variance of the rounding error of Phi^-1(Y_i), so saturated outputs do not
       spoil the estimate. Both are exact on exact inputs. Logits are never saturated and are
       always weighted uniformly.
    s_i = sqrt(sum_d c_id^2 v_d(t)) generalises sigma / sqrt(t) to anisotropic / AR(1) noise.
    Returns mu_hat [..., D].
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
    (SPEC section 3; the forward model that :func:`extract_mu` inverts)."""
    geo = task_geometry(spec)
    s = np.sqrt(estimate_variance(spec, np.asarray(t)) @ (geo.normals.T**2))
    return ndtr((np.asarray(mu) @ geo.normals.T + geo.offsets) / s)


@dataclass
class ExtractionResult:
    """How close the agent-implied estimate mu_hat is to the evidence mean mu(t).

    steps: evidence steps t of each column; rmse: RMSE(mu_hat, mu) per t (latent units);
    r2_vs_mu: 1 - MSE(mu_hat, mu) / Var_prior per t; r2_latent: 1 - MSE(mu_hat, x*) / Var_prior
    per t (directly comparable to ``ceiling``); ceiling: r^2_max(t); decision_*: at the last t.
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
