"""Training speed and time to the ideal observer: default preset vs the paper's, side by side.

For each architecture on the paper task (N = 24, D = 2, sigma = 0.2, T = 20, encoder on) and each
preset: optimizer steps per second, and the training time (evaluation excluded) until the
decision accuracy reaches 0.99 of the ideal observer, chance-normalised
((acc - 0.5) / (ideal - 0.5), on >= 8192 held-out trials, the same trials for every run) and
stays there at the next two evaluations. The paper preset (1e5 batches, ~15 min per RNN) is
capped at ``--paper-seconds`` of training time; a run that has not reached the target by then
is reported as "not reached within the cap".

    python benchmarks/bench_train.py            # full (about 15-20 min on 2 cores)
    python benchmarks/bench_train.py --quick    # smoke test (about 1 min)

Writes benchmarks/results/train.json and train.md (or train.quick.*).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multitask_evidence.agents import TrainConfig, train  # noqa: E402
from multitask_evidence.envs import TaskSpec  # noqa: E402

TARGET = 0.99
HOLD = 2  # the target must still hold at this many following evaluations


def time_to_target(metrics: list[dict[str, Any]], target: float = TARGET, hold: int = HOLD) -> Any:
    """(train_seconds, step) of the first evaluation >= target that holds for the next ``hold``
    evaluations; None if never (a run ending before ``hold`` more evaluations does not count)."""
    for i in range(len(metrics) - hold):
        if all(m["frac_ideal"] >= target for m in metrics[i : i + hold + 1]):
            return metrics[i]["train_seconds"], metrics[i]["step"]
    return None


def bench_one(spec: TaskSpec, arch: str, preset: str, args: argparse.Namespace) -> dict[str, Any]:
    eval_every = args.paper_eval_every if preset == "paper" else args.default_eval_every
    cap = args.paper_seconds if preset == "paper" else args.default_seconds
    cfg = TrainConfig(
        arch=arch,
        preset=preset,
        eval_every=eval_every,
        eval_trials=args.eval_trials,
        max_seconds=cap,
        progress=False,
        num_threads=1,
        seed=args.seed,
        device="cpu",
        steps=args.steps,
    )
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    run = train(spec, cfg)
    wall = time.perf_counter() - t0
    final = run.final
    hit = time_to_target(run.metrics)
    resolved = run.config
    return {
        "arch": arch,
        "preset": preset,
        "batch_size": resolved.batch_size,
        "lr": resolved.lr,
        "schedule": resolved.schedule,
        "grad_clip": resolved.grad_clip,
        "budget_steps": resolved.steps,
        "cap_seconds": cap,
        "capped": final["step"] < resolved.steps,
        "eval_every": eval_every,
        "steps_done": final["step"],
        "train_seconds": final["train_seconds"],
        "wall_seconds_with_eval": wall,
        "steps_per_s": final["step"] / final["train_seconds"],
        "trials_per_s": final["step"] * resolved.batch_size / final["train_seconds"],
        "seconds_to_target": hit[0] if hit else None,
        "step_at_target": hit[1] if hit else None,
        "final_frac_ideal": final["frac_ideal"],
        "final_acc": final["acc"],
        "ideal_acc": final["ideal_acc"],
        "final_log_loss": final["log_loss"],
        "ideal_log_loss": final["ideal_log_loss"],
        "final_ece": final["ece"],
        "load_avg_1min_at_start": load0,
        "curve": [(m["train_seconds"], m["step"], m["frac_ideal"]) for m in run.metrics],
    }


NOTES = """
## What moved the needle (default preset)

