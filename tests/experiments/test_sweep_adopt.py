"""A sweep takes the finished networks another sweep trained the same way instead of training
them again (experiments.sweep.adopt), and nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path

from multitask_evidence.experiments.sweep import SweepPaths, grid_from_cli, run_sweep
from multitask_evidence.experiments.sweep.adopt import adopt_finished
from multitask_evidence.experiments.sweep.engine import function_name


def made_point(point, run_dir, tag: str = "a"):
    """Trains nothing: writes a model.pt, counts its calls, returns metrics from its params."""
    os.makedirs(run_dir, exist_ok=True)
    Path(run_dir, "model.pt").write_bytes(b"weights")
    with open(os.path.join(run_dir, "calls.txt"), "a") as fh:
        fh.write("1\n")
    return {"ood_r2": 1.0 - 1.0 / point.task["n_tasks"], "tag": tag}


def _calls(run_dir: Path) -> int:
    f = run_dir / "calls.txt"
    return len(f.read_text().splitlines()) if f.exists() else 0


def test_a_sweep_adopts_what_another_made_the_same_way(tmp_path):
    src_grid, _ = grid_from_cli(["n_tasks=2,6", "arch=rnn"], "0-1")
    run_sweep(
        src_grid, tmp_path / "src", workers=1, point_fn=made_point, progress=False, ensemble=False
    )
    row = json.loads(next((tmp_path / "src" / "rows").glob("*.json")).read_text())
    assert row["unit_size"] == 1 and row["point_fn"] == function_name(made_point)
    assert row["point_options"] == {}

    # another grid sharing two of those networks: other axes vary (other ids), and it names a
    # default the first grid left out (the same resolved TaskSpec)
    grid, _ = grid_from_cli(["n_tasks=6,24", "arch=rnn", "targets=paper"], "0-1")
    points = grid.points()
    adopted = adopt_finished(
        points, tmp_path / "dst", [tmp_path / "src"], function_name(made_point), {}
    )
    assert sorted(p.id for p in points if p.task["n_tasks"] == 6) == sorted(adopted)
    paths = SweepPaths(tmp_path / "dst")
    for pid in adopted:
        rec = json.loads(paths.row(pid).read_text())
        assert rec["id"] == pid and rec["run_dir"] == str(paths.run_dir(pid))
        assert rec["adopted_from"].startswith(str(tmp_path / "src" / "rows"))
        assert (paths.run_dir(pid) / "model.pt").read_bytes() == b"weights"
    # the sweep then trains only what was not adopted
    res = run_sweep(
        grid, tmp_path / "dst", workers=1, point_fn=made_point, progress=False, ensemble=False
    )
    assert res.n_skipped == 2 and res.n_ran == 2
    assert all(_calls(paths.run_dir(pid)) == 1 for pid in adopted)  # the source's one call
    by_n = {r["n_tasks"]: r for r in res.rows}
    assert by_n[6]["ood_r2"] == 1 - 1 / 6 and by_n[6]["adopted_from"]
    assert "adopted_from" not in by_n[24]


def test_nothing_made_another_way_is_adopted(tmp_path):
    grid, _ = grid_from_cli(["n_tasks=2", "arch=rnn"], "0")
    run_sweep(
        grid,
        tmp_path / "src",
        workers=1,
        point_fn=made_point,
        progress=False,
        point_kwargs={"tag": "b"},
        ensemble=False,
    )
    points = grid.points()
    name = function_name(made_point)
    # other point options, another point function: not the same network
    assert adopt_finished(points, tmp_path / "d1", [tmp_path / "src"], name, {"tag": "c"}) == []
    assert (
        adopt_finished(points, tmp_path / "d2", [tmp_path / "src"], "other.fn", {"tag": "b"}) == []
    )
    # an ensemble member, a failed point, a row from before rows said how, a folder gone
    row_path = next((tmp_path / "src" / "rows").glob("*.json"))
    rec = json.loads(row_path.read_text())
    for change in ({"unit_size": 4}, {"status": "failed"}, {"unit_size": None}):
        row_path.write_text(json.dumps({**rec, **change}))
        assert adopt_finished(points, tmp_path / "d3", [tmp_path / "src"], name, {"tag": "b"}) == []
    row_path.write_text(json.dumps(rec))
    (Path(rec["run_dir"]) / "model.pt").unlink()
    assert adopt_finished(points, tmp_path / "d4", [tmp_path / "src"], name, {"tag": "b"}) == []
    # a sweep never adopts from itself
    (Path(rec["run_dir"]) / "model.pt").write_bytes(b"w")
    assert adopt_finished(points, tmp_path / "src", [tmp_path / "src"], name, {"tag": "b"}) == []


def test_the_long_table_has_one_value_per_row(tmp_path):
    import csv

    from multitask_evidence.experiments.sweep.table import long_rows

    grid, _ = grid_from_cli(["n_tasks=2,6", "arch=rnn"], "0")
    res = run_sweep(
        grid, tmp_path / "sw", workers=1, point_fn=listed_point, progress=False, ensemble=False
    )
    with open(tmp_path / "sw" / "results_long.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[-4:] == ["metric", "item", "axis", "value"]
    by_n = {r["n_tasks"]: r for r in res.rows}
    for r in rows:
        wide = by_n[int(r["n_tasks"])]
        if r["item"] != "":
            assert float(r["value"]) == wide[f"{r['metric']}_values"][int(r["item"])]
        elif r["axis"] != "":
            assert float(r["value"]) == wide[f"{r['metric']}_per_axis"][int(r["axis"])]
        else:
            assert float(r["value"]) == wide[r["metric"]]
    # 2 points x (1 scalar + 3 fold values + 2 axes); the string and the flag are left out
    assert len(rows) == 12 and {r["metric"] for r in rows} == {"ood_r2"}
    assert long_rows([{"id": "x", "status": "failed", "params": {}}]) == []


def listed_point(point, run_dir):
    n = point.task["n_tasks"]
    return {
        "ood_r2": 1 - 1 / n,
        "ood_r2_values": [1 - 1 / n, 1 - 2 / n, 1 - 3 / n],
        "ood_r2_per_axis": [0.5, 0.25],
        "ood_estimator": "ridge",
        "converged": True,
    }
