"""Learning speed against the control: how fast does each recipe lift the OOD r^2 above the untrained network's?

The ReLU RNN-64 on the paper task (D = 2, N = 24, sigma = 0.2, T = 20, encoder on), built with the
paper's init (torch's default) for network seed s, which also draws its own task
(``TaskSpec(n_tasks=24, seed=s)``, ``TrainConfig(arch="rnn", seed=s)``):

1. the untrained network is probed first: its OOD r^2 is the control (a random ReLU RNN already
   carries a linear image of its input; about 0.70 with torch's init);
2. the same network is trained with the quick recipe (the ``default`` preset) and with the paper
   recipe (the ``paper`` preset: batch 16, Adam 1e-3, 1e5 batches), one after the other, and
   every ``--probe-every`` seconds of *training* time (evaluations and probes excluded) its
   decision-step states on the same 4096 trials give the OOD r^2 (closed-form ridge, leave one
   quadrant out, median over the 4 folds).

Per recipe it reports
  (a) the training time after which the OOD r^2 exceeds the untrained value + ``--margin`` (0.1)
      and stays above it at every later probe ("held");
  (b) the training time after which it reaches the paper recipe's final value and holds it;
  (c) its final OOD r^2;
and the ratios quick time / paper time for (a) and (b). The paper recipe's final value is the
median of the paper run's last 3 probes, or, with ``--paper-final benchmarks/results/recipe.json``,
the median over the paper-recipe N = 24 networks of benchmarks/bench_recipe.py.

    python benchmarks/bench_disentangle.py                 # seed 0 -> benchmarks/results/
    python benchmarks/bench_disentangle.py --seeds 0,1,2   # one row per seed
    python benchmarks/bench_disentangle.py --smoke         # tiny budgets: says the script works

A probe can only happen at one of the trainer's evaluations (its ``on_eval`` hook), so the
curve's resolution is about ``--probe-every`` plus one evaluation interval (``--*-eval-every``
batches). Times are training seconds on one torch thread and depend on the machine's load
(recorded at start and end); compare the ratios. Smoke numbers mean nothing; they go to a
temporary folder, never to benchmarks/results.
"""

from __future__ import annotations

import os

