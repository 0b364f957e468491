"""Reinforcement-learning agents: a native recurrent PPO over any of our networks, and
sb3-contrib's RecurrentPPO, in the same run-folder layout as supervised runs.

- Each algorithm's module declares its :class:`agents.algorithm.Algo` (``ppo.ALGO``,
  ``sb3.ALGO``); :data:`RL_ALGOS` holds them by name, and :mod:`agents.algos` adds them to the
  registry of every algorithm. :data:`ALGOS` gives each RL algorithm's ``(config dataclass,
  train function)`` pair, read from the same entries.
- :func:`load` reads a run folder whose config.json has ``"kind"`` ``"ppo"`` or ``"sb3"`` and
  returns a policy with ``hidden_and_outputs(obs [B, T, O]) -> (hidden [B, T, H], outputs
  [B, T, N])`` (numpy), ``.spec`` and ``.config``.
- :func:`agents.rl.evaluate.evaluate` scores either against the ideal observer;
  :mod:`agents.rl.layout` says what an env scores when (``env_info``, ``take_final``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multitask_evidence.agents.algorithm import Algo
from multitask_evidence.agents.rl import ppo, sb3
from multitask_evidence.agents.rl.evaluate import EvalResult, evaluate
from multitask_evidence.agents.rl.layout import ScoringLayout, env_info, take_final
from multitask_evidence.agents.rl.ppo_config import PPOConfig
from multitask_evidence.agents.rl.sb3 import SB3Config
from multitask_evidence.agents.run import read_kind

RL_ALGOS: dict[str, Algo] = {a.name: a for a in (ppo.ALGO, sb3.ALGO)}
"""RL algorithm name -> its registry entry."""

ALGOS: dict[str, tuple[type, Any]] = {n: (a.config_cls, a.train) for n, a in RL_ALGOS.items()}
"""RL algorithm name -> (config dataclass, train function), from :data:`RL_ALGOS`."""

KINDS = {a.kind: a for a in RL_ALGOS.values()}


def load(run_dir: str | Path) -> Any:
    """Load an RL run folder (config.json ``kind`` 'ppo' or 'sb3')."""
    path = Path(run_dir)
    kind, _ = read_kind(path)
    if kind not in KINDS:
        raise ValueError(
            f"{path}: config.json kind must be one of {list(KINDS)} for RL runs, got {kind!r}"
        )
    return KINDS[kind].load(path)


def untrained(policy: Any) -> Any:
    """The same RL agent before training (same config and seed, fresh weights), as a policy of
    the same kind: the untrained control of the probes. Native PPO: exactly the network its
    trainer starts from (``torch.manual_seed(config.seed)`` then ``build_agent``); sb3: a fresh
    policy from the same seed (sb3's own seeding order may draw differently)."""
    for algo in RL_ALGOS.values():
        if isinstance(policy.config, algo.config_cls) and algo.untrained is not None:
            return algo.untrained(policy)
    raise ValueError(f"untrained: unknown RL config {type(policy.config).__name__}")


__all__ = [
    "ALGOS",
    "RL_ALGOS",
    "EvalResult",
    "PPOConfig",
    "SB3Config",
    "ScoringLayout",
    "env_info",
    "evaluate",
    "load",
    "take_final",
    "untrained",
]
