"""The paper's figures as sweeps: ``mte reproduce fig3|fig5a|fig5b|fig5c|rl --scale quick|paper``.

Each figure is a grid (:class:`experiments.sweep.Grid`) run by the sweep engine, then summarised
with the paper's statistics (median and IQR over networks x folds x fits) and written to
``<out>/<figure>/``:

- ``<figure>.png``: the plot;
- ``<figure>.csv``: the table behind it (one row per condition);
- ``<figure>.md``: measured numbers beside the theory (docs/science.md §7) and the paper's claim;
- ``sweep-<scale>/``: the sweep itself (one run folder per network, results.csv/json). Re-running
  the command skips the networks already trained and probed.

Scales: ``quick`` (3 independently drawn networks per condition, trained with the ``default``
preset: the paper's model with a faster optimisation recipe, checked against the paper's recipe
by benchmarks/bench_recipe.py; each figure is sized to finish within 15 minutes on 2 CPU cores),
``paper`` (the paper's recipe: ``paper`` preset, 5 networks per condition) and ``smoke`` (tiny
budgets, for tests only: the numbers mean nothing).

Every network draws its own task (encoder weights, random boundaries) from its seed, and every
number sits beside its controls (``probes.controls``): the same network untrained and the input
baselines; pages state each claim against them.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments import figures
from experiments.sweep import Grid, atomic_write_text, parse_grid, run_sweep, union

SCALES = ("quick", "paper", "smoke")
FIGURES = ("fig3", "fig5a", "fig5b", "fig5c", "rl")
ARCHS = ("rnn", "rnn_nonleaky", "lstm", "gru", "transformer")
ARCHS_BY_COST = ("transformer", "rnn", "rnn_nonleaky", "lstm", "gru")
PAPER_N = (2, 3, 6, 12, 24)
PAPER_SIGMAS = (0.1, 0.2, 0.3, 0.4, 0.6)

# Training budgets. quick: the `default` preset's own budgets (agents.config.PRESETS), evaluated
# twice instead of every 200 steps.
QUICK_EVALS = 2
SMOKE_STEPS = 15
QUICK_SEEDS = (0, 1, 2)
PAPER_SEEDS = (0, 1, 2, 3, 4)


def _budget(scale: str, arch: str) -> dict[str, Any]:
    """Agent-config fields of one architecture's training at a scale."""
    if scale == "paper":
        return {"preset": "paper"}
    if scale == "quick":
        from agents.config import PRESETS

        steps = int(PRESETS["default"]["steps"][arch])
        return {"preset": "default", "eval_every": steps // QUICK_EVALS, "eval_trials": 4096}
    return {
        "preset": "default",
        "steps": SMOKE_STEPS,
        "eval_every": SMOKE_STEPS,
        "eval_trials": 256,
        "hidden_size": 16,
        "n_heads": 2,
        "mlp_size": 32,
    }


def _seeds(scale: str) -> list[int]:
    """Networks per condition: 5 at paper scale (the paper's), 3 at quick, 2 at smoke (enough for
    the statistics over networks to be exercised)."""
    return {"paper": list(PAPER_SEEDS), "quick": list(QUICK_SEEDS), "smoke": [0, 1]}[scale]


def recipe_text(scale: str) -> str:
    """The model and recipe a figure's networks were trained with, in words (for its page)."""
    from agents.config import MODEL_DEFAULTS, PRESETS

    model = (
        "The paper's model: torch's default init for the RNNs, GPT-2's init with dropout "
        f"{MODEL_DEFAULTS['dropout']['transformer']} and no positional embedding for the "
        "transformer; hidden size 64. Each network draws its own task (encoder weights, random "
        "boundaries) from its seed."
    )
    if scale == "paper":
        return model + " Recipe: the paper's (`paper` preset: batch 16, Adam 1e-3, constant)."
    d = PRESETS["default"]
    steps = ", ".join(f"{a} {n}" for a, n in d["steps"].items())
    text = (
        f"{model} Recipe: `default` preset, which changes optimisation only: batch "
        f"{d['batch_size']['rnn']} (transformer {d['batch_size']['transformer']}), Adam peak lr "
        f"{d['lr']['rnn']:g} (transformer {d['lr']['transformer']:g}), cosine decay to 0, "
        f"gradient clipping at {d['grad_clip']:g}; steps: {steps}. "
        "benchmarks/results/recipe.md compares it with the paper's recipe on the RNN."
    )
    if scale == "smoke":
        text += f" Smoke scale: {SMOKE_STEPS} steps and 16 units; the numbers mean nothing."
    return text


def _per_arch(
    archs: Sequence[str], scale: str, axes: Mapping[str, Sequence[Any]], name: str
) -> Grid:
    """Union over architectures of ``axes`` x that architecture's budget x seeds."""
    grids = []
    for a in archs:
        block = {"arch": [a], **{k: list(v) for k, v in axes.items()}}
        block.update({k: [v] for k, v in _budget(scale, a).items()})
        grids.append(parse_grid(block, _seeds(scale), name=name))
    return union(grids, name=name)


@dataclass(frozen=True)
class Figure:
    """One reproducible figure: its grid per scale, how to group, plot and explain it."""

    name: str
    title: str
    claim: str
    group_by: tuple[str, ...]
    grid: Callable[[str], Grid]
    render: Callable[[Sequence[Mapping[str, Any]], Path, str], tuple[Path, str]]
    probe_n: Callable[[str], int | None] = lambda scale: 1024 if scale == "smoke" else None
    probe_adam: Callable[[str], bool] = lambda scale: scale == "paper"
    """Whether each network is also probed with the paper's Adam protocol (both estimators in
    the table); always at paper scale."""


# ---- fig3 -------------------------------------------------------------------------------------
FIG3_QUICK_FULL = ("transformer", "rnn")
"""Architectures of fig3 quick at every N (panels a and c are the RNN and the transformer)."""
FIG3_QUICK_ENDS = ("lstm", "rnn_nonleaky")
"""Architectures of fig3 quick at the smallest and largest N only (panel b's other lines), so
that the figure fits 15 minutes on 2 cores with 3 networks per condition."""


def _fig3_grid(scale: str) -> Grid:
    if scale == "smoke":
        return _per_arch(("transformer", "rnn"), scale, {"n_tasks": (2, 24)}, "fig3")
    if scale == "paper":
        # the slowest first (transformer), so that the workers finish together
        return _per_arch(
            ("transformer", "rnn", "rnn_nonleaky", "lstm"), scale, {"n_tasks": PAPER_N}, "fig3"
        )
    full = _per_arch(FIG3_QUICK_FULL, scale, {"n_tasks": PAPER_N}, "fig3")
    ends = _per_arch(FIG3_QUICK_ENDS, scale, {"n_tasks": (PAPER_N[0], PAPER_N[-1])}, "fig3")
    return union([full, ends], name="fig3")


def _trend(summary: Sequence[Mapping[str, Any]], x: str, where: Mapping[str, Any]) -> str:
    """How the per-network OOD r^2 changes from the smallest to the largest x, with a bootstrap
    interval over networks, beside the same change of the untrained networks."""
    rows = sorted(figures.select(summary, **where), key=lambda r: r[x])
    rows = [r for r in rows if math.isfinite(r["ood_r2"])]
    if len(rows) < 2:
        return "not enough points"
    first, last = rows[0], rows[-1]
    d, lo, hi = figures.bootstrap_median_difference(
        last["ood_r2_per_network"], first["ood_r2_per_network"]
    )
    du = figures.bootstrap_median_difference(
        last.get("untrained_ood_r2_per_network", []), first.get("untrained_ood_r2_per_network", [])
    )[0]
    word = "rises" if lo > 0 else ("falls" if hi < 0 else "does not change beyond the spread")
    return (
        f"per-network OOD r^2 {word} from {x}={first[x]} to {x}={last[x]}: change {d:+.3f} "
        f"[95% CI {lo:+.3f}, {hi:+.3f}] over networks (untrained networks: {du:+.3f})"
    )


def _against_controls(row: Mapping[str, Any], label: str) -> str:
    """One condition's OOD r^2 against its untrained control and the input baselines, in words."""
    k = row["n_networks"]
    med, lo, hi = row["ood_r2_net_median"], row["ood_r2_net_lo"], row["ood_r2_net_hi"]
    g, glo, ghi = row["gain_over_untrained"], row["gain_lo"], row["gain_hi"]
    text = (
        f"{label}: OOD r^2 {med:.3f} [95% CI {lo:.3f}, {hi:.3f}] (median over {k} networks); "
        f"untrained {row.get('untrained_ood_r2_net_median', math.nan):.3f}"
    )
    if math.isfinite(g):
        verdict = (
            "above its untrained control"
            if glo > 0
            else "below its untrained control"
            if ghi < 0
            else "not distinguishable from its untrained control"
        )
        text += f", gain {g:+.3f} [{glo:+.3f}, {ghi:+.3f}]: {verdict}"
    inp = row.get("input_ood_r2", math.nan)
    if math.isfinite(inp):
        gi, gilo, gihi = row["gain_over_input"], row["gain_input_lo"], row["gain_input_hi"]
        side = "above" if gilo > 0 else ("below" if gihi < 0 else "level with")
        text += (
            f"; {side} the decoder on the encoded input's average ({inp:.3f}; difference "
            f"{gi:+.3f} [{gilo:+.3f}, {gihi:+.3f}])"
        )
    return text + "."


def _side(lo: float, hi: float) -> str:
    """'above' / 'below' / 'level with' from a 95% interval of a difference."""
    return "above" if lo > 0 else ("below" if hi < 0 else "level with")


def _fig3_render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    png = figures.plot_fig3(summary, out / "fig3.png", caption)
    lines = ["## The claim against its controls", ""]
    verdicts = []
    for a in figures.ARCH_ORDER:
        rows = sorted(figures.select(summary, arch=a), key=lambda r: r["n_tasks"])
        if not rows:
            continue
        name = figures.ARCH_LABELS[a]
        lines.append(f"### {name}")
        lines.append("")
        for r in (rows[0], rows[-1]) if len(rows) > 1 else rows:
            lines.append("- " + _against_controls(r, f"N = {r['n_tasks']}"))
        lines.append(f"- {_trend(summary, 'n_tasks', {'arch': a})}.")
        lines.append(
            f"- Decoder-axis angle (folded to [0, 90]; 90 = orthogonal) at N = "
            f"{rows[-1]['n_tasks']}: {figures.fmt(rows[-1], 'angle_deg')} deg, untrained "
            f"{figures.fmt(rows[-1], 'untrained_angle_deg')} deg."
        )
        lines.append("")
        if len(rows) > 1:
            verdicts.append((name, rows[0], rows[-1]))
    if verdicts:
        lines += ["### In plain words", ""]
        for name, small, big in verdicts:
            d, lo, hi = figures.bootstrap_median_difference(
                big["ood_r2_per_network"], small["ood_r2_per_network"]
            )
            rise = "rises" if lo > 0 else ("falls" if hi < 0 else "does not clearly change")
            lines.append(
                f"- {name}: OOD r^2 {rise} with N ({small['n_tasks']} -> {big['n_tasks']}: "
                f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]); at N = {big['n_tasks']} the trained "
                f"networks are {_side(big['gain_lo'], big['gain_hi'])} their untrained selves "
                f"and {_side(big['gain_input_lo'], big['gain_input_hi'])} a linear decoder on "
                "the encoded input's time-average."
            )
        smallest = min(r["n_tasks"] for r in summary)
        by_arch = {r["arch"]: r for r in summary if r["n_tasks"] == smallest}
        if "transformer" in by_arch and "rnn" in by_arch:
            t, r = by_arch["transformer"], by_arch["rnn"]
            d, lo, hi = figures.bootstrap_median_difference(
                t["ood_r2_per_network"], r["ood_r2_per_network"]
            )
            du, ulo, uhi = figures.bootstrap_median_difference(
                t["untrained_ood_r2_per_network"], r["untrained_ood_r2_per_network"]
            )
            lines.append(
                f"- At N = {smallest} the transformer's OOD r^2 is {_side(lo, hi)} the RNN's "
                f"({d:+.3f} [{lo:+.3f}, {hi:+.3f}]); untrained, it is {_side(ulo, uhi)} it too "
                f"({du:+.3f} [{ulo:+.3f}, {uhi:+.3f}]), so the difference is the architecture's "
                "before it is training's."
                if ulo > 0
                else f"- At N = {smallest} the transformer's OOD r^2 is {_side(lo, hi)} the RNN's "
                f"({d:+.3f} [{lo:+.3f}, {hi:+.3f}]); untrained, {du:+.3f} [{ulo:+.3f}, {uhi:+.3f}]."
            )
        lines.append(
            "- Paper's claim: OOD r^2 rises with N towards the in-distribution r^2, and the "
            "transformer generalises better at low N. A rise counts only where its interval over "
            "networks excludes 0; a code counts as learned only where it beats the same network "
            "untrained, and as more than the input's only where it beats the input baselines."
        )
    lines += ["", _estimators_section(summary)]
    return png, "\n".join(lines)


