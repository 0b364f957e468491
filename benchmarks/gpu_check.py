"""Ensemble check on an accelerator: member equality and throughput.

1. Equality: a K-member ensemble trained on the device vs each member's solo run on CPU (same
   seeds), for rnn, gru, lstm and the transformer (dropout 0: on CUDA the members' dropout masks
   come from their own generators, not the solo run's Philox stream, so only the dropout-free
   model can be compared weight for weight). Reports the largest weight difference (the
   attention key biases excluded: their gradient is zero in exact arithmetic and Adam steps them
   along rounding noise) and the largest difference of the logged training losses.
2. Throughput: network-steps per second (K * steps / training seconds, evaluation excluded) of
   RNN-64 at the paper recipe (batch 16, Adam lr 1e-3, constant) for K = 1, 8, 32, 128.

    bash benchmarks/gpu_check.sh                 # on a GPU machine (a few minutes)
    bash benchmarks/gpu_check.sh --smoke         # CPU, tiny sizes, seconds (CI)

Writes <out>/gpu_check.json and gpu_check.md (default out: benchmarks/results).
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

from multitask_evidence.agents import TrainConfig, train  # noqa: E402
from multitask_evidence.agents.ensemble import ensemble_members, train_ensemble  # noqa: E402
from multitask_evidence.envs import TaskSpec  # noqa: E402

ARCHS = ("rnn", "gru", "lstm", "transformer")


def _key_bias_free(state: dict[str, torch.Tensor], width: int) -> dict[str, torch.Tensor]:
    out = dict(state)
    for name, value in state.items():
        if name.endswith("qkv.bias"):
            out[name] = torch.cat([value[:width], value[2 * width :]])
    return out


def equality(arch: str, device: str, args: argparse.Namespace) -> dict[str, Any]:
    """Ensemble on ``device`` vs solo CPU runs: largest weight and loss differences."""
    spec = TaskSpec(n_tasks=args.eq_tasks, stimulus_steps=args.eq_stimulus)
    cfg = TrainConfig(
        arch=arch,
        preset="paper",
        hidden_size=args.eq_hidden,
        n_heads=4,
        mlp_size=2 * args.eq_hidden,
        dropout=0.0,
        steps=args.eq_steps,
        eval_every=max(1, args.eq_steps // 4),
        eval_trials=256,
        progress=False,
        device=device,
    )
    specs, cfgs = ensemble_members(spec, cfg, seeds=range(args.eq_k), task_seeds=range(args.eq_k))
    runs = train_ensemble(specs, cfgs)
    weight, loss = 0.0, 0.0
    for k in range(args.eq_k):
        solo = train(specs[k], TrainConfig(**{**cfgs[k].to_dict(), "device": "cpu"}))
        a = _key_bias_free(solo.network.state_dict(), args.eq_hidden)
        b = _key_bias_free(
            {n: v.cpu() for n, v in runs[k].network.state_dict().items()}, args.eq_hidden
        )
        weight = max(weight, max(float((a[n] - b[n]).abs().max()) for n in a))
        loss = max(
            loss, max(abs(x["loss"] - y["loss"]) for x, y in zip(solo.metrics, runs[k].metrics))
        )
    return {
        "arch": arch,
        "k": args.eq_k,
        "steps": args.eq_steps,
        "max_weight_diff": weight,
        "max_loss_diff": loss,
        "ok": weight <= args.tol and loss <= args.tol,
    }


def throughput(k: int, device: str, args: argparse.Namespace) -> dict[str, Any]:
    """Network-steps per second of a K-member RNN ensemble at the paper recipe."""
    cfg = TrainConfig(
        arch="rnn",
        preset="paper",
        hidden_size=args.hidden,
        steps=args.steps,
        eval_every=args.steps,
        eval_trials=256,
        checkpoint_every=10**9,
        progress=False,
        device=device,
    )
    specs, cfgs = ensemble_members(TaskSpec(), cfg, seeds=range(k), task_seeds=range(k))
    train_ensemble(specs, [TrainConfig(**{**c.to_dict(), "steps": 3}) for c in cfgs])  # warm-up
    runs = train_ensemble(specs, cfgs)
    seconds = runs[0].metrics[-1]["train_seconds"]
    return {
        "k": k,
        "steps": args.steps,
        "train_seconds": seconds,
        "network_steps_per_s": k * args.steps / seconds,
        "ms_per_step": 1e3 * seconds / args.steps,
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes, a few seconds")
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--tol", type=float, default=1e-4, help="largest allowed difference")
    args = p.parse_args()
    if args.smoke:
        args.device, ks = "cpu", [1, 2]
        args.eq_k, args.eq_steps, args.eq_hidden, args.eq_tasks, args.eq_stimulus = 2, 20, 16, 3, 6
        args.hidden, args.steps = 16, 10
        torch.set_num_threads(1)
    else:
        ks = [1, 8, 32, 128]
        args.eq_k, args.eq_steps, args.eq_hidden, args.eq_tasks, args.eq_stimulus = (
            4,
            200,
            64,
            24,
            20,
        )
        args.hidden, args.steps = 64, 200
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here (use --smoke for the CPU check)")
    t0 = time.perf_counter()
    eq = [equality(a, args.device, args) for a in ARCHS]
    tp = [throughput(k, args.device, args) for k in ks]
    name = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else (platform.processor() or platform.machine())
    )
    result = {
        "command": "bash benchmarks/gpu_check.sh" + (" --smoke" if args.smoke else ""),
        "device": args.device,
        "device_name": name,
        "torch": torch.__version__,
        "smoke": args.smoke,
        "tolerance": args.tol,
        "equality": eq,
        "throughput": tp,
        "loadavg": os.getloadavg(),
        "wall_seconds": time.perf_counter() - t0,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Ensemble check on {args.device} ({name})",
        "",
        f"`{result['command']}` - torch {torch.__version__}",
        "",
        f"## Member equality: ensemble on {args.device} vs solo runs on CPU (tolerance {args.tol:g})",
        "",
        "| arch | K | steps | max weight diff | max loss diff | ok |",
        "|---|---|---|---|---|---|",
        *(
            f"| {e['arch']} | {e['k']} | {e['steps']} | {e['max_weight_diff']:.2e} | "
            f"{e['max_loss_diff']:.2e} | {e['ok']} |"
            for e in eq
        ),
        "",
        f"## Throughput: RNN-{args.hidden}, batch 16, Adam lr 1e-3",
        "",
        "| K | ms / step | network-steps / s |",
        "|---|---|---|",
        *(f"| {t['k']} | {t['ms_per_step']:.2f} | {t['network_steps_per_s']:.0f} |" for t in tp),
        "",
    ]
    (out / "gpu_check.md").write_text("\n".join(lines))
    print("\n".join(lines))
    if not all(e["ok"] for e in eq):
        sys.exit("gpu_check: a member differs from its solo run beyond the tolerance")


if __name__ == "__main__":
    main()
