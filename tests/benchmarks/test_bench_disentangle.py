"""benchmarks/bench_disentangle.py: the summary of a probe curve (threshold times, "held", ratios)
on synthetic curves; the script is loaded from its path (benchmarks/ is not a package)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_disentangle.py"
_spec = importlib.util.spec_from_file_location("bench_disentangle", PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def curve(times, values):
    return [{"train_seconds": t, "ood_r2": v} for t, v in zip(times, values)]


def test_held_is_the_first_time_from_which_every_later_probe_is_above():
    times = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    values = [0.70, 0.85, 0.75, 0.82, 0.90, 0.88]  # crosses at 1, falls back at 2, holds from 3
    assert bench.time_first(times, values, 0.8, strict=True) == 1.0
    assert bench.time_held(times, values, 0.8, strict=True) == 3.0
    # the last probe below: never held, though crossed
    assert bench.time_held(times, values[:-1] + [0.79], 0.8, strict=True) is None
    assert bench.time_first(times, values, 0.95, strict=True) is None
    # above from the first probe: held from the first time
    assert bench.time_held(times, [0.9] * 6, 0.8, strict=True) == 0.0


def test_strict_exceeds_but_reaching_includes_equality():
    times, values = [0.0, 1.0, 2.0], [0.5, 0.8, 0.8]
    assert bench.time_held(times, values, 0.8, strict=True) is None
    assert bench.time_held(times, values, 0.8, strict=False) == 1.0


def test_summary_times_ratios_and_the_untrained_point_at_time_zero():
    # untrained 0.70 -> threshold (a) 0.80; paper's final = median of its last 3 = 0.86
    quick = curve([1, 2, 3, 4, 5], [0.62, 0.81, 0.79, 0.84, 0.87])
    paper = curve([10, 20, 30, 40, 50, 60], [0.60, 0.82, 0.85, 0.86, 0.87, 0.86])
    s = bench.summarise(0.70, {"quick": quick, "paper": paper}, margin=0.1)
    assert s["threshold_above_untrained"] == pytest.approx(0.80)
    assert s["paper_final_ood_r2"] == pytest.approx(0.86)
    assert s["quick"]["t_above_untrained_first"] == 2
    assert s["quick"]["t_above_untrained"] == 4  # the dip at 3 s resets it
    assert s["paper"]["t_above_untrained"] == 20
    assert s["ratio_above_untrained"] == pytest.approx(4 / 20)
    assert s["quick"]["t_paper_final"] == 5
    assert s["paper"]["t_paper_final"] == 40  # reaches 0.86 at 40 s (>=) and holds it
    assert s["paper_final_time_basis"] == "held"
    assert s["ratio_paper_final"] == pytest.approx(5 / 40)
    assert s["quick"]["final_ood_r2"] == 0.87 and s["quick"]["train_seconds"] == 5
    # a curve that never leaves the untrained value's neighbourhood: (a) never
    flat = curve([1, 2], [0.72, 0.75])
    s = bench.summarise(0.70, {"quick": flat, "paper": paper})
    assert s["quick"]["t_above_untrained"] is None and s["ratio_above_untrained"] is None


def test_quick_never_reaching_the_paper_value_is_reported_as_never():
    quick = curve([1, 2, 3], [0.82, 0.84, 0.83])
    paper = curve([10, 20, 30, 40], [0.80, 0.88, 0.87, 0.89])  # final = 0.88
    s = bench.summarise(0.70, {"quick": quick, "paper": paper})
    assert s["quick"]["t_paper_final"] is None and s["ratio_paper_final"] is None
    assert s["quick"]["t_above_untrained"] == 1
    text = bench.verdict(s)
    assert "never reaches and holds the paper recipe's final OOD r^2 0.880" in text
    assert "-0.050" in text  # ends 0.05 below it


def test_paper_own_target_not_held_at_its_last_probe_divides_by_its_whole_run():
    quick = curve([1, 2], [0.86, 0.90])
    paper = curve([10, 20, 30, 40], [0.80, 0.88, 0.89, 0.87])  # median of last 3 = 0.88 > 0.87
    s = bench.summarise(0.70, {"quick": quick, "paper": paper})
    assert s["paper"]["t_paper_final"] is None
    assert s["paper_final_time_basis"] == "end of the paper run"
    assert s["quick"]["t_paper_final"] == 2
    assert s["ratio_paper_final"] == pytest.approx(2 / 40)
    # a target from elsewhere (bench_recipe's networks) that the paper run ends below: no ratio
    s = bench.summarise(0.70, {"quick": quick, "paper": paper}, paper_final=0.88)
    assert s["paper_final_time_basis"] == "held" and s["ratio_paper_final"] is None
    assert "does not end above that target" in bench.verdict(s)


def test_paper_final_from_bench_recipe_json(tmp_path):
    rows = [
        {"recipe": "paper", "n_tasks": 24, "ood_r2": 0.85},
        {"recipe": "paper", "n_tasks": 24, "ood_r2": 0.90},
        {"recipe": "paper", "n_tasks": 24, "ood_r2": 0.86},
        {"recipe": "paper", "n_tasks": 2, "ood_r2": 0.30},
        {"recipe": "quick", "n_tasks": 24, "ood_r2": 0.99},
    ]
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"rows": rows}))
    median, values = bench.paper_final_from_file(path)
    assert median == pytest.approx(0.86) and values == [0.85, 0.90, 0.86]
    path.write_text(json.dumps({"rows": rows[3:]}))
    with pytest.raises(ValueError, match="no paper-recipe N=24"):
        bench.paper_final_from_file(path)
