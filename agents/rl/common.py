"""Config helpers shared by the native PPO and the SB3 path: env id and env options checks, and
the summary of an RL run's last evaluation."""

from __future__ import annotations

import json
from typing import Any


def check_env_id(owner: str, env_id: str) -> None:
    """ValueError unless ``env_id`` is a registered Gymnasium id (``owner``: the config's name)."""
    import gymnasium as gym

    from multitask_evidence import envs  # noqa: F401  (registers the MultiTaskEvidence ids)

    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("MultiTaskEvidence"))
        raise ValueError(f"{owner}.env_id must be a registered id, e.g. {known}; got {env_id!r}")


def final_summary(final_eval: dict[str, Any], env_steps: int, train_seconds: float) -> dict:
    """An RL run's last evaluation in the supervised runs' summary keys (for ``mte train``)."""
    return {
        "step": env_steps,
        "acc": final_eval.get("accuracy"),
        "ideal_acc": final_eval.get("ideal_accuracy"),
        "frac_ideal": final_eval.get("frac_ideal"),
        "train_seconds": train_seconds,
    }


def parse_env_kwargs(owner: str, text: str) -> dict[str, Any]:
    """``env_kwargs`` (a JSON object as text) parsed; anything else -> ValueError."""
    try:
        d = json.loads(text or "{}")
    except json.JSONDecodeError as e:
        raise ValueError(f"{owner}.env_kwargs must be a JSON object, got {text!r}") from e
    if not isinstance(d, dict):
        raise ValueError(f"{owner}.env_kwargs must be a JSON object, got {text!r}")
    return d
