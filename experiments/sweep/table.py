"""The results table of a sweep: each point's row file gathered into results.csv / results.json.

A finished point's row (``rows/<point id>.json``) holds its parameters, timings and metrics
(nested dicts); :func:`table_rows` flattens them (``a.b`` keys, lists kept as JSON) into one row
per point in grid order, with ``id``, ``status``, every grid parameter, ``algo``, ``elapsed_s``,
``cpu_s``, every metric, ``error`` and ``run_dir``. Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multitask_evidence.common.files import atomic_write_text
from multitask_evidence.common.limits import short_repr
from multitask_evidence.experiments.sweep.grid import SUPERVISED, Point, jsonable

if TYPE_CHECKING:
    from multitask_evidence.experiments.sweep.engine import SweepPaths


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


def _is_record(rec: Any) -> bool:
    """Whether ``rec`` has what :func:`table_rows` reads of a row or error file."""
    return (
        isinstance(rec, dict)
        and isinstance(rec.get("id"), str)
        and isinstance(rec.get("status"), str)
        and isinstance(rec.get("params", {}), dict)
        and isinstance(rec.get("metrics") or {}, dict)
    )


def read_record(path: Path) -> dict[str, Any] | None:
    """A point's row or error file (``rows/<id>.json``, ``rows/<id>.error.json``); None when
    there is none, and None with a warning on stderr naming the file when it cannot be read as
    a record (cut short, overwritten, not JSON): its point then counts as not done and runs
    again, as it would had it never finished, instead of stopping the whole sweep."""
    try:
        rec = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:  # ValueError: JSON or UTF-8 decoding
        problem = f"{type(e).__name__}: {' '.join(str(e).split())}"
    else:
        if _is_record(rec):
            return rec
        problem = "not a point record: a JSON object with 'id', 'status' and mapping 'params'"
    print(
        f"sweep: {path}: unreadable ({short_repr(problem)}); its point counts as not done",
        file=sys.stderr,
    )
    return None


def read_rows(points: Sequence[Point], paths: SweepPaths) -> list[dict[str, Any]]:
    """One record per point in grid order: its row, its error, or status 'pending' (an
    unreadable file counts as absent, with a warning: :func:`read_record`)."""
    rows = []
    for p in points:
        rec = read_record(paths.row(p.id)) or read_record(paths.error(p.id))
        if rec is None:
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
        if rec.get("adopted_from"):  # trained by another sweep (experiments.sweep.adopt)
            row["adopted_from"] = rec["adopted_from"]
        flat.append(row)
    return flat


LONG_COLUMNS = ("metric", "item", "axis", "value")
"""The long table's own columns, after the point's id, status, algo and grid parameters."""


def long_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The finished points' metrics in long format, one numeric value per row.

    Columns: ``id``, ``status``, ``algo``, every grid parameter of the point (the condition),
    then ``metric``, ``item``, ``axis``, ``value``:
    - a scalar metric: one row, ``item`` and ``axis`` empty;
    - ``<m>_values`` (every fold x fit of an OOD decoder, the probe's order, fold-major): one
      row per element, ``metric`` = ``<m>``, ``item`` = its index;
    - ``<m>_per_axis``: one row per latent axis, ``metric`` = ``<m>``, ``axis`` = its index.
    Strings, booleans, None and other nested values are left out (they are in results.json).
    """
    out: list[dict[str, Any]] = []
    for rec in records:
        if rec.get("status") != "ok":
            continue
        base = {"id": rec["id"], "status": rec["status"], "algo": rec.get("algo", SUPERVISED)}
        base.update(rec.get("params", {}))
        for metric, item, axis, value in _long_values(rec.get("metrics") or {}):
            out.append({**base, "metric": metric, "item": item, "axis": axis, "value": value})
    return out


def _long_values(metrics: Mapping[str, Any]) -> list[tuple[str, Any, Any, float]]:
    """(metric, item, axis, value) of every numeric value of one point's metrics."""
    found: list[tuple[str, Any, Any, Any]] = []
    for key, value in metrics.items():
        if isinstance(value, list) and key.endswith("_values"):
            found += [(key[: -len("_values")], i, "", v) for i, v in enumerate(value)]
        elif isinstance(value, list) and key.endswith("_per_axis"):
            found += [(key[: -len("_per_axis")], "", d, v) for d, v in enumerate(value)]
        else:
            found.append((key, "", "", value))
    return [
        (m, i, a, v)
        for m, i, a, v in found
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]


def _columns(rows: Sequence[Mapping[str, Any]], last: Sequence[str]) -> list[str]:
    """Every key of ``rows`` in order of first appearance, those of ``last`` moved to the end."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return [c for c in seen if c not in last] + [c for c in last if c in seen]


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """``rows`` as CSV (atomically); lists and mappings as JSON text, None as empty."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: json.dumps(jsonable(v), default=_json_default)
                if isinstance(v, (list, tuple, dict))
                else ("" if v is None else v)
                for k, v in row.items()
            }
        )
    atomic_write_text(path, buf.getvalue(), mkdir=True)


def _write_long(records: Sequence[Mapping[str, Any]], paths: SweepPaths) -> None:
    """results_long.csv always; results_long.parquet too where pyarrow is installed."""
    rows = long_rows(records)
    _write_csv(paths.long_csv, rows, _columns(rows, LONG_COLUMNS) or LONG_COLUMNS)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return
    table = pa.Table.from_pylist(
        [{k: (v if k == "value" else str(v)) for k, v in r.items()} for r in rows]
    )
    tmp = paths.long_parquet.with_name(f".{paths.long_parquet.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(paths.long_parquet)


def write_table(points: Sequence[Point], paths: SweepPaths) -> list[dict[str, Any]]:
    """Gather every point's record into results.json and results.csv (atomically)."""
    records = read_rows(points, paths)
    flat = table_rows(records)
    _write_csv(paths.csv, flat, _columns(flat, ("error", "run_dir")))
    atomic_write_text(paths.json, dumps(flat))
    _write_long(records, paths)
    return flat


def load_results(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of a finished sweep's results.json (a ValueError naming it if it is not JSON)."""
    path = Path(sweep_dir) / "results.json"
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({' '.join(str(e).split())})") from None
