"""The sweep engine: every point of a grid not yet done, run on a backend, its row recorded.

Folder layout of a sweep (``sweep_dir``, :class:`SweepPaths`)::

    sweep.json            the grid (for the record)
    runs/<point id>/      one run folder per point (spec.json, config.json, model.pt, probe.json ...)
    rows/<point id>.json  the point's row, written atomically when it finished: the point is done
    rows/<point id>.error.json   the error of a failed point (retried on the next run)
    results.csv / results.json   one row per point: every parameter and every headline metric
    hparams/<point id>/   tensorboard HParams record of a finished point (parameters + metrics):
                          ``tensorboard --logdir <sweep_dir>/hparams`` compares every point

Re-running the same sweep skips the points whose row file exists (one that cannot be read, cut
short or overwritten, is reported on stderr and its point runs again); a failing point is
recorded with its error while the others go on. With the default point function, compatible supervised
points train as ensembles (:mod:`experiments.sweep.groups`; ``run_sweep(ensemble=False)`` or
``mte sweep --no-ensemble`` to train each alone); each member is recorded as a point is. An
ensemble's joint checkpoint lives in ``runs/.ensemble-<digest>/`` while it trains.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multitask_evidence.common.files import atomic_write_text
from multitask_evidence.common.limits import MAX_POINTS, short_repr
from multitask_evidence.experiments.sweep.grid import ConfigResolver, Grid, Point, coerce, jsonable
from multitask_evidence.experiments.sweep.table import dumps, read_record, write_table


def _under(name: str) -> property:
    """A read-only attribute: the path ``root / name`` of a :class:`SweepPaths`."""
    return property(lambda self: self.root / name)


@dataclass
class SweepPaths:
    """Where a sweep keeps its files."""

    root: Path

    runs = _under("runs")
    """One run folder per point: ``runs/<point id>/``."""
    rows = _under("rows")
    """One row (``<id>.json``) or error file (``<id>.error.json``) per finished point."""
    hparams = _under("hparams")
    """Tensorboard HParams records, one folder per point."""
    csv = _under("results.csv")
    json = _under("results.json")
    long_csv = _under("results_long.csv")
    """One row per point x metric x item (:func:`experiments.sweep.table.long_rows`)."""
    long_parquet = _under("results_long.parquet")
    """The same, written when pyarrow is installed."""

    def run_dir(self, pid: str) -> Path:
        return self.runs / pid

    def row(self, pid: str) -> Path:
        return self.rows / f"{pid}.json"

    def error(self, pid: str) -> Path:
        return self.rows / f"{pid}.error.json"

    def hparams_dir(self, pid: str) -> Path:
        return self.hparams / pid


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
    from multitask_evidence.experiments.point import run_point

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
            out[name] = coerce(f"point option {name}", value, kind, optional)
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
    ensemble: bool = True,
    max_ensemble: int = 32,
    where: Callable[[Point], bool] | None = None,
    max_points: int = MAX_POINTS,
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
    ensemble: with the default point function, train compatible supervised points (one
        architecture, network shape, recipe and task shape; seeds and task draws may differ) as
        one ensemble (``agents.train_ensemble``), a unit of work of the backend like a point;
        each member is probed and recorded as a solo point is (the same row), and an ensemble
        that fails is retried member by member. Groups are split to at most ``max_ensemble``
        members and, with fewer groups than the backend runs at once, into more ensembles so
        that every worker trains, and so that the last round fills every worker where groups
        can split (:func:`experiments.sweep.groups.plan_units`). Other
        algorithms, a custom ``point_fn`` and ``ensemble=False`` run every point alone.
    where: run only the points for which ``where(point)`` is true (e.g. one architecture of a
        figure). Point ids and the results table stay those of the whole grid, so a later run
        without ``where`` reuses these points; the others show as pending.
    max_points: a grid of more points is a ValueError, counted before any point is built.

    A row or error file that cannot be read (cut short, not JSON) is reported on stderr and
    its point runs again, as if it had never finished.
    """
    from multitask_evidence.experiments.backends import make_backend

    if not isinstance(ensemble, bool):
        raise ValueError(f"ensemble must be True or False, got {short_repr(ensemble)}")
    if isinstance(max_ensemble, bool) or not isinstance(max_ensemble, int) or max_ensemble < 1:
        raise ValueError(f"max_ensemble must be an integer >= 1, got {short_repr(max_ensemble)}")
    t0 = time.perf_counter()
    points = grid.points(config_resolver, max_points)  # a bad grid: before any worker starts
    paths = SweepPaths(Path(sweep_dir))
    paths.rows.mkdir(parents=True, exist_ok=True)
    paths.runs.mkdir(parents=True, exist_ok=True)
    atomic_write_text(paths.root / "sweep.json", dumps(grid.to_dict()), mkdir=True)
    fn = point_fn or default_point_fn()
    kwargs = check_point_options(fn, point_kwargs or {})
    grouping = ensemble and point_fn in (None, default_point_fn())

    selected = [p for p in points if where is None or where(p)]
    todo = deque(
        p
        for p in selected
        if read_record(paths.row(p.id)) is None
        and (retry_failed or read_record(paths.error(p.id)) is None)
    )
    n_skipped = len(selected) - len(todo)
    n_ran = n_failed = 0
    domains = _hparam_domains(points)
    if not todo:
        write_missing_hparams(points, paths, domains)
        rows = write_table(points, paths)
        return SweepResult(rows, 0, n_skipped, 0, paths.csv, paths.json, time.perf_counter() - t0)

    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(selected),
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
    in_flight: dict[Any, list[Point]] = {}
    shown: list[tuple[int, int, int]] = []

    def show() -> None:
        """Refresh done/running/failed only when they change (keeps logs short)."""
        running = sum(len(u) for u in in_flight.values())
        state = (bar.n - n_failed, running, n_failed)
        if not shown or shown[-1] != state:
            shown.append(state)
            bar.set_postfix(done=state[0], running=state[1], failed=state[2], refresh=True)

    units: deque[list[Point]] = deque()
    try:
        be.start()
        units.extend(_plan(list(todo), be.capacity(), max_ensemble, grouping))
        todo.clear()
        while units or in_flight:
            while units and len(in_flight) < be.capacity():
                unit = units.popleft()
                if len(unit) == 1:
                    handle = be.submit(fn, unit[0], str(paths.run_dir(unit[0].id)), kwargs)
                else:
                    from multitask_evidence.experiments.point import run_group

                    dirs = [str(paths.run_dir(p.id)) for p in unit]
                    handle = be.submit(run_group, unit, dirs, kwargs)
                in_flight[handle] = unit
            show()
            finished = be.wait(list(in_flight), timeout=1.0)
            for handle in finished:
                unit = in_flight.pop(handle)
                outcome = be.result(handle)
                # an ensemble gives one outcome per member; a crash of its worker, one for all
                outcomes = outcome if isinstance(outcome, list) else [outcome] * len(unit)
                how = {
                    "point_fn": function_name(fn),
                    "point_options": jsonable(dict(kwargs)),
                    "unit_size": len(unit),
                }
                for p, out in zip(unit, outcomes):
                    ok = _record(p, out, paths, how)
                    n_ran += 1
                    if ok:
                        note = _write_hparams(p, out.get("metrics") or {}, paths, domains)
                        if note:
                            bar.write(note)
                    else:
                        n_failed += 1
                        bar.write(f"point {p.id} FAILED: {out.get('error')}")
                    bar.update(1)
            show()
    finally:
        bar.close()
        be.close(cancel=bool(in_flight or units or todo))
        write_missing_hparams(points, paths, domains)
        rows = write_table(points, paths)
    return SweepResult(
        rows, n_ran, n_skipped, n_failed, paths.csv, paths.json, time.perf_counter() - t0
    )