Recipe search on the paper task, RNN-64 unless said, compared at equal step counts because the
machine was shared (load average 6-11 on 2 cores; wall times were 2-3x a quiet machine's):

- Batches of 128 at a peak lr of 3e-3 with a cosine decay to 0, gradient norm clipped at 1:
  0.99 of the ideal observer (held) after ~1000-1100 steps (128k-141k trials) for the ReLU RNN
  with torch's init, ~700 (GRU), ~900 (LSTM); the paper's recipe needs minutes for this.
  Batch 64 / lr 2e-3 did not reach 0.99 within 3000 steps; batch 256 / lr 5e-3 needed the same
  number of trials; lr 6e-3 no faster; orthogonal recurrent init slower.
- The identity recurrent init (IRNN) for the ReLU Elman RNN is what makes the representation
  disentangle fast: OOD r^2 (ridge, leave-one-quadrant-out, 8192 trials, last evidence step)
  0.92 after 1000 steps vs 0.71 with torch's init, which needs ~8000 steps (1M trials) to
  reach ~0.85-0.87. It costs accuracy speed: 0.99 of ideal is reached and held at step 3200
  (of 4000) instead of ~1000, hence the RNN's 4000-step budget. A higher lr (5e-3) or batch
  256 with identity init stalled at ~0.98 of ideal; weight decay (AdamW 0.1) did not raise OOD r^2.
- Transformer: it is compute-bound per trial (MLP 256 over every token, ~6x an RNN's cost), so
  small batches cost no throughput and give more updates: batch 32, lr 1.5e-3, 100 warm-up
  steps, cosine over 3000 steps reaches 0.99 held at step ~1700 (54k trials) and ends at 0.9995
  of ideal (OOD r^2 0.95). Batch 128 / lr 2e-3 / 1000 steps needed 64k trials (40 s at load 6.8,
  row superseded in train.json); the paper's batch-16 constant-lr recipe is also quick for the
  transformer (0.99 held at 23 s here), unlike for the RNNs.
- Data are built one batch ahead in a background thread (identical stream), which overlaps
  the generator with the torch step on the second core.
"""


def write_results(
    rows: list[dict[str, Any]], args: argparse.Namespace, command: str, load_end: Any = None
) -> None:
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stem = "train.quick" if args.quick else "train"
    meta = {
        "command": command,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "torch_threads": 1,
        "target": f"frac_ideal >= {TARGET}, held at the next {HOLD} evaluations",
        "eval_trials": args.eval_trials,
        "paper_cap_seconds": args.paper_seconds,
        "load_avg_at_end": list(load_end or os.getloadavg()),
    }
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    lines = [
        "# Training benchmark: default preset vs the paper's",
        "",
        f"Command: `{command}`  ",
        f"Machine: {meta['machine']}, torch {meta['torch']} (1 thread), CPU. "
        f"Load average at the end: {', '.join(f'{x:.1f}' for x in meta['load_avg_at_end'])}.  ",
        f"Task: the paper's (N = 24, D = 2, sigma = 0.2, T = 20, encoder on). Target: "
        f"{meta['target']}, on {args.eval_trials} held-out trials (chance-normalised fraction of the "
        "ideal observer on the same evidence). Times are training time (evaluation excluded).  ",
        f"The paper preset is capped at {args.paper_seconds:g} s of training "
        "(its full budget is 1e5 batches, about 15 min per RNN).",
        "",
        "| arch | preset | batch | lr | schedule | steps/s | trials/s | s to 0.99 (held) | step | "
        "final frac | final acc | ideal acc | log loss (ideal) | ECE | steps done | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        hit = (
            f"{r['seconds_to_target']:.1f}"
            if r["seconds_to_target"] is not None
            else (f"not within {r['train_seconds']:.0f} s" + (" (cap)" if r["capped"] else ""))
        )
        lines.append(
            f"| {r['arch']} | {r['preset']} | {r['batch_size']} | {r['lr']:g} | {r['schedule']} | "
            f"{r['steps_per_s']:.0f} | {r['trials_per_s']:.0f} | {hit} | {r['step_at_target'] or '-'} | "
            f"{r['final_frac_ideal']:.4f} | {r['final_acc']:.4f} | {r['ideal_acc']:.4f} | "
            f"{r['final_log_loss']:.4f} ({r['ideal_log_loss']:.4f}) | {r['final_ece']:.4f} | "
            f"{r['steps_done']} / {r['budget_steps']} | {r['load_avg_1min_at_start']:.1f} |"
        )
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n" + NOTES)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--archs", nargs="+", default=["rnn", "gru", "lstm", "transformer"])
    p.add_argument("--presets", nargs="+", default=["default", "paper"])
    p.add_argument(
        "--paper-seconds",
        type=float,
        default=120.0,
        help="training-time cap of the paper preset (s)",
    )
    p.add_argument(
        "--default-seconds",
        type=float,
        default=0.0,
        help="training-time cap of the default preset (0 = its full budget)",
    )
    p.add_argument("--paper-eval-every", type=int, default=500)
    p.add_argument("--default-eval-every", type=int, default=100)
    p.add_argument("--eval-trials", type=int, default=8192)
    p.add_argument("--steps", type=int, default=None, help="override the presets' step budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke test: tiny budgets")
    p.add_argument(
        "--render", action="store_true", help="only rewrite train.md from train.json (no training)"
    )
    args = p.parse_args(argv)
    if args.render:
        saved = json.loads((ROOT / "benchmarks" / "results" / "train.json").read_text())
        meta = saved["meta"]
        args.eval_trials, args.paper_seconds = meta["eval_trials"], meta["paper_cap_seconds"]
        write_results(saved["runs"], args, meta["command"], meta["load_avg_at_end"])
        return 0
    if args.quick:
        args.archs, args.paper_seconds, args.default_seconds = ["rnn"], 5.0, 5.0
        args.eval_trials, args.paper_eval_every, args.default_eval_every = 1024, 100, 25
    torch.set_num_threads(1)
    command = "python benchmarks/bench_train.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    spec = TaskSpec()
    rows = []
    for arch in args.archs:
        for preset in args.presets:
            row = bench_one(spec, arch, preset, args)
            rows.append(row)
            hit = row["seconds_to_target"]
            print(
                f"{arch:12s} {preset:8s} {row['steps_per_s']:7.1f} steps/s  to 0.99: "
                f"{'-' if hit is None else f'{hit:.1f} s'}  final {row['final_frac_ideal']:.4f}",
                flush=True,
            )
            write_results(rows, args, command.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
