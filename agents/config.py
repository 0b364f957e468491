"""`TrainConfig`: every knob of supervised training, one docstring per field (the CLI's help text).

Fields left at ``None`` take their value from the preset (``resolve()``):

- ``paper``: the paper's recipe: batch 16, Adam lr 1e-3, constant, no clipping, 1e5 batches
  (RNN/GRU/LSTM) or 2e4 (transformer).
- ``default``: a faster recipe for the same model. It changes optimisation only (batch, lr,
  schedule, clipping, steps); benchmarks/bench_recipe.py checks that it lands near the paper
  recipe's OOD r^2 (benchmarks/results/recipe.md).

The model itself never depends on the preset: ``MODEL_DEFAULTS`` gives every preset the paper's
model (torch's init for the RNNs, GPT-2's init and dropout 0.1 for the transformer).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from multitask_evidence.agents.devices import check_device
from multitask_evidence.agents.networks import ACTIVATIONS, ARCHS, INITS, POSITIONALS

SCHEDULES = ("constant", "cosine", "linear")
PRESET_NAMES = ("default", "paper")

# The paper's model, whatever the recipe: fields left at None, per architecture.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "init": {"rnn": "default", "rnn_nonleaky": "default", "gru": "default", "lstm": "default",
             "transformer": "default"},
    # GPT-2's config defaults (resid, embedding and attention dropout 0.1), as the paper's GPT
    "dropout": {"rnn": 0.0, "rnn_nonleaky": 0.0, "gru": 0.0, "lstm": 0.0, "transformer": 0.1},
}

# Per preset: values for the fields left at None. "steps" is per architecture.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "batch_size": 16,
        "lr": 1e-3,
        "schedule": "constant",
        "warmup_steps": 0,
        "grad_clip": 0.0,
        "weight_decay": 0.0,
        "steps": {
            "rnn": 100_000,
            "rnn_nonleaky": 100_000,
            "gru": 100_000,
            "lstm": 100_000,
            "transformer": 20_000,
        },
        "eval_every": 1000,
    },
    "default": {
        # Batches of 128 with a 3x higher peak lr and a cosine decay to 0, clipping at 1 (no
        # early blow-ups); the transformer is compute-bound per trial, so smaller batches cost
        # it no throughput.
        "batch_size": {"rnn": 128, "rnn_nonleaky": 128, "gru": 128, "lstm": 128, "transformer": 32},
        "lr": {"rnn": 3e-3, "rnn_nonleaky": 3e-3, "gru": 3e-3, "lstm": 3e-3, "transformer": 1.5e-3},
        "schedule": "cosine",
        "warmup_steps": {"rnn": 0, "rnn_nonleaky": 0, "gru": 0, "lstm": 0, "transformer": 100},
        "grad_clip": 1.0,
        "weight_decay": 0.0,
        # the RNN's budget: the fewest steps whose OOD r^2 lands within 0.03 of the paper
        # recipe's at N = 2 and N = 24 (benchmarks/results/recipe.md); 4000 fell 0.048 short
        "steps": {
            "rnn": 8000,
            "rnn_nonleaky": 3000,
            "gru": 1500,
            "lstm": 1500,
            "transformer": 3000,
        },
        "eval_every": 200,
    },
}


@dataclass
class TrainConfig:
    """Configuration of one supervised training run (fields at None come from ``preset``)."""

    arch: str = "rnn"
    """Network: rnn (Elman, leak a), rnn_nonleaky, gru, lstm, transformer."""
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

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the field and the allowed values."""

        def choice(name: str, allowed: tuple[str, ...], allow_none: bool = False) -> None:
            v = getattr(self, name)
            if (v is None and allow_none) or v in allowed:
                return
            raise ValueError(f"TrainConfig.{name} must be one of {list(allowed)}, got {v!r}")

        def integer(name: str, minimum: int, allow_none: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                raise ValueError(f"TrainConfig.{name} must be an integer >= {minimum}, got {v!r}")

        def number(name: str, low: float, allow_none: bool = False, strict: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
            if not ok or (v <= low if strict else v < low) or v == float("inf"):
                op = ">" if strict else ">="
                raise ValueError(
                    f"TrainConfig.{name} must be a finite number {op} {low}, got {v!r}"
                )

        choice("arch", ARCHS)
        choice("activation", ACTIVATIONS)
        choice("init", INITS, allow_none=True)
        choice("positional", POSITIONALS)
        choice("preset", PRESET_NAMES)
        choice("schedule", SCHEDULES, allow_none=True)
        check_device(self.device, "TrainConfig")
        choice("algo", ("supervised",))  # RL algorithms have their own configs
        integer("hidden_size", 1)
        integer("n_layers", 1)
        integer("n_heads", 1)
        integer("mlp_size", 1)
        integer("batch_size", 1, allow_none=True)
        integer("steps", 1, allow_none=True)
        integer("warmup_steps", 0, allow_none=True)
        integer("eval_every", 1, allow_none=True)
        integer("eval_trials", 1)
        integer("eval_seed", 0)
        integer("checkpoint_every", 1)
        integer("seed", 0)
        integer("num_threads", 0)
        number("lr", 0.0, allow_none=True, strict=True)
        number("grad_clip", 0.0, allow_none=True)
        number("weight_decay", 0.0, allow_none=True)
        number("max_seconds", 0.0)
        number("leak", 0.0, strict=True)
        if self.leak > 1.0:
            raise ValueError(f"TrainConfig.leak must lie in (0, 1], got {self.leak!r}")
        if self.dropout is not None and not (
            isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0
        ):
            raise ValueError(f"TrainConfig.dropout must lie in [0, 1), got {self.dropout!r}")
        if self.arch == "transformer" and self.hidden_size % self.n_heads:
            raise ValueError(
                f"TrainConfig.n_heads must divide hidden_size for the transformer, got "
                f"hidden_size={self.hidden_size}, n_heads={self.n_heads}"
            )
        if self.arch == "rnn_nonleaky" and self.activation != "relu":
            raise ValueError("TrainConfig.activation must be 'relu' for arch='rnn_nonleaky'")

    def resolve(self) -> TrainConfig:
        """A copy with every None field filled from the preset."""
        preset = {**MODEL_DEFAULTS, **PRESETS[self.preset]}
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is None and f.name in preset:
                v = preset[f.name]
                changes[f.name] = v[self.arch] if isinstance(v, dict) else v
        return dataclasses.replace(self, **changes)

    def core_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``agents.networks.build_core`` (after ``resolve()``)."""
        return {
            "hidden_size": self.hidden_size,
            "activation": self.activation,
            "leak": self.leak,
            "init": self.init or "default",
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "mlp_size": self.mlp_size,
            "dropout": self.dropout if self.dropout is not None else 0.0,
            "positional": self.positional,
        }

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
