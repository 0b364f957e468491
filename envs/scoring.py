"""Scoring rules shared by the single env and the native vector env (and usable by anyone).

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

import numpy as np

REPORTS = ("choice", "wager", "confidence")
RESPONSES = ("fixed", "free")
SCORINGS = ("log", "brier")
OPT_OUT = 2
"""Wager action value meaning "opt out" (take the sure reward)."""
LOG_FLOOR = 1e-6
"""Probabilities are clipped to [LOG_FLOOR, 1] inside the log score."""


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    """ValueError naming the argument and the allowed values."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


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
    y = np.asarray(labels) > 0.5
    if report == "choice":
        return (np.asarray(actions) == y).astype(np.float64)
    if report == "wager":
        a = np.asarray(actions)
        s = (a == y).astype(np.float64)
        sure = np.where(np.asarray(offered, dtype=bool), float(sure_reward), 0.0)
        if np.ndim(sure):
            sure = sure[..., None]
        return np.where(a == OPT_OUT, sure, s)
    if report == "confidence":
        p = np.asarray(actions, dtype=np.float64)
        if scoring == "log":
            py = np.where(y, p, 1.0 - p)
            return 1.0 + np.log2(np.maximum(py, LOG_FLOOR))
        if scoring == "brier":
            return 1.0 - 4.0 * np.square(p - y)
        check_choice("scoring", scoring, SCORINGS)
    check_choice("report", report, REPORTS)
    raise AssertionError("unreachable")


def score(
    report: str,
    actions: np.ndarray,
    labels: np.ndarray,
    *,
    scoring: str = "log",
    sure_reward: float = 0.7,
    offered: np.ndarray | bool = True,
) -> np.ndarray:
    """Trial score [...] = mean over the N tasks of :func:`task_scores` (1 = all right, certain)."""
    return task_scores(
        report, actions, labels, scoring=scoring, sure_reward=sure_reward, offered=offered
    ).mean(axis=-1)


def correct(report: str, actions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-task correctness [..., N] bool: the answer (or, for confidence, p > 0.5) equals the label.

    An opted-out wager counts as not correct.
    """
    y = np.asarray(labels) > 0.5
    if report == "confidence":
        return (np.asarray(actions) > 0.5) == y
    return np.asarray(actions) == y


# ---- the best report under beliefs -------------------------------------------------------
def best_report(probs: np.ndarray, report: str = "choice", sure_reward: float = 0.7) -> np.ndarray:
    """The report that maximises expected reward given beliefs ``probs`` [..., N].

    choice: int 1[p > 0.5]. confidence: p itself (optimal under any strictly proper scoring
    rule). wager: 0 (below) / 1 (above) / 2 (opt out), opting out when max(p, 1 - p) <
    sure_reward (reward 1 if correct, 0 if wrong, ``sure_reward`` for opting out).
    """
    check_choice("report", report, REPORTS)
    p = np.asarray(probs, dtype=np.float64)
    if report == "confidence":
        return p.copy()
    choice = (p > 0.5).astype(np.int64)
    if report == "choice":
        return choice
    _check_sure_reward(sure_reward)
    return np.where(np.maximum(p, 1.0 - p) < sure_reward, OPT_OUT, choice)


def _check_sure_reward(sure_reward: float) -> None:
    if not (isinstance(sure_reward, (int, float)) and 0.0 <= sure_reward <= 1.0):
        raise ValueError(f"sure_reward must be a number in [0, 1], got {sure_reward!r}")


def expected_reward(
    probs: np.ndarray, report: str = "choice", sure_reward: float = 0.7, scoring: str = "log"
) -> np.ndarray:
    """Expected reward [..., N] of the best report under beliefs ``probs`` (per task).

    choice: max(p, 1 - p). wager: max(p, 1 - p, sure_reward). confidence: the expected score of
    reporting p: ``log`` -> 1 + p log2 p + (1 - p) log2 (1 - p) (normalised log score, 0 at
    chance); ``brier`` -> 1 - 4 p (1 - p). Both are the normalised rules of :func:`task_scores`.
    """
    check_choice("report", report, REPORTS)
    check_choice("scoring", scoring, SCORINGS)
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
    check_choice("scoring", scoring, SCORINGS)
    r = best_report(np.asarray(probs, dtype=np.float64), report, sure_reward)
    return task_scores(report, r, labels, scoring=scoring, sure_reward=sure_reward)
