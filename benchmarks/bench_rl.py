"""RL benchmark: native recurrent PPO (GRU) against sb3-contrib RecurrentPPO, side by side.

    python benchmarks/bench_rl.py            # full run (~15 min), writes benchmarks/results/rl.*
    python benchmarks/bench_rl.py --quick    # smoke run (~1 min), writes nothing

Task: ``MultiTaskEvidence-v0`` with ``n_tasks=6`` (otherwise the paper's task: D = 2, sigma = 0.2,
1 + 20 + 1 steps, encoder on). Measures, in one process on the same machine:

1. **Time to 0.9 of the ideal observer** (chance-normalised decision accuracy, deterministic
   policy, 4096 held-out trials, evaluation time excluded) and **throughput** (env steps per second
   of training: rollout + update) of the native PPO with a GRU-64 (default ``PPOConfig``) and of
   RecurrentPPO("MlpLstmPolicy") (default ``SB3Config``: 8 envs, LSTM-64), each given a wall budget.
   Targets: native reaches >= 0.9 in <= 10 min; its throughput >= 20x RecurrentPPO's.
2. **Calibration** of a native agent trained on ``MultiTaskEvidenceConfidence-v0`` (log score,
   N = 6): expected calibration error of its reported P(y_i = 1) on 8192 held-out trials
   (target <= 0.05) after 3.5M env steps (learning rate annealed to 0 over them), with a
   reliability figure ``results/rl_calibration.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
TARGETS = {"native_frac_ideal": 0.9, "native_seconds": 600.0, "speedup": 20.0, "ece": 0.05}


def _evals(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    return [r for r in rows if "eval/frac_ideal" in r]


def _time_to(evals: list[dict], level: float) -> tuple[float | None, int | None]:
    for r in evals:
        if r["eval/frac_ideal"] >= level:
            return r["train_seconds"], r["env_steps"]
    return None, None


def bench_native(spec, seconds: float, tmp: Path, env_id: str = "MultiTaskEvidence-v0", **kw):
    from multitask_evidence.agents.rl import ALGOS, PPOConfig

    opts = dict(
        env_id=env_id,
        arch="gru",
        max_seconds=seconds,
        total_steps=3_000_000,
        eval_every=5,
        eval_trials=4096,
        progress=False,
    )
    cfg = PPOConfig(**{**opts, **kw})
    run = ALGOS["ppo"][1](spec, cfg, tmp / f"native-{env_id}", False)
    return cfg, run, _evals(run.run_dir)


def bench_sb3(spec, seconds: float, tmp: Path, eval_every: int):
    from multitask_evidence.agents.rl import ALGOS, SB3Config

    cfg = SB3Config(
        max_seconds=seconds,
        total_steps=50_000_000,
        eval_every=eval_every,
        eval_trials=4096,
        progress=False,
    )
    run = ALGOS["sb3-recurrent-ppo"][1](spec, cfg, tmp / "sb3", False)
    return cfg, run, _evals(run.run_dir)


def calibration(policy, spec, n: int, seed: int, figure: Path | None) -> dict:
    """ECE of the trained confidence agent's decision-step reports on n fresh trials."""
    from multitask_evidence.agents.rl.evaluate import evaluate
    from multitask_evidence.envs import generate
    from multitask_evidence.envs.calibration import probability_ece
    from multitask_evidence.envs.ideal import IdealObserver

    res = evaluate(policy, spec, policy.config.env_id, {}, n, seed)
    batch = generate(spec, n, seed)
    _, out = policy.hidden_and_outputs(batch.obs)
    p = out[:, spec.decision_start]
    q = IdealObserver(spec).decision_probs(batch)
    y = batch.labels
    if figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        edges = np.linspace(0, 1, 11)
        idx = np.clip((p * 10).astype(int), 0, 9)
        mp = [p[idx == k].mean() if np.any(idx == k) else np.nan for k in range(10)]
        my = [y[idx == k].mean() if np.any(idx == k) else np.nan for k in range(10)]
        fig, ax = plt.subplots(1, 2, figsize=(8, 3.6))
        ax[0].plot([0, 1], [0, 1], "k--", lw=1)
        ax[0].plot(mp, my, "o-", label=f"native PPO (ECE {probability_ece(p, y):.3f})")
        ax[0].set_xlabel("reported P(y = 1)")
        ax[0].set_ylabel("observed frequency of y = 1")
        ax[0].legend(fontsize=8)
        ax[0].set_title("reliability, 10 bins")
        ax[1].hist(p.ravel(), bins=edges, alpha=0.6, label="agent")
        ax[1].hist(q.ravel(), bins=edges, alpha=0.6, label="ideal observer")
        ax[1].set_xlabel("report")
        ax[1].legend(fontsize=8)
        ax[1].set_title("distribution of reports")
        fig.suptitle(f"MultiTaskEvidenceConfidence-v0, N = {spec.n_tasks}, log score", fontsize=9)
        fig.tight_layout()
        fig.savefig(figure, dpi=110)
        plt.close(fig)
    return {
        "ece_env_reports": res.ece,
        "ece_ideal_observer": res.ideal_ece,
        "ece_network_outputs": probability_ece(p, y),
        "corr_with_ideal_posterior": float(np.corrcoef(p.ravel(), q.ravel())[0, 1]),
        "frac_ideal_reward": res.frac_ideal_reward,
        "frac_ideal": res.frac_ideal,
        "mean_score": res.mean_reward,
        "ideal_score": res.ideal_reward,
        "n_trials": n,
    }


