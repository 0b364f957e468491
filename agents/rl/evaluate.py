"""Evaluation shared by the native PPO and the SB3 path: play held-out trials, score them against
the ideal observer on the same evidence.

Both paths expose an *actor* (``initial_state(n)``, ``act(obs [n, O], state, deterministic) ->
(env actions [n, A], state, ...)``); :func:`evaluate` plays ``n_trials`` whole trials with it in
the native vector env (seeded, so every evaluation of every agent sees the same trials) and reads
the env's end-of-trial info: per-task correctness, the score, the ideal observer's answer and
reward on the same evidence (free response: after the same number of samples), the reaction time.

Numbers (:class:`EvalResult`):

- ``mean_reward``: return per trial; ``ideal_reward``: the ideal observer's on the same evidence.
- ``accuracy``: decision accuracy over trials x tasks (choice; confidence: report > 0.5; wager:
  over the answers given, opt-outs excluded). ``ideal_accuracy`` likewise for the ideal observer.
- ``frac_ideal``: the headline, chance-normalised fraction of the ideal observer. Choice and
  confidence: (accuracy - 0.5) / (ideal_accuracy - 0.5). Wager (a kind with
  ``headline_by_reward``): by reward, (mean_reward - 0.5) / (ideal_reward - 0.5) (0.5 = answering
  at random, never opting out), since accuracy on the answered tasks rewards opting out of
  everything hard.
- ``frac_ideal_reward``: (mean_reward - chance) / (ideal_reward - chance) for every report kind
  (chance: the kind's ``chance_reward``: 0.5 choice / wager, 0 confidence, whose normalised score
  is 0 at a report of 0.5).
- the report kind's own numbers (:meth:`envs.reports.ReportKind.metrics`): wager
  ``opt_out_rate`` (over tasks on trials that offered it) and the ideal observer's
  ``ideal_opt_out_rate``; confidence ``ece`` (:func:`envs.calibration.probability_ece` of the
  reported P(y_i = 1) against the labels, 10 equal-width bins, over trials x tasks) and
  ``ideal_ece`` (the observer's, a finite-sample floor). Numbers of a kind added later that have
  no field here go to ``extra``.
- free response: ``abort_rate``, reaction time (evidence samples at commit) ``rt_mean``,
  ``rt_quantiles`` (10/25/50/75/90 %) and ``rt_hist`` (counts for 1..stimulus_steps).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from multitask_evidence.agents.rl.layout import env_info, take_final
from multitask_evidence.envs.reports import REPORT_KINDS, EndOfTrials, ReportKind, report_kind
from multitask_evidence.envs.spec import TaskSpec


@dataclass
class EvalResult:
    """Evaluation of one agent on ``n_trials`` held-out trials (see the module docstring)."""

    report: str
    response: str
    n_trials: int
    mean_reward: float
    ideal_reward: float
    accuracy: float
    ideal_accuracy: float
    frac_ideal: float
    frac_ideal_reward: float
    opt_out_rate: float | None = None
    ideal_opt_out_rate: float | None = None
    ece: float | None = None
    ideal_ece: float | None = None
    abort_rate: float | None = None
    rt_mean: float | None = None
    rt_quantiles: list[float] | None = None
    rt_hist: list[int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def summarise_final(
    final: dict[str, np.ndarray],
    rewards: np.ndarray | None = None,
    reports: np.ndarray | None = None,
    report: str | None = None,
) -> dict[str, Any]:
    """Numbers from terminal infos (numpy arrays over trials, as a vector env returns them).

    final: 'labels' [n, N], 'correct' [n, N], 'ideal_action' [n, N], 'ideal_reward' [n], and
    optionally 'offered', 'reaction_time', 'aborted'. rewards: [n] returns. reports: [n, N] the
    agent's final report (needed for the kind's own numbers, e.g. wager opt-outs, confidence
    calibration, and for accuracy over the answered tasks). report: the report kind's name;
    None: the first registered kind whose reports have the ideal answers' dtype (so a choice or
    a confidence kind, from the terminal infos alone).
    """
    out: dict[str, Any] = {}
    if "labels" not in final or "ideal_action" not in final or "correct" not in final:
        return out
    labels = final["labels"] > 0.5
    ideal = final["ideal_action"]
    aborted = final.get("aborted", np.zeros(len(labels), dtype=bool)).astype(bool)
    kind = report_kind(report) if report is not None else _kind_of_dtype(ideal.dtype)
    ideal_correct = kind.correct(ideal, labels)
    correct = final["correct"].astype(bool) & ~aborted[:, None]
    if reports is not None:
        offered = final.get("offered", np.ones(len(labels), dtype=bool)).astype(bool)
        out.update(kind.metrics(EndOfTrials(reports, ideal, labels, offered, aborted)))
    acc = _accuracy(correct, kind.answered(reports) if reports is not None else None)
    ideal_acc = _accuracy(ideal_correct, kind.answered(ideal) if reports is not None else None)
    out["accuracy"], out["ideal_accuracy"] = acc, ideal_acc
    denom = ideal_acc - 0.5
    out["frac_ideal"] = (acc - 0.5) / denom if denom > 1e-9 else float("nan")
    ideal_reward = float(final["ideal_reward"].mean())
    out["ideal_reward"] = ideal_reward
    if rewards is not None:
        mean_reward = float(np.mean(rewards))
        chance = kind.chance_reward
        out["mean_reward"] = mean_reward
        d = ideal_reward - chance
        out["frac_ideal_reward"] = (mean_reward - chance) / d if abs(d) > 1e-9 else float("nan")
        if kind.headline_by_reward:
            out["frac_ideal"] = out["frac_ideal_reward"]
    if "reaction_time" in final:
        rt = final["reaction_time"][~aborted]
        out["abort_rate"] = float(aborted.mean())
        if rt.size:
            out["rt_mean"] = float(rt.mean())
            out["rt_quantiles"] = [float(q) for q in np.quantile(rt, [0.1, 0.25, 0.5, 0.75, 0.9])]
    return out


def _kind_of_dtype(dtype: np.dtype) -> ReportKind:
    """The first registered kind whose reports have ``dtype``'s kind (int or float)."""
    for kind in REPORT_KINDS.values():
        if kind.report_dtype.kind == dtype.kind:
            return kind
    raise ValueError(f"no registered report kind has {dtype} reports")