def _plan(points: list[Point], slots: int, max_size: int, grouping: bool) -> list[list[Point]]:
    """The units of work (see :mod:`experiments.sweep.groups`); every point alone without
    grouping."""
    from multitask_evidence.experiments.sweep.groups import plan_units

    if not grouping:
        return [[p] for p in points]
    from multitask_evidence.experiments.point import ensemble_key

    return plan_units(points, max(1, int(slots)), max_size, ensemble_key)


def function_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a point function (what a row says made it)."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _record(
    point: Point, outcome: Mapping[str, Any], paths: SweepPaths, how: Mapping[str, Any]
) -> bool:
    """Write the point's row (success) or error file (failure); True on success.

    how: what made it (``point_fn``, ``point_options``, ``unit_size``: 1 for a network trained
    alone, K for an ensemble member), so that another sweep can tell whether this row is the one
    it would compute (``experiments.reproduce.adopt_finished``)."""
    base = {
        **point.to_dict(),
        **how,
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
        atomic_write_text(paths.row(point.id), dumps(row), mkdir=True)
        paths.error(point.id).unlink(missing_ok=True)
        return True
    err = {
        **base,
        "status": "failed",
        "error": outcome.get("error", "unknown error"),
        "traceback": outcome.get("traceback", ""),
    }
    atomic_write_text(paths.error(point.id), dumps(err), mkdir=True)
    return False


def _hparam_domains(points: Sequence[Point]) -> dict[str, list[Any]]:
    from multitask_evidence.experiments.hparams import discrete_domains, point_hparams

    return discrete_domains(point_hparams(p.params, p.algo) for p in points)


def _write_hparams(
    point: Point, metrics: Mapping[str, Any], paths: SweepPaths, domains: Mapping[str, Any]
) -> str | None:
    """Write a finished point's tensorboard HParams record; a message if that failed (the
    point itself is done: its row is written)."""
    from multitask_evidence.experiments.hparams import (
        point_hparams,
        point_metrics,
        write_point_hparams,
    )

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
        if paths.hparams_dir(p.id).exists():
            continue
        row = read_record(paths.row(p.id))
        if row is None:  # not finished, or its row unreadable (reported there)
            continue
        note = _write_hparams(p, row.get("metrics") or {}, paths, domains)
        if note:
            print(note, file=sys.stderr)
        else:
            n += 1
    return n
