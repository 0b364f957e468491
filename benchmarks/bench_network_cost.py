"""Where one quick-scale network's CPU time goes, against the bound its arithmetic sets.

For each architecture of ``mte reproduce fig3 --scale quick`` at its quick recipe (the
``default`` preset: its batch size and step budget) on the paper task (N = 24, D = 2,
sigma = 0.2, T = 22 steps, encoder on), one torch thread, CPU, measured in one process:

- ``gen_ms``: drawing one training batch (``envs.generate``: latents, noise, the frozen
  encoder's observations, labels), best of ``--repeats``;
- ``step_ms``: one optimizer step on a fixed batch (forward, backward, gradient clipping, Adam),
  best of ``--repeats``;
- the FLOPs of that step (torch's FLOP counter on the stacked model with one member, whose
  matmuls it can see) and of the batch's encoder (B x T_stim x sum of layer in x out x 2);
- the single-thread float32 matmul rate (one 1024^3 product), the machine's practical peak;
- a K-member ensemble (``--k``) against K solo runs of the same short budget, both timed in CPU
  seconds of the process (training, data thread and evaluation together), alternating;
- the probe of one network as the sweep runs it (``experiments.point.probe_point`` with the
  paper's Adam protocol, 4096 trials) at N = 2 (the Adam protocol's longest: 3000 batches) and
  N = 24.

From these: a network's training CPU-seconds (steps x (step + batch)), its probe seconds, and
the bound: (step FLOPs + encoder FLOPs) x steps at the matmul rate. Absolute times move with the
machine's load (recorded beside them); the ratios within one run are what to read.

    python benchmarks/bench_network_cost.py            # a few minutes; writes results/
    python benchmarks/bench_network_cost.py --quick    # smoke run, writes nothing
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import timeit
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multitask_evidence.agents import TrainConfig, train
from multitask_evidence.agents.ensemble import ensemble_members, train_ensemble
from multitask_evidence.agents.ensemble.model import StackedNetwork
from multitask_evidence.agents.run import build_network
from multitask_evidence.agents.trainer import objective
from multitask_evidence.envs import TaskSpec, generate

RESULTS = Path(__file__).resolve().parent / "results"
ARCHS = ("rnn", "rnn_nonleaky", "lstm", "transformer")


def recipe(arch: str, **over: Any) -> TrainConfig:
    """The quick recipe of ``arch`` (the default preset), one thread, no files."""
    base = {"arch": arch, "preset": "default", "progress": False, "num_threads": 1}
    return TrainConfig(**{**base, **over}).resolve()


def best_ms(fn: Any, repeats: int) -> float:
    """Fastest of ``repeats`` timed calls (after one warm-up), in ms."""
    return 1e3 * min(timeit.repeat(fn, number=1, repeat=repeats + 1))


def step_costs(spec: TaskSpec, arch: str, repeats: int) -> dict[str, float]:
    """Per batch: drawing it, one optimizer step on it, and their FLOPs."""
    cfg = recipe(arch)
    rng = np.random.default_rng(0)
    batch = generate(spec, cfg.batch_size, rng)
    gen = best_ms(partial(generate, spec, cfg.batch_size, rng), repeats)
    torch.manual_seed(0)
    net = build_network(spec, cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    obs = torch.as_tensor(batch.obs)
    targets = torch.as_tensor(batch.targets)
    mask = torch.as_tensor(batch.mask)
    params = list(net.parameters())

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        readout, _ = net(obs)
        objective(net, readout, targets, mask, spec).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or 1e9)
        opt.step()

    net.train()
    step_ms = best_ms(step, repeats)
    from torch.utils.flop_counter import FlopCounterMode

    model = StackedNetwork([build_network(spec, cfg)])
    counter = FlopCounterMode(display=False)
    with counter:
        readout, _ = model(obs[None], [torch.Generator().manual_seed(0)])
        readout.sum().backward()
    layers = [(2, 100), (100, 100), (100, 40)] if spec.encoder != "none" else []
    enc = 2.0 * cfg.batch_size * spec.stimulus_steps * sum(a * b for a, b in layers)
    return {
        "batch_size": cfg.batch_size,
        "steps": cfg.steps,
        "gen_ms": gen,
        "step_ms": step_ms,
        "step_flops": float(counter.get_total_flops()),
        "encoder_flops": enc,
    }


def matmul_gflops(repeats: int) -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 2 * 1024**3 / (best_ms(partial(torch.mm, a, b), repeats) / 1e3) / 1e9


def cpu_seconds(fn: Any) -> float:
    c = time.process_time()
    fn()
    return time.process_time() - c


def ensemble_vs_solo(spec: TaskSpec, arch: str, k: int, steps: int, repeats: int) -> dict:
    """CPU ms per network-step of K solo runs and of one K-member ensemble (same budget each,
    alternating ``repeats`` times; medians)."""
    over = {"steps": steps, "eval_every": steps, "eval_trials": 256, "checkpoint_every": 10**9}

    def solo() -> None:
        for s in range(k):
            train(TaskSpec(**{**spec.to_dict(), "seed": s}), recipe(arch, seed=s, **over))

    def ensemble() -> None:
        specs, cfgs = ensemble_members(
            spec, recipe(arch, **over), seeds=range(k), task_seeds=list(range(k))
        )
        train_ensemble(specs, cfgs)

    solo_ms, ens_ms = [], []
    for _ in range(repeats):
        solo_ms.append(1e3 * cpu_seconds(solo) / (k * steps))
        ens_ms.append(1e3 * cpu_seconds(ensemble) / (k * steps))
    s, e = float(np.median(solo_ms)), float(np.median(ens_ms))
    return {"solo_cpu_ms": s, "ensemble_cpu_ms": e, "ensemble_ratio": s / e, "k": k}


def probe_seconds(arch: str, n_tasks: int, n: int) -> float:
    """Wall seconds of the sweep's probe of one (briefly trained) network, Adam protocol on."""
    from multitask_evidence.experiments.point import probe_point

    folder = Path(tempfile.mkdtemp(prefix="bench-probe-"))
    try:
        train(TaskSpec(n_tasks=n_tasks), recipe(arch, steps=20, eval_every=20), folder / "run")
        t0 = time.perf_counter()
        probe_point(folder / "run", n=n, adam=True)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smoke run: tiny budgets, no files")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--k", type=int, default=8, help="ensemble members")
    p.add_argument("--archs", nargs="+", default=list(ARCHS))
    args = p.parse_args()
    torch.set_num_threads(1)
    spec = TaskSpec(n_tasks=24)
    ens_steps, probe_n = (40, 2048) if args.quick else (150, 4096)
    ens_repeats = 1 if args.quick else 3
    repeats = 2 if args.quick else args.repeats
    t_start = time.perf_counter()
    loads = [os.getloadavg()[0]]
    rate = matmul_gflops(repeats)
    rows = []
    for arch in args.archs:
        row = {"arch": arch, **step_costs(spec, arch, repeats)}
        row.update(ensemble_vs_solo(spec, arch, args.k, ens_steps, ens_repeats))
        row["probe_s_n24"] = probe_seconds(arch, 24, probe_n)
        row["probe_s_n2"] = probe_seconds(arch, 2, probe_n) if not args.quick else float("nan")
        steps = row["steps"]
        row["train_cpu_s"] = steps * (row["step_ms"] + row["gen_ms"]) / 1e3
        row["data_share"] = row["gen_ms"] / (row["step_ms"] + row["gen_ms"])
        row["bound_s"] = steps * (row["step_flops"] + row["encoder_flops"]) / (rate * 1e9)
        row["step_gflops"] = row["step_flops"] / row["step_ms"] / 1e6
        row["gen_gflops"] = row["encoder_flops"] / row["gen_ms"] / 1e6
        loads.append(os.getloadavg()[0])
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {
        "command": "python benchmarks/bench_network_cost.py" + (" --quick" if args.quick else ""),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "matmul_gflops": rate,
        "loadavg_1min": loads,
        "minutes": (time.perf_counter() - t_start) / 60,
        "rows": rows,
    }
    if args.quick:
        print(json.dumps(out, indent=1))
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "network_cost.json").write_text(json.dumps(out, indent=1) + "\n")
    (RESULTS / "network_cost.md").write_text(markdown(out))


