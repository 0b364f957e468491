"""`PPOConfig`: every knob of a native recurrent-PPO run (:mod:`agents.rl.ppo`), one docstring per
field (the CLI's help text).

The policy torso is any registered network: the network fields are :class:`agents.config
.NetworkConfig`'s, with PPO's own defaults: arch ``gru``, and no dropout in a transformer torso
(``dropout`` None means 0 here, where supervised runs take the paper model's 0.1).

Defaults, and the measurements behind them:

- ``update_epochs`` 0 picks 4 passes for report kinds with an opt-out (wager) and 2 otherwise: with 2 passes on N = 6
  wager tasks the agent settles on always opting out before it learns to answer (the opt-out trap
  of :mod:`agents.rl.ppo`); with 4 it reaches 0.98 of the ideal observer.
- ``ent_coef_continuous`` 0: a Beta's entropy is largest at the uniform distribution, so a bonus
  pulls the reported confidence towards 0.5; at equal budget a bonus left reports
  under-confident (ECE 0.047 against 0.029 without).
- ``num_threads`` 1: on a busy machine more torch threads than free cores made a 14 s run take
  over 200 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from multitask_evidence.agents.config import NetworkConfig, arch_field
from multitask_evidence.agents.rl.common import RLConfig, check_rl_fields
from multitask_evidence.agents.rl.heads import CONTINUOUS_HEADS
from multitask_evidence.agents.validate import ConfigChecker

KIND = "ppo"
RATIOS = ("component", "joint")


@dataclass
class PPOConfig(NetworkConfig, RLConfig):
    """Configuration of one native recurrent-PPO run (one docstring per field = CLI help)."""

    arch: str = arch_field("gru")
    """Policy torso: rnn, rnn_nonleaky, gru, lstm, transformer, or any architecture registered in
    agents.architectures."""
    dropout: float | None = None
    """Transformer dropout probability (default: 0; the policy torso trains without dropout)."""
    critic_hidden: int = 64
    """Width of the critic's hidden layer on top of the torso (0 = linear critic)."""
    continuous_head: str = "beta"
    """Distribution of continuous components (confidence): beta or gaussian (sigmoid-squashed)."""
    num_envs: int = 1024
    """Parallel envs in the native vector env = whole trials per update."""
    total_steps: int = 2_000_000
    """Budget in env steps (steps inside trials; padding after a free-response commit not counted)."""
    lr: float = 3e-3
    """Adam learning rate (initial value when annealed)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over the budget."""
    update_epochs: int = 0
    """Passes over each rollout; 0 = auto: 4 for report kinds with an opt-out (wager; escapes the opt-out trap), else 2."""
    num_minibatches: int = 4
    """Minibatches per pass (split over trials, each a set of whole trials)."""
    clip_coef: float = 0.2
    """PPO ratio clipping epsilon."""
    ratio: str = "component"
    """Clip the probability ratio per action component (component) or of the joint action (joint)."""
    clip_vloss: bool = False
    """Clip the value loss around the rollout's values (CleanRL's option)."""
    ent_coef: float = 0.003
    """Entropy bonus coefficient of discrete components (per scored component)."""
    ent_coef_continuous: float = 0.0
    """Entropy bonus coefficient of continuous components (confidence). Default 0: a Beta's entropy
    is largest at the uniform distribution, so a bonus pulls the reported mean towards 0.5."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    norm_adv: bool = True
    """Normalise advantages over the scored steps of each minibatch."""
    mask_unscored: bool = True
    """Restrict the policy loss and entropy of each component to the steps where it is scored."""
    eval_every: int = 20
    """Evaluate the deterministic policy every this many updates (and at the end)."""
    eval_trials: int = 4096
    """Held-out trials per evaluation."""
    checkpoint_every: int = 20
    """Write an atomic checkpoint every this many updates (and at the end)."""
    device: str = "auto"
    """Device: auto (cuda if available, else cpu) or any torch device string: cpu, cuda, cuda:1,
    mps (checked to exist when training starts)."""
    algo: str = "ppo"
    """Algorithm name (fixed: ppo)."""

    network_defaults: ClassVar[dict[str, Any]] = {"dropout": 0.0}

    def validate(self) -> None:
        """Raise ValueError naming the field and the allowed values."""
        c = ConfigChecker(self)
        self.validate_network(c)
        c.choice("algo", ("ppo",))
        c.choice("continuous_head", CONTINUOUS_HEADS)
        c.choice("ratio", RATIOS)
        c.integer("update_epochs", 0)
        c.integer("critic_hidden", 0)
        for name in ("num_envs", "num_minibatches", "checkpoint_every"):
            c.integer(name, 1)
        c.number("clip_coef", 0.0, open_low=True)
        c.number("ent_coef_continuous", 0.0)
        if self.num_minibatches > self.num_envs:
            c.fail(
                "num_minibatches",
                f"({self.num_minibatches}) must be <= num_envs ({self.num_envs}): minibatches "
                "are sets of whole trials",
            )
        check_rl_fields(c)

    def env_options(self) -> dict[str, Any]:
        """``env_kwargs`` parsed (a JSON object)."""
        return ConfigChecker(self).json_object("env_kwargs")
