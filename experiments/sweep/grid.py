"""The grid language of sweeps: which names a grid may set, how values are read, the points.

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
TaskSpec / config rejects raises ``ValueError`` naming the field. Grids come from Python
(:func:`parse_grid`, :func:`union`), the command line (:func:`grid_from_cli`: ``--set``,
``--seeds``) or a YAML / JSON file (:func:`load_grid_file`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multitask_evidence.common.limits import (
    MAX_POINTS,
    MESSAGE_CHARS,
    check_nesting,
    check_points,
    clip,
    short_repr,
    too_deep,
)
from multitask_evidence.experiments.dataclass_args import coerce_value, option_kinds

SUPERVISED = "supervised"
RESERVED = ("algo", "seed")
_RAISE_POINTS = "--max-points (mte sweep) or max_points="
"""How a message says the limit on points is raised."""

# ----------------------------------------------------------------------------------------------
# Field catalogues
# ----------------------------------------------------------------------------------------------


def task_fields() -> dict[str, dataclasses.Field]:
    """TaskSpec fields by name (``envs.spec.field_names()`` order)."""
    from multitask_evidence.envs.spec import TaskSpec, field_names

    by_name = {f.name: f for f in dataclasses.fields(TaskSpec)}
    return {n: by_name[n] for n in field_names()}


def algo_names() -> list[str]:
    """Allowed values of ``algo``: the names in the registry ``agents.algos.ALGOS``."""
    from multitask_evidence.agents.algos import names

    return names()


def default_config_class(algo: str) -> type:
    """The configuration dataclass of a registered algorithm (``TrainConfig`` for
    ``supervised``); an unknown name is a ValueError listing the allowed ones."""
    from multitask_evidence.agents.algos import get

    return get(algo).config_cls


ConfigResolver = Callable[[str], type]


def coerce(
    name: str, value: Any, kind: str, optional: bool = False, *, what: str = "grid field"
) -> Any:
    """:func:`coerce_value`, its error message kept short (it quotes the value whole) and a
    JSON text nested too deeply refused in one line (``json.loads`` would raise
    RecursionError)."""
    try:
        out = coerce_value(name, value, kind, optional, what=what)
    except ValueError as e:
        raise ValueError(clip(str(e), MESSAGE_CHARS)) from None
    except RecursionError:
        raise too_deep(f"{what} {short_repr(name)}") from None
    if kind in ("seq", "dict", "any"):
        check_nesting(f"{what} {short_repr(name)}", out)
    return out


def _distinct(values: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    """``(values without repeats, the repeats)``, compared with ``==`` as ``in`` does, in
    linear time for hashable values (an axis may hold 1e5 seeds); unhashable values (lists)
    are compared one by one."""
    hashable: set[Any] = set()
    others: list[Any] = []
    first: list[Any] = []
    repeats: list[Any] = []
    for v in values:
        try:
            new = v not in hashable
            if new:
                hashable.add(v)
        except TypeError:
            new = v not in others
            if new:
                others.append(v)
        (first if new else repeats).append(v)
    return first, repeats


def jsonable(value: Any) -> Any:
    """Tuples as lists, recursively (what JSON and the point ids see)."""
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
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
            "params": jsonable(self.params),
            "algo": self.algo,
            "seed": self.seed,
            "task": jsonable(self.task),
            "agent": jsonable(self.agent),
        }


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def point_id(params: Mapping[str, Any], varying: Sequence[str]) -> str:
    """Folder-safe id: ``k=v,k=v`` over the varying axes, then 8 hex digits hashing all params."""
    canon = json.dumps(jsonable(dict(params)), sort_keys=True, default=str)
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
                values.setdefault(k, []).extend(vs)
        n_blocks = len(self.blocks)
        return [
            k
            for k, vs in values.items()
            if len(_distinct(vs)[0]) > 1 or sum(k in b for b in self.blocks) < n_blocks
        ]

    def to_dict(self) -> dict[str, Any]:
        grid: Any = jsonable(self.axes) if not self.extra else jsonable(self.blocks)
        return {"name": self.name, "grid": grid, "meta": jsonable(self.meta)}

    def points(
        self, config_resolver: ConfigResolver | None = None, max_points: int = MAX_POINTS
    ) -> list[Point]:
        """Every point, validated by building its TaskSpec and agent config (no training).

        A grid of more than ``max_points`` points is a ValueError, counted before any is built.
        """
        from multitask_evidence.envs.spec import TaskSpec

        check_points("the grid", len(self), max_points, _RAISE_POINTS)
        resolver = config_resolver or default_config_class
        tfields = option_kinds(TaskSpec)
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
                    raise ValueError(f"grid field 'algo': {clip(str(e), MESSAGE_CHARS)}") from None
            cfg_cls = classes[algo]
            cfg_fields = option_kinds(cfg_cls)
            task: dict[str, Any] = {}
            agent: dict[str, Any] = {}
            seed = int(params.get("seed", 0))
            coerced: dict[str, Any] = {}
            for name, value in params.items():
                if name in RESERVED:
                    coerced[name] = value
                    continue
                scope, fname = _resolve(name, tfields, cfg_fields, algo)
                kinds, into = (tfields, task) if scope == "task" else (cfg_fields, agent)
                k = kinds[fname]
                into[fname] = coerced[name] = coerce(name, value, k.kind, k.optional)
            if "seed" in cfg_fields:
                agent.setdefault("seed", seed)
            # each network its own task draw (encoder, random boundaries), unless fixed
            task.setdefault("seed", seed)
            params = coerced  # ids hash typed values: "2" from --set and 2 from YAML agree
            pid = point_id(params, varying)
            try:
                TaskSpec(**task)
            except (ValueError, TypeError) as e:
                msg = clip(str(e), MESSAGE_CHARS)
                raise ValueError(f"grid point {pid}: invalid task: {msg}") from None
            try:
                cfg_cls(**agent)  # the config validates itself at construction
            except (ValueError, TypeError) as e:
                msg = clip(str(e), MESSAGE_CHARS)
                raise ValueError(f"grid point {pid}: invalid {algo} config: {msg}") from None
            points.append(Point(pid, params, algo, seed, task, agent))
        counts = Counter(p.id for p in points)
        dup = sorted(i for i, n in counts.items() if n > 1)
        if dup:
            raise ValueError(f"the grid holds the same point more than once: {short_repr(dup)}")
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
                f"grid field {short_repr(name)}: {short_repr(fname)} is not a TaskSpec field; "
                f"allowed: {list(tfields)}"
            )
        return "task", fname
    if name.startswith("agent."):
        fname = name[6:]
        if fname not in cfg_fields:
            raise ValueError(
                f"grid field {short_repr(name)}: {short_repr(fname)} is not a field of the {algo} "
                f"config; allowed: {list(cfg_fields)}"
            )
        return "agent", fname
    in_task, in_cfg = name in tfields, name in cfg_fields
    if in_task and in_cfg:
        raise ValueError(
            f"grid field {short_repr(name)} is both a TaskSpec field and a {algo} config field; "
            f"write task.{name} or agent.{name}"
        )
    if in_task:
        return "task", name
    if in_cfg:
        return "agent", name
    raise ValueError(
        f"grid field {short_repr(name)} is unknown: not a TaskSpec field ({list(tfields)}), not "
        f"a {algo} config field ({list(cfg_fields)}), and not one of {list(RESERVED)}"
    )


def parse_grid(
    axes: Mapping[str, Any],
    seeds: Sequence[int] | None = None,
    *,
    name: str | None = None,
    meta: Mapping[str, Any] | None = None,
    config_resolver: ConfigResolver | None = None,
    max_points: int = MAX_POINTS,
) -> Grid:
    """Check and order a grid: every axis a non-empty list, names known, values of the right type.

    ``axes`` maps names to a list of values (a scalar is a one-value axis); ``seeds`` (or an
    axis ``seed``) lists the network seeds, default ``[0]``. Expands the points once, so that
    every error (including TaskSpec / config validation) is raised here, before any training.
    More than ``max_points`` points is a ValueError, counted before any value is checked.
    """
    if not isinstance(axes, Mapping):
        raise ValueError(
            f"a grid must be a mapping of field -> list of values, got {short_repr(axes)}"
        )
    ordered: dict[str, list[Any]] = {}
    for key, values in axes.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"grid field names must be non-empty strings, got {short_repr(key)}")
        if isinstance(values, (list, tuple)):
            values = list(values)
        else:
            values = [values]
        if not values:
            raise ValueError(f"grid field {short_repr(key)} has an empty list of values")
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
    ordered["seed"] = seed_values
    # counted before the values are checked one by one: a typo must not cost minutes
    check_points("the grid", math.prod(map(len, ordered.values())), max_points, _RAISE_POINTS)
    ordered["seed"] = [coerce("seed", s, "int") for s in seed_values]
    negative = [s for s in ordered["seed"] if s < 0]
    if negative:
        raise ValueError(f"grid field 'seed' must hold integers >= 0, got {short_repr(negative)}")
    if "algo" in ordered:
        allowed = algo_names() if config_resolver is None else None
        for a in ordered["algo"]:
            if not isinstance(a, str) or (allowed is not None and a not in allowed):
                raise ValueError(f"grid field 'algo' must be one of {allowed}, got {short_repr(a)}")
    for key, values in ordered.items():
        dup = _distinct(values)[1]
        if dup:
            raise ValueError(f"grid field {short_repr(key)} repeats the value(s) {short_repr(dup)}")
    grid = Grid(ordered, name=name, meta=dict(meta or {}))
    grid.points(config_resolver, max_points)  # validates every point now, before anything trains
    return grid


def parse_set(items: Iterable[str]) -> dict[str, list[Any]]:
    """Parse ``--set name=v1,v2`` items (values as strings; ``name=[...]`` is parsed as JSON)."""
    axes: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects name=value[,value...], got {short_repr(item)}")
        key, _, raw = item.partition("=")
        key, raw = key.strip().replace("-", "_"), raw.strip()
        if key in axes:
            raise ValueError(f"grid field {short_repr(key)} given twice in --set")
        if raw.startswith("["):
            values = list(coerce(key, raw, "seq"))
        else:
            values = [v.strip() for v in raw.split(",")] if raw else []
            if any(v == "" for v in values):
                raise ValueError(
                    f"grid field {short_repr(key)} has an empty value in {short_repr(raw)}"
                )
        axes[key] = values
    return axes


def parse_seeds(text: str | None, max_points: int = MAX_POINTS) -> list[int] | None:
    """``"0,1,2"`` -> [0, 1, 2]; ``"0-4"`` -> [0, 1, 2, 3, 4]; None -> None.

    A range of more than ``max_points`` seeds is a ValueError, counted before it is built."""
    if text is None:
        return None
    text = text.strip()
    m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise ValueError(f"--seeds range {short_repr(text)} is empty")
        check_points(f"--seeds range {short_repr(text)}", hi - lo + 1, max_points, _RAISE_POINTS)
        return list(range(lo, hi + 1))
    if not text:
        raise ValueError("grid field 'seed' has an empty list of values")
    return [coerce("seed", s, "int") for s in text.split(",")]


class _DuplicateKeyError(ValueError):
    """A key given twice in one mapping of a grid file (YAML and JSON parsers keep the last one
    silently, so half of what the user wrote would be dropped)."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` ``object_pairs_hook``: the object as a dict, a key given twice refused."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(f"key {short_repr(key)} given twice in one object")
        out[key] = value
    return out


