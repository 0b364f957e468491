"""Report kinds: what an agent says about the N tasks, and everything that depends on it.

A *report kind* (:class:`ReportKind`) owns, in one object: its action space per task (and the
wait/commit component of free response), how an action splits into the report and the commit,
the reward of a report against the labels, per-task correctness, the best (ideal-observer) report
under beliefs q = P(y_i = 1) and its expected reward, the chance reward, its evaluation metrics,
how the renderer colours it, and the env options that only it uses. The envs, the renderer, the
Gym ids and the RL evaluation look a kind up by name in :data:`REPORT_KINDS` and call it; adding a
kind is one subclass and one :func:`register_report_kind` call.

The built-in kinds (the rules themselves are spelled out in :mod:`envs.scoring`):

- ``"choice"`` (:class:`Choice`): ints in {0, 1}, the answer to every task; score = fraction
  correct.
- ``"wager"`` (:class:`Wager`): ints in {0, 1, 2}, 2 = opt out (post-decision wagering), which
  earns ``sure_reward`` when the trial offers it and 0 when it does not.
- ``"confidence"`` (:class:`Confidence`): floats in [0, 1], the reported P(y_i = 1), scored by a
  strictly proper rule (``scoring`` 'log' or 'brier') normalised so 0.5 scores 0 and a certain,
  correct report 1.

Shapes: reports and labels [..., N] (any leading batch shape), ``offered`` [...] (one flag per
trial, or a scalar). Scores are float64; choice and wager reports are int64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces

from multitask_evidence.common.registry import Registry
from multitask_evidence.common.validate import is_number
from multitask_evidence.envs.calibration import probability_ece

SCORINGS = ("log", "brier")
"""Strictly proper scoring rules of the confidence report."""
OPT_OUT = 2
"""Wager action value meaning "opt out" (take the sure reward)."""
LOG_FLOOR = 1e-6
"""Probabilities are clipped to [LOG_FLOOR, 1] inside the log score."""


class Rules(Protocol):
    """The option values a report's reward may depend on (:class:`envs.stream.EnvOptions` and
    :class:`ScoringRules` are two).

    scoring: 'log' | 'brier' (confidence). sure_reward: reward of an offered opt-out, in [0, 1]
    (wager). offer_prob: probability that a trial offers the opt-out, in [0, 1] (wager).
    """

    scoring: str
    sure_reward: float
    offer_prob: float


@dataclass(frozen=True)
class ScoringRules:
    """:class:`Rules` outside an env (the defaults are the env's)."""

    scoring: str = "log"
    sure_reward: float = 0.7
    offer_prob: float = 1.0


@dataclass(frozen=True)
class EndOfTrials:
    """What the RL evaluation knows of n finished trials, for :meth:`ReportKind.metrics`.

    reports: [n, N] the agent's final reports. ideal: [n, N] the ideal observer's on the same
    evidence. labels: [n, N] bool. offered: [n] bool (opt-out offered). aborted: [n] bool (free
    response: committed before the evidence).
    """

    reports: np.ndarray
    ideal: np.ndarray
    labels: np.ndarray
    offered: np.ndarray
    aborted: np.ndarray


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    """ValueError naming the argument and the allowed values."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def check_unit(name: str, v: object) -> None:
    """ValueError unless ``v`` is a finite number in [0, 1] (``name`` is the argument)."""
    ok = is_number(v)
    if not ok or not 0.0 <= float(v) <= 1.0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")


class ReportKind:
    """One kind of report. Subclasses set the class attributes and implement
    :meth:`task_scores`, :meth:`best_report` and :meth:`expected_reward`; the other methods have
    defaults that fit a discrete answer per task.

    Attributes:
        name: the ``report=`` option value that selects this kind.
        n_options: discrete values per task (action ``MultiDiscrete([n_options] * N)``), or None
            for a probability per task (action ``Box(0, 1, (N,), float32)``).
        has_opt_out: trials may offer an opt-out: the env draws an ``offered`` flag per trial (in
            its info), honours ``offer_prob`` and adds the cue channel when ``offer_prob < 1``.
        chance_reward: expected trial score of a report that ignores the evidence (the zero of
            the RL evaluation's chance-normalised fraction of the ideal observer).
        headline_by_reward: the RL evaluation's ``frac_ideal`` is taken by reward rather than by
            decision accuracy (for kinds where accuracy alone rewards declining hard tasks).
        env_id: a Gym id registered with this kind as its default report, or None.
    """

    name: str = ""
    n_options: int | None = 2
    has_opt_out: bool = False
    chance_reward: float = 0.5
    headline_by_reward: bool = False
    env_id: str | None = None

    # ---- actions --------------------------------------------------------------------------
    @property
    def report_dtype(self) -> np.dtype:
        """dtype of a report (and of the ideal observer's): float64 for probabilities, else int64."""
        return np.dtype(np.float64 if self.n_options is None else np.int64)

    def action_space(self, n_tasks: int, free: bool) -> spaces.Space:
        """The env's action space for N = ``n_tasks`` tasks; free response adds one last
        wait (0) / commit (1) component (a Box component, > 0.5 = commit, for probabilities)."""
        n = n_tasks + int(free)
        if self.n_options is None:
            return spaces.Box(0.0, 1.0, (n,), dtype=np.float32)
        nvec = [self.n_options] * n_tasks + [2] * int(free)
        return spaces.MultiDiscrete(np.array(nvec, dtype=np.int64))

    def split_commit(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Free response: (report [..., N], commit [...] bool) from valid actions [..., N + 1].

        Commit is the last component above 0.5 (1 of {0, 1}, or a probability-like > 0.5)."""
        return actions[..., :-1], actions[..., -1] > 0.5

    def check_options(self, opts: Rules) -> None:
        """ValueError for an option value this kind does not allow (its ranges are checked by
        EnvOptions): a kind without an opt-out refuses ``offer_prob`` other than 1."""
        if not self.has_opt_out and opts.offer_prob != 1.0:
            with_opt_out = [k.name for k in REPORT_KINDS.values() if k.has_opt_out]
            allowed = " or ".join(f"report={n!r}" for n in with_opt_out)
            raise ValueError(f"offer_prob applies to {allowed} only (allowed: 1.0 otherwise)")

    # ---- scoring ----------------------------------------------------------------------------
    def task_scores(
        self, reports: np.ndarray, labels: np.ndarray, rules: Rules, offered: np.ndarray | bool
    ) -> np.ndarray:
        """Per-task score [..., N] float64 of ``reports`` against 0/1 ``labels`` [..., N];
        ``offered`` [...] (or a scalar): whether the trial offers an opt-out."""
        return self.rule(np.asarray(reports), np.asarray(labels) > 0.5, rules, offered)

    def rule(self, a: np.ndarray, y: np.ndarray, rules: Rules, offered: Any) -> np.ndarray:
        """The scoring rule: per-task score [..., N] float64 of reports ``a`` [..., N] against
        bool labels ``y`` [..., N] (``offered`` as in :meth:`task_scores`)."""
        raise NotImplementedError

    def score(
        self, reports: np.ndarray, labels: np.ndarray, rules: Rules, offered: np.ndarray | bool
    ) -> np.ndarray:
        """Trial score [...] = mean over the N tasks of :meth:`task_scores`."""
        return self.task_scores(reports, labels, rules, offered).mean(axis=-1)

    def correct(self, reports: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per-task correctness [..., N] bool: the answer equals the label."""
        return np.asarray(reports) == (np.asarray(labels) > 0.5)

    def answered(self, reports: np.ndarray) -> np.ndarray | None:
        """[..., N] bool: the tasks the report answers (None: all of them). Accuracy is taken
        over the answered tasks."""
        return None

    # ---- the ideal observer ----------------------------------------------------------------
    def best_report(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        """The report [..., N] maximising the expected reward under beliefs ``probs`` [..., N]
        (float64 P(y_i = 1)), assuming any opt-out is offered."""
        raise NotImplementedError

    def ideal_report(
        self, probs: np.ndarray, rules: Rules, offered: np.ndarray | bool
    ) -> np.ndarray:
        """The best report [..., N] on trials whose opt-out offer is ``offered`` [...]."""
        return self.best_report(probs, rules)

    def expected_reward(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        """Expected per-task reward [..., N] of :meth:`best_report` under beliefs ``probs``."""
        raise NotImplementedError

    # ---- rendering and evaluation ---------------------------------------------------------
    def display_values(self, reports: np.ndarray) -> np.ndarray:
        """Reports [k, N] as numbers in [0, 1] for the renderer's colour map (float64)."""
        return np.asarray(reports, dtype=np.float64)

    def metrics(self, trials: EndOfTrials) -> dict[str, float]:
        """Kind-specific evaluation numbers over n finished trials (none here; see the
        subclasses)."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Choice(ReportKind):
    """The answer to every task, 0 (below) or 1 (above); score = fraction correct."""

    name = "choice"
    n_options = 2
    chance_reward = 0.5
    env_id = "MultiTaskEvidence-v0"

    def rule(self, a: np.ndarray, y: np.ndarray, rules: Rules, offered: Any) -> np.ndarray:
        return (a == y).astype(np.float64)

    def best_report(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        return (np.asarray(probs) > 0.5).astype(np.int64)

    def expected_reward(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        p = np.asarray(probs, dtype=np.float64)
        return np.maximum(p, 1.0 - p)


class Wager(ReportKind):
    """Post-decision wagering: 0 below / 1 above / 2 (:data:`OPT_OUT`) opt out. A correct answer
    earns 1, a wrong one 0, an opt-out ``sure_reward`` when the trial offers it and 0 when not.
    The best report opts out when max(p, 1 - p) < sure_reward."""

    name = "wager"
    n_options = 3
    has_opt_out = True
    chance_reward = 0.5
    headline_by_reward = True
    env_id = "MultiTaskEvidenceWager-v0"

    def check_options(self, opts: Rules) -> None:
        pass  # offer_prob in [0, 1] is this kind's own option (range checked by EnvOptions)

    def rule(self, a: np.ndarray, y: np.ndarray, rules: Rules, offered: Any) -> np.ndarray:
        s = (a == y).astype(np.float64)
        sure = np.where(np.asarray(offered, dtype=bool), float(rules.sure_reward), 0.0)
        if np.ndim(sure):
            sure = sure[..., None]
        return np.where(a == OPT_OUT, sure, s)

    def answered(self, reports: np.ndarray) -> np.ndarray:
        return np.asarray(reports) != OPT_OUT

    def best_report(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        p = np.asarray(probs, dtype=np.float64)
        check_unit("sure_reward", rules.sure_reward)
        choice = (p > 0.5).astype(np.int64)
        return np.where(np.maximum(p, 1.0 - p) < rules.sure_reward, OPT_OUT, choice)

    def ideal_report(
        self, probs: np.ndarray, rules: Rules, offered: np.ndarray | bool
    ) -> np.ndarray:
        # best_report assumes the opt-out is offered; where it is not, opting out scores 0
        action = self.best_report(probs, rules)
        offered = np.asarray(offered, dtype=bool)[..., None]
        choice = (np.asarray(probs) > 0.5).astype(np.int64)
        return np.where(offered | (action != OPT_OUT), action, choice)

    def expected_reward(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        check_unit("sure_reward", rules.sure_reward)
        p = np.asarray(probs, dtype=np.float64)
        return np.maximum(np.maximum(p, 1.0 - p), rules.sure_reward)

    def display_values(self, reports: np.ndarray) -> np.ndarray:
        a = np.asarray(reports, dtype=np.float64)
        return np.where(a == OPT_OUT, 0.5, a)  # an opt-out drawn half-way

    def metrics(self, trials: EndOfTrials) -> dict[str, float]:
        """``opt_out_rate`` and ``ideal_opt_out_rate``: opted-out share of the tasks of trials
        that offered the opt-out (0 when none did)."""
        out = {}
        offered = trials.offered
        for key, r in (("opt_out_rate", trials.reports), ("ideal_opt_out_rate", trials.ideal)):
            opted = ~self.answered(r)
            out[key] = float(opted[offered].mean()) if offered.any() else 0.0
        return out


class Confidence(ReportKind):
    """The reported P(y_i = 1) in [0, 1], scored by the strictly proper ``rules.scoring``:
    ``log``: 1 + log2 p(y), p(y) clipped below at :data:`LOG_FLOOR`; ``brier``: 1 - 4 (p - y)^2.
    The best report is the belief itself; correct means p > 0.5 on the label's side."""

    name = "confidence"
    n_options = None
    chance_reward = 0.0
    env_id = "MultiTaskEvidenceConfidence-v0"

    def rule(self, a: np.ndarray, y: np.ndarray, rules: Rules, offered: Any) -> np.ndarray:
        p = a.astype(np.float64, copy=False)
        if rules.scoring == "log":
            py = np.where(y, p, 1.0 - p)
            return 1.0 + np.log2(np.maximum(py, LOG_FLOOR))
        if rules.scoring == "brier":
            return 1.0 - 4.0 * np.square(p - y)
        check_choice("scoring", rules.scoring, SCORINGS)
        raise AssertionError("unreachable")

    def correct(self, reports: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return (np.asarray(reports) > 0.5) == (np.asarray(labels) > 0.5)

    def best_report(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        return np.asarray(probs, dtype=np.float64).copy()

    def expected_reward(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        """log: 1 + p log2 p + (1 - p) log2 (1 - p); brier: 1 - 4 p (1 - p)."""
        p = np.asarray(probs, dtype=np.float64)
        if rules.scoring == "brier":
            return 1.0 - 4.0 * p * (1.0 - p)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p))
        return 1.0 - np.nan_to_num(ent, nan=0.0)

    def metrics(self, trials: EndOfTrials) -> dict[str, float]:
        """``ece`` and ``ideal_ece``: :func:`envs.calibration.probability_ece` of the reported
        P(y_i = 1) against the labels over the trials that were not aborted."""
        ok, labels = ~trials.aborted, trials.labels
        return {
            "ece": probability_ece(trials.reports[ok], labels[ok]),
            "ideal_ece": probability_ece(trials.ideal[ok], labels[ok]),
        }


REPORT_KINDS: Registry[ReportKind] = Registry("report", "report kind")
"""Report kind name -> instance: the one list of kinds the envs, renderer, ids and evaluation
accept (add to it with :func:`register_report_kind`)."""


def register_report_kind(kind: ReportKind) -> ReportKind:
    """Make ``kind`` selectable as ``report=kind.name`` in every env (returns it).

    A kind that names its own Gym id (``kind.env_id``) gets that id at the next
    :func:`envs.register_envs` call. ValueError for a kind that is not a :class:`ReportKind`, has
    no name, or whose name is taken by another kind.
    """
    if not isinstance(kind, ReportKind):
        raise ValueError(f"kind must be a ReportKind instance, got {type(kind).__name__}")
    if not isinstance(kind.name, str) or not kind.name:
        raise ValueError(f"kind.name must be a non-empty string, got {kind.name!r}")
    old = REPORT_KINDS.get(kind.name)
    if old is not None and type(old) is not type(kind):
        raise ValueError(
            f"report kind {kind.name!r} is already registered ({old!r}); choose another name"
        )
    return REPORT_KINDS.add(kind.name, kind, replace=True)


def report_kind(name: Any) -> ReportKind:
    """The registered kind called ``name`` (ValueError listing the registered names)."""
    return REPORT_KINDS.lookup(name)


for _kind in (Choice(), Wager(), Confidence()):
    register_report_kind(_kind)
