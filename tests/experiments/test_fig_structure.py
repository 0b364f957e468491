"""The structure figures (fig3d, fig4, figS6, figS12): their grids, a real smoke-scale run of
each whose table holds the trained networks' numbers beside their controls (the same networks
untrained, the encoder's output), and their paired tests on hand-made networks whose analyses
sit in the run folders' caches (8 networks per condition: the smallest sign-flip p is
2 / 2^8 = 0.0078)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from multitask_evidence.experiments.figures import fig3d, fig4, figS6, figS12
from multitask_evidence.experiments.reproduce import figure_grid, render, reproduce
from multitask_evidence.probes.fixed_points import MARGINAL_TOL
from multitask_evidence.probes.report import json_safe

SEEDS = range(8)


def _read(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _num(v):
    return float(v) if v not in ("", None) else math.nan


def _smoke(name, tmp_path):
    res = reproduce(name, "smoke", tmp_path, workers=1, progress=False)
    assert res.n_failed == 0
    assert res.png.exists() and res.png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    out = tmp_path / name
    return _read(out / f"{name}.csv"), _read(out / f"{name}_networks.csv"), res.page.read_text()


def test_grids_train_what_the_figures_compare():
    d = figure_grid("fig3d", "quick").points()
    # N = 24 (the paper's network) and the trained N = 2 control, 3 networks each
    assert {(p.agent["arch"], p.task["n_tasks"]) for p in d} == {("rnn", 2), ("rnn", 24)}
    assert len(d) == 6
    f4 = figure_grid("fig4", "quick").points()
    assert {p.agent["arch"] for p in f4} == {"rnn", "transformer"} and len(f4) == 6
    s6 = figure_grid("figS6", "quick").points()
    by_n = {(p.agent["arch"], p.task["n_tasks"]) for p in s6 if "latent_dim" not in p.task}
    assert by_n == {(a, n) for a in ("rnn", "rnn_nonleaky", "lstm") for n in (2, 24)}
    by_d = {p.task["latent_dim"] for p in s6 if "latent_dim" in p.task}
    assert by_d == {4, 6}
    assert all(p.task["boundaries"] == "random" for p in s6 if "latent_dim" in p.task)
    s12 = figure_grid("figS12", "quick").points()
    assert {(p.agent["arch"], p.task["latent_dim"]) for p in s12} == {
        (a, d) for a in ("rnn", "transformer") for d in (2, 4, 6)
    }
    assert len(figure_grid("figS12", "paper").points()) == 2 * 5 * 4 * 5


@pytest.mark.slow
def test_fig3d_smoke_table_has_pcs_and_fixed_points_beside_the_untrained_network(tmp_path):
    rows, nets, page = _smoke("fig3d", tmp_path)
    assert [(r["arch"], int(r["n_tasks"])) for r in rows] == [("rnn", 2), ("rnn", 24)]
    assert all(int(r["n_networks"]) == 2 for r in rows)
    for row in rows:
        for prefix in ("", "untrained_"):
            pcs = [_num(row[f"{prefix}pc{k}_var"]) for k in range(1, 6)]
            assert all(0 <= v <= 1 for v in pcs) and pcs == sorted(pcs, reverse=True)
            assert sum(pcs) <= 1 + 1e-9
    assert sorted((int(r["n_tasks"]), int(r["seed"]), r["network"]) for r in nets) == [
        (n, s, k) for n in (2, 24) for s in (0, 1) for k in ("trained", "untrained")
    ]
    for r in nets:
        assert int(r["n_fixed_points"]) >= 0 and 0 < _num(r["pc12_var"]) <= 1
        assert _num(r["marginal_tol"]) == MARGINAL_TOL
    # the trained and untrained networks are different networks: their PCs differ
    t = {r["seed"]: _num(r["pc1_var"]) for r in nets if r["network"] == "trained"}
    u = {r["seed"]: _num(r["pc1_var"]) for r in nets if r["network"] == "untrained"}
    assert t != u
    assert "Attractor dimension per network: trained [" in page and "untrained" in page
    assert f"|lambda - 1| < {MARGINAL_TOL:g} (`probes.fixed_points.MARGINAL_TOL`" in page
    assert "### The trained N = 2 control" in page and "**Primary contrast**: RNN, N = 24" in page


@pytest.mark.slow
def test_fig4_smoke_table_has_sparseness_of_trained_untrained_and_input(tmp_path):
    rows, nets, page = _smoke("fig4", tmp_path)
    assert sorted(r["arch"] for r in rows) == ["rnn", "transformer"]
    for r in rows:
        for col in ("sparseness", "untrained_sparseness", "input_sparseness"):
            assert 0 < _num(r[col]) < 1, col
        assert 0 <= _num(r["active_fraction"]) <= 1
    assert len(nets) == 2 * 2 * 3
    # the encoder depends on the network's seed only: the same input control for both archs
    inp = {}
    for r in nets:
        if r["source"] == "input":
            inp.setdefault(r["seed"], set()).add(round(_num(r["sparseness_median"]), 9))
    assert all(len(v) == 1 for v in inp.values()) and len(inp) == 2
    assert "encoder output (input)" in page and "untrained (same network)" in page
    # both definitions of sparseness, on the page and in the tables
    for r in rows:
        for p in ("", "untrained_", "input_"):
            # on signed states the paper's formula reaches up to m / (m - 1) = 64 / 63
            assert 0 <= _num(r[f"{p}paper_sparseness"]) <= 64 / 63
    assert all(r["sparseness_paper"] != "" for r in nets)
    assert "paper's definition" in page and "this package's" in page


@pytest.mark.slow
def test_figS6_smoke_table_has_sparseness_against_n_and_d_with_controls(tmp_path):
    rows, nets, page = _smoke("figS6", tmp_path)
    conds = {(r["arch"], int(r["n_tasks"]), int(r["latent_dim"])) for r in rows}
    assert conds == {("rnn", 2, 2), ("rnn", 3, 2), ("lstm", 2, 2), ("lstm", 3, 2), ("rnn", 3, 3)}
    for r in rows:
        for p in ("", "untrained_", "input_"):
            assert 0 < _num(r[f"{p}sparseness_median"]) < 1
            assert 0 <= _num(r[f"{p}active_percent"]) <= 100
    assert len(nets) == 5 * 2 * 3
    for r in nets:
        assert 0 <= _num(r["paper_sparseness"]) <= 1024 / 1023 and int(r["silent_units"]) >= 0
    assert "### RNN against D" in page and "### LSTM against N" in page
    assert "paper's definition" in page and "**Primary contrast**: RNN: sparseness" in page


@pytest.mark.slow
def test_figS12_smoke_table_has_folded_pair_angles_with_controls(tmp_path):
    rows, nets, page = _smoke("figS12", tmp_path)
    assert {(r["arch"], int(r["latent_dim"])) for r in rows} == {
        (a, d) for a in ("rnn", "transformer") for d in (2, 3)
    }
    for r in rows:
        pairs = {2: 1, 3: 3}[int(r["latent_dim"])] * 2  # pairs per network x 2 networks
        for p in ("", "untrained_", "input_"):
            assert 0 <= _num(r[f"{p}pair_angle_deg"]) <= 90
            assert int(r[f"{p}pair_angle_deg_n"]) == pairs
    assert len(nets) == 4 * 2 * 3
    assert "90 - trained" in page


def test_structure_figures_render_hand_made_rows_without_networks(tmp_path):
    rows = [
        {"status": "ok", "arch": a, "n_tasks": 24, "latent_dim": 2, "ood_r2": 0.9, "seed": s}
        for a in ("rnn", "transformer")
        for s in (0, 1)
    ]
    for name in ("fig3d", "fig4", "figS6", "figS12"):
        png, table, md, _ = render(name, "smoke", rows, tmp_path / name)
        assert png.exists() and table.exists()
        assert "No run folders behind these rows" in md.read_text(), name


# ---- the paired tests, on hand-made networks -------------------------------------------------


def _runs(tmp_path, name, params, conditions, result):
    """Sweep rows of 8 networks per condition whose run folders hold a cached analysis
    ``result(condition, seed)`` under ``params`` (so the figure reads it instead of training)."""
    rows = []
    for c, cond in enumerate(conditions):
        for seed in SEEDS:
            run = tmp_path / "runs" / f"{name}-{c}-{seed}"
            run.mkdir(parents=True)
            (run / "config.json").write_text("{}")
            cache = {"params": json_safe(dict(params)), "result": json_safe(result(cond, seed))}
            (run / f"{name}.json").write_text(json.dumps(cache))
            rows.append({"status": "ok", **cond, "seed": seed, "run_dir": str(run), "ood_r2": 0.9})
    return rows


def _page(name, rows, tmp_path):
    _, table, md, summary = render(name, "smoke", rows, tmp_path / name)
    return md.read_text(), summary


def _fig3d_source(dim, pc1, pc2):
    """One recording's fig3d analysis: dimension None = the search ran and found no slow
    point."""
    found = 0 if dim is None else 3
    return {
        "evr": [pc1, pc2, 0.05, 0.03, 0.02, 0, 0, 0, 0, 0],
        "participation_ratio": 2.0,
        "traj": np.zeros((64, 5, 2)),
        "cells": np.zeros((64, 2)),
        "n_found": found,
        "attractor_dim": dim,
        "n_slow": [dim] * found,
        "n_unstable": [0] * found,
        "dist_to_1": [[0.01] * 8] * found,
        "eig_real": [],
        "eig_imag": [],
        "fp_pcs": [[0.0, 0.0]] * found,
        "marginal_tol": MARGINAL_TOL,
    }


def test_fig3d_tests_both_halves_and_the_trained_n2_control_network_by_network(tmp_path):
    # N = 24: every trained network has a 2-D attractor, its untrained twin dimension
    # 0 (nothing found), 0, 0, 0, 1, 1, 1, 4 by seed: |dim - 2| untrained - trained =
    # 2, 2, 2, 2, 1, 1, 1, 2: mean 13/8 = 1.625, SD sqrt(15/56) = 0.5175, t(0.975, 7) = 2.3646,
    # half-width 0.4327: [1.192, 2.058]; all 8 positive: p = 2 / 2^8 = 0.0078
    untrained = [None, 0, 0, 0, 1, 1, 1, 4]

    def result(cond, seed):
        if cond["n_tasks"] == 24:
            trained, pcs = _fig3d_source(2, 0.6, 0.3), (0.4, 0.2)
        else:  # N = 2: also a 2-D attractor, PC1 + PC2 = 0.85
            trained, pcs = _fig3d_source(2, 0.55, 0.3), (0.4, 0.2)
        return {"trained": trained, "untrained": _fig3d_source(untrained[seed], *pcs)}

    conds = [{"arch": "rnn", "n_tasks": n} for n in (2, 24)]
    page, summary = _page("fig3d", _runs(tmp_path, "fig3d", fig3d.PARAMS, conds, result), tmp_path)
    big = next(r for r in summary if r["n_tasks"] == 24)
    dims = {s: float(d or 0) for s, d in zip(SEEDS, untrained)}  # nothing found: dimension 0
    assert big["_by_seed"]["untrained_attractor_dim"] == dims
    assert (
        "**Primary contrast**: RNN, N = 24: |attractor dimension - 2| untrained - trained: "
        "holds: +1.625 [95% CI +1.192, +2.058], p = 0.0078, n = 8 (primary)." in page
    )
    # the PCA half: 0.9 - 0.6 = +0.3 in every network; 5 secondary calls (each N's two halves
    # less the primary, and the two N = 24 - N = 2 contrasts): Holm 5 x 0.0078 = 0.039
    assert (
        "PCA half: PC1 + PC2 hold 90.0% [IQR 90.0, 90.0] of the mean trajectories' variance "
        "trained, 60.0% [IQR 60.0, 60.0] untrained" in page
    )
    assert "holds: +0.300 [95% CI +0.300, +0.300], p = 0.0078 (Holm 0.039), n = 8" in page
    # the N = 2 control: both N hold a plane attractor, so their |dim - 2| differ by 0 in every
    # network (p = 1), while PC1 + PC2 is 0.05 higher at N = 24
    assert (
        "|attractor dimension - 2|, N = 24 - N = 2: not distinguishable: +0.000 [95% CI +0.000, "
        "+0.000], p = 1 (Holm 1), n = 8" in page
    )
    assert "PC1+PC2 share, N = 24 - N = 2: above: +0.050" in page
    assert "what holding two numbers takes" in page
    assert f"|lambda - 1| < {MARGINAL_TOL:g} (`probes.fixed_points.MARGINAL_TOL`" in page
    assert "Attractor dimension per network: trained [2, 2, 2, 2, 2, 2, 2, 2], untrained " \
        "[0, 0, 0, 0, 1, 1, 1, 4]" in page
    nets = _read(tmp_path / "fig3d" / "fig3d_networks.csv")
    assert len(nets) == 2 * 8 * 2 and {r["n_tasks"] for r in nets} == {"2", "24"}


def _fig4_source(paper, per_unit, signed=False):
    return {
        "corr": [[0.8, 0.1], [0.1, 0.8], [0.5, 0.5], [0.9, 0.0], [0.0, 0.9], [0.2, 0.1]],
        "sparseness": per_unit,
        "sparseness_rates": per_unit,
        "paper_sparseness": paper,
        "silent_units": 1,
        "signed": signed,
        "active": [0.5] * 6,
        "maps": np.zeros((6, 8, 8)),
        "example_units": list(range(6)),
    }


def test_fig4_reports_both_sparseness_definitions_and_tests_the_papers_as_primary(tmp_path):
    # paper's definition, RNN: trained 0.50, 0.52, 0.48, 0.55, 0.45, 0.50, 0.53, 0.47 by seed
    # against 0.30 untrained: differences mean 0.200, SD sqrt(0.0076 / 7) = 0.03295, half-width
    # 2.3646 x 0.03295 / sqrt(8) = 0.0275: [0.172, 0.228]; all positive: p = 0.0078
    trained = [0.50, 0.52, 0.48, 0.55, 0.45, 0.50, 0.53, 0.47]

    def result(cond, seed):
        units = [0.6, 0.7, None, 0.5, 0.4, 0.3]  # one silent unit, left out by this package's
        signed = cond["arch"] == "transformer"  # its residual stream is signed
        return {
            "trained": _fig4_source(trained[seed], units, signed),
            "untrained": _fig4_source(0.30, [0.2] * 6),
            "input": _fig4_source(0.25, [0.1] * 6),
        }

    conds = [{"arch": a, "n_tasks": 24} for a in ("transformer", "rnn")]
    page, summary = _page("fig4", _runs(tmp_path, "fig4", fig4.PARAMS, conds, result), tmp_path)
    assert (
        "**Primary contrast**: RNN, N = 24: lifetime sparseness (paper's definition) trained - "
        "untrained: holds: +0.200 [95% CI +0.172, +0.228], p = 0.0078, n = 8 (primary)." in page
    )
    rnn = next(r for r in summary if r["arch"] == "rnn")
    # this package's per network: the median over the 5 active units (0.3, 0.4, 0.5, 0.6, 0.7)
    assert rnn["_by_seed"]["sparseness"] == {s: 0.5 for s in SEEDS}
    assert rnn["paper_sparseness"] == pytest.approx(0.50)  # median over networks
    # this package's against untrained: 0.5 - 0.2 = 0.3 in every network, p = 0.0078; but the
    # page's 7 secondary calls share Holm's family: 7 x 0.0078 = 0.055, above 0.05
    assert (
        "this package's: not distinguishable after Holm: +0.300 [95% CI +0.300, +0.300], p = 0.0078 "
        "(Holm 0.055), n = 8" in page
    )
    assert "sparseness, paper's definition (mean over units, silent = 1)" in page
    assert "Its states are signed" in page  # the transformer's note


def test_figS6_pairs_n_by_seed_in_both_definitions(tmp_path):
    # the paper's definition at N = 2: 0.40 + 0.01 seed; at N = 24: 0.30 + 0.01 seed, so each
    # seed falls by exactly 0.1 (paired by seed; by position in reversed order it would not)
    def result(cond, seed):
        base = {2: 0.40, 24: 0.30}[cond["n_tasks"]] + 0.01 * seed
        src = {"sparseness_median": 0.5, "silent_units": 2, "active_percent": 40.0, "units": 62}
        return {
            "trained": {**src, "paper_sparseness": base},
            "untrained": {**src, "paper_sparseness": 0.2, "sparseness_median": 0.45},
            "input": {**src, "paper_sparseness": 0.1},
        }

    conds = [{"arch": "rnn", "n_tasks": n, "latent_dim": 2} for n in (2, 24)]
    rows = _runs(tmp_path, "figS6", figS6.PARAMS, conds, result)
    rows = rows[:8] + rows[8:][::-1]
    page, summary = _page("figS6", rows, tmp_path)
    assert (
        "**Primary contrast**: RNN: sparseness (paper's definition) at N = 24 - at N = 2: falls: "
        "-0.100 [95% CI -0.100, -0.100], p = 0.0078, n = 8 (primary)." in page
    )
    # this package's is 0.5 at both N: no change in any network
    assert "this package's: not distinguishable: +0.000" in page
    # trained - untrained, this package's: 0.5 - 0.45 = 0.05 in every network, p = 0.0078;
    # 5 secondary calls (each N against its untrained networks in both definitions, and this
    # package's change with N): Holm 5 x 0.0078 = 0.039
    assert (
        "trained - untrained: above: +0.050 [95% CI +0.050, +0.050], p = 0.0078 (Holm 0.039), "
        "n = 8" in page
    )
    row = next(r for r in summary if r["n_tasks"] == 24)
    assert row["silent_units"] == 2 and row["paper_sparseness"] == pytest.approx(0.335)


def test_figS12_tests_the_change_of_angle_with_d_by_seed(tmp_path):
    # RNN, N = 24: one pair at D = 2 at 85 + 0.5 seed degrees; 15 pairs at D = 6 at 80 + 0.5
    # seed: each network's mean angle falls by exactly 5 degrees
    def result(cond, seed):
        d = cond["latent_dim"]
        pairs = d * (d - 1) // 2
        angle = (85.0 if d == 2 else 80.0) + 0.5 * seed
        return {"trained": [angle] * pairs, "untrained": [70.0] * pairs, "input": [75.0] * pairs}

    conds = [
        {"arch": a, "n_tasks": 24, "latent_dim": d, "boundaries": "random"}
        for a in ("transformer", "rnn")
        for d in (2, 6)
    ]
    page, _ = _page("figS12", _runs(tmp_path, "figS12", figS12.PARAMS, conds, result), tmp_path)
    assert (
        "**Primary contrast**: RNN, N = 24: decoder-axis angle (deg) at D = 6 - at D = 2: falls: "
        "-5.000 [95% CI -5.000, -5.000], p = 0.0078, n = 8 (primary)." in page
    )
    # the table: trained - untrained at D = 2 is 85 + 0.5 seed - 70, mean 15 + 1.75 = 16.75
    assert "| rnn | 24 | 2 | 8 | 8 |" in page and "+16.8 [95% CI" in page
