"""`mte compare`: are two agents' codes the same code? Linear CKA and RSA on the same trials.

Examples::

    mte compare runs/rnn-n24 runs/gru-n24                 # both recorded on 4096 fresh trials
    mte compare a.npz b.npz --json compare.json           # two saved recordings of the same trials
    mte compare runs/rnn-n24 rnn24.npz                    # a run on the recording's own trials
    mte compare a.npz b.npz --at all --permutations 200   # whole trajectories, not one step

A and B are each a run folder (recorded here with ``probes.record`` on ``--n`` trials of
``--seed``; two run folders must share their TaskSpec, so that the trials are the same) or a
recording saved with ``mte probe --save-recording`` (read with ``probes.load_recording``: plain
arrays, nothing unpickled). A run compared with a recording is recorded on the recording's
trials (its spec, n and seed). Both must then hold the same trials: the same n and identical
latents. The states compared are those at the decision step (``--at decision``, where the paper
reads the code) or each trial's whole trajectory, steps side by side (``--at all``: [n, T H];
with thousands of such units the CKA null costs n^2 per permutation, a few minutes at 4096
trials and 1000 permutations: lower ``--permutations`` or ``--n`` for a quick look).
Prints CKA and RSA with the 95th percentile of their permutation nulls and the p-values
(``probes.compare.compare_codes``); ``--json`` writes them too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_N = 4096
"""Trials recorded from a run folder unless ``--n`` says otherwise (as ``mte probe``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for name in ("a", "b"):
        parser.add_argument(
            name,
            type=Path,
            metavar=name.upper(),
            help="a run folder (runs/<name>) or a recording file (FILE.npz, from mte probe "
            "--save-recording or Recording.save)",
        )
    parser.add_argument(
        "--at",
        choices=("decision", "all"),
        default="decision",
        help="states at the decision step (default) or each trial's whole trajectory (slower: "
        "its CKA null costs n^2 per permutation)",
    )
    parser.add_argument(
        "--permutations",
        type=int,
        default=1000,
        help="re-pairings of B's trials against A's for the nulls (default 1000; 0 skips them)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=12345,
        help="seed of the trials recorded from run folders (default 12345, as mte probe) and "
        "of the permutations",
    )
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help=f"trials recorded when A and B are both run folders (default {DEFAULT_N}); "
        "a recording brings its own",
    )
    parser.add_argument(
        "--metric",
        choices=("correlation", "euclidean"),
        default="correlation",
        help="dissimilarity of the RSA's RDMs (default correlation)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write the numbers to OUT"
    )


def _check_args(args: argparse.Namespace) -> None:
    """ValueError naming the flag for a value the comparison would fail on later."""
    if args.permutations < 0:
        raise ValueError(
            f"--permutations must be >= 0 (0 skips the nulls), got {args.permutations}"
        )
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.n is not None and args.n < 3:
        raise ValueError(f"--n must be >= 3, got {args.n}")
    out = args.json
    if out is not None and (out.is_dir() or (out.parent.exists() and not out.parent.is_dir())):
        raise ValueError(f"--json {out}: not a file path")


def _is_file(path: Path) -> bool:
    """True for a recording file, False for a run folder; anything else is a ValueError."""
    if path.is_dir():
        return False
    if path.suffix == ".npz":
        return True
    what = "does not exist" if not path.exists() else "is not a folder"
    raise ValueError(f"{path} {what}: A and B must each be a run folder or a recording (.npz)")


def _spec_difference(a: Any, b: Any) -> str:
    """The TaskSpec fields whose values differ, as ``name a/b`` pairs."""
    da, db = a.to_dict(), b.to_dict()
    keys = [k for k in da if da.get(k) != db.get(k)] + [k for k in db if k not in da]
    return ", ".join(f"{k} {da.get(k)!r}/{db.get(k)!r}" for k in keys[:4]) + (
        ", ..." if len(keys) > 4 else ""
    )


def _record_run(path: Path, spec: Any, n: int, seed: int) -> Any:
    """Record the run folder ``path`` on n trials of ``spec`` drawn with ``seed``."""
    from multitask_evidence import agents
    from multitask_evidence.common.limits import check_bytes
    from multitask_evidence.probes.record import record

    check_bytes(f"--n {n} ({n} recorded trials of {spec.n_steps} steps)", n * spec.trial_bytes)
    return record(agents.load(path), spec, n, seed)


