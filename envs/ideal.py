"""The ideal observer of a multi-task evidence task (SPEC.md section 3): the performance ceiling.

Given the raw evidence X(1..t) of a trial, the Bayes-optimal agent reports for every task i the
posterior probability P(y_i = 1 | X(1..t)); its best choice is 1[p > 0.5], its best wager opts out
when max(p, 1 - p) is below the sure reward, and its best confidence report (under a strictly
proper scoring rule) is p itself.

Methods (``IdealObserver(spec, method=...)``):

- ``"flat"``: flat-prior closed form, linear tasks, Gaussian-family noise (gaussian, anisotropic,
  ar1), any D. Per axis d the likelihood of x*_d is Gaussian in x*_d with mean mu_d(t) and
  variance v_d(t) (the sufficient statistics below), so with a flat prior
  P(y_i = 1) = Phi((c_i . mu(t) + b_i) / sqrt(sum_d c_id^2 v_d(t))). It ignores the edges of the
  prior, so near |x*_d| = 0.5 it is slightly over- or under-confident.
- ``"exact"``: the posterior under the task's own bounded prior, D <= 2.
  Uniform prior + Gaussian-family noise + linear tasks: each axis is a truncated normal on
  [-0.5, 0.5]; D = 1 is closed form, D = 2 integrates over one axis with Gauss-Legendre nodes
  adapted to the posterior (mu +- 7 SD clipped to the box) against the truncated-normal CDF of the
  other axis. Accuracy: about 1e-7 in probability (tested against a brute-force grid).
  Anything else (correlated prior, Gumbel noise, hyperbolic or circle boundaries): a tensor
  midpoint grid (``n_grid`` per axis; 16x that for D = 1) on a box adapted to the posterior
  (likelihood mode +- 7 SD, clipped to the prior's box), prior density x per-axis likelihood.
  Linear tasks are read off column by column (tail sums along the axis with the larger normal
  component, the cut cell split in proportion); nonlinear ones replace the label indicator by
  the fraction of each cell on the positive side (a linear ramp over the cell's width along the
  margin gradient), second order in the cell size. The copula prior's grid lives in z-space
  (x = Phi(z) - 0.5), where the prior is a smooth N(0, R). Measured worst-case errors with the
  default n_grid = 96 against brute force: Gumbel ~5e-4, circles / hyperbolic ~1e-3, copula
  prior ~3e-3 (posteriors near the corners where the copula density is unbounded); typical
  errors are 10-50x smaller. Cost per trial and step ~ n_grid^2 (linear) or n_grid^2 N.
- ``"mc"``: self-normalised importance sampling, any D, prior, noise and boundaries. Proposal per
  trial and step: a defensive mixture of 90% a Gaussian around the flat estimate (SD inflated
  x2) and 10% uniform on the prior's box (bounded weights). Error ~ 1 / sqrt(n_mc) per
  probability (common random numbers across trials, so it is smooth in the evidence).
- ``"auto"``: ``exact`` for D <= 2; ``flat`` for linear tasks with Gaussian-family noise and D > 2
  (note: it ignores the prior's edges); ``mc`` otherwise.

Sufficient statistics per axis d (x*_d is the location of the evidence on that axis; the noise
axes are independent):

- gaussian / anisotropic (SD s_d): mu_d(t) = mean of X_d(1..t), v_d(t) = s_d^2 / t.
- ar1 (coefficient a, stationary SD s, innovations s^2 (1 - a^2)): the GLS estimate from the exact
  AR(1) likelihood (x1 stationary). With S(t) = sum X(1..t): for t = 1, mu = X(1), v = s^2; for
  t >= 2, mu = [X(1) + X(t) + (1 - a)(S(t) - X(1) - X(t))] / [2 + (t - 2)(1 - a)],
  v = s^2 (1 + a) / [2 + (t - 2)(1 - a)]. The likelihood is exactly Gaussian in x* with these.
- gumbel (scale beta = sigma, centred to mean 0): log L(m) = t m / beta - exp(m / beta - gamma +
  log sum_s exp(-X(s) / beta)) + const, i.e. with mhat = beta (log t + gamma - logsumexp(-X/beta))
  and delta = (m - mhat) / beta, log L = t (delta - exp(delta)) + const.

Shapes: B trials, Ts = stimulus steps, D = latent_dim, N = n_tasks. Probabilities are float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri, roots_legendre

from envs.scoring import task_scores
from envs.spec import TaskSpec
from envs.task import TaskGeometry, orthant_index, task_geometry
from envs.trials import TrialBatch, generate, noise_scales

METHODS = ("auto", "exact", "flat", "mc")
REPORTS = ("choice", "wager", "confidence")
SCORING_RULES = ("log", "brier")
GAUSSIAN_FAMILY = ("gaussian", "anisotropic", "ar1")

_LOG2 = np.log(2.0)
_Z_MAX = 5.0  # copula grid: |z| > 5 holds < 3e-7 of the N(0, 1) prior mass per axis
_MAX_CHUNK_ELEMENTS = 4_000_000  # float64 elements per temporary array (~32 MB)


@dataclass(frozen=True)
class _Stats:
    """Per-axis sufficient statistics of M posterior states (a state = one trial at one step).

    loc: [M, D] Gaussian family: mu_d(t); gumbel: mhat_d(t) (the likelihood's mode).
    scale: [M, D] Gaussian family: sqrt(v_d(t)); gumbel: beta / sqrt(t) (curvature at the mode).
    t: [M] number of evidence samples seen (>= 1).
    """

    loc: np.ndarray
    scale: np.ndarray
    t: np.ndarray

    def take(self, rows: slice) -> _Stats:
        return _Stats(self.loc[rows], self.scale[rows], self.t[rows])


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _rows_per_chunk(per_row: int) -> int:
    return max(1, _MAX_CHUNK_ELEMENTS // max(1, per_row))


class IdealObserver:
    """Bayes-optimal posterior P(y_i = 1 | X(1..t)) for every task and step of a trial.

    Args:
        spec: the task.
        method: one of ``auto``, ``exact``, ``flat``, ``mc`` (see the module docstring).
        n_mc: importance samples per trial and step (method ``mc``).
        n_quad: Gauss-Legendre nodes of the exact truncated-normal quadrature (D = 2).
        n_grid: grid points per axis of the exact grid method (D = 2; D = 1 uses 16x as many).
        seed: seed of the ``mc`` proposal draws (common to all trials, so results are repeatable).

    Attributes:
        method: the method actually used (``auto`` resolved).
        engine: ``flat``, ``truncnorm``, ``grid`` or ``mc`` (how ``exact`` is computed).
    """

    def __init__(
        self,
        spec: TaskSpec,
        method: str = "auto",
        *,
        n_mc: int = 4096,
        n_quad: int = 32,
        n_grid: int = 96,
        seed: int = 0,
    ) -> None:
        if not isinstance(spec, TaskSpec):
            raise ValueError(f"spec must be a TaskSpec, got {type(spec).__name__}")
        _check_choice("method", method, METHODS)
        for name, value, low in (("n_mc", n_mc, 16), ("n_quad", n_quad, 4), ("n_grid", n_grid, 8)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.spec = spec
        self.geometry: TaskGeometry = task_geometry(spec)
        d = spec.latent_dim
        gaussian_linear = spec.is_linear and spec.noise in GAUSSIAN_FAMILY
        if method == "auto":
            method = "exact" if d <= 2 else ("flat" if gaussian_linear else "mc")
        if method == "flat" and not gaussian_linear:
            raise ValueError(
                "method='flat' needs linear boundaries ('lines', 'random') and noise in "
                f"{list(GAUSSIAN_FAMILY)}, got boundaries={spec.boundaries!r}, noise={spec.noise!r}; "
                f"allowed methods for this spec: {['auto', 'exact', 'mc'] if d <= 2 else ['auto', 'mc']}"
            )
        if method == "exact" and d > 2:
            raise ValueError(
                f"method='exact' needs latent_dim <= 2, got latent_dim={d}; allowed methods for "
                f"this spec: {['auto', 'flat', 'mc'] if gaussian_linear else ['auto', 'mc']}"
            )
        self.method = method
        if method == "exact":
            uniform_gauss = gaussian_linear and (spec.prior == "uniform" or d == 1)
            # (a D = 1 copula prior is exactly uniform: Phi(z) - 0.5 with z ~ N(0, 1))
            self.engine = "truncnorm" if uniform_gauss else "grid"
        else:
            self.engine = method
        self.n_mc = int(n_mc)
        self.n_quad = int(n_quad)
        self.n_grid = int(n_grid)
        self.seed = int(seed)
        self._beta = float(spec.sigma)
        self._scales = noise_scales(spec) if spec.noise != "gumbel" else np.full(d, spec.sigma)
        nodes, weights = roots_legendre(self.n_quad)
        self._gl_nodes, self._gl_weights = nodes, weights
        if self.engine == "mc":
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 7919]))
            n_gauss = int(round(0.9 * self.n_mc))
            self._mc_normal = rng.standard_normal((n_gauss, d))
            self._mc_uniform = rng.random((self.n_mc - n_gauss, d)) - 0.5

    # ---- public API ----------------------------------------------------------------------
    def posterior(self, stimulus_evidence: np.ndarray) -> np.ndarray:
        """P(y_i = 1 | X(1..t)) for every step t = 1..Ts.

        stimulus_evidence: [B, Ts, D] raw evidence (``TrialBatch.stimulus_evidence``).
        Returns [B, Ts, N] float64.
        """
        x = self._check_evidence(stimulus_evidence)
        b, ts, _ = x.shape
        stats = self._stats(x, last_only=False)
        return self._probs(stats).reshape(b, ts, self.spec.n_tasks)

    def final_posterior(self, stimulus_evidence: np.ndarray) -> np.ndarray:
        """P(y_i = 1 | X(1..Ts)) after all the evidence: [B, Ts, D] -> [B, N] float64.

        Only the last step is computed (Ts times cheaper than ``posterior``).
        """
        x = self._check_evidence(stimulus_evidence)
        return self._probs(self._stats(x, last_only=True))

    def decision_probs(self, batch: TrialBatch) -> np.ndarray:
        """Posterior [B, N] after the last evidence step of ``batch`` (what is known at decision)."""
        return self.final_posterior(batch.stimulus_evidence)

    def accuracy(self, batch: TrialBatch, probs: np.ndarray | None = None) -> float:
        """Fraction of (trial, task) pairs where the ideal choice 1[p > 0.5] equals the label."""
        p = self.decision_probs(batch) if probs is None else probs
        return float(np.mean((p > 0.5) == (batch.labels > 0.5)))

    def predicted_accuracy(self, batch: TrialBatch, probs: np.ndarray | None = None) -> float:
        """The observer's own expected accuracy, mean of max(p, 1 - p) (no labels used)."""
        p = self.decision_probs(batch) if probs is None else probs
        return float(np.mean(np.maximum(p, 1.0 - p)))

    def log_score(
        self, batch: TrialBatch, *, normalised: bool = False, probs: np.ndarray | None = None
    ) -> float:
        """Mean log2 probability given to the true label (<= 0), over trials and tasks.

        normalised=True returns the env's score 1 + log2 p(y) (1 = certain and right, 0 = chance).
        Probabilities are clipped to [1e-300, 1] so a confidently wrong report is finite.
        """
        p = self.decision_probs(batch) if probs is None else probs
        p_true = np.where(batch.labels > 0.5, p, 1.0 - p)
        score = float(np.mean(np.log(np.clip(p_true, 1e-300, 1.0)))) / _LOG2
        return 1.0 + score if normalised else score

    # ---- input checks --------------------------------------------------------------------
    def _check_evidence(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        d = self.spec.latent_dim
        if x.ndim != 3 or x.shape[2] != d or x.shape[1] < 1 or x.shape[0] < 1:
            raise ValueError(
                f"stimulus_evidence must have shape [B, Ts, {d}] with B, Ts >= 1, got {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("stimulus_evidence must be finite")
        return x

    # ---- sufficient statistics -----------------------------------------------------------
    def _stats(self, x: np.ndarray, *, last_only: bool) -> _Stats:
        """Per-axis sufficient statistics for each trial at each step (or the last step only)."""
        b, ts, d = x.shape
        spec = self.spec
        steps = np.arange(1, ts + 1, dtype=np.float64)
        if spec.noise == "gumbel":
            beta = self._beta
            # log sum_s exp(-X(s) / beta), cumulative over s, computed stably
            log_e = np.logaddexp.accumulate(-x / beta, axis=1)
            if last_only:
                log_e, steps = log_e[:, -1:], steps[-1:]
            loc = beta * (np.log(steps)[None, :, None] + np.euler_gamma - log_e)
            scale = np.broadcast_to(beta / np.sqrt(steps)[None, :, None], loc.shape)
        elif spec.noise == "ar1":
            a = spec.ar_coef
            s = np.cumsum(x, axis=1)
            ends = x[:, :1] + x  # X(1) + X(t)
            inner = s - ends
            denom = 2.0 + (steps - 2.0) * (1.0 - a)  # [Ts]; t = 1 is set apart below
            loc = (ends + (1.0 - a) * inner) / denom[None, :, None]
            loc[:, 0] = x[:, 0]
            var_unit = (1.0 + a) / denom
            var_unit[0] = 1.0
            scale = np.sqrt(var_unit)[None, :, None] * self._scales[None, None, :]
            scale = np.broadcast_to(scale, loc.shape)
            if last_only:
                loc, scale, steps = loc[:, -1:], scale[:, -1:], steps[-1:]
        else:
            if last_only:
                loc = x.mean(axis=1, keepdims=True)
                steps = steps[-1:]
            else:
                loc = np.cumsum(x, axis=1) / steps[None, :, None]
            scale = self._scales[None, None, :] / np.sqrt(steps)[None, :, None]
            scale = np.broadcast_to(scale, loc.shape)
        m = loc.shape[0] * loc.shape[1]
        t = np.broadcast_to(steps[None, :], loc.shape[:2]).reshape(m)
        return _Stats(loc.reshape(m, d), np.ascontiguousarray(scale).reshape(m, d), t)

    # ---- probabilities -------------------------------------------------------------------
    def _probs(self, stats: _Stats) -> np.ndarray:
        """P(y_i = 1) [M, N] for M posterior states."""
        if self.engine == "flat":
            return self._probs_flat(stats)
        if self.engine == "truncnorm":
            return self._probs_truncnorm(stats)
        if self.engine == "grid":
            return self._probs_grid(stats)
        return self._probs_mc(stats)

    def _probs_flat(self, stats: _Stats) -> np.ndarray:
        geo = self.geometry
        c = geo.normals  # [N, D]
        mean = stats.loc @ c.T + geo.offsets  # [M, N]
        sd = np.sqrt((stats.scale**2) @ (c**2).T)
        return ndtr(mean / sd)

    # exact, uniform prior, Gaussian-family noise, linear tasks -----------------------------
    def _probs_truncnorm(self, stats: _Stats) -> np.ndarray:
        geo = self.geometry
        c, off = geo.normals, geo.offsets
        m_all, n = stats.loc.shape[0], self.spec.n_tasks
        if self.spec.latent_dim == 1:
            # P(c x + b > 0), c = +-1: one truncated-normal CDF per task, no quadrature
            u = np.repeat((-off / c[:, 0])[None, :, None], m_all, axis=0)
            q, flip = _truncnorm_reflected_cdf(stats.loc[:, 0], stats.scale[:, 0], c[:, 0], u)
            return np.clip(flip[..., 0] + (1.0 - 2.0 * flip[..., 0]) * q[..., 0], 0.0, 1.0)
        out = np.empty((m_all, n))
        # integrate over the axis k where |c_k| is smaller: the CDF of the other axis j then varies
        # slowly along the nodes (slope |c_k / c_j| <= 1), so the integrand stays smooth
        cdf_axis = np.argmax(np.abs(c), axis=1)
        g = self.n_quad
        # With offsets, the line can leave the box inside the posterior: the CDF of axis j is
        # clipped there, a kink in the integrand; the x_k interval is then split at the two kinks
        # (3 Gauss-Legendre panels). Through the origin the kinks lie at |x_k| >= 0.5: no split.
        split = bool(np.any(off != 0))
        chunk = _rows_per_chunk(n * g * (6 if split else 1))
        for j in (0, 1):
            tasks = np.flatnonzero(cdf_axis == j)
            if tasks.size == 0:
                continue
            k = 1 - j
            cj, ck, bj = c[tasks, j], c[tasks, k], off[tasks]
            for r0 in range(0, m_all, chunk):
                rows = slice(r0, min(r0 + chunk, m_all))
                mu_k, sd_k = stats.loc[rows, k], stats.scale[rows, k]
                if split:
                    nodes, w = self._split_nodes(mu_k, sd_k, cj, ck, bj)  # [m, Nj, 3G]
                    u = nodes * (-ck / cj)[None, :, None]
                else:
                    nodes, w = self._truncnorm_nodes(mu_k, sd_k)  # [m, G], shared by the tasks
                    u = nodes[:, None, :] * (-ck / cj)[None, :, None]
                # threshold on axis j for each node of axis k: c_j x_j > -b - c_k x_k
                u += (-bj / cj)[None, :, None]
                q, flip = _truncnorm_reflected_cdf(stats.loc[rows, j], stats.scale[rows, j], cj, u)
                # P = flip + (1 - 2 flip) q at every node; the weights sum to 1
                if split:
                    qbar = np.einsum("mng,mng->mn", q, w)
                else:
                    qbar = np.matmul(q, w[:, :, None])[..., 0]
                out[rows, tasks] = flip[..., 0] + (1.0 - 2.0 * flip[..., 0]) * qbar
        return np.clip(out, 0.0, 1.0)

    # exact by grid quadrature (D <= 2): any prior, noise and boundaries --------------------
    def _axis_box(self, stats: _Stats) -> tuple[np.ndarray, np.ndarray]:
        """Per-axis box [lo, hi] ([M, D] each) holding all but ~e^-24 of the likelihood's mass.

        Gaussian family: clipped mean +- 7 SD. Gumbel (delta = (m - mhat) / beta, log-likelihood
        t (delta - e^delta + 1) below its peak): delta in [-max(7/sqrt t, 1 + 25/t),
        min(7/sqrt t, log(4 + 25/t))] (the left tail is exponential, the right doubly so).
        """
        centre = np.clip(stats.loc, -0.5, 0.5)
        if self.spec.noise == "gumbel":
            t = stats.t[:, None]
            left = -np.maximum(7.0 / np.sqrt(t), 1.0 + 25.0 / t) * self._beta
            right = np.minimum(7.0 / np.sqrt(t), np.log(4.0 + 25.0 / t)) * self._beta
        else:
            left, right = -7.0 * stats.scale, 7.0 * stats.scale
        return np.maximum(-0.5, centre + left), np.minimum(0.5, centre + right)

    def _log_lik(self, stats: _Stats, x: np.ndarray) -> np.ndarray:
        """Per-axis log-likelihood (up to a constant per state) at points x [M, ..., D]."""
        extra = (slice(None),) + (None,) * (x.ndim - 2) + (slice(None),)
        loc, scale = stats.loc[extra], stats.scale[extra]
        if self.spec.noise == "gumbel":
            delta = (x - loc) / self._beta
            t = stats.t[extra[:-1]][..., None]
            # beyond delta = 500 (absurd evidence) continue e^delta linearly: finite, still
            # decreasing, so the posterior piles up at the lowest node instead of overflowing
            big = np.exp(np.minimum(delta, 500.0)) * (1.0 + np.maximum(delta - 500.0, 0.0))
            return t * (delta - big)
        return -0.5 * ((x - loc) / scale) ** 2

    def _log_prior(self, x: np.ndarray) -> np.ndarray | float:
        """Log prior density at x [..., D] (up to a constant; inside the box only)."""
        if self.spec.prior == "uniform" or self.spec.latent_dim == 1:
            return 0.0
        z = ndtri(np.clip(x + 0.5, 1e-300, 1.0 - 1e-16))
        # Gaussian copula density: exp(-z^T (R^-1 - I) z / 2) / sqrt(det R)
        return -0.5 * np.einsum("...i,ij,...j->...", z, self._copula_quad, z)

    @property
    def _copula_quad(self) -> np.ndarray:
        d, rho = self.spec.latent_dim, self.spec.rho
        corr = np.full((d, d), rho) + (1.0 - rho) * np.eye(d)
        return np.linalg.inv(corr) - np.eye(d)

    def _soft_labels(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Fraction [..., N] of each grid cell (centre x [..., D], sides h [..., D]) with label 1.

        The margin m is linearised over the cell: fraction = clip(1/2 + m / sum_d h_d |dm/dx_d|),
        exact for axis-aligned boundaries and second-order accurate otherwise.
        """
        geo, spec = self.geometry, self.spec
        with np.errstate(divide="ignore", invalid="ignore"):
            if spec.is_linear:
                m = x @ geo.normals.T + geo.offsets
                ramp = h @ np.abs(geo.normals.T)
            elif spec.boundaries == "circles":
                r = np.linalg.norm(x, axis=-1, keepdims=True)
                m = r - geo.thresholds
                ramp = (np.abs(x) * h).sum(axis=-1, keepdims=True) / r
            else:  # hyperbolic: |x1 x2| - c_k inside the task's quadrant, label 0 outside
                prod = np.abs(x[..., :1] * x[..., 1:2])
                inside = orthant_index(x)[..., None] == geo.quadrants
                m = np.where(inside, prod - geo.thresholds, -np.inf)
                ramp = h[..., :1] * np.abs(x[..., 1:2]) + h[..., 1:2] * np.abs(x[..., :1])
            frac = 0.5 + m / ramp
        return np.clip(np.nan_to_num(frac, nan=0.5), 0.0, 1.0)

    def _probs_grid(self, stats: _Stats) -> np.ndarray:
        """Tensor midpoint grid on the per-state box; see the module docstring.

        With the copula prior (D = 2) the grid lives in z-space (x = Phi(z) - 0.5), where the prior
        is the smooth N(0, R) instead of a copula density that is unbounded at two corners (the
        midpoint rule in x converges only at first order there).
        """
        d, n = self.spec.latent_dim, self.spec.n_tasks
        g = self.n_grid if d == 2 else 16 * self.n_grid
        m_all = stats.loc.shape[0]
        lo, hi = self._axis_box(stats)
        in_z = self.spec.prior == "correlated" and d == 2
        if in_z:
            lo, hi = (np.clip(ndtri(v + 0.5), -_Z_MAX, _Z_MAX) for v in (lo, hi))
        h_all = (hi - lo) / g
        centres = (np.arange(g) + 0.5) / g
        out = np.empty((m_all, n))
        chunk = _rows_per_chunk(g**d * (n + d + 2))
        for r0 in range(0, m_all, chunk):
            rows = slice(r0, min(r0 + chunk, m_all))
            st = stats.take(rows)
            axes = lo[rows, None, :] + (hi - lo)[rows, None, :] * centres[None, :, None]  # [m,G,D]
            h = h_all[rows, None, :]  # cell sides (in x), [m, 1, D] or [m, G, D]
            if in_z:
                z_axes = axes
                axes = ndtr(z_axes) - 0.5
                h = h * np.exp(-0.5 * z_axes**2) / np.sqrt(2.0 * np.pi)  # dx = phi(z) dz
            ll = self._log_lik(st, axes)  # [m, G, D]
            if d == 1:
                pts, logw, hh = axes, ll[..., 0], h
            else:
                pts = np.stack(np.broadcast_arrays(axes[:, :, None, 0], axes[:, None, :, 1]), -1)
                hh = np.stack(np.broadcast_arrays(h[:, :, None, 0], h[:, None, :, 1]), -1)
                logw = ll[:, :, None, 0] + ll[:, None, :, 1]
                if in_z:
                    zz = np.stack(
                        np.broadcast_arrays(z_axes[:, :, None, 0], z_axes[:, None, :, 1]), -1
                    )
                    logw = logw - 0.5 * np.einsum("...i,ij,...j->...", zz, self._z_precision, zz)
            w = np.exp(logw - logw.reshape(logw.shape[0], -1).max(axis=1)[(...,) + (None,) * d])
            if self.spec.is_linear:
                grid_lo = lo[rows]
                out[rows] = self._grid_linear(w, axes, grid_lo, h_all[rows], in_z)
                continue
            w = w.reshape(w.shape[0], -1)
            frac = self._soft_labels(pts, hh).reshape(w.shape[0], -1, n)
            out[rows] = np.matmul(w[:, None, :], frac)[:, 0] / w.sum(axis=1, keepdims=True)
        return np.clip(out, 0.0, 1.0)

    def _grid_linear(
        self, w: np.ndarray, axes: np.ndarray, lo: np.ndarray, step: np.ndarray, in_z: bool
    ) -> np.ndarray:
        """Linear tasks on the grid, column by column: P [m, N].

        w: [m, G] or [m, G, G] unnormalised cell weights; axes: [m, G, D] cell centres in x;
        lo, step: [m, D] grid origin and spacing in the grid variable (x, or z when in_z).
        For each cell column along the integration axis k (|c_k| the smaller), the mass beyond the
        task's threshold on axis j is read off the tail sums of the column, with the cut cell
        split in proportion (mass uniform within a cell): O(G^2 + N G) per state instead of
        O(N G^2) for the cell-fraction ramp, and no ramp error across the boundary.
        """
        geo, d = self.geometry, self.spec.latent_dim
        c, off = geo.normals, geo.offsets
        m, g = w.shape[0], w.shape[1]
        out = np.empty((m, self.spec.n_tasks))
        if d == 1:
            w = w[:, None, :]  # one column
        total = w.sum(axis=(1, 2))
        cdf_axis = np.argmax(np.abs(c), axis=1) if d == 2 else np.zeros(len(c), dtype=int)
        for j in range(d):
            tasks = np.flatnonzero(cdf_axis == j)
            if tasks.size == 0:
                continue
            cols = w if j == d - 1 else np.swapaxes(w, 1, 2)  # [m, G_k, G_j]
            # tail[:, i, s] = sum_{s' >= s} cols[:, i, s'], with tail[..., G] = 0
            tail = np.zeros((m, cols.shape[1], g + 1))
            tail[:, :, :g] = np.cumsum(cols[:, :, ::-1], axis=2)[:, :, ::-1]
            cj, bj = c[tasks, j], off[tasks]
            u = np.broadcast_to((-bj / cj)[None, :, None], (m, tasks.size, cols.shape[1])).copy()
            if d == 2:
                k = 1 - j
                u -= axes[:, None, :, k] * (c[tasks, k] / cj)[None, :, None]  # [m, Nj, G_k]
            if in_z:
                u = ndtri(np.clip(u + 0.5, 0.0, 1.0))
            pos = (u - lo[:, j, None, None]) / step[:, j, None, None]
            pos = np.clip(np.nan_to_num(pos, nan=0.0, posinf=g, neginf=0.0), 0.0, g)
            cell = np.minimum(pos.astype(np.int64), g - 1)  # [m, Nj, G_k]
            rows = np.arange(m)[:, None, None]
            col_idx = np.arange(cols.shape[1])[None, None, :]
            above = tail[rows, col_idx, cell + 1] + (cell + 1 - pos) * cols[rows, col_idx, cell]
            p_above = above.sum(axis=2) / total[:, None]
            out[:, tasks] = np.where(cj[None, :] > 0, p_above, 1.0 - p_above)
        return out

    @property
    def _z_precision(self) -> np.ndarray:
        d, rho = self.spec.latent_dim, self.spec.rho
        return np.linalg.inv(np.full((d, d), rho) + (1.0 - rho) * np.eye(d))

    # Monte Carlo (any D): defensive importance sampling ------------------------------------
    def _probs_mc(self, stats: _Stats) -> np.ndarray:
        d, n = self.spec.latent_dim, self.spec.n_tasks
        m_all = stats.loc.shape[0]
        k_infl = 2.0
        centre = np.clip(stats.loc, -0.5, 0.5)
        out = np.empty((m_all, n))
        chunk = _rows_per_chunk(self.n_mc * (n + d + 2))
        for r0 in range(0, m_all, chunk):
            rows = slice(r0, min(r0 + chunk, m_all))
            st = stats.take(rows)
            sd = k_infl * st.scale  # [m, D]
            x = np.concatenate(
                [
                    centre[rows, None, :] + sd[:, None, :] * self._mc_normal[None],
                    np.broadcast_to(self._mc_uniform[None], (sd.shape[0], *self._mc_uniform.shape)),
                ],
                axis=1,
            )  # [m, K, D]
            # mixture density q = 0.9 N(centre, sd^2) + 0.1 U(box); the box has volume 1
            zs = (x - centre[rows, None, :]) / sd[:, None, :]
            log_gauss = (
                -0.5 * (zs**2).sum(-1) - np.log(sd).sum(-1)[:, None] - 0.5 * d * np.log(2.0 * np.pi)
            )
            log_q = np.logaddexp(np.log(0.9) + log_gauss, np.log(0.1))
            inside = np.all(np.abs(x) <= 0.5, axis=-1)
            logw = self._log_lik(st, x).sum(-1) + self._log_prior(x) - log_q
            logw = np.where(inside, logw, -np.inf)
            w = np.exp(logw - logw.max(axis=1, keepdims=True))
            labels = (self.geometry.margins(x) > 0).astype(np.float64)  # [m, K, N]
            out[rows] = np.matmul(w[:, None, :], labels)[:, 0] / w.sum(axis=1, keepdims=True)
        return np.clip(out, 0.0, 1.0)

    def _split_nodes(
        self, mu: np.ndarray, sd: np.ndarray, cj: np.ndarray, ck: np.ndarray, bj: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-task nodes [M, N', 3G] and weights (summing to 1 per task) of TN(mu, sd^2) on
        x_k, in three panels split where the task's line crosses x_j = -0.5 and x_j = +0.5."""
        centre = np.clip(mu, -0.5, 0.5)
        lo = np.maximum(-0.5, centre - 7.0 * sd)[:, None]
        hi = np.minimum(0.5, centre + 7.0 * sd)[:, None]
        with np.errstate(divide="ignore"):
            e1, e2 = (-bj - 0.5 * cj) / ck, (-bj + 0.5 * cj) / ck
        a = np.clip(np.minimum(e1, e2)[None, :], lo, hi)  # [M, N']
        b = np.clip(np.maximum(e1, e2)[None, :], lo, hi)
        lo, hi = np.broadcast_to(lo, a.shape), np.broadcast_to(hi, a.shape)
        nodes, weights = [], []
        for left, right in ((lo, a), (a, b), (b, hi)):
            half = 0.5 * (right - left)[..., None]
            nodes.append(left[..., None] + half * (self._gl_nodes + 1.0))
            weights.append(half * self._gl_weights)
        x, w = np.concatenate(nodes, -1), np.concatenate(weights, -1)
        top = np.clip(mu, lo[:, 0], hi[:, 0])  # where the density peaks on the interval
        logd = 0.5 * ((top - mu) / sd) ** 2
        w = w * np.exp(
            -0.5 * ((x - mu[:, None, None]) / sd[:, None, None]) ** 2 + logd[:, None, None]
        )
        return x, w / w.sum(-1, keepdims=True)

    def _truncnorm_nodes(self, mu: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Legendre nodes [M, G] and normalised weights [M, G] of TN(mu, sd^2; [-.5, .5]).

        The interval is the clipped mean +- 7 SD intersected with the box, so narrow posteriors get
        all the nodes; weights are normalised numerically (no underflowing normaliser).
        """
        centre = np.clip(mu, -0.5, 0.5)
        lo = np.maximum(-0.5, centre - 7.0 * sd)[:, None]
        hi = np.minimum(0.5, centre + 7.0 * sd)[:, None]
        half = 0.5 * (hi - lo)
        nodes = lo + half * (self._gl_nodes[None, :] + 1.0)
        logw = -0.5 * ((nodes - mu[:, None]) / sd[:, None]) ** 2
        w = self._gl_weights[None, :] * np.exp(logw - logw.max(axis=1, keepdims=True))
        return nodes, w / w.sum(axis=1, keepdims=True)


def _truncnorm_reflected_cdf(
    mu: np.ndarray, sd: np.ndarray, cj: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Building block of P(c_j x > c_j u) for x ~ N(mu, sd^2) truncated to [-0.5, 0.5].

    mu, sd: [M] per state; cj: [N'] sign of the task normal on this axis; u: [M, N', G]
    thresholds (overwritten). Returns (q [M, N', G], flip [M, N', 1]) with
    P(c_j x > c_j u) = flip + (1 - 2 flip) q.

    Why reflected: with s = sign(mu) the variable y = s x has its mean >= 0, so the box lies in
    the lower tail of N(s mu, sd^2) where Phi is small and Phi(B) - Phi(A) has no cancellation;
    q = F_y(s u) needs one ndtr per element. A box beyond ~37 SD of the mean (normaliser
    underflow) is treated as a point mass at the nearest edge.
    """
    s = np.where(mu > 0, 1.0, -1.0)
    mu_y = s * mu
    a = (-0.5 - mu_y) / sd
    b = (0.5 - mu_y) / sd
    phi_a, phi_b = ndtr(a), ndtr(b)
    norm = phi_b - phi_a
    bad = ~(norm > 0)
    inv = np.where(bad, 0.0, 1.0 / np.where(bad, 1.0, norm))
    z = u
    z -= mu[:, None, None]
    z *= (s / sd)[:, None, None]
    np.maximum(z, a[:, None, None], out=z)
    np.minimum(z, b[:, None, None], out=z)
    q_bad = z[bad] >= b[bad][:, None, None] if bad.any() else None
    ndtr(z, out=z)
    z -= phi_a[:, None, None]
    z *= inv[:, None, None]
    if q_bad is not None:
        z[bad] = q_bad
    # P(c_j x > c_j u): s = +1, c_j > 0 -> 1 - q; s = +1, c_j < 0 -> q; s = -1 swaps both
    flip = ((s[:, None] * cj[None, :]) > 0).astype(np.float64)[:, :, None]
    return z, flip


# ---- reports ---------------------------------------------------------------------------------
def best_report(probs: np.ndarray, report: str = "choice", sure_reward: float = 0.7) -> np.ndarray:
    """The report that maximises expected reward given beliefs ``probs`` [..., N].

    choice: int 1[p > 0.5]. confidence: p itself (optimal under any strictly proper scoring
    rule). wager: 0 (below) / 1 (above) / 2 (opt out), opting out when max(p, 1 - p) <
    sure_reward (reward 1 if correct, 0 if wrong, ``sure_reward`` for opting out).
    """
    _check_choice("report", report, REPORTS)
    p = np.asarray(probs, dtype=np.float64)
    if report == "confidence":
        return p.copy()
    choice = (p > 0.5).astype(np.int64)
    if report == "choice":
        return choice
    _check_sure_reward(sure_reward)
    return np.where(np.maximum(p, 1.0 - p) < sure_reward, 2, choice)


def _check_sure_reward(sure_reward: float) -> None:
    if not (isinstance(sure_reward, (int, float)) and 0.0 <= sure_reward <= 1.0):
        raise ValueError(f"sure_reward must be a number in [0, 1], got {sure_reward!r}")


def expected_reward(
    probs: np.ndarray, report: str = "choice", sure_reward: float = 0.7, scoring: str = "log"
) -> np.ndarray:
    """Expected reward [..., N] of the best report under beliefs ``probs`` (per task).

    choice: max(p, 1 - p). wager: max(p, 1 - p, sure_reward). confidence: the expected score of
    reporting p: ``log`` -> 1 + p log2 p + (1 - p) log2 (1 - p) (normalised log score, 0 at
    chance); ``brier`` -> 1 - 4 p (1 - p). Both are the normalised rules of :mod:`envs.scoring`.
    """
    _check_choice("report", report, REPORTS)
    _check_choice("scoring", scoring, SCORING_RULES)
    p = np.asarray(probs, dtype=np.float64)
    if report == "choice":
        return np.maximum(p, 1.0 - p)
    if report == "wager":
        _check_sure_reward(sure_reward)
        return np.maximum(np.maximum(p, 1.0 - p), sure_reward)
    if scoring == "brier":
        return 1.0 - 4.0 * p * (1.0 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p))
    return 1.0 - np.nan_to_num(ent, nan=0.0)


def realised_reward(
    probs: np.ndarray,
    labels: np.ndarray,
    report: str = "choice",
    sure_reward: float = 0.7,
    scoring: str = "log",
) -> np.ndarray:
    """Reward [..., N] the best report of ``probs`` earns against the true ``labels`` (0/1)."""
    _check_choice("scoring", scoring, SCORING_RULES)
    r = best_report(np.asarray(probs, dtype=np.float64), report, sure_reward)
    return task_scores(report, r, labels, scoring=scoring, sure_reward=sure_reward)


# ---- convenience -----------------------------------------------------------------------------
def ideal_accuracy(
    spec: TaskSpec, n: int = 10_000, seed: int = 0, method: str = "auto", **kwargs: Any
) -> float:
    """Accuracy at the decision of the ideal observer on n fresh trials drawn with ``seed``."""
    batch = generate(spec, n, np.random.default_rng(seed))
    return IdealObserver(spec, method, **kwargs).accuracy(batch)


def ideal_accuracy_curve(
    spec: TaskSpec, n: int = 2_000, seed: int = 0, method: str = "auto", **kwargs: Any
) -> np.ndarray:
    """Accuracy [Ts] of the ideal observer after each evidence step t = 1..Ts (n fresh trials)."""
    batch = generate(spec, n, np.random.default_rng(seed))
    p = IdealObserver(spec, method, **kwargs).posterior(batch.stimulus_evidence)
    return np.mean((p > 0.5) == (batch.labels[:, None, :] > 0.5), axis=(0, 2))
