"""Side by side: this package's env against neurogym 2.3.1's PerceptualDecisionMaking-v0.

    python benchmarks/bench_neurogym.py            # full run, writes benchmarks/results/neurogym.{json,md}
    python benchmarks/bench_neurogym.py --quick    # smoke run (short timings), writes nothing

neurogym 2.3.1 needs gymnasium < 1, so it lives in its own virtual environment
(``benchmarks/.neurogym-venv``, git-ignored; ``--venv`` to put it elsewhere), created on first use
with ``python3 -m venv`` and ``pip install neurogym==2.3.1``. neurogym imports torch at import time
(for its training wrappers; the env step never touches it); when that venv has no torch, the
neurogym worker gets an import-time stand-in module instead of a multi-GB install.

Protocol (the same function, :func:`measure`, times every side, each in its own fresh worker
process, so no side inherits another's caches or allocator state):

- the env is made through ``gym.make(id)`` with its defaults (so both carry Gymnasium's default
  wrappers: order enforcing and the passive env checker), reset with a seed;
- ``ACTIONS`` = 1024 random actions are sampled up front from the env's own (seeded) action space
  and cycled through: action sampling is not timed, for either side;
- a *step* is one ``env.step`` call of a single env, or one sub-env's step inside a vector env's
  ``step`` (M per call); reset calls are timed but are not steps. A single env is reset whenever
  a step returns terminated or truncated (ours: after every trial, 22 steps; neurogym's
  PerceptualDecisionMaking runs its trials back to back in one episode and never terminates);
- ``WARMUP`` steps are taken before the clock starts, then a fixed number of steps is timed, by
  the wall clock (``time.perf_counter``) and by the worker's CPU time (``time.process_time``,
  less sensitive to other processes on a shared machine).

A round times our single env, neurogym's single env and our native vector env (1024 envs)
one after the other; the rounds reverse the order of the single envs every other round, and the
load average (``os.getloadavg``) is recorded before and after each round. Beside our defaults a
round also times ours without the ideal observer's answer (``ideal_info=False``) and without
the encoder as well (``encoder='none'``: neither is part of neurogym's task), so the rounds
show where the gap to neurogym lies. The result is the median
over rounds of each rate and of the per-round ratio ours / neurogym (a ratio within one round
compares the two under the same load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_VENV = HERE / ".neurogym-venv"
NEUROGYM = "neurogym==2.3.1"
NEUROGYM_ID = "PerceptualDecisionMaking-v0"
OURS_ID = "MultiTaskEvidence-v0"
VECTOR_ENVS = 1024
ACTIONS = 1024
WARMUP = 2_000
TARGETS = {"single_ratio_vs_neurogym": 1.3, "vector_1024_steps_per_s": 1_000_000}
# Our sides beyond the defaults, to locate the gap: each is `gym.make(OURS_ID, **kwargs)`.
# "bare" drops the two parts neurogym's task does not have (the frozen encoder and the ideal
# observer's end-of-trial answer), leaving our step machinery on raw evidence.
SINGLE_VARIANTS = {
    "ours": {},
    "ours_no_ideal": {"ideal_info": False},
    "ours_bare": {"ideal_info": False, "encoder": "none"},
}
VECTOR_VARIANTS = {"ours_vector": {}, "ours_vector_no_ideal": {"ideal_info": False}}
VARIANT_TEXT = {
    "ours": "defaults",
    "ours_no_ideal": "`ideal_info=False`",
    "ours_bare": "`ideal_info=False, encoder='none'`",
    "ours_vector": "defaults",
    "ours_vector_no_ideal": "`ideal_info=False`",
}

# An import-time stand-in for torch: neurogym 2.3.1's wrappers import it (and subclass torch.nn
# modules) when neurogym is imported; nothing of it runs when a task env is stepped.
_TORCH_STANDIN = '''"""Import-time stand-in for torch (written by benchmarks/bench_neurogym.py)."""
import sys
import types


class _Absent:
    def __init__(self, *args, **kwargs):
        raise ImportError("torch is not installed in this environment (import-time stand-in)")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return type(name, (_Absent,), {})


nn = types.ModuleType("torch.nn")
nn.__getattr__ = __getattr__
sys.modules["torch.nn"] = nn
'''


# ---- the measurement (runs inside a worker; imports gymnasium only) ----------------------------
def measure(env, n_steps: int, seed: int = 0, num_envs: int | None = None) -> dict:
    """Time ``n_steps`` steps of ``env`` (a single env, or with ``num_envs`` a vector env of that
    many sub-envs, which resets its sub-envs itself) under the protocol above. Returns ``{"steps", "wall_s", "cpu_s", "steps_per_s",
    "cpu_steps_per_s", "resets"}`` (steps counted per sub-env; rates in steps per second)."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps!r}")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(ACTIONS)]
    vector = num_envs is not None
    per_call = num_envs if vector else 1
    calls = max(1, n_steps // per_call)

    def run(n: int) -> int:
        step, reset, resets = env.step, env.reset, 0
        if vector:  # autoreset inside the vector env
            for i in range(n):
                step(actions[i % ACTIONS])
            return 0
        for i in range(n):
            r = step(actions[i % ACTIONS])
            if r[2] or r[3]:
                reset()
                resets += 1
        return resets

    run(max(1, WARMUP // per_call))
    c0, w0 = time.process_time(), time.perf_counter()
    resets = run(calls)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    steps = calls * per_call
    return {
        "steps": steps,
        "wall_s": wall,
        "cpu_s": cpu,
        "steps_per_s": steps / wall,
        "cpu_steps_per_s": steps / max(cpu, 1e-9),
        "resets": resets,
    }


def _worker(side: str, n_steps: int, seed: int) -> dict:
    """One timing in this process: ``neurogym`` or one of our variants (:data:`SINGLE_VARIANTS`,
    :data:`VECTOR_VARIANTS`)."""
    import gymnasium as gym

    if side == "neurogym":
        import neurogym  # noqa: F401  (registers its ids with gymnasium)

        env = gym.make(NEUROGYM_ID)
        out = measure(env, n_steps, seed)
        out["version"] = {"neurogym": neurogym.__version__, "gymnasium": gym.__version__}
        return out
    from multitask_evidence import envs  # noqa: F401  (registers the ids)

    if side in SINGLE_VARIANTS:
        out = measure(gym.make(OURS_ID, **SINGLE_VARIANTS[side]), n_steps, seed)
    elif side in VECTOR_VARIANTS:
        venv = gym.make_vec(
            OURS_ID, VECTOR_ENVS, vectorization_mode="vector_entry_point", **VECTOR_VARIANTS[side]
        )
        # whole block cycles (block_size trials of every sub-env, in lockstep), so that the
        # timed steps include their share of block refills
        inner = venv.unwrapped
        cycle = inner.options.block_size * inner.options.trial_steps(inner.task_spec)
        cycles = max(1, round(n_steps / (cycle * VECTOR_ENVS)))
        out = measure(venv, cycles * cycle * VECTOR_ENVS, seed, num_envs=VECTOR_ENVS)
    else:
        sides = ["neurogym", *SINGLE_VARIANTS, *VECTOR_VARIANTS]
        raise ValueError(f"side must be one of {sides}, got {side!r}")
    out["version"] = {"gymnasium": gym.__version__}
    return out


# ---- the neurogym venv -------------------------------------------------------------------------
def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path) -> Path:
    """Create ``venv`` with neurogym 2.3.1 unless it has it already; returns its python."""
    py = venv_python(venv)
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('neurogym'))"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or probe.stdout.strip() != NEUROGYM.split("==")[1]:
        subprocess.run([str(py), "-m", "pip", "install", "-q", NEUROGYM], check=True)
    return py


def _torch_standin(venv: Path) -> Path | None:
    """A folder to put on the neurogym worker's PYTHONPATH when its venv lacks torch."""
    has_torch = (
        subprocess.run(
            [str(venv_python(venv)), "-c", "import torch"], capture_output=True
        ).returncode
        == 0
    )
    if has_torch:
        return None
    folder = venv / "torch-standin"
    (folder / "torch").mkdir(parents=True, exist_ok=True)
    (folder / "torch" / "__init__.py").write_text(_TORCH_STANDIN)
    return folder


# ---- rounds ------------------------------------------------------------------------------------
def _run_worker(python: Path | str, side: str, n_steps: int, seed: int, path: Path | None) -> dict:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = str(path) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [str(python), str(Path(__file__).resolve()), "--worker", side]
    cmd += ["--steps", str(n_steps), "--seed", str(seed)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{side} worker failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def run_rounds(
    rounds: int,
    single_steps: int,
    vector_steps: int,
    neurogym_python: Path | None,
    standin: Path | None = None,
    variants: bool = True,
) -> list[dict]:
    """``rounds`` interleaved rounds; each: our single envs and neurogym's (skipped when
    ``neurogym_python`` is None), in an order that reverses every other round, then our vector
    envs (skipped when ``vector_steps`` is 0). variants: also our non-default sides
    (:data:`SINGLE_VARIANTS`, :data:`VECTOR_VARIANTS`); False: the defaults only."""
    ours = list(SINGLE_VARIANTS) if variants else ["ours"]
    vectors = list(VECTOR_VARIANTS) if variants else ["ours_vector"]
    out = []
    for r in range(rounds):
        singles = [(side, sys.executable, None) for side in ours]
        if neurogym_python is not None:
            singles.append(("neurogym", neurogym_python, standin))
        if r % 2:
            singles.reverse()
        row: dict = {"round": r, "load_before": _load()}
        for side, python, path in singles:
            row[side] = _run_worker(python, side, single_steps, r, path)
        if vector_steps:
            for side in vectors:
                row[side] = _run_worker(sys.executable, side, vector_steps, r, None)
        row["load_after"] = _load()
        if "neurogym" in row:
            for side in ours:
                # the defaults' ratio keeps its short name: it is the one with a target
                prefix = "ratio" if side == "ours" else f"ratio_{side}"
                for key in ("steps_per_s", "cpu_steps_per_s"):
                    row[f"{prefix}_{key}"] = row[side][key] / row["neurogym"][key]
        out.append(row)
        print(json.dumps({k: v for k, v in row.items() if k.startswith(("ratio", "load"))}))
    return out


def summarise(rows: list[dict]) -> dict:
    """Medians over rounds of every rate and ratio."""
    med = {}
    for side in ("neurogym", *SINGLE_VARIANTS, *VECTOR_VARIANTS):
        if side in rows[0]:
            for key in ("steps_per_s", "cpu_steps_per_s"):
                med[f"{side}_{key}"] = statistics.median(r[side][key] for r in rows)
    for key in rows[0]:
        if key.startswith("ratio"):
            med[key] = statistics.median(r[key] for r in rows)
    return med


def _where_the_time_goes(m: dict) -> list[str]:
    """Microseconds per step of each part of ours, from the differences between the variants'
    median rates (empty when a variant is missing)."""
    need = ("neurogym", "ours", "ours_no_ideal", "ours_bare", "ours_vector", "ours_vector_no_ideal")
    if any(f"{side}_steps_per_s" not in m for side in need):
        return []
    us = {side: 1e6 / m[f"{side}_steps_per_s"] for side in need}
    budget = us["neurogym"] / TARGETS["single_ratio_vs_neurogym"]
    vector_budget = 1e6 / TARGETS["vector_1024_steps_per_s"]
    return [
        "",
        "## Where the time goes",
        "",
        "Microseconds per step (wall clock), from the differences between the median rates above.",
        "",
        "| part | single env | vector env (per env step) |",
        "|---|---:|---:|",
        f"| step machinery on raw evidence (`ideal_info=False, encoder='none'`) | "
        f"{us['ours_bare']:.2f} | |",
        f"| the encoder (2 -> 100 -> 100 -> 40 ReLU, on every observation row) | "
        f"{us['ours_no_ideal'] - us['ours_bare']:.2f} | |",
        f"| generation and stepping without the ideal observer | {us['ours_no_ideal']:.2f} | "
        f"{us['ours_vector_no_ideal']:.2f} |",
        f"| the ideal observer's answer in the end-of-trial `info` | "
        f"{us['ours'] - us['ours_no_ideal']:.2f} | "
        f"{us['ours_vector'] - us['ours_vector_no_ideal']:.2f} |",
        f"| **ours with defaults** | **{us['ours']:.2f}** | **{us['ours_vector']:.2f}** |",
        f"| neurogym's PerceptualDecisionMaking-v0 | {us['neurogym']:.2f} | |",
        f"| target | {budget:.2f} ({TARGETS['single_ratio_vs_neurogym']}x neurogym) | "
        f"{vector_budget:.2f} ({TARGETS['vector_1024_steps_per_s']:,} env steps/s) |",
        "",
        "Neither of the two costly parts is in neurogym's task. Cutting them would change what "
        "the env gives by default (the ideal observer's exact answer in every end-of-trial "
        "info) or numbers this project records (the observations' last bits):",
        "",
        "- the ideal observer's answer is exact (posterior probabilities to about 1e-7): for "
        "each trial it integrates every task's truncated-normal posterior with 32 "
        "Gauss-Legendre nodes, about 24 x 32 normal CDFs per trial at N = 24, for blocks of "
        "trials at once; computed lazily, once per block, at the first trial end that needs it;",
        "- the encoder's product is a stacked matmul per trial, so that a trial's "
        "observations are bit-identical whatever the number of trials built with it (the single "
        "env, the vector env and the ensembles rely on that); one 2-D matmul over all rows is "
        "faster but changes the last bits of many values with the block size "
        "(`bench_encoder.py` measures both: results/encoder.md).",
        "",
        _verdict(us, budget, vector_budget, m),
    ]


def _verdict(us: dict, budget: float, vector_budget: float, m: dict) -> str:
    """One paragraph comparing the costly parts with the targets' budgets (microseconds)."""
    single_parts = us["ours"] - us["ours_bare"]
    vector_ideal = us["ours_vector"] - us["ours_vector_no_ideal"]
    out = [
        f"At defaults the single env's ideal observer and encoder together cost "
        f"{single_parts:.2f} us per step, "
        + ("more than" if single_parts > budget else "less than")
        + f" the target's whole budget of {budget:.2f} us; the vector env's ideal observer "
        f"costs {vector_ideal:.2f} us per env step against a budget of {vector_budget:.2f} us."
    ]
    bare, no_ideal = m["ratio_ours_bare_steps_per_s"], m["ours_vector_no_ideal_steps_per_s"]
    out.append(
        f"Without them the single env runs at {bare:.2f}x neurogym "
        f"(target {TARGETS['single_ratio_vs_neurogym']}x) and the vector env at "
        f"{no_ideal:,.0f} env steps/s (target {TARGETS['vector_1024_steps_per_s']:,})."
    )
    return " ".join(out)


def _markdown(result: dict) -> str:
    m, rows = result["median"], result["rounds"]
    lines = [
        "# Our env against neurogym",
        "",
        f"Command: `{result['command']}`; {result['machine']['platform']}, "
        f"{result['machine']['cpu_count']} CPUs; {NEUROGYM} "
        f"(gymnasium {rows[0]['neurogym']['version']['gymnasium']}) in its own venv, ours with "
        f"gymnasium {rows[0]['ours']['version']['gymnasium']}. {len(rows)} interleaved rounds; "
        f"{result['single_steps']:,} timed steps per single env, {result['vector_steps']:,} env "
        f"steps of the vector env ({VECTOR_ENVS} envs) per round.",
        "",
        "## Ratios (median over rounds of the per-round ratio)",
        "",
        "| ours / neurogym, single env | ours with | wall clock | CPU time |",
        "|---|---|---:|---:|",
    ]
    for side in SINGLE_VARIANTS:
        prefix = "ratio" if side == "ours" else f"ratio_{side}"
        if f"{prefix}_steps_per_s" in m:
            lines.append(
                f"| `{OURS_ID}` / `{NEUROGYM_ID}` | {VARIANT_TEXT[side]} | "
                f"{m[f'{prefix}_steps_per_s']:.2f}x | {m[f'{prefix}_cpu_steps_per_s']:.2f}x |"
            )
    lines += [
        "",
        "## Rates (median over rounds; absolute rates depend on the day's machine and load)",
        "",
        "| what | steps/s (wall) | steps/s (CPU time) |",
        "|---|---:|---:|",
        f"| neurogym, single env (`gym.make('{NEUROGYM_ID}')`) | "
        f"{m['neurogym_steps_per_s']:,.0f} | {m['neurogym_cpu_steps_per_s']:,.0f} |",
    ]
    for side in (*SINGLE_VARIANTS, *VECTOR_VARIANTS):
        if f"{side}_steps_per_s" not in m:
            continue
        what = (
            f"ours, native vector env, {VECTOR_ENVS} envs (env steps)"
            if side in VECTOR_VARIANTS
            else f"ours, single env (`gym.make('{OURS_ID}')`)"
        )
        lines.append(
            f"| {what}, {VARIANT_TEXT[side]} | {m[f'{side}_steps_per_s']:,.0f} | "
            f"{m[f'{side}_cpu_steps_per_s']:,.0f} |"
        )
    lines += _where_the_time_goes(m)
    lines += [
        "",
        "## Rounds",
        "",
        "Ours / neurogym per round, wall clock (CPU time in brackets).",
        "",
    ]
    prefixes = [
        ("ratio" if side == "ours" else f"ratio_{side}", VARIANT_TEXT[side])
        for side in SINGLE_VARIANTS
        if side in rows[0]
    ]
    lines += [
        "| round | load before | load after | " + " | ".join(t for _, t in prefixes) + " |",
        "|---:|---|---|" + "---:|" * len(prefixes),
    ]
    lines += [
        f"| {r['round']} | {r['load_before']} | {r['load_after']} | "
        + " | ".join(
            f"{r[f'{p}_steps_per_s']:.2f}x ({r[f'{p}_cpu_steps_per_s']:.2f}x)" for p, _ in prefixes
        )
        + " |"
        for r in rows
    ]
    lines += ["", "## Protocol", "", "Protocol " + __doc__.split("Protocol ", 1)[1].strip(), ""]
    lines += [
        f"Ours runs with its defaults: `ideal_info=True` (the ideal observer's answer in every "
        f"end-of-trial info), action validation on every step, encoder on. Targets: single env "
        f">= {TARGETS['single_ratio_vs_neurogym']}x neurogym; vector env (1024 envs) >= "
        f"{TARGETS['vector_1024_steps_per_s']:,} env steps/s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, nothing written")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=300_000, help="timed steps per single env")
    parser.add_argument(
        "--vector-steps", type=int, default=2_200_000, help="timed env steps of the vector env"
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="neurogym's venv")
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.steps, args.seed)))
        return None
    if args.quick:
        args.rounds, args.steps, args.vector_steps = 2, 20_000, 200_000
    python = ensure_venv(args.venv)
    standin = _torch_standin(args.venv)
    rows = run_rounds(args.rounds, args.steps, args.vector_steps, python, standin)
    command = "python benchmarks/bench_neurogym.py" + (" " + " ".join(argv) if argv else "")
    if argv is None and len(sys.argv) > 1:
        command = "python benchmarks/bench_neurogym.py " + " ".join(sys.argv[1:])
    result = {
        "command": command,
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpu_count": os.cpu_count(),
        },
        "neurogym": NEUROGYM,
        "torch_standin": standin is not None,
        "single_steps": args.steps,
        "vector_steps": args.vector_steps,
        "rounds": rows,
        "median": summarise(rows),
        "targets": TARGETS,
    }
    m = result["median"]
    result["meets_targets"] = {
        "single_ratio_vs_neurogym": m["ratio_steps_per_s"] >= TARGETS["single_ratio_vs_neurogym"],
        "vector_1024_steps_per_s": m["ours_vector_steps_per_s"]
        >= TARGETS["vector_1024_steps_per_s"],
    }
    print(json.dumps(m, indent=1))
    if not args.quick:
        from multitask_evidence.common.files import atomic_write_text

        atomic_write_text(RESULTS / "neurogym.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(RESULTS / "neurogym.md", _markdown(result))
    return result


if __name__ == "__main__":
    main()
