"""Does the quick recipe train the paper's model to the same code as the paper's recipe?

A faster recipe may change optimisation only (batch, learning rate, schedule, steps), never the
model (torch's default init for the Elman RNN). This benchmark trains the ReLU RNN-64 on the
paper task (D = 2, sigma = 0.2, T = 20, encoder on) at N = 2 and N = 24 with both recipes, three
independent networks each (network seed s draws its own weights, task draw (encoder weights) and
trial stream: ``TaskSpec(seed=s)``, ``TrainConfig(seed=s)``), and probes every network with the
project's default OOD estimator (closed-form ridge, leave one quadrant out) on the same 4096
trials, beside the same network untrained.

Pass: for each N, the median over networks of the per-network OOD r^2 of the quick recipe lies
within ``--tolerance`` (0.03) of the paper recipe's. ``--recipes paper,quick4000,quick8000``
compares several step budgets of the default preset.

    python benchmarks/bench_recipe.py                      # both recipes, N = 2, 24, seeds 0-2
    python benchmarks/bench_recipe.py --recipes paper      # only the reference networks
    python benchmarks/bench_recipe.py --smoke              # tiny budgets: says the script works

Trained run folders are kept under ``--out`` (default runs/bench_recipe); a re-run skips the
finished ones and re-probes them, so it can be stopped and resumed. Results:
benchmarks/results/recipe.{json,md} (not written with --smoke).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PROBE_N, PROBE_SEED = 4096, 12345


def recipe_config(recipe: str, seed: int, smoke: bool) -> dict[str, Any]:
    """TrainConfig fields of a recipe (the RNN's model fields are never changed).

    recipe: 'paper', 'quick' (the default preset with its own steps) or 'quick<S>' (the default
    preset with S steps, to compare budgets)."""
    base: dict[str, Any] = {"arch": "rnn", "seed": seed, "num_threads": 1, "progress": False}
    if recipe == "paper":
        base.update(preset="paper", eval_every=25_000, eval_trials=4096)
    elif recipe.startswith("quick"):
        from multitask_evidence.agents.config import PRESETS

        steps = int(recipe[5:]) if recipe[5:] else int(PRESETS["default"]["steps"]["rnn"])
        base.update(preset="default", eval_trials=4096, steps=steps, eval_every=steps)
    else:
        raise ValueError(f"recipe must be 'paper', 'quick' or 'quick<steps>', got {recipe!r}")
    if smoke:
        base.update(steps=30, eval_every=30)
    return base


def train_one(recipe: str, n_tasks: int, seed: int, out: str, smoke: bool) -> dict[str, Any]:
    """Train (or finish) one network and probe it beside its untrained self."""
    import torch

    torch.set_num_threads(1)
    from multitask_evidence import agents
    from multitask_evidence.envs import TaskSpec
    from multitask_evidence.probes.decoding import ood_generalisation
    from multitask_evidence.probes.record import record

    spec = TaskSpec(n_tasks=n_tasks, seed=seed)
    cfg = agents.TrainConfig(**recipe_config(recipe, seed, smoke))
    run_dir = Path(out) / f"{recipe}-N{n_tasks}-s{seed}"
    done = (run_dir / "model.pt").exists() and (run_dir / "done").exists()
    t0 = time.perf_counter()
    if not done:
        resume = (run_dir / "config.json").exists()
        agents.train(spec, cfg, run_dir, resume=resume)
        (run_dir / "done").write_text("ok\n")
    wall = time.perf_counter() - t0
    loaded = agents.load(run_dir)
    rec = record(loaded, spec, PROBE_N, PROBE_SEED)
    ood = ood_generalisation(rec.at(), rec.latent)
    rec0 = record(agents.untrained(loaded), spec, PROBE_N, PROBE_SEED)
    ood0 = ood_generalisation(rec0.at(), rec0.latent)
    metrics = agents.run.read_metrics(run_dir)
    return {
        "recipe": recipe,
        "n_tasks": n_tasks,
        "seed": seed,
        "ood_r2": ood.r2_median,
        "ood_r2_untrained": ood0.r2_median,
        "frac_ideal": metrics[-1].get("frac_ideal") if metrics else None,
        "steps": cfg.resolve().steps,
        "wall_seconds_this_call": wall,
        "train_seconds": metrics[-1].get("train_seconds") if metrics else None,
    }


def summarise(rows: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """Median over networks of the per-network OOD r^2 per (recipe, N), and the quick - paper gap."""
    out: dict[str, Any] = {}
    for n in sorted({r["n_tasks"] for r in rows}):
        cell: dict[str, Any] = {}
        for recipe in sorted({r["recipe"] for r in rows}):
            vals = [r["ood_r2"] for r in rows if r["recipe"] == recipe and r["n_tasks"] == n]
            base = [
                r["ood_r2_untrained"] for r in rows if r["recipe"] == recipe and r["n_tasks"] == n
            ]
            secs = [
                r["train_seconds"]
                for r in rows
                if r["recipe"] == recipe and r["n_tasks"] == n and r["train_seconds"]
            ]
            if vals:
                cell[recipe] = {
                    "median": float(np.median(vals)),
                    "values": vals,
                    "untrained_median": float(np.median(base)),
                    "train_seconds_median": float(np.median(secs)) if secs else None,
                }
        if "paper" in cell:
            for recipe in [k for k in cell if k.startswith("quick")]:
                gap = cell[recipe]["median"] - cell["paper"]["median"]
                cell[recipe]["minus_paper"] = gap
                cell[recipe]["within_tolerance"] = bool(abs(gap) <= tolerance)
        out[f"N={n}"] = cell
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--recipes", default="paper,quick")
    p.add_argument("--n-tasks", default="2,24")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tolerance", type=float, default=0.03)
    p.add_argument("--out", default=str(ROOT / "runs" / "bench_recipe"))
    p.add_argument("--smoke", action="store_true", help="tiny budgets (the numbers mean nothing)")
    a = p.parse_args(argv)
    recipes = [r for r in a.recipes.split(",") if r]
    jobs = [
        (r, int(n), int(s), a.out, a.smoke)
        for n in a.n_tasks.split(",")
        for s in a.seeds.split(",")
        for r in recipes
    ]
    # the slowest (paper recipe) first, so that the workers finish together
    jobs.sort(key=lambda j: j[0] != "paper")
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    rows = []
    with ProcessPoolExecutor(max_workers=a.workers) as pool:
        for row in pool.map(train_one, *zip(*jobs)):
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "command": "python benchmarks/bench_recipe.py " + " ".join(argv or sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_avg_start": load0,
        "load_avg_end": os.getloadavg()[0],
        "wall_seconds": time.perf_counter() - t0,
        "tolerance": a.tolerance,
        "rows": rows,
        "summary": summarise(rows, a.tolerance),
    }
    print(json.dumps(result["summary"], indent=2))
    if not a.smoke:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "recipe.json").write_text(json.dumps(result, indent=2))
        (RESULTS / "recipe.md").write_text(markdown(result))
    return 0


def markdown(result: dict[str, Any]) -> str:
    """The result as a page: per N and recipe the median over networks, each network's value,
    the untrained networks' median and the gap to the paper recipe."""
    lines = [
        "# The quick recipe against the paper's (ReLU RNN-64, torch's init)",
        "",
        f"Command: `{result['command']}`; {result['machine']}; load average "
        f"{result['load_avg_start']:.1f} at the start, {result['load_avg_end']:.1f} at the end; "
        f"{result['wall_seconds'] / 60:.1f} min wall for this call (networks already trained are only re-probed).",
        "",
        "Paper task (D = 2, sigma = 0.2, T = 20, encoder on); network seed s draws its weights, "
        "task (encoder) and trials. OOD r^2: closed-form ridge, leave one quadrant out, median "
        "over folds, 4096 probe trials; the same networks untrained beside them. `quickS`: the "
        "default preset (batch 128, Adam 3e-3, cosine to 0, clip 1) for S steps.",
        "",
        "| N | recipe | OOD r^2, median over networks | per network | untrained (median) | "
        "minus paper | within tolerance | training s (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, cell in result["summary"].items():
        for recipe, v in cell.items():
            if not isinstance(v, dict):
                continue
            gap = v.get("minus_paper")
            lines.append(
                f"| {n[2:]} | {recipe} | {v['median']:.3f} | "
                + ", ".join(f"{x:.3f}" for x in v["values"])
                + f" | {v['untrained_median']:.3f} | "
                + ("-" if gap is None else f"{gap:+.3f}")
                + f" | {v.get('within_tolerance', '-')} | "
                + (f"{v['train_seconds_median']:.0f}" if v.get("train_seconds_median") else "-")
                + " |"
            )
    lines += [
        "",
        f"Tolerance: {result['tolerance']} on the median network at every N. Training seconds "
        "were measured while other jobs shared the machine; they are not a speed benchmark.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
