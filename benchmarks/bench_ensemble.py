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
import timeit
from functools import partial
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


# Matmul shapes of one member's heaviest per-step product at batch 16, hidden 64 (T = 22):
# the recurrent product h [B, H] @ W [H, G H] of the scans (G = 1, 3, 4 gates) and the
# transformer's MLP input [B T, H] @ [H, 256]. The ensemble runs them as one batched matmul
# over K members.
MEMBER_MATMULS = {
    "rnn": (16, 64, 64),
    "gru": (16, 64, 192),
    "lstm": (16, 64, 256),
    "transformer": (16 * 22, 64, 256),
}


def flops_per_network_step(spec: TaskSpec, arch: str) -> float:
    """FLOPs of one network's forward + backward on a batch of 16 (torch's FLOP counter over the
    stacked model with one member: it counts the matmuls the ensemble runs; the solo LSTM's
    fused kernel is opaque to the counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = build_network(spec, _cfg(arch, 1).resolve())
    model = StackedNetwork([net])
    obs = torch.randn(1, 16, spec.n_steps, spec.obs_dim)
    counter = FlopCounterMode(display=False)
    with counter:
        readout, _ = model(obs, [torch.Generator().manual_seed(0)])
        readout.sum().backward()
    return float(counter.get_total_flops())


def dropout_elements_per_network_step(spec: TaskSpec, arch: str) -> int:
    """Dropout mask elements one network draws per training step at batch 16 (0 without dropout):
    the ensemble draws each member's masks from that member's own generator, as its solo run
    does, so this per-element cost is the same per network alone or in an ensemble."""
    net = build_network(spec, _cfg(arch, 1).resolve())
    model = StackedNetwork([net])
    drawn = []
    inner = model._dropout

    def counting(x: torch.Tensor, generators: Any) -> torch.Tensor:
        if model.arch.get("dropout", 0.0) > 0:
            drawn.append(x.numel())
        return inner(x, generators)

    model._dropout = counting  # type: ignore[method-assign]
    model(torch.randn(1, 16, spec.n_steps, spec.obs_dim), [torch.Generator().manual_seed(0)])
    return sum(drawn)


def bernoulli_ns_per_element(n: int, repeats: int) -> float:
    """Time (ns) per element of one ``bernoulli_`` draw from a generator, as a dropout mask."""
    noise, g = torch.empty(max(n, 1)), torch.Generator().manual_seed(0)
    return 1e9 * _best_seconds(partial(noise.bernoulli_, 0.9, generator=g), repeats) / noise.numel()


def _best_seconds(fn: Any, repeats: int) -> float:
    """Fastest of one warm-up call and ``repeats`` timed calls of fn."""
    return min(timeit.repeat(fn, number=1, repeat=repeats + 1))


def matmul_gflops(k: int, repeats: int) -> dict[str, float]:
    """Single-thread float32 matmul rates (GFLOP/s, best of ``repeats``): one large product
    (1024^3, the machine's practical peak) and each :data:`MEMBER_MATMULS` shape batched over
    ``k`` members (``torch.bmm``)."""
    out = {}
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    out["mm_1024"] = 2 * 1024**3 / _best_seconds(partial(torch.mm, a, b), repeats) / 1e9
    for arch, (m, n, q) in MEMBER_MATMULS.items():
        x, w = torch.randn(k, m, n), torch.randn(k, n, q)
        seconds = _best_seconds(partial(torch.bmm, x, w), max(3, repeats * 4))
        out[f"bmm_{arch}"] = 2 * k * m * n * q / seconds / 1e9
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
    # optimizer steps per network and repeat, the same for solo and ensemble; long enough that
    # a run's first steps (its first batch waits for the data thread) weigh little in its rate
    budgets = {"rnn": 300, "gru": 150, "lstm": 150, "transformer": 60}
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
    rates = matmul_gflops(args.k, 3 if args.quick else 10)
    for row in rows:
        flops = flops_per_network_step(spec, row["arch"])
        row["flops_per_network_step"] = flops
        row["solo_gflops"] = flops * row["solo_rate"] / 1e9
        row["ensemble_gflops"] = flops * row["ensemble_rate"] / 1e9
        row["bmm_gflops"] = rates[f"bmm_{row['arch']}"]
        elements = dropout_elements_per_network_step(spec, row["arch"])
        row["dropout_elements"] = elements
        row["dropout_ms"] = (
            elements * bernoulli_ns_per_element(elements, 3 if args.quick else 20) / 1e6
            if elements
            else 0.0
        )
        # the ratio an ensemble would reach if all its FLOPs ran at the batched-matmul rate of
        # the member shape and nothing but the dropout masks cost time: an upper bound for
        # this design
        floor_s = flops / (row["bmm_gflops"] * 1e9) + row["dropout_ms"] / 1e3
        row["ratio_bound"] = 1.0 / (row["solo_rate"] * floor_s)
    adam = adam_step_ms(args.k, 20 if args.quick else 200)
    trial_ms = trial_ms_per_network(spec, args.k, 3 if args.quick else 20)
    command = "python benchmarks/bench_ensemble.py" + (" --quick" if args.quick else "")
    result = {
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "torch": torch.__version__,
        "threads": 1,
        "rows": rows,
        "matmul_gflops": rates,
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
        "## Compute",
        "",
        "FLOPs of one network's forward + backward on a batch of 16 (torch's FLOP counter), "
        "the rates both trainers reach with them, and the batched-matmul rate at the member's "
        f"heaviest product ([{args.k}, m, n] @ [{args.k}, n, q], float32, 1 thread), and the "
        "time one network's dropout masks take to draw (bernoulli_, per member as in its solo "
        "run). 'Bound' = the ensemble's ratio if every FLOP ran at that matmul rate and "
        "nothing but the masks took time (no elementwise work, optimizer or data): an upper "
        "bound for this design on this machine. One large matmul (1024^3) runs at "
        f"{rates['mm_1024']:.0f} GFLOP/s here.",
        "",
        "| arch | MFLOP / network-step | solo GFLOP/s | ensemble GFLOP/s | member matmul (m, n, q) "
        "| its bmm GFLOP/s | dropout masks (ms / network-step) | bound |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['arch']} | {r['flops_per_network_step'] / 1e6:.1f} | {r['solo_gflops']:.1f} | "
            f"{r['ensemble_gflops']:.1f} | {MEMBER_MATMULS[r['arch']]} | {r['bmm_gflops']:.1f} | "
            f"{r['dropout_ms']:.2f} | {r['ratio_bound']:.2f}x |"
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
