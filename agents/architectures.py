"""The architecture registry: one entry per network, holding its builder and every default that
depends on it; :func:`build_core` builds any registered core.

An entry (:class:`Architecture`) says

- how to build the core: ``build(obs_dim, hidden_size, **options) -> RecurrentCore``, where
  ``options`` are the network fields of :class:`agents.config.NetworkConfig` (``activation``,
  ``leak``, ``init``, ``n_layers``, ``n_heads``, ``mlp_size``, ``dropout``, ``positional``) and
  ``max_len``; a builder takes the ones that apply to it and ignores the rest;
- its model defaults (``init``, ``dropout``) for config fields left at None;
- its training recipe per preset (``steps`` always; ``batch_size``, ``lr``, ``warmup_steps`` ...
  where it departs from the preset's shared values in :data:`agents.config.PRESET_BASE`);
- the ``init`` values it accepts and any check of its own on a config.

Adding an architecture is one :func:`register_architecture` call: ``arch`` choices, the presets
(:data:`agents.config.PRESETS`), the CLI and the sweep grids all read this registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multitask_evidence.agents.networks import (
    INITS,
    CausalTransformer,
    ElmanRNN,
    GatedRNN,
    RecurrentCore,
)
from multitask_evidence.common.registry import Registry
from multitask_evidence.common.validate import FieldChecker, check_choice, check_int, check_number

PRESET_NAMES = ("default", "paper")
"""Training recipes (:class:`agents.config.TrainConfig.preset`)."""
RECIPE_FIELDS = (
    "batch_size",
    "lr",
    "steps",
    "schedule",
    "warmup_steps",
    "grad_clip",
    "weight_decay",
    "eval_every",
)
"""TrainConfig fields a preset fills, and so fields an architecture's recipe may set."""
MODEL_FIELDS = ("init", "dropout")
"""Network fields whose None means "the architecture's default"."""


@dataclass(frozen=True)
class Architecture:
    """One registered network (see the module docstring); build it with :func:`build_core`."""

    name: str
    build: Callable[..., RecurrentCore]
    summary: str
    recipes: Mapping[str, Mapping[str, Any]]
    model: Mapping[str, Any] = field(default_factory=dict)
    inits: tuple[str, ...] = INITS
    check: Callable[[FieldChecker], None] | None = None
    ensemble: bool = False
    """Whether sweeps train this architecture's compatible points as one batched model
    (``agents.ensemble`` must have a stacked form of its core, and it must pay)."""


ARCHITECTURES: Registry[Architecture] = Registry("arch", "architecture")
"""Architecture name -> entry, in registration order."""


class _Names(Sequence[str]):
    """The registered names, read when used (so an architecture registered later is in it)."""

    def __getitem__(self, i: Any) -> Any:
        return tuple(ARCHITECTURES)[i]

    def __len__(self) -> int:
        return len(ARCHITECTURES)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(ARCHITECTURES))

    def __contains__(self, name: object) -> bool:
        return name in ARCHITECTURES

    def __repr__(self) -> str:
        return repr(tuple(ARCHITECTURES))


ARCHS: Sequence[str] = _Names()
"""Every registered architecture name (a live view of :data:`ARCHITECTURES`)."""


def arch_names() -> tuple[str, ...]:
    """Every registered architecture name, in registration order."""
    return tuple(ARCHITECTURES)


def get_architecture(name: Any) -> Architecture:
    """The entry of ``name``; anything else is a ValueError listing the registered names."""
    return ARCHITECTURES.lookup(name)