ADAM_AGREEMENT = 0.02
"""How close the closed-form OOD decoder must be to the paper's Adam protocol on the median
network."""


def _estimators_section(summary: Sequence[Mapping[str, Any]]) -> str:
    """The closed-form OOD r^2 against the paper's Adam protocol, network by network."""
    diffs = [d for r in summary for d in r.get("adam_minus_closed_per_network", [])]
    if not diffs:
        return ""
    absd = np.abs(diffs)
    med = float(np.median(absd))
    lines = [
        "## The closed-form decoder against the paper's Adam protocol",
        "",
        f"On each of the {len(diffs)} networks the OOD r^2 was also measured with the paper's "
        "protocol (5 Adam-trained linear decoders per fold on the raw states, lr 3e-3, batches "
        "of 16 fresh trials, 3000 / 3000 / 2000 / 1000 / 1000 batches at N = 2 / 3 / 6 / 12 / "
        f"24). |closed form - Adam|: median {med:.3f} over networks, 90th percentile "
        f"{float(np.percentile(absd, 90)):.3f}, largest {float(absd.max()):.3f}; "
        + (
            f"the default estimator agrees within {ADAM_AGREEMENT} on the median network."
            if med <= ADAM_AGREEMENT
            else f"the default estimator does NOT agree within {ADAM_AGREEMENT} on the median "
            "network."
        ),
        "",
    ]
    worse = [
        r
        for r in summary
        if np.median(np.abs(r.get("adam_minus_closed_per_network") or [0])) > ADAM_AGREEMENT
    ]
    for r in worse:
        vals = ", ".join(f"{v:+.3f}" for v in r["adam_minus_closed_per_network"])
        lines.append(
            f"- They differ by more than {ADAM_AGREEMENT} at {r.get('arch')} N = {r.get('n_tasks')}: "
            f"Adam - closed form = {vals} per network."
        )
    return "\n".join(lines)


