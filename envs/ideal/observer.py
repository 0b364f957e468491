"""The face of the ideal observer: ``IdealObserver`` picks an engine and answers in its terms.

Every engine maps per-axis sufficient statistics (:mod:`envs.ideal.stats`) of M posterior states
to P(y_i = 1) [M, N]; the face validates the spec and the evidence, computes the statistics
(every step, or the last one only) and reshapes. Which engine serves a spec:

- ``flat`` (:mod:`envs.ideal.flat`): linear tasks, Gaussian-family noise, any D; flat prior.
- ``exact``, D <= 2: ``truncnorm`` (:mod:`envs.ideal.truncnorm`) for a uniform prior (or D = 1),
  Gaussian-family noise and linear tasks; ``grid`` (:mod:`envs.ideal.grid`) for anything else.
- ``mc`` (:mod:`envs.ideal.mc`): any D, prior, noise and boundaries.
- ``auto``: ``exact`` for D <= 2; ``flat`` for linear tasks with Gaussian-family noise and D > 2
  (it ignores the prior's edges); ``mc`` otherwise.
- noise in feature space (``noise_stage='features'``): ``features`` (:mod:`envs.ideal.features`),
  a fixed grid over the prior's box, D <= 3; ``auto`` and ``exact`` pick it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask_evidence.envs.ideal.features import FeatureGridEngine
from multitask_evidence.envs.ideal.flat import FlatEngine
from multitask_evidence.envs.ideal.grid import GridEngine
from multitask_evidence.envs.ideal.mc import MCEngine
from multitask_evidence.envs.ideal.stats import (
    GAUSSIAN_FAMILY,
    Stats,
    axis_scales,
    sufficient_stats,
)
from multitask_evidence.envs.ideal.truncnorm import TruncnormEngine
from multitask_evidence.envs.scoring import check_choice
from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.task import TaskGeometry, task_geometry
from multitask_evidence.envs.trials import TrialBatch, generate

METHODS = ("auto", "exact", "flat", "mc")

_LOG2 = np.log(2.0)


class IdealObserver:
    """Bayes-optimal posterior P(y_i = 1 | X(1..t)) for every task and step of a trial.

    Args:
        spec: the task.
        method: one of ``auto``, ``exact``, ``flat``, ``mc`` (see :mod:`envs.ideal`).
        n_mc: importance samples per trial and step (method ``mc``).
        n_quad: Gauss-Legendre nodes of the exact truncated-normal quadrature (D = 2).
        n_grid: grid points per axis of the exact grid method (D = 2; D = 1 uses 16x as many).
        seed: seed of the ``mc`` proposal draws (common to all trials, so results are repeatable).

    Attributes:
        method: the method actually used (``auto`` resolved).
        engine: ``flat``, ``truncnorm``, ``grid``, ``mc`` or ``features`` (how ``exact`` is
            computed).
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
        check_choice("method", method, METHODS)
        for name, value, low in (("n_mc", n_mc, 16), ("n_quad", n_quad, 4), ("n_grid", n_grid, 8)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.spec = spec
        self.geometry: TaskGeometry = task_geometry(spec)
        d = spec.latent_dim
        gaussian_linear = spec.is_linear and spec.noise in GAUSSIAN_FAMILY
        if spec.noise_stage == "features":
            self._init_features(spec, method, n_grid)
            return
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
        self._scales = axis_scales(spec)
        self._engine = self._build_engine()

    def _init_features(self, spec: TaskSpec, method: str, n_grid: int) -> None:
        if method not in ("auto", "exact"):
            raise ValueError(
                f"method={method!r} does not apply to noise_stage='features'; allowed methods for "
                "this spec: ['auto', 'exact'] (a grid over the prior's box)"
            )
        self.method, self.engine = "exact", "features"
        self.n_mc, self.n_quad, self.n_grid, self.seed = 0, 0, int(n_grid), 0
        self._scales = axis_scales(spec)
        self._engine = FeatureGridEngine(spec, self.geometry, self.n_grid)

    def _build_engine(self) -> FlatEngine | TruncnormEngine | GridEngine | MCEngine:
        if self.engine == "flat":
            return FlatEngine(self.geometry)
        if self.engine == "truncnorm":
            return TruncnormEngine(self.spec, self.geometry, self.n_quad)
        if self.engine == "grid":
            return GridEngine(self.spec, self.geometry, self.n_grid)
        return MCEngine(self.spec, self.geometry, self.n_mc, self.seed)

    # ---- public API ----------------------------------------------------------------------
    def posterior(self, stimulus_evidence: np.ndarray) -> np.ndarray:
        """P(y_i = 1 | X(1..t)) for every step t = 1..Ts.

        stimulus_evidence: [B, Ts, E] raw evidence (``TrialBatch.stimulus_evidence``; E =
        ``spec.noise_dim``). Returns [B, Ts, N] float64.
        """
        x = self._check_evidence(stimulus_evidence)
        b, ts, _ = x.shape
        stats = self._stats(x, last_only=False)
        return self._engine.probs(stats).reshape(b, ts, self.spec.n_tasks)

    def final_posterior(self, stimulus_evidence: np.ndarray) -> np.ndarray:
        """P(y_i = 1 | X(1..Ts)) after all the evidence: [B, Ts, E] -> [B, N] float64.

        Only the last step is computed (Ts times cheaper than ``posterior``).
        """
        x = self._check_evidence(stimulus_evidence)
        return self._engine.probs(self._stats(x, last_only=True))

    def posterior_mean(
        self, stimulus_evidence: np.ndarray, *, last_only: bool = False
    ) -> np.ndarray:
        """E[x* | X(1..t)] [B, Ts, D] at every evidence step, or [B, D] after the last one with
        ``last_only`` (Ts times cheaper) (noise_stage='features'; for noise in latent space see
        ``probes.theory.posterior_mean``)."""
        x, stats = self._feature_stats("posterior_mean", stimulus_evidence, last_only)
        mean = self._engine.posterior_mean(stats)
        return mean if last_only else mean.reshape(*x.shape[:2], self.spec.latent_dim)

    def posterior_moments(self, stimulus_evidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """E[x* | X(1..t)] and E[x*^2 | X(1..t)] per axis, [B, Ts, D] each, at every evidence
        step (noise_stage='features')."""
        x, stats = self._feature_stats("posterior_moments", stimulus_evidence, False)
        shape = (*x.shape[:2], self.spec.latent_dim)
        m1, m2 = self._engine.posterior_moments(stats)
        return m1.reshape(shape), m2.reshape(shape)

    def _feature_stats(
        self, method: str, stimulus_evidence: np.ndarray, last_only: bool
    ) -> tuple[np.ndarray, Stats]:
        """The checked evidence and its statistics for a method that only the feature-noise
        engine has (ValueError naming the latent-noise alternative otherwise)."""
        if self.engine != "features":
            raise ValueError(
                f"IdealObserver.{method} serves noise_stage='features'; for noise in latent "
                "space use probes.theory.posterior_mean"
            )
        x = self._check_evidence(stimulus_evidence)
        return x, self._stats(x, last_only=last_only)

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
        d = self.spec.noise_dim
        if x.ndim != 3 or x.shape[2] != d or x.shape[1] < 1 or x.shape[0] < 1:
            raise ValueError(
                f"stimulus_evidence must have shape [B, Ts, {d}] with B, Ts >= 1, got {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("stimulus_evidence must be finite")
        return x

    def _stats(self, x: np.ndarray, *, last_only: bool) -> Stats:
        """Per-axis sufficient statistics for each trial at each step (or the last step only)."""
        return sufficient_stats(self.spec, self._scales, x, last_only=last_only)


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