def markdown(out: dict) -> str:
    rows = out["rows"]
    lines = [
        "# Where one quick-scale network's time goes",
        "",
        f"Command: `{out['command']}`; {out['machine']}; 1-minute load average "
        f"{min(out['loadavg_1min']):.1f}-{max(out['loadavg_1min']):.1f}; "
        f"{out['minutes']:.1f} min. Single-thread float32 matmul rate (1024^3): "
        f"{out['matmul_gflops']:.0f} GFLOP/s.",
        "",
        "Quick recipe per architecture, paper task at N = 24. Per step: drawing the batch "
        "(`gen`), one optimizer step on it (`step`), their FLOPs and rates. Per network: "
        "training CPU-seconds = steps x (step + gen); the bound = steps x FLOPs at the matmul "
        "rate; the sweep's probe (closed form, controls and the paper's Adam protocol).",
        "",
        "| arch | batch | steps | gen ms | step ms | data share | step GFLOP/s | encoder "
        "GFLOP/s | training CPU-s | bound s | training / bound | probe s (N = 2 / 24) | "
        f"ensemble K = {rows[0]['k'] if rows else '-'} per network, CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {r['batch_size']} | {r['steps']} | {r['gen_ms']:.2f} | "
            f"{r['step_ms']:.2f} | {r['data_share']:.0%} | {r['step_gflops']:.1f} | "
            f"{r['gen_gflops']:.1f} | {r['train_cpu_s']:.0f} | {r['bound_s']:.0f} | "
            f"{r['train_cpu_s'] / r['bound_s']:.1f}x | {r['probe_s_n2']:.1f} / "
            f"{r['probe_s_n24']:.1f} | {r['ensemble_ratio']:.2f}x |"
        )
    total = sum(r["train_cpu_s"] for r in rows)
    bound = sum(r["bound_s"] for r in rows)
    lines += [
        "",
        f"Over one network of each architecture: {total:.0f} training CPU-s against a bound of "
        f"{bound:.0f} s ({total / bound:.1f}x). The encoder's product is part of the bound: a "
        "batch's observations cost "
        + ", ".join(f"{r['arch']} {r['encoder_flops'] / r['step_flops']:.0%}" for r in rows)
        + " of its optimizer step's FLOPs.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
