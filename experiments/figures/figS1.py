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

from multitask_evidence.experiments.sweep import Grid

from .grids import PAPER_N, per_arch
from .inference import PairedTest, call
from .pages import (
    conditions_section,
    control_test,
    pair_headline,
    pairs_by,
    rise_test,
    rise_verdict,
)
from .plots import plot_conditions
from .registry import Figure, register

ENCODER_LABELS = {"relu_mlp": "ReLU encoder", "quadratic": "quadratic encoder"}


def grid(scale: str) -> Grid:
    """RNNs over N with each encoder (quick: N = 2, 6, 24; paper: the paper's five N)."""
    ns = {"smoke": (24,), "quick": (2, 6, 24), "paper": PAPER_N}[scale]
    axes = {"encoder": list(ENCODER_LABELS), "n_tasks": list(ns)}
    return per_arch(("rnn",), scale, axes, "figS1")


def plot(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """OOD r^2 against N, one colour per encoder with its untrained networks (dashed) and its
    input baseline (dash-dot), and the two bounds (the same for both encoders: they depend on
    sigma and T only)."""
    title = "Fig. S1  generalisation vs tasks: ReLU vs quadratic encoder"
    return plot_conditions(summary, "encoder", ENCODER_LABELS, path, title, caption)


def headline(summary: Sequence[Mapping[str, Any]]) -> str:
    return pair_headline(summary, "encoder", ENCODER_LABELS)


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    png = plot(summary, out / "figS1.png", caption)
    lines = ["## The claim against its controls", ""]
    lines += conditions_section(summary, "encoder", ENCODER_LABELS)
    pairs = pairs_by(summary, "encoder", "relu_mlp", "quadratic")
    if pairs:
        n, relu, quad = pairs[-1]
        for name, r in (("ReLU", relu), ("quadratic", quad)):
            lines.append(
                f"- {name} encoder at N = {n}: trained against untrained: "
                f"{call(control_test(r, 'untrained_ood_r2'))}; against a linear decoder on "
                f"their encoded input's average ({r['input_ood_r2']:.3f}): "
                f"{call(control_test(r, 'input_ood_r2'))}. The network's own code generalises "
                "beyond what the input offers only where both read 'above'."
            )
        lines += [rise_verdict(summary, "encoder", e, n) for e, n in ENCODER_LABELS.items()]
        if quad["input_ood_r2"] > 0.9:
            lines.append(
                f"- With these weights the quadratic encoder is close to affine over the latent "
                f"box too: a linear decoder on its time-averaged output reaches OOD r^2 "
                f"{quad['input_ood_r2']:.3f} (ReLU {relu['input_ood_r2']:.3f}), so this figure "
                "does not test an input that a linear read-out cannot undo."
            )
        lines.append(
            "- Paper's claim: disentanglement does not hinge on the encoder's nonlinearity; with "
            "the quadratic encoder OOD r^2 also rises with N to the ReLU encoder's level. It "
            "holds here where the quadratic encoder's rise holds (paired test over networks) and its "
            "networks beat their untrained selves at the largest N; it does NOT hold where either "
            "fails. Where a network stays below its encoder's input baseline, a linear decoder "
            "on the encoded input already generalises better than the network's code."
        )
    return png, "\n".join(lines)


def primary(summary: Sequence[Mapping[str, Any]], suffix: str = "") -> PairedTest | None:
    """The quadratic encoder's OOD r^2 rise from the smallest to the largest N, paired by seed:
    the claim that disentanglement does not hinge on a ReLU encoder."""
    return rise_test(summary, "encoder", "quadratic", suffix=suffix)


FIGURE = register(
    Figure(
        "figS1",
        "Fig. S1: generalisation against the number of tasks, ReLU vs quadratic encoder",
        "OOD r^2 rises with N with either encoder: disentanglement does not depend on the "
        "observation encoder being ReLU.",
        ("arch", "encoder", "n_tasks"),
        grid,
        render,
        help="r^2 vs number of tasks, ReLU vs quadratic encoder",
        headline=headline,
        primary=primary,
    )
)
