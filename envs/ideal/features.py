"""The exact posterior when the noise enters in feature space (``noise_stage='features'``).

The evidence is X(s) = f(x*) + eta(s) with eta(s) ~ N(0, sigma^2 I_F), so after t samples the
likelihood depends on the data only through their mean m(t):

    log L(x) = (t / sigma^2) (m(t) . f(x) - |f(x)|^2 / 2) + const,

whatever the encoder f. The posterior is the prior times this likelihood, integrated by the
midpoint rule on a fixed tensor grid over the prior's box [-0.5, 0.5]^D: 2 ``n_grid`` points per
axis for D = 2 (192 with the observer's default n_grid = 96), 32x n_grid for D = 1, n_grid / 2 for
D = 3 (D > 3 is refused: the grid would not fit). A fixed grid, unlike the latent-noise grid that
follows each posterior, must resolve the narrowest posterior anywhere: the error grows as the
posterior narrows, and tests/envs/test_ideal_features.py holds the default grid to 3e-3 of a 2x
finer one at a task as informative as the paper's, and to Monte Carlo within its error plus
3e-3. f is evaluated once per task at the grid's points, so a posterior costs one matmul
[M, F] x [F, G]. The label of a task is not constant inside a cell: each cell carries the
fraction of an 8 x 8 sub-grid of it on the label's positive side, so P(y_i = 1) is second order
in the cell's size for any boundary family. The copula prior enters as its density at the
midpoints (x = Phi(z) - 0.5, z ~ N(0, R)).

The tolerance against brute-force Monte Carlo is tested in tests/envs/test_ideal_features.py
(docs/science.md, "Entangled inputs").
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import ndtri

from multitask_evidence.envs.ideal.stats import Stats
from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.task import TaskGeometry

MAX_LATENT_DIM = 3
"""Largest latent dimension the feature-noise grid integrates (n_grid / 2 points per axis)."""
_SUB = 8  # sub-grid per axis within a cell for the label fractions
_CHUNK_WEIGHTS = 8_000_000


def grid_points_per_axis(latent_dim: int, n_grid: int) -> int:
    """Midpoints per axis of the feature-noise grid for latent dimension D."""
    return {1: 32 * n_grid, 2: 2 * n_grid, 3: max(8, n_grid // 2)}[latent_dim]


@functools.lru_cache(maxsize=8)
def _grid(spec: TaskSpec, n_grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Midpoints [G, D], log prior [G], features f(x) [G, F] float64, label fractions [G, N]."""
    from multitask_evidence.envs.task import task_geometry

    d = spec.latent_dim
    g = grid_points_per_axis(d, n_grid)
    h = 1.0 / g
    axis = -0.5 + (np.arange(g) + 0.5) * h
    pts = np.stack([a.ravel() for a in np.meshgrid(*([axis] * d), indexing="ij")], axis=1)
    geo = task_geometry(spec)
    feats = geo.encode(pts).astype(np.float64)
    sub = (np.arange(_SUB) + 0.5) / _SUB - 0.5  # offsets within a cell, in cell units
    offs = np.stack([a.ravel() for a in np.meshgrid(*([sub] * d), indexing="ij")], axis=1) * h
    frac = np.zeros((pts.shape[0], spec.n_tasks))
    for off in offs:  # _SUB^D passes, each vectorised over the grid
        frac += geo.labels(pts + off)
    frac /= len(offs)
    if spec.prior == "uniform":
        log_prior = np.zeros(pts.shape[0])
    else:
        z = ndtri(pts + 0.5)
        corr = np.full((d, d), spec.rho) + (1.0 - spec.rho) * np.eye(d)
        # copula density N(z; 0, R) / prod_d phi(z_d), up to a constant
        log_prior = -0.5 * np.einsum("gi,ij,gj->g", z, np.linalg.inv(corr) - np.eye(d), z)
    for arr in (pts, log_prior, feats, frac):
        arr.setflags(write=False)
    return pts, log_prior, feats, frac


