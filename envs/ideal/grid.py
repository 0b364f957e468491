"""Exact posterior by grid quadrature (D <= 2): any prior, noise and boundaries.

A tensor midpoint grid (``n_grid`` per axis; 16x that for D = 1) on a box adapted to the
posterior (likelihood mode +- 7 SD, clipped to the prior's box), prior density x per-axis
likelihood. Linear tasks are read off column by column (tail sums along the axis with the larger
normal component, the cut cell split in proportion); nonlinear ones replace the label indicator
by the fraction of each cell on the positive side (a linear ramp over the cell's width along the
margin gradient), second order in the cell size. The copula prior's grid lives in z-space
(x = Phi(z) - 0.5), where the prior is a smooth N(0, R). Measured worst-case errors with the
default n_grid = 96 against brute force: Gumbel ~5e-4, circles / hyperbolic ~1e-3, copula prior
~3e-3 (posteriors near the corners where the copula density is unbounded); typical errors are
10-50x smaller. Cost per trial and step ~ n_grid^2 (linear) or n_grid^2 N.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from multitask_evidence.envs.ideal.stats import Stats, log_lik, rows_per_chunk
from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.task import TaskGeometry, orthant_index

_Z_MAX = 5.0  # copula grid: |z| > 5 holds < 3e-7 of the N(0, 1) prior mass per axis


class GridEngine:
    """P(y_i = 1) [M, N] on a posterior-adapted midpoint grid of ``n_grid`` points per axis."""

    def __init__(self, spec: TaskSpec, geometry: TaskGeometry, n_grid: int) -> None:
        self.spec = spec
        self.geometry = geometry
        self.n_grid = int(n_grid)
        self._beta = float(spec.sigma)

    def probs(self, stats: Stats) -> np.ndarray:
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
        chunk = rows_per_chunk(g**d * (n + d + 2))
        for r0 in range(0, m_all, chunk):
            rows = slice(r0, min(r0 + chunk, m_all))
            st = stats.take(rows)
            axes = lo[rows, None, :] + (hi - lo)[rows, None, :] * centres[None, :, None]  # [m,G,D]
            h = h_all[rows, None, :]  # cell sides (in x), [m, 1, D] or [m, G, D]
            if in_z:
                z_axes = axes
                axes = ndtr(z_axes) - 0.5
                h = h * np.exp(-0.5 * z_axes**2) / np.sqrt(2.0 * np.pi)  # dx = phi(z) dz
            ll = log_lik(self.spec, st, axes)  # [m, G, D]
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

    def _axis_box(self, stats: Stats) -> tuple[np.ndarray, np.ndarray]:
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
