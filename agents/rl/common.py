"""What the native PPO and the SB3 path share: the config fields with one meaning and default in
both (:class:`RLConfig`) and the checks of every field both have, and the result of an RL run
with the summary of its last evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

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


@dataclass(eq=False)
class TrainedPolicy:
    """A trained RL agent as evaluation (``agents.rl.evaluate``) and the probes' recorder read
    it: its task ``spec``, its run ``config`` and, from each algorithm's subclass,

    ``hidden_and_outputs(obs [B, T, O]) -> (hidden [B, T, H], outputs [B, T, N])`` in numpy,
    where outputs are per task the probability of answering 1 (choice; wager: given not opting
    out) or the reported confidence (confidence), and the algorithm's acting methods."""

    kind: ClassVar[str]
    """The run-folder kind of the algorithm that trained it."""
    spec: Any
    config: Any

    def hidden_and_outputs(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


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


@dataclass
class RLConfig:
    """The fields of every RL config that mean the same and default the same in each (one
    docstring per field = CLI help); :class:`agents.rl.PPOConfig` and
    :class:`agents.rl.SB3Config` add the rest, including their budget, optimiser and
    evaluation cadence, whose defaults differ."""

    env_id: str = "MultiTaskEvidence-v0"
    """Registered env id (report kind): MultiTaskEvidence-v0 (choice), -Wager-v0, -Confidence-v0,
    -FreeRT-v0."""
    env_kwargs: str = "{}"
    """JSON dict of extra env constructor options (report/response options, e.g. '{"report":
    "confidence"}'); task fields come from the spec."""
    max_seconds: float = 0.0
    """Stop after this many seconds of training (evaluation excluded; 0 = no limit)."""
    gamma: float = 1.0
    """Discount factor per step (trials are short episodes with the reward at the end: 1 is
    unbiased)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    eval_seed: int = 1_000_003
    """Seed of the evaluation trials (fixed, so evaluations are on equal evidence)."""
    seed: int = 0
    """Seed of the weights, action sampling and the training trials."""
    num_threads: int = 1
    """torch CPU threads (0 = leave torch's setting alone; default 1: more threads than free
    cores slow torch down)."""
    progress: bool = True
    """Show a tqdm progress bar."""


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