# One BLAS thread for the probes' small linear algebra: on a shared 2-core machine, several BLAS
# threads turn a 10 ms ridge fit into a second.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PROBE_SEED = 12345  # the probe trials: the same 4096 trials for every probe of every network
N_TASKS = 24
RECIPES = {"quick": "default", "paper": "paper"}  # recipe -> TrainConfig preset


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", default="0", help="network seeds, comma-separated (default: 0)")
    p.add_argument(
        "--probe-every",
        type=float,
        default=0.5,
        help="training seconds between probes (both recipes; default 0.5)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.1,
        help="threshold (a) is the untrained OOD r^2 plus this (default 0.1)",
    )
    p.add_argument(
        "--paper-final",
        type=Path,
        default=None,
        help="benchmarks/results/recipe.json: take the paper recipe's final OOD r^2 as the median "
        "over its paper-recipe N=24 networks (default: median of this paper run's last 3 probes)",
    )
    p.add_argument(
        "--quick-steps", type=int, default=None, help="quick-recipe batches (default: preset's)"
    )
    p.add_argument(
        "--paper-steps", type=int, default=None, help="paper-recipe batches (default: preset's 1e5)"
    )
    p.add_argument(
        "--quick-eval-every",
        type=int,
        default=20,
        help="quick-recipe batches between evaluations, i.e. probe opportunities (default 20)",
    )
    p.add_argument(
        "--paper-eval-every",
        type=int,
        default=100,
        help="paper-recipe batches between evaluations, i.e. probe opportunities (default 100)",
    )
    p.add_argument("--n-probe", type=int, default=4096, help="trials recorded per probe")
    p.add_argument(
        "--eval-trials",
        type=int,
        default=1024,
        help="held-out trials of the trainer's own evaluation (accuracy column only)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny budgets (numbers mean nothing); writes to a temporary folder",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for disentangle.{json,md} (default: benchmarks/results, or a temp folder "
        "with --smoke)",
    )
    a = p.parse_args(argv)
    if a.smoke:
        a.quick_steps = a.quick_steps or 120
        a.paper_steps = a.paper_steps or 400
        a.quick_eval_every, a.paper_eval_every = 10, 50
        a.probe_every = min(a.probe_every, 0.2)
        a.n_probe = min(a.n_probe, 1024)
        a.eval_trials = min(a.eval_trials, 256)
    if a.out is None:
        a.out = Path(tempfile.gettempdir()) / "bench_disentangle_smoke" if a.smoke else RESULTS
    return a


# ---- probing ---------------------------------------------------------------------------------
def probe(network: Any, spec: Any, n_probe: int) -> dict[str, float]:
    """OOD r^2 (closed form, leave one quadrant out, median and IQR over folds) at the decision step."""
    from multitask_evidence.probes.decoding import ood_generalisation
    from multitask_evidence.probes.record import record

    rec = record(network, spec, n_probe, PROBE_SEED)
    ood = ood_generalisation(rec.at(), rec.latent)
    return {"ood_r2": ood.r2_median, "ood_r2_q25": ood.r2_q25, "ood_r2_q75": ood.r2_q75}


def train_with_probes(recipe: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one recipe from the paper's init, probing every ``probe_every`` training seconds."""
    from multitask_evidence import agents
    from multitask_evidence.envs import TaskSpec

    spec = TaskSpec(n_tasks=N_TASKS, seed=seed)
    steps = args.quick_steps if recipe == "quick" else args.paper_steps
    eval_every = args.quick_eval_every if recipe == "quick" else args.paper_eval_every
    cfg = agents.TrainConfig(
        arch="rnn",
        preset=RECIPES[recipe],
        seed=seed,
        steps=steps,
        eval_every=eval_every,
        eval_trials=args.eval_trials,
        num_threads=1,
        progress=False,
    )
    resolved = cfg.resolve()
    curve: list[dict[str, Any]] = []
    last = {"t": -np.inf}

    def on_eval(row: dict[str, Any], network: Any) -> None:
        is_final = row["step"] >= resolved.steps
        if row["train_seconds"] - last["t"] < args.probe_every and not is_final:
            return
        last["t"] = row["train_seconds"]
        t0 = time.perf_counter()
        point = {"step": int(row["step"]), "train_seconds": float(row["train_seconds"])}
        point |= probe(network, spec, args.n_probe)
        point |= {"acc": float(row["acc"]), "probe_seconds": time.perf_counter() - t0}
        curve.append(point)
        print(
            f"[s{seed} {recipe}] step {point['step']:>6}  train {point['train_seconds']:7.2f} s  "
            f"OOD r2 {point['ood_r2']:.3f}  acc {point['acc']:.4f}",
            flush=True,
        )

    t0 = time.perf_counter()
    agents.train(spec, cfg, None, on_eval=on_eval)  # no run folder: nothing but the curve is kept
    return {
        "recipe": recipe,
        "config": resolved.to_dict(),
        "curve": curve,
        "wall_seconds": time.perf_counter() - t0,
        "probe_seconds": float(sum(c["probe_seconds"] for c in curve)),
        "train_seconds": curve[-1]["train_seconds"],
        "final_ood_r2": curve[-1]["ood_r2"],
    }


# ---- summary (pure functions of the curves) --------------------------------------------------
def time_held(
    times: list[float], values: list[float], threshold: float, strict: bool
) -> float | None:
    """First time from which every probe (that one and all later) is above ``threshold``.

    strict: above means > threshold, else >= threshold. None when the last probe is not above it
    (never reached and held within the run). A curve that crosses, falls back and crosses again
    is held only from its last crossing.
    """
    above = [v > threshold if strict else v >= threshold for v in values]
    held = None
    for t, ok in zip(reversed(times), reversed(above)):
        if not ok:
            break
        held = t
    return held


def time_first(
    times: list[float], values: list[float], threshold: float, strict: bool
) -> float | None:
    """First time a probe is above ``threshold`` (whether or not it stays there); None if never."""
    return next(
        (t for t, v in zip(times, values) if (v > threshold if strict else v >= threshold)), None
    )


def paper_final_from_file(path: Path) -> tuple[float, list[float]]:
    """Median (and values) of the paper-recipe N = 24 networks' OOD r^2 in bench_recipe's json."""
    rows = json.loads(Path(path).read_text())["rows"]
    vals = [r["ood_r2"] for r in rows if r["recipe"] == "paper" and r["n_tasks"] == N_TASKS]
    if not vals:
        raise ValueError(f"{path} has no paper-recipe N={N_TASKS} networks")
    return float(np.median(vals)), vals


def summarise(
    untrained_r2: float,
    curves: dict[str, list[dict[str, Any]]],
    margin: float = 0.1,
    paper_final: float | None = None,
) -> dict[str, Any]:
    """Times (a) to untrained + margin and (b) to the paper recipe's final value, per recipe.

    curves: recipe ('quick', 'paper') -> probes [{'train_seconds', 'ood_r2'}, ...] in training
    order; the untrained probe counts as a probe at time 0 of every curve. paper_final: the
    target of (b); None takes the median of the paper curve's last 3 probes.
    """
    own_target = paper_final is None
    if own_target:
        paper_final = float(np.median([c["ood_r2"] for c in curves["paper"][-3:]]))
    above = untrained_r2 + margin
    out: dict[str, Any] = {
        "untrained_ood_r2": untrained_r2,
        "threshold_above_untrained": above,
        "paper_final_ood_r2": paper_final,
    }
    for recipe, curve in curves.items():
        times = [0.0] + [c["train_seconds"] for c in curve]
        values = [untrained_r2] + [c["ood_r2"] for c in curve]
        out[recipe] = {
            "t_above_untrained": time_held(times, values, above, strict=True),
            "t_above_untrained_first": time_first(times, values, above, strict=True),
            "t_paper_final": time_held(times, values, paper_final, strict=False),
            "t_paper_final_first": time_first(times, values, paper_final, strict=False),
            "final_ood_r2": values[-1],
            "train_seconds": times[-1],
        }

    def ratio(q: float | None, p: float | None) -> float | None:
        return q / p if q is not None and p else None

    q, p = out["quick"], out["paper"]
    out["ratio_above_untrained"] = ratio(q["t_above_untrained"], p["t_above_untrained"])
    # The paper recipe has its own final value at the end of its run by definition; when its last
    # probe dips below the median of its last probes it does not "hold" it, and the end of its
    # run is its time for (b).
    paper_b = p["t_paper_final"]
    out["paper_final_time_basis"] = "held"
    if paper_b is None and own_target:
        paper_b, out["paper_final_time_basis"] = p["train_seconds"], "end of the paper run"
    out["ratio_paper_final"] = ratio(q["t_paper_final"], paper_b)
    return out


# ---- report ----------------------------------------------------------------------------------
def _f(v: Any, d: int = 3) -> str:
    return "never" if v is None else f"{v:.{d}f}"


def markdown(result: dict[str, Any]) -> str:
    a = result["args"]
    lines = [
        "# Learning speed against the untrained control: quick recipe vs paper recipe",
        "",
        f"Command: `{result['command']}`{' (SMOKE: tiny budgets, the numbers mean nothing)' if a['smoke'] else ''}.",
        "",
        f"ReLU RNN-64, paper's init (torch's default), paper task (D = 2, N = {N_TASKS}, sigma = 0.2, "
        "T = 20, encoder on); network seed s draws its own task. OOD r^2 = closed-form ridge, leave "
        f"one quadrant out, median of 4 folds, decision step, {a['n_probe']} fixed trials, probed "
        f"every ~{a['probe_every']} s of training time (evaluations and probes excluded; one torch "
        f"thread). Load average (1 min) {result['load_avg_start'][0]:.2f} at start, "
        f"{result['load_avg_end'][0]:.2f} at end on {result['machine']}: seconds depend on the load, "
        "compare ratios.",
        "",
        f"(a) = training seconds until the OOD r^2 exceeds the untrained network's + {a['margin']} "
        "and stays above it at every later probe; (b) = training seconds until it reaches the paper "
        f"recipe's final OOD r^2 ({result['paper_final_source']}) and holds it. 'never' = not "
        "reached and held by the end of the run.",
        "",
        "| seed | recipe | untrained OOD r^2 | (a) s to untrained + margin | (b) s to paper's final "
        "(target) | final OOD r^2 | training s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in result["seeds"]:
        s = run["summary"]
        for recipe in ("quick", "paper"):
            r = s[recipe]
            lines.append(
                f"| {run['seed']} | {recipe} (`{RECIPES[recipe]}` preset) | "
                f"{_f(s['untrained_ood_r2'])} | {_f(r['t_above_untrained'], 1)} | "
                f"{_f(r['t_paper_final'], 1)} ({_f(s['paper_final_ood_r2'])}) | "
                f"{_f(r['final_ood_r2'])} | {_f(r['train_seconds'], 1)} |"
            )
    lines += ["", "## What it shows", ""]
    for run in result["seeds"]:
        lines.append(f"- Seed {run['seed']}: " + verdict(run["summary"]))
    if len(result["seeds"]) > 1:
        agg = result["aggregate"]
        lines.append(
            f"- Over {len(result['seeds'])} seeds: median quick/paper time ratio "
            f"{_f(agg['ratio_above_untrained_median'], 3)} for (a) "
            f"(seeds where both recipes held it: {agg['n_ratio_above_untrained']}), "
            f"{_f(agg['ratio_paper_final_median'], 3)} for (b) "
            f"(seeds where both recipes reached it: {agg['n_ratio_paper_final']})."
        )
    lines += [
        "",
        "The paper recipe's (b) is close to the end of its own run by construction when its "
        "target is its own final value (a constant learning rate keeps its OOD r^2 fluctuating "
        "around it); when its last probe dips below the median of its last 3 it never 'holds' "
        "it, and ratio (b) then divides by its whole training time (it has its final value at "
        "the end by definition). Ratio (b) reads: the fraction of the paper recipe's training "
        "the quick recipe needs to match its result. First crossings (not held) are in the json.",
        "",
    ]
    for run in result["seeds"]:
        for recipe in ("quick", "paper"):
            tr = run["runs"][recipe]
            lines += [
                f"## Seed {run['seed']}, {recipe} recipe curve",
                "",
                "| step | train s | OOD r^2 [IQR over folds] | acc |",
                "|---|---|---|---|",
                f"| 0 | 0.0 | {run['untrained']['ood_r2']:.3f} [{run['untrained']['ood_r2_q25']:.3f}, "
                f"{run['untrained']['ood_r2_q75']:.3f}] (untrained) | - |",
            ]
            lines += [
                f"| {c['step']} | {c['train_seconds']:.2f} | {c['ood_r2']:.3f} "
                f"[{c['ood_r2_q25']:.3f}, {c['ood_r2_q75']:.3f}] | {c['acc']:.4f} |"
                for c in tr["curve"]
            ]
            lines.append("")
    return "\n".join(lines)


def verdict(s: dict[str, Any]) -> str:
    """One plain sentence per seed: what the times say, including never."""
    q, p = s["quick"], s["paper"]
    parts = []
    if q["t_above_untrained"] is not None and p["t_above_untrained"] is not None:
        parts.append(
            f"the quick recipe lifts the OOD r^2 above untrained + margin ({_f(s['threshold_above_untrained'])}) "
            f"for good after {q['t_above_untrained']:.1f} s, the paper recipe after "
            f"{p['t_above_untrained']:.1f} s (ratio {s['ratio_above_untrained']:.3f})"
        )
    else:
        who = [n for n, r in (("quick", q), ("paper", p)) if r["t_above_untrained"] is None]
        parts.append(
            f"the {' and '.join(who)} recipe{'s' if len(who) > 1 else ''} never held an OOD r^2 "
            f"above untrained + margin ({_f(s['threshold_above_untrained'])})"
        )
    target = f"the paper recipe's final OOD r^2 {s['paper_final_ood_r2']:.3f}"
    if q["t_paper_final"] is None:
        parts.append(
            f"the quick recipe never reaches and holds {target} (it ends at "
            f"{q['final_ood_r2']:.3f}, {q['final_ood_r2'] - s['paper_final_ood_r2']:+.3f})"
        )
    elif s["ratio_paper_final"] is None:
        parts.append(
            f"the quick recipe holds {target} after {q['t_paper_final']:.1f} s; the paper run "
            f"itself does not end above that target (it ends at {p['final_ood_r2']:.3f})"
        )
    else:
        paper_t = (
            f"the paper recipe after {p['t_paper_final']:.1f} s"
            if s["paper_final_time_basis"] == "held"
            else f"the paper recipe has it only at the end of its run, {p['train_seconds']:.1f} s"
        )
        parts.append(
            f"the quick recipe reaches and holds {target} after {q['t_paper_final']:.1f} s, "
            f"{paper_t} (ratio {s['ratio_paper_final']:.3f})"
        )
    return "; ".join(parts) + "."


# ---- main ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from multitask_evidence import agents
    from multitask_evidence.envs import TaskSpec

    command = shlex.join(
        ["python", "benchmarks/bench_disentangle.py", *(argv if argv is not None else sys.argv[1:])]
    )
    load_start = list(os.getloadavg())
    wall0 = time.perf_counter()
    paper_final, paper_final_values, source = None, None, "median of the paper run's last 3 probes"
    if args.paper_final is not None:
        paper_final, paper_final_values = paper_final_from_file(args.paper_final)
        source = (
            f"median over the {len(paper_final_values)} paper-recipe N={N_TASKS} networks of "
            f"{args.paper_final}"
        )

    seeds = []
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        spec = TaskSpec(n_tasks=N_TASKS, seed=seed)
        cfg = agents.TrainConfig(arch="rnn", seed=seed)
        # the network every recipe starts from (the model never depends on the preset)
        untrained = probe(
            agents.untrained(agents.LoadedRun(None, spec, cfg)).network, spec, args.n_probe
        )
        print(f"[s{seed}] untrained OOD r2 {untrained['ood_r2']:.3f}", flush=True)
        runs = {recipe: train_with_probes(recipe, seed, args) for recipe in RECIPES}
        summary = summarise(
            untrained["ood_r2"],
            {r: runs[r]["curve"] for r in RECIPES},
            margin=args.margin,
            paper_final=paper_final,
        )
        print(json.dumps({"seed": seed, **summary}), flush=True)
        seeds.append({"seed": seed, "untrained": untrained, "summary": summary, "runs": runs})

    def median_of(key: str) -> tuple[float | None, int]:
        vals = [s["summary"][key] for s in seeds if s["summary"][key] is not None]
        return (float(np.median(vals)) if vals else None), len(vals)

    (r_a, n_a), (r_b, n_b) = median_of("ratio_above_untrained"), median_of("ratio_paper_final")
    result = {
        "command": command,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "load_avg_start": load_start,
        "load_avg_end": list(os.getloadavg()),
        "wall_seconds": time.perf_counter() - wall0,
        "paper_final_source": source,
        "paper_final_values": paper_final_values,
        "aggregate": {
            "ratio_above_untrained_median": r_a,
            "n_ratio_above_untrained": n_a,
            "ratio_paper_final_median": r_b,
            "n_ratio_paper_final": n_b,
        },
        "seeds": seeds,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "disentangle.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "disentangle.md").write_text(markdown(result))
    print(f"wrote {args.out / 'disentangle.json'} and {args.out / 'disentangle.md'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