def _accuracy(correct: np.ndarray, answered: np.ndarray | None) -> float:
    """Mean of ``correct`` [n, N] over the ``answered`` tasks (None: all; NaN: none answered)."""
    if answered is None:
        return float(correct.mean())
    return float(correct[answered].mean()) if answered.any() else float("nan")


def play_trials(
    actor: Any,
    vec: Any,
    trial_steps: int,
    seed: int,
    deterministic: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Play one trial in every env of ``vec`` (reset with ``seed``; env i gets seed + i).

    Returns (terminal infos {key: [n, ...]}, returns [n], final env actions [n, A]).
    """
    n = vec.num_envs
    obs, _ = vec.reset(seed=seed)
    state = actor.initial_state(n)
    alive = np.ones(n, dtype=bool)
    returns = np.zeros(n)
    final: dict[str, np.ndarray] = {}
    last_actions: np.ndarray | None = None
    for _ in range(trial_steps):
        env_actions, state, *_ = actor.act(obs, state, deterministic)
        env_actions = np.asarray(env_actions)
        if last_actions is None:
            last_actions = np.zeros_like(env_actions)
        obs, r, term, trunc, info = vec.step(env_actions)
        returns += np.where(alive, r, 0.0)
        ended = alive & (np.asarray(term) | np.asarray(trunc))
        if ended.any():
            take_final(final, info, ended)
            last_actions[ended] = env_actions[ended]
        alive &= ~ended
        if not alive.any():
            break
    if alive.any():
        raise RuntimeError(f"{int(alive.sum())} trials did not end within {trial_steps} steps")
    return final, returns, last_actions


def evaluate(
    actor: Any,
    spec: TaskSpec,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    n_trials: int = 4096,
    seed: int = 1_000_003,
    deterministic: bool = True,
    max_envs: int = 2048,
) -> EvalResult:
    """Play ``n_trials`` held-out trials with ``actor`` and compare with the ideal observer.

    Trials are played ``max_envs`` at a time in the native vector env; trial i has seed ``seed + i``
    (so two agents evaluated with the same seed see the same evidence).
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer, got {n_trials!r}")
    kw = {"block_size": 1, **(env_kwargs or {})}
    layout, scoring = env_info(spec, env_id, {k: v for k, v in kw.items()})
    n_report = len(scoring.report_index)
    finals: list[dict[str, np.ndarray]] = []
    rets: list[np.ndarray] = []
    reports: list[np.ndarray] = []
    done = 0
    vec = None
    try:
        while done < n_trials:
            n = min(max_envs, n_trials - done)
            if vec is None or vec.num_envs != n:
                if vec is not None:
                    vec.close()
                vec = gym.make_vec(
                    env_id, num_envs=n, vectorization_mode="vector_entry_point", spec=spec, **kw
                )
            final, ret, acts = play_trials(
                actor, vec, scoring.trial_steps, seed + done, deterministic
            )
            finals.append(final)
            rets.append(ret)
            reports.append(np.asarray(acts)[:, :n_report])
            done += n
    finally:
        if vec is not None:
            vec.close()
    final = {
        k: np.concatenate([f[k] for f in finals]) for k in finals[0] if all(k in f for f in finals)
    }
    rewards = np.concatenate(rets)
    rep = np.concatenate(reports)
    s = summarise_final(final, rewards, rep, scoring.report)
    hist = None
    if "reaction_time" in final:
        aborted = final.get("aborted", np.zeros(len(rewards), dtype=bool)).astype(bool)
        hist = np.bincount(
            final["reaction_time"][~aborted].astype(np.int64), minlength=spec.stimulus_steps + 1
        )[1:].tolist()
    names = {f.name for f in dataclasses.fields(EvalResult)}
    return EvalResult(
        report=scoring.report,
        response="free" if scoring.commit_index is not None else "fixed",
        n_trials=n_trials,
        rt_hist=hist,
        **{k: v for k, v in s.items() if k in names},
        extra={k: v for k, v in s.items() if k not in names},
    )
