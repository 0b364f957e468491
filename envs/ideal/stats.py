"""Per-axis sufficient statistics and likelihood of the evidence, shared by the engines.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.trials import noise_scales

GAUSSIAN_FAMILY = ("gaussian", "anisotropic", "ar1")

_MAX_CHUNK_ELEMENTS = 4_000_000  # float64 elements per temporary array (~32 MB)


@dataclass(frozen=True)
class Stats:
    """Per-axis sufficient statistics of M posterior states (a state = one trial at one step).

    loc: [M, D] Gaussian family: mu_d(t); gumbel: mhat_d(t) (the likelihood's mode).
    scale: [M, D] Gaussian family: sqrt(v_d(t)); gumbel: beta / sqrt(t) (curvature at the mode).
    t: [M] number of evidence samples seen (>= 1).
    """

    loc: np.ndarray
    scale: np.ndarray
    t: np.ndarray

    def take(self, rows: slice) -> Stats:
        return Stats(self.loc[rows], self.scale[rows], self.t[rows])


def rows_per_chunk(per_row: int) -> int:
    """Rows per chunk so that a temporary of ``per_row`` elements per row stays ~32 MB."""
    return max(1, _MAX_CHUNK_ELEMENTS // max(1, per_row))


def axis_scales(spec: TaskSpec) -> np.ndarray:
    """Per-axis SD [D] the statistics use: the noise SD, or the Gumbel scale beta = sigma."""
    d = spec.latent_dim
    return noise_scales(spec) if spec.noise != "gumbel" else np.full(d, spec.sigma)


def sufficient_stats(
    spec: TaskSpec, scales: np.ndarray, x: np.ndarray, *, last_only: bool
) -> Stats:
    """Per-axis sufficient statistics for each trial at each step (or the last step only).

    x: [B, Ts, D] raw evidence; scales: [D] from :func:`axis_scales`. Rows are trial-major
    (trial b, step t at row b * Ts' + t).
    """
    b, ts, d = x.shape
    steps = np.arange(1, ts + 1, dtype=np.float64)
    if spec.noise == "gumbel":
        beta = float(spec.sigma)
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
        scale = np.sqrt(var_unit)[None, :, None] * scales[None, None, :]
        scale = np.broadcast_to(scale, loc.shape)
        if last_only:
            loc, scale, steps = loc[:, -1:], scale[:, -1:], steps[-1:]
    else:
        if last_only:
            loc = x.mean(axis=1, keepdims=True)
            steps = steps[-1:]
        else:
            loc = np.cumsum(x, axis=1) / steps[None, :, None]
        scale = scales[None, None, :] / np.sqrt(steps)[None, :, None]
        scale = np.broadcast_to(scale, loc.shape)
    m = loc.shape[0] * loc.shape[1]
    t = np.broadcast_to(steps[None, :], loc.shape[:2]).reshape(m)
    return Stats(loc.reshape(m, d), np.ascontiguousarray(scale).reshape(m, d), t)


def log_lik(spec: TaskSpec, stats: Stats, x: np.ndarray) -> np.ndarray:
    """Per-axis log-likelihood (up to a constant per state) at points x [M, ..., D]."""
    extra = (slice(None),) + (None,) * (x.ndim - 2) + (slice(None),)
    loc, scale = stats.loc[extra], stats.scale[extra]
    if spec.noise == "gumbel":
        delta = (x - loc) / float(spec.sigma)
        t = stats.t[extra[:-1]][..., None]
        # beyond delta = 500 (absurd evidence) continue e^delta linearly: finite, still
        # decreasing, so the posterior piles up at the lowest node instead of overflowing
        big = np.exp(np.minimum(delta, 500.0)) * (1.0 + np.maximum(delta - 500.0, 0.0))
        return t * (delta - big)
    return -0.5 * ((x - loc) / scale) ** 2
