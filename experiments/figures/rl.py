"""RL agents: the same probes on recurrent agents trained from reward, one per report kind
(``mte reproduce rl``); beyond the paper, which trains with supervision only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.experiments.sweep import Grid, parse_grid, union

from .grids import network_seeds
from .pages import against_controls
from .plots import CONTROL_STYLE, draw_bounds, finish, pyplot
from .registry import Figure, register
from .stats import finite

RL_ENVS = (
    "MultiTaskEvidence-v0",
    "MultiTaskEvidenceWager-v0",
    "MultiTaskEvidenceConfidence-v0",
    "MultiTaskEvidenceFreeRT-v0",
)
# env steps of native recurrent PPO (GRU torso) per scale; quick is a few minutes per agent
RL_STEPS = {"smoke": 4_000, "quick": 1_500_000, "paper": 10_000_000}


def grid(scale: str) -> Grid:
    """Native recurrent PPO (GRU) on every report kind, N = 6 tasks; at paper scale the SB3
    RecurrentPPO (LSTM) baseline on the choice task as well."""
    base = {
        "algo": ["ppo"],
        "env_id": list(RL_ENVS),
        "n_tasks": [6],
        "arch": ["gru"],
        "total_steps": [RL_STEPS[scale]],
    }
    if scale == "smoke":
        base.update({"num_envs": [64], "eval_trials": [256], "hidden_size": [16]})
    grids = [parse_grid(base, network_seeds(scale), name="rl")]
    if scale == "paper":
        sb3 = {
            "algo": ["sb3-recurrent-ppo"],
            "env_id": ["MultiTaskEvidence-v0"],
            "n_tasks": [6],
            "total_steps": [2_000_000],
        }
        grids.append(parse_grid(sb3, network_seeds(scale), name="rl"))
    return union(grids, name="rl")


def _report_label(algo: Any, env_id: Any) -> str:
    """'ppo: wager' from ('ppo', 'MultiTaskEvidenceWager-v0'); the plain id is the choice task."""
    kind = str(env_id).replace("MultiTaskEvidence", "").replace("-v0", "").lower() or "choice"
    return f"{algo}: {kind}"


def plot(
    summary: Sequence[Mapping[str, Any]], path: str | Path, group: str, caption: str = ""
) -> Path:
    """RL agents of each report kind: OOD and in-distribution r^2 (bars, IQR), the untrained
    agent's OOD r^2 (grey bar), the input baselines and both bounds."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(3.6, 1.0 * len(summary) + 1.5) + 1.8, 3.0))
    labels = [str(r.get(group)) for r in summary]
    x = np.arange(len(summary))
    bars = (
        (-0.27, "ood_r2", "C0", "OOD (trained)"),
        (0.0, "untrained_ood_r2", "0.75", "OOD (untrained)"),
        (0.27, "id_r2", "0.45", "in-distribution"),
    )
    for off, m, color, label in bars:
        ys = np.array([r.get(m, math.nan) for r in summary], dtype=float)
        lo = ys - np.array([r.get(f"{m}_q25", math.nan) for r in summary], dtype=float)
        hi = np.array([r.get(f"{m}_q75", math.nan) for r in summary], dtype=float) - ys
        ax.bar(
            x + off,
            np.nan_to_num(ys),
            width=0.27,
            yerr=[np.nan_to_num(lo), np.nan_to_num(hi)],
            color=color,
            capsize=3,
            label=label,
        )
    for m, style, label in (
        ("input_ood_r2", CONTROL_STYLE["input_ood_r2"], "input: encoded-obs average (OOD)"),
        ("mu_ood_r2", CONTROL_STYLE["mu_ood_r2"], "input: evidence mean (OOD)"),
    ):
        vals = [r[m] for r in summary if finite(r.get(m))]
        if vals:
            ax.axhline(float(np.mean(vals)), lw=1.2, label=label, **style)
    draw_bounds(ax, summary)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=15)
    ax.set_ylabel("$r^2$ of x* from the hidden state")
    low = np.nan_to_num([r.get("ood_r2_q25", 0.0) for r in summary] + [0.0])
    ax.set_ylim(min(0.0, float(np.min(low)) - 0.05), 1.02)
    ax.set_title("RL agents: disentanglement by report kind")
    ax.legend(fontsize=5.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(fig, path, caption)


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    labelled = [dict(r, report=_report_label(r.get("algo"), r.get("env_id"))) for r in summary]
    png = plot(labelled, out / "rl.png", group="report", caption=caption)
    lines = ["## The question against its controls", ""]
    for r in labelled:
        lines.append(
            "- "
            + against_controls(r, r["report"])
            + f" Decision accuracy {r.get('frac_ideal', float('nan')):.3f} of the ideal observer "
            "(chance-normalised)."
        )
    lines.append(
        "- Beyond the paper (supervised only): do agents trained from reward also form a "
        "disentangled code? Only a gain over the untrained agent, beyond the input baselines, "
        "would say so. Compare with fig3's networks at N = 6."
    )
    return png, "\n".join(lines)


FIGURE = register(
    Figure(
        "rl",
        "RL agents: the same probes on agents trained from reward, per report kind",
        "Beyond the paper: whether agents trained from reward also form a disentangled code.",
        ("algo", "env_id"),
        grid,
        render,
        help="RL agents per report kind",
    )
)
