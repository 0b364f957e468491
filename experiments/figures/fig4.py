"""Fig. 4: steady-state unit responses over an 8 x 8 latent grid, each unit's correlation with
x1 and x2, and lifetime sparseness, for the RNN and the transformer, beside the same networks
untrained and the encoder's output (``mte reproduce fig4``).

Each network is run on an 8 x 8 grid of x* (16 noisy trials per cell); a unit's *map* is its
mean decision-step state per cell (``probes.sparseness.tuning_maps``). Per unit: the correlation
of its map with x1 and with x2, and the lifetime sparseness of its map over the 64 cells,
in two definitions, both on the page and in the tables:

- *the paper's definition* (``probes.sparseness.paper_lifetime_sparseness``): Vinje & Gallant on
  the raw responses, every unit counted, a silent unit at 1, the mean over units: one number per
  network, as the official code computes it;
- *this package's* (``probes.sparseness.lifetime_sparseness``): on the response above the
  unit's minimum over the grid (``baseline='min'``), so that signed states (the transformer's
  residual stream, the encoder's output) and ReLU rates are measured alike, silent units left
  out, the median over units per network (and the units' distribution, pooled).

A unit's *tuning direction* is atan2(|r(x2)|, |r(x1)|) in [0, 90] degrees: 0 or 90 is a unit
that follows one latent only (an axis-aligned, unit-level disentangled code), 45 a unit that
mixes both equally.

The primary contrast: the RNN's paper's-definition sparseness, trained minus the same network
untrained, paired within a network (the paper's claim: trained units respond sparsely).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.common.files import atomic_write_text
from multitask_evidence.experiments.sweep import Grid
from multitask_evidence.probes.sparseness import SILENT_SPARSENESS

from . import analyses as an
from .grids import per_arch
from .inference import PairedTest, call, paired_test
from .pages import condition_of, csv_text, describe, per_seed
from .plots import finish, pyplot
from .registry import Figure, register
from .stats import ARCH_LABELS, ARCH_ORDER, fmt, select

GRID = 8
REPEATS = 16
N_TASKS = 24
N_EXAMPLE_UNITS = 6
TUNED = 0.3
"""|r| above which a unit counts as following a latent."""
AXIS_BAND = 15.0
"""A unit within this many degrees of an axis counts as axis-aligned (a third of the units when
directions are uniform)."""
SOURCE_COLOURS = {"trained": "C0", "untrained": "0.55", "input": "C2"}
PARAMS = {"grid": GRID, "repeats": REPEATS, "units": N_EXAMPLE_UNITS, "version": 2}
"""The analysis' settings (version 2: with the paper's sparseness): a cached analysis is reused
only while they are unchanged."""


def grid(scale: str) -> Grid:
    """The RNN and the transformer at N = 24, D = 2."""
    return per_arch(("transformer", "rnn"), scale, {"n_tasks": [N_TASKS]}, "fig4")


def unit_stats(states: np.ndarray, latent: np.ndarray) -> dict[str, Any]:
    """Per-unit tuning of states [n, H] recorded on a latent grid [n, 2]: correlations [H, 2],
    this package's sparseness of the maps per unit (above the minimum, and from zero where the
    states are non-negative; None for silent units), the paper's definition (mean over the H
    units of the raw maps, silent units at 1) with its count of silent units, active fraction of
    trials (> 0) [H], and the maps [H, G, G]."""
    from multitask_evidence.probes.sparseness import (
        active_fraction,
        lifetime_sparseness,
        paper_lifetime_sparseness,
        tuning_maps,
    )

    tm = tuning_maps(states, latent, GRID)
    cells = tm.maps.reshape(tm.maps.shape[0], -1).T  # [cells, H]
    rates = bool((states >= 0).all())
    paper = paper_lifetime_sparseness(cells)
    return {
        "corr": tm.corr,
        "sparseness": lifetime_sparseness(cells, baseline="min").per_unit,
        "sparseness_rates": lifetime_sparseness(cells).per_unit if rates else None,
        "paper_sparseness": paper.mean,
        "silent_units": paper.n_silent,
        "signed": not rates,
        "active": active_fraction(states),
        "maps": tm.maps,
    }


def analyse(run_dir: str) -> dict[str, Any]:
    """One network's tuning over the grid: trained, untrained and the encoder's output."""
    spec, recs, latent = an.grid_states(run_dir, GRID, REPEATS)
    out: dict[str, Any] = {}
    for src in an.SOURCES:
        states = recs[src] if src == "input" else recs[src].at()
        st = unit_stats(states, latent)
        spread = st["maps"].reshape(st["maps"].shape[0], -1).std(axis=1)
        top = np.argsort(-spread)[:N_EXAMPLE_UNITS]
        st["example_units"] = top
        st["maps"] = st["maps"][top]
        out[src] = st
    return out


def tuning_direction(corr: np.ndarray) -> np.ndarray:
    """atan2(|r(x2)|, |r(x1)|) in degrees [0, 90] per unit (NaN for units with no correlation)."""
    c = np.abs(np.asarray(corr, dtype=float))
    with np.errstate(invalid="ignore"):
        return np.degrees(np.arctan2(c[:, 1], c[:, 0]))


def _per_source(nets: Sequence[Mapping[str, Any]], src: str) -> dict[str, Any]:
    """Pooled unit statistics of one source over a condition's networks, and per network (in
    the order of ``nets``): this package's sparseness (median over active units), the paper's
    definition (mean over all units, silent at 1), silent units, tuned and axis-aligned
    fractions."""
    sp, sp_rates, act, tuned, aligned, per_net, paper, silent = [], [], [], [], [], [], [], []
    for a in nets:
        r = a[src]
        s = [v for v in r["sparseness"] if v is not None]
        sp += s
        sp_rates += [v for v in (r["sparseness_rates"] or []) if v is not None]
        act.append(float(np.mean(r["active"])))
        corr = np.array(r["corr"], dtype=float)
        strength = np.sqrt(np.nansum(corr**2, axis=1))
        ok = strength > TUNED
        d = tuning_direction(corr)[ok]
        tuned.append(float(ok.mean()))
        aligned.append(
            float(np.mean((d < AXIS_BAND) | (d > 90 - AXIS_BAND))) if ok.any() else math.nan
        )
        per_net.append(float(np.median(s)) if s else math.nan)
        paper.append(_float(r.get("paper_sparseness")))
        silent.append(_float(r.get("silent_units")))
    return {
        "sparseness": an.pooled(sp),
        "sparseness_rates": an.pooled(sp_rates),
        "paper_sparseness": an.pooled(paper),
        "silent_units": an.pooled(silent),
        "active": an.pooled(act),
        "sparseness_per_network": per_net,
        "paper_sparseness_per_network": paper,
        "tuned_fraction_per_network": tuned,
        "axis_aligned_per_network": aligned,
    }


def _float(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _add_columns(summary: Sequence[dict[str, Any]], analyses: Mapping[str, Any]) -> None:
    """Per-condition unit statistics of every source, into the summary rows (CSV columns), and
    each network's sparseness in both definitions by seed (``_by_seed``, for the paired
    tests)."""
    for row, nets, src, p in an.source_columns(summary, analyses):
        s = _per_source(nets, src)
        an.put_pooled(row, f"{p}sparseness", s["sparseness"], n=False)
        row[f"{p}sparseness_units"] = s["sparseness"]["n"]
        row[f"{p}sparseness_rates"] = s["sparseness_rates"]["median"]
        an.put_pooled(row, f"{p}paper_sparseness", s["paper_sparseness"], n=False)
        row[f"{p}silent_units"] = s["silent_units"]["median"]
        row[f"{p}active_fraction"] = s["active"]["median"]
        row[f"{p}signed_states"] = any(bool(a[src].get("signed")) for a in nets)
        for k in ("sparseness", "paper_sparseness", "tuned_fraction", "axis_aligned"):
            row[f"{p}{k}_per_network"] = s[f"{k}_per_network"]
        keys = [an.seed_key(a) for a in nets]
        for k in ("sparseness", "paper_sparseness"):
            an.put_by_seed(row, f"{p}{k}", dict(zip(keys, s[f"{k}_per_network"])))


def analysed(summary: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every network's analysis (cached in its run folder), with the summary rows' columns
    added; run folder -> analysis (empty for rows without run folders)."""
    analyses = an.per_network(summary, "fig4", PARAMS, analyse)
    _add_columns(summary, analyses)  # type: ignore[arg-type]
    return analyses


