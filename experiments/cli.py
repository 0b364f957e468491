"""The `mte` command line: one entry point, one sub-command module per job.

Each module in :mod:`experiments.commands` exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Sub-commands are imported lazily so that ``mte --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

COMMANDS = {
    "train": ("multitask_evidence.experiments.commands.train", "train a supervised or RL agent into runs/<name>/"),
    "probe": ("multitask_evidence.experiments.commands.probe", "measure disentanglement of a trained run"),
    "compare": ("multitask_evidence.experiments.commands.compare", "compare two codes on the same trials (CKA, RSA)"),
    "sweep": (
        "multitask_evidence.experiments.commands.sweep",
        "train and probe a grid of settings (local pool or Ray)",
    ),
    "reproduce": ("multitask_evidence.experiments.commands.reproduce", "reproduce a figure of the paper"),
}


DIST_NAME = "multitask-evidence"


def package_version() -> str:
    """The installed distribution's version; from a source checkout that is not installed, the
    version in its pyproject.toml; else 'unknown'."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DIST_NAME)
    except PackageNotFoundError:
        pass
    import re
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        m = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
    except OSError:
        m = None
    return m.group(1) if m else "unknown"


EXIT_USAGE = 2
"""Exit status of a user error (a bad flag, file or value), as argparse uses."""


class Parser(argparse.ArgumentParser):
    """argparse without abbreviations (``--n-task`` is not ``--n-tasks``) whose errors are one
    line: ``mte <command>: error: <what>``, exit status 2."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}\n")


def one_line(message: object) -> str:
    """A message on one line (newlines and runs of spaces collapsed)."""
    return " ".join(str(message).split())


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = Parser(
        prog="mte",
        description="multitask-evidence: multi-task evidence aggregation, agents and probes",
    )
    parser.add_argument(
        "--version", action="version", version=f"mte ({DIST_NAME}) {package_version()}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    wanted = next((a for a in argv if not a.startswith("-")), None)
    parser.commands = {}  # type: ignore[attr-defined]
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        parser.commands[name] = p  # type: ignore[attr-defined]
        if name == wanted:  # import only the module that will run
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A user error (ValueError, a file that cannot be read, a diverged
    training) ends with one line on stderr and exit status 2; anything else is a bug and keeps
    its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the command's own parser: "mte train: error: ..."
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except ValueError as e:
        message = str(e)
    except OSError as e:
        if e.filename is None:
            raise
        message = f"{e.filename}: {e.strerror}"
    except RuntimeError as e:
        from multitask_evidence.agents.trainer import TrainingDivergedError
        from multitask_evidence.experiments.backends import FolderInUseError

        if isinstance(e, TrainingDivergedError):
            message = f"training diverged: {e}"
        elif isinstance(e, FolderInUseError):
            message = str(e)
        else:
            raise
    print(f"mte {args.command}: error: {one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
