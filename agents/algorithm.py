"""`Algo`: what the rest of the package needs to know about a training algorithm.

Each algorithm's module declares one (``agents.trainer.ALGO``, ``agents.rl.ppo.ALGO``,
``agents.rl.sb3.ALGO``); :mod:`agents.algos` gathers them into the registry that the CLI, the
sweeps and ``agents.load`` read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Algo:
    """A training algorithm.

    name: the ``--algo`` value and the sweep grid's ``algo`` value.
    config_cls: its config dataclass (one docstring per field: the CLI's help text).
    train: ``train(spec, config, run_dir, resume) -> run`` (the run carries ``.final`` or
        ``.final_eval``, its last evaluation).
    load: ``load(run_dir, device="cpu") -> agent`` with ``.spec``, ``.config`` and
        ``hidden_and_outputs(obs)``; RL policies load where their config puts them and take
        ``device`` for a uniform signature.
    kind: the ``"kind"`` its run folders' config.json holds.
    untrained: ``untrained(agent) -> agent``: the same agent before training (the probes'
        untrained control); None when the algorithm has none.
    """

    name: str
    config_cls: type
    train: Callable[..., Any]
    load: Callable[..., Any]
    kind: str
    untrained: Callable[[Any], Any] | None = None

    def make_config(self, **fields: Any) -> Any:
        """``config_cls(**fields)``, with its ``algo`` field (if it has one) set to this name."""
        names = getattr(self.config_cls, "__dataclass_fields__", {})
        if "algo" in names:
            fields = {**fields, "algo": self.name}
        return self.config_cls(**fields)
