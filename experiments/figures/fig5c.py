"""Fig. 5c: OOD r^2 against the evidence noise sigma, beside the r^2 of mu (the paper's Eq. 7)
and the Bayes bound (``mte reproduce fig5c``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from multitask_evidence.experiments.sweep import Grid

from .grids import PAPER_SIGMAS, per_arch
from .inference import PairedTest
from .pages import against_controls, bayes_check, bound_rows, trend, trend_test
from .plots import draw_bounds, draw_controls, errorbar, finish, pyplot, ylim
from .registry import Figure, register
from .stats import select


def grid(scale: str) -> Grid:
    """RNNs over the paper's noise levels at the two ends of N (paper: three N)."""
    sigmas = (0.1, 0.6) if scale == "smoke" else PAPER_SIGMAS
    # quick: the two ends of N (3 networks x 5 sigmas each fit 15 minutes); paper: three N
    ns = (2, 6, 24) if scale == "paper" else (2, 24)
    return per_arch(("rnn",), scale, {"sigma": list(sigmas), "n_tasks": list(ns)}, "fig5c")


def plot(
    summary: Sequence[Mapping[str, Any]], path: str | Path, steps: int, caption: str = ""
) -> Path:
    """Fig. 5c: OOD r^2 against sigma, a curve per N with its untrained control (dashed), the
    input baselines, the r^2 of mu 1 - 12 sigma^2 / T (the paper's Eq. 7) and the Bayes bound."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 3.0))
    for i, n in enumerate(sorted({r["n_tasks"] for r in summary})):
        rows = select(summary, n_tasks=n)
        errorbar(ax, rows, "sigma", "ood_r2", label=f"N={n}", color=f"C{i}")
        draw_controls(ax, rows, "sigma", color=f"C{i}", label=f"N={n}, ", inputs=False)
    draw_controls(ax, summary, "sigma", untrained=False)
    draw_bounds(ax, summary, "sigma")
    ylim(ax, 0.5, summary, ("ood_r2_q25", "untrained_ood_r2"))
    ax.set_xlabel(f"evidence noise $\\sigma$ (per step), T = {steps}")
    ax.set_ylabel("OOD $r^2$")
    ax.set_title("Fig. 5c  generalisation vs noise")
    ax.legend(fontsize=5.5)
    return finish(fig, path, caption)


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    png = plot(summary, out / "fig5c.png", steps=20, caption=caption)
    body = ["## Measured against the two bounds and the controls (T = 20)", ""]
    for n in sorted({r["n_tasks"] for r in summary}):
        rows = select(summary, n_tasks=n)
        body += [f"### N = {n}", "", bound_rows(rows, "sigma"), ""]
        body.append(f"- {trend(summary, 'sigma', {'n_tasks': n})}.")
        for r in rows:
            body.append("- " + against_controls(r, f"sigma = {r['sigma']}"))
        body.append("")
    body.append(bayes_check(summary))
    body.append(
        "- 1 - 12 sigma^2 / T is the r^2 of the evidence mean mu itself (the paper's Eq. 7), not "
        "a bound; mu's own fitted OOD r^2 (the table's column) is the linear reference. The "
        "Bayes bound is the r^2 of the posterior mean under the bounded prior, which no decoder "
        "can beat beyond sampling error."
    )
    return png, "\n".join(body)


def primary(summary: Sequence[Mapping[str, Any]], suffix: str = "") -> PairedTest | None:
    """At the largest N: OOD r^2 at the largest sigma minus at the smallest, paired by seed
    (it falls as the noise grows)."""
    ns = sorted({r["n_tasks"] for r in summary})
    if not ns:
        return None
    return trend_test(summary, "sigma", {"n_tasks": ns[-1]}, expect=-1, suffix=suffix)


FIGURE = register(
    Figure(
        "fig5c",
        "Fig. 5c: generalisation against the evidence noise sigma",
        "OOD r^2 falls as sigma grows, beside the r^2 of mu 1 - 12 sigma^2 / T.",
        ("arch", "n_tasks", "sigma"),
        grid,
        render,
        help="vs noise",
        primary=primary,
    )
)
