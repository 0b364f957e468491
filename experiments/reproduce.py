"""The paper's figures as sweeps: ``mte reproduce <figure>|all --scale quick|paper``.

Each figure is a grid (:class:`experiments.sweep.Grid`) run by the sweep engine, then summarised
with the paper's statistics (median and IQR over networks x folds x fits) and written to
``<out>/<figure>/``:

- ``<figure>.png``: the plot;
- ``<figure>.csv``: the table behind it (one row per condition);
- ``<figure>.md``: measured numbers beside the theory (docs/science.md §7) and the paper's claim;
- ``sweep-<scale>/``: the sweep itself (one run folder per network, results.csv/json). Re-running
  the command skips the networks already trained and probed;
- ``reproduce.json``: the scale, points and failures the page was written from.

:func:`reproduce_all` (``mte reproduce all``) runs every registered figure in turn, skipping
those already finished at that scale, and writes ``<out>/index.md`` linking each page and plot
with its headline sentence.

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

import dataclasses
import inspect
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multitask_evidence.common.files import atomic_write_text
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
from multitask_evidence.experiments.figures.inference import page_ledger, primary_family
from multitask_evidence.experiments.figures.pages import (
    ADAM_AGREEMENT,
    csv_text,
    headline,
    robustness_section,
)
from multitask_evidence.experiments.figures.registry import FIGURES, Figure, get, register
from multitask_evidence.experiments.figures.rl import RL_ENVS, RL_STEPS
from multitask_evidence.experiments.figures.stats import markdown_table, summarise
from multitask_evidence.experiments.sweep import Grid, dumps, run_sweep

__all__ = [
    "ADAM_AGREEMENT",
    "ARCHS",
    "ARCHS_BY_COST",
    "FIG3_QUICK_ENDS",
    "FIG3_QUICK_FULL",
    "FIGURES",
    "INDEX",
    "STATUS",
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
    "check_archs",
    "check_networks",
    "figure_grid",
    "figure_archs",
    "finished",
    "networks_grid",
    "page_folder",
    "recipe_text",
    "register",
    "render",
    "reproduce",
    "reproduce_all",
    "with_networks",
]

STATUS = "reproduce.json"
"""Written beside each figure's page: the scale, points and failures it was drawn from."""
INDEX = "index.md"
"""The page of ``mte reproduce all``: every figure's page, plot and headline."""


def figure_grid(name: str, scale: str) -> Grid:
    """The validated grid of a figure at a scale."""
    fig = get(name)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    return fig.grid(scale)


def check_networks(networks: Any) -> int:
    """``networks`` (networks per condition) if it is an integer >= 2, else one-line ValueError."""
    if isinstance(networks, bool) or not isinstance(networks, int) or networks < 2:
        raise ValueError(
            f"networks must be an integer >= 2 (networks per condition, for statistics over "
            f"networks), got {networks!r}"
        )
    return networks


def networks_grid(name: str, scale: str, networks: int | None = None) -> Grid:
    """The figure's grid at a scale, with ``networks`` networks per condition when given."""
    grid = figure_grid(name, scale)
    return grid if networks is None else with_networks(grid, networks)


def page_folder(out: str | Path, name: str, networks: int | None = None) -> Path:
    """Where a figure's page goes: ``<out>/<figure>``, or its ``networks-<n>`` subfolder."""
    folder = Path(out) / name
    return folder if networks is None else folder / f"networks-{networks}"


def with_networks(grid: Grid, networks: int) -> Grid:
    """``grid`` with ``networks`` networks per condition (network seeds 0 .. networks - 1 in
    each of its blocks), its conditions unchanged. A point keeps its id, so a sweep that already
    trained some of these seeds reuses them."""
    seeds = list(range(check_networks(networks)))
    return dataclasses.replace(
        grid,
        axes={**grid.axes, "seed": seeds},
        extra=[{**block, "seed": seeds} for block in grid.extra],
    )


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
    skipped: bool = False
    """True when :func:`reproduce_all` found the figure finished and did not run it."""


