"""Fig. 3d: PCA of an RNN's hidden trajectories over a latent grid, with its fixed points and
their Jacobian spectra: the paper's 2-D continuous attractor, beside the same network untrained
(``mte reproduce fig3d``).

Each network is run on an 8 x 8 grid of x* (16 noisy trials per cell, averaged: the cell's mean
trajectory). PCA is fit on the mean trajectories from stimulus onset to the decision step. Fixed
and slow points of the recurrent map under the no-evidence input are found from visited states
(``probes.report.run_fixed_points``: minima of |F(h) - h|^2 slower than a tenth of the states'
spread per step); at each, the eigenvalues lambda of the map's Jacobian J. A mode is *slow* when
|lambda - 1| < ``probes.report.MARGINAL_TOL`` (an eigenvalue of J - I near 0: near 0 in the
continuous-time sense), counted in the span of the visited states; the attractor dimension of a
network is the median count over its fixed points (``FixedPointResult.attractor_dim``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.agents.run import atomic_write_text
from multitask_evidence.experiments.sweep import Grid

from . import analyses as an
from .grids import per_arch
from .pages import csv_text, side
from .plots import finish, pyplot
from .registry import Figure, register
from .stats import fmt

GRID = 8
REPEATS = 16
N_PCS = 5
N_TASKS = 24


def grid(scale: str) -> Grid:
    """Leaky RNNs at N = 24, D = 2 (the paper's Fig. 3d network)."""
    return per_arch(("rnn",), scale, {"n_tasks": [N_TASKS]}, "fig3d")


def analyse(run_dir: str) -> dict[str, Any]:
    """One network's trajectories, PCA and fixed points, trained and untrained (see module doc)."""
    from multitask_evidence.probes.report import MARGINAL_TOL, run_fixed_points
    from multitask_evidence.probes.sparseness import pca

    spec, recs, _ = an.grid_states(run_dir, GRID, REPEATS)
    nets = dict(zip(("trained", "untrained"), recs["networks"]))
    s0, s1 = spec.stimulus_start, spec.decision_start + 1
    out: dict[str, Any] = {"latent_dim": spec.latent_dim}
    for src, loaded in nets.items():
        rec = recs[src]
        cells = GRID**spec.latent_dim
        mean = rec.hidden.reshape(cells, REPEATS, *rec.hidden.shape[1:]).mean(axis=1)
        p = pca(mean[:, s0:s1])
        fp = run_fixed_points(rec, loaded.network)
        res: dict[str, Any] = {
            "evr": p.explained_variance_ratio[:10],
            "participation_ratio": p.participation_ratio,
            "traj": p.project(mean[:, :s1], 2),  # [cells, s1, 2]
            "cells": np.unique(rec.latent, axis=0),
        }
        if fp is None:
            res.update(n_found=0, attractor_dim=None)
        else:
            ev = fp.eigenvalues
            res.update(
                n_found=fp.n_found,
                attractor_dim=fp.attractor_dim if fp.n_found else None,
                n_slow=fp.n_marginal,
                n_unstable=(np.abs(ev) > 1 + MARGINAL_TOL).sum(axis=1) if fp.n_found else [],
                dist_to_1=np.sort(np.abs(ev - 1.0), axis=1)[:20, :8] if fp.n_found else [],
                eig_real=ev[:20].real,
                eig_imag=ev[:20].imag,
                fp_pcs=p.project(fp.points, 2) if fp.n_found else [],
                marginal_tol=fp.marginal_tol,
            )
        out[src] = res
    return out


def _stimulus_start(run_dir: str) -> int:
    """The first evidence step of a run's task (0 when its spec cannot be read)."""
    from multitask_evidence.agents.run import read_spec

    try:
        return int(read_spec(run_dir).stimulus_start)
    except (ValueError, OSError):
        return 0


def _median(values: Sequence[Any]) -> float:
    return an.pooled(values)["median"]


def _network_rows(analyses: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The per-network table: variance per PC, fixed points, slow modes, trained and untrained."""
    rows = []
    for run_dir, a in analyses.items():
        for src in ("trained", "untrained"):
            r = a[src]
            row: dict[str, Any] = {"seed": a.get("seed"), "network": src}
            for k in range(N_PCS):
                row[f"pc{k + 1}_var"] = r["evr"][k]
            row["pc12_var"] = r["evr"][0] + r["evr"][1]
            row["participation_ratio"] = r["participation_ratio"]
            row["n_fixed_points"] = r["n_found"]
            row["slow_modes_median"] = _median(r.get("n_slow") or [])
            row["unstable_modes_median"] = _median(r.get("n_unstable") or [])
            row["attractor_dim"] = r.get("attractor_dim")
            row["run_dir"] = run_dir
            rows.append(row)
    return rows


def _add_columns(summary: Sequence[dict[str, Any]], analyses: Mapping[str, Any]) -> None:
    """Per-condition medians over networks of the per-network numbers, into the summary rows
    (they become the figure's CSV columns)."""
    for row in summary:
        nets = an.analyses_of(row, analyses)
        for src, prefix in (("trained", ""), ("untrained", "untrained_")):
            for k in range(N_PCS):
                row[f"{prefix}pc{k + 1}_var"] = _median([a[src]["evr"][k] for a in nets])
            row[f"{prefix}pc12_var_per_network"] = [
                a[src]["evr"][0] + a[src]["evr"][1] for a in nets
            ]
            row[f"{prefix}attractor_dim_per_network"] = [a[src]["attractor_dim"] for a in nets]
            row[f"{prefix}n_fixed_points_per_network"] = [a[src]["n_found"] for a in nets]


def _colours(cells: np.ndarray) -> np.ndarray:
    """An RGB colour per grid cell: red grows with x1, blue with x2."""
    c = np.clip(np.asarray(cells, dtype=float)[:, :2] + 0.5, 0, 1)
    return np.stack([c[:, 0], 0.35 * np.ones(len(c)), c[:, 1]], axis=1)


def plot(
    summary: Sequence[Mapping[str, Any]],
    analyses: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    caption: str = "",
) -> Path:
    """Fig. 3d. Top: one network's mean trajectories over the grid on PC1-PC2 (colour: x1 red,
    x2 blue; dots: last evidence step; x: fixed points; inset: variance per PC), trained and
    untrained, and the variance per PC of every network. Bottom: |lambda - 1| of the slowest
    Jacobian modes at every fixed point, trained and untrained, and each network's attractor
    dimension."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.2))
    nets = list(analyses.values())
    example = min(nets, key=lambda a: a.get("seed") or 0) if nets else None
    for col, src in enumerate(("trained", "untrained")):
        ax = axes[0, col]
        ax.set_title(f"{'ab'[col]}  {src} RNN: mean trajectories over the 8 x 8 grid")
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
        if example is None:
            continue
        r = example[src]
        # from the last step before the evidence: the steps before it leave the initial state
        start = max(_stimulus_start(example["run_dir"]) - 1, 0)
        # up to the last evidence step: at the decision step the go channel switches off and
        # the input, not the stored estimate, moves the state
        traj = np.asarray(r["traj"], dtype=float)[:, start:-1]
        colours = _colours(np.asarray(r["cells"]))
        for i in range(traj.shape[0]):  # a plot loop over the grid's cells
            ax.plot(traj[i, :, 0], traj[i, :, 1], color=colours[i], lw=0.5, alpha=0.6)
        ax.scatter(
            traj[:, -1, 0], traj[:, -1, 1], c=colours, s=9, zorder=3, label="end of evidence"
        )
        pts = np.asarray(r.get("fp_pcs") or np.zeros((0, 2)), dtype=float)
        if pts.size:
            ax.scatter(
                pts[:, 0], pts[:, 1], marker="x", color="k", s=14, lw=0.8, zorder=4,
                label=f"fixed/slow points ({len(pts)})",
            )
        ax.legend(fontsize=5.5, loc="upper right")
        ins = ax.inset_axes((0.74, 0.07, 0.22, 0.22))
        evr = np.asarray(r["evr"][:N_PCS], dtype=float)
        ins.bar(np.arange(1, evr.size + 1), evr, color="C0" if src == "trained" else "0.6")
        ins.set_ylim(0, 1)
        ins.set_xticks(range(1, evr.size + 1))
        ins.tick_params(labelsize=5, length=2, pad=1)
        ins.set_title("var. per PC", fontsize=5.5, pad=1)
    ax = axes[0, 2]
    for src, colour, off in (("trained", "C0", -0.15), ("untrained", "0.5", 0.15)):
        vals = np.array([a[src]["evr"][:N_PCS] for a in nets], dtype=float).reshape(-1, N_PCS)
        ks = np.arange(1, N_PCS + 1)
        for v in vals:
            ax.plot(ks + off, v, "o", color=colour, ms=3, alpha=0.7)
        if len(vals):
            ax.plot(ks + off, np.median(vals, axis=0), color=colour, lw=1.2,
                    ls="-" if src == "trained" else "--", label=f"{src} (median, dots: networks)")
    ax.set_xticks(range(1, N_PCS + 1))
    ax.set_ylim(0, 1)
    ax.set_xlabel("principal component")
    ax.set_ylabel("fraction of variance")
    ax.set_title("c  variance explained per PC, every network")
    if nets:
        ax.legend(fontsize=5.5)
    tol = None
    for col, src in enumerate(("trained", "untrained")):
        ax = axes[1, col]
        for a in nets:
            d = np.asarray(a[src].get("dist_to_1") or np.zeros((0, 8)), dtype=float)
            tol = a[src].get("marginal_tol", tol)
            for row in d:  # a plot loop over fixed points
                ax.plot(np.arange(1, row.size + 1), row, "-", color="C0" if src == "trained"
                        else "0.5", lw=0.6, alpha=0.35, marker=".", ms=2)
        if tol:
            ax.axhline(tol, ls="--", color="C3", lw=1, label=f"slow: $|\\lambda-1|$ < {tol:g}")
        ax.set_yscale("log")
        ax.set_xlabel("Jacobian mode (sorted by $|\\lambda - 1|$)")
        ax.set_ylabel("$|\\lambda - 1|$ (eigenvalue of J - I)")
        ax.set_title(f"{'de'[col]}  {src}: slowest modes at every fixed point")
        if tol:
            ax.legend(fontsize=5.5, loc="lower right")
    ax = axes[1, 2]
    seeds = [a.get("seed") for a in nets]
    x = np.arange(len(nets))
    for src, colour, off in (("trained", "C0", -0.2), ("untrained", "0.6", 0.2)):
        dims = [a[src]["attractor_dim"] for a in nets]
        ax.bar(x + off, [d if d is not None else 0 for d in dims], width=0.38, color=colour,
               label=src)
        for xi, d in zip(x, dims):
            label = "none\nfound" if d is None else str(d)
            ax.text(xi + off, (d or 0) + 0.04, label, ha="center", va="bottom", fontsize=6)
    ax.axhline(2, ls=":", color="k", lw=1, label="D = 2")
    ax.set_xticks(x)
    ax.set_xticklabels([f"seed {s}" for s in seeds])
    ax.set_ylabel("attractor dimension (slow modes)")
    ax.set_title("f  attractor dimension per network")
    ax.legend(fontsize=5.5)
    return finish(fig, path, caption)


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    params = {"grid": GRID, "repeats": REPEATS, "version": 1}
    analyses = an.per_network(summary, "fig3d", params, analyse)
    _add_columns(summary, analyses)  # type: ignore[arg-type]
    png = plot(summary, analyses, out / "fig3d.png", caption)
    lines = ["## The claim against its controls", ""]
    if not analyses:
        return png, "\n".join([*lines, an.no_networks_note("fixed-point")])
    net_rows = _network_rows(analyses)
    atomic_write_text(out / "fig3d_networks.csv", csv_text(net_rows), mkdir=True)
    lines += [
        "Per network (`fig3d_networks.csv`): variance of the mean trajectories per principal "
        "component, fixed / slow points found, slow modes (|lambda - 1| < tol, in the visited "
        "span) and unstable modes (|lambda| > 1 + tol) per fixed point (median over points), "
        "and the attractor dimension.",
        "",
        "| seed | network | PC1 | PC2 | PC3 | PC4 | PC5 | PC1+2 | fixed points | slow modes | "
        "unstable modes | attractor dim |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in net_rows:
        cells = [f"{r[f'pc{k + 1}_var']:.3f}" for k in range(N_PCS)]
        lines.append(
            f"| {r['seed']} | {r['network']} | {' | '.join(cells)} | {r['pc12_var']:.3f} | "
            f"{r['n_fixed_points']} | {_num(r['slow_modes_median'])} | "
            f"{_num(r['unstable_modes_median'])} | {r['attractor_dim']} |"
        )
    lines.append("")
    for row in summary:
        k = len(an.networks_of(row))
        dims = row["attractor_dim_per_network"]
        dims0 = row["untrained_attractor_dim_per_network"]
        two = sum(d == 2 for d in dims)
        two0 = sum(d == 2 for d in dims0)
        gain = an.paired_gain(row["pc12_var_per_network"], row["untrained_pc12_var_per_network"])
        lines += [
            f"### RNN, N = {row.get('n_tasks')} ({k} networks)",
            "",
            f"- Attractor dimension per network: trained {dims}, untrained {dims0}. A 2-D "
            f"attractor (two slow modes at the median fixed point) in {two} of {k} trained "
            f"networks and {two0} of {k} untrained.",
            f"- PC1 + PC2 hold {_pct(an.pooled(row['pc12_var_per_network']))} of the mean "
            f"trajectories' variance trained, {_pct(an.pooled(row['untrained_pc12_var_per_network']))}"
            f" untrained (median over networks); paired difference "
            f"{an.interval(gain, 1, 100)} percentage points: {side(gain[1], gain[2])} the untrained control.",
            f"- Fixed / slow points found per network: trained {row['n_fixed_points_per_network']}"
            f", untrained {row['untrained_n_fixed_points_per_network']}.",
            f"- Decoding beside it (from the sweep): OOD r^2 {fmt(row, 'ood_r2')}, untrained "
            f"{fmt(row, 'untrained_ood_r2')}, encoder-output average {fmt(row, 'input_ood_r2')}.",
            "",
        ]
        verdict = (
            "holds"
            if two > k / 2 and two0 <= k / 2
            else "does NOT hold"
            if two <= k / 2
            else "holds for the trained networks but also for the untrained ones, so it is not "
            "training's"
        )
        lines.append(
            f"**In plain words:** the paper's claim (the trained RNN holds x* on a 2-D continuous "
            f"attractor that the untrained network lacks) {verdict} here: {two} of {k} trained "
            f"networks show two slow modes against {two0} of {k} untrained."
        )
        lines.append("")
    lines += [
        "Method: 8 x 8 grid of x* (cell centres), 16 trials per cell with evidence noise, "
        "averaged per cell; PCA of the mean trajectories from stimulus onset to the decision "
        "step; fixed points from 128 visited states under the no-evidence input (encoded f(0), "
        "go channel on), kept when slower than 0.1 of the states' spread per step; slow modes "
        "counted on the Jacobian projected onto the visited states' principal axes (99% of "
        "their variance), so silent units do not count. The untrained network is the same "
        "architecture, init and seed before training (`agents.untrained`), recorded on the "
        "same trials.",
    ]
    return png, "\n".join(lines)


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and math.isfinite(v) else "-"


def _pct(p: Mapping[str, float]) -> str:
    if not p["n"]:
        return "-"
    return f"{100 * p['median']:.1f}% [IQR {100 * p['q25']:.1f}, {100 * p['q75']:.1f}]"



FIGURE = register(
    Figure(
        "fig3d",
        "Fig. 3d: the RNN's 2-D continuous attractor (PCA and fixed points)",
        "The trained RNN holds x* on a 2-D continuous attractor: two slow Jacobian modes "
        "(eigenvalues of the map near 1) at its fixed points, the rest stable, and two "
        "principal components carry its trajectories; the untrained network has no such "
        "attractor.",
        ("arch", "n_tasks"),
        grid,
        render,
        help="PCA and fixed points of the RNN",
        statistic="per network: PCA of mean trajectories, fixed points and Jacobian spectra",
    )
)
