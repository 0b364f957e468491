"""What each scale trains, shared by the figures' grids: budgets, network seeds, the recipe.

Scales: ``quick`` (3 independently drawn networks per condition, trained with the ``default``
preset: the paper's model with a faster optimisation recipe, checked against the paper's recipe
by benchmarks/bench_recipe.py; each figure is sized to finish within 15 minutes on 2 CPU cores),
``paper`` (the paper's recipe: ``paper`` preset, 5 networks per condition) and ``smoke`` (tiny
budgets, for tests only: the numbers mean nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from multitask_evidence.experiments.sweep import Grid, parse_grid, union

SCALES = ("quick", "paper", "smoke")
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


def budget(scale: str, arch: str) -> dict[str, Any]:
    """Agent-config fields of one architecture's training at a scale."""
    if scale == "paper":
        return {"preset": "paper"}
    if scale == "quick":
        from multitask_evidence.agents.config import PRESETS

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


def network_seeds(scale: str) -> list[int]:
    """Networks per condition: 5 at paper scale (the paper's), 3 at quick, 2 at smoke (enough for
    the statistics over networks to be exercised)."""
    return {"paper": list(PAPER_SEEDS), "quick": list(QUICK_SEEDS), "smoke": [0, 1]}[scale]


def recipe_text(scale: str) -> str:
    """The model and recipe a figure's networks were trained with, in words (for its page)."""
    from multitask_evidence.agents.config import MODEL_DEFAULTS, PRESETS

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


def per_arch(
    archs: Sequence[str], scale: str, axes: Mapping[str, Sequence[Any]], name: str
) -> Grid:
    """Union over architectures of ``axes`` x that architecture's budget x seeds."""
    grids = []
    for a in archs:
        block = {"arch": [a], **{k: list(v) for k, v in axes.items()}}
        block.update({k: [v] for k, v in budget(scale, a).items()})
        grids.append(parse_grid(block, network_seeds(scale), name=name))
    return union(grids, name=name)
