"""Run-folder helpers shared by the native PPO and the SB3 path (atomic writes, metrics log).

Layout (the same as supervised runs): ``spec.json``, ``config.json`` (with ``"kind"``),
``model.pt`` (a state dict for ``torch.load(weights_only=True)``), ``metrics.jsonl``, tensorboard
events, and the algorithm's resume state.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from agents.run import (
    MetricsLog,
    atomic_torch_save,
    atomic_write_text,
    load_state,
    load_weights,
    read_json,
    read_spec,
    resume_mismatch,
    trim_logs,
)

__all__ = [
    "MetricsLog",
    "atomic_torch_save",
    "atomic_write_text",
    "load_state",
    "load_weights",
    "read_spec",
    "trim_logs",
    "check_env_id",
    "final_summary",
    "parse_env_kwargs",
]


def check_env_id(owner: str, env_id: str) -> None:
    """ValueError unless ``env_id`` is a registered Gymnasium id (``owner``: the config's name)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers the MultiTaskEvidence ids)

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


def prepare_run_dir(
    run_dir: str | Path | None, kind: str, spec: Any, config: Any, resume: bool, marker: str
) -> tuple[Path, bool]:
    """Create (or reopen for ``resume``) a run folder; write spec.json and config.json.

    marker: the file whose presence means "there is state to resume from".
    Returns (path, resuming). A folder that already holds a run without ``resume`` -> ValueError.
    """
    if run_dir is None:
        import time

        run_dir = Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(run_dir)
    has_run = (path / "config.json").exists()
    if has_run and not resume:
        raise ValueError(
            f"run folder {path} already holds a run; pass resume=True (--resume) to continue it "
            "or choose another run_dir"
        )
    path.mkdir(parents=True, exist_ok=True)
    resuming = resume and (path / marker).exists()
    if has_run and resume:
        saved = read_json(path / "config.json", "a config object")
        if saved.get("kind") != kind:
            raise ValueError(f"run folder {path} holds a {saved.get('kind')!r} run, not {kind!r}")
        why = resume_mismatch(path, spec, saved, dataclasses.asdict(config))
        if why:
            raise ValueError(why)
    atomic_write_text(path / "spec.json", spec.to_json())
    cfg = {"kind": kind, **dataclasses.asdict(config)}
    atomic_write_text(path / "config.json", json.dumps(cfg, indent=2))
    return path, resuming


def read_config(run_dir: str | Path, cls: type, kind: str) -> Any:
    """Read config.json of a run folder back into its dataclass (checks ``kind``; errors name
    the file)."""
    path = Path(run_dir) / "config.json"
    d = read_json(path, "a config object")
    if d.pop("kind", None) != kind:
        raise ValueError(f"{path} is not a {kind!r} run")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in d.items() if k in names})
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None
