"""Scoring rules shared by the single env and the native vector env (and usable by anyone), by
report kind name: each function looks the kind up in :data:`envs.reports.REPORT_KINDS` and applies
its rule (:mod:`envs.reports` holds the rules; this module is their by-name face).

A *report* is what an agent says about the N tasks at one moment:

- ``"choice"``: ints [..., N] in {0, 1}, the answer to every task. Score = fraction correct.
- ``"wager"``: ints [..., N] in {0, 1, 2}; 2 = opt out (post-decision wagering). An opt-out earns
  ``sure_reward`` (default 0.7 of a correct answer) when the opt-out is offered on that trial and 0
  when it is not. Score = mean over tasks.
- ``"confidence"``: floats [..., N] in [0, 1], the reported probability that y_i = 1, scored by a
  strictly proper rule normalised so that a report of 0.5 scores 0 and a certain, correct report
  scores 1 (mean over tasks):

  * ``"log"``:   ``1 + log2 p(y)`` with p(y) = p if y = 1 else 1 - p, clipped below at
    ``LOG_FLOOR`` = 1e-6 (so the worst score of a task is 1 + log2(1e-6) = -18.93);
  * ``"brier"``: ``1 - 4 (p - y)^2`` (in [-3, 1]).

  Strict propriety means the expected score under the belief q is maximised only by reporting
  p = q: the best confidence policy reports the ideal observer's posterior.

The best report under beliefs p = P(y_i = 1) (``best_report``; the ideal observer's policy) and
what it earns: ``expected_reward`` under the beliefs themselves, ``realised_reward`` against the
true labels (through ``task_scores``, so both follow the rules above).

All functions are vectorised over any leading batch shape [...] and return float64 (reports
are ints for choice and wager).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask_evidence.envs.reports import (
    LOG_FLOOR,
    OPT_OUT,
    REPORT_KINDS,
    SCORINGS,
    ScoringRules,
    check_choice,
    report_kind,
)

REPORTS = tuple(REPORT_KINDS)
"""The built-in report kinds; the registry :data:`envs.reports.REPORT_KINDS` also holds any kind
added later."""
RESPONSES = ("fixed", "free")

__all__ = [
    "LOG_FLOOR",
    "OPT_OUT",
    "REPORTS",
    "RESPONSES",
    "SCORINGS",
    "best_report",
    "check_choice",
    "correct",
    "expected_reward",
    "realised_reward",
    "score",
    "task_scores",
]


def task_scores(
    report: str,
    actions: np.ndarray,
    labels: np.ndarray,
    *,
    scoring: str = "log",
    sure_reward: float = 0.7,
    offered: np.ndarray | bool = True,
) -> np.ndarray:
    """Per-task score [..., N] of reports ``actions`` [..., N] against 0/1 ``labels`` [..., N].

    offered: bool [...] (or a scalar): whether opting out was offered (wager only).
    """
    rules = ScoringRules(scoring, sure_reward)
    return report_kind(report).task_scores(actions, labels, rules, offered)


def score(report: str, actions: np.ndarray, labels: np.ndarray, **rules: Any) -> np.ndarray:
    """Trial score [...] = mean over the N tasks of :func:`task_scores` (1 = all right, certain);
    keywords as there (``scoring``, ``sure_reward``, ``offered``)."""
    return task_scores(report, actions, labels, **rules).mean(axis=-1)


def correct(report: str, actions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-task correctness [..., N] bool: the answer (or, for confidence, p > 0.5) equals the label.

    An opted-out wager counts as not correct.
    """
    return report_kind(report).correct(actions, labels)


# ---- the best report under beliefs -------------------------------------------------------
def best_report(probs: np.ndarray, report: str = "choice", sure_reward: float = 0.7) -> np.ndarray:
    """The report that maximises expected reward given beliefs ``probs`` [..., N].

    choice: int 1[p > 0.5]. confidence: p itself (optimal under any strictly proper scoring
    rule). wager: 0 (below) / 1 (above) / 2 (opt out), opting out when max(p, 1 - p) <
    sure_reward (reward 1 if correct, 0 if wrong, ``sure_reward`` for opting out).
    """
    kind = report_kind(report)
    return kind.best_report(probs, ScoringRules(sure_reward=sure_reward))


def expected_reward(
    probs: np.ndarray, report: str = "choice", sure_reward: float = 0.7, scoring: str = "log"
) -> np.ndarray:
    """Expected reward [..., N] of the best report under beliefs ``probs`` (per task).

    choice: max(p, 1 - p). wager: max(p, 1 - p, sure_reward). confidence: the expected score of
    reporting p: ``log`` -> 1 + p log2 p + (1 - p) log2 (1 - p) (normalised log score, 0 at
    chance); ``brier`` -> 1 - 4 p (1 - p). Both are the normalised rules of :func:`task_scores`.
    """
    kind = report_kind(report)
    check_choice("scoring", scoring, SCORINGS)
    return kind.expected_reward(probs, ScoringRules(scoring, sure_reward))


def realised_reward(
    probs: np.ndarray,
    labels: np.ndarray,
    report: str = "choice",
    sure_reward: float = 0.7,
    scoring: str = "log",
) -> np.ndarray:
    """Reward [..., N] the best report of ``probs`` earns against the true ``labels`` (0/1)."""
    check_choice("scoring", scoring, SCORINGS)
    r = best_report(np.asarray(probs, dtype=np.float64), report, sure_reward)
    return task_scores(report, r, labels, scoring=scoring, sure_reward=sure_reward)