def render(
    name: str,
    scale: str,
    rows: Sequence[Mapping[str, Any]],
    out_dir: Path,
    *,
    elapsed_s: float | None = None,
    command: str = "",
    sweep_dir: Path | None = None,
) -> tuple[Path, Path, Path, list[dict[str, Any]]]:
    """Summarise sweep rows and write the figure's PNG, CSV table and markdown page.

    sweep_dir: where the rows came from (default ``out_dir / f"sweep-{scale}"``); the page
    links its results table relative to itself."""
    fig = get(name)
    summary = summarise(rows, fig.group_by)
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = sum(r.get("status") == "ok" for r in rows)
    failed = [r for r in rows if r.get("status") == "failed"]
    caption = (
        f"mte reproduce {name} --scale {scale}: {ok} networks; dots: each network, bars: mean "
        f"and 95% t-interval over networks"
    )
    with page_ledger() as ledger:
        for test in primary_family(fig.primary(summary) if fig.primary is not None else None):
            ledger.add(dataclasses.replace(test, primary=True))
        png, body = fig.render(summary, out_dir, caption)
        keys = [k for k in fig.group_by if any(k in r for r in summary)]
        table_md = markdown_table(summary, keys)
    body = ledger.resolve(body)
    tests = ledger.section()
    takes_choice = fig.primary is not None and "suffix" in inspect.signature(fig.primary).parameters
    robust = robustness_section(summary, fig.primary if takes_choice else None, keys)
    table = out_dir / f"{name}.csv"
    atomic_write_text(table, csv_text(summary), mkdir=True)
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
        "mu(T) (grey dotted; mu's own fitted OOD r^2 is the linear reference), and, where "
        "probed, linear read-outs of the network's own outputs and of the ideal observer's "
        "outputs on the same trials (what the outputs alone imply: a code counts as more than "
        "its outputs only above them). Theory: the r^2 of mu itself, 1 - 12 sigma^2 / t (the "
        "paper's Eq. 7, dotted; not a bound on a read-out), and the Bayes posterior mean's r^2 "
        "(dashed black; the bound).",
        "",
        "## Measured and theory",
        "",
        f"Every condition has {_networks_text(summary)} networks. Each network's OOD r^2 is the "
        "median over its held-out folds x decoder fits; the plot shows every network as a dot "
        "and the mean over networks with its 95% t-interval. The table's 'median [IQR]' pools "
        "networks x folds x fits: the paper's statistic, kept for comparison with the paper, "
        "never an error bar. 'gain over untrained' is the mean paired difference (each network "
        "minus itself untrained) with its 95% t-interval and exact sign-flip p-value.",
        "",
        table_md,
        "",
        tests,
        "",
        body,
        "",
        robust,
        "",
    ]
    if failed:
        page += ["## Failed points", ""]
        page += [f"- `{r['id']}`: {r.get('error', '')}" for r in failed]
        page.append("")
    here = [r for r in rows if not r.get("adopted_from")]
    cpu = [float(r["cpu_s"]) for r in here if isinstance(r.get("cpu_s"), (int, float))]
    if cpu:
        page += [
            f"Compute: {len(cpu)} networks used {sum(cpu) / 60:.1f} CPU-minutes (training + "
            f"probing, {sum(cpu) / len(cpu):.0f} s per network on average).",
            "",
        ]
    if len(here) < len(rows):
        page += [
            f"{len(rows) - len(here)} networks were taken finished from other figures' sweeps, "
            "where the same point was trained alone the same way (`experiments.sweep.adopt`; "
            "their rows name the source in `adopted_from`).",
            "",
        ]
    sweep_dir = out_dir / f"sweep-{scale}" if sweep_dir is None else sweep_dir
    results = Path(os.path.relpath(sweep_dir / "results.csv", out_dir)).as_posix()
    long = Path(os.path.relpath(sweep_dir / "results_long.csv", out_dir)).as_posix()
    page += [
        f"Per-network rows (every parameter and metric): `{results}`; the same in long format, "
        f"one value per row (network x metric x fold), for pandas or R: `{long}`.",
        "",
    ]
    md = out_dir / f"{name}.md"
    atomic_write_text(md, "\n".join(page), mkdir=True)
    return png, table, md, summary


