"""Sweeps: a grid of settings, each trained and probed in its own run folder, gathered in one table.

A grid is a mapping from parameter names to lists of values; its points are the Cartesian product
(axes in the order given, ``seed`` last). A parameter name is

- a :class:`envs.TaskSpec` field (``n_tasks``, ``sigma``, ``latent_dim`` ...), or ``task.<field>``;
- a field of the agent's configuration (the algorithm's config dataclass in
  ``agents.algos.ALGOS``: :class:`agents.config.TrainConfig` for ``algo=supervised``), or
  ``agent.<field>``;
- ``algo`` (``supervised`` by default, or another name in ``agents.algos.ALGOS``);
- ``seed``: the network's seed: the agent config's ``seed`` (weights, trial stream) and, unless
  the grid sets ``task.seed``, the task's own seed too (encoder weights, random boundary normals),
  so each network trains on its own task draw, as in the paper. Set ``task.seed`` to share one
  task draw across networks.

Every name, type and value is checked before anything trains (:func:`parse_grid` and
:meth:`Grid.points`): an unknown field, an empty list, a value of the wrong type or a value the
TaskSpec / config rejects raises ``ValueError`` naming the field.

Folder layout of a sweep (``sweep_dir``)::

    sweep.json            the grid (for the record)
    runs/<point id>/      one run folder per point (spec.json, config.json, model.pt, probe.json ...)
    rows/<point id>.json  the point's row, written atomically when it finished: the point is done
    rows/<point id>.error.json   the error of a failed point (retried on the next run)
    results.csv / results.json   one row per point: every parameter and every headline metric
    hparams/<point id>/   tensorboard HParams record of a finished point (parameters + metrics):
                          ``tensorboard --logdir <sweep_dir>/hparams`` compares every point

Re-running the same sweep skips the points whose row file exists; a failing point is recorded
with its error while the others go on.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import math
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPERVISED = "supervised"
RESERVED = ("algo", "seed")

# ----------------------------------------------------------------------------------------------
# Field catalogues
# ----------------------------------------------------------------------------------------------


def task_fields() -> dict[str, dataclasses.Field]:
    """TaskSpec fields by name (``envs.spec.field_names()`` order)."""
    from envs.spec import TaskSpec, field_names

    by_name = {f.name: f for f in dataclasses.fields(TaskSpec)}
    return {n: by_name[n] for n in field_names()}


def algo_names() -> list[str]:
    """Allowed values of ``algo``: the names in the registry ``agents.algos.ALGOS``."""
    from agents.algos import names

    return names()


def default_config_class(algo: str) -> type:
    """The configuration dataclass of a registered algorithm (``TrainConfig`` for
    ``supervised``); an unknown name is a ValueError listing the allowed ones."""
    from agents.algos import get

    return get(algo).config_cls


ConfigResolver = Callable[[str], type]

# ----------------------------------------------------------------------------------------------
# Type coercion (command-line strings and YAML/JSON values -> the field's type)
# ----------------------------------------------------------------------------------------------


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _field_kind(f: dataclasses.Field) -> tuple[str, bool]:
    """(kind, optional): kind in bool/int/float/str/seq/dict/any; optional = None allowed."""
    ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    optional = "None" in ann or "Optional" in ann
    default = _field_default(f)
    if default is None:
        optional = True
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if type(default) is types:
            return kind, optional
    if isinstance(default, (tuple, list)):
        return "seq", optional
    if isinstance(default, dict):
        return "dict", optional
    base = re.sub(r"\s*\|\s*None|None\s*\|\s*|Optional\[(.*)\]", r"\1", ann).strip()
    for kind in ("bool", "int", "float", "str"):
        if base == kind:
            return kind, optional
    if base.startswith(("tuple", "list", "Sequence")):
        return "seq", optional
    if base.startswith(("dict", "Mapping")):
        return "dict", optional
    return "any", optional


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def coerce_value(name: str, value: Any, kind: str, optional: bool) -> Any:
    """Convert one grid value to the field's type, or raise ``ValueError`` naming the field."""

    def bad(expected: str) -> ValueError:
        return ValueError(
            f"grid field {name!r}: type mismatch, expected {expected}, got {value!r} "
            f"({type(value).__name__})"
        )

    if optional and (
        value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
    ):
        return None
    if kind == "any":
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise bad("a boolean (true/false)")
    if kind == "int":
        if isinstance(value, bool):
            raise bad("an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:  # accept scientific notation for budgets: 1e5
                    as_float = float(value)
                except ValueError:
                    raise bad("an integer") from None
                if math.isfinite(as_float) and as_float.is_integer():
                    return int(as_float)
        raise bad("an integer")
    if kind == "float":
        if isinstance(value, bool):
            raise bad("a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad("a number") from None
        raise bad("a number")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise bad("a string")
    if kind == "seq":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise bad("a list such as [100,100,40]") from None
        if isinstance(value, (list, tuple)):
            return tuple(value)
        raise bad("a list such as [100,100,40]")
    if kind == "dict":
        if isinstance(value, Mapping):
            return dict(value)
        raise bad("a mapping")
    raise AssertionError(kind)  # pragma: no cover


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------------------------
# Points and grids
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One setting of a sweep: everything a worker needs to train and probe it (picklable).

    params: the parameters as named in the grid (ordered, values coerced);
    task / agent: keyword arguments for ``TaskSpec`` and the agent config (``seed`` included);
    id: folder-safe name, readable (the varying axes) plus a hash of every parameter.
    """

    id: str
    params: dict[str, Any]
    algo: str
    seed: int
    task: dict[str, Any]
    agent: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "params": _jsonable(self.params),
            "algo": self.algo,
            "seed": self.seed,
            "task": _jsonable(self.task),
            "agent": _jsonable(self.agent),
        }


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def point_id(params: Mapping[str, Any], varying: Sequence[str]) -> str:
    """Folder-safe id: ``k=v,k=v`` over the varying axes, then 8 hex digits hashing all params."""
    canon = json.dumps(_jsonable(dict(params)), sort_keys=True, default=str)
    digest = hashlib.sha1(canon.encode()).hexdigest()[:8]
    parts = []
    for k in varying:
        if k not in params:  # a parameter another block of a union sets
            continue
        v = params[k]
        v = "-".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v)
        parts.append(f"{k.split('.')[-1]}={v}")
    readable = _UNSAFE.sub("-", "_".join(parts))[:100].strip("-_")
    return f"{readable}-{digest}" if readable else digest


@dataclass
class Grid:
    """A validated grid: ordered axes name -> list of values (``seed`` last, ``algo`` optional).

    Build it with :func:`parse_grid`, :func:`grid_from_cli` or :func:`load_grid_file`; then
    :meth:`points` expands and validates every point against TaskSpec and the agent config.
    ``extra`` holds further blocks of axes: the grid is the union of the Cartesian products of
    ``axes`` and of each extra block (see :func:`union`), e.g. a budget that depends on the
    architecture.
    """

    axes: dict[str, list[Any]]
    name: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extra: list[dict[str, list[Any]]] = field(default_factory=list)

    @property
    def blocks(self) -> list[dict[str, list[Any]]]:
        return [self.axes, *self.extra]

    def __len__(self) -> int:
        return sum(math.prod(len(v) for v in b.values()) for b in self.blocks)

    @property
    def varying(self) -> list[str]:
        """Parameters that take more than one value over the grid (they name the points)."""
        values: dict[str, list[Any]] = {}
        for b in self.blocks:
            for k, vs in b.items():
                seen = values.setdefault(k, [])
                seen.extend(v for v in vs if v not in seen)
        n_blocks = len(self.blocks)
        return [
            k
            for k, vs in values.items()
            if len(vs) > 1 or sum(k in b for b in self.blocks) < n_blocks
        ]

    def to_dict(self) -> dict[str, Any]:
        grid: Any = _jsonable(self.axes) if not self.extra else _jsonable(self.blocks)
        return {"name": self.name, "grid": grid, "meta": _jsonable(self.meta)}

    def points(self, config_resolver: ConfigResolver | None = None) -> list[Point]:
        """Every point, validated by building its TaskSpec and agent config (no training)."""
        from envs.spec import TaskSpec

        resolver = config_resolver or default_config_class
        tfields = task_fields()
        varying = self.varying
        points: list[Point] = []
        classes: dict[str, type] = {}
        combos = (
            dict(zip(b, combo))
            for b in self.blocks
            for combo in itertools.product(*(b[n] for n in b))
        )
        for params in combos:
            algo = params.get("algo", SUPERVISED)
            if algo not in classes:
                try:
                    classes[algo] = resolver(algo)
                except ValueError as e:
                    raise ValueError(f"grid field 'algo': {e}") from None
            cfg_cls = classes[algo]
            cfg_fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
            task: dict[str, Any] = {}
            agent: dict[str, Any] = {}
            seed = int(params.get("seed", 0))
            coerced: dict[str, Any] = {}
            for name, value in params.items():
                if name in RESERVED:
                    coerced[name] = value
                    continue
                scope, fname = _resolve(name, tfields, cfg_fields, algo)
                if scope == "task":
                    task[fname] = coerce_value(name, value, *_field_kind(tfields[fname]))
                    coerced[name] = task[fname]
                else:
                    agent[fname] = coerce_value(name, value, *_field_kind(cfg_fields[fname]))
                    coerced[name] = agent[fname]
            if "seed" in cfg_fields:
                agent.setdefault("seed", seed)
            # each network its own task draw (encoder, random boundaries), unless fixed
            task.setdefault("seed", seed)
            params = coerced  # ids hash typed values: "2" from --set and 2 from YAML agree
            pid = point_id(params, varying)
            try:
                TaskSpec(**task)
            except (ValueError, TypeError) as e:
                raise ValueError(f"grid point {pid}: invalid task: {e}") from None
            try:
                cfg_cls(**agent)  # the config validates itself at construction
            except (ValueError, TypeError) as e:
                raise ValueError(f"grid point {pid}: invalid {algo} config: {e}") from None
            points.append(Point(pid, params, algo, seed, task, agent))
        ids = [p.id for p in points]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"the grid holds the same point more than once: {dup}")
        return points


def union(grids: Sequence[Grid], *, name: str | None = None) -> Grid:
    """One grid whose points are those of every grid given (blocks kept in order)."""
    if not grids:
        raise ValueError("union needs at least one grid")
    blocks = [b for g in grids for b in g.blocks]
    return Grid(blocks[0], name=name or grids[0].name, meta=dict(grids[0].meta), extra=blocks[1:])


def _resolve(
    name: str, tfields: Mapping[str, Any], cfg_fields: Mapping[str, Any], algo: str
) -> tuple[str, str]:
    """Which dataclass a grid name belongs to: ('task' | 'agent', field name)."""
    if name.startswith("task."):
        fname = name[5:]
        if fname not in tfields:
            raise ValueError(
                f"grid field {name!r}: {fname!r} is not a TaskSpec field; allowed: {list(tfields)}"
            )
        return "task", fname
    if name.startswith("agent."):
        fname = name[6:]
        if fname not in cfg_fields:
            raise ValueError(
                f"grid field {name!r}: {fname!r} is not a field of the {algo} config; "
                f"allowed: {list(cfg_fields)}"
            )
        return "agent", fname
    in_task, in_cfg = name in tfields, name in cfg_fields
    if in_task and in_cfg:
        raise ValueError(
            f"grid field {name!r} is both a TaskSpec field and a {algo} config field; "
            f"write task.{name} or agent.{name}"
        )
    if in_task:
        return "task", name
    if in_cfg:
        return "agent", name
    raise ValueError(
        f"grid field {name!r} is unknown: not a TaskSpec field ({list(tfields)}), not a {algo} "
        f"config field ({list(cfg_fields)}), and not one of {list(RESERVED)}"
    )


def parse_grid(
    axes: Mapping[str, Any],
    seeds: Sequence[int] | None = None,
    *,
    name: str | None = None,
    meta: Mapping[str, Any] | None = None,
    config_resolver: ConfigResolver | None = None,
) -> Grid:
    """Check and order a grid: every axis a non-empty list, names known, values of the right type.

    ``axes`` maps names to a list of values (a scalar is a one-value axis); ``seeds`` (or an
    axis ``seed``) lists the network seeds, default ``[0]``. Expands the points once, so that
    every error (including TaskSpec / config validation) is raised here, before any training.
    """
    if not isinstance(axes, Mapping):
        raise ValueError(f"a grid must be a mapping of field -> list of values, got {axes!r}")
    ordered: dict[str, list[Any]] = {}
    for key, values in axes.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"grid field names must be non-empty strings, got {key!r}")
        if isinstance(values, (list, tuple)):
            values = list(values)
        else:
            values = [values]
        if not values:
            raise ValueError(f"grid field {key!r} has an empty list of values")
        ordered[key] = values
    if seeds is not None:
        if "seed" in ordered:
            raise ValueError("grid field 'seed' given twice (as an axis and as seeds)")
        ordered["seed"] = list(seeds)
    if "seed" not in ordered:
        ordered["seed"] = [0]
    seed_values = ordered.pop("seed")
    if not seed_values:
        raise ValueError("grid field 'seed' has an empty list of values")
    ordered["seed"] = [coerce_value("seed", s, "int", False) for s in seed_values]
    if any(s < 0 for s in ordered["seed"]):
        raise ValueError(f"grid field 'seed' must hold integers >= 0, got {ordered['seed']}")
    if "algo" in ordered:
        allowed = algo_names() if config_resolver is None else None
        for a in ordered["algo"]:
            if not isinstance(a, str) or (allowed is not None and a not in allowed):
                raise ValueError(f"grid field 'algo' must be one of {allowed}, got {a!r}")
    for key, values in ordered.items():
        dup = [v for i, v in enumerate(values) if v in values[:i]]
        if dup:
            raise ValueError(f"grid field {key!r} repeats the value(s) {dup}")
    grid = Grid(ordered, name=name, meta=dict(meta or {}))
    grid.points(config_resolver)  # validates every point now, before anything trains
    return grid


def parse_set(items: Iterable[str]) -> dict[str, list[Any]]:
    """Parse ``--set name=v1,v2`` items (values as strings; ``name=[...]`` is parsed as JSON)."""
    axes: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects name=value[,value...], got {item!r}")
        key, _, raw = item.partition("=")
        key, raw = key.strip().replace("-", "_"), raw.strip()
        if key in axes:
            raise ValueError(f"grid field {key!r} given twice in --set")
        if raw.startswith("["):
            try:
                values = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"grid field {key!r}: cannot parse {raw!r} as a JSON list: {e}"
                ) from None
            if not isinstance(values, list):
                raise ValueError(f"grid field {key!r}: expected a JSON list, got {raw!r}")
        else:
            values = [v.strip() for v in raw.split(",")] if raw else []
            if any(v == "" for v in values):
                raise ValueError(f"grid field {key!r} has an empty value in {raw!r}")
        axes[key] = values
    return axes


def parse_seeds(text: str | None) -> list[int] | None:
    """``"0,1,2"`` -> [0, 1, 2]; ``"0-4"`` -> [0, 1, 2, 3, 4]; None -> None."""
    if text is None:
        return None
    text = text.strip()
    m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise ValueError(f"--seeds range {text!r} is empty")
        return list(range(lo, hi + 1))
    if not text:
        raise ValueError("grid field 'seed' has an empty list of values")
    return [coerce_value("seed", s, "int", False) for s in text.split(",")]


def load_grid_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON grid file.

    Either a plain mapping ``name: [values]``, or ``{grid: {...}, seeds: [...], name: ...,
    point: {...}}`` where ``point`` holds options of the point function (probe size ...).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"grid file {path}: no such file")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"grid file {path}: not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"grid file {path}: not valid JSON ({e})") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(
                f"grid file {path}: not valid YAML ({' '.join(str(e).split())})"
            ) from None
    if not isinstance(data, dict):
        raise ValueError(f"grid file {path}: expected a mapping at the top level")
    if "grid" not in data:
        return {"grid": data}
    unknown = set(data) - {"grid", "seeds", "name", "point"}
    if unknown:
        raise ValueError(
            f"grid file {path}: unknown top-level key(s) {sorted(unknown)}; allowed: grid, "
            "seeds, name, point"
        )
    if not isinstance(data["grid"], dict):
        raise ValueError(f"grid file {path}: 'grid' must be a mapping of field -> values")
    if data.get("point") is not None and not isinstance(data["point"], dict):
        raise ValueError(
            f"grid file {path}: 'point' must be a mapping of point options (e.g. probe_n: 4096), "
            f"got {data['point']!r}"
        )
    if data.get("name") is not None and not isinstance(data["name"], str):
        raise ValueError(f"grid file {path}: 'name' must be a string, got {data['name']!r}")
    return data


def grid_from_cli(
    sets: Sequence[str] = (),
    seeds: str | None = None,
    file: str | Path | None = None,
    *,
    config_resolver: ConfigResolver | None = None,
) -> tuple[Grid, dict[str, Any]]:
    """Grid from ``--file`` and/or ``--set`` items (``--set`` overrides file axes) and ``--seeds``.

    Returns the grid and the point options read from the file (``point:``).
    """
    axes: dict[str, Any] = {}
    file_seeds = None
    name = None
    point_opts: dict[str, Any] = {}
    if file is not None:
        data = load_grid_file(file)
        axes.update(data["grid"])
        file_seeds = data.get("seeds")
        if file_seeds is not None and "seed" in axes:
            raise ValueError(
                f"grid file {file}: give the seeds once, as 'seeds:' or as a 'seed' axis in "
                "'grid:', not both"
            )
        if file_seeds is not None and not isinstance(file_seeds, list):
            file_seeds = [file_seeds]
        name = data.get("name")
        point_opts = dict(data.get("point") or {})
    set_axes = parse_set(sets)
    cli_seeds = parse_seeds(seeds)
    if cli_seeds is not None and "seed" in set_axes:
        raise ValueError("give the seeds once: --seeds or --set seed=..., not both")
    if cli_seeds is not None or "seed" in set_axes:
        # the command line replaces the file's seeds, as --set replaces its axes
        axes.pop("seed", None)
        file_seeds = None
    axes.update(set_axes)
    chosen = cli_seeds if cli_seeds is not None else file_seeds
    grid = parse_grid(axes, chosen, name=name, config_resolver=config_resolver)
    return grid, point_opts


# ----------------------------------------------------------------------------------------------
# Atomic files and rows
# ----------------------------------------------------------------------------------------------


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file via a temporary file in the same folder + rename (readers never see half);
    creates the folder. (The one atomic writer: :func:`agents.run.atomic_write_text`.)"""
    from agents.run import atomic_write_text as write

    write(path, text, mkdir=True)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    return str(o)


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_json_default, allow_nan=True)


@dataclass
class SweepPaths:
    """Where a sweep keeps its files."""

    root: Path

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def rows(self) -> Path:
        return self.root / "rows"

    def run_dir(self, pid: str) -> Path:
        return self.runs / pid

    def row(self, pid: str) -> Path:
        return self.rows / f"{pid}.json"

    def error(self, pid: str) -> Path:
        return self.rows / f"{pid}.error.json"

    @property
    def hparams(self) -> Path:
        return self.root / "hparams"

    def hparams_dir(self, pid: str) -> Path:
        return self.hparams / pid

    @property
    def csv(self) -> Path:
        return self.root / "results.csv"

    @property
    def json(self) -> Path:
        return self.root / "results.json"


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``a.b`` keys; lists stay lists (JSON) so per-fold values survive."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_metrics(v, key + "."))
        else:
            out[key] = v
    return out


# ----------------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What a sweep did: rows in grid order, counts and the table paths."""

    rows: list[dict[str, Any]]
    n_ran: int
    n_skipped: int
    n_failed: int
    csv_path: Path
    json_path: Path
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return self.n_failed == 0 and all(r["status"] == "ok" for r in self.rows)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "failed"]


