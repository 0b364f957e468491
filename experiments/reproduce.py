"""The paper's figures as sweeps: ``mte reproduce fig3|fig5a|fig5b|fig5c|rl --scale quick|paper``.

Each figure is a grid (:class:`experiments.sweep.Grid`) run by the sweep engine, then summarised
with the paper's statistics (median and IQR over networks x folds x fits) and written to
``<out>/<figure>/``:

- ``<figure>.png``: the plot;
- ``<figure>.csv``: the table behind it (one row per condition);
- ``<figure>.md``: measured numbers beside the theory (docs/science.md §7) and the paper's claim;
- ``sweep-<scale>/``: the sweep itself (one run folder per network, results.csv/json). Re-running
  the command skips the networks already trained and probed.

Scales (:mod:`experiments.figures.grids`): ``quick`` (3 networks per condition, the paper's
model with the faster ``default`` recipe; each figure within 15 minutes on 2 CPU cores),
``paper`` (the paper's recipe, 5 networks per condition) and ``smoke`` (tiny budgets, for tests
only: the numbers mean nothing).

The figures are registered in :mod:`experiments.figures.registry`, one module per figure under
:mod:`experiments.figures` holding its grid, plot and page; this module runs one and writes the
parts of its page that every figure shares.

Every network draws its own task (encoder weights, random boundaries) from its seed, and every
number sits beside its controls (``probes.controls``): the same network untrained and the input
baselines; pages state each claim against them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multitask_evidence.agents.run import atomic_write_text
from multitask_evidence.experiments.figures.fig3 import FIG3_QUICK_ENDS, FIG3_QUICK_FULL
from multitask_evidence.experiments.figures.grids import (
    ARCHS,
    ARCHS_BY_COST,
    PAPER_N,
    PAPER_SEEDS,
    PAPER_SIGMAS,
    QUICK_EVALS,
    QUICK_SEEDS,
    SCALES,
    SMOKE_STEPS,
    recipe_text,
)
from multitask_evidence.experiments.figures.pages import ADAM_AGREEMENT, csv_text
from multitask_evidence.experiments.figures.registry import FIGURES, Figure, get, register
from multitask_evidence.experiments.figures.rl import RL_ENVS, RL_STEPS
from multitask_evidence.experiments.figures.stats import markdown_table, summarise
from multitask_evidence.experiments.sweep import Grid, run_sweep

__all__ = [
    "ADAM_AGREEMENT",
    "ARCHS",
    "ARCHS_BY_COST",
    "FIG3_QUICK_ENDS",
    "FIG3_QUICK_FULL",
    "FIGURES",
    "PAPER_N",
    "PAPER_SEEDS",
    "PAPER_SIGMAS",
    "QUICK_EVALS",
    "QUICK_SEEDS",
    "RL_ENVS",
    "RL_STEPS",
    "SCALES",
    "SMOKE_STEPS",
    "Figure",
    "Reproduction",
    "figure_grid",
    "recipe_text",
    "register",
    "render",
    "reproduce",
]


def figure_grid(name: str, scale: str) -> Grid:
    """The validated grid of a figure at a scale."""
    fig = get(name)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    return fig.grid(scale)


@dataclass
class Reproduction:
    """What :func:`reproduce` wrote and measured."""

    figure: str
    scale: str
    png: Path
    table: Path
    page: Path
    sweep_dir: Path
    summary: list[dict[str, Any]]
    n_failed: int
    elapsed_s: float


def render(
    name: str,
    scale: str,
    rows: Sequence[Mapping[str, Any]],
    out_dir: Path,
    *,
    elapsed_s: float | None = None,
    command: str = "",
) -> tuple[Path, Path, Path, list[dict[str, Any]]]:
    """Summarise sweep rows and write the figure's PNG, CSV table and markdown page."""
    fig = get(name)
    summary = summarise(rows, fig.group_by)
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = sum(r.get("status") == "ok" for r in rows)
    failed = [r for r in rows if r.get("status") == "failed"]
    caption = (
        f"mte reproduce {name} --scale {scale}: {ok} networks; {fig.statistic}"
    )
    png, body = fig.render(summary, out_dir, caption)
    table = out_dir / f"{name}.csv"
    atomic_write_text(table, csv_text(summary), mkdir=True)
    keys = [k for k in fig.group_by if any(k in r for r in summary)]
    page = [
        f"# {fig.title}",
        "",
        f"Scale: **{scale}**{' (tiny smoke budgets: the numbers mean nothing)' if scale == 'smoke' else ''}. "
        f"Command: `{command or f'mte reproduce {name} --scale {scale}'}`. Written "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
        + (f" after {elapsed_s / 60:.1f} min." if elapsed_s is not None else "."),
        "",
        f"Claim to check: {fig.claim}",
        "",
        f"![{name}]({png.name})",
        "",
        "## Model, recipe and controls",
        "",
        recipe_text(scale),
        "",
        "Controls beside every number, probed on the same trials with the same decoders: the "
        "same network untrained (dashed in the plots), a linear decoder on the time-average of "
        "the encoded observations over the stimulus (grey dash-dot) and on the evidence mean "
        "mu(T) (grey dotted). Bounds: the linear ceiling 1 - 12 sigma^2 / t (dotted) and the "
        "Bayes posterior mean's r^2 (dashed black).",
        "",
        "## Measured and theory",
        "",
        "OOD r^2: median [IQR] over networks x held-out folds x decoder fits (the paper's "
        "statistic); beside it each network's own median, and the gain over the untrained "
        "network with a 95% bootstrap interval over networks.",
        "",
        markdown_table(summary, keys),
        "",
        body,
        "",
    ]
    if failed:
        page += ["## Failed points", ""]
        page += [f"- `{r['id']}`: {r.get('error', '')}" for r in failed]
        page.append("")
    cpu = [float(r["cpu_s"]) for r in rows if isinstance(r.get("cpu_s"), (int, float))]
    if cpu:
        page += [
            f"Compute: {len(cpu)} networks used {sum(cpu) / 60:.1f} CPU-minutes (training + "
            f"probing, {sum(cpu) / len(cpu):.0f} s per network on average).",
            "",
        ]
    page += [
        f"Per-network rows (every parameter and metric): `{Path('sweep-' + scale) / 'results.csv'}`.",
        "",
    ]
    md = out_dir / f"{name}.md"
    atomic_write_text(md, "\n".join(page), mkdir=True)
    return png, table, md, summary


