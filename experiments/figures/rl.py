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
from .inference import PairedTest, t_interval
from .pages import against_controls, control_test
from .plots import CONTROL_STYLE, draw_bounds, finish, network_values, pyplot
from .registry import Figure, register
from .stats import ARCH_LABELS, finite

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


def shared_values(summary: Sequence[Mapping[str, Any]], key: str) -> list[Any]:
    """The values of a grid field over the rows, whether it keys them or their networks share
    it (``_shared``): the RL page names the agents' architecture and N this way."""
    vals = {r.get(key, (r.get("_shared") or {}).get(key)) for r in summary}
    return sorted(v for v in vals if v is not None)


def plot(
    summary: Sequence[Mapping[str, Any]], path: str | Path, group: str, caption: str = ""
) -> Path:
    """RL agents of each report kind: each agent's OOD r^2 trained (dots, mean and 95%
    t-interval over agents) beside the same agent untrained (grey), the input baselines and
    both theory lines, on a 0.7-1 axis (widened when an agent falls below it)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(3.6, 1.0 * len(summary) + 1.5) + 1.8, 3.0))
    labels = [str(r.get(group)) for r in summary]
    for off, m, color, label in (
        (-0.15, "ood_r2", "C0", "OOD (trained)"),
        (0.15, "untrained_ood_r2", "0.5", "OOD (same agent untrained)"),
    ):
        for i, r in enumerate(summary):
            vals = list(((r.get("_by_seed") or {}).get(m) or {}).values())
            if not vals:
                continue
            ax.plot(
                np.full(len(vals), i + off), vals, ls="", marker=".", ms=4, alpha=0.5, color=color
            )
            lo, hi = t_interval(vals)
            mean = float(np.mean(vals))
            err = [[mean - lo], [hi - mean]] if math.isfinite(lo) else None
            ax.errorbar(
                [i + off],
                [mean],
                yerr=err,
                marker="o",
                capsize=3,
                color=color,
                label=label if i == 0 else None,
            )
    for m, style, label in (
        ("input_ood_r2", CONTROL_STYLE["input_ood_r2"], "input: encoded-obs average (OOD)"),
        ("mu_ood_r2", CONTROL_STYLE["mu_ood_r2"], "input: evidence mean (OOD)"),
    ):
        vals = [r[m] for r in summary if finite(r.get(m))]
        if vals:
            ax.axhline(float(np.mean(vals)), lw=1.2, label=label, **style)
    draw_bounds(ax, summary)
    ax.set_xticks(np.arange(len(summary)))
    ax.set_xticklabels(labels, rotation=15)
    ax.set_ylabel("OOD $r^2$ of x* from the hidden state")
    low = network_values(summary, "ood_r2") + network_values(summary, "untrained_ood_r2")
    ax.set_ylim(min([0.7, *[v - 0.03 for v in low]]), 1.0)
    archs, ns = shared_values(summary, "arch"), shared_values(summary, "n_tasks")
    ax.set_title(
        f"RL agents ({', '.join(ARCH_LABELS.get(a, a) for a in archs) or '?'}, "
        f"N = {', '.join(str(n) for n in ns) or '?'}): OOD $r^2$ by report kind"
    )
    ax.legend(fontsize=5.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(fig, path, caption)


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    labelled = [dict(r, report=_report_label(r.get("algo"), r.get("env_id"))) for r in summary]
    png = plot(labelled, out / "rl.png", group="report", caption=caption)
    archs, ns = shared_values(summary, "arch"), shared_values(summary, "n_tasks")
    lines = [
        "## The question against its controls",
        "",
        f"Agents: {', '.join(ARCH_LABELS.get(a, a) for a in archs)} torso, N = "
        f"{', '.join(str(n) for n in ns)} tasks, one network per seed per report kind.",
        "",
    ]
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


def primary(summary: Sequence[Mapping[str, Any]], suffix: str = "") -> PairedTest | None:
    """Native PPO on the choice task: each agent's OOD r^2 minus the same agent untrained."""
    rows = [
        r for r in summary if r.get("algo") == "ppo" and r.get("env_id") == "MultiTaskEvidence-v0"
    ]
    return control_test(rows[0], "untrained_ood_r2", suffix=suffix) if rows else None


FIGURE = register(
    Figure(
        "rl",
        "RL agents: the same probes on agents trained from reward, per report kind",
        "Beyond the paper: whether agents trained from reward also form a disentangled code.",
        ("algo", "env_id"),
        grid,
        render,
        help="RL agents per report kind",
        primary=primary,
    )
)
