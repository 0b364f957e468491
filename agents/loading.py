"""Loading a run folder of any algorithm, and the same agent before training.

This module sits above the supervised trainer and ``agents.rl``: it reads config.json's
``"kind"`` and hands the folder to that algorithm's loader from the registry
(:mod:`agents.algos`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from multitask_evidence.agents.algos import for_config, for_kind
from multitask_evidence.agents.run import read_kind


def load(run_dir: Path | str, device: str = "cpu") -> Any:
    """Load a run folder. Supervised runs -> :class:`agents.run.LoadedRun` on ``device``; RL runs
    -> their policy (``agents.rl.load``; they load where their config puts them).

    Every file is read without running code (JSON, weights-only state dicts); a missing,
    corrupt or mismatched file is a ValueError naming it.
    """
    run_dir = Path(run_dir)
    kind, _ = read_kind(run_dir)
    try:
        algo = for_kind(kind)
    except ValueError as e:
        raise ValueError(f"{run_dir}: {e}") from None
    return algo.load(run_dir, device=device)


def untrained(loaded: Any) -> Any:
    """The same agent before training: same architecture, init and seed, fresh weights.

    A loaded run (supervised :class:`agents.run.LoadedRun`, or an RL policy from
    ``agents.rl.load``) -> an object of the same kind whose network is exactly what its trainer
    built at step 0 (``torch.manual_seed(config.seed)`` then the same builder), for the untrained
    control of every probe. Torch's global RNG is restored afterwards.
    """
    config = getattr(loaded, "config", None)
    spec = getattr(loaded, "spec", None)
    if config is None or spec is None:
        raise ValueError(
            f"untrained needs a loaded run with .spec and .config, got {type(loaded).__name__}"
        )
    algo = for_config(config)
    if algo.untrained is None:
        raise ValueError(f"untrained: algorithm {algo.name!r} has no untrained control")
    return algo.untrained(loaded)
