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

All functions are vectorised over any leading batch shape [...] and return float64.
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