# ---- fig5a ------------------------------------------------------------------------------------
def _fig5a_grid(scale: str) -> Grid:
    """Free-reaction-time RNNs as the official code trains them (``targets='free_rt_paper'``:
    running sums of X2 - tan(phi) X1 absorbed at +-5, evidence also at the probed decision step)."""
    durations = {"smoke": (3, 10), "quick": (3, 5, 10, 20), "paper": (2, 3, 5, 10, 20, 30, 40)}
    axes = {
        "targets": ["free_rt_paper"],
        "n_tasks": [24],
        "sigma": [0.2],
        "stimulus_steps": list(durations[scale]),
    }
    return _per_arch(("rnn",), scale, axes, "fig5a")


def _fig5a_render(
    summary: Sequence[Mapping[str, Any]], out: Path, caption: str
) -> tuple[Path, str]:
    png = figures.plot_fig5a(summary, out / "fig5a.png", sigma=0.2, caption=caption)
    body = [
        "## Measured against the theory and the controls (sigma = 0.2)",
        "",
        "Theory (the paper's Fig. 5a line): 1 - 12 sigma^2 / (T + 1) = 1 - 0.48 / (T + 1), a "
        "linear read-out of the mean of the T + 1 evidence samples the network has seen when its "
        "state is read (the T stimulus steps and the decision step, where evidence still "
        "arrives in the official free-RT task); the Bayes bound is the posterior mean's r^2 on "
        "the same samples.",
        "",
        _bound_rows(summary, "stimulus_steps"),
        "",
        f"- {_trend(summary, 'stimulus_steps', {})}.",
        _bayes_check(summary),
    ]
    for r in sorted(summary, key=lambda r: r["stimulus_steps"]):
        body.append("- " + _against_controls(r, f"T = {r['stimulus_steps']}"))
    body += [
        "- Targets as the official code: the running sum of X2 - tan(phi_i) X1 over the evidence "
        "(not the unit-normal projection c_i . X of this package's own `ddm_bound` targets, whose "
        "sums are smaller by cos(phi_i) and reach the bound at other times), absorbed at +-5, "
        "MSE on 5 tanh outputs at every step; the sums are signed like the labels "
        "(envs.trials.free_rt_targets documents what differs from the official code).",
    ]
    return png, "\n".join(body)


