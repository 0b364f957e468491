"""Per-network training throughput: a K-member ensemble vs the solo trainer, one network at a time.

The paper's recipe (batch 16, Adam lr 1e-3, constant) on the paper task (N = 24, D = 2,
sigma = 0.2, T = 20, encoder on), one torch thread, CPU. For each architecture the solo trainer
(``agents.train``) and the ensemble (``agents.ensemble.train_ensemble``, K members with their own
network and task seeds) alternate, solo, ensemble, solo, ensemble, ..., so both see the same
machine load; the rate is network-steps per second of training time (evaluation and set-up
excluded: the trainers' ``train_seconds``). Each ratio is the median ensemble rate over the
median solo rate, with the 1-minute load average at that point beside it (the machine is shared).
Also: the optimizer step over the stacked parameters of a K = 32 RNN with torch's fused,
foreach and single-tensor Adam.

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

import torch

ROOT = Path(__file__).resolve().parents[1]

from multitask_evidence.agents import TrainConfig, train  # noqa: E402
from multitask_evidence.agents.ensemble import ensemble_members, train_ensemble  # noqa: E402
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
    p.add_argument("--repeats", type=int, default=3, help="solo/ensemble alternations per arch")
    p.add_argument("--k", type=int, default=32, help="ensemble members")
    args = p.parse_args()
    torch.set_num_threads(1)
    spec = TaskSpec()
    budgets = {  # (solo steps, ensemble steps) per repeat: each a few seconds
        "rnn": (300, 40),
        "gru": (200, 20),
        "lstm": (200, 20),
        "transformer": (100, 10),
    }
    if args.quick:
        budgets = {a: (20, 3) for a in budgets}
        args.repeats, args.k = 1, 4
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for arch, (n_solo, n_ens) in budgets.items():
        ensemble_rate(spec, arch, args.k, 2)  # warm-up (held-out set, allocator)
        solo, ens, loads = [], [], []
        for r in range(args.repeats):
            solo.append(solo_rate(spec, arch, n_solo, seed=r))
            ens.append(ensemble_rate(spec, arch, args.k, n_ens))
            loads.append(os.getloadavg()[0])
        s, e = statistics.median(solo), statistics.median(ens)
        rows.append(
            {
                "arch": arch,
                "k": args.k,
                "solo_steps": n_solo,
                "ensemble_steps": n_ens,
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
    command = "python benchmarks/bench_ensemble.py" + (" --quick" if args.quick else "")
    result = {
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "torch": torch.__version__,
        "threads": 1,
        "rows": rows,
        "adam_step_ms_k32": adam,
        "wall_seconds": time.perf_counter() - t0,
    }
    stem = "ensemble.quick" if args.quick else "ensemble"
    out = ROOT / "benchmarks" / "results"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Ensemble vs solo training throughput (K = {args.k})",
        "",
        f"`{command}` - torch {torch.__version__}, 1 thread, {result['machine']}; paper recipe "
        "(batch 16, Adam lr 1e-3, constant), paper task (N = 24, D = 2, T = 20, encoder on). "
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
    ]
    (out / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
