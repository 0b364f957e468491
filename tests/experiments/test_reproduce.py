"""`mte reproduce`: the figures' grids, the paper's statistics, the pages beside the theory, and
one real end-to-end run at smoke scale."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from experiments import figures
from experiments.reproduce import (
    ARCHS,
    FIGURES,
    PAPER_N,
    PAPER_SIGMAS,
    RL_ENVS,
    figure_grid,
    render,
)


def test_every_figure_has_a_valid_grid_at_every_scale():
    for name in FIGURES:
        for scale in ("smoke", "quick", "paper"):
            points = figure_grid(name, scale).points()  # validates every TaskSpec and config
            assert points, (name, scale)
            seeds = {p.seed for p in points}
            expected = {0, 1} if (name, scale) == ("fig3", "quick") else {0}
            assert seeds == ({0, 1, 2, 3, 4} if scale == "paper" else expected)
    with pytest.raises(ValueError, match="figure must be one of"):
        figure_grid("fig9", "quick")
    with pytest.raises(ValueError, match="scale must be one of"):
        figure_grid("fig3", "huge")


def test_fig3_grid_is_the_papers():
    quick = figure_grid("fig3", "quick").points()
    assert len(quick) == 30  # 25 conditions, 2 networks for the RNN of panel a
    assert {(p.agent["arch"], p.task["n_tasks"]) for p in quick} == {
        (a, n) for a in ARCHS for n in PAPER_N
    }
    assert sorted(p.seed for p in quick if p.agent["arch"] == "rnn") == [0] * 5 + [1] * 5
    # the default preset's own budgets (no steps override), the slowest networks first
    assert all(p.agent["preset"] == "default" and "steps" not in p.agent for p in quick)
    assert quick[0].agent["arch"] == "transformer"
    paper = figure_grid("fig3", "paper").points()
    assert len(paper) == 125 and all(p.agent["preset"] == "paper" for p in paper)
    assert all("steps" not in p.agent for p in paper)  # the paper preset's own budgets


def test_fig5_and_rl_grids():
    a = figure_grid("fig5a", "quick").points()
    assert all(p.task["targets"] == "ddm_bound" for p in a)  # free reaction-time networks
    assert sorted(p.task["stimulus_steps"] for p in a) == [3, 5, 10, 20]
    b = figure_grid("fig5b", "paper").points()
    assert {p.task["latent_dim"] for p in b} == {2, 4, 6, 8, 10}
    assert all(p.task["boundaries"] == "random" for p in b)
    assert len({p.task["n_tasks"] for p in b}) == 4
    c = figure_grid("fig5c", "quick").points()
    assert sorted({p.task["sigma"] for p in c}) == list(PAPER_SIGMAS)
    assert len({p.task["n_tasks"] for p in c}) == 3
    rl = figure_grid("rl", "quick").points()
    assert sorted(p.agent["env_id"] for p in rl) == sorted(RL_ENVS)
    assert {p.algo for p in rl} == {"ppo"}


def _row(arch, n, values, id_r2=0.97, angle=90.0, **extra):
    return {
        "status": "ok",
        "arch": arch,
        "n_tasks": n,
        "ood_r2": float(np.median(values)),
        "ood_r2_values": list(values),
        "id_r2": id_r2,
        "angle_deg": angle,
        "ceiling": 0.976,
        **extra,
    }


def test_summary_pools_networks_folds_and_fits():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 0.9, 20), rng.uniform(0.7, 1.0, 20)  # 2 networks x 4 folds x 5 fits
    rows = [
        _row("rnn", 6, a, id_r2=0.95),
        _row("rnn", 6, b, id_r2=0.97),
        {"status": "failed", "arch": "rnn", "n_tasks": 6, "error": "x"},
    ]
    (s,) = figures.summarise(rows, ("arch", "n_tasks"))
    pooled = np.concatenate([a, b])
    assert s["n_networks"] == 2 and s["ood_r2_n"] == 40
    assert s["ood_r2"] == pytest.approx(np.median(pooled))
    assert s["ood_r2_q25"] == pytest.approx(np.percentile(pooled, 25))
    assert s["ood_r2_q75"] == pytest.approx(np.percentile(pooled, 75))
    assert s["id_r2"] == pytest.approx(0.96)
    assert s["ood_r2"] != pytest.approx(np.median([np.median(a), np.median(b)]))


def test_pages_put_measured_numbers_beside_the_theory(tmp_path):
    rows = [
        _row(a, n, [0.5 + 0.4 * math.log(n) / math.log(24)] * 4, angle=60 + n)
        for a in ("rnn", "transformer")
        for n in PAPER_N
    ]
    png, table, md, summary = render("fig3", "smoke", rows, tmp_path)
    assert png.stat().st_size > 10_000
    text = md.read_text()
    assert "0.976" in text and "rises" in text and "Transformer" in text
    with open(table) as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == 10
    assert float(got[0]["ood_r2"]) == pytest.approx(0.5 + 0.4 * math.log(2) / math.log(24))

    rows = [
        dict(_row("rnn", 24, [0.8] * 4), stimulus_steps=t, ceiling=1 - 0.48 / t)
        for t in (3, 5, 10, 20)
    ]
    _, _, md, _ = render("fig5a", "smoke", rows, tmp_path / "a")
    text = md.read_text()
    assert "| 5 | 0.800 [0.800, 0.800] | 0.904 | -0.104 |" in text  # 1 - 12 * 0.04 / 5

    rows = [dict(_row("rnn", n, [0.7] * 4), sigma=s) for n in (2, 24) for s in PAPER_SIGMAS]
    _, _, md, _ = render("fig5c", "smoke", rows, tmp_path / "c")
    text = md.read_text()
    for ceil in ("0.994", "0.976", "0.946", "0.904", "0.784"):  # SPEC section 6
        assert f"| {ceil} |" in text

    rows = [dict(_row("rnn", n, [0.6] * 4), latent_dim=d) for n in (6, 24) for d in (2, 4)]
    png, _, _, _ = render("fig5b", "smoke", rows, tmp_path / "b")
    assert png.exists()
    rows = [dict(_row("gru", 6, [0.6] * 4), algo="ppo", env_id=e, frac_ideal=0.9) for e in RL_ENVS]
    png, _, md, _ = render("rl", "smoke", rows, tmp_path / "rl")
    assert png.exists() and "Wager" in md.read_text()


@pytest.mark.slow
def test_mte_reproduce_fig3_smoke_end_to_end(tmp_path, capsys):
    from experiments.cli import main

    assert (
        main(["reproduce", "fig3", "--scale", "smoke", "--out", str(tmp_path), "--no-progress"])
        == 0
    )
    out = tmp_path / "fig3"
    for f in ("fig3.png", "fig3.csv", "fig3.md", "sweep-smoke/results.csv"):
        assert (out / f).exists(), f
    with open(out / "fig3.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["arch"], int(r["n_tasks"])) for r in rows} == {
        (a, n) for a in ("rnn", "transformer") for n in (2, 6, 24)
    }
    for r in rows:
        assert float(r["ceiling"]) == pytest.approx(0.976)
        assert -2.0 < float(r["ood_r2"]) < 1.0 and int(r["n_networks"]) == 1
    printed = capsys.readouterr().out
    assert "OOD r^2" in printed and "fig3.png" in printed
