"""Fig. 3d: PCA of an RNN's hidden trajectories over a latent grid, with its fixed points and
their Jacobian spectra: the paper's 2-D continuous attractor, beside the same network untrained
and beside RNNs trained on N = 2 tasks (``mte reproduce fig3d``).

Each network is run on an 8 x 8 grid of x* (16 noisy trials per cell, averaged: the cell's mean
trajectory). PCA is fit on the mean trajectories from stimulus onset to the decision step. Fixed
and slow points of the recurrent map under the no-evidence input are found from visited states
(``probes.report.run_fixed_points``: minima of |F(h) - h|^2 slower than ``SLOW_SPEED`` of the
states' spread per step); at each, the eigenvalues lambda of the map's Jacobian J. A mode is
*slow* when |lambda - 1| < ``MARGINAL_TOL`` (an eigenvalue of J - I near 0: near 0 in the
continuous-time sense), counted in the span of the visited states; the attractor dimension of a
network is the median count over its fixed points (``FixedPointResult.attractor_dim``; 0 when
no slow point is found: no attractor).

Both thresholds are passed explicitly to ``probes.report.run_fixed_points``:
``probes.report.SLOW_SPEED`` and ``probes.fixed_points.MARGINAL_TOL``, the one tolerance the
fixed-point search, the probe report and the figures share. The page names them and the cached
analyses are keyed by them.

The claim has two halves, each tested network by network: the PCA half (PC1 + PC2 hold more of
the mean trajectories' variance trained than untrained) and the attractor half (the trained
network's attractor is closer to 2-dimensional than its untrained twin's: |dimension - 2|
untrained minus trained, the figure's primary contrast at N = 24). The trained N = 2 networks
are the control of what the attractor means: a network trained on two tasks must hold two
numbers too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.common.files import atomic_write_text
from multitask_evidence.experiments.sweep import Grid
from multitask_evidence.probes.fixed_points import MARGINAL_TOL
from multitask_evidence.probes.report import SLOW_SPEED

from . import analyses as an
from .grids import per_arch
from .inference import PairedTest, call, paired_test, t_interval
from .pages import condition_of, csv_text, describe, per_seed
from .plots import finish, pyplot
from .registry import Figure, register
from .stats import fmt

GRID = 8
REPEATS = 16
N_PCS = 5
N_TASKS = 24
"""N of the paper's Fig. 3d network."""
CONTROL_N = 2
"""N of the trained control: a network trained on two tasks (two boundaries) must remember the
two evidence sums, so it needs a 2-D memory whatever else many tasks add."""
PLANE = 2
"""The attractor dimension the claim predicts (D = 2 latent factors)."""
PARAMS = {
    "grid": GRID,
    "repeats": REPEATS,
    "marginal_tol": MARGINAL_TOL,
    "slow_speed": SLOW_SPEED,
    "version": 1,
}
"""The analysis' settings: a cached analysis is reused only while they are unchanged."""


def grid(scale: str) -> Grid:
    """Leaky RNNs at D = 2: N = 24 (the paper's Fig. 3d network) and N = 2 (the trained
    control)."""
    return per_arch(("rnn",), scale, {"n_tasks": [CONTROL_N, N_TASKS]}, "fig3d")


def analyse(run_dir: str) -> dict[str, Any]:
    """One network's trajectories, PCA and fixed points, trained and untrained (see module doc)."""
    from multitask_evidence.probes.report import run_fixed_points
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
        fp = run_fixed_points(
            rec, loaded.network, slow_speed=SLOW_SPEED, marginal_tol=MARGINAL_TOL
        )
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
                # the same tolerance as the slow modes: the one the search was run with
                n_unstable=(np.abs(ev) > 1 + fp.marginal_tol).sum(axis=1) if fp.n_found else [],
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


def dimension(result: Mapping[str, Any]) -> float | None:
    """A network's attractor dimension from its analysis (one source): the fixed-point
    result's, 0 where the search ran and found no slow point (no attractor), None where no
    search could run (no recurrent map)."""
    dim = result.get("attractor_dim")
    if dim is not None:
        return float(dim)
    return 0.0 if "n_slow" in result else None


