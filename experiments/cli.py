"""The `mte` command line: one entry point, one sub-command module per job.

Each module in :mod:`experiments.commands` exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Sub-commands are imported lazily so that ``mte --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "train": ("experiments.commands.train", "train a supervised or RL agent into runs/<name>/"),
    "probe": ("experiments.commands.probe", "measure disentanglement of a trained run"),
    "sweep": (
        "experiments.commands.sweep",
        "train and probe a grid of settings (local pool or Ray)",
    ),
    "reproduce": ("experiments.commands.reproduce", "reproduce a figure of the paper"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mte",
        description="multitask-evidence: multi-task evidence aggregation, agents and probes",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:  # import only the module that will run
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
