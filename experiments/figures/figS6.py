"""Fig. S6: lifetime sparseness against the number of tasks N (RNN, non-leaky RNN, LSTM) and
against the latent dimension D (RNN), beside the same networks untrained and the encoder's
output (``mte reproduce figS6``).

States at the decision step on 1024 random trials per network. Per network, lifetime sparseness
over those trials in two definitions, both on the page and in the tables:

- *the paper's definition* (``probes.sparseness.paper_lifetime_sparseness``): Vinje & Gallant on
  the raw states, every unit counted, a silent unit at 1, the mean over units. The official
  ``sparsity.py`` (the version whose N grid is the paper's, 2-24) plots 100 x this mean per
  network as Fig. S6's "Sparsity (%)"; an earlier version plotted the percentage of unit x trial
  states above 0, which is here too (``active_fraction``);
- *this package's* (``probes.sparseness.lifetime_sparseness``): the response above each unit's
  minimum (``baseline='min'``: one definition for the ReLU RNNs' rates, the LSTM's signed
  states and the encoder's signed outputs), silent units left out, the median over units.

Every call is a paired test over networks: trained minus the same network untrained, and one N
(or D) minus another on the same seeds. The primary contrast: the RNN's sparseness in the
paper's definition at the largest N minus at the smallest, paired by seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.common.files import atomic_write_text
from multitask_evidence.experiments.sweep import Grid, union
from multitask_evidence.probes.sparseness import SILENT_SPARSENESS

from . import analyses as an
from .grids import PAPER_N, per_arch
from .inference import PairedTest, call, paired_test
from .pages import condition_of, csv_text, describe, per_seed
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


PARAMS = {"n": N_TRIALS, "version": 2}
"""The analysis' settings (version 2: with the paper's sparseness): a cached analysis is reused
only while they are unchanged."""
MEASURES = ("paper_sparseness", "sparseness_median", "active_percent")
"""Per-network numbers of every source: the paper's definition, this package's, % states > 0."""
DEFINITIONS = {
    "paper_sparseness": "paper's definition",
    "sparseness_median": "this package's",
}
"""The two sparseness measures, as each call names them."""


def analyse(run_dir: str) -> dict[str, Any]:
    """Sparseness (both definitions), silent units and active fraction of one network's decision
    states, trained, untrained and the encoder's output."""
    from multitask_evidence.probes.sparseness import (
        active_fraction,
        lifetime_sparseness,
        paper_lifetime_sparseness,
    )

    _, states, _ = an.decision_states(run_dir, N_TRIALS)
    out: dict[str, Any] = {}
    for src in an.SOURCES:
        s = lifetime_sparseness(states[src], baseline="min")
        paper = paper_lifetime_sparseness(states[src])
        out[src] = {
            "sparseness_median": s.median,
            "paper_sparseness": paper.mean,
            "silent_units": paper.n_silent,
            "active_percent": 100.0 * float(active_fraction(states[src]).mean()),
            "units": int(np.isfinite(s.per_unit).sum()),
        }
    return out


def _latent_dim(row: Mapping[str, Any]) -> int:
    return int(row.get("latent_dim") or 2)


def _add_columns(summary: Sequence[dict[str, Any]], analyses: Mapping[str, Any]) -> None:
    """Per-condition medians over networks (and the per-network values) into the summary rows,
    and each network's values by seed (``_by_seed``, for the paired tests)."""
    for row in summary:
        row["latent_dim"] = _latent_dim(row)
    for row, nets, src, p in an.source_columns(summary, analyses):
        for m in (*MEASURES, "silent_units"):
            vals = [a[src].get(m) for a in nets]
            vals = [float(v) if v is not None else math.nan for v in vals]
            an.put_pooled(row, f"{p}{m}", an.pooled(vals), n=False)
            row[f"{p}{m}_per_network"] = vals
            an.put_by_seed(row, f"{p}{m}", an.by_seed(nets, lambda a, s=src, k=m: a[s].get(k)))