DEFINITIONS = {
    "paper_sparseness": "paper's definition",
    "sparseness": "this package's",
}
"""The two sparseness measures a page reports, as each call names them."""
CONTROLS = {"untrained": "untrained", "input": "encoder output"}


def sparseness_test(row: Mapping[str, Any], metric: str, control: str) -> PairedTest:
    """Lifetime sparseness (``metric``: 'paper_sparseness' or 'sparseness', see
    :data:`DEFINITIONS`) of each trained network minus its control ('untrained' or 'input'),
    paired within the network; the claim predicts trained above (sparser)."""
    return paired_test(
        per_seed(row, metric),
        per_seed(row, f"{control}_{metric}"),
        f"{describe(condition_of(row))}: lifetime sparseness ({DEFINITIONS[metric]}) trained - "
        f"{CONTROLS[control]}",
        expect=1,
    )


def primary(summary: Sequence[Mapping[str, Any]]) -> PairedTest | None:
    """The RNN at N = 24: lifetime sparseness in the paper's definition (mean over units, silent
    units at 1), trained minus the same network untrained, paired within a network (the paper's
    claim: trained units respond sparsely). None without analysed RNNs."""
    analysed(summary)
    for row in summary:
        if row.get("arch") == "rnn" and per_seed(row, "paper_sparseness"):
            test = sparseness_test(row, "paper_sparseness", "untrained")
            return test if test.n else None
    return None