def reproduce(
    name: str,
    scale: str = "quick",
    out: str | Path = "runs/reproduce",
    *,
    backend: str = "local",
    workers: int | None = 2,
    address: str | None = None,
    progress: bool = True,
    plot_only: bool = False,
    point_fn: Callable[..., dict[str, Any]] | None = None,
    ensemble: bool = True,
) -> Reproduction:
    """Run (or resume) a figure's sweep and write its PNG, CSV and markdown page.

    ensemble: train the networks that share a condition's architecture and recipe as one
    batched ensemble (see :func:`experiments.sweep.run_sweep`); False: each alone."""
    t0 = time.perf_counter()
    grid = figure_grid(name, scale)
    out_dir = Path(out) / name
    sweep_dir = out_dir / f"sweep-{scale}"
    fig = get(name)
    if plot_only:
        from multitask_evidence.experiments.sweep import SweepPaths, read_rows, table_rows

        rows = table_rows(read_rows(grid.points(), SweepPaths(sweep_dir)))
        n_failed = sum(r["status"] == "failed" for r in rows)
    else:
        kwargs = {}
        probe_n = fig.probe_n(scale)
        if probe_n is not None:
            kwargs["probe_n"] = probe_n
        if fig.probe_adam(scale):
            kwargs["probe_adam"] = True
        result = run_sweep(
            grid,
            sweep_dir,
            backend=backend,
            workers=workers,
            address=address,
            point_fn=point_fn,
            point_kwargs=kwargs,
            progress=progress,
            ensemble=ensemble,
        )
        rows, n_failed = result.rows, result.n_failed
    elapsed = time.perf_counter() - t0
    # a redraw says nothing about how long the networks took
    png, table, md, summary = render(
        name, scale, rows, out_dir, elapsed_s=None if plot_only else elapsed
    )
    return Reproduction(name, scale, png, table, md, sweep_dir, summary, n_failed, elapsed)