def analysed(summary: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every network's analysis (cached in its run folder), with the summary rows' columns
    added; run folder -> analysis (empty for rows without run folders)."""
    analyses = an.per_network(summary, "figS6", PARAMS, analyse)
    _add_columns(summary, analyses)  # type: ignore[arg-type]
    return analyses


def _by_n(summary: Sequence[Mapping[str, Any]], arch: str) -> list[Mapping[str, Any]]:
    """The N axis of one architecture: D = 2, the paper's boundaries."""
    rows = [
        r for r in select(summary, arch=arch) if _latent_dim(r) == 2 and not r.get("boundaries")
    ]
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
    err = [
        ys - np.array([r[f"{m}_q25"] for r in rows]),
        np.array([r[f"{m}_q75"] for r in rows]) - ys,
    ]
    ax.errorbar(xs, ys, yerr=err, marker="o", capsize=2, **kw)


def plot(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """Fig. S6. a: this package's lifetime sparseness against N per architecture (dashed:
    untrained; grey: encoder output); b: the paper's definition against N (the official code's
    Fig. S6 number, as a fraction); c: % of states > 0 against N (the earlier official
    measure); d: both definitions against D (RNN). Median and IQR over networks."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.3))
    archs = [a for a in ARCH_ORDER if _by_n(summary, a)]
    by_n = (
        (axes[0], "sparseness_median"),
        (axes[1], "paper_sparseness"),
        (axes[2], "active_percent"),
    )
    for i, arch in enumerate(archs):
        rows = _by_n(summary, arch)
        name = ARCH_LABELS.get(arch, arch)
        for ax, m in by_n:
            _curve(ax, rows, lambda r: r["n_tasks"], m, color=f"C{i}", label=name)
            _curve(
                ax,
                rows,
                lambda r: r["n_tasks"],
                f"untrained_{m}",
                color=f"C{i}",
                ls="--",
                alpha=0.6,
                label=f"{name}, untrained",
            )
    for ax, m in by_n:
        # the encoder depends on the network's seed only: the same for every architecture
        inputs = _by_n(summary, archs[0]) if archs else []
        _curve(
            ax,
            inputs,
            lambda r: r["n_tasks"],
            f"input_{m}",
            color="0.55",
            ls="-.",
            label=an.SOURCE_LABELS["input"],
        )
        ax.set_xscale("log")
        ns = sorted({r["n_tasks"] for a in archs for r in _by_n(summary, a)})
        if ns:
            ax.set_xticks(ns)
            ax.set_xticklabels([str(n) for n in ns])
            ax.minorticks_off()
        ax.set_xlabel("number of tasks N")
    # one legend for panels a-c (same lines), above c's data
    _legend(axes[2], fontsize=5.5, ncol=2, loc="upper center")
    axes[0].set_ylabel("this package's sparseness\n(above each unit's minimum; median over units)")
    axes[0].set_title("a  this package's sparseness vs N")
    axes[1].set_ylabel("paper's definition\n(raw states, mean over units, silent = 1)")
    axes[1].set_title("b  paper's definition vs N (dashed: untrained)")
    for ax in axes[:2]:
        # room above the highest curve, which would otherwise sit on the frame
        ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
    axes[2].set_ylabel("states > 0 (% of units x trials)")
    axes[2].set_ylim(0, 125)
    axes[2].set_yticks(range(0, 101, 20))
    axes[2].set_title("c  active states vs N (legend for a-c)")
    ax = axes[3]
    rows = _by_d(summary)
    for m, kw, label in (
        ("sparseness_median", {"color": "C0"}, "RNN, this package's"),
        (
            "untrained_sparseness_median",
            {"color": "C0", "ls": "--", "alpha": 0.6},
            "RNN untrained, this package's",
        ),
        ("paper_sparseness", {"color": "C3"}, "RNN, paper's definition"),
        (
            "untrained_paper_sparseness",
            {"color": "C3", "ls": "--", "alpha": 0.6},
            "RNN untrained, paper's definition",
        ),
        (
            "input_sparseness_median",
            {"color": "0.55", "ls": "-."},
            f"{an.SOURCE_LABELS['input']}, this package's",
        ),
    ):
        _curve(ax, rows, _latent_dim, m, label=label, **kw)
    ax.set_xticks(sorted({_latent_dim(r) for r in rows}))
    ax.set_ylim(0, ax.get_ylim()[1] * 1.08)
    ax.set_xlabel("latent dimension D")
    ax.set_ylabel("lifetime sparseness")
    n = rows[-1]["n_tasks"] if rows else D_TASKS
    ax.set_title(f"d  sparseness vs D (RNN, N = {n})")
    _legend(ax, fontsize=5.5)
    return finish(fig, path, caption)


def _legend(ax: Any, **kw: Any) -> None:
    """A legend where the panel has labelled lines (none without networks)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def control_test(row: Mapping[str, Any], metric: str, control: str = "untrained") -> PairedTest:
    """Sparseness (``metric``, see :data:`DEFINITIONS`) of each trained network minus its
    control ('untrained' or 'input'), paired within the network, two-sided."""
    name = "untrained" if control == "untrained" else "encoder output"
    return paired_test(
        per_seed(row, metric),
        per_seed(row, f"{control}_{metric}"),
        f"{describe(condition_of(row))}: sparseness ({DEFINITIONS[metric]}) trained - {name}",
    )


def _x(row: Mapping[str, Any], x: str) -> Any:
    return _latent_dim(row) if x == "latent_dim" else row[x]


def change_test(
    first: Mapping[str, Any], last: Mapping[str, Any], x: str, metric: str, prefix: str = ""
) -> PairedTest:
    """Sparseness (``metric``) of the networks at the last condition minus the first, paired by
    seed (the conditions share their seeds), two-sided; ``prefix`` 'untrained_' for the same
    change of the untrained networks."""
    name = {"n_tasks": "N", "latent_dim": "D"}[x]
    where = {k: v for k, v in condition_of(first).items() if k not in (x, "latent_dim")}
    who = "untrained " if prefix else ""
    return paired_test(
        per_seed(last, f"{prefix}{metric}"),
        per_seed(first, f"{prefix}{metric}"),
        f"{describe(where)}: {who}sparseness ({DEFINITIONS[metric]}) at {name} = "
        f"{_x(last, x)} - at {name} = {_x(first, x)}",
        words=("rises", "falls"),
    )


def _line(row: Mapping[str, Any], label: str) -> str:
    """One condition: both definitions with their controls (paired calls against the untrained
    network; the encoder output's difference as numbers) and the active states."""
    k = len(per_seed(row, "paper_sparseness") or per_seed(row, "sparseness_median"))
    inp = {
        m: paired_test(per_seed(row, m), per_seed(row, f"input_{m}"), "").mean for m in DEFINITIONS
    }
    return (
        f"{label} ({k} networks): paper's definition {an.row_quartiles(row, 'paper_sparseness')}"
        f" (untrained {an.row_quartiles(row, 'untrained_paper_sparseness')}, encoder output "
        f"{an.row_quartiles(row, 'input_paper_sparseness')}; silent units per network "
        f"{an.row_quartiles(row, 'silent_units', 0)}), trained - untrained: "
        f"{call(control_test(row, 'paper_sparseness'))}; this package's "
        f"{an.row_quartiles(row, 'sparseness_median')} (untrained "
        f"{an.row_quartiles(row, 'untrained_sparseness_median')}, encoder output "
        f"{an.row_quartiles(row, 'input_sparseness_median')}), trained - untrained: "
        f"{call(control_test(row, 'sparseness_median'))}; trained - encoder output (mean over "
        f"networks): {inp['paper_sparseness']:+.3f} paper's, {inp['sparseness_median']:+.3f} "
        f"this package's; states > 0: {an.row_quartiles(row, 'active_percent', 1)}% (untrained "
        f"{an.row_quartiles(row, 'untrained_active_percent', 1)}%, encoder output "
        f"{an.row_quartiles(row, 'input_active_percent', 1)}%)."
    )


def _trend(rows: Sequence[Mapping[str, Any]], x: str) -> str:
    """How each network's sparseness changes from the first to the last row, paired by seed,
    in both definitions, beside the untrained networks' change."""
    if len(rows) < 2:
        return "not enough points"
    a, b = rows[0], rows[-1]
    parts = []
    for m in DEFINITIONS:
        untrained = change_test(a, b, x, m, "untrained_")
        parts.append(
            f"{DEFINITIONS[m]}: {call(change_test(a, b, x, m))} (untrained networks: "
            f"{untrained.mean:+.3f})"
        )
    name = {"n_tasks": "N", "latent_dim": "D"}[x]
    return f"sparseness from {name} = {_x(a, x)} to {_x(b, x)}, " + "; ".join(parts)


def _measured(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if per_seed(r, "paper_sparseness") or per_seed(r, "sparseness_median")]


def primary(summary: Sequence[Mapping[str, Any]]) -> PairedTest | None:
    """The RNN (D = 2): sparseness in the paper's definition at the largest N minus at the
    smallest, paired by seed, two-sided (the figure's claim: sparseness changes with N). None
    with fewer than two analysed N."""
    analysed(summary)
    rows = _measured(_by_n(summary, "rnn"))
    if len(rows) < 2:
        return None
    test = change_test(rows[0], rows[-1], "n_tasks", "paper_sparseness")
    return test if test.n else None


def claims(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    """The page's verdicts from the rows' per-network numbers (``_by_seed``): per architecture
    against N and for the RNN against D, each condition against its controls and the change
    from the first to the last condition, in both definitions."""
    lines: list[str] = []
    for arch in ARCH_ORDER:
        rows = _measured(_by_n(summary, arch))
        if not rows:
            continue
        name = ARCH_LABELS.get(arch, arch)
        lines += [f"### {name} against N", ""]
        lines += ["- " + _line(r, "N = " + str(r["n_tasks"])) for r in rows]
        lines += [f"- {name}: {_trend(rows, 'n_tasks')}.", ""]
    rows = _measured(_by_d(summary))
    if rows:
        lines += [f"### RNN against D (N = {rows[-1]['n_tasks']})", ""]
        lines += ["- " + _line(r, f"D = {_latent_dim(r)}") for r in rows]
        lines += [
            f"- RNN: {_trend(rows, 'latent_dim')}.",
            "- D = 2 is the N-axis network (the paper's line boundaries); D > 2 use random "
            "hyperplanes (as Fig. 5b).",
            "",
        ]
    lines += [
        "- The two definitions: the paper's (Vinje & Gallant on the raw states, every unit "
        f"counted, a silent unit at {SILENT_SPARSENESS:g}, mean over units; on signed states "
        "- LSTM, encoder output - it is the formula's value, up to m / (m - 1), not a "
        "sparseness) and this package's (above each unit's minimum, silent units left out, "
        "median over units). The official code's helper is not in its published `util.py`, "
        f"so its treatment of silent units could not be checked; {SILENT_SPARSENESS:g} is "
        "this package's choice (`probes.sparseness.SILENT_SPARSENESS`).",
        "- Paper's claim (Fig. S6): the trained networks' codes are sparse, and sparseness "
        "depends on the architecture, N and D. A sparser code counts as training's only where "
        "the paired test against the same network untrained holds; a change with N or D only "
        "where its paired test over seeds rejects 0; the encoder output's sparseness is what "
        "the input alone has.",
    ]
    return lines


def render(summary: Sequence[Mapping[str, Any]], out: Path, caption: str) -> tuple[Path, str]:
    analyses = analysed(summary)
    png = plot(summary, out / "figS6.png", caption)
    lines = ["## The claim against its controls", ""]
    if not analyses:
        return png, "\n".join([*lines, an.no_networks_note("sparseness")])
    net_rows = [
        {"seed": a.get("seed"), "source": src, **a[src], "run_dir": d}
        for d, a in analyses.items()
        for src in an.SOURCES
    ]
    atomic_write_text(out / "figS6_networks.csv", csv_text(net_rows), mkdir=True)
    lines += [
        "Lifetime sparseness of each network's decision states over 1024 random trials, in two "
        "definitions. **Paper's definition**: raw states, every unit counted, a silent unit at "
        f"{SILENT_SPARSENESS:g}, mean over units (the official code's Fig. S6 number, there x "
        "100). **This package's**: each unit's response above its minimum, silent units left "
        "out, median over units. Each: median [IQR] over networks. States > 0: percentage of "
        "unit x trial states above zero (an earlier version of the official Fig. S6). Per "
        "network: `figS6_networks.csv`.",
        "",
        *claims(summary),
    ]
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
        statistic="per-network sparseness (two definitions), then median and IQR over networks",
        primary=primary,
    )
)
