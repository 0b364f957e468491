"""`mte sweep`: train and probe every point of a grid, on a local process pool, a Ray cluster or
a SLURM queue.

Examples::

    mte sweep --set n_tasks=2,6,24 --set arch=rnn,gru --seeds 0,1 --name demo
    mte sweep --file grid.yaml --backend ray --address auto
    mte sweep --file grid.yaml --backend slurm --slurm-partition cpu --slurm-time 2:00:00
    mte sweep --set n_tasks=2,24 --set steps=200 --dry-run      # list the points, train nothing

Re-running the same command resumes: points whose row file exists are skipped. Supervised points
that differ only in seed or task draw train together as ensembles (``--no-ensemble``: each alone).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

from multitask_evidence.common.limits import MAX_POINTS, check_bytes
from multitask_evidence.experiments.commands.backend_args import (
    add_backend_arguments,
    add_slurm_arguments,
    check_backend_arguments,
    slurm_backend,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Grid names: TaskSpec fields (n_tasks, sigma, latent_dim, ...; or task.<field>), agent "
        "config fields (arch, steps, preset, hidden_size, ...; or agent.<field>), 'algo' "
        "(supervised or an RL algorithm) and 'seed' (network seed; the task's seed is task.seed).\n"
        "Values: comma-separated (n_tasks=2,6,24) or a JSON list (encoder_sizes=[[100,40],[40]]).\n"
        "Results: <dir>/results.csv and results.json, one row per point; run folders in <dir>/runs/."
    )
    g = parser.add_argument_group("grid")
    g.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="a grid axis (repeatable); a single value fixes the parameter",
    )
    g.add_argument(
        "--seeds", default=None, help="network seeds: '0,1,2' or a range '0-4' (default 0)"
    )
    g.add_argument(
        "--file",
        default=None,
        help="YAML/JSON grid file: a mapping name -> list, or {grid: ..., seeds: ..., "
        "name: ..., point: {probe_n: ...}}; --set overrides its axes",
    )
    o = parser.add_argument_group("output")
    o.add_argument(
        "--name",
        default=None,
        help="sweep name: the folder runs/sweeps/<name> (default: from the grid's hash, "
        "so the same command resumes the same sweep)",
    )
    o.add_argument("--dir", default=None, help="sweep folder (overrides --name)")
    e = parser.add_argument_group("execution")
    add_backend_arguments(
        e,
        unit="point",
        workers_help="parallel points (local: processes, default the CPU count; ray without "
        "--address: CPUs of the local cluster started for the sweep; slurm: jobs queued or "
        "running at once, default 64)",
    )
    e.add_argument("--threads", type=int, default=1, help="torch threads per point (default 1)")
    e.add_argument(
        "--no-ensemble",
        action="store_true",
        help="train every point alone (default: supervised points that differ only in seed or "
        "task draw train together as one batched ensemble, each recorded as its own point)",
    )
    e.add_argument(
        "--max-ensemble",
        type=int,
        default=32,
        help="most networks in one ensemble (default 32)",
    )
    e.add_argument(
        "--probe-n",
        type=int,
        default=None,
        help="trials recorded for the probes (default 4096, more for large D)",
    )
    e.add_argument("--probe-seed", type=int, default=12345, help="seed of the probe trials")
    e.add_argument(
        "--no-retry-failed", action="store_true", help="do not re-run points that failed last time"
    )
    e.add_argument(
        "--max-points",
        type=int,
        default=MAX_POINTS,
        help=f"refuse a grid of more points than this (default {MAX_POINTS:,}); counted before "
        "any point is built",
    )
    e.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the grid and list its points; train nothing",
    )
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_slurm_arguments(parser)


SWEEPS = Path("runs") / "sweeps"


def _default_dir(grid: object, name: str | None, what: str = "--name") -> Path:
    from multitask_evidence.agents.run import child_path

    if name is not None:
        return child_path(SWEEPS, name, what)
    digest = hashlib.sha1(json.dumps(grid.to_dict(), sort_keys=True, default=str).encode())
    return SWEEPS / f"sweep-{digest.hexdigest()[:8]}"


def run(args: argparse.Namespace) -> int:
    from multitask_evidence.experiments.point import run_point
    from multitask_evidence.experiments.sweep import check_point_options, grid_from_cli, run_sweep

    if not args.sets and not args.file:
        raise ValueError("give a grid with --set NAME=V1,V2 (repeatable) and/or --file")
    check_backend_arguments(args)
    for key in ("threads", "probe_n", "max_ensemble", "max_points"):
        v = getattr(args, key)
        if v is not None and v < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {v}")
    if args.probe_seed < 0:
        raise ValueError(f"--probe-seed must be >= 0, got {args.probe_seed}")
    grid, point_opts = grid_from_cli(args.sets, args.seeds, args.file, max_points=args.max_points)
    points = grid.points(max_points=args.max_points)
    # the file's name follows the rule of --name even where --name or --dir replaces it: a
    # bad name is a mistake in the file, not something to drop without a word
    file_dir = None
    if grid.name is not None:
        file_dir = _default_dir(grid, grid.name, f"grid file {args.file}: 'name'")
    if args.dir:
        sweep_dir = Path(args.dir)
    elif args.name is not None:
        sweep_dir = _default_dir(grid, args.name)
    else:
        sweep_dir = file_dir or _default_dir(grid, None)
    kwargs = dict(point_opts)
    if args.probe_n is not None:
        # every point records this many trials twice (fit and test): refused before training
        from multitask_evidence.envs.spec import TaskSpec

        largest = max((TaskSpec(**p.task).trial_bytes for p in points), default=0)
        check_bytes(
            f"--probe-n {args.probe_n} (trials recorded per point)", 2 * args.probe_n * largest
        )
        kwargs["probe_n"] = args.probe_n
    kwargs.setdefault("probe_seed", args.probe_seed)
    kwargs = check_point_options(run_point, kwargs)  # before any point runs
    if args.dry_run:
        print(f"{len(points)} points -> {sweep_dir}")
        for p in points:
            print(f"  {p.id}: {json.dumps(p.to_dict()['params'])}")
        return 0
    workers = args.workers
    if workers is None and args.backend == "local":
        workers = os.cpu_count() or 1
    backend = args.backend
    if backend == "slurm":  # options, submitit and sbatch checked before anything is written
        backend = slurm_backend(args, workers, args.threads)
    print(f"sweep: {len(points)} points, backend {args.backend}, folder {sweep_dir}", flush=True)
    result = run_sweep(
        grid,
        sweep_dir,
        backend=backend,
        workers=workers,
        address=args.address,
        threads=args.threads,
        point_kwargs=kwargs,
        retry_failed=not args.no_retry_failed,
        progress=not args.no_progress,
        ensemble=not args.no_ensemble,
        max_ensemble=args.max_ensemble,
        max_points=args.max_points,
    )
    n_ok = sum(r["status"] == "ok" for r in result.rows)
    print(
        f"sweep: {n_ok}/{len(result.rows)} points done ({result.n_ran} run now, "
        f"{result.n_skipped} skipped, {result.n_failed} failed) in {result.elapsed_s:.0f} s"
    )
    for r in result.failed:
        print(f"  FAILED {r['id']}: {r['error']}")
    print(f"results: {result.csv_path}\n         {result.json_path}")
    print(f"tensorboard --logdir {sweep_dir / 'hparams'}   # every point in the HParams tab")
    return 0 if n_ok == len(result.rows) else 1
