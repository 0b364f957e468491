"""The structure figures (fig3d, fig4, figS6, figS12): their grids, and a real smoke-scale run of
each whose table holds the trained networks' numbers beside their controls (the same networks
untrained, the encoder's output)."""

from __future__ import annotations

import csv
import math

import pytest

from multitask_evidence.experiments.reproduce import figure_grid, render, reproduce


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
    assert {(p.agent["arch"], p.task["n_tasks"]) for p in d} == {("rnn", 24)} and len(d) == 3
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
    assert len(rows) == 1 and rows[0]["arch"] == "rnn" and int(rows[0]["n_networks"]) == 2
    for prefix in ("", "untrained_"):
        pcs = [_num(rows[0][f"{prefix}pc{k}_var"]) for k in range(1, 6)]
        assert all(0 <= v <= 1 for v in pcs) and pcs == sorted(pcs, reverse=True)
        assert sum(pcs) <= 1 + 1e-9
    assert sorted((int(r["seed"]), r["network"]) for r in nets) == [
        (s, n) for s in (0, 1) for n in ("trained", "untrained")
    ]
    for r in nets:
        assert int(r["n_fixed_points"]) >= 0 and 0 < _num(r["pc12_var"]) <= 1
    # the trained and untrained networks are different networks: their PCs differ
    t = {r["seed"]: _num(r["pc1_var"]) for r in nets if r["network"] == "trained"}
    u = {r["seed"]: _num(r["pc1_var"]) for r in nets if r["network"] == "untrained"}
    assert t != u
    assert "Attractor dimension per network: trained [" in page and "untrained" in page


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
    assert "### RNN against D" in page and "### LSTM against N" in page


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
