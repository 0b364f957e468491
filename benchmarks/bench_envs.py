"""Speed of the task: one env through ``gym.make``, the native vector env, the trial generator.

    python benchmarks/bench_envs.py            # full run, writes benchmarks/results/envs.{json,md}
    python benchmarks/bench_envs.py --quick    # smoke run (short timings), writes nothing

Measures (paper task: D = 2, N = 24, 22 steps per trial), each with the encoder on and off:
- steps/s of one ``MultiTaskEvidence-v0`` through ``gym.make`` (default wrappers: order
  enforcing + passive env checker; action validation on; the ideal observer's end-of-trial info
  on), actions pre-sampled from the action space;
- env steps/s of ``MultiTaskEvidenceVectorEnv`` at 1, 64 and 1024 envs (ideal info on), and
  both envs again with ``ideal_info=False`` (no ideal observer: shows what the observer costs);
- trials/s of ``envs.generate`` at B = 1024.
Every rate is timed by the wall clock and by this process's CPU time (less sensitive to other
processes on a shared machine). The report leads with ratios measured in the same run (ideal
observer on / off, vector env / single env, encoder on / off): absolute rates depend on the day's
machine. Targets: one env >= 150,000 steps/s; vector env at 1024 envs >= 1,000,000 env steps/s
(encoder on); generator >= 50,000 trials/s (B = 1024, encoder on). For the comparison with
neurogym see benchmarks/bench_neurogym.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

from multitask_evidence import envs

RESULTS = Path(__file__).parent / "results"
TARGETS = {"single_env": 150_000, "vector_1024": 1_000_000, "generator_1024": 50_000}


def _timed(fn, seconds: float, unit_per_call: int) -> tuple[float, float]:
    """Best-of-3 rates (units per second) of repeated fn() calls over ~seconds / 3 each: by the
    wall clock and by this process's CPU time."""
    fn()  # warm up (caches, first block)
    wall, cpu = [], []
    for _ in range(3):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds / 3:
            fn()
            n += 1
        wall.append(n * unit_per_call / (time.perf_counter() - t0))
        cpu.append(n * unit_per_call / max(time.process_time() - c0, 1e-9))
    return max(wall), max(cpu)


def bench_single(encoder: str, seconds: float, ideal_info: bool = True) -> tuple[float, float]:
    env = gym.make("MultiTaskEvidence-v0", encoder=encoder, ideal_info=ideal_info)
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(64)]
    chunk = 1000

    def run() -> None:
        step, reset = env.step, env.reset
        for i in range(chunk):
            if step(actions[i & 63])[2]:
                reset()

    return _timed(run, seconds, chunk)


def bench_vector(
    m: int, encoder: str, seconds: float, ideal_info: bool = True
) -> tuple[float, float]:
    venv = gym.make_vec(
        "MultiTaskEvidence-v0",
        m,
        vectorization_mode="vector_entry_point",
        encoder=encoder,
        ideal_info=ideal_info,
    )
    venv.reset(seed=0)
    venv.action_space.seed(0)
    actions = [venv.action_space.sample() for _ in range(4)]
    # whole block cycles (16 trials of 22 steps in lockstep), so block refills are counted
    chunk = 22 * venv.unwrapped.options.block_size

    def run() -> None:
        for i in range(chunk):
            venv.step(actions[i & 3])

    return _timed(run, seconds, chunk * m)