# ---- fig5b ------------------------------------------------------------------------------------
def _fig5b_grid(scale: str) -> Grid:
    spec = {
        "smoke": ((2, 3), (3, 6), ("rnn",)),
        "quick": ((2, 4, 6), (6, 24), ("rnn",)),
        "paper": ((2, 4, 6, 8, 10), (6, 12, 24, 48), ("rnn", "transformer")),
    }[scale]
    dims, ns, archs = spec
    axes = {"boundaries": ["random"], "latent_dim": list(dims), "n_tasks": list(ns)}
    return _per_arch(archs, scale, axes, "fig5b")


def _fig5b_render(
    summary: Sequence[Mapping[str, Any]], out: Path, caption: str
) -> tuple[Path, str]:
    png = figures.plot_fig5b(summary, out / "fig5b.png", caption)
    lines = ["## The claim against its controls", ""]
    for a in sorted({r["arch"] for r in summary}):
        for n in sorted({r["n_tasks"] for r in summary}):
            rows = sorted(figures.select(summary, arch=a, n_tasks=n), key=lambda r: r["latent_dim"])
            label = f"{figures.ARCH_LABELS.get(a, a)}, N={n}"
            lines.append(f"- {label}: {_trend(summary, 'latent_dim', {'arch': a, 'n_tasks': n})}.")
            for r in rows:
                lines.append("  - " + _against_controls(r, f"D = {r['latent_dim']}"))
    lines += ["", "### In plain words", ""]
    for a in sorted({r["arch"] for r in summary}):
        ns = sorted({r["n_tasks"] for r in figures.select(summary, arch=a)})
        if len(ns) < 2:
            continue
        for d in sorted({r["latent_dim"] for r in figures.select(summary, arch=a)}):
            lo_n = figures.select(summary, arch=a, n_tasks=ns[0], latent_dim=d)
            hi_n = figures.select(summary, arch=a, n_tasks=ns[-1], latent_dim=d)
            if not (lo_n and hi_n):
                continue
            diff, dlo, dhi = figures.bootstrap_median_difference(
                hi_n[0]["ood_r2_per_network"], lo_n[0]["ood_r2_per_network"]
            )
            lines.append(
                f"- {figures.ARCH_LABELS.get(a, a)}, D = {d}: N = {ns[-1]} is {_side(dlo, dhi)} "
                f"N = {ns[0]} ({diff:+.3f} [{dlo:+.3f}, {dhi:+.3f}] over networks)."
            )
    lines += [
        "",
        "- Paper: more tasks are needed as D grows (N < D cannot work); GPT needs fewer.",
        "- Held-out regions (probes.decoding.split_masks, split='orthant'): 4 folds at every D; "
        "fold k holds out the orthants whose (x1, x2) quadrant is k, whatever the signs of "
        "x3..xD: a quarter of the orthants and of the trials (at D = 2, one quadrant). Holding "
        "out one orthant of 2^D instead (split='one_orthant') tests near interpolation at large "
        "D (1/64 of the data at D = 6). The official code holds out a constant fraction of the "
        "orthants through its `split` setting; the value behind the paper's Fig. 5b is not "
        "recorded in it, so the quarter is this package's choice, equal to the D = 2 fraction.",
    ]
    return png, "\n".join(lines)