class FeatureGridEngine:
    """P(y_i = 1) [M, N] and E[x* | data] [M, D] from the feature means of M posterior states."""

    def __init__(self, spec: TaskSpec, geometry: TaskGeometry, n_grid: int) -> None:
        if spec.latent_dim > MAX_LATENT_DIM:
            raise ValueError(
                f"the ideal observer for noise_stage='features' integrates on a grid and needs "
                f"latent_dim <= {MAX_LATENT_DIM}, got latent_dim={spec.latent_dim}"
            )
        self.spec = spec
        self.geometry = geometry
        self.n_grid = int(n_grid)
        # the grid depends on the task's fixed parts, not on the noise: one per task and n_grid
        key = spec.replace(sigma=1.0)
        self.points, self.log_prior, self.features, self.fractions = _grid(key, self.n_grid)
        half_sq = 0.5 * np.einsum("gf,gf->g", self.features, self.features)
        # [F + 2, G]: the features, |f|^2 / 2 and the log prior (see _unnormalised)
        self._design = np.concatenate([self.features.T, half_sq[None], self.log_prior[None]])

    def _unnormalised(self, stats: Stats) -> np.ndarray:
        """Posterior weights [M, G] of the grid's cells, each row scaled so its largest weight
        is 1 (one chunk of rows).

        One augmented product gives every log-weight, precision * (m . f - |f|^2 / 2) + log
        prior, as [precision * m, -precision, 1] . [f, |f|^2 / 2, log prior]. In float64: in
        float32 a trial's posterior moved with the number of trials it was computed beside
        (the product's blocking), and the single env must agree with the vector env."""
        precision = stats.t / float(self.spec.sigma) ** 2  # [M]
        rows = np.empty((stats.loc.shape[0], self._design.shape[0]))
        rows[:, :-2] = stats.loc * precision[:, None]
        rows[:, -2] = -precision
        rows[:, -1] = 1.0
        logw = rows @ self._design
        logw -= logw.max(axis=1, keepdims=True)
        return np.exp(logw, out=logw)

    def weights(self, stats: Stats) -> np.ndarray:
        """Normalised posterior weights [M, G] of the grid's cells."""
        w = self._unnormalised(stats)
        w /= w.sum(axis=1, keepdims=True)
        return w

    def _reduce(self, stats: Stats, table: np.ndarray) -> np.ndarray:
        """Posterior expectations [M, K] of a per-cell table [G, K]: one product with the table
        and a column of ones (the normaliser)."""
        g = self.points.shape[0]
        aug = np.ones((g, table.shape[1] + 1))
        aug[:, :-1] = table
        m = stats.loc.shape[0]
        out = np.empty((m, table.shape[1]))
        # ~8M weights (64 MB) per chunk: a product of a few hundred rows runs the BLAS kernel
        # faster per row than one of a few dozen
        chunk = max(1, _CHUNK_WEIGHTS // g)
        for r0 in range(0, m, chunk):
            rows = slice(r0, min(r0 + chunk, m))
            sums = self._unnormalised(stats.take(rows)) @ aug
            out[rows] = sums[:, :-1] / sums[:, -1:]
        return out

    def probs(self, stats: Stats) -> np.ndarray:
        """P(y_i = 1) [M, N] for states whose ``loc`` [M, F] is the mean of the feature samples
        seen so far and ``t`` [M] their number."""
        return np.clip(self._reduce(stats, self.fractions), 0.0, 1.0)

    def posterior_mean(self, stats: Stats) -> np.ndarray:
        """E[x* | data] [M, D] (the midpoint rule)."""
        return self._reduce(stats, self.points)

    def posterior_moments(self, stats: Stats) -> tuple[np.ndarray, np.ndarray]:
        """E[x* | data] and E[x*^2 | data] per axis, [M, D] each (the midpoint rule; the cells'
        own width adds h^2 / 12 to the second moment)."""
        d = self.points.shape[1]
        both = self._reduce(stats, np.concatenate([self.points, self.points**2], axis=1))
        h = 1.0 / grid_points_per_axis(d, self.n_grid)
        return both[:, :d], both[:, d:] + h * h / 12.0
