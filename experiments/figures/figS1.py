"""Fig. S1: OOD r^2 against the number of tasks N with a ReLU and with a quadratic observation
encoder (``mte reproduce figS1``).

The encoder is the frozen random MLP D -> 100 -> 100 -> 40 that turns the evidence into the
network's input (``TaskSpec.encoder``): ``relu_mlp`` (the paper's default) or ``quadratic``
(the same sizes and weight law, its hidden units squared instead of rectified). Each encoder
has its own input baseline (a linear decoder on its time-averaged output): how far from affine
each encoder is over the latent box is measured there, not assumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from multitask_evidence.experiments.figures.grids import PAPER_N, per_arch
from multitask_evidence.experiments.figures.pages import against_controls, trend, versus
from multitask_evidence.experiments.figures.plots import (
    draw_bounds,
    draw_condition,
    finish,
    log_n_axis,
    pyplot,
    ylim,
)
from multitask_evidence.experiments.figures.registry import Figure, register
from multitask_evidence.experiments.figures.stats import select
from multitask_evidence.experiments.sweep import Grid

ENCODERS = ("relu_mlp", "quadratic")
ENCODER_LABELS = {"relu_mlp": "ReLU encoder", "quadratic": "quadratic encoder"}


def grid(scale: str) -> Grid:
    """RNNs over N with each encoder (quick: N = 2, 6, 24; paper: the paper's five N)."""
    ns = {"smoke": (24,), "quick": (2, 6, 24), "paper": PAPER_N}[scale]
    return per_arch(("rnn",), scale, {"encoder": list(ENCODERS), "n_tasks": list(ns)}, "figS1")


def plot(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """OOD r^2 (median and IQR over networks x folds x fits) against N (log x), one colour per
    encoder with its untrained networks (dashed) and its input baseline (dash-dot), and the two
    bounds (the same for both encoders: they depend on sigma and T only)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    for i, enc in enumerate(ENCODERS):
        rows = select(summary, encoder=enc)
        if rows:
            draw_condition(ax, rows, "n_tasks", color=f"C{i}", label=ENCODER_LABELS[enc])
    draw_bounds(ax, summary)
    ylim(ax, 0.5, summary, ("ood_r2_q25", "untrained_ood_r2", "input_ood_r2"))
    log_n_axis(ax, summary)
    ax.set_ylabel("OOD $r^2$")
    ax.set_title("Fig. S1  generalisation vs tasks: ReLU vs quadratic encoder")
    ax.legend(fontsize=5.5, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return finish(fig, path, caption)


def _pairs(summary: Sequence[Mapping[str, Any]]) -> list[tuple[int, Mapping, Mapping]]:
    """(N, ReLU row, quadratic row) at every N where both encoders finished."""
    out = []
    for n in sorted({r["n_tasks"] for r in summary}):
        relu = select(summary, encoder="relu_mlp", n_tasks=n)
        quad = select(summary, encoder="quadratic", n_tasks=n)
        if relu and quad:
            out.append((n, relu[0], quad[0]))
    return out


def headline(summary: Sequence[Mapping[str, Any]]) -> str:
    """The largest N: each encoder's OOD r^2 against its untrained networks and its input."""
    pairs = _pairs(summary)
    if not pairs:
        return "No N with both encoders finished."
    n, relu, quad = pairs[-1]
    parts = []
    for name, r in (("ReLU", relu), ("quadratic", quad)):
        parts.append(
            f"{name} {r['ood_r2_net_median']:.3f} (untrained "
            f"{r['untrained_ood_r2_net_median']:.3f}, input average {r['input_ood_r2']:.3f})"
        )
    return f"At N = {n}, OOD r^2 with the " + " vs ".join(parts) + "."


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    png = plot(summary, out / "figS1.png", caption)
    lines = ["## The claim against its controls", ""]
    for enc in ENCODERS:
        rows = sorted(select(summary, encoder=enc), key=lambda r: r["n_tasks"])
        if not rows:
            continue
        lines += [f"### {ENCODER_LABELS[enc]}", ""]
        lines.append(f"- {trend(summary, 'n_tasks', {'encoder': enc})}.")
        lines += ["- " + against_controls(r, f"N = {r['n_tasks']}") for r in rows]
        lines.append("")
    pairs = _pairs(summary)
    if pairs:
        lines += ["### In plain words", ""]
        for n, relu, quad in pairs:
            lines.append(f"- N = {n}: {versus(quad, relu, 'the quadratic encoder', 'the ReLU')}.")
        n, relu, quad = pairs[-1]
        for name, r in (("ReLU", relu), ("quadratic", quad)):
            beats_u = r["gain_lo"] > 0
            beats_i = r["gain_input_lo"] > 0
            lines.append(
                f"- {name} encoder at N = {n}: the trained networks "
                + ("beat" if beats_u else "do not beat")
                + " their untrained selves and "
                + ("beat" if beats_i else "do not beat")
                + f" a linear decoder on their encoded input's average ({r['input_ood_r2']:.3f})"
                + (
                    ": the network's own code generalises beyond what the input offers."
                    if beats_u and beats_i
                    else "."
                )
            )
        lines.append(
            "- Paper's claim: disentanglement does not hinge on the encoder's nonlinearity; with "
            "the quadratic encoder OOD r^2 also rises with N to the ReLU encoder's level. It "
            "holds here where the quadratic encoder's trend rises (interval excluding 0) and its "
            "networks beat their untrained selves at the largest N; it does NOT hold where either "
            "fails. Where a network stays below its encoder's input baseline, a linear decoder "
            "on the encoded input already generalises better than the network's code."
        )
    return png, "\n".join(lines)


FIGURE = register(
    Figure(
        "figS1",
        "Fig. S1: generalisation against the number of tasks, ReLU vs quadratic encoder",
        "OOD r^2 rises with N with either encoder: disentanglement does not depend on the "
        "observation encoder being ReLU (near-affine over the latent box).",
        ("arch", "encoder", "n_tasks"),
        grid,
        render,
        help="r^2 vs number of tasks, ReLU vs quadratic encoder",
        headline=headline,
    )
)
