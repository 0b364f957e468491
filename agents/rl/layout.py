"""What an env id scores when, for the RL trainers and their evaluation: the action layout and
the scoring layout of an env, and the terminal infos of a vector env's finished trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from multitask_evidence import envs  # noqa: F401  (registers the MultiTaskEvidence ids)
from multitask_evidence.agents.rl.heads import ActionLayout
from multitask_evidence.envs.reports import ReportKind, report_kind
from multitask_evidence.envs.spec import TaskSpec, field_names
from multitask_evidence.envs.trials import DECISION, period_codes


@dataclass(frozen=True)
class ScoringLayout:
    """What the env scores when, read from one env of the id.

    report_index: [N] action components holding the report on each task.
    commit_index: the wait/commit component (free response: the last one), or None.
    obs_dim: O' (the spec's obs_dim, plus a cue channel for wagers with offer_prob < 1).
    trial_steps: L, steps of a full-length trial (free response: fixation + stimulus).
    scored_steps: [L] 1.0 where a fixed-response report is scored (the decision steps).
    stimulus_start: first step at which a free-response commit is scored (earlier: abort).
    report: the report kind's name (``kind``: its :class:`envs.reports.ReportKind`).
    """

    report_index: np.ndarray
    commit_index: int | None
    obs_dim: int
    trial_steps: int
    scored_steps: np.ndarray
    stimulus_start: int
    report: str

    @property
    def kind(self) -> ReportKind:
        """The report kind scored by the env."""
        return report_kind(self.report)

    @classmethod
    def of(cls, env: Any, layout: ActionLayout) -> ScoringLayout:
        base = env.unwrapped
        opts, spec = base.options, base.task_spec
        commit = layout.n_components - 1 if opts.free else None
        idx = np.array([c for c in range(layout.n_components) if c != commit], dtype=np.int64)
        length = opts.trial_steps(spec)
        scored = (period_codes(spec)[:length] == DECISION).astype(np.float32)
        return cls(
            idx,
            commit,
            int(env.observation_space.shape[0]),
            int(length),
            scored,
            spec.stimulus_start,
            opts.report,
        )


def env_info(
    spec: TaskSpec, env_id: str, env_kwargs: dict[str, Any]
) -> tuple[ActionLayout, ScoringLayout]:
    """Action layout and scoring layout of ``env_id`` with ``spec`` (builds one env)."""
    task_fields = sorted(set(env_kwargs) & set(field_names()))
    if task_fields:
        raise ValueError(
            f"env_kwargs must hold env options only; task fields {task_fields} belong in the spec"
        )
    env = gym.make(env_id, spec=spec, **env_kwargs)
    try:
        layout = ActionLayout(env.action_space)
        scoring = ScoringLayout.of(env, layout)
    finally:
        env.close()
    return layout, scoring


def take_final(final: dict[str, np.ndarray], info: dict[str, Any], ended: np.ndarray) -> None:
    """Copy the entries of a vector-env info dict for the envs whose trial just ended."""
    for key, value in info.items():
        if key.startswith("_") or not isinstance(value, np.ndarray) or value.dtype == object:
            continue
        if key not in final:
            final[key] = np.zeros(value.shape, dtype=value.dtype)
        mask = ended & info.get(f"_{key}", np.ones(len(ended), dtype=bool))
        final[key][mask] = value[mask]