def plot(
    summary: Sequence[Mapping[str, Any]],
    analyses: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    caption: str = "",
) -> Path:
    """Fig. 4. Per architecture (a row each): the example network's most variable units' maps
    (trained), corr(x1) against corr(x2) per unit for every source, and the distribution of the
    units' lifetime sparseness per source."""
    plt = pyplot()
    archs = [a for a in ARCH_ORDER if select(summary, arch=a)]
    rows = max(1, len(archs))
    fig = plt.figure(figsize=(10, 3.3 * rows))
    outer = fig.add_gridspec(rows, 3, width_ratios=(1.35, 1, 1))
    for i, arch in enumerate(archs):
        nets = [
            analyses[n["run_dir"]]
            for r in select(summary, arch=arch)
            for n in an.networks_of(r)
            if n["run_dir"] in analyses
        ]
        name = ARCH_LABELS.get(arch, arch)
        inner = outer[i, 0].subgridspec(3, 3, wspace=0.08, hspace=0.5, height_ratios=(0.05, 1, 1))
        head = fig.add_subplot(inner[0, :])  # carries the block's title only
        head.axis("off")
        head.text(
            0.5,
            1.0,
            f"{'ad'[i] if i < 2 else ''}  {name}, trained: steady-state maps (8 x 8 grid of x*)",
            ha="center",
            va="bottom",
            fontsize=8.5,
        )
        example = min(nets, key=lambda a: a.get("seed") or 0) if nets else None
        for j in range(N_EXAMPLE_UNITS):
            ax = fig.add_subplot(inner[1 + j // 3, j % 3])
            ax.set_xticks([])
            ax.set_yticks([])
            if example is None or j >= len(example["trained"]["maps"]):
                continue
            r = example["trained"]
            u = int(r["example_units"][j])
            ax.imshow(
                np.asarray(r["maps"][j]).T,
                origin="lower",
                extent=(-0.5, 0.5, -0.5, 0.5),
                cmap="viridis",
            )
            c = r["corr"][u]
            ax.set_title(f"unit {u}\nr1={_c(c[0])} r2={_c(c[1])}", fontsize=5.5, pad=1.5)
            if j == 0:
                ax.set_ylabel("x2 ->", fontsize=6)
            if j == 3:
                ax.set_xlabel("x1 ->", fontsize=6)
        ax = fig.add_subplot(outer[i, 1])
        for src in ("input", "untrained", "trained"):
            corr = np.concatenate(
                [np.asarray(a[src]["corr"], dtype=float) for a in nets] or [np.zeros((0, 2))]
            )
            ax.scatter(
                corr[:, 0],
                corr[:, 1],
                s=9 if src == "trained" else 4,
                alpha=0.8 if src == "trained" else 0.5,
                color=SOURCE_COLOURS[src],
                label=an.SOURCE_LABELS[src],
                lw=0,
            )
        th = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(th), np.sin(th), color="0.8", lw=0.6)
        ax.set_aspect("equal")
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="0.85", lw=0.5)
        ax.axvline(0, color="0.85", lw=0.5)
        ax.set_xlabel("corr(unit, x1)")
        ax.set_ylabel("corr(unit, x2)")
        ax.set_title(f"{'be'[i] if i < 2 else ''}  {name}: unit correlations with x1, x2")
        if nets:
            ax.legend(fontsize=5.5, loc="lower left", markerscale=2)
        ax = fig.add_subplot(outer[i, 2])
        labels = [an.SOURCE_LABELS[src].replace(" (", "\n(") for src in an.SOURCES]
        present = [
            (k + 1, v, src)
            for k, src in enumerate(an.SOURCES)
            if len(v := [x for a in nets for x in a[src]["sparseness"] if x is not None]) > 1
        ]
        if present:
            parts = ax.violinplot(
                [v for _, v, _ in present],
                positions=[k for k, _, _ in present],
                showmedians=True,
                showextrema=False,
            )
            for body, (_, _, src) in zip(parts["bodies"], present):
                body.set_facecolor(SOURCE_COLOURS[src])
                body.set_alpha(0.5)
        paper = [
            (k + 1 + off, a[src].get("paper_sparseness"))
            for k, src in enumerate(an.SOURCES)
            for off, a in zip(np.linspace(-0.15, 0.15, max(len(nets), 1)), nets)
            if isinstance(a[src].get("paper_sparseness"), (int, float))
        ]
        if paper:
            ax.plot(
                [x for x, _ in paper],
                [y for _, y in paper],
                "x",
                color="k",
                ms=3.5,
                lw=0.8,
                label="paper's definition, per network",
            )
            ax.legend(fontsize=5, loc="upper right")
        ax.set_xticks(range(1, len(an.SOURCES) + 1))
        ax.set_xticklabels(labels, fontsize=6)
        # the paper's formula on signed states can pass 1 (up to m / (m - 1))
        top = max([1.0, *[y for _, y in paper]])
        ax.set_ylim(0, top + 0.02)
        ax.set_ylabel("lifetime sparseness over the grid\n(violins: this package's, per unit)")
        ax.set_title(
            f"{'cf'[i] if i < 2 else ''}  {name.replace(' (GPT)', '')}: sparseness per unit"
        )
    return finish(fig, path, caption)


