"""The ideal observer of a multi-task evidence task (docs/science.md §3): the performance ceiling.

Given the raw evidence X(1..t) of a trial, the Bayes-optimal agent reports for every task i the
posterior probability P(y_i = 1 | X(1..t)); its best choice is 1[p > 0.5], its best wager opts out
when max(p, 1 - p) is below the sure reward, and its best confidence report (under a strictly
proper scoring rule) is p itself.

Methods (``IdealObserver(spec, method=...)``; the face, :mod:`envs.ideal.observer`, picks one
engine module):

- ``"flat"`` (:mod:`envs.ideal.flat`): flat-prior closed form, linear tasks, Gaussian-family
  noise (gaussian, anisotropic, ar1), any D. It ignores the edges of the prior, so near
  |x*_d| = 0.5 it is slightly over- or under-confident.
- ``"exact"``: the posterior under the task's own bounded prior, D <= 2. Uniform prior +
  Gaussian-family noise + linear tasks: truncated-normal quadrature (:mod:`envs.ideal.truncnorm`,
  about 1e-7 in probability). Anything else (correlated prior, Gumbel noise, hyperbolic or
  circle boundaries): a posterior-adapted midpoint grid (:mod:`envs.ideal.grid`, worst cases
  ~5e-4 to ~3e-3 with the default n_grid = 96).
- ``"mc"`` (:mod:`envs.ideal.mc`): self-normalised importance sampling, any D, prior, noise and
  boundaries; error ~ 1 / sqrt(n_mc) per probability.
- ``"auto"``: ``exact`` for D <= 2; ``flat`` for linear tasks with Gaussian-family noise and D > 2
  (note: it ignores the prior's edges); ``mc`` otherwise.

Sufficient statistics per axis and the per-axis likelihood: :mod:`envs.ideal.stats`. The best
report under the posterior and its rewards (``best_report``, ``expected_reward``,
``realised_reward``) are the reward rules of :mod:`envs.scoring`, re-exported here.

Shapes: B trials, Ts = stimulus steps, D = latent_dim, N = n_tasks. Probabilities are float64.
"""

from multitask_evidence.envs.ideal.observer import (
    METHODS,
    IdealObserver,
    ideal_accuracy,
    ideal_accuracy_curve,
)
from multitask_evidence.envs.ideal.stats import GAUSSIAN_FAMILY
from multitask_evidence.envs.scoring import REPORTS, best_report, expected_reward, realised_reward
from multitask_evidence.envs.scoring import SCORINGS as SCORING_RULES

__all__ = [
    "GAUSSIAN_FAMILY",
    "METHODS",
    "REPORTS",
    "SCORING_RULES",
    "IdealObserver",
    "best_report",
    "expected_reward",
    "ideal_accuracy",
    "ideal_accuracy_curve",
    "realised_reward",
]
