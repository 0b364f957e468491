"""Take finished networks from other sweeps instead of training them again.

Figures share networks: fig3d's, fig4's and half of figS5c's are networks of fig3's grid, and
a network trained alone is a deterministic function of its point (its parameters, the point
function and its options), so two sweeps that train it get the same rows bit for bit
(benchmarks/results/reproduce/networks-8/README.md, "Bit for bit"). A point of this sweep that
another sweep finished, made the same way, is adopted: its run folder is copied and its row
written here with ``adopted_from`` naming the source, and the sweep then skips it as done.

Made the same way means: the same network (the algorithm, the resolved TaskSpec and the
resolved agent config, so a grid that names a default, e.g. ``targets='paper'``, matches one
that leaves it out), status ok, the same point function and options, and trained alone
(``unit_size`` 1: an ensemble member's training depends on its ensemble). Rows written before
rows recorded how they were made are never adopted.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from multitask_evidence.common.files import atomic_write_text
from multitask_evidence.experiments.sweep.engine import SweepPaths
from multitask_evidence.experiments.sweep.grid import Point, default_config_class, jsonable
from multitask_evidence.experiments.sweep.table import dumps, read_record


def network_identity(algo: str, task: Mapping[str, Any], agent: Mapping[str, Any]) -> str | None:
    """The network a point trains, as text: its algorithm, resolved TaskSpec and resolved agent
    config (None when they cannot be built, e.g. from a row of another version)."""
    from multitask_evidence.envs.spec import TaskSpec

    try:
        spec = TaskSpec(**dict(task)).to_dict()
        cfg = default_config_class(algo)(**dict(agent))
        cfg = cfg.resolve() if hasattr(cfg, "resolve") else cfg
        return json.dumps([algo, spec, dataclasses.asdict(cfg)], sort_keys=True, default=str)
    except (TypeError, ValueError):
        return None


def _made_the_same_way(rec: Mapping[str, Any], point_fn: str, options: Mapping[str, Any]) -> bool:
    """A finished row made alone by the same point function with the same options."""
    return (
        rec.get("status") == "ok"
        and rec.get("unit_size") == 1
        and rec.get("point_fn") == point_fn
        and rec.get("point_options") == jsonable(dict(options))
    )


def adopt_finished(
    points: Sequence[Point],
    sweep_dir: str | Path,
    sources: Iterable[str | Path],
    point_fn: str,
    options: Mapping[str, Any],
) -> list[str]:
    """Adopt the points of ``points`` that are not done in ``sweep_dir`` but are done, made the
    same way, in one of the sweep folders ``sources``; returns the adopted point ids.

    point_fn: ``experiments.sweep.engine.function_name`` of the point function this sweep
    would run; options: its point options. A source row whose run folder is gone is skipped."""
    paths = SweepPaths(Path(sweep_dir))
    here = paths.root.resolve()
    wanted: dict[str, Point] = {}
    for p in points:
        if read_record(paths.row(p.id)) is None:
            identity = network_identity(p.algo, p.task, p.agent)
            if identity is not None:
                wanted.setdefault(identity, p)
    adopted: list[str] = []
    for source in sources:
        src_paths = SweepPaths(Path(source))
        if not wanted or src_paths.root.resolve() == here or not src_paths.rows.is_dir():
            continue
        for row_path in sorted(src_paths.rows.glob("*.json")):
            if row_path.name.endswith(".error.json") or not wanted:
                continue
            rec = read_record(row_path)
            if rec is None or not _made_the_same_way(rec, point_fn, options):
                continue
            identity = network_identity(
                str(rec.get("algo")), rec.get("task") or {}, rec.get("agent") or {}
            )
            point = wanted.get(identity) if identity is not None else None
            if point is None:
                continue
            src_run = Path(str(rec.get("run_dir", "")))
            if not (src_run / "model.pt").is_file():
                continue
            dst = paths.run_dir(point.id)
            tmp = dst.with_name(f".{dst.name}.adopting")
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(src_run, tmp, ignore=shutil.ignore_patterns(".*.lock"))
            shutil.rmtree(dst, ignore_errors=True)  # a half-trained folder of this sweep
            tmp.rename(dst)
            row = {**rec, **point.to_dict(), "run_dir": str(dst), "adopted_from": str(row_path)}
            atomic_write_text(paths.row(point.id), dumps(row), mkdir=True)
            paths.error(point.id).unlink(missing_ok=True)
            adopted.append(point.id)
            del wanted[identity]
    return adopted