def _networks_text(summary: Sequence[Mapping[str, Any]]) -> str:
    """'8' when every condition has 8 networks, '3 to 8' otherwise."""
    ns = sorted({int(r.get("n_networks", 0)) for r in summary})
    if not ns:
        return "no"
    return str(ns[0]) if len(ns) == 1 else f"{ns[0]} to {ns[-1]}"


ENSEMBLE_SCALES = ("paper",)
"""Scales whose networks train as ensembles unless told otherwise. At the paper's recipe
(batch 16) a step is bound by per-operation overhead and ensembles pay
(benchmarks/results/ensemble.md); at the quick scale's batch of 128 the gain is smaller
(benchmarks/results/network_cost.md, benchmarks/results/reproduce_fig3_ensemble.md), and
training alone keeps the recorded quick pages reproducible number for number (over a full
budget an ensemble member is statistically, not bitwise, its solo run)."""


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
    ensemble: bool | None = None,
    archs: Sequence[str] | None = None,
    networks: int | None = None,
) -> Reproduction:
    """Run (or resume) a figure's sweep and write its PNG, CSV and markdown page.

    ensemble: train the networks that share a condition's architecture and recipe as one
    batched ensemble (see :func:`experiments.sweep.run_sweep`); False: each alone; None: as
    :data:`ENSEMBLE_SCALES` says for the scale.
    archs: only the figure's networks of these architectures. They train in the figure's own
    sweep (``<out>/<figure>/sweep-<scale>``, so the whole figure later reuses them) and their
    page, plot, table and status go to ``<out>/<figure>/arch-<a>[+<b>...]/``.
    networks: networks per condition instead of the scale's (:func:`with_networks`); they train
    in the same sweep, so the scale's own networks are reused, and the page goes to a
    ``networks-<n>/`` folder (inside ``arch-...`` with ``archs``)."""
    t0 = time.perf_counter()
    if ensemble is None:
        ensemble = scale in ENSEMBLE_SCALES
    grid = networks_grid(name, scale, networks)
    out_dir = Path(out) / name
    sweep_dir = out_dir / f"sweep-{scale}"
    page_dir = out_dir
    where = None
    command = f"mte reproduce {name} --scale {scale}"
    if archs is not None:
        chosen = check_archs(name, scale, archs)
        page_dir = out_dir / ("arch-" + "+".join(chosen))
        command += "".join(f" --arch {a}" for a in chosen)
        ids = {p.id for p in grid.points() if p.agent.get("arch") in chosen}

        def where(p: Any) -> bool:
            return p.id in ids

    if networks is not None:
        page_dir = page_dir / f"networks-{networks}"
        command += f" --networks {networks}"
    fig = get(name)
    adopted: list[str] = []
    if plot_only:
        from multitask_evidence.experiments.sweep import SweepPaths, read_rows, table_rows

        points = [p for p in grid.points() if where is None or where(p)]
        rows = table_rows(read_rows(points, SweepPaths(sweep_dir)))
        n_failed = sum(r["status"] == "failed" for r in rows)
    else:
        if point_fn is None and not ensemble:
            adopted = _adopt(grid, where, sweep_dir, Path(out), scale, fig)
        result = run_sweep(
            grid,
            sweep_dir,
            backend=backend,
            workers=workers,
            address=address,
            point_fn=point_fn,
            point_kwargs=fig.point_options(scale),
            progress=progress,
            ensemble=ensemble,
            where=where,
        )
        rows, n_failed = result.rows, result.n_failed
        if where is not None:  # the table holds the whole grid; the page only the subset
            rows = [r for r in rows if r["id"] in ids]
    elapsed = time.perf_counter() - t0
    # a redraw says nothing about how long the networks took
    png, table, md, summary = render(
        name,
        scale,
        rows,
        page_dir,
        elapsed_s=None if plot_only else elapsed,
        command=command,
        sweep_dir=sweep_dir,
    )
    status = {
        "figure": name,
        "scale": scale,
        "archs": None if archs is None else list(chosen),
        "networks": networks,
        "n_points": len(rows),
        "n_ok": sum(r.get("status") == "ok" for r in rows),
        "n_failed": n_failed,
        "n_adopted": len(adopted),
        "elapsed_s": None if plot_only else elapsed,
        "written": time.strftime("%Y-%m-%d %H:%M"),
    }
    atomic_write_text(page_dir / STATUS, dumps(status))
    return Reproduction(name, scale, png, table, md, sweep_dir, summary, n_failed, elapsed)


