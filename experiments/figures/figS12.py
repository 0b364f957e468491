"""Fig. S12: angles between the decoder axes of different latent dimensions against D, for the
RNN and the transformer, beside the same networks untrained and the encoder's output
(``mte reproduce figS12``).

Per network, the decision-step states of random trials (4096, or 32 per orthant at large D) are
regressed on x* by the axis decoder (``probes.linear.axis_weights``: a ridge on the raw centred
states, so near-silent units do not set the directions); the angle between the weight vectors
of latent dimensions i and j, for every pair i < j, is folded to [0, 90] degrees
(``probes.decoding.decoder_angles``: an axis and its negative are one axis). 90 degrees is the
angle of a code whose latent axes are orthogonal; the official code's Fig. S12 plots the
unfolded angle (60-120 degrees around 90), which folds onto the same distance from 90.

Every call is a paired test over networks on each network's mean angle over its pairs: trained
minus the same network untrained or minus its encoder output (paired within a network), and the
change from the smallest to the largest D (paired by seed). The primary contrast: the RNN at the
largest N, its angle at the largest D minus at the smallest (the claim: the axes stay near
orthogonal as D grows; a fall refutes it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.common.files import atomic_write_text
from multitask_evidence.experiments.sweep import Grid

from . import analyses as an
from .grids import per_arch
from .inference import PairedTest, call, paired_test
from .pages import condition_of, csv_text, describe, per_seed
from .plots import finish, pyplot
from .registry import Figure, register
from .stats import ARCH_LABELS, ARCH_ORDER, select

PARAMS = {"version": 1}
"""The analysis' settings: a cached analysis is reused only while they are unchanged."""


def grid(scale: str) -> Grid:
    """The RNN and the transformer over latent dimensions, random hyperplane boundaries (quick:
    N = 24; paper: Fig. 5b's four N, the networks the paper's S12 comes from)."""
    dims, ns = {
        "smoke": ((2, 3), (3,)),
        "quick": ((2, 4, 6), (24,)),
        "paper": ((2, 4, 6, 8, 10), (6, 12, 24, 48)),
    }[scale]
    axes = {"boundaries": ["random"], "latent_dim": list(dims), "n_tasks": list(ns)}
    return per_arch(("transformer", "rnn"), scale, axes, "figS12")


def analyse(run_dir: str) -> dict[str, Any]:
    """Folded pairwise decoder-axis angles (degrees) of one network, trained, untrained and the
    encoder's output."""
    from multitask_evidence.probes.decoding import axis_angles

    _, states, latent = an.decision_states(run_dir)
    return {src: [a for _, _, a in axis_angles(states[src], latent).pairs] for src in an.SOURCES}


def _add_columns(summary: Sequence[dict[str, Any]], analyses: Mapping[str, Any]) -> None:
    """Pooled angles (networks x pairs) and per-network mean angles into the summary rows, and
    the per-network mean angles by seed (``_by_seed``, for the paired tests)."""
    for row, nets, src, p in an.source_columns(summary, analyses):
        an.put_pooled(row, f"{p}pair_angle_deg", an.pooled([a for net in nets for a in net[src]]))
        row[f"{p}pair_angle_deg_per_network"] = [float(np.mean(net[src])) for net in nets]
        an.put_by_seed(
            row, f"{p}pair_angle_deg", an.by_seed(nets, lambda a, s=src: float(np.mean(a[s])))
        )


