"""Take finished networks from other sweeps instead of training them again.

Figures share networks: fig3d's, fig4's and half of figS5c's are networks of fig3's grid, and
a network trained alone is a deterministic function of its point (its parameters, the point
function and its options), so two sweeps that train it get the same rows bit for bit
(benchmarks/results/reproduce/networks-8/README.md, "Bit for bit"). A point of this sweep that
another sweep finished, made the same way, is adopted: its run folder is copied and its row
written here with ``adopted_from`` naming the source, and the sweep then skips it as done.

Made the same way means: the same point (parameters, algorithm, seed, task and agent fields),
status ok, the same point function and options, and trained alone (``unit_size`` 1: an
ensemble member's training depends on its ensemble). Rows written before rows recorded how
they were made are never adopted.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from multitask_evidence.common.files import atomic_write_text
from multitask_evidence.experiments.sweep.engine import SweepPaths
from multitask_evidence.experiments.sweep.grid import Point, jsonable
from multitask_evidence.experiments.sweep.table import dumps, read_record

_SAME = ("params", "algo", "seed", "task", "agent")


def _digest(point_id: str) -> str:
    """The hash part of a point id (``experiments.sweep.grid.point_id``): equal for equal
    parameters whatever the sweep's varying axes."""
    return point_id.rsplit("-", 1)[-1]


def _made_the_same_way(
    rec: Mapping[str, Any], point: Point, point_fn: str, options: Mapping[str, Any]
) -> bool:
    want = point.to_dict()
    return (
        rec.get("status") == "ok"
        and rec.get("unit_size") == 1
        and rec.get("point_fn") == point_fn
        and rec.get("point_options") == jsonable(dict(options))
        and all(rec.get(k) == want[k] for k in _SAME)
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
    wanted = {_digest(p.id): p for p in points if read_record(paths.row(p.id)) is None}
    adopted: list[str] = []
    for source in sources:
        src_paths = SweepPaths(Path(source))
        if not wanted or src_paths.root.resolve() == here or not src_paths.rows.is_dir():
            continue
        for row_path in sorted(src_paths.rows.glob("*.json")):
            point = wanted.get(_digest(row_path.stem))
            if point is None or row_path.name.endswith(".error.json"):
                continue
            rec = read_record(row_path)
            src_run = Path(str((rec or {}).get("run_dir", "")))
            if rec is None or not _made_the_same_way(rec, point, point_fn, options):
                continue
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
            del wanted[_digest(point.id)]
    return adopted