def _recordings(args: argparse.Namespace) -> tuple[Any, Any]:
    """The two recordings, on the same trials where run folders are recorded here."""
    from multitask_evidence.agents.run import read_kind, read_spec
    from multitask_evidence.probes.record import load_recording

    files = (_is_file(args.a), _is_file(args.b))
    if any(files) and args.n is not None:
        raise ValueError("--n is for two run folders; a recording brings its own trials")
    specs = {}
    for path, is_file in zip((args.a, args.b), files):
        if not is_file:
            read_kind(path)  # "... is not a run folder (no config.json)" before anything else
            specs[path] = read_spec(path)
    if not any(files):
        spec_a, spec_b = specs[args.a], specs[args.b]
        if spec_a != spec_b:
            differ = _spec_difference(spec_a, spec_b)
            raise ValueError(
                f"{args.a} and {args.b} were trained on different tasks ({differ}): recorded "
                "here they would not see the same trials; compare recordings of the same trials "
                "instead"
            )
        n = DEFAULT_N if args.n is None else args.n
        return (
            _record_run(args.a, spec_a, n, args.seed),
            _record_run(args.b, spec_b, n, args.seed),
        )
    if all(files):
        return load_recording(args.a), load_recording(args.b)
    file_path, run_path = (args.a, args.b) if files[0] else (args.b, args.a)
    rec = load_recording(file_path)
    if rec.seed is None:
        raise ValueError(
            f"{file_path} has no seed: its trials cannot be drawn again for {run_path}"
        )
    if specs[run_path] != rec.spec:
        raise ValueError(
            f"{run_path} was trained on another task than {file_path} was recorded on "
            f"({_spec_difference(specs[run_path], rec.spec)}); compare recordings of the same "
            "trials instead"
        )
    other = _record_run(run_path, rec.spec, rec.n, int(rec.seed))
    return (rec, other) if files[0] else (other, rec)


def _check_same_trials(a: Path, b: Path, rec_a: Any, rec_b: Any) -> None:
    """Two recordings of the same trials: the same n and identical latents."""
    if rec_a.n != rec_b.n:
        raise ValueError(
            f"{a} and {b} do not hold the same trials: n = {rec_a.n} and n = {rec_b.n}"
        )
    if not np.array_equal(rec_a.latent, rec_b.latent):
        raise ValueError(
            f"{a} and {b} do not hold the same trials: their latents differ (record both on "
            "the same spec, n and seed)"
        )


def _states(rec: Any, at: str) -> Any:
    """States [n, H] at the decision step, or [n, T H] (whole trajectories) for ``all``."""
    return rec.at() if at == "decision" else rec.hidden.reshape(rec.n, -1)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_table(c: Any, at: str) -> None:
    print(f"{'':8}{'value':>10}{'null p95':>10}{'p':>10}")
    print(f"{'CKA':8}{c.cka:>10.4f}{_fmt(c.cka_null_p95):>10}{_fmt(c.cka_p):>10}")
    print(f"{'RSA':8}{c.rsa:>10.4f}{_fmt(c.rsa_null_p95):>10}{_fmt(c.rsa_p):>10}")
    step = "the decision step" if at == "decision" else "whole trajectories"
    print(
        f"n {c.n} trials; units A {c.units_a}, B {c.units_b} ({step}); RSA over {c.rsa_items} "
        f"{c.rsa_over} ({c.metric} distance); {c.n_permutations} permutations, seed {c.seed}"
    )


def run(args: argparse.Namespace) -> int:
    from multitask_evidence.common.files import atomic_write_text
    from multitask_evidence.probes.compare import compare_codes

    _check_args(args)
    rec_a, rec_b = _recordings(args)
    _check_same_trials(args.a, args.b, rec_a, rec_b)
    result = compare_codes(
        _states(rec_a, args.at),
        _states(rec_b, args.at),
        latent=rec_a.latent,
        metric=args.metric,
        n_permutations=args.permutations,
        seed=args.seed,
    )
    _print_table(result, args.at)
    if args.json is not None:
        data = {
            "a": str(args.a),
            "b": str(args.b),
            "at": args.at,
            "trials_seed": None if rec_a.seed is None else int(rec_a.seed),
            "comparison": result.to_dict(),
        }
        atomic_write_text(args.json, json.dumps(data, indent=2) + "\n", mkdir=True)
        print(f"wrote {args.json}")
    return 0
