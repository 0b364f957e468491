"""Flat-prior closed form of the ideal observer: linear tasks, Gaussian-family noise, any D.

Per axis d the likelihood of x*_d is Gaussian in x*_d with mean mu_d(t) and variance v_d(t) (the
sufficient statistics of :mod:`envs.ideal.stats`, GLS for AR(1) noise), so with a flat prior
P(y_i = 1) = Phi((c_i . mu(t) + b_i) / sqrt(sum_d c_id^2 v_d(t))). It ignores the edges of the
prior, so near |x*_d| = 0.5 it is slightly over- or under-confident.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from multitask_evidence.envs.ideal.stats import Stats
from multitask_evidence.envs.task import TaskGeometry


class FlatEngine:
    """P(y_i = 1) [M, N] under a flat prior on x*, from the Gaussian likelihood of each axis."""

    def __init__(self, geometry: TaskGeometry) -> None:
        self.geometry = geometry

    def probs(self, stats: Stats) -> np.ndarray:
        geo = self.geometry
        c = geo.normals  # [N, D]
        mean = stats.loc @ c.T + geo.offsets  # [M, N]
        sd = np.sqrt((stats.scale**2) @ (c**2).T)
        return ndtr(mean / sd)
