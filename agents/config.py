"""The configurations of networks and of supervised training, one docstring per field (the CLI's
help text).

- :class:`NetworkConfig`: the network fields every algorithm that trains one of our networks
  shares (supervised :class:`TrainConfig`, native PPO's ``agents.rl.ppo_config.PPOConfig``). Its
  ``init`` and ``dropout`` left at None take the architecture's model default (the registry in
  :mod:`agents.architectures`), or the algorithm's own (``network_defaults``).
- :class:`TrainConfig`: a network plus the supervised recipe. Fields left at ``None`` take their
  value from the preset (``resolve()``):

  - ``paper``: the paper's recipe: batch 16, Adam lr 1e-3, constant, no clipping, 1e5 batches
    (RNN/GRU/LSTM) or 2e4 (transformer).
  - ``default``: a faster recipe for the same model. It changes optimisation only (batch, lr,
    schedule, clipping, steps); benchmarks/bench_recipe.py checks that it lands near the paper
    recipe's OOD r^2 (benchmarks/results/recipe.md).

The model itself never depends on the preset: every preset gets the paper's model (torch's init
for the RNNs, GPT-2's init and dropout 0.1 for the transformer). A preset's values are its shared
ones (:data:`PRESET_BASE`) overridden by the architecture's recipe; :data:`PRESETS` and
:data:`MODEL_DEFAULTS` show them per architecture, read from the registry when used.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from multitask_evidence.agents.architectures import (
    ARCHITECTURES,
    MODEL_FIELDS,
    PRESET_NAMES,
    arch_names,
    build_core,
)
from multitask_evidence.agents.networks import ACTIVATIONS, INITS, POSITIONALS, RecurrentCore
from multitask_evidence.agents.validate import ConfigChecker

SCHEDULES = ("constant", "cosine", "linear")

PRESET_BASE: dict[str, dict[str, Any]] = {
    "paper": {
        "batch_size": 16,
        "lr": 1e-3,
        "schedule": "constant",
        "warmup_steps": 0,
        "grad_clip": 0.0,
        "weight_decay": 0.0,
        "eval_every": 1000,
    },
    # batches of 128 with a 3x higher peak lr and a cosine decay to 0, clipping at 1 (no early
    # blow-ups)
    "default": {
        "batch_size": 128,
        "lr": 3e-3,
        "schedule": "cosine",
        "warmup_steps": 0,
        "grad_clip": 1.0,
        "weight_decay": 0.0,
        "eval_every": 200,
    },
}
"""Per preset: the values every architecture shares unless its recipe sets its own."""


def preset_values(preset: str, arch: str) -> dict[str, Any]:
    """The values ``preset`` gives the recipe fields of a network of ``arch``."""
    return {**PRESET_BASE[preset], **ARCHITECTURES[arch].recipes[preset]}


def presets() -> dict[str, dict[str, Any]]:
    """Every preset's values: a field an architecture's recipe sets is a dict ``{arch: value}``
    over every registered architecture, a shared one a single value."""
    out: dict[str, dict[str, Any]] = {}
    for preset in PRESET_NAMES:
        own = {k for a in ARCHITECTURES.values() for k in a.recipes[preset]}
        keys = [*PRESET_BASE[preset], *sorted(own - set(PRESET_BASE[preset]))]
        out[preset] = {
            k: {a: preset_values(preset, a)[k] for a in ARCHITECTURES}
            if k in own
            else PRESET_BASE[preset][k]
            for k in keys
        }
    return out


def model_defaults() -> dict[str, dict[str, Any]]:
    """The paper's model per architecture: ``{field: {arch: value}}`` for ``init`` and
    ``dropout`` (used for fields left at None)."""
    return {k: {a: e.model[k] for a, e in ARCHITECTURES.items()} for k in MODEL_FIELDS}


class _Live(Mapping[str, Any]):
    """A read-only mapping recomputed from the registry at every access."""

    def __init__(self, make: Callable[[], dict[str, Any]]) -> None:
        self._make = make

    def __getitem__(self, key: str) -> Any:
        return self._make()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._make())

    def __len__(self) -> int:
        return len(self._make())

    def __repr__(self) -> str:
        return repr(self._make())


PRESETS: Mapping[str, dict[str, Any]] = _Live(presets)
"""Preset -> field -> value or ``{arch: value}`` (:func:`presets`, read when used)."""
MODEL_DEFAULTS: Mapping[str, dict[str, Any]] = _Live(model_defaults)
"""``init`` / ``dropout`` -> ``{arch: value}`` (:func:`model_defaults`, read when used)."""


def arch_field(default: str) -> Any:
    """The ``arch`` field: its choices are the registered architectures (CLI and grids)."""
    return field(default=default, metadata={"choices": arch_names})


@dataclass
class NetworkConfig:
    """The network: architecture and its sizes (one docstring per field = CLI help)."""

    arch: str = arch_field("rnn")
    """Network architecture: rnn (Elman, leak a), rnn_nonleaky, gru, lstm, transformer, or any
    architecture registered in agents.architectures."""
    hidden_size: int = 64
    """Hidden units H (transformer: residual stream width)."""
    activation: str = "relu"
    """Elman RNN nonlinearity: relu (paper) or tanh."""
    leak: float = 1.0
    """Elman leak a = dt / tau in (0, 1] (paper: 1); rnn_nonleaky: the integration rate."""
    init: str | None = None
    """Weight init: default (the paper's: torch's for the RNNs, GPT-2's for the transformer),
    torch, or for the Elman RNN's recurrent weights orthogonal / identity (IRNN)."""
    n_layers: int = 1
    """Transformer layers (paper: 1)."""
    n_heads: int = 8
    """Transformer attention heads; must divide hidden_size (paper: 8)."""
    mlp_size: int = 256
    """Transformer MLP width (paper: 256)."""
    dropout: float | None = None
    """Transformer dropout probability (default: 0.1, GPT-2's, the paper's model)."""
    positional: str = "none"
    """Transformer positional embedding: none (paper), learned, sinusoidal."""

    network_defaults: ClassVar[dict[str, Any]] = {}
    """This algorithm's values for ``init`` / ``dropout`` left at None, ahead of the
    architecture's own model defaults."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the field and the allowed values."""
        self.validate_network(ConfigChecker(self))

    def validate_network(self, c: ConfigChecker) -> None:
        """The network fields' checks, then the architecture's own (``Architecture.check``)."""
        c.choice("arch", arch_names())
        entry = ARCHITECTURES[self.arch]
        c.integer("hidden_size", 1)
        c.choice("activation", ACTIVATIONS)
        c.number("leak", 0.0, 1.0, open_low=True)
        c.choice("init", INITS, allow_none=True)
        if self.init is not None and self.init not in entry.inits:
            c.fail("init", f"must be one of {list(entry.inits)} for arch={self.arch!r}, "
                           f"got {self.init!r}")  # fmt: skip
        c.integer("n_layers", 1)
        c.integer("n_heads", 1)
        c.integer("mlp_size", 1)
        c.number("dropout", 0.0, 1.0, open_high=True, allow_none=True)
        c.choice("positional", POSITIONALS)
        if entry.check is not None:
            entry.check(c)

    def model_value(self, name: str) -> Any:
        """``init`` or ``dropout``: the field, or when None this algorithm's default
        (``network_defaults``), else the architecture's."""
        v = getattr(self, name)
        if v is None:
            v = self.network_defaults.get(name, ARCHITECTURES[self.arch].model[name])
        return v

    def core_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``agents.architectures.build_core`` (after ``arch`` and
        ``obs_dim``)."""
        return {
            "hidden_size": self.hidden_size,
            "activation": self.activation,
            "leak": self.leak,
            "init": self.model_value("init"),
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "mlp_size": self.mlp_size,
            "dropout": self.model_value("dropout"),
            "positional": self.positional,
        }

    def build_core(self, obs_dim: int, **extra: Any) -> RecurrentCore:
        """The core this config describes for observations of width ``obs_dim`` (``extra``:
        builder options such as ``max_len``)."""
        return build_core(self.arch, obs_dim, **self.core_kwargs(), **extra)


@dataclass
class TrainConfig(NetworkConfig):
    """Configuration of one supervised training run (fields at None come from ``preset``)."""

    preset: str = "default"
    """Recipe for the fields left unset: default (fast) or paper (batch 16, lr 1e-3, 1e5 batches)."""
    batch_size: int | None = None
    """Trials per batch (fresh trials every batch)."""
    lr: float | None = None
    """Adam learning rate (peak value when a schedule is used)."""
    steps: int | None = None
    """Number of training batches (optimizer steps)."""
    schedule: str | None = None
    """Learning-rate schedule over the steps: constant, cosine (to 0), linear (to 0)."""
    warmup_steps: int | None = None
    """Linear learning-rate warm-up steps (0 = none)."""
    grad_clip: float | None = None
    """Clip the global gradient norm at this value (0 = no clipping)."""
    weight_decay: float | None = None
    """Decoupled weight decay (AdamW) per step, scaled by lr (0 = plain Adam)."""
    max_seconds: float = 0.0
    """Stop after this many seconds of training time (evaluation excluded; 0 = no limit)."""
    eval_every: int | None = None
    """Evaluate on the held-out set every this many steps (and at the end)."""
    eval_trials: int = 8192
    """Held-out trials for evaluation (fixed set, generated once from eval_seed)."""
    eval_seed: int = 1_000_003
    """Seed of the held-out set (the same for every run, so runs are compared on equal evidence)."""
    checkpoint_every: int = 1000
    """Write an atomic checkpoint (weights, optimizer, RNG states) every this many steps."""
    seed: int = 0
    """Seed of the weights (torch) and of the training data stream (numpy)."""
    device: str = "auto"
    """Device: auto (cuda if available, else cpu) or any torch device string: cpu, cuda, cuda:1,
    mps (checked to exist when training starts)."""
    num_threads: int = 0
    """torch CPU threads (0 = leave torch's setting alone)."""
    progress: bool = True
    """Show a tqdm progress bar (only on a terminal)."""
    algo: str = "supervised"
    """Training algorithm (this config: supervised; RL algorithms have their own configs)."""

    def validate(self) -> None:
        """Raise ValueError naming the field and the allowed values."""
        c = ConfigChecker(self)
        self.validate_network(c)
        c.choice("preset", PRESET_NAMES)
        c.choice("schedule", SCHEDULES, allow_none=True)
        c.device()
        c.choice("algo", ("supervised",))  # RL algorithms have their own configs
        for name in ("batch_size", "steps", "eval_every"):
            c.integer(name, 1, allow_none=True)
        c.integer("warmup_steps", 0, allow_none=True)
        for name in ("eval_trials", "checkpoint_every"):
            c.integer(name, 1)
        for name in ("eval_seed", "seed", "num_threads"):
            c.integer(name, 0)
        c.number("lr", 0.0, open_low=True, allow_none=True)
        c.number("grad_clip", 0.0, allow_none=True)
        c.number("weight_decay", 0.0, allow_none=True)
        c.number("max_seconds", 0.0)

    def resolve(self) -> TrainConfig:
        """A copy with every None field filled: recipe fields from the preset (shared values and
        the architecture's recipe), ``init`` / ``dropout`` from the architecture's model."""
        values = {
            **{k: self.model_value(k) for k in MODEL_FIELDS},
            **preset_values(self.preset, self.arch),
        }
        changes = {k: v for k, v in values.items() if getattr(self, k) is None}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names - {"kind"}
        if unknown:
            raise ValueError(
                f"unknown TrainConfig field(s) {sorted(unknown)}; allowed: {sorted(names)}"
            )
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_json(self) -> str:
        return json.dumps({"kind": "supervised", **self.to_dict()}, indent=2)
