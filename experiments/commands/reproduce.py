"""`mte reproduce <figure> --scale quick|paper`: a paper figure, its table and a page with theory.

Writes runs/reproduce/<figure>/<figure>.png, <figure>.csv (the table behind the plot) and
<figure>.md (measured numbers beside the theory); the sweep itself is in
runs/reproduce/<figure>/sweep-<scale>/ and re-running the command resumes it.

`mte reproduce all` runs every registered figure in turn (a figure already finished at that
scale is not rerun unless --force) and writes runs/reproduce/index.md linking each page and
plot with its headline sentence.
"""

from __future__ import annotations

import argparse
import sys

from multitask_evidence.experiments.commands.backend_args import (
    add_backend_arguments,
    add_slurm_arguments,
    check_backend_arguments,
    slurm_backend,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from multitask_evidence.experiments.figures.grids import SCALES
    from multitask_evidence.experiments.figures.registry import FIGURES, help_text

    # the registered figures (experiments.figures.registry), read when the parser is built
    parser.add_argument(
        "figure",
        choices=(*FIGURES, "all"),
        help=help_text() + "; all: every figure in turn, then an index page (index.md)",
    )
    parser.add_argument(
        "--scale",
        choices=SCALES,
        default="quick",
        help="quick: 3 networks per condition, the paper's model with the fast default "
        "recipe (each figure <= 15 min on 2 cores); paper: the paper's recipe, 5 networks "
        "per condition; smoke: tiny budgets for testing the pipeline (numbers meaningless); "
        "every network is probed beside its untrained self and the input baselines",
    )
    parser.add_argument(
        "--out", default="runs/reproduce", help="output root (default runs/reproduce)"
    )
    add_backend_arguments(
        parser,
        unit="network",
        workers_help="parallel networks (default 2: one per core of a 2-core machine; slurm: "
        "jobs queued at once, default 64)",
    )
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="redraw the figure and page from the sweep's finished points",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    grouping = parser.add_mutually_exclusive_group()
    grouping.add_argument(
        "--ensemble",
        dest="ensemble",
        action="store_const",
        const=True,
        default=None,
        help="train a condition's networks together as one batched ensemble (default at "
        "--scale paper, where it pays; each member starts as its solo run and ends "
        "statistically, not bitwise, the same)",
    )
    grouping.add_argument(
        "--no-ensemble",
        dest="ensemble",
        action="store_const",
        const=False,
        help="train every network alone (default at --scale quick and smoke)",
    )
    parser.add_argument(
        "--arch",
        dest="archs",
        action="append",
        default=None,
        metavar="ARCH",
        help="only the figure's networks of this architecture (repeatable), e.g. `fig3 "
        "--scale paper --arch rnn`; they train in the figure's sweep, so the whole figure "
        "later reuses them, and their page goes to <out>/<figure>/arch-<ARCH>/",
    )
    parser.add_argument(
        "--networks",
        type=int,
        default=None,
        metavar="N",
        help="networks per condition instead of the scale's (quick 3, paper 5), >= 2, e.g. "
        "`fig3 --networks 5`; they train in the figure's sweep, so the scale's own networks "
        "are reused, and the page goes to <out>/<figure>/networks-<N>/ (with all: the index "
        "to <out>/index-networks-<N>.md)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with all: also rerun the figures already finished at this scale (their sweeps "
        "still reuse the networks they trained; delete <out>/<figure> to retrain)",
    )
    add_slurm_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from multitask_evidence.experiments.figures.stats import CONDITION_KEYS
    from multitask_evidence.experiments.reproduce import reproduce

    check_backend_arguments(args)
    workers = args.workers if args.workers is not None or args.backend == "slurm" else 2
    backend = args.backend
    if backend == "slurm" and not args.plot_only:
        # options, submitit and sbatch checked before anything runs; job files go to
        # <out>/<figure>/sweep-<scale>/slurm
        backend = slurm_backend(args, workers)
    if args.force and args.figure != "all":
        raise ValueError("--force applies to `mte reproduce all` only")
    if args.networks is not None:
        from multitask_evidence.experiments.reproduce import check_networks

        check_networks(args.networks)  # before anything trains
    if args.figure == "all":
        if args.archs:
            raise ValueError("--arch applies to one figure, not to `mte reproduce all`")
        return _run_all(args, backend, workers)
    if args.archs:
        from multitask_evidence.experiments.reproduce import check_archs

        check_archs(args.figure, args.scale, args.archs)  # before anything trains
    if args.plot_only and not args.archs:
        from pathlib import Path

        rows = Path(args.out) / args.figure / f"sweep-{args.scale}" / "rows"
        if not any(p for p in rows.glob("*.json") if not p.name.endswith(".error.json")):
            raise ValueError(
                f"--plot-only: no finished points in {rows.parent} to draw; run without "
                "--plot-only first"
            )
    res = reproduce(
        args.figure,
        args.scale,
        args.out,
        backend=backend,
        workers=workers,
        address=args.address,
        progress=not args.no_progress,
        plot_only=args.plot_only,
        ensemble=args.ensemble,
        archs=args.archs,
        networks=args.networks,
    )
    print(f"{args.figure} ({args.scale}) in {res.elapsed_s / 60:.1f} min")
    for r in res.summary:
        keys = {k: r[k] for k in CONDITION_KEYS if k in r}
        print(
            "  "
            + " ".join(f"{k}={v}" for k, v in keys.items())
            + f": OOD r^2 {r['ood_r2']:.3f} [{r['ood_r2_q25']:.3f}, {r['ood_r2_q75']:.3f}]"
            f", in-dist {r['id_r2']:.3f}, angle {r['angle_deg']:.1f}, ceiling {r['ceiling']:.3f}"
        )
    print(f"figure: {res.png}\ntable:  {res.table}\npage:   {res.page}\nsweep:  {res.sweep_dir}")
    if res.n_failed:
        print(f"{res.n_failed} point(s) failed: see {res.page}", file=sys.stderr)
        return 1
    return 0


def _run_all(args: argparse.Namespace, backend: object, workers: int | None) -> int:
    from multitask_evidence.experiments.reproduce import reproduce_all

    done, errors, index = reproduce_all(
        args.scale,
        args.out,
        force=args.force,
        plot_only=args.plot_only,
        log=lambda msg: print(msg, flush=True),
        backend=backend,
        workers=workers,
        address=args.address,
        progress=not args.no_progress,
        ensemble=args.ensemble,
        networks=args.networks,
    )
    print(f"index:  {index}")
    failed = [r for r in done if r.n_failed]
    for r in failed:
        print(f"{r.figure}: {r.n_failed} point(s) failed: see {r.page}", file=sys.stderr)
    for name, err in errors.items():
        print(f"{name}: {err}", file=sys.stderr)
    return 1 if failed or errors else 0