def register_architecture(
    name: str,
    build: Callable[..., RecurrentCore],
    *,
    summary: str,
    recipes: Mapping[str, Mapping[str, Any]],
    model: Mapping[str, Any] | None = None,
    inits: Sequence[str] = INITS,
    check: Callable[[FieldChecker], None] | None = None,
    ensemble: bool = False,
    replace: bool = False,
) -> Architecture:
    """Register a network under ``name`` (see the module docstring); returns its entry.

    recipes: ``{preset: {field: value}}`` for every preset in :data:`PRESET_NAMES`, each with
    ``steps``; other fields of :data:`RECIPE_FIELDS` override the preset's shared values.
    model: defaults of :data:`MODEL_FIELDS` (``init`` 'default', ``dropout`` 0 when not given).
    check: ``check(checker)`` raises for configs this network cannot build (``checker.obj`` is
    the config, ``checker.fail(field, what)`` raises the one-line error).
    ensemble: sweeps group this architecture's compatible points into ensembles
    (:mod:`agents.ensemble` stacks the rnn, gru, lstm and transformer cores only).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"architecture name must be an identifier such as 'my_rnn', got {name!r}")
    if not callable(build):
        raise ValueError(f"architecture {name!r}: build must be callable, got {build!r}")
    if not isinstance(recipes, Mapping) or set(recipes) != set(PRESET_NAMES):
        got = list(recipes) if isinstance(recipes, Mapping) else recipes
        raise ValueError(
            f"architecture {name!r}: recipes must give every preset {list(PRESET_NAMES)}, "
            f"got {got!r}"
        )
    for preset, recipe in recipes.items():
        unknown = set(recipe) - set(RECIPE_FIELDS)
        if unknown or "steps" not in recipe:
            raise ValueError(
                f"architecture {name!r}: recipes[{preset!r}] must set 'steps' and may set "
                f"{list(RECIPE_FIELDS)}, got {sorted(recipe)}"
            )
        check_int(f"architecture {name!r}: recipes[{preset!r}]['steps']", recipe["steps"], 1)
    model = {"init": "default", "dropout": 0.0, **(model or {})}
    if set(model) != set(MODEL_FIELDS):
        raise ValueError(
            f"architecture {name!r}: model may set {list(MODEL_FIELDS)}, got {sorted(model)}"
        )
    inits = tuple(inits)
    for i in inits:
        check_choice(f"architecture {name!r}: inits", i, INITS)
    check_choice(f"architecture {name!r}: model['init']", model["init"], inits)
    check_number(f"architecture {name!r}: model['dropout']", model["dropout"], 0.0, 1.0,
                 open_high=True)  # fmt: skip
    entry = Architecture(
        name=name,
        build=build,
        summary=" ".join(str(summary).split()),
        recipes={p: dict(r) for p, r in recipes.items()},
        model=model,
        inits=inits,
        check=check,
        ensemble=bool(ensemble),
    )
    return ARCHITECTURES.add(name, entry, replace=replace)


unregister_architecture = ARCHITECTURES.remove
"""Remove ``name`` from the registry (no-op for an unknown name)."""


def build_core(arch: str, obs_dim: int, hidden_size: int = 64, **cfg: Any) -> RecurrentCore:
    """Build a registered core. ``obs_dim`` O, ``hidden_size`` H (transformer: the width).

    cfg: the network options (``activation``, ``leak``, ``init``, ``n_layers``, ``n_heads``,
    ``mlp_size``, ``dropout``, ``positional``, ``max_len``); options that do not apply to
    ``arch`` are ignored, so one config dict can serve every architecture.
    """
    entry = get_architecture(arch)
    check_int("obs_dim", obs_dim, 1)
    check_int("hidden_size", hidden_size, 1)
    return entry.build(obs_dim, hidden_size, **cfg)


# ---------------------------------------------------------------------------------------------
# The built-in networks (docs/science.md §4)
# ---------------------------------------------------------------------------------------------
def _builder(cls: type[RecurrentCore], **fixed: Any) -> Callable[..., RecurrentCore]:
    """A builder that hands ``cls`` the options its constructor takes (and ``fixed``)."""
    takes = set(inspect.signature(cls).parameters)

    def build(obs_dim: int, hidden_size: int, **options: Any) -> RecurrentCore:
        kw = {k: v for k, v in options.items() if k in takes}
        return cls(obs_dim, hidden_size, **kw, **fixed)

    return build


def _check_nonleaky(c: FieldChecker) -> None:
    if c.obj.activation != "relu":
        c.fail("activation", "must be 'relu' for arch='rnn_nonleaky'")


def _check_transformer(c: FieldChecker) -> None:
    cfg = c.obj
    if cfg.hidden_size % cfg.n_heads:
        c.fail(
            "n_heads",
            f"must divide hidden_size for the transformer, got hidden_size={cfg.hidden_size}, "
            f"n_heads={cfg.n_heads}",
        )


PAPER_RECURRENT_STEPS = 100_000
"""The paper's budget for every recurrent network: 1e5 batches (the transformer: 2e4)."""


def _recurrent(default_steps: int) -> dict[str, dict[str, Any]]:
    """A recurrent network's recipes: the paper's budget and the default preset's. The default
    is the fewest steps whose OOD r^2 lands near the paper recipe's
    (benchmarks/results/recipe.md)."""
    return {"paper": {"steps": PAPER_RECURRENT_STEPS}, "default": {"steps": default_steps}}


register_architecture(
    "rnn", _builder(ElmanRNN, nonleaky=False), recipes=_recurrent(8000), ensemble=True,
    summary="Elman RNN with leak a (paper: relu, a = 1)",
)  # fmt: skip
register_architecture(
    "rnn_nonleaky", _builder(ElmanRNN, nonleaky=True), recipes=_recurrent(3000),
    summary="the paper's non-leaky integrator r += a relu(...)", check=_check_nonleaky,
    ensemble=True,
)  # fmt: skip
# orthogonal / identity set the Elman RNN's recurrent weights; the gated nets accept and ignore
# them (as they always have), so run folders written with them still load
register_architecture(
    "gru", _builder(GatedRNN, kind="gru"), summary="torch.nn.GRU", recipes=_recurrent(1500),
    ensemble=True,
)  # fmt: skip
register_architecture(
    "lstm", _builder(GatedRNN, kind="lstm"), summary="torch.nn.LSTM (hidden = h)",
    recipes=_recurrent(1500),
    # trains alone in sweeps: the solo LSTM runs torch's fused kernel, which the stacked LSTM
    # barely matches (benchmarks/results/ensemble.md); agents.train_ensemble still takes it
    ensemble=False,
)  # fmt: skip
register_architecture(
    "transformer",
    _builder(CausalTransformer),
    summary="GPT-style causal transformer (paper: 1 layer, 8 heads, MLP 256)",
    # compute-bound per trial: smaller batches cost it no throughput; warm-up for Adam
    recipes={
        "paper": {"steps": 20_000},
        "default": {"steps": 3000, "batch_size": 32, "lr": 1.5e-3, "warmup_steps": 100},
    },
    # GPT-2's config defaults (resid, embedding and attention dropout 0.1), as the paper's GPT
    model={"init": "default", "dropout": 0.1},
    inits=("default", "torch"),
    check=_check_transformer,
    ensemble=True,
)