def default_point_fn() -> Callable[..., dict[str, Any]]:
    from experiments.point import run_point

    return run_point


def check_point_options(fn: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The point function's keyword options, checked against its signature before any point
    runs: unknown names and values of the wrong type (for int / float / bool / str options) are
    a ValueError naming the option and what is allowed."""
    import inspect
    import typing

    params = {
        n: p
        for n, p in list(inspect.signature(fn).parameters.items())[2:]
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    unknown = sorted(set(options) - set(params))
    if unknown and not takes_any:
        raise ValueError(f"point option(s) {unknown} unknown; allowed: {sorted(params)}")
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable annotations: names are checked, not types
        hints = {}
    out = dict(options)
    for name, value in options.items():
        if name not in params:
            continue
        tp = hints.get(name)
        args = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
        optional = type(None) in typing.get_args(tp)
        kind = {int: "int", float: "float", bool: "bool", str: "str"}.get(args[0])
        if kind is not None and len(args) == 1:
            out[name] = coerce_value(f"point option {name}", value, kind, optional)
    return out


def run_sweep(
    grid: Grid,
    sweep_dir: str | Path,
    *,
    backend: Any = "local",
    workers: int | None = None,
    address: str | None = None,
    threads: int = 1,
    point_fn: Callable[..., dict[str, Any]] | None = None,
    point_kwargs: Mapping[str, Any] | None = None,
    retry_failed: bool = True,
    progress: bool = True,
    config_resolver: ConfigResolver | None = None,
    slurm: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Run every point of ``grid`` not yet done, in parallel, and write the results table.

    backend: ``"local"`` (process pool, ``workers`` processes, default: CPU count), ``"ray"``
        (``address`` of an existing cluster, or a local one with ``workers`` CPUs), ``"slurm"``
        (one SLURM job per point, at most ``workers`` queued at once; ``slurm``: the
        :class:`experiments.backends.SlurmBackend` options, job files in ``<sweep_dir>/slurm``),
        or a :class:`experiments.backends.Backend` instance.
    threads: torch threads per worker (1: one point per core).
    point_fn: ``point_fn(point, run_dir, **point_kwargs) -> metrics dict`` (module level, so
        that it pickles); default :func:`experiments.point.run_point` (train + probe).
    retry_failed: re-run points that failed last time (their error files); done points are
        always skipped.
    """
    from experiments.backends import make_backend

    t0 = time.perf_counter()
    points = grid.points(config_resolver)  # raises on a bad grid before any worker starts
    paths = SweepPaths(Path(sweep_dir))
    paths.rows.mkdir(parents=True, exist_ok=True)
    paths.runs.mkdir(parents=True, exist_ok=True)
    atomic_write_text(paths.root / "sweep.json", dumps(grid.to_dict()))
    fn = point_fn or default_point_fn()
    kwargs = check_point_options(fn, point_kwargs or {})

    todo = deque(
        p
        for p in points
        if not paths.row(p.id).exists() and (retry_failed or not paths.error(p.id).exists())
    )
    n_skipped = len(points) - len(todo)
    n_ran = n_failed = 0
    domains = _hparam_domains(points)
    if not todo:
        write_missing_hparams(points, paths, domains)
        rows = write_table(points, paths)
        return SweepResult(rows, 0, n_skipped, 0, paths.csv, paths.json, time.perf_counter() - t0)

    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(points),
        initial=n_skipped,
        desc=f"sweep {grid.name or paths.root.name}",
        unit="pt",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    be = make_backend(backend, workers=workers, address=address, threads=threads, slurm=slurm)
    if callable(getattr(be, "use_sweep_dir", None)):
        be.use_sweep_dir(paths.root)  # backends that keep files of their own (SLURM jobs)
    in_flight: dict[Any, Any] = {}
    shown: list[tuple[int, int, int]] = []

    def show() -> None:
        """Refresh done/running/failed only when they change (keeps logs short)."""
        state = (bar.n - n_failed, len(in_flight), n_failed)
        if not shown or shown[-1] != state:
            shown.append(state)
            bar.set_postfix(done=state[0], running=state[1], failed=state[2], refresh=True)

    try:
        be.start()
        while todo or in_flight:
            while todo and len(in_flight) < be.capacity():
                p = todo.popleft()
                handle = be.submit(fn, p, str(paths.run_dir(p.id)), kwargs)
                in_flight[handle] = p
            show()
            finished = be.wait(list(in_flight), timeout=1.0)
            for handle in finished:
                p = in_flight.pop(handle)
                outcome = be.result(handle)
                ok = _record(p, outcome, paths)
                n_ran += 1
                if ok:
                    note = _write_hparams(p, outcome.get("metrics") or {}, paths, domains)
                    if note:
                        bar.write(note)
                else:
                    n_failed += 1
                    bar.write(f"point {p.id} FAILED: {outcome.get('error')}")
                bar.update(1)
            show()
    finally:
        bar.close()
        be.close(cancel=bool(in_flight or todo))
        write_missing_hparams(points, paths, domains)
        rows = write_table(points, paths)
    return SweepResult(
        rows, n_ran, n_skipped, n_failed, paths.csv, paths.json, time.perf_counter() - t0
    )


def _record(point: Point, outcome: Mapping[str, Any], paths: SweepPaths) -> bool:
    """Write the point's row (success) or error file (failure); True on success."""
    base = {
        **point.to_dict(),
        "run_dir": str(paths.run_dir(point.id)),
        "elapsed_s": outcome.get("elapsed_s"),
        "cpu_s": outcome.get("cpu_s"),
        "host": outcome.get("host"),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if outcome.get("job_id") is not None:  # the SLURM job that ran it
        base["job_id"] = outcome["job_id"]
    if outcome.get("status") == "ok":
        row = {**base, "status": "ok", "metrics": outcome.get("metrics") or {}}
        atomic_write_text(paths.row(point.id), dumps(row))
        paths.error(point.id).unlink(missing_ok=True)
        return True
    err = {
        **base,
        "status": "failed",
        "error": outcome.get("error", "unknown error"),
        "traceback": outcome.get("traceback", ""),
    }
    atomic_write_text(paths.error(point.id), dumps(err))
    return False


def _hparam_domains(points: Sequence[Point]) -> dict[str, list[Any]]:
    from experiments.hparams import discrete_domains, point_hparams

    return discrete_domains(point_hparams(p.params, p.algo) for p in points)


def _write_hparams(
    point: Point, metrics: Mapping[str, Any], paths: SweepPaths, domains: Mapping[str, Any]
) -> str | None:
    """Write a finished point's tensorboard HParams record; a message if that failed (the
    point itself is done: its row is written)."""
    from experiments.hparams import point_hparams, point_metrics, write_point_hparams

    try:
        write_point_hparams(
            paths.hparams_dir(point.id),
            point_hparams(point.params, point.algo),
            point_metrics(metrics),
            domains,
        )
    except Exception as e:  # noqa: BLE001 - a tensorboard record never fails a sweep
        return f"point {point.id}: tensorboard hparams not written ({type(e).__name__}: {e})"
    return None


def write_missing_hparams(
    points: Sequence[Point], paths: SweepPaths, domains: Mapping[str, Any] | None = None
) -> int:
    """Write the HParams record of every finished point that lacks one (points finished by an
    earlier run or a driver that stopped before writing it); returns how many were written."""
    domains = _hparam_domains(points) if domains is None else domains
    n = 0
    for p in points:
        if not paths.row(p.id).exists() or paths.hparams_dir(p.id).exists():
            continue
        row = json.loads(paths.row(p.id).read_text())
        note = _write_hparams(p, row.get("metrics") or {}, paths, domains)
        if note:
            print(note, file=sys.stderr)
        else:
            n += 1
    return n


def read_rows(points: Sequence[Point], paths: SweepPaths) -> list[dict[str, Any]]:
    """One record per point in grid order: its row, its error, or status 'pending'."""
    rows = []
    for p in points:
        rec: dict[str, Any]
        if paths.row(p.id).exists():
            rec = json.loads(paths.row(p.id).read_text())
        elif paths.error(p.id).exists():
            rec = json.loads(paths.error(p.id).read_text())
        else:
            rec = {**p.to_dict(), "status": "pending", "run_dir": str(paths.run_dir(p.id))}
        rows.append(rec)
    return rows


def table_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows: id, status, every grid parameter, elapsed_s, every metric, error, run_dir."""
    flat = []
    for rec in records:
        row: dict[str, Any] = {"id": rec["id"], "status": rec["status"]}
        for k, v in rec.get("params", {}).items():
            row[k] = v
        row["algo"] = rec.get("algo", SUPERVISED)
        row["elapsed_s"] = rec.get("elapsed_s")
        row["cpu_s"] = rec.get("cpu_s")
        row.update(flatten_metrics(rec.get("metrics") or {}))
        row["error"] = rec.get("error", "")
        row["run_dir"] = rec.get("run_dir", "")
        flat.append(row)
    return flat


def write_table(points: Sequence[Point], paths: SweepPaths) -> list[dict[str, Any]]:
    """Gather every point's record into results.json and results.csv (atomically)."""
    records = read_rows(points, paths)
    flat = table_rows(records)
    columns: list[str] = []
    for row in flat:
        for k in row:
            if k not in columns:
                columns.append(k)
    tail = [c for c in ("error", "run_dir") if c in columns]
    columns = [c for c in columns if c not in tail] + tail
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in flat:
        writer.writerow(
            {
                k: json.dumps(_jsonable(v), default=_json_default)
                if isinstance(v, (list, tuple, dict))
                else ("" if v is None else v)
                for k, v in row.items()
            }
        )
    atomic_write_text(paths.csv, buf.getvalue())
    atomic_write_text(paths.json, dumps(flat))
    return flat


def load_results(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a finished sweep's results.json."""
    return json.loads((Path(sweep_dir) / "results.json").read_text())
