"""`mte train`: train a supervised (or RL) agent on a task into ``runs/<name>/``.

Examples::

    mte train --arch gru --n-tasks 24 --name gru24          # default (fast) preset
    mte train --arch rnn --preset paper --name rnn-paper    # the paper's recipe
    mte train --name gru24 --resume                         # continue it (stored spec + config)
    mte train --algo ppo --arch gru --name ppo-gru          # RL (agents.rl)

Task options are the fields of :class:`envs.TaskSpec` (its ``seed`` is ``--task-seed``); agent
options are the fields of the chosen algorithm's config dataclass.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from experiments.dataclass_args import add_dataclass_arguments, collect

ALGO_CHOICES = ("supervised", "ppo", "sb3-recurrent-ppo")


def _algo_config(algo: str) -> tuple[type, Any]:
    """(config dataclass, train function) of an algorithm."""
    if algo == "supervised":
        from agents.config import TrainConfig
        from agents.trainer import train

        return TrainConfig, train
    try:
        from agents.rl import ALGOS
    except ImportError as e:
        raise SystemExit(f"mte train: --algo {algo} is not available (agents.rl: {e})") from e
    if algo not in ALGOS:
        raise SystemExit(f"mte train: --algo {algo} is not available; have {sorted(ALGOS)}")
    return ALGOS[algo]


def _selected_algo(argv: list[str]) -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--algo", choices=ALGO_CHOICES, default="supervised")
    known, _ = pre.parse_known_args(argv)
    return known.algo


def add_arguments(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    """Run options, the TaskSpec fields and the chosen algorithm's config fields."""
    from envs import TaskSpec

    argv = sys.argv[1:] if argv is None else argv
    algo = _selected_algo(argv)
    others = ", ".join(a for a in ALGO_CHOICES if a != algo)
    parser.epilog = (
        f"Agent options shown are those of --algo {algo}; pass --algo <{others}> --help to see "
        "another algorithm's."
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--algo",
        choices=ALGO_CHOICES,
        default="supervised",
        help="training algorithm: supervised (the paper's) or an RL algorithm",
    )
    run.add_argument(
        "--name",
        default=None,
        help="run folder name under --runs-dir (default: <algo>-<arch>-N<n_tasks>-<time>)",
    )
    run.add_argument(
        "--runs-dir", default="runs", help="parent folder of run folders (default: runs)"
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run folder from its last checkpoint (same result as "
        "an uninterrupted run)",
    )
    task = parser.add_argument_group("task (envs.TaskSpec fields)")
    add_dataclass_arguments(task, TaskSpec, "spec", skip=("extra",), rename={"seed": "task_seed"})
    cfg_cls, _ = _algo_config(algo)
    agent = parser.add_argument_group(f"agent ({cfg_cls.__name__} fields)")
    add_dataclass_arguments(agent, cfg_cls, "cfg", skip=("algo",))
    # the agent options were built for this algo (the parser only sees sys.argv)
    parser.set_defaults(_fields_algo=algo)


def run(args: argparse.Namespace) -> int:
    from envs import TaskSpec

    fields_algo = getattr(args, "_fields_algo", args.algo)
    if fields_algo != args.algo:
        print(
            f"mte train: options were parsed for --algo {fields_algo}, not {args.algo}; pass "
            "--algo on the command line",
            file=sys.stderr,
        )
        return 2
    cfg_cls, train_fn = _algo_config(args.algo)
    if args.resume and not args.name:
        print("mte train: --resume needs --name (the run folder to continue)", file=sys.stderr)
        return 2
    try:
        if args.resume and (Path(args.runs_dir) / args.name / "config.json").exists():
            # Continue exactly the stored run: its spec and config, not the command line's.
            spec, config = _stored_run(Path(args.runs_dir) / args.name, cfg_cls)
        else:
            spec = TaskSpec(**collect(args, "spec"))
            cfg_kw = collect(args, "cfg")
            if "algo" in {f.name for f in dataclasses.fields(cfg_cls)}:
                cfg_kw["algo"] = args.algo
            config = cfg_cls(**cfg_kw)
    except ValueError as e:
        print(f"mte train: {e}", file=sys.stderr)
        return 2
    arch = getattr(config, "arch", "agent")
    name = args.name or f"{args.algo}-{arch}-N{spec.n_tasks}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(args.runs_dir) / name
    print(
        f"training {args.algo} {arch} on N={spec.n_tasks}, D={spec.latent_dim}, "
        f"sigma={spec.sigma} -> {run_dir}"
    )
    print(f"  tensorboard --logdir {args.runs_dir}   (or: tensorboard --logdir {run_dir})")
    try:
        result = train_fn(spec, config, run_dir, args.resume)
    except ValueError as e:
        print(f"mte train: {e}", file=sys.stderr)
        return 2
    final = getattr(result, "final", None)
    if isinstance(final, dict) and "frac_ideal" in final:
        print(
            f"done: step {final['step']}, accuracy {final['acc']:.4f} (ideal "
            f"{final['ideal_acc']:.4f}, fraction of ideal {final['frac_ideal']:.4f}), "
            f"{final['train_seconds']:.1f} s of training"
        )
    print(f"run folder: {run_dir}")
    print(f"tensorboard: tensorboard --logdir {run_dir}")
    return 0


def _stored_run(run_dir: Path, cfg_cls: type) -> tuple[Any, Any]:
    """The spec and config a run folder was started with (for ``--resume``)."""
    import json

    from envs import TaskSpec

    spec = TaskSpec.from_json((run_dir / "spec.json").read_text())
    stored = json.loads((run_dir / "config.json").read_text())
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    return spec, cfg_cls(**{k: v for k, v in stored.items() if k in names})