def _adopt(
    grid: Grid,
    where: Callable[[Any], bool] | None,
    sweep_dir: Path,
    out: Path,
    scale: str,
    fig: Figure,
) -> list[str]:
    """Networks of this figure that another figure's sweep at this scale (under ``out``)
    already trained alone, the same way, copied in instead of trained again
    (:mod:`experiments.sweep.adopt`); their ids."""
    from multitask_evidence.experiments.sweep.adopt import adopt_finished
    from multitask_evidence.experiments.sweep.engine import (
        check_point_options,
        default_point_fn,
        function_name,
    )

    fn = default_point_fn()
    points = [p for p in grid.points() if where is None or where(p)]
    sources = sorted(out.glob(f"*/sweep-{scale}"))
    options = check_point_options(fn, fig.point_options(scale))
    return adopt_finished(points, sweep_dir, sources, function_name(fn), options)


def figure_archs(name: str, scale: str) -> list[str]:
    """The architectures a figure trains at a scale, in grid order."""
    seen: list[str] = []
    for p in figure_grid(name, scale).points():
        a = p.agent.get("arch")
        if a is not None and a not in seen:
            seen.append(a)
    return seen


def check_archs(name: str, scale: str, archs: Sequence[str]) -> list[str]:
    """``archs`` without repeats, in the figure's order; ValueError naming the allowed ones
    when one is not in the figure at that scale (or none is given)."""
    allowed = figure_archs(name, scale)
    if isinstance(archs, str) or not archs:
        raise ValueError(f"archs must be a non-empty list of architectures, got {archs!r}")
    bad = [a for a in archs if a not in allowed]
    if bad:
        raise ValueError(f"--arch: {name} at scale {scale} trains {allowed}; got {bad[0]!r}")
    return [a for a in allowed if a in archs]


def finished(
    name: str, scale: str, out: str | Path = "runs/reproduce", networks: int | None = None
) -> bool:
    """Whether a figure is done at a scale under ``out`` (with ``networks`` networks per
    condition when given): its page and plot were written from that scale's sweep with no
    failure, and every point of its grid has its row."""
    import json

    from multitask_evidence.experiments.sweep import SweepPaths

    page_dir = page_folder(out, name, networks)
    status_file = page_dir / STATUS
    if not (status_file.exists() and (page_dir / f"{name}.md").exists()):
        return False
    if not (page_dir / f"{name}.png").exists():
        return False
    status = json.loads(status_file.read_text())
    if status.get("scale") != scale or status.get("n_failed") != 0:
        return False
    if status.get("networks") != networks:
        return False
    paths = SweepPaths(Path(out) / name / f"sweep-{scale}")
    return all(paths.row(p.id).exists() for p in networks_grid(name, scale, networks).points())


def _summary_of(
    name: str, scale: str, out: Path, networks: int | None = None
) -> list[dict[str, Any]]:
    """The summary rows of a figure's finished sweep (no training, no drawing)."""
    from multitask_evidence.experiments.sweep import SweepPaths, read_rows, table_rows

    grid = networks_grid(name, scale, networks)
    rows = table_rows(read_rows(grid.points(), SweepPaths(out / name / f"sweep-{scale}")))
    return summarise(rows, get(name).group_by)


def _has_rows(name: str, scale: str, out: Path) -> bool:
    rows = out / name / f"sweep-{scale}" / "rows"
    return any(p for p in rows.glob("*.json") if not p.name.endswith(".error.json"))