def _c(v: Any) -> str:
    return f"{v:+.2f}" if isinstance(v, (int, float)) and math.isfinite(v) else "nan"


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    analyses = analysed(summary)
    png = plot(summary, analyses, out / "fig4.png", caption)
    lines = ["## The claim against its controls", ""]
    if not analyses:
        return png, "\n".join([*lines, an.no_networks_note("tuning")])
    net_rows = []
    for row in summary:
        for a in an.analyses_of(row, analyses):
            for src in an.SOURCES:
                s = _per_source([a], src)
                net_rows.append(
                    {
                        "arch": row.get("arch"),
                        "seed": a.get("seed"),
                        "source": src,
                        "units": s["sparseness"]["n"],
                        "sparseness_paper": s["paper_sparseness_per_network"][0],
                        "silent_units": s["silent_units"]["median"],
                        "sparseness_median": s["sparseness"]["median"],
                        "sparseness_rates_median": s["sparseness_rates"]["median"],
                        "active_fraction": s["active"]["median"],
                        "tuned_fraction": s["tuned_fraction_per_network"][0],
                        "axis_aligned_fraction": s["axis_aligned_per_network"][0],
                        "run_dir": a["run_dir"],
                    }
                )
    atomic_write_text(out / "fig4_networks.csv", csv_text(net_rows), mkdir=True)
    lines += [
        "Lifetime sparseness over the 64 grid cells (0 = same response everywhere, 1 = one cell "
        "only), in two definitions. **Paper's definition**: Vinje & Gallant on each unit's raw "
        "map, every unit counted, a silent unit (zero response everywhere) at "
        f"{SILENT_SPARSENESS:g}, the mean over units: one number per network, median [IQR] over "
        "networks (on signed states it is the formula's value, up to 64/63, not a sparseness). "
        "**This package's**: on each unit's response above its minimum over the grid, silent "
        "units left out, median [IQR] over units x networks (calls: the median over units per "
        "network). 'Tuned' units have sqrt(r1^2 + r2^2) > "
        f"{TUNED}; 'axis-aligned' tuned units lie within {AXIS_BAND:g} degrees of the x1 or x2 "
        "axis (a third of them would, were directions uniform). Per network: "
        "`fig4_networks.csv`.",
        "",
        "| arch | source | networks | units | sparseness, paper's definition (mean over units, "
        "silent = 1) | silent units per network | sparseness, this package's (above the "
        "minimum) | this package's from zero (rates) | fraction of unit x trial states > 0 "
        "(median over networks) | tuned units | axis-aligned tuned units |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        nets = an.analyses_of(row, analyses)
        for src in an.SOURCES:
            s = _per_source(nets, src)
            lines.append(
                f"| {row['arch']} | {an.SOURCE_LABELS[src]} | {len(nets)} | {s['sparseness']['n']} "
                f"| {an.quartiles(s['paper_sparseness'])} | {an.quartiles(s['silent_units'], 0)} "
                f"| {an.quartiles(s['sparseness'])} | {an.quartiles(s['sparseness_rates'])} | "
                f"{an.quartiles(s['active'])} | {_frac(s['tuned_fraction_per_network'])} | "
                f"{_frac(s['axis_aligned_per_network'])} |"
            )
    lines += ["", *claims(summary)]
    return png, "\n".join(lines)


def claims(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    """The page's verdicts from the rows' per-network sparseness (``_by_seed``): per
    architecture, trained against the same network untrained and against the encoder's output,
    in both definitions; the claim in plain words."""
    lines = ["### In plain words", ""]
    for row in summary:
        if not per_seed(row, "paper_sparseness") and not per_seed(row, "sparseness"):
            continue
        name = ARCH_LABELS.get(row["arch"], row["arch"])
        al = an.pooled(row.get("axis_aligned_per_network") or [])["median"]
        text = (
            f"- {name}: trained units sparser than the same network untrained, paper's "
            f"definition: {call(sparseness_test(row, 'paper_sparseness', 'untrained'))}; this "
            f"package's: {call(sparseness_test(row, 'sparseness', 'untrained'))}. Sparser than "
            "the encoder's output units, paper's definition: "
            f"{call(sparseness_test(row, 'paper_sparseness', 'input'))}; this package's: "
            f"{call(sparseness_test(row, 'sparseness', 'input'))}."
        )
        if row.get("signed_states"):
            text += (
                " Its states are signed: the paper's definition there is the formula on raw "
                "states, not how few cells drive a unit; this package's is the measure to read."
            )
        if math.isfinite(al):
            text += (
                f" Of its tuned units {_pct(al)} are axis-aligned (uniform directions: 33%): "
                + (
                    "the units mix x1 and x2, the code is disentangled at the population level, "
                    "not unit by unit."
                    if al < 0.5
                    else "most units follow a single latent."
                )
            )
        if "ood_r2" in row:
            text += (
                f" Decoding beside it (from the sweep): OOD r^2 {fmt(row, 'ood_r2')}, untrained "
                f"{fmt(row, 'untrained_ood_r2')}."
            )
        lines.append(text)
    lines += [
        "- The two definitions differ where units are silent (the paper's counts a silent unit "
        f"as {SILENT_SPARSENESS:g}, maximally sparse; this package's leaves it out) and on signed "
        "states (this package's measures above each unit's minimum), and in the summary (mean "
        "against median over units). The official code's helper is not in its published "
        "`util.py`, so its treatment of silent units could not be checked; "
        f"{SILENT_SPARSENESS:g} is this package's choice (`probes.sparseness.SILENT_SPARSENESS`).",
        "- Paper's claim (Fig. 4): trained units respond sparsely over the latent grid and "
        "correlate with mixtures of x1 and x2. Sparser counts only where the paired test over "
        "networks holds; the primary contrast is the RNN's, in the paper's definition.",
    ]
    return lines


def _frac(values: Sequence[float]) -> str:
    p = an.pooled(values)
    return (
        "-"
        if not p["n"]
        else f"{100 * p['median']:.0f}% (per network: "
        + ", ".join(f"{100 * v:.0f}%" for v in values if math.isfinite(v))
        + ")"
    )


def _pct(v: float) -> str:
    return f"{100 * v:.0f}%" if math.isfinite(v) else "-"


FIGURE = register(
    Figure(
        "fig4",
        "Fig. 4: unit responses over the latent grid: tuning and sparseness",
        "Trained units respond sparsely over the latent grid and correlate with mixtures of "
        "x1 and x2 (disentangled at the population level, not unit by unit).",
        ("arch", "n_tasks"),
        grid,
        render,
        help="unit tuning maps and sparseness",
        statistic="per unit of every network; medians over units and networks",
        primary=primary,
    )
)