def analysed(summary: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every network's angles (cached in its run folder), with the summary rows' columns added;
    run folder -> analysis (empty for rows without run folders)."""
    analyses = an.per_network(summary, "figS12", PARAMS, analyse)
    _add_columns(summary, analyses)  # type: ignore[arg-type]
    return analyses


CONTROLS = {"untrained": "untrained", "input": "encoder output"}


def control_test(row: Mapping[str, Any], control: str) -> PairedTest:
    """Each network's mean pair angle (degrees) minus its control's ('untrained' or 'input'),
    paired within the network; the claim predicts trained above (closer to 90)."""
    return paired_test(
        per_seed(row, "pair_angle_deg"),
        per_seed(row, f"{control}_pair_angle_deg"),
        f"{describe(condition_of(row))}: decoder-axis angle (deg) trained - {CONTROLS[control]}",
        expect=1,
    )


def d_change_test(first: Mapping[str, Any], last: Mapping[str, Any]) -> PairedTest:
    """The trained networks' mean pair angle (degrees) at the last D minus at the first, paired
    by seed (the conditions share their seeds), two-sided."""
    where = {k: v for k, v in condition_of(first).items() if k != "latent_dim"}
    return paired_test(
        per_seed(last, "pair_angle_deg"),
        per_seed(first, "pair_angle_deg"),
        f"{describe(where)}: decoder-axis angle (deg) at D = {last['latent_dim']} - at D = "
        f"{first['latent_dim']}",
        words=("rises", "falls"),
    )


def _rows_over_d(
    summary: Sequence[Mapping[str, Any]], arch: str, n: Any
) -> list[Mapping[str, Any]]:
    """One architecture's conditions at N = n with per-network angles, sorted by D."""
    rows = [r for r in select(summary, arch=arch, n_tasks=n) if per_seed(r, "pair_angle_deg")]
    return sorted(rows, key=lambda r: r.get("latent_dim") or 2)


def primary(summary: Sequence[Mapping[str, Any]]) -> PairedTest | None:
    """The RNN at its largest N: each network's mean decoder-axis angle at the largest D minus
    at the smallest, paired by seed, two-sided (the claim: the axes stay near orthogonal as D
    grows, so a fall refutes it). None with fewer than two analysed D."""
    analysed(summary)
    ns = sorted({r["n_tasks"] for r in select(summary, arch="rnn")})
    for n in reversed(ns):
        rows = _rows_over_d(summary, "rnn", n)
        if len(rows) > 1:
            test = d_change_test(rows[0], rows[-1])
            return test if test.n else None
    return None


def plot(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """Fig. S12: pairwise decoder-axis angle (median [IQR] over networks x pairs) against D, a
    panel per architecture, a curve per N, with the untrained networks (dashed), the encoder
    output (grey) and 90 degrees."""
    plt = pyplot()
    archs = [a for a in ARCH_ORDER if select(summary, arch=a)] or [None]
    fig, axes = plt.subplots(1, len(archs), figsize=(3.6 * len(archs), 3.1), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        rows_a = select(summary, arch=arch) if arch else list(summary)
        ns = sorted({r["n_tasks"] for r in rows_a})
        for i, n in enumerate(ns):
            rows = sorted(select(rows_a, n_tasks=n), key=lambda r: r["latent_dim"])
            for m, kw, label in (
                ("pair_angle_deg", {"color": f"C{i}"}, f"N={n}"),
                (
                    "untrained_pair_angle_deg",
                    {"color": f"C{i}", "ls": "--", "alpha": 0.6},
                    f"N={n}, untrained",
                ),
                (
                    "input_pair_angle_deg",
                    {"color": "0.55", "ls": "-."} if i == 0 else None,
                    an.SOURCE_LABELS["input"],
                ),
            ):
                if kw is None:
                    continue  # the encoder output depends on the task draw, not on the network
                ok = [r for r in rows if isinstance(r.get(m), float) and math.isfinite(r[m])]
                if not ok:
                    continue
                x = np.array([r["latent_dim"] for r in ok], dtype=float)
                y = np.array([r[m] for r in ok])
                err = [y - [r[f"{m}_q25"] for r in ok], np.array([r[f"{m}_q75"] for r in ok]) - y]
                ax.errorbar(x, y, yerr=err, marker="o", capsize=2, label=label, **kw)
        ax.axhline(90, ls=":", color="k", lw=1, label="orthogonal axes (90)")
        # the paper's range (60-120 unfolded: 60-90 folded), widened to every quartile shown
        lows = [
            r[f"{p}pair_angle_deg_q25"]
            for r in rows_a
            for p in ("", "untrained_", "input_")
            if isinstance(r.get(f"{p}pair_angle_deg_q25"), float)
            and math.isfinite(r[f"{p}pair_angle_deg_q25"])
        ]
        ax.set_ylim(max(0.0, min([60.0, *lows]) - 3), 92)
        ax.set_xticks(sorted({r["latent_dim"] for r in rows_a}))
        ax.set_xlabel("latent dimension D")
        ax.set_ylabel("angle between decoder axes (deg, folded)")
        ax.set_title(
            f"Fig. S12  {ARCH_LABELS.get(arch, arch) if arch else ''}: decoder angles vs D"
        )
        ax.legend(fontsize=5.5, loc="lower left")
    return finish(fig, path, caption)


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    analyses = analysed(summary)
    png = plot(summary, out / "figS12.png", caption)
    lines = ["## The claim against its controls", ""]
    if not analyses:
        return png, "\n".join([*lines, an.no_networks_note("decoder-angle")])
    net_rows = [
        {
            "seed": a.get("seed"),
            "source": src,
            "pairs": len(a[src]),
            "mean_angle_deg": float(np.mean(a[src])),
            "min_angle_deg": float(np.min(a[src])),
            "run_dir": d,
        }
        for d, a in analyses.items()
        for src in an.SOURCES
    ]
    atomic_write_text(out / "figS12_networks.csv", csv_text(net_rows), mkdir=True)
    lines += [
        "Angles between the decoder axes of every pair of latent dimensions, folded to "
        "[0, 90] degrees: median [IQR] over networks x pairs; the paired differences are over "
        "each network's mean angle: the mean difference over networks with its 95% t-interval "
        "and exact sign-flip p. Per network: `figS12_networks.csv`.",
        "",
        "| arch | N | D | networks | pairs | trained | untrained | encoder output | trained - "
        "untrained (per network, deg) | 90 - trained |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        if "pair_angle_deg_per_network" not in row:
            continue
        g = control_test(row, "untrained")
        lo, hi = g.interval
        diff = f"{g.mean:+.1f} [95% CI {lo:+.1f}, {hi:+.1f}]" if math.isfinite(lo) else "-"
        lines.append(
            f"| {row['arch']} | {row['n_tasks']} | {row['latent_dim']} | "
            f"{len(row['pair_angle_deg_per_network'])} | {row['pair_angle_deg_n']} | "
            f"{an.row_quartiles(row, 'pair_angle_deg', 1)} | "
            f"{an.row_quartiles(row, 'untrained_pair_angle_deg', 1)} | "
            f"{an.row_quartiles(row, 'input_pair_angle_deg', 1)} | {diff} | "
            f"{90 - row['pair_angle_deg']:.1f} |"
        )
    lines += ["", *claims(summary)]
    return png, "\n".join(lines)


def claims(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    """The page's verdicts from the rows' per-network angles (``_by_seed``): per architecture
    and N, every D against its controls and the change from the smallest to the largest D."""
    lines = ["### In plain words", ""]
    for arch in ARCH_ORDER:
        for n in sorted({r["n_tasks"] for r in select(summary, arch=arch)}):
            rows = _rows_over_d(summary, arch, n)
            if not rows:
                continue
            name = ARCH_LABELS.get(arch, arch)
            parts = [
                f"D = {r['latent_dim']}: {_deg(r)} deg; above untrained: "
                f"{call(control_test(r, 'untrained'))}; above the encoder output: "
                f"{call(control_test(r, 'input'))}"
                for r in rows
            ]
            text = f"- {name}, N = {n}: " + "; ".join(parts) + "."
            if len(rows) > 1:
                text += (
                    f" From D = {rows[0]['latent_dim']} to {rows[-1]['latent_dim']}, the angle: "
                    f"{call(d_change_test(rows[0], rows[-1]))}."
                )
            lines.append(text)
    near = [r for r in summary if r.get("pair_angle_deg_n") and 90 - r["pair_angle_deg"] <= 15]
    done = [r for r in summary if r.get("pair_angle_deg_n")]
    if done:
        lines.append(
            f"- In {len(near)} of {len(done)} conditions the trained networks' median angle is "
            "within 15 degrees of 90; whether that is training's shows only where it is above "
            "both the untrained network and the encoder output."
        )
    lines.append(
        "- Paper's claim (Fig. S12, with Fig. 5b): the decoder axes stay near orthogonal (close "
        "to 90 degrees) as D grows when N is large enough. It fails where the angle falls with "
        "D (the primary contrast: the RNN at its largest N); an angle counts as training's only "
        "where it beats the same network untrained; the encoder output's angle is what a "
        "linear read-out of the input already has."
    )
    return lines


def _deg(row: Mapping[str, Any]) -> str:
    v = row.get("pair_angle_deg")
    if isinstance(v, (int, float)) and math.isfinite(v):
        return f"{v:.1f}"
    vals = list(per_seed(row, "pair_angle_deg").values())
    return f"{float(np.median(vals)):.1f}" if vals else "-"


FIGURE = register(
    Figure(
        "figS12",
        "Fig. S12: angles between the decoder axes against the latent dimension D",
        "The decoder axes of different latent dimensions stay close to orthogonal (90 degrees) "
        "as D grows, for the RNN and the transformer.",
        ("arch", "n_tasks", "latent_dim"),
        grid,
        render,
        help="decoder angles vs latent dimension",
        statistic="median and IQR over networks x pairs of latent dimensions",
        primary=primary,
    )
)