def _run_summary(config: Any, run: Any, evals: list[dict[str, float]]) -> dict[str, Any]:
    """One algorithm's row of the result: throughput, time and steps to 0.9 of the ideal
    observer, and its learning curve (train seconds, env steps, fraction of ideal)."""
    t, steps = _time_to(evals, 0.9)
    return {
        "config": config.__dict__,
        "steps_per_second": run.steps_per_second,
        "train_seconds": run.train_seconds,
        "env_steps": run.env_steps,
        "seconds_to_0.9": t,
        "steps_to_0.9": steps,
        "final_frac_ideal": run.final_eval["frac_ideal"],
        "best_frac_ideal": max(r["eval/frac_ideal"] for r in evals),
        "curve": [(r["train_seconds"], r["env_steps"], r["eval/frac_ideal"]) for r in evals],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run, writes nothing")
    ap.add_argument("--native-seconds", type=float, default=150.0)
    ap.add_argument("--sb3-seconds", type=float, default=300.0)
    ap.add_argument(
        "--confidence-seconds",
        type=float,
        default=900.0,
        help="cap on the confidence run, which otherwise stops at 3.5M env steps",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from multitask_evidence import envs  # noqa: F401
    from multitask_evidence.envs import TaskSpec

    if args.quick:
        args.native_seconds, args.sb3_seconds, args.confidence_seconds = 15.0, 10.0, 10.0
    spec = TaskSpec(n_tasks=6)
    t_start = time.time()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        print(f"native PPO, GRU-64, {args.native_seconds:.0f} s ...", flush=True)
        ncfg, nrun, nev = bench_native(spec, args.native_seconds, tmp)
        print(f"  {nrun.steps_per_second:,.0f} steps/s, final {nrun.final_eval['frac_ideal']:.3f}")
        print(f"sb3 RecurrentPPO, {args.sb3_seconds:.0f} s ...", flush=True)
        scfg, srun, sev = bench_sb3(spec, args.sb3_seconds, tmp, 2048 if args.quick else 20_000)
        print(f"  {srun.steps_per_second:,.0f} steps/s, final {srun.final_eval['frac_ideal']:.3f}")
        print(f"native PPO on confidence reports, {args.confidence_seconds:.0f} s ...", flush=True)
        ccfg, crun, cev = bench_native(
            spec,
            args.confidence_seconds,
            tmp,
            env_id="MultiTaskEvidenceConfidence-v0",
            eval_every=20,
            total_steps=160_000 if args.quick else 3_500_000,
        )
        fig = None if args.quick else RESULTS / "rl_calibration.png"
        cal = calibration(crun.policy, spec, 1024 if args.quick else 8192, 424242, fig)
        print(
            f"  ECE {cal['ece_env_reports']:.4f} (ideal observer {cal['ece_ideal_observer']:.4f})"
        )

    speedup = nrun.steps_per_second / srun.steps_per_second
    native = _run_summary(ncfg, nrun, nev)
    n_t = native["seconds_to_0.9"]
    result = {
        "command": "python benchmarks/bench_rl.py" + (" --quick" if args.quick else ""),
        "task": {"env_id": "MultiTaskEvidence-v0", **spec.to_dict()},
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_at_end": list(os.getloadavg()),
        },
        "native": native,
        "sb3": _run_summary(scfg, srun, sev),
        "throughput_ratio_native_over_sb3": speedup,
        "confidence": {
            "config": ccfg.__dict__,
            "train_seconds": crun.train_seconds,
            "env_steps": crun.env_steps,
            "steps_per_second": crun.steps_per_second,
            **cal,
        },
        "targets": TARGETS,
        "met": {
            "native_0.9_within_10_min": n_t is not None and n_t <= TARGETS["native_seconds"],
            "throughput_20x": speedup >= TARGETS["speedup"],
            "ece_0.05": cal["ece_env_reports"] <= TARGETS["ece"],
        },
        "wall_seconds": time.time() - t_start,
    }
    print(json.dumps(result["met"]), f"speedup {speedup:.1f}x")
    if args.quick:
        return 0
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rl.json").write_text(json.dumps(result, indent=2, default=str))
    (RESULTS / "rl.md").write_text(_markdown(result))
    return 0


def _fmt(x, spec: str = ".3f") -> str:
    return "not reached" if x is None else format(x, spec)


def _markdown(r: dict) -> str:
    n, s, c = r["native"], r["sb3"], r["confidence"]
    return f"""# RL benchmark: native recurrent PPO vs sb3-contrib RecurrentPPO

Command: `{r["command"]}` ({r["machine"]["cpus"]} CPUs, torch {r["machine"]["torch"]}, 1 torch
thread; load average at the end {", ".join(f"{x:.1f}" for x in r["machine"]["loadavg_at_end"])}).
Task: `MultiTaskEvidence-v0`, N = 6, D = 2, sigma = 0.2, 1 + 20 + 1 steps, encoder on.
Fraction of the ideal observer = chance-normalised decision accuracy of the deterministic policy
on 4096 held-out trials, (acc - 0.5) / (ideal - 0.5), on the same evidence. Seconds are training
seconds (rollout + update; evaluation excluded).

| | native PPO (GRU-64, {n["config"]["num_envs"]} envs) | RecurrentPPO (LSTM-64, {s["config"]["n_envs"]} envs) |
|---|---|---|
| env steps / s (training) | {n["steps_per_second"]:,.0f} | {s["steps_per_second"]:,.0f} |
| seconds to 0.9 of ideal | {_fmt(n["seconds_to_0.9"], ".1f")} | {_fmt(s["seconds_to_0.9"], ".1f")} |
| env steps to 0.9 | {_fmt(n["steps_to_0.9"], ",")} | {_fmt(s["steps_to_0.9"], ",")} |
| budget (s) / env steps | {n["train_seconds"]:.0f} / {n["env_steps"]:,} | {s["train_seconds"]:.0f} / {s["env_steps"]:,} |
| final / best fraction of ideal | {n["final_frac_ideal"]:.3f} / {n["best_frac_ideal"]:.3f} | {s["final_frac_ideal"]:.3f} / {s["best_frac_ideal"]:.3f} |

Throughput ratio native / RecurrentPPO: **{r["throughput_ratio_native_over_sb3"]:.1f}x** (target >= 20x).

## Calibration (native PPO, `MultiTaskEvidenceConfidence-v0`, N = 6, log score)

Trained {c["train_seconds"]:.0f} s ({c["env_steps"]:,} env steps, {c["steps_per_second"]:,.0f} steps/s).
On {c["n_trials"]} held-out trials: ECE of the reports **{c["ece_env_reports"]:.4f}** (target <= 0.05;
the ideal observer's own ECE on the same trials, the finite-sample floor: {c["ece_ideal_observer"]:.4f});
mean normalised log score {c["mean_score"]:.3f} vs the ideal observer's {c["ideal_score"]:.3f}
(fraction {c["frac_ideal_reward"]:.3f}); correlation of the reports with the ideal posterior
{c["corr_with_ideal_posterior"]:.3f}. Figure: `rl_calibration.png`.

Targets met: {json.dumps(r["met"])}. Wall time of the whole benchmark {r["wall_seconds"]:.0f} s.
"""


if __name__ == "__main__":
    raise SystemExit(main())
