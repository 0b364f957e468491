"""Time to disentanglement: the `paper` recipe against the `default` recipe, probed as they train.

On the paper task (D = 2, N = 24, sigma = 0.2, T = 20, encoder on; ReLU RNN-64) this trains the
``paper`` preset (batch 16, Adam 1e-3, 1e5 batches) and the ``default`` preset one after the
other, and every ``--probe-every`` seconds of *training* time (evaluation and probing excluded)
records the network's decision-step states on the same 4096 trials and measures the OOD r^2
(closed-form ridge, leave one quadrant out, median over the 4 folds) and the in-distribution r^2.

Target (issue 4): the default preset reaches the paper preset's *final* OOD r^2 in <= 1/15 of the
paper preset's training time. The result names the time at which the default preset first
reaches it (``t_default_reach``) and the ratio to the paper preset's total time.

    python benchmarks/bench_disentangle.py          # full (about 15-40 min on 2 cores)
    python benchmarks/bench_disentangle.py --quick  # smoke: 1500 paper batches, 600 default ones

A probe can only happen at an evaluation of the trainer (its ``on_eval`` hook), so the curve's
resolution is the larger of ``--*-probe-every`` and ``--*-eval-every``. Quick-mode numbers say
the script works, nothing about the target (both budgets are tiny).

Full runs write benchmarks/results/disentangle.{json,md}; quick runs print and write to --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def train_and_probe(
    preset: str,
    steps: int | None,
    eval_every: int | None,
    probe_every: float,
    n_probe: int,
    out: Path,
    threads: int,
    seed: int,
) -> dict[str, Any]:
    """Train one preset with a probe hook; returns its curve and summary."""
    import torch

    import agents
    from envs import TaskSpec
    from probes import theory
    from probes.decoding import decode, ood_generalisation
    from probes.record import record

    torch.set_num_threads(threads)
    spec = TaskSpec()  # the paper task
    cfg = agents.TrainConfig(
        preset=preset,
        steps=steps,
        eval_every=eval_every,
        seed=seed,
        num_threads=threads,
        progress=False,
    )
    resolved = cfg.resolve()
    curve: list[dict[str, Any]] = []
    last = {"t": -np.inf}

    def probe(row: dict[str, Any], network: Any) -> None:
        final = row["step"] >= resolved.steps
        if row["train_seconds"] - last["t"] < probe_every and not final:
            return
        last["t"] = row["train_seconds"]
        t0 = time.perf_counter()
        rec = record(network, spec, n_probe, 12345)
        h, x = rec.at(), rec.latent
        ood = ood_generalisation(h, x)
        ind = decode(h, x)
        curve.append(
            {
                "step": int(row["step"]),
                "train_seconds": float(row["train_seconds"]),
                "ood_r2": ood.r2_median,
                "ood_r2_q25": ood.r2_q25,
                "ood_r2_q75": ood.r2_q75,
                "id_r2": ind.r2,
                "acc": float(row.get("acc", np.nan)),
                "frac_ideal": float(row.get("frac_ideal", np.nan)),
                "probe_seconds": time.perf_counter() - t0,
            }
        )
        c = curve[-1]
        print(
            f"[{preset}] step {c['step']:>6}  train {c['train_seconds']:7.1f} s  OOD r2 "
            f"{c['ood_r2']:.3f}  ID r2 {c['id_r2']:.3f}  acc {c['acc']:.4f}",
            flush=True,
        )

    run_dir = out / preset
    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    agents.train(spec, cfg, run_dir, on_eval=probe)
    return {
        "preset": preset,
        "config": resolved.to_dict(),
        "curve": curve,
        "wall_seconds": time.perf_counter() - t0,
        "train_seconds": curve[-1]["train_seconds"] if curve else None,
        "final_ood_r2": curve[-1]["ood_r2"] if curve else None,
        "ceiling": theory.ceiling(spec),
    }


def summarise(paper: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """Time for the default preset to reach, and keep, the paper preset's final OOD r2.

    The paper's final value is the median of its last three probes (single probes are noisy);
    ``t_default_reach`` is the first probe of the default run from which every later probe stays
    at or above it (early, untrained networks can cross it by chance, then fall back), and
    ``t_default_first_cross`` the first probe at or above it.
    """
    tail = [c["ood_r2"] for c in paper["curve"][-3:]]
    target = float(np.median(tail)) if tail else None
    curve = default["curve"]
    vals = [c["ood_r2"] for c in curve]
    first = next(
        (c["train_seconds"] for c in curve if target is not None and c["ood_r2"] >= target), None
    )
    hold = None
    for i, c in enumerate(curve):
        if target is not None and min(vals[i:]) >= target:
            hold = c["train_seconds"]
            break
    ratio = hold / paper["train_seconds"] if hold is not None and paper["train_seconds"] else None
    return {
        "paper_final_ood_r2": target,
        "paper_last_probe_ood_r2": paper["final_ood_r2"],
        "paper_train_seconds": paper["train_seconds"],
        "default_final_ood_r2": default["final_ood_r2"],
        "default_train_seconds": default["train_seconds"],
        "t_default_reach": hold,
        "t_default_first_cross": first,
        "ratio_to_paper_time": ratio,
        "target_ratio": 1 / 15,
        "meets_target": bool(ratio is not None and ratio <= 1 / 15),
    }


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]

    def f(v: Any, d: int = 3) -> str:
        return "-" if v is None else f"{v:.{d}f}"

    lines = [
        "# Time to disentanglement: `paper` preset against `default` preset",
        "",
        f"Command: `{result['command']}`. Paper task (D = 2, N = 24, sigma = 0.2, T = 20, encoder on), "
        "ReLU RNN-64, OOD r2 = closed-form ridge, leave one quadrant out, median of 4 folds, on "
        f"{result['n_probe']} fixed trials; time = training seconds (evaluation and probes excluded). "
        f"{result['note']}",
        "",
        "| | paper preset | default preset |",
        "|---|---|---|",
        f"| training seconds | {f(s['paper_train_seconds'], 1)} | {f(s['default_train_seconds'], 1)} |",
        f"| final OOD r2 | {f(s['paper_final_ood_r2'])} (median of the last 3 probes; last {f(s['paper_last_probe_ood_r2'])}) | {f(s['default_final_ood_r2'])} (last probe) |",
        "",
        f"Default preset reaches (and keeps) the paper preset's final OOD r2 after "
        f"{f(s['t_default_reach'], 1)} s (first crossing {f(s['t_default_first_cross'], 1)} s) = "
        f"{f(s['ratio_to_paper_time'], 4)} of the paper preset's time "
        f"(target <= {1 / 15:.4f}): **{'met' if s['meets_target'] else 'not met'}**.",
        "",
    ]
    for run in (result["paper"], result["default"]):
        lines += [
            f"## {run['preset']} preset curve",
            "",
            "| step | train s | OOD r2 [IQR] | ID r2 | acc |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c['step']} | {c['train_seconds']:.1f} | {c['ood_r2']:.3f} [{c['ood_r2_q25']:.3f}, {c['ood_r2_q75']:.3f}] | {c['id_r2']:.3f} | {c['acc']:.4f} |"
            for c in run["curve"]
        ]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="smoke: 1500 paper batches, 600 default batches"
    )
    ap.add_argument(
        "--paper-steps", type=int, default=None, help="paper preset batches (default: preset's 1e5)"
    )
    ap.add_argument(
        "--default-steps", type=int, default=None, help="default preset batches (default: preset's)"
    )
    ap.add_argument(
        "--paper-probe-every",
        type=float,
        default=30.0,
        help="training seconds between probes (paper)",
    )
    ap.add_argument(
        "--default-probe-every",
        type=float,
        default=2.0,
        help="training seconds between probes (default)",
    )
    ap.add_argument(
        "--paper-eval-every",
        type=int,
        default=None,
        help="batches between evaluations (probe opportunities) of the paper preset (preset: 1000)",
    )
    ap.add_argument(
        "--default-eval-every",
        type=int,
        default=50,
        help="batches between evaluations (probe opportunities) of the default preset (50)",
    )
    ap.add_argument("--n-probe", type=int, default=4096, help="trials recorded per probe")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training")
    ap.add_argument("--seed", type=int, default=0, help="training seed of both runs")
    ap.add_argument(
        "--out", type=Path, default=Path("/tmp/bench_disentangle"), help="run folders go here"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.paper_steps = args.paper_steps or 1500
        args.default_steps = args.default_steps or 600
        args.paper_probe_every = min(args.paper_probe_every, 5.0)
        args.paper_eval_every = args.paper_eval_every or 250
    args.out.mkdir(parents=True, exist_ok=True)
    paper = train_and_probe(
        "paper",
        args.paper_steps,
        args.paper_eval_every,
        args.paper_probe_every,
        args.n_probe,
        args.out,
        args.threads,
        args.seed,
    )
    default = train_and_probe(
        "default",
        args.default_steps,
        args.default_eval_every,
        args.default_probe_every,
        args.n_probe,
        args.out,
        args.threads,
        args.seed,
    )
    cmd = "python benchmarks/bench_disentangle.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    result = {
        "command": cmd.strip(),
        "n_probe": args.n_probe,
        "threads": args.threads,
        "machine": platform.machine(),
        "note": "Timings depend on the machine and its load; compare ratios, not seconds.",
        "summary": summarise(paper, default),
        "paper": paper,
        "default": default,
    }
    print(json.dumps(result["summary"], indent=2))
    folder = args.out if args.quick else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "disentangle.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / "disentangle.md").write_text(markdown(result))
    print(f"wrote {folder / 'disentangle.json'} and {folder / 'disentangle.md'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
