"""What the native PPO and the SB3 path share: the checks of the fields both configs have, and the
result of an RL run with the summary of its last evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multitask_evidence.agents.validate import ConfigChecker


def final_summary(final_eval: dict[str, Any], env_steps: int, train_seconds: float) -> dict:
    """An RL run's last evaluation in the supervised runs' summary keys (for ``mte train``)."""
    return {
        "step": env_steps,
        "acc": final_eval.get("accuracy"),
        "ideal_acc": final_eval.get("ideal_accuracy"),
        "frac_ideal": final_eval.get("frac_ideal"),
        "train_seconds": train_seconds,
    }


@dataclass
class RLRun:
    """Result of an RL ``train``: where the run went, its budget and last evaluation, and the
    trained policy (``PPOPolicy`` / ``SB3Policy``)."""

    run_dir: Path
    env_steps: int
    train_seconds: float
    steps_per_second: float
    final_eval: dict[str, Any]
    policy: Any

    @property
    def final(self) -> dict[str, Any]:
        """The last evaluation in the supervised runs' summary keys (for ``mte train``)."""
        return final_summary(self.final_eval, self.env_steps, self.train_seconds)


def check_rl_fields(c: ConfigChecker) -> None:
    """The checks of the fields every RL config has (env, budget, optimiser, evaluation,
    runtime), on ``c.obj``."""
    for name in ("total_steps", "eval_every", "eval_trials"):
        c.integer(name, 1)
    for name in ("eval_seed", "seed", "num_threads"):
        c.integer(name, 0)
    c.number("lr", 0.0, open_low=True)
    for name in ("gamma", "gae_lambda"):
        c.number(name, 0.0, 1.0)
    for name in ("ent_coef", "vf_coef", "max_grad_norm", "max_seconds"):
        c.number(name, 0.0)
    c.device()
    c.env_id()
    c.json_object("env_kwargs")
