"""Fig. S6: lifetime sparseness against the number of tasks N (RNN, non-leaky RNN, LSTM) and
against the latent dimension D (RNN), beside the same networks untrained and the encoder's
output (``mte reproduce figS6``).

States at the decision step on 1024 random trials per network. Per unit, the lifetime
sparseness over those trials (``probes.sparseness.lifetime_sparseness``) of the response above
the unit's minimum (``baseline='min'``: one definition for the ReLU RNNs' rates, the LSTM's
signed states and the encoder's signed outputs); beside it the official code's Fig. S6 number,
the percentage of unit x trial states above 0 (``active_fraction``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.experiments.sweep import Grid, union

from . import analyses as an
from .grids import PAPER_N, per_arch
from .pages import csv_text, side
from .plots import finish, pyplot
from .registry import Figure, register
from .stats import ARCH_LABELS, ARCH_ORDER, select

N_TRIALS = 1024
N_ARCHS = ("rnn", "rnn_nonleaky", "lstm")
D_TASKS = 24
"""N of the networks trained at D > 2 (D = 2 is the N-axis' point at this N)."""


def grid(scale: str) -> Grid:
    """Against N: the three architectures (quick: the two ends of N); against D: the RNN at
    N = 24 with random hyperplane boundaries (D = 2 is the N-axis' N = 24 network)."""
    ns, dims, archs = {
        "smoke": ((2, 3), (3,), ("rnn", "lstm")),
        "quick": ((2, 24), (4, 6), N_ARCHS),
        "paper": (PAPER_N, (4, 6, 8, 10), N_ARCHS),
    }[scale]
    d_tasks = 3 if scale == "smoke" else D_TASKS
    by_n = per_arch(archs, scale, {"n_tasks": ns}, "figS6")
    by_d = per_arch(
        ("rnn",),
        scale,
        {"boundaries": ["random"], "latent_dim": list(dims), "n_tasks": [d_tasks]},
        "figS6",
    )
    return union([by_n, by_d], name="figS6")


def analyse(run_dir: str) -> dict[str, Any]:
    """Sparseness and active fraction of one network's decision states, trained, untrained and
    the encoder's output."""
    from multitask_evidence.probes.sparseness import active_fraction, lifetime_sparseness

    _, states, _ = an.decision_states(run_dir, N_TRIALS)
    out: dict[str, Any] = {}
    for src in an.SOURCES:
        s = lifetime_sparseness(states[src], baseline="min")
        out[src] = {
            "sparseness_median": s.median,
            "active_percent": 100.0 * float(active_fraction(states[src]).mean()),
            "units": int(np.isfinite(s.per_unit).sum()),
        }
    return out


def _latent_dim(row: Mapping[str, Any]) -> int:
    return int(row.get("latent_dim") or 2)


def _add_columns(summary: Sequence[dict[str, Any]], analyses: Mapping[str, Any]) -> None:
    """Per-condition medians over networks (and the per-network values) into the summary rows."""
    for row in summary:
        row["latent_dim"] = _latent_dim(row)
    for row, nets, src, p in an.source_columns(summary, analyses):
        for m in ("sparseness_median", "active_percent"):
            vals = [a[src][m] for a in nets]
            an.put_pooled(row, f"{p}{m}", an.pooled(vals), n=False)
            row[f"{p}{m}_per_network"] = vals


def _by_n(summary: Sequence[Mapping[str, Any]], arch: str) -> list[Mapping[str, Any]]:
    """The N axis of one architecture: D = 2, the paper's boundaries."""
    rows = [r for r in select(summary, arch=arch) if _latent_dim(r) == 2 and not r.get("boundaries")]
    return sorted(rows, key=lambda r: r["n_tasks"])


def _by_d(summary: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The D axis: the RNN at the D block's N (D = 2 from the N axis)."""
    high = [r for r in select(summary, arch="rnn") if _latent_dim(r) > 2]
    if not high:
        return []
    n = high[0]["n_tasks"]
    two = [r for r in _by_n(summary, "rnn") if r["n_tasks"] == n]
    return sorted(two + high, key=_latent_dim)


def _curve(ax: Any, rows: Sequence[Mapping[str, Any]], x: Any, m: str, **kw: Any) -> None:
    rows = [r for r in rows if isinstance(r.get(m), float) and math.isfinite(r[m])]
    if not rows:
        return
    xs = np.array([x(r) for r in rows], dtype=float)
    ys = np.array([r[m] for r in rows])
    err = [ys - np.array([r[f"{m}_q25"] for r in rows]), np.array([r[f"{m}_q75"] for r in rows]) - ys]
    ax.errorbar(xs, ys, yerr=err, marker="o", capsize=2, **kw)


def plot(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """Fig. S6. a: lifetime sparseness against N per architecture (dashed: untrained; grey:
    encoder output); b: the official code's % of states > 0 against N; c: sparseness against D
    (RNN)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.3))
    archs = [a for a in ARCH_ORDER if _by_n(summary, a)]
    for i, arch in enumerate(archs):
        rows = _by_n(summary, arch)
        name = ARCH_LABELS.get(arch, arch)
        for ax, m in ((axes[0], "sparseness_median"), (axes[1], "active_percent")):
            _curve(ax, rows, lambda r: r["n_tasks"], m, color=f"C{i}", label=name)
            _curve(ax, rows, lambda r: r["n_tasks"], f"untrained_{m}", color=f"C{i}", ls="--",
                   alpha=0.6, label=f"{name}, untrained")
    for ax, m in ((axes[0], "sparseness_median"), (axes[1], "active_percent")):
        # the encoder depends on the network's seed only: the same for every architecture
        inputs = _by_n(summary, archs[0]) if archs else []
        _curve(ax, inputs, lambda r: r["n_tasks"], f"input_{m}", color="0.55", ls="-.",
               label=an.SOURCE_LABELS["input"])
        ax.set_xscale("log")
        ns = sorted({r["n_tasks"] for a in archs for r in _by_n(summary, a)})
        if ns:
            ax.set_xticks(ns)
            ax.set_xticklabels([str(n) for n in ns])
            ax.minorticks_off()
        ax.set_xlabel("number of tasks N")
    # one legend for panels a and b (same lines), above b's data
    axes[1].legend(fontsize=5.5, ncol=2, loc="upper center")
    axes[0].set_ylabel("lifetime sparseness (median over units)")
    axes[0].set_ylim(bottom=0)
    axes[0].set_title("a  sparseness vs N (dashed: untrained; legend in b)")
    axes[1].set_ylabel("states > 0 (% of units x trials)")
    axes[1].set_ylim(0, 125)
    axes[1].set_yticks(range(0, 101, 20))
    axes[1].set_title("b  active states vs N (official Fig. S6 measure)")
    ax = axes[2]
    rows = _by_d(summary)
    for m, kw, label in (
        ("sparseness_median", {"color": "C0"}, "RNN"),
        ("untrained_sparseness_median", {"color": "C0", "ls": "--", "alpha": 0.6}, "RNN, untrained"),
        ("input_sparseness_median", {"color": "0.55", "ls": "-."}, an.SOURCE_LABELS["input"]),
    ):
        _curve(ax, rows, _latent_dim, m, label=label, **kw)
    ax.set_xticks(sorted({_latent_dim(r) for r in rows}))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("latent dimension D")
    ax.set_ylabel("lifetime sparseness (median over units)")
    n = rows[-1]["n_tasks"] if rows else D_TASKS
    ax.set_title(f"c  sparseness vs D (RNN, N = {n})")
    ax.legend(fontsize=5.5)
    return finish(fig, path, caption)


def _line(row: Mapping[str, Any], label: str) -> str:
    g0 = an.paired_gain(row["sparseness_median_per_network"], row["untrained_sparseness_median_per_network"])
    gi = an.paired_gain(row["sparseness_median_per_network"], row["input_sparseness_median_per_network"])
    k = len(row["sparseness_median_per_network"])
    return (
        f"{label} ({k} networks): sparseness {an.row_quartiles(row, 'sparseness_median')}, untrained "
        f"{an.row_quartiles(row, 'untrained_sparseness_median')}, encoder output "
        f"{an.row_quartiles(row, 'input_sparseness_median')}; trained - untrained {an.interval(g0)} "
        f"({side(g0[1], g0[2])} its untrained control), trained - encoder output {an.interval(gi)} "
        f"({side(gi[1], gi[2])} the encoder output); states > 0: {an.row_quartiles(row, 'active_percent', 1)}% (untrained "
        f"{an.row_quartiles(row, 'untrained_active_percent', 1)}%, encoder output "
        f"{an.row_quartiles(row, 'input_active_percent', 1)}%)."
    )




def _trend(rows: Sequence[Mapping[str, Any]], x: str) -> str:
    """How per-network sparseness changes from the first to the last row (independent networks:
    a bootstrap over each group's networks), beside the untrained networks' change."""
    from .stats import bootstrap_median_difference

    if len(rows) < 2:
        return "not enough points"
    a, b = rows[0], rows[-1]
    d = bootstrap_median_difference(b["sparseness_median_per_network"], a["sparseness_median_per_network"])
    d0 = bootstrap_median_difference(
        b["untrained_sparseness_median_per_network"], a["untrained_sparseness_median_per_network"]
    )
    word = "rises" if d[1] > 0 else ("falls" if d[2] < 0 else "does not change beyond the spread")
    return (
        f"sparseness {word} from {x} = {a[x] if x != 'D' else _latent_dim(a)} to "
        f"{b[x] if x != 'D' else _latent_dim(b)}: {an.interval(d)} (untrained: {an.interval(d0)})"
    )


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    analyses = an.per_network(summary, "figS6", {"n": N_TRIALS, "version": 1}, analyse)
    _add_columns(summary, analyses)  # type: ignore[arg-type]
    png = plot(summary, out / "figS6.png", caption)
    lines = ["## The claim against its controls", ""]
    if not analyses:
        return png, "\n".join([*lines, an.no_networks_note("sparseness")])
    net_rows = [
        {"seed": a.get("seed"), "source": src, **a[src], "run_dir": d}
        for d, a in analyses.items()
        for src in an.SOURCES
    ]
    from multitask_evidence.agents.run import atomic_write_text

    atomic_write_text(out / "figS6_networks.csv", csv_text(net_rows), mkdir=True)
    lines += [
        "Lifetime sparseness: median over units of each network (response above the unit's "
        "minimum over 1024 random trials, decision step), then median [IQR] over networks; "
        "states > 0: percentage of unit x trial states above zero (the official code's Fig. S6 "
        "number). Per network: `figS6_networks.csv`.",
        "",
    ]
    for arch in ARCH_ORDER:
        rows = [r for r in _by_n(summary, arch) if "sparseness_median_per_network" in r]
        if not rows:
            continue
        name = ARCH_LABELS.get(arch, arch)
        lines += [f"### {name} against N", ""]
        lines += ["- " + _line(r, "N = " + str(r["n_tasks"])) for r in rows]
        lines += [f"- {name}: {_trend(rows, 'n_tasks')}.", ""]
    rows = [r for r in _by_d(summary) if "sparseness_median_per_network" in r]
    if rows:
        lines += [f"### RNN against D (N = {rows[-1]['n_tasks']})", ""]
        lines += ["- " + _line(r, f"D = {_latent_dim(r)}") for r in rows]
        lines += [
            f"- RNN: {_trend(rows, 'D')}.",
            "- D = 2 is the N-axis network (the paper's line boundaries); D > 2 use random "
            "hyperplanes (as Fig. 5b).",
            "",
        ]
    lines.append(
        "- Paper's claim (Fig. S6): the trained networks' codes are sparse, and sparseness "
        "depends on the architecture, N and D. A sparser code counts as training's only where "
        "the paired difference to the same network untrained excludes 0; the encoder output's "
        "sparseness is what the input alone has."
    )
    return png, "\n".join(lines)


FIGURE = register(
    Figure(
        "figS6",
        "Fig. S6: lifetime sparseness against N (three architectures) and against D",
        "Trained networks' codes are sparse; sparseness changes with N, D and the architecture.",
        ("arch", "n_tasks", "latent_dim", "boundaries"),
        grid,
        render,
        help="sparseness vs N and D",
        statistic="per-network median over units, then median and IQR over networks",
    )
)