# ---- fig5c ------------------------------------------------------------------------------------
def _fig5c_grid(scale: str) -> Grid:
    sigmas = (0.1, 0.6) if scale == "smoke" else PAPER_SIGMAS
    # quick: the two ends of N (3 networks x 5 sigmas each fit 15 minutes); paper: three N
    ns = (2, 6, 24) if scale == "paper" else (2, 24)
    return _per_arch(("rnn",), scale, {"sigma": list(sigmas), "n_tasks": list(ns)}, "fig5c")


def _fig5c_render(
    summary: Sequence[Mapping[str, Any]], out: Path, caption: str
) -> tuple[Path, str]:
    png = figures.plot_fig5c(summary, out / "fig5c.png", steps=20, caption=caption)
    body = ["## Measured against the two bounds and the controls (T = 20)", ""]
    for n in sorted({r["n_tasks"] for r in summary}):
        rows = figures.select(summary, n_tasks=n)
        body += [f"### N = {n}", "", _bound_rows(rows, "sigma"), ""]
        body.append(f"- {_trend(summary, 'sigma', {'n_tasks': n})}.")
        for r in rows:
            body.append("- " + _against_controls(r, f"sigma = {r['sigma']}"))
        body.append("")
    body.append(_bayes_check(summary))
    body.append(
        "- The linear ceiling 1 - 12 sigma^2 / T bounds a linear read-out of the evidence mean; "
        "the Bayes bound is the r^2 of the posterior mean under the bounded prior, which no "
        "decoder can beat beyond sampling error. In-distribution r^2 between the two is not a "
        "violation."
    )
    return png, "\n".join(body)