@functools.cache
def _grid_yaml_loader() -> type:
    """``yaml.SafeLoader`` (plain data only, as ``yaml.safe_load``: no tags that run code),
    except that a key given twice in one mapping is a :class:`_DuplicateKeyError`. A key after a
    merge (``<<: *base``) still overrides the merged one, as YAML intends."""
    import yaml

    class GridLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            if isinstance(node, yaml.MappingNode):
                seen: set[Any] = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        repeated = key in seen
                        seen.add(key)
                    except TypeError:  # an unhashable key: the constructor below reports it
                        continue
                    if repeated:
                        line = key_node.start_mark.line + 1
                        raise _DuplicateKeyError(
                            f"key {short_repr(key)} given twice in one mapping (line {line})"
                        )
            return super().construct_mapping(node, deep=deep)

    return GridLoader


def _parse_grid_text(path: Path, text: str) -> Any:
    """The grid file's data: JSON for ``*.json``, YAML otherwise; any fault a ValueError naming
    the file, a nesting too deep for the parser included."""
    what = f"grid file {path}"
    try:
        if path.suffix.lower() == ".json":
            try:
                return json.loads(text, object_pairs_hook=_unique_object)
            except _DuplicateKeyError:
                raise
            except ValueError as e:  # JSONDecodeError, or an integer of too many digits
                raise ValueError(f"{what}: not valid JSON ({e})") from None
        import yaml

        # what yaml.load does, with the SafeLoader subclass spelled out (no code runs), so that
        # the source scan for unsafe readers keeps a single rule: no yaml.load in the package
        loader = _grid_yaml_loader()(text)
        try:
            return loader.get_single_data()
        except yaml.YAMLError as e:
            raise ValueError(f"{what}: not valid YAML ({' '.join(str(e).split())})") from None
        finally:
            loader.dispose()
    except _DuplicateKeyError as e:
        raise ValueError(f"{what}: {e}; give each key once") from None
    except RecursionError:
        raise too_deep(what) from None


