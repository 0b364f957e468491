"""The encoder's product: one matmul per trial (what the generator does) against one 2-D matmul.

The generator encodes a block of B trials' evidence [B, T, D] as a stacked matmul, one product
per trial, so that a trial's observations do not depend on how many trials are built with it:
the single env, the vector env and the ensembles rely on that, and every recorded result was
drawn that way. Flattening the block to [B T, D] makes one 2-D product per layer, which BLAS
runs faster, but BLAS then tiles rows across trial boundaries and may round a trial's values
differently depending on B. This benchmark measures both in one run (the paper task's encoder,
2 -> 100 -> 100 -> 40 ReLU, T = 20 stimulus steps, float32):

- the time per trial of each, at several block sizes (best of 5), and their ratio;
- how many observation values differ between the two;
- how many values of trials encoded alone differ from the same trials encoded in a block of B,
  for each of the two.

    python benchmarks/bench_encoder.py           # writes benchmarks/results/encoder.{json,md}
    python benchmarks/bench_encoder.py --quick   # smoke run, writes nothing
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import timeit
from collections.abc import Callable
from pathlib import Path

import numpy as np

from multitask_evidence.envs import TaskSpec
from multitask_evidence.envs.task import task_geometry

RESULTS = Path(__file__).resolve().parent / "results"
BLOCKS = (16, 256, 4096)
ALONE = 64  # trials encoded one at a time for the invariance check


def per_trial(encode: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """The generator's way: evidence [B, T, D] -> [B, T, E], one product per trial."""
    return encode(x)


def flat(encode: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """One 2-D product per layer over all B T rows, reshaped back to [B, T, E]."""
    b, t, d = x.shape
    return encode(x.reshape(b * t, d)).reshape(b, t, -1)


def differing(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of values that differ in any bit."""
    return float(np.mean(a.view(np.uint32) != b.view(np.uint32)))


def measure(blocks: tuple[int, ...], repeats: int, seed: int = 0) -> dict:
    spec = TaskSpec()
    encode = task_geometry(spec).encode
    rng = np.random.default_rng(seed)
    rows = []
    for b in blocks:
        x = rng.uniform(-0.5, 0.5, (b, 1, spec.latent_dim)) + spec.sigma * rng.standard_normal(
            (b, spec.stimulus_steps, spec.latent_dim)
        )
        stacked, flat_out = per_trial(encode, x), flat(encode, x)
        n = min(ALONE, b)
        alone_stacked = np.concatenate([per_trial(encode, x[i : i + 1]) for i in range(n)])
        alone_flat = np.concatenate([flat(encode, x[i : i + 1]) for i in range(n)])
        t_stacked = (
            min(timeit.repeat(lambda x=x: per_trial(encode, x), number=1, repeat=repeats)) / b
        )
        t_flat = min(timeit.repeat(lambda x=x: flat(encode, x), number=1, repeat=repeats)) / b
        rows.append(
            {
                "block": b,
                "us_per_trial_per_trial_matmul": 1e6 * t_stacked,
                "us_per_trial_flat_matmul": 1e6 * t_flat,
                "speedup_flat": t_stacked / t_flat,
                "differ_flat_vs_per_trial": differing(flat_out, stacked),
                "differ_alone_vs_block_per_trial": differing(alone_stacked, stacked[:n]),
                "differ_alone_vs_block_flat": differing(alone_flat, flat_out[:n]),
            }
        )
    return {"rows": rows}


def markdown(result: dict) -> str:
    lines = [
        "# The encoder's product: per trial against one 2-D matmul",
        "",
        f"Command: `{result['command']}` ({result['date']}); {result['machine']}, numpy "
        f"{result['numpy']}, load average {result['load']} at the end. Paper task encoder "
        "(2 -> 100 -> 100 -> 40 ReLU, float32), 20 stimulus steps per trial; times are best of "
        f"{result['repeats']} (the first includes the warm-up). 'Alone' = the first {ALONE} trials of the block encoded one "
        "at a time.",
        "",
        "| block B | per-trial matmul (us / trial) | 2-D matmul (us / trial) | 2-D speed-up "
        "| values differing, 2-D vs per-trial | alone vs in the block, per-trial "
        "| alone vs in the block, 2-D |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['block']} | {r['us_per_trial_per_trial_matmul']:.1f} | "
            f"{r['us_per_trial_flat_matmul']:.1f} | {r['speedup_flat']:.2f}x | "
            f"{r['differ_flat_vs_per_trial']:.2%} | {r['differ_alone_vs_block_per_trial']:.2%} | "
            f"{r['differ_alone_vs_block_flat']:.2%} |"
        )
    lines += [
        "",
        "The per-trial product gives every trial the same values whatever the block (0% in "
        "the 'per-trial' column is what the envs and ensembles rely on). Where the 2-D "
        "columns are not 0%, switching would change recorded observations in their last bits, "
        "and a trial's values would depend on the block it was built in.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, writes nothing")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 15
    result = measure((16, 64) if args.quick else BLOCKS, repeats)
    result.update(
        {
            "command": "python benchmarks/bench_encoder.py" + (" --quick" if args.quick else ""),
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
            "numpy": np.__version__,
            "repeats": repeats,
            "load": [round(v, 2) for v in os.getloadavg()],
        }
    )
    text = markdown(result)
    print(text)
    if not args.quick:
        from multitask_evidence.common.files import atomic_write_text

        atomic_write_text(RESULTS / "encoder.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(RESULTS / "encoder.md", text)
    return result


if __name__ == "__main__":
    main()