def _bayes_check(summary: Sequence[Mapping[str, Any]]) -> str:
    """Whether any condition's in-distribution r^2 exceeds the Bayes bound (it must not, beyond
    sampling error), and by how much the closest comes."""
    pairs = [
        (r["id_r2"] - r["bayes_bound"], r)
        for r in summary
        if math.isfinite(r.get("id_r2", math.nan)) and math.isfinite(r.get("bayes_bound", math.nan))
    ]
    if not pairs:
        return "- No Bayes bound was computed for these conditions."
    above = [p for p in pairs if p[0] > 0]
    gap = max(p[0] for p in pairs)
    return (
        f"- In-distribution r^2 exceeds the Bayes bound in {len(above)} of {len(pairs)} "
        f"conditions (closest: {gap:+.3f}); above the linear ceiling in "
        f"{sum(r['id_r2'] > r['ceiling'] for _, r in pairs)}, which a nonlinear code may do."
    )


def _bound_rows(summary: Sequence[Mapping[str, Any]], x: str) -> str:
    """A table: x, OOD and in-distribution r^2, the linear ceiling and the Bayes bound."""
    lines = [
        f"| {x} | OOD r^2 median [IQR] | in-dist. r^2 | untrained OOD r^2 | linear ceiling | "
        "Bayes bound | in-dist. - Bayes bound |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(summary, key=lambda r: r[x]):
        bb = r.get("bayes_bound", math.nan)
        gap = r["id_r2"] - bb if math.isfinite(bb) and math.isfinite(r["id_r2"]) else math.nan
        lines.append(
            f"| {r[x]} | {figures.fmt(r, 'ood_r2')} | {figures.fmt(r, 'id_r2')} | "
            f"{figures.fmt(r, 'untrained_ood_r2')} | {figures._num(r.get('ceiling'))} | "
            f"{figures._num(bb)} | {gap:+.3f} |"
        )
    return "\n".join(lines)


# ---- rl ---------------------------------------------------------------------------------------
RL_ENVS = (
    "MultiTaskEvidence-v0",
    "MultiTaskEvidenceWager-v0",
    "MultiTaskEvidenceConfidence-v0",
    "MultiTaskEvidenceFreeRT-v0",
)
# env steps of native recurrent PPO (GRU torso) per scale; quick is a few minutes per agent
RL_STEPS = {"smoke": 4_000, "quick": 1_500_000, "paper": 10_000_000}


def _rl_grid(scale: str) -> Grid:
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
    grids = [parse_grid(base, _seeds(scale), name="rl")]
    if scale == "paper":
        sb3 = {
            "algo": ["sb3-recurrent-ppo"],
            "env_id": ["MultiTaskEvidence-v0"],
            "n_tasks": [6],
            "total_steps": [2_000_000],
        }
        grids.append(parse_grid(sb3, _seeds(scale), name="rl"))
    return union(grids, name="rl")


def _report_label(algo: Any, env_id: Any) -> str:
    """'ppo: wager' from ('ppo', 'MultiTaskEvidenceWager-v0'); the plain id is the choice task."""
    kind = str(env_id).replace("MultiTaskEvidence", "").replace("-v0", "").lower() or "choice"
    return f"{algo}: {kind}"


def _rl_render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    labelled = [dict(r, report=_report_label(r.get("algo"), r.get("env_id"))) for r in summary]
    png = figures.plot_rl(labelled, out / "rl.png", group="report", caption=caption)
    lines = ["## The question against its controls", ""]
    for r in labelled:
        lines.append(
            "- "
            + _against_controls(r, r["report"])
            + f" Decision accuracy {r.get('frac_ideal', float('nan')):.3f} of the ideal observer "
            "(chance-normalised)."
        )
    lines.append(
        "- Beyond the paper (supervised only): do agents trained from reward also form a "
        "disentangled code? Only a gain over the untrained agent, beyond the input baselines, "
        "would say so. Compare with fig3's networks at N = 6."
    )
    return png, "\n".join(lines)


FIGURE_DEFS: dict[str, Figure] = {
    "fig3": Figure(
        "fig3",
        "Fig. 3: generalisation against the number of tasks, per architecture",
        "OOD r^2 rises with N towards the in-distribution r^2; the decoder axes approach 90 "
        "degrees; the transformer generalises better at low N.",
        ("arch", "n_tasks"),
        _fig3_grid,
        _fig3_render,
        probe_adam=lambda scale: scale != "smoke",
    ),
    "fig5a": Figure(
        "fig5a",
        "Fig. 5a: generalisation against trial duration (free reaction-time targets)",
        "OOD r^2 rises with the evidence time and follows the theory 1 - 12 sigma^2 / t.",
        ("arch", "n_tasks", "stimulus_steps"),
        _fig5a_grid,
        _fig5a_render,
    ),
    "fig5b": Figure(
        "fig5b",
        "Fig. 5b: generalisation against the latent dimension D (random hyperplanes)",
        "More tasks are needed as D grows; the transformer needs fewer than the RNN.",
        ("arch", "n_tasks", "latent_dim"),
        _fig5b_grid,
        _fig5b_render,
        probe_n=lambda scale: 2048 if scale == "smoke" else None,
    ),
    "fig5c": Figure(
        "fig5c",
        "Fig. 5c: generalisation against the evidence noise sigma",
        "OOD r^2 falls as sigma grows, below the ceilings 1 - 12 sigma^2 / T.",
        ("arch", "n_tasks", "sigma"),
        _fig5c_grid,
        _fig5c_render,
    ),
    "rl": Figure(
        "rl",
        "RL agents: the same probes on agents trained from reward, per report kind",
        "Beyond the paper: whether agents trained from reward also form a disentangled code.",
        ("algo", "env_id"),
        _rl_grid,
        _rl_render,
    ),
}


def figure_grid(name: str, scale: str) -> Grid:
    """The validated grid of a figure at a scale."""
    if name not in FIGURE_DEFS:
        raise ValueError(f"figure must be one of {list(FIGURES)}, got {name!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    return FIGURE_DEFS[name].grid(scale)


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
    return buf.getvalue()


@dataclass
class Reproduction:
    """What :func:`reproduce` wrote and measured."""

    figure: str
    scale: str
    png: Path
    table: Path
    page: Path
    sweep_dir: Path
    summary: list[dict[str, Any]]
    n_failed: int
    elapsed_s: float


def render(
    name: str,
    scale: str,
    rows: Sequence[Mapping[str, Any]],
    out_dir: Path,
    *,
    elapsed_s: float | None = None,
    command: str = "",
) -> tuple[Path, Path, Path, list[dict[str, Any]]]:
    """Summarise sweep rows and write the figure's PNG, CSV table and markdown page."""
    fig = FIGURE_DEFS[name]
    summary = figures.summarise(rows, fig.group_by)
    out_dir.mkdir(parents=True, exist_ok=True)
    ok = sum(r.get("status") == "ok" for r in rows)
    failed = [r for r in rows if r.get("status") == "failed"]
    caption = (
        f"mte reproduce {name} --scale {scale}: {ok} networks; median and IQR over networks x "
        f"folds x fits"
    )
    png, body = fig.render(summary, out_dir, caption)
    table = out_dir / f"{name}.csv"
    atomic_write_text(table, _csv_text(summary))
    keys = [k for k in fig.group_by if any(k in r for r in summary)]
    page = [
        f"# {fig.title}",
        "",
        f"Scale: **{scale}**{' (tiny smoke budgets: the numbers mean nothing)' if scale == 'smoke' else ''}. "
        f"Command: `{command or f'mte reproduce {name} --scale {scale}'}`. Written "
        f"{time.strftime('%Y-%m-%d %H:%M')}"
        + (f" after {elapsed_s / 60:.1f} min." if elapsed_s is not None else "."),
        "",
        f"Claim to check: {fig.claim}",
        "",
        f"![{name}]({png.name})",
        "",
        "## Model, recipe and controls",
        "",
        recipe_text(scale),
        "",
        "Controls beside every number, probed on the same trials with the same decoders: the "
        "same network untrained (dashed in the plots), a linear decoder on the time-average of "
        "the encoded observations over the stimulus (grey dash-dot) and on the evidence mean "
        "mu(T) (grey dotted). Bounds: the linear ceiling 1 - 12 sigma^2 / t (dotted) and the "
        "Bayes posterior mean's r^2 (dashed black).",
        "",
        "## Measured and theory",
        "",
        "OOD r^2: median [IQR] over networks x held-out folds x decoder fits (the paper's "
        "statistic); beside it each network's own median, and the gain over the untrained "
        "network with a 95% bootstrap interval over networks.",
        "",
        figures.markdown_table(summary, keys),
        "",
        body,
        "",
    ]
    if failed:
        page += ["## Failed points", ""]
        page += [f"- `{r['id']}`: {r.get('error', '')}" for r in failed]
        page.append("")
    cpu = [float(r["cpu_s"]) for r in rows if isinstance(r.get("cpu_s"), (int, float))]
    if cpu:
        page += [
            f"Compute: {len(cpu)} networks used {sum(cpu) / 60:.1f} CPU-minutes (training + "
            f"probing, {sum(cpu) / len(cpu):.0f} s per network on average).",
            "",
        ]
    page += [
        f"Per-network rows (every parameter and metric): `{Path('sweep-' + scale) / 'results.csv'}`.",
        "",
    ]
    md = out_dir / f"{name}.md"
    atomic_write_text(md, "\n".join(page))
    return png, table, md, summary


def reproduce(
    name: str,
    scale: str = "quick",
    out: str | Path = "runs/reproduce",
    *,
    backend: str = "local",
    workers: int | None = 2,
    address: str | None = None,
    progress: bool = True,
    plot_only: bool = False,
    point_fn: Callable[..., dict[str, Any]] | None = None,
) -> Reproduction:
    """Run (or resume) a figure's sweep and write its PNG, CSV and markdown page."""
    t0 = time.perf_counter()
    grid = figure_grid(name, scale)
    out_dir = Path(out) / name
    sweep_dir = out_dir / f"sweep-{scale}"
    fig = FIGURE_DEFS[name]
    if plot_only:
        from experiments.sweep import SweepPaths, read_rows, table_rows

        rows = table_rows(read_rows(grid.points(), SweepPaths(sweep_dir)))
        n_failed = sum(r["status"] == "failed" for r in rows)
    else:
        kwargs = {}
        probe_n = fig.probe_n(scale)
        if probe_n is not None:
            kwargs["probe_n"] = probe_n
        if fig.probe_adam(scale):
            kwargs["probe_adam"] = True
        result = run_sweep(
            grid,
            sweep_dir,
            backend=backend,
            workers=workers,
            address=address,
            point_fn=point_fn,
            point_kwargs=kwargs,
            progress=progress,
        )
        rows, n_failed = result.rows, result.n_failed
    elapsed = time.perf_counter() - t0
    # a redraw says nothing about how long the networks took
    png, table, md, summary = render(
        name, scale, rows, out_dir, elapsed_s=None if plot_only else elapsed
    )
    return Reproduction(name, scale, png, table, md, sweep_dir, summary, n_failed, elapsed)