def load_grid_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON grid file.

    Either a plain mapping ``name: [values]``, or ``{grid: {...}, seeds: [...], name: ...,
    point: {...}}`` where ``point`` holds options of the point function (probe size ...).
    A key given twice, a nesting deeper than ``common.limits.MAX_NESTING`` or more than
    ``common.limits.MAX_VALUES`` values (aliases expanded) is a ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"grid file {path}: no such file")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"grid file {path}: not UTF-8 text") from None
    data = _parse_grid_text(path, text)
    # before anything prints, hashes or saves it: YAML aliases can expand a few hundred bytes
    # into billions of values, and a self-referencing alias into an endless one
    check_nesting(f"grid file {path}", data)
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
            f"got {short_repr(data['point'])}"
        )
    if data.get("name") is not None and not isinstance(data["name"], str):
        raise ValueError(
            f"grid file {path}: 'name' must be a string, got {short_repr(data['name'])}"
        )
    return data


def grid_from_cli(
    sets: Sequence[str] = (),
    seeds: str | None = None,
    file: str | Path | None = None,
    *,
    config_resolver: ConfigResolver | None = None,
    max_points: int = MAX_POINTS,
) -> tuple[Grid, dict[str, Any]]:
    """Grid from ``--file`` and/or ``--set`` items (``--set`` overrides file axes) and ``--seeds``.

    Returns the grid and the point options read from the file (``point:``). A grid (or a
    ``--seeds`` range) of more than ``max_points`` points is a ValueError, counted first.
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
    cli_seeds = parse_seeds(seeds, max_points)
    if cli_seeds is not None and "seed" in set_axes:
        raise ValueError("give the seeds once: --seeds or --set seed=..., not both")
    if cli_seeds is not None or "seed" in set_axes:
        # the command line replaces the file's seeds, as --set replaces its axes
        axes.pop("seed", None)
        file_seeds = None
    axes.update(set_axes)
    chosen = cli_seeds if cli_seeds is not None else file_seeds
    grid = parse_grid(
        axes, chosen, name=name, config_resolver=config_resolver, max_points=max_points
    )
    return grid, point_opts