def reproduce_all(
    scale: str = "quick",
    out: str | Path = "runs/reproduce",
    *,
    force: bool = False,
    names: Sequence[str] | None = None,
    plot_only: bool = False,
    log: Callable[[str], None] | None = None,
    networks: int | None = None,
    **kwargs: Any,
) -> tuple[list[Reproduction], dict[str, str], Path]:
    """Run every registered figure in turn (``names``: a subset, in that order) and write
    ``<out>/index.md``. networks: each figure with that many networks per condition (see
    :func:`reproduce`); the index is then ``<out>/index-networks-<n>.md``.

    A figure already finished at this scale (:func:`finished`) is not run again unless
    ``force`` (which reruns its sweep, reusing the networks it already trained, and rewrites its
    page); plot_only redraws every figure that has finished points and passes over the others.
    A figure that raises is recorded in the index with its error and the next one runs.
    kwargs go to :func:`reproduce` (backend, workers, address, progress, point_fn, ensemble).

    Returns (what each figure wrote or measured, errors by figure name, the index's path).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    if networks is not None:
        check_networks(networks)
    order = list(FIGURES) if names is None else [get(n).name for n in names]
    out = Path(out)
    say = log or (lambda msg: None)
    done: list[Reproduction] = []
    errors: dict[str, str] = {}
    for name in order:
        try:
            if plot_only and not _has_rows(name, scale, out):
                errors[name] = f"no finished points in {out / name / f'sweep-{scale}'} to draw"
                say(f"{name}: {errors[name]}")
                continue
            if not force and not plot_only and finished(name, scale, out, networks):
                page_dir = page_folder(out, name, networks)
                say(f"{name}: already finished at scale {scale}, not rerun")
                done.append(
                    Reproduction(
                        name,
                        scale,
                        page_dir / f"{name}.png",
                        page_dir / f"{name}.csv",
                        page_dir / f"{name}.md",
                        out / name / f"sweep-{scale}",
                        _summary_of(name, scale, out, networks),
                        0,
                        0.0,
                        skipped=True,
                    )
                )
                continue
            say(f"{name}: running at scale {scale}")
            res = reproduce(name, scale, out, plot_only=plot_only, networks=networks, **kwargs)
            done.append(res)
            say(f"{name}: done in {res.elapsed_s / 60:.1f} min, {res.n_failed} failed point(s)")
        except Exception as e:  # noqa: BLE001 - one figure's failure must not stop the others
            errors[name] = f"{type(e).__name__}: {e}"
            say(f"{name}: FAILED: {errors[name]}")
    index = write_index(done, errors, scale, out, order, networks)
    return done, errors, index


def write_index(
    done: Sequence[Reproduction],
    errors: Mapping[str, str],
    scale: str,
    out: Path,
    order: Sequence[str],
    networks: int | None = None,
) -> Path:
    """``<out>/index.md`` (``index-networks-<n>.md`` with ``networks``): a table of every figure
    (networks, failures, time, headline) and, per figure, its plot and a link to its page
    (paths relative to ``out``)."""
    by_name = {r.figure: r for r in done}
    more = "" if networks is None else f" --networks {networks}"
    index = out / (INDEX if networks is None else f"index-networks-{networks}.md")
    lines = [
        f"# The paper's figures at scale {scale}"
        + ("" if networks is None else f", {networks} networks per condition"),
        "",
        f"`mte reproduce all --scale {scale}{more}`, written {time.strftime('%Y-%m-%d %H:%M')}. Every "
        "number on the pages sits beside its controls (the same networks untrained, decoders on "
        "the encoded input's time-average and on the evidence mean) and both bounds.",
        "",
        "| figure | networks | failed | time | headline |",
        "|---|---|---|---|---|",
    ]
    sections = []
    for name in order:
        fig = get(name)
        if name in errors:
            lines.append(f"| {name} | - | - | - | not written: {errors[name]} |")
            continue
        r = by_name.get(name)
        if r is None:
            continue
        nets = sum(int(s.get("n_networks", 0)) for s in r.summary)
        when = "already finished" if r.skipped else f"{r.elapsed_s / 60:.1f} min"
        text = (fig.headline or headline)(r.summary)
        page = r.page.relative_to(out).as_posix() if r.page.is_relative_to(out) else str(r.page)
        png = r.png.relative_to(out).as_posix() if r.png.is_relative_to(out) else str(r.png)
        lines.append(f"| [{name}]({page}) | {nets} | {r.n_failed} | {when} | {text} |")
        sections += [
            f"## {fig.title}",
            "",
            f"![{name}]({png})",
            "",
            text,
            "",
            f"Page: [{page}]({page}).",
            "",
        ]
    atomic_write_text(index, "\n".join([*lines, "", *sections]))
    return index
