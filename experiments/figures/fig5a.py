"""Fig. 5a: OOD r^2 against trial duration, free reaction-time targets as the official code
trains them, beside the theory 1 - 12 sigma^2 / (T + 1) (``mte reproduce fig5a``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from multitask_evidence.experiments.sweep import Grid

from .grids import per_arch
from .inference import PairedTest
from .pages import against_controls, bayes_check, bound_rows, trend, trend_test
from .plots import draw_bounds, draw_controls, errorbar, finish, pyplot, ylim
from .registry import Figure, register
from .stats import select


def grid(scale: str) -> Grid:
    """Free-reaction-time RNNs as the official code trains them (``targets='free_rt_paper'``:
    running sums of X2 - tan(phi) X1 absorbed at +-5, evidence also at the probed decision step)."""
    durations = {"smoke": (3, 10), "quick": (3, 5, 10, 20), "paper": (2, 3, 5, 10, 20, 30, 40)}
    axes = {
        "targets": ["free_rt_paper"],
        "n_tasks": [24],
        "sigma": [0.2],
        "stimulus_steps": list(durations[scale]),
    }
    return per_arch(("rnn",), scale, axes, "fig5a")


def plot(
    summary: Sequence[Mapping[str, Any]], path: str | Path, sigma: float, caption: str = ""
) -> Path:
    """Fig. 5a: OOD r^2 against trial duration (stimulus steps) with the untrained and input
    controls, the theory line (each row's ``ceiling``) and the Bayes bound."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 3.0))
    groups = sorted({r.get("n_tasks") for r in summary}, key=lambda v: (v is None, v))
    for i, n in enumerate(groups):
        rows = select(summary, n_tasks=n)
        errorbar(ax, rows, "stimulus_steps", "ood_r2", label=f"OOD, N={n}", color=f"C{i}")
        errorbar(
            ax,
            rows,
            "stimulus_steps",
            "id_r2",
            label=f"in-dist., N={n}",
            color=f"C{i}",
            alpha=0.4,
            ls="--",
        )
        draw_controls(ax, rows, "stimulus_steps", color=f"C{i}", label=f"OOD N={n}, ")
    draw_bounds(ax, summary, "stimulus_steps")
    ylim(ax, 0.7, summary, ("ood_r2_q25", "untrained_ood_r2"))
    ax.set_xlabel("trial duration T (stimulus steps); theory lines at t = T + 1 samples")
    ax.set_ylabel("$r^2$")
    ax.set_title(f"Fig. 5a  generalisation vs trial duration ($\\sigma$={sigma})")
    ax.legend(fontsize=5.5)
    return finish(fig, path, caption)


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    png = plot(summary, out / "fig5a.png", sigma=0.2, caption=caption)
    body = [
        "## Measured against the theory and the controls (sigma = 0.2)",
        "",
        "Theory (the paper's Fig. 5a line): 1 - 12 sigma^2 / (T + 1) = 1 - 0.48 / (T + 1), the "
        "r^2 of the mean of the T + 1 evidence samples the network has seen when its "
        "state is read (the T stimulus steps and the decision step, where evidence still "
        "arrives in the official free-RT task); the Bayes bound is the posterior mean's r^2 on "
        "the same samples.",
        "",
        bound_rows(summary, "stimulus_steps"),
        "",
        f"- {trend(summary, 'stimulus_steps', {})}.",
        bayes_check(summary),
    ]
    for r in sorted(summary, key=lambda r: r["stimulus_steps"]):
        body.append("- " + against_controls(r, f"T = {r['stimulus_steps']}"))
    body += [
        "- Targets as the official code: the running sum of X2 - tan(phi_i) X1 over the evidence "
        "(not the unit-normal projection c_i . X of this package's own `ddm_bound` targets, whose "
        "sums are smaller by cos(phi_i) and reach the bound at other times), absorbed at +-5, "
        "MSE on 5 tanh outputs at every step; the sums are signed like the labels "
        "(envs.trials.free_rt_targets documents what differs from the official code).",
    ]
    return png, "\n".join(body)


def primary(summary: Sequence[Mapping[str, Any]], suffix: str = "") -> PairedTest | None:
    """OOD r^2 at the longest trial minus at the shortest, paired by seed (it rises with the
    evidence time)."""
    return trend_test(summary, "stimulus_steps", {}, expect=1, suffix=suffix)


FIGURE = register(
    Figure(
        "fig5a",
        "Fig. 5a: generalisation against trial duration (free reaction-time targets)",
        "OOD r^2 rises with the evidence time and follows the theory 1 - 12 sigma^2 / t.",
        ("arch", "n_tasks", "stimulus_steps"),
        grid,
        render,
        help="vs trial duration",
        primary=primary,
    )
)
