"""Where networks train, as `mte sweep` and `mte reproduce` both take it: ``--backend``,
``--workers``, ``--address`` and the SLURM options (``--backend slurm``)."""

from __future__ import annotations

import argparse
from typing import Any

SLURM_FLAGS = {
    "slurm_partition": "partition",
    "slurm_time": "time",
    "slurm_mem": "mem",
    "slurm_account": "account",
    "slurm_qos": "qos",
    "slurm_sbatch": "sbatch",
    "slurm_setup": "setup",
}


def add_backend_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, unit: str, workers_help: str
) -> None:
    """``--backend``, ``--workers`` and ``--address``; ``unit`` names what one worker runs
    ("point", "network") in the help text."""
    parser.add_argument(
        "--backend",
        choices=("local", "ray", "slurm"),
        default="local",
        help=f"local: a process pool on this machine (default); ray: Ray tasks; slurm: one "
        f"SLURM job per {unit} (submitit)",
    )
    parser.add_argument("--workers", type=int, default=None, help=workers_help)
    parser.add_argument(
        "--address",
        default=None,
        help="address of an existing Ray cluster, with --backend ray ('auto', 'head:6379', "
        "'ray://head:10001'); the output folder must be on storage all nodes share",
    )


def check_backend_arguments(args: argparse.Namespace) -> None:
    """One clear error for ``--workers`` below 1, ``--address`` without Ray, or SLURM options
    without ``--backend slurm``, before anything runs."""
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.address and args.backend != "ray":
        raise ValueError("--address needs --backend ray")
    slurm_options(args)


def add_slurm_arguments(parser: argparse.ArgumentParser) -> None:
    s = parser.add_argument_group(
        "SLURM (with --backend slurm: one job per point, submitted with submitit; "
        "--threads = CPUs per job, --workers = jobs queued at once, default 64)"
    )
    s.add_argument("--slurm-partition", default=None, metavar="NAME", help="partition (-p)")
    s.add_argument(
        "--slurm-time",
        default=None,
        metavar="TIME",
        help="time limit per point: minutes or [D-]HH:MM:SS (default 60 minutes)",
    )
    s.add_argument(
        "--slurm-mem", default=None, metavar="MEM", help="memory per job: 4G, 512M (--mem)"
    )
    s.add_argument("--slurm-account", default=None, metavar="NAME", help="account (-A)")
    s.add_argument("--slurm-qos", default=None, metavar="NAME", help="quality of service")
    s.add_argument(
        "--slurm-sbatch",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="another sbatch option (repeatable): constraint=cpu, exclude=node3, gres=gpu:1",
    )
    s.add_argument(
        "--slurm-setup",
        action="append",
        default=None,
        metavar="CMD",
        help="a shell line run before each job (repeatable): 'module load python', "
        "'source /shared/venv/bin/activate'",
    )


def slurm_options(args: argparse.Namespace) -> dict[str, Any]:
    """The SlurmBackend options given on the command line; an error if given without
    ``--backend slurm``."""
    given = {
        opt: getattr(args, flag)
        for flag, opt in SLURM_FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    if given and args.backend != "slurm":
        first = next(f for f, o in SLURM_FLAGS.items() if o in given)
        raise ValueError(f"--{first.replace('_', '-')} needs --backend slurm")
    return given


def slurm_backend(args: argparse.Namespace, workers: int | None, threads: int = 1) -> Any:
    """The SlurmBackend for these arguments (options checked, submitit and sbatch present)."""
    from multitask_evidence.experiments.backends import make_backend

    return make_backend("slurm", workers=workers, threads=threads, slurm=slurm_options(args))