def _network_rows(
    summary: Sequence[Mapping[str, Any]], analyses: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The per-network table: variance per PC, fixed points, slow modes, trained and untrained,
    at every N."""
    rows = []
    for cond in sorted(summary, key=lambda r: r.get("n_tasks") or 0):
        for a in an.analyses_of(cond, analyses):
            for src in ("trained", "untrained"):
                r = a[src]
                row: dict[str, Any] = {
                    "n_tasks": cond.get("n_tasks"),
                    "seed": a.get("seed"),
                    "network": src,
                }
                for k in range(N_PCS):
                    row[f"pc{k + 1}_var"] = r["evr"][k]
                row["pc12_var"] = r["evr"][0] + r["evr"][1]
                row["participation_ratio"] = r["participation_ratio"]
                row["n_fixed_points"] = r["n_found"]
                row["slow_modes_median"] = _median(r.get("n_slow") or [])
                row["unstable_modes_median"] = _median(r.get("n_unstable") or [])
                row["attractor_dim"] = dimension(r)
                row["marginal_tol"] = r.get("marginal_tol")
                row["run_dir"] = a["run_dir"]
                rows.append(row)
    return rows


def _add_columns(summary: Sequence[dict[str, Any]], analyses: Mapping[str, Any]) -> None:
    """Per-condition medians over networks of the per-network numbers, into the summary rows
    (they become the figure's CSV columns), and each network's PC1+PC2 share, attractor
    dimension and |dimension - 2| by seed (``_by_seed``, for the paired tests). Rows without
    analysed networks are left as they are."""
    for row in summary:
        nets = an.analyses_of(row, analyses)
        if not nets:
            continue
        for src, prefix in (("trained", ""), ("untrained", "untrained_")):
            for k in range(N_PCS):
                row[f"{prefix}pc{k + 1}_var"] = _median([a[src]["evr"][k] for a in nets])
            row[f"{prefix}pc12_var_per_network"] = [
                a[src]["evr"][0] + a[src]["evr"][1] for a in nets
            ]
            row[f"{prefix}attractor_dim_per_network"] = [dimension(a[src]) for a in nets]
            row[f"{prefix}n_fixed_points_per_network"] = [a[src]["n_found"] for a in nets]
            an.put_by_seed(
                row,
                f"{prefix}pc12_var",
                an.by_seed(nets, lambda a, s=src: a[s]["evr"][0] + a[s]["evr"][1]),
            )
            dims = an.by_seed(nets, lambda a, s=src: dimension(a[s]))
            an.put_by_seed(row, f"{prefix}attractor_dim", dims)
            an.put_by_seed(
                row,
                f"{prefix}attractor_gap",
                {k: abs(d - PLANE) if math.isfinite(d) else math.nan for k, d in dims.items()},
            )


def analysed(summary: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every network's analysis (cached in its run folder), with the summary rows' columns
    added; run folder -> analysis (empty for rows without run folders)."""
    analyses = an.per_network(summary, "fig3d", PARAMS, analyse)
    _add_columns(summary, analyses)  # type: ignore[arg-type]
    return analyses


# ---- the calls ------------------------------------------------------------------------------


def _at(summary: Sequence[Mapping[str, Any]], n: int) -> Mapping[str, Any] | None:
    """The RNN condition at N = n with per-network numbers, or None."""
    for r in summary:
        if r.get("n_tasks") == n and (per_seed(r, "attractor_gap") or per_seed(r, "pc12_var")):
            return r
    return None


def attractor_test(row: Mapping[str, Any]) -> PairedTest:
    """The attractor half: |attractor dimension - 2| of each network untrained minus trained
    (positive: training brings the network closer to a plane attractor), paired within a
    network."""
    return paired_test(
        per_seed(row, "untrained_attractor_gap"),
        per_seed(row, "attractor_gap"),
        f"{describe(condition_of(row))}: |attractor dimension - {PLANE}| untrained - trained",
        expect=1,
    )


def pca_test(row: Mapping[str, Any]) -> PairedTest:
    """The PCA half: the share of the mean trajectories' variance on PC1 + PC2, trained minus
    untrained (a fraction, 0-1), paired within a network."""
    return paired_test(
        per_seed(row, "pc12_var"),
        per_seed(row, "untrained_pc12_var"),
        f"{describe(condition_of(row))}: PC1+PC2 variance share trained - untrained",
        expect=1,
    )


def control_tests(
    big: Mapping[str, Any], small: Mapping[str, Any]
) -> tuple[PairedTest, PairedTest]:
    """The trained networks at N = 24 against the trained networks at N = 2, paired by seed
    (the same task draw's first boundaries and the same initial weights where shapes allow):
    |attractor dimension - 2| and the PC1+PC2 share, each N = 24 minus N = 2, two-sided."""
    n, m = big.get("n_tasks"), small.get("n_tasks")
    gap = paired_test(
        per_seed(big, "attractor_gap"),
        per_seed(small, "attractor_gap"),
        f"RNN, trained: |attractor dimension - {PLANE}| at N = {n} - at N = {m}",
    )
    share = paired_test(
        per_seed(big, "pc12_var"),
        per_seed(small, "pc12_var"),
        f"RNN, trained: PC1+PC2 variance share at N = {n} - at N = {m}",
    )
    return gap, share


def primary(summary: Sequence[Mapping[str, Any]]) -> PairedTest | None:
    """The attractor half at N = 24: each network's |attractor dimension - 2| untrained minus
    trained, paired within the network (the paper's claim is the 2-D attractor that the
    untrained network lacks; a raw dimension difference would read an untrained network with
    many slow modes as 'less' attractor). None without analysed N = 24 networks."""
    analysed(summary)
    row = _at(summary, N_TASKS)
    if row is None:
        return None
    test = attractor_test(row)
    return test if test.n else None


def _dims_text(row: Mapping[str, Any], prefix: str = "") -> str:
    """Mean attractor dimension over networks with its 95% t-interval."""
    dims = list(per_seed(row, f"{prefix}attractor_dim").values())
    dims = [d for d in dims if math.isfinite(d)]
    if not dims:
        return "-"
    lo, hi = t_interval(dims)
    ci = f" [95% CI {lo:.2f}, {hi:.2f}]" if math.isfinite(lo) else ""
    return f"{float(np.mean(dims)):.2f}{ci}"


def claims(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    """The page's verdicts from the summary rows' per-network numbers (``_by_seed``): per N,
    the two halves of the claim against the untrained networks; the N = 24 networks against
    the trained N = 2 control; the claim in plain words."""
    lines: list[str] = []
    rows = sorted(
        (r for r in summary if per_seed(r, "attractor_gap") or per_seed(r, "pc12_var")),
        key=lambda r: r.get("n_tasks") or 0,
    )
    for row in rows:
        dims = [_int(d) for d in per_seed(row, "attractor_dim").values()]
        dims0 = [_int(d) for d in per_seed(row, "untrained_attractor_dim").values()]
        k = len(per_seed(row, "pc12_var") or per_seed(row, "attractor_dim"))
        two, two0 = sum(d == PLANE for d in dims), sum(d == PLANE for d in dims0)
        pcs = an.pooled(list(per_seed(row, "pc12_var").values()))
        pcs0 = an.pooled(list(per_seed(row, "untrained_pc12_var").values()))
        lines += [
            f"### RNN, N = {row.get('n_tasks')} ({k} networks)",
            "",
            f"- Attractor dimension per network: trained {dims}, untrained {dims0} (0: no slow "
            f"point found). A 2-D attractor (two slow modes at the median fixed point) in {two} "
            f"of {k} trained networks and {two0} of {k} untrained; mean dimension trained "
            f"{_dims_text(row)}, untrained {_dims_text(row, 'untrained_')}.",
            f"- Attractor half (trained closer to a 2-D attractor than the same network "
            f"untrained): {call(attractor_test(row))}.",
            f"- PCA half: PC1 + PC2 hold {_pct(pcs)} of the mean trajectories' variance trained, "
            f"{_pct(pcs0)} untrained (median over networks); the share, trained - untrained "
            f"(fraction of variance): {call(pca_test(row))}.",
        ]
        if "n_fixed_points_per_network" in row:
            lines.append(
                f"- Fixed / slow points found per network: trained "
                f"{row['n_fixed_points_per_network']}, untrained "
                f"{row['untrained_n_fixed_points_per_network']}."
            )
        if "ood_r2" in row:
            lines.append(
                f"- Decoding beside it (from the sweep): OOD r^2 {fmt(row, 'ood_r2')}, untrained "
                f"{fmt(row, 'untrained_ood_r2')}, encoder-output average "
                f"{fmt(row, 'input_ood_r2')}."
            )
        lines.append("")
    big, small = _at(summary, N_TASKS), _at(summary, CONTROL_N)
    if big is not None and small is not None:
        gap, share = control_tests(big, small)
        lines += [
            f"### The trained N = {CONTROL_N} control",
            "",
            f"- A network trained on N = {CONTROL_N} tasks must report two decisions from the "
            "evidence it has summed, so it must hold two numbers in memory: a 2-D attractor is "
            "what any such network needs, not a sign of many tasks. Its networks share their "
            f"seeds with the N = {N_TASKS} ones and pair with them by seed.",
            f"- |attractor dimension - {PLANE}|, N = {N_TASKS} - N = {CONTROL_N}: {call(gap)} "
            f"(mean dimension at N = {CONTROL_N}: {_dims_text(small)}).",
            f"- PC1+PC2 share, N = {N_TASKS} - N = {CONTROL_N}: {call(share)}.",
            f"- What it means: where the N = {N_TASKS} networks are not distinguishable from the "
            f"N = {CONTROL_N} ones, the 2-D attractor and the two-PC geometry are what holding "
            "two numbers takes, and Fig. 3d alone does not show what many tasks add (that shows "
            f"in the OOD r^2 of Fig. 3a); where the N = {N_TASKS} networks are closer to a "
            "plane attractor, or more of their variance lies on two PCs, the geometry is many "
            "tasks' own.",
            "",
        ]
    if big is not None:
        lines += [
            "### In plain words",
            "",
            f"- The paper's claim (the trained RNN holds x* on a 2-D continuous attractor that "
            f"the untrained network lacks) at N = {N_TASKS}: the attractor half "
            f"{call(attractor_test(big))}; the PCA half {call(pca_test(big))}. It holds here "
            "only where both halves hold; and it is a finding about many tasks only where the "
            f"N = {N_TASKS} networks also differ from the trained N = {CONTROL_N} networks.",
            "",
        ]
    return lines


def _int(v: float) -> int | None:
    return int(v) if math.isfinite(v) else None


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
    """Fig. 3d, on the N = 24 networks. Top: one network's mean trajectories over the grid on
    PC1-PC2 (colour: x1 red, x2 blue; dots: last evidence step; x: fixed points; inset:
    variance per PC), trained and untrained, and the variance per PC of every network (with
    the trained N = 2 control). Bottom: |lambda - 1| of the slowest Jacobian modes at every
    fixed point, trained and untrained, and each network's attractor dimension beside the
    trained N = 2 network of the same seed."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(10, 6.2))
    nets, control = _nets_at(summary, analyses, N_TASKS), _nets_at(summary, analyses, CONTROL_N)
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
                pts[:, 0],
                pts[:, 1],
                marker="x",
                color="k",
                s=14,
                lw=0.8,
                zorder=4,
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
    for group, src, colour, off, ls, name in (
        (nets, "trained", "C0", -0.2, "-", f"trained, N = {N_TASKS}"),
        (nets, "untrained", "0.5", 0.0, "--", f"untrained, N = {N_TASKS}"),
        (control, "trained", "C1", 0.2, ":", f"trained, N = {CONTROL_N}"),
    ):
        vals = np.array([a[src]["evr"][:N_PCS] for a in group], dtype=float).reshape(-1, N_PCS)
        ks = np.arange(1, N_PCS + 1)
        for v in vals:
            ax.plot(ks + off, v, "o", color=colour, ms=3, alpha=0.7)
        if len(vals):
            ax.plot(
                ks + off,
                np.median(vals, axis=0),
                color=colour,
                lw=1.2,
                ls=ls,
                label=f"{name} (median, dots: networks)",
            )
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
                ax.plot(
                    np.arange(1, row.size + 1),
                    row,
                    "-",
                    color="C0" if src == "trained" else "0.5",
                    lw=0.6,
                    alpha=0.35,
                    marker=".",
                    ms=2,
                )
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
    small = {an.seed_key(a): a for a in control}
    for src, colour, off, name, group in (
        ("trained", "C0", -0.27, f"trained, N = {N_TASKS}", nets),
        ("untrained", "0.6", 0.0, f"untrained, N = {N_TASKS}", nets),
        (
            "trained",
            "C1",
            0.27,
            f"trained, N = {CONTROL_N} (same seed)",
            [small.get(an.seed_key(a)) for a in nets],
        ),
    ):
        dims = [dimension(a[src]) if a is not None else None for a in group]
        ax.bar(
            x + off, [d if d is not None else 0 for d in dims], width=0.26, color=colour, label=name
        )
        for xi, d in zip(x, dims):
            label = "-" if d is None else f"{d:g}"
            ax.text(xi + off, (d or 0) + 0.04, label, ha="center", va="bottom", fontsize=6)
    ax.axhline(PLANE, ls=":", color="k", lw=1, label="D = 2")
    ax.set_xticks(x)
    ax.set_xticklabels([f"seed {s}" for s in seeds])
    ax.set_ylabel("attractor dimension (slow modes)")
    ax.set_title("f  attractor dimension per network")
    ax.legend(fontsize=5.5)
    return finish(fig, path, caption)


def _nets_at(
    summary: Sequence[Mapping[str, Any]], analyses: Mapping[str, Mapping[str, Any]], n: int
) -> list[Mapping[str, Any]]:
    """The analyses of the networks trained at N = n."""
    return [a for r in summary if r.get("n_tasks") == n for a in an.analyses_of(r, analyses)]


def thresholds_text(analyses: Mapping[str, Mapping[str, Any]]) -> str:
    """The two thresholds the attractor dimension rests on, named, and whether every network's
    fixed-point result was computed with them."""
    used = {
        a[src].get("marginal_tol")
        for a in analyses.values()
        for src in ("trained", "untrained")
        if a[src].get("marginal_tol") is not None
    }
    agree = (
        "every network's fixed-point result carries this tolerance"
        if used <= {MARGINAL_TOL}
        else f"NOTE: the results carry tolerances {sorted(used)}, not all {MARGINAL_TOL:g}"
    )
    return (
        f"Thresholds: a Jacobian mode is slow when |lambda - 1| < {MARGINAL_TOL:g} "
        "(`probes.fixed_points.MARGINAL_TOL`, shared by the fixed-point search and the "
        "probe report), and "
        f"unstable when |lambda| > 1 + {MARGINAL_TOL:g}; a slow point is kept when |F(h) - h| "
        f"< {SLOW_SPEED:g} of the states' spread per step (`probes.report.SLOW_SPEED`); "
        f"{agree}."
    )


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    analyses = analysed(summary)
    png = plot(summary, analyses, out / "fig3d.png", caption)
    lines = ["## The claim against its controls", ""]
    if not analyses:
        return png, "\n".join([*lines, an.no_networks_note("fixed-point")])
    net_rows = _network_rows(summary, analyses)
    atomic_write_text(out / "fig3d_networks.csv", csv_text(net_rows), mkdir=True)
    lines += [
        "Per network (`fig3d_networks.csv`): variance of the mean trajectories per principal "
        "component, fixed / slow points found, slow modes (|lambda - 1| < tol, in the visited "
        "span) and unstable modes (|lambda| > 1 + tol) per fixed point (median over points), "
        "and the attractor dimension (blank: no fixed-point search).",
        "",
        thresholds_text(analyses),
        "",
        "| N | seed | network | PC1 | PC2 | PC3 | PC4 | PC5 | PC1+2 | fixed points | slow modes | "
        "unstable modes | attractor dim |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in net_rows:
        cells = [f"{r[f'pc{k + 1}_var']:.3f}" for k in range(N_PCS)]
        lines.append(
            f"| {r['n_tasks']} | {r['seed']} | {r['network']} | {' | '.join(cells)} | "
            f"{r['pc12_var']:.3f} | {r['n_fixed_points']} | {_num(r['slow_modes_median'])} | "
            f"{_num(r['unstable_modes_median'])} | {_num(r['attractor_dim'])} |"
        )
    lines.append("")
    lines += claims(summary)
    lines += [
        "Method: 8 x 8 grid of x* (cell centres), 16 trials per cell with evidence noise, "
        "averaged per cell; PCA of the mean trajectories from stimulus onset to the decision "
        "step; fixed points from 128 visited states under the no-evidence input (encoded f(0), "
        f"go channel on), kept when slower than {SLOW_SPEED:g} of the states' spread per step; "
        "slow modes counted on the Jacobian projected onto the visited states' principal axes "
        "(99% of their variance), so silent units do not count. The untrained network is the "
        "same architecture, init and seed before training (`agents.untrained`), recorded on "
        "the same trials. Every call is a paired test over networks (within a network for "
        f"trained - untrained, by seed for N = {N_TASKS} - N = {CONTROL_N}).",
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
        primary=primary,
    )
)
