"""Fig. 3: OOD r^2 against the number of tasks N, per architecture, with the decoder-axis
angle (``mte reproduce fig3``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from multitask_evidence.experiments.sweep import Grid, union

from .grids import PAPER_N, per_arch
from .inference import PairedTest, call
from .pages import (
    against_controls,
    change_test,
    control_test,
    estimators_section,
    geometry_calls,
    trend,
    versus,
)
from .plots import draw_bounds, draw_controls, errorbar, finish, line, pyplot, ylim
from .registry import Figure, register
from .stats import ARCH_LABELS, ARCH_ORDER, fmt, select

FIG3_QUICK_FULL = ("transformer", "rnn")
"""Architectures of fig3 quick at every N (panels a and c are the RNN and the transformer)."""
FIG3_QUICK_ENDS = ("lstm", "rnn_nonleaky")
"""Architectures of fig3 quick at the smallest and largest N only (panel b's other lines), so
that the figure fits 15 minutes on 2 cores with 3 networks per condition."""


def grid(scale: str) -> Grid:
    """RNNs and the transformer at every N (quick adds the LSTM and the non-leaky RNN at
    the two ends of N; paper: four architectures at every N)."""
    if scale == "smoke":
        return per_arch(("transformer", "rnn"), scale, {"n_tasks": (2, 24)}, "fig3")
    if scale == "paper":
        # the slowest first (transformer), so that the workers finish together
        return per_arch(
            ("transformer", "rnn", "rnn_nonleaky", "lstm"), scale, {"n_tasks": PAPER_N}, "fig3"
        )
    full = per_arch(FIG3_QUICK_FULL, scale, {"n_tasks": PAPER_N}, "fig3")
    ends = per_arch(FIG3_QUICK_ENDS, scale, {"n_tasks": (PAPER_N[0], PAPER_N[-1])}, "fig3")
    return union([full, ends], name="fig3")


def plot(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """Fig. 3a-c: r^2 against N (log x). a: RNN in-distribution and OOD with its controls;
    b: OOD per architecture, each with its untrained control (dashed); c: decoder-axis angle
    (degrees, folded to [0, 90], dashed 90) per architecture."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    archs = [a for a in ARCH_ORDER if select(summary, arch=a)]
    first = "rnn" if "rnn" in archs else (archs[0] if archs else None)
    ax = axes[0]
    if first:
        rows = select(summary, arch=first)
        errorbar(ax, rows, "n_tasks", "id_r2", label="in-distribution", color="0.3")
        errorbar(ax, rows, "n_tasks", "ood_r2", label="OOD (held-out quadrant)", color="C0")
        draw_controls(ax, rows, "n_tasks", color="C0", label="OOD, ")
        draw_bounds(ax, rows)
        ylim(ax, 0.5, rows, ("ood_r2_q25", "id_r2_q25", "untrained_ood_r2"))
        ax.set_title(f"a  {ARCH_LABELS.get(first, first)}: generalisation vs tasks")
    ax = axes[1]
    for i, a in enumerate(archs):
        rows = select(summary, arch=a)
        errorbar(ax, rows, "n_tasks", "ood_r2", label=ARCH_LABELS.get(a, a), color=f"C{i}")
        draw_controls(
            ax, rows, "n_tasks", color=f"C{i}", label=f"{ARCH_LABELS.get(a, a)}, ", inputs=False
        )
    draw_controls(ax, summary, "n_tasks", untrained=False)
    draw_bounds(ax, summary)
    ylim(ax, 0.5, summary, ("ood_r2_q25", "untrained_ood_r2"))
    ax.set_title("b  OOD $r^2$ per architecture (dashed: untrained)")
    ax = axes[2]
    for i, a in enumerate(archs):
        rows = select(summary, arch=a)
        errorbar(ax, rows, "n_tasks", "angle_deg", label=ARCH_LABELS.get(a, a), color=f"C{i}")
        line(ax, rows, "n_tasks", "untrained_angle_deg", color=f"C{i}", ls="--", alpha=0.6)
    ax.axhline(90.0, ls="--", color="k", lw=1)
    ax.set_ylim(0, 95)
    ax.set_ylabel("angle between decoder axes (deg, folded)")
    ax.set_title("c  decoder axes angle (dashed: untrained)")
    for ax in axes:
        ax.set_xscale("log")
        ns = sorted({r["n_tasks"] for r in summary})
        if ns:
            ax.set_xticks(ns)
            ax.set_xticklabels([str(n) for n in ns])
            ax.minorticks_off()
        ax.set_xlabel("number of tasks N")
        ax.legend(fontsize=5.5)
    axes[0].set_ylabel("$r^2$")
    axes[1].set_ylabel("OOD $r^2$")
    return finish(fig, path, caption)


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    png = plot(summary, out / "fig3.png", caption)
    lines = ["## The claim against its controls", ""]
    verdicts = []
    for a in ARCH_ORDER:
        rows = sorted(select(summary, arch=a), key=lambda r: r["n_tasks"])
        if not rows:
            continue
        name = ARCH_LABELS[a]
        lines.append(f"### {name}")
        lines.append("")
        for r in (rows[0], rows[-1]) if len(rows) > 1 else rows:
            lines.append("- " + against_controls(r, f"N = {r['n_tasks']}"))
        lines.append(f"- {trend(summary, 'n_tasks', {'arch': a})}.")
        lines.append(
            f"- Decoder-axis angle (folded to [0, 90]; 90 = orthogonal) at N = "
            f"{rows[-1]['n_tasks']}: {fmt(rows[-1], 'angle_deg')} deg, untrained "
            f"{fmt(rows[-1], 'untrained_angle_deg')} deg."
        )
        lines += geometry_calls(rows[-1], f"N = {rows[-1]['n_tasks']}")
        lines.append("")
        if len(rows) > 1:
            verdicts.append((name, rows[0], rows[-1]))
    if verdicts:
        lines += ["### In plain words", ""]
        for name, small, big in verdicts:
            rise = change_test(small, big, "n_tasks", expect=1)
            lines.append(
                f"- {name}: the rise of OOD r^2 from N = {small['n_tasks']} to "
                f"{big['n_tasks']}: {call(rise)}. At N = {big['n_tasks']}, trained against "
                f"untrained: {call(control_test(big, 'untrained_ood_r2'))}; against a linear "
                "decoder on the encoded input's time-average: "
                f"{call(control_test(big, 'input_ood_r2'))}."
            )
        smallest = min(r["n_tasks"] for r in summary)
        by_arch = {r["arch"]: r for r in summary if r["n_tasks"] == smallest}
        if "transformer" in by_arch and "rnn" in by_arch:
            t, r = by_arch["transformer"], by_arch["rnn"]
            lines.append(
                f"- At N = {smallest}, {versus(t, r, 'the transformer', 'the RNN')}. Where the "
                "untrained difference holds too, the difference is the architecture's before it "
                "is training's."
            )
        lines.append(
            "- Paper's claim: OOD r^2 rises with N towards the in-distribution r^2, and the "
            "transformer generalises better at low N. A rise counts only where its paired test "
            "over networks holds; a code counts as learned only where it beats the same network "
            "untrained, and as more than the input's only where it beats the input baselines."
        )
    lines += ["", estimators_section(summary)]
    return png, "\n".join(lines)


def primary(summary: Sequence[Mapping[str, Any]], suffix: str = "") -> PairedTest | None:
    """The RNN's OOD r^2 at the largest N minus at the smallest, paired by seed: the paper's
    claim that it rises with N (``suffix``: under another analysis choice, pages.CHOICES)."""
    rows = sorted(
        (r for r in select(summary, arch="rnn") if r.get("_by_seed")), key=lambda r: r["n_tasks"]
    )
    if len(rows) < 2:
        return None
    return change_test(rows[0], rows[-1], "n_tasks", expect=1, suffix=suffix)


FIGURE = register(
    Figure(
        "fig3",
        "Fig. 3: generalisation against the number of tasks, per architecture",
        "OOD r^2 rises with N towards the in-distribution r^2; the decoder axes approach 90 "
        "degrees; the transformer generalises better at low N.",
        ("arch", "n_tasks"),
        grid,
        render,
        probe_adam=lambda scale: scale != "smoke",
        help="r^2 vs number of tasks, 4 architectures, decoder angles",
        primary=primary,
    )
)