def bench_generator(encoder: str, seconds: float, b: int = 1024) -> tuple[float, float]:
    spec = envs.TaskSpec(encoder=encoder)
    rng = np.random.default_rng(0)
    return _timed(lambda: envs.generate(spec, b, rng), seconds, b)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, nothing written")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args(argv)
    seconds = 0.3 if args.quick else args.seconds
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    rows = []
    for encoder in ("relu_mlp", "none"):
        start = len(rows)
        for ideal in (True, False):
            tag = "" if ideal else ", ideal_info=False"
            wall, cpu = bench_single(encoder, seconds, ideal)
            rows.append((f"single env (gym.make){tag}", 1, encoder, "steps/s", wall, cpu))
            for m in (1, 64, 1024) if ideal else (1024,):
                wall, cpu = bench_vector(m, encoder, seconds, ideal)
                rows.append((f"vector env{tag}", m, encoder, "env steps/s", wall, cpu))
        wall, cpu = bench_generator(encoder, seconds)
        rows.append(("generator (B=1024)", 1024, encoder, "trials/s", wall, cpu))
        for r in rows[start:]:
            print(
                f"{r[0]:40s} n={r[1]:5d} encoder={r[2]:9s} {r[4]:14,.0f} {r[3]} "
                f"(CPU time: {r[5]:,.0f})",
                flush=True,
            )
    result = {
        "command": "python benchmarks/bench_envs.py" + (" --quick" if args.quick else ""),
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "gymnasium": gym.__version__,
            "cpu_count": os.cpu_count(),
            "loadavg_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "seconds_per_measurement": seconds,
        "results": [
            {
                "what": w,
                "n": n,
                "encoder": e,
                "unit": u,
                "rate": round(r, 1),
                "cpu_rate": round(c, 1),
            }
            for w, n, e, u, r, c in rows
        ],
        "targets": TARGETS,
    }
    get = {(r["what"], r["n"], r["encoder"]): r for r in result["results"]}
    result["ratios"] = ratios(get)
    result["meets_targets"] = {
        "single_env": get[("single env (gym.make)", 1, "relu_mlp")]["rate"]
        >= TARGETS["single_env"],
        "vector_1024": get[("vector env", 1024, "relu_mlp")]["rate"] >= TARGETS["vector_1024"],
        "generator_1024": get[("generator (B=1024)", 1024, "relu_mlp")]["rate"]
        >= TARGETS["generator_1024"],
    }
    if not args.quick:
        from multitask_evidence.common.files import atomic_write_text

        atomic_write_text(RESULTS / "envs.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(RESULTS / "envs.md", _markdown(result, rows, seconds))
    return result


RATIOS = [
    # (name, numerator key, denominator key): keys are (what, n) with the encoder filled in
    (
        "single env: ideal_info on / off",
        ("single env (gym.make)", 1),
        ("single env (gym.make), ideal_info=False", 1),
    ),
    (
        "vector env (1024): ideal_info on / off",
        ("vector env", 1024),
        ("vector env, ideal_info=False", 1024),
    ),
    (
        "vector env (1024) / single env, per env step",
        ("vector env", 1024),
        ("single env (gym.make)", 1),
    ),
    (
        "vector env (64) / single env, per env step",
        ("vector env", 64),
        ("single env (gym.make)", 1),
    ),
    ("vector env (1) / single env", ("vector env", 1), ("single env (gym.make)", 1)),
]


def ratios(get: dict) -> list[dict]:
    """The ratios of :data:`RATIOS` for each encoder, plus encoder on / off, by wall clock and
    by CPU time."""
    out = []
    for encoder in ("relu_mlp", "none"):
        for name, num, den in RATIOS:
            a, b = get[(*num, encoder)], get[(*den, encoder)]
            out.append(
                {
                    "ratio": name,
                    "encoder": encoder,
                    "wall": a["rate"] / b["rate"],
                    "cpu": a["cpu_rate"] / b["cpu_rate"],
                }
            )
    for name, key in (
        ("single env: encoder on / off", ("single env (gym.make)", 1)),
        ("vector env (1024): encoder on / off", ("vector env", 1024)),
    ):
        a, b = get[(*key, "relu_mlp")], get[(*key, "none")]
        out.append(
            {
                "ratio": name,
                "encoder": "relu_mlp / none",
                "wall": a["rate"] / b["rate"],
                "cpu": a["cpu_rate"] / b["cpu_rate"],
            }
        )
    return out


def _markdown(result: dict, rows: list, seconds: float) -> str:
    lines = [
        "# Env benchmark",
        "",
        f"Command: `{result['command']}`; {result['machine']['platform']}, "
        f"{result['machine']['cpu_count']} CPUs, load average at the end "
        f"{result['machine']['loadavg_at_end']}. Best of 3 timings of {seconds / 3:.1f} s, by the "
        "wall clock and by the process's CPU time. Absolute rates depend on the day's machine and "
        "its load; the ratios below are measured in this one run.",
        "",
        "## Ratios",
        "",
        "| ratio | encoder | wall clock | CPU time |",
        "|---|---|---:|---:|",
    ]
    lines += [
        f"| {r['ratio']} | {r['encoder']} | {r['wall']:.2f}x | {r['cpu']:.2f}x |"
        for r in result["ratios"]
    ]
    lines += [
        "",
        "## Rates",
        "",
        "| what | n | encoder | rate (wall) | rate (CPU time) | unit |",
        "|---|---:|---|---:|---:|---|",
    ]
    lines += [f"| {w} | {n} | {e} | {r:,.0f} | {c:,.0f} | {u} |" for w, n, e, u, r, c in rows]
    lines += ["", "Targets (wall clock): " + ", ".join(f"{k} >= {v:,}" for k, v in TARGETS.items())]
    lines += ["Met: " + ", ".join(f"{k}: {v}" for k, v in result["meets_targets"].items()), ""]
    lines += [
        "The comparison with neurogym's PerceptualDecisionMaking-v0 (ratios in interleaved "
        "rounds) is in neurogym.md (benchmarks/bench_neurogym.py).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
