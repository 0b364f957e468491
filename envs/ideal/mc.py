"""Ideal observer by Monte Carlo (any D, prior, noise and boundaries).

Self-normalised importance sampling. Proposal per trial and step: a defensive mixture of 90% a
Gaussian around the flat estimate (SD inflated x2) and 10% uniform on the prior's box (bounded
weights). Error ~ 1 / sqrt(n_mc) per probability (common random numbers across trials, so it is
smooth in the evidence).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from multitask_evidence.envs.ideal.stats import Stats, log_lik, rows_per_chunk
from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.task import TaskGeometry


class MCEngine:
    """P(y_i = 1) [M, N] from ``n_mc`` importance samples per state, drawn once from ``seed``."""

    def __init__(self, spec: TaskSpec, geometry: TaskGeometry, n_mc: int, seed: int) -> None:
        self.spec = spec
        self.geometry = geometry
        self.n_mc = int(n_mc)
        d = spec.latent_dim
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 7919]))
        n_gauss = int(round(0.9 * self.n_mc))
        self._mc_normal = rng.standard_normal((n_gauss, d))
        self._mc_uniform = rng.random((self.n_mc - n_gauss, d)) - 0.5

    def probs(self, stats: Stats) -> np.ndarray:
        d, n = self.spec.latent_dim, self.spec.n_tasks
        m_all = stats.loc.shape[0]
        k_infl = 2.0
        centre = np.clip(stats.loc, -0.5, 0.5)
        out = np.empty((m_all, n))
        chunk = rows_per_chunk(self.n_mc * (n + d + 2))
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
            logw = log_lik(self.spec, st, x).sum(-1) + self._log_prior(x) - log_q
            logw = np.where(inside, logw, -np.inf)
            w = np.exp(logw - logw.max(axis=1, keepdims=True))
            labels = (self.geometry.margins(x) > 0).astype(np.float64)  # [m, K, N]
            out[rows] = np.matmul(w[:, None, :], labels)[:, 0] / w.sum(axis=1, keepdims=True)
        return np.clip(out, 0.0, 1.0)

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
