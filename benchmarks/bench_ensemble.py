"""Per-network training throughput: a K-member ensemble vs the solo trainer, one network at a time.

The paper's recipe (batch 16, Adam lr 1e-3, constant) on the paper task (N = 24, D = 2,
sigma = 0.2, T = 22 steps, encoder on), one torch thread, CPU. For each architecture the solo
trainer (``agents.train``) and the ensemble (``agents.ensemble.train_ensemble``, K members with their own
network and task seeds) alternate, solo, ensemble, solo, ensemble, ..., so both see the same
machine load, and both take the same number of optimizer steps per network; each is warmed up
once (untimed) first. The rate is network-steps per second of training time (evaluation and
set-up excluded: the trainers' ``train_seconds``, which include waiting for the prefetched
batch). Each ratio is the median ensemble rate over the median solo rate, with the 1-minute load
average after each repeat beside it (the machine is shared). Also: the time to draw one batch of
trials for all K members (``EnsembleTrials.draw``, per network-step: generation runs in the
prefetch thread, beside training), and the optimizer step over the stacked parameters of a
K = 32 RNN with torch's fused, foreach and single-tensor Adam.

    python benchmarks/bench_ensemble.py                # a few minutes
    python benchmarks/bench_ensemble.py --quick        # smoke test

Writes benchmarks/results/ensemble.json and ensemble.md (or ensemble.quick.*).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

from multitask_evidence.agents import TrainConfig, train  # noqa: E402
from multitask_evidence.agents.ensemble import (  # noqa: E402
    EnsembleTrials,
    ensemble_members,
    train_ensemble,
)
from multitask_evidence.agents.ensemble.model import StackedNetwork  # noqa: E402
from multitask_evidence.agents.ensemble.trainer import make_optimizer  # noqa: E402
from multitask_evidence.agents.run import build_network  # noqa: E402
from multitask_evidence.envs import TaskSpec  # noqa: E402

TARGETS = {"rnn": 3.0, "gru": 2.0, "lstm": 2.0, "transformer": 2.0}


def _cfg(arch: str, steps: int) -> TrainConfig:
    return TrainConfig(
        arch=arch,
        preset="paper",
        steps=steps,
        eval_every=steps,
        eval_trials=256,
        checkpoint_every=10**9,
        progress=False,
        num_threads=1,
        device="cpu",
    )


def solo_rate(spec: TaskSpec, arch: str, steps: int, seed: int) -> float:
    run = train(spec, TrainConfig(**{**_cfg(arch, steps).to_dict(), "seed": seed}))
    return steps / run.metrics[-1]["train_seconds"]


def ensemble_rate(spec: TaskSpec, arch: str, k: int, steps: int) -> float:
    specs, cfgs = ensemble_members(
        spec, _cfg(arch, steps), seeds=range(k), task_seeds=[spec.seed] * k
    )
    runs = train_ensemble(specs, cfgs)
    return k * steps / runs[0].metrics[-1]["train_seconds"]


def trial_ms_per_network(spec: TaskSpec, k: int, repeats: int) -> float:
    """Median time (ms) of one ``EnsembleTrials.draw`` of a batch of 16 for k members, over k."""
    trials = EnsembleTrials([spec] * k)
    rngs = [np.random.default_rng(s) for s in range(k)]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        trials.draw(16, rngs)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times) / k


def adam_step_ms(k: int, repeats: int) -> dict[str, float]:
    spec = TaskSpec()
    cfg = _cfg("rnn", 1).resolve()
    model = StackedNetwork([build_network(spec, cfg) for _ in range(k)])
    out = {}
    for impl in ("fused", "foreach", "loop"):
        opt = make_optimizer(list(model.stacked), cfg, torch.device("cpu"), impl)
        for p in model.stacked:
            p.grad = torch.randn_like(p) * 1e-3
        opt.step()
        t0 = time.perf_counter()
        for _ in range(repeats):
            opt.step()
        out[impl] = 1e3 * (time.perf_counter() - t0) / repeats
    return out


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smoke test: tiny budgets")
    p.add_argument("--repeats", type=int, default=5, help="solo/ensemble alternations per arch")
    p.add_argument("--k", type=int, default=32, help="ensemble members")
    args = p.parse_args()
    torch.set_num_threads(1)
    spec = TaskSpec()
    budgets = {  # optimizer steps per network and repeat, the same for solo and ensemble
        "rnn": 60,
        "gru": 40,
        "lstm": 40,
        "transformer": 20,
    }
    if args.quick:
        budgets = {a: 3 for a in budgets}
        args.repeats, args.k = 1, 4
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for arch, steps in budgets.items():
        solo_rate(spec, arch, 2, seed=0)  # warm-ups (held-out set, allocator, lazy init)
        ensemble_rate(spec, arch, args.k, 2)
        solo, ens, loads = [], [], []
        for r in range(args.repeats):
            solo.append(solo_rate(spec, arch, steps, seed=r))
            ens.append(ensemble_rate(spec, arch, args.k, steps))
            loads.append(os.getloadavg()[0])
        s, e = statistics.median(solo), statistics.median(ens)
        rows.append(
            {
                "arch": arch,
                "k": args.k,
                "steps_per_network": steps,
                "solo_rates": solo,
                "ensemble_rates": ens,
                "solo_rate": s,
                "ensemble_rate": e,
                "ratio": e / s,
                "target": TARGETS[arch],
                "loadavg_1min": loads,
            }
        )
        print(
            f"{arch}: solo {s:.0f}, ensemble {e:.0f} network-steps/s, ratio {e / s:.2f} "
            f"(load {loads})",
            flush=True,
        )
    adam = adam_step_ms(args.k, 20 if args.quick else 200)
    trial_ms = trial_ms_per_network(spec, args.k, 3 if args.quick else 20)
    command = "python benchmarks/bench_ensemble.py" + (" --quick" if args.quick else "")
    result = {
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "torch": torch.__version__,
        "threads": 1,
        "rows": rows,
        "adam_step_ms_k32": adam,
        "trial_draw_ms_per_network_step": trial_ms,
        "wall_seconds": time.perf_counter() - t0,
    }
    stem = "ensemble.quick" if args.quick else "ensemble"
    out = ROOT / "benchmarks" / "results"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Ensemble vs solo training throughput (K = {args.k})",
        "",
        f"`{command}` - torch {torch.__version__}, 1 thread, {result['machine']}; paper recipe "
        "(batch 16, Adam lr 1e-3, constant), paper task (N = 24, D = 2, "
        f"T = {spec.n_steps}, encoder on). "
        "Rates are network-steps per second of training time (median of the alternating "
        "repeats); load = 1-minute load average after each repeat.",
        "",
        "| arch | solo | ensemble | ratio | target | load |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['arch']} | {r['solo_rate']:.0f} | {r['ensemble_rate']:.0f} | {r['ratio']:.2f}x | "
            f">= {r['target']:g}x | {', '.join(f'{v:.1f}' for v in r['loadavg_1min'])} |"
            for r in rows
        ),
        "",
        f"Adam step over the stacked parameters of a K = {args.k} RNN-64 (ms): "
        + ", ".join(f"{k} {v:.3f}" for k, v in adam.items()),
        "",
        f"Trials for one step (EnsembleTrials.draw, batch 16, K = {args.k}): {trial_ms:.2f} ms "
        "per network-step (drawn in the prefetch thread while the model trains).",
        "",
    ]
    (out / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
