"""Reinforcement-learning agents: a native recurrent PPO over any of our networks, and
sb3-contrib's RecurrentPPO, in the same run-folder layout as supervised runs.

- ``ALGOS[name] = (ConfigDataclass, train_fn)`` with ``train_fn(spec, config, run_dir, resume)``:
  ``"ppo"`` (:mod:`agents.rl.ppo`) and ``"sb3-recurrent-ppo"`` (:mod:`agents.rl.sb3`).
- :func:`load` reads a run folder whose config.json has ``"kind"`` ``"ppo"`` or ``"sb3"`` and
  returns a policy with ``hidden_and_outputs(obs [B, T, O]) -> (hidden [B, T, H], outputs
  [B, T, N])`` (numpy), ``.spec`` and ``.config``.
- :func:`agents.rl.evaluate.evaluate` scores either against the ideal observer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.rl import ppo, sb3
from agents.rl.evaluate import EvalResult, evaluate
from agents.rl.ppo import PPOConfig
from agents.rl.sb3 import SB3Config

ALGOS: dict[str, tuple[type, Any]] = {
    "ppo": (PPOConfig, ppo.train),
    "sb3-recurrent-ppo": (SB3Config, sb3.train),
}
"""Algorithm name -> (config dataclass, train function)."""

KINDS = {"ppo": ppo.load, "sb3": sb3.load}


def load(run_dir: str | Path) -> Any:
    """Load an RL run folder (config.json ``kind`` 'ppo' or 'sb3')."""
    from agents.run import read_kind

    path = Path(run_dir)
    kind, _ = read_kind(path)
    if kind not in KINDS:
        raise ValueError(
            f"{path}: config.json kind must be one of {list(KINDS)} for RL runs, got {kind!r}"
        )
    return KINDS[kind](path)


def untrained(policy: Any) -> Any:
    """The same RL agent before training (same config and seed, fresh weights), as a policy of
    the same kind: the untrained control of the probes. Native PPO: exactly the network its
    trainer starts from (``torch.manual_seed(config.seed)`` then ``build_agent``); sb3: a fresh
    policy from the same seed (sb3's own seeding order may draw differently)."""
    import torch

    spec, config = policy.spec, policy.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if isinstance(config, PPOConfig):
            agent, _, scoring = ppo.build_agent(spec, config)
            return ppo.PPOPolicy(agent, spec, config, scoring)
        if isinstance(config, SB3Config):
            fresh = sb3.build_policy(spec, config)
            return sb3.SB3Policy(fresh, spec, config, sb3._n_report(spec, config))
    raise ValueError(f"untrained: unknown RL config {type(config).__name__}")


__all__ = ["ALGOS", "EvalResult", "PPOConfig", "SB3Config", "evaluate", "load", "untrained"]
