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

from multitask_evidence.experiments.dataclass_args import add_dataclass_arguments, collect


def _algo(name: str) -> Any:
    """The registry entry (:data:`agents.algos.ALGOS`) of ``--algo name``."""
    from multitask_evidence.agents.algos import get

    try:
        return get(name)
    except ValueError as e:
        raise SystemExit(f"mte train: --algo {name} is not available ({e})") from None


def _algo_choices() -> list[str]:
    from multitask_evidence.agents.algos import names

    return names()


def _selected_algo(argv: list[str]) -> str:
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--algo", choices=_algo_choices(), default="supervised")
    known, _ = pre.parse_known_args(argv)
    return known.algo


def add_arguments(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> None:
    """Run options, the TaskSpec fields and the chosen algorithm's config fields."""
    from multitask_evidence.envs import TaskSpec

    argv = sys.argv[1:] if argv is None else argv
    algo = _selected_algo(argv)
    choices = _algo_choices()
    others = ", ".join(a for a in choices if a != algo)
    parser.epilog = (
        f"Agent options shown are those of --algo {algo}; pass --algo <{others}> --help to see "
        "another algorithm's."
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--algo",
        choices=choices,
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
        help="continue the run folder from its last checkpoint with its stored settings (same "
        "result as an uninterrupted run); task/agent flags that differ from the stored ones are "
        "an error unless --override is given (progress, num-threads, device, max-seconds may "
        "always change)",
    )
    run.add_argument(
        "--override",
        action="store_true",
        help="with --resume: replace the stored settings by the task/agent flags given (the "
        "run then no longer equals an uninterrupted one)",
    )
    task = parser.add_argument_group("task (envs.TaskSpec fields)")
    add_dataclass_arguments(task, TaskSpec, "spec", skip=("extra",), rename={"seed": "task_seed"})
    cfg_cls = _algo(algo).config_cls
    agent = parser.add_argument_group(f"agent ({cfg_cls.__name__} fields)")
    add_dataclass_arguments(agent, cfg_cls, "cfg", skip=("algo",))
    # the agent options were built for this algo (the parser only sees sys.argv)
    parser.set_defaults(_fields_algo=algo)


def _flag(scope: str, field: str) -> str:
    return "--task-seed" if (scope, field) == ("spec", "seed") else "--" + field.replace("_", "-")


def run(args: argparse.Namespace) -> int:
    from multitask_evidence.agents.run import CONFIG_FILE, child_path
    from multitask_evidence.envs import TaskSpec

    fields_algo = getattr(args, "_fields_algo", args.algo)
    if fields_algo != args.algo:
        raise ValueError(
            f"options were parsed for --algo {fields_algo}, not {args.algo}; pass --algo on the "
            "command line"
        )
    if args.override and not args.resume:
        raise ValueError("--override applies to --resume only (it changes a stored run)")
    if args.name is not None and not args.name.strip():
        raise ValueError("--name must be a folder name under --runs-dir, got an empty name")
    if args.resume:
        if not args.name:
            raise ValueError("--resume needs --name (the run folder to continue)")
        run_dir = child_path(args.runs_dir, args.name, "--name")
        if not (run_dir / CONFIG_FILE).exists():
            raise ValueError(
                f"--resume: there is no run {run_dir} to continue (no config.json); drop --resume "
                "to start a new run"
            )
        algo, spec, config = _resumed(run_dir, args)
    else:
        algo = args.algo
        spec = TaskSpec(**collect(args, "spec"))
        config = _algo(algo).make_config(**collect(args, "cfg"))
        arch = getattr(config, "arch", "agent")
        name = args.name or f"{algo}-{arch}-N{spec.n_tasks}-{time.strftime('%Y%m%d-%H%M%S')}"
        run_dir = child_path(args.runs_dir, name, "--name")
    train_fn = _algo(algo).train
    arch = getattr(config, "arch", "agent")
    print(
        f"training {algo} {arch} on N={spec.n_tasks}, D={spec.latent_dim}, "
        f"sigma={spec.sigma} -> {run_dir}"
    )
    print(f"  tensorboard --logdir {args.runs_dir}   (or: tensorboard --logdir {run_dir})")
    from multitask_evidence.experiments.backends import PointLock

    with PointLock(run_dir):  # one writer per run folder (a sweep or another mte train)
        result = train_fn(spec, config, run_dir, args.resume)
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


def _resumed(run_dir: Path, args: argparse.Namespace) -> tuple[str, Any, Any]:
    """(algo, spec, config) that continue the run stored in ``run_dir``: its own settings, with
    the runtime options given; other task/agent flags that differ from the stored values are a
    ValueError naming them, unless ``--override`` (then they replace the stored values, and
    spec.json / config.json are rewritten)."""
    from multitask_evidence.agents.algos import for_kind
    from multitask_evidence.agents.run import (
        CONFIG_FILE,
        RUNTIME_FIELDS,
        read_kind,
        read_spec,
        write_spec_and_config,
    )

    kind, raw = read_kind(run_dir)
    try:
        algo = for_kind(kind).name
    except ValueError:
        raise ValueError(f"{run_dir / CONFIG_FILE}: unknown kind {kind!r}") from None
    typed_spec, typed_cfg = collect(args, "spec"), collect(args, "cfg")
    if algo != args.algo:
        if args.algo != "supervised" or typed_cfg:
            raise ValueError(
                f"--resume: {run_dir} is a {kind!r} run; pass --algo {algo} (or no --algo)"
            )
        typed_cfg = {}  # no agent flag was given; the stored run's algorithm is used
    cfg_cls = _algo(algo).config_cls
    spec = read_spec(run_dir)
    names = {f.name for f in dataclasses.fields(cfg_cls)}
    try:
        stored = cfg_cls(**{k: v for k, v in raw.items() if k in names})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{run_dir / CONFIG_FILE}: {e}") from None

    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    stored_spec = spec.to_dict()
    stored_cfg = dataclasses.asdict(stored)
    differ = [
        f"{_flag('spec', k)} {v!r} (stored {stored_spec[k]!r})"
        for k, v in typed_spec.items()
        if plain(v) != plain(stored_spec.get(k))
    ] + [
        f"{_flag('cfg', k)} {v!r} (stored {stored_cfg[k]!r})"
        for k, v in typed_cfg.items()
        if k not in RUNTIME_FIELDS and plain(v) != plain(stored_cfg.get(k))
    ]
    runtime = {k: v for k, v in typed_cfg.items() if k in RUNTIME_FIELDS}
    if differ and not args.override:
        raise ValueError(
            f"--resume continues {run_dir} with its stored settings, and these flags differ from "
            f"them: {', '.join(differ)}; drop them, or add --override to change them"
        )
    if not args.override:
        return algo, spec, dataclasses.replace(stored, **runtime)
    spec = spec.replace(**typed_spec) if typed_spec else spec
    config = dataclasses.replace(stored, **typed_cfg)
    write_spec_and_config(run_dir, spec, kind, config)
    return algo, spec, config
