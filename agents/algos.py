"""The registry of training algorithms: ``ALGOS[name] -> Algo`` (:class:`agents.algorithm.Algo`).

``supervised`` (:mod:`agents.trainer`), ``ppo`` (:mod:`agents.rl.ppo`) and
``sb3-recurrent-ppo`` (:mod:`agents.rl.sb3`). ``mte train --algo``, the sweep grid's ``algo``
axis, the sweep point's training and ``agents.load`` / ``agents.untrained`` all read this one
dict, so a new algorithm is one :func:`register` call (or one entry here).
"""

from __future__ import annotations

from typing import Any

from multitask_evidence.agents import trainer
from multitask_evidence.agents.algorithm import Algo
from multitask_evidence.agents.rl import RL_ALGOS
from multitask_evidence.common.registry import Registry

SUPERVISED = trainer.ALGO.name

ALGOS: Registry[Algo] = Registry("algo", "algorithm")
"""Algorithm name -> :class:`Algo`, supervised first."""
ALGOS.update({trainer.ALGO.name: trainer.ALGO, **RL_ALGOS})


def register(algo: Algo, *, replace: bool = False) -> Algo:
    """Add ``algo`` to :data:`ALGOS` (a name or run-folder kind already taken is a ValueError
    unless ``replace``); returns it."""
    if not isinstance(algo, Algo):
        raise TypeError(f"register needs an Algo, got {type(algo).__name__}")
    taken = {a.kind: a.name for a in ALGOS.values() if a.name != algo.name}
    if algo.kind in taken and not replace:
        raise ValueError(f"run-folder kind {algo.kind!r} is already {taken[algo.kind]!r}'s")
    return ALGOS.add(algo.name, algo, replace=replace)


unregister = ALGOS.remove
"""Remove an algorithm from :data:`ALGOS` (no-op for an unknown name)."""


def names() -> list[str]:
    """Every registered algorithm name, ``supervised`` first."""
    return list(ALGOS)


def get(name: Any) -> Algo:
    """The algorithm called ``name``; anything else is a ValueError listing the names."""
    return ALGOS.lookup(name)


def for_kind(kind: str) -> Algo:
    """The algorithm whose run folders have config.json ``"kind"`` ``kind``."""
    for algo in ALGOS.values():
        if algo.kind == kind:
            return algo
    raise ValueError(
        f"config.json kind must be one of {[a.kind for a in ALGOS.values()]}, got {kind!r}"
    )


def for_config(config: Any) -> Algo:
    """The algorithm whose config dataclass ``config`` is an instance of."""
    for algo in ALGOS.values():
        if isinstance(config, algo.config_cls):
            return algo
    raise ValueError(f"no registered algorithm has config {type(config).__name__}")


__all__ = ["ALGOS", "SUPERVISED", "Algo", "for_config", "for_kind", "get", "names", "register",
           "unregister"]
