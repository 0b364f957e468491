"""The ideal observer: its accuracy ceiling on the paper task and the sigma sweep, and its speed.

Measures (docs/science.md §3; encoder irrelevant, the observer reads the raw evidence):
- decision-step accuracy of the ideal observer (method ``exact``) on fresh trials of the paper
  task (D = 2, N = 24, T = 20) for sigma in {0.1, 0.2, 0.3, 0.4, 0.6}, with its standard error
  (per-trial means, tasks within a trial are correlated), its own predicted accuracy and the
  flat-prior rule's accuracy on the same trials;
- wall time of ``posterior`` (all 20 steps) and ``final_posterior`` for B = 8192 paper trials,
  for methods ``exact`` and ``flat``.

    python benchmarks/bench_ideal.py          # full: 50,000 trials per sigma
    python benchmarks/bench_ideal.py --quick  # smoke: 2,000 trials, B = 512 timing

Full runs write benchmarks/results/ideal.{json,md}; quick runs only print.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multitask_evidence.envs import TaskSpec, generate  # noqa: E402
from multitask_evidence.envs.ideal import IdealObserver  # noqa: E402

SIGMAS = (0.1, 0.2, 0.3, 0.4, 0.6)


def accuracy_row(sigma: float, n: int, seed: int) -> dict:
    spec = TaskSpec(encoder="none", sigma=sigma)
    batch = generate(spec, n, np.random.default_rng(seed))
    y = batch.labels > 0.5
    obs = IdealObserver(spec, "exact")
    p = obs.decision_probs(batch)
    correct = (p > 0.5) == y
    per_trial = correct.mean(axis=1)
    flat = IdealObserver(spec, "flat").decision_probs(batch)
    return {
        "sigma": sigma,
        "n_trials": n,
        "accuracy": float(correct.mean()),
        "se": float(per_trial.std(ddof=1) / np.sqrt(n)),
        "predicted_accuracy": obs.predicted_accuracy(batch, p),
        "flat_rule_accuracy": float(((flat > 0.5) == y).mean()),
        "log2_score": obs.log_score(batch, probs=p),
    }


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run, prints only")
    ap.add_argument("--n", type=int, default=50_000, help="trials per sigma")
    ap.add_argument("--batch", type=int, default=8192, help="B for the timing")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.quick:
        args.n, args.batch, args.repeats = 2000, 512, 1
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    rows = [accuracy_row(s, args.n, seed=1000 + i) for i, s in enumerate(SIGMAS)]
    spec = TaskSpec(encoder="none")
    x = generate(spec, args.batch, np.random.default_rng(0)).stimulus_evidence
    timing = {}
    for method in ("exact", "flat"):
        obs = IdealObserver(spec, method)
        timing[method] = {
            "posterior_s": best_time(lambda o=obs: o.posterior(x), args.repeats),
            "final_posterior_s": best_time(lambda o=obs: o.final_posterior(x), args.repeats),
        }
    result = {
        "command": "python benchmarks/bench_ideal.py" + (" --quick" if args.quick else ""),
        "machine": f"{platform.machine()} {platform.processor()} cpus={os.cpu_count()}",
        "note": "timings measured on a shared, loaded machine (single process, numpy threads)",
        "paper_task": "D=2, N=24, T=20, uniform prior, gaussian noise, lines",
        "accuracy": rows,
        "timing_batch": args.batch,
        "timing": timing,
    }
    lines = [
        "# Ideal observer: accuracy ceiling and speed",
        "",
        f"Command: `{result['command']}` ({result['note']}).",
        "",
        f"Paper task ({result['paper_task']}), method `exact`, {args.n} fresh trials per sigma:",
        "",
        "| sigma | accuracy | SE | predicted (mean max(p,1-p)) | flat rule | mean log2 p(y) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sigma']} | {r['accuracy']:.4f} | {r['se']:.4f} | {r['predicted_accuracy']:.4f}"
            f" | {r['flat_rule_accuracy']:.4f} | {r['log2_score']:.4f} |"
        )
    lines += ["", f"Time for B = {args.batch} paper trials (best of {args.repeats}):", ""]
    lines += ["| method | posterior, all 20 steps [s] | final_posterior [s] |", "|---|---|---|"]
    for m, t in timing.items():
        lines.append(f"| {m} | {t['posterior_s']:.3f} | {t['final_posterior_s']:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.quick:
        out = ROOT / "benchmarks" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "ideal.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "ideal.md").write_text(text)


if __name__ == "__main__":
    main()
