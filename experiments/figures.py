"""Plots and summary tables of the paper's figures, from the rows of a sweep (results.json).

Each row is one trained-and-probed network (see :func:`experiments.point.run_point`): its grid
parameters (``arch``, ``n_tasks``, ``sigma`` ...) and headline metrics:
``ood_r2`` (median over folds x fits), ``ood_r2_values`` (every fold x fit value), ``id_r2``,
``angle_deg`` (angle between the decoder axes; ``angle_deg_values``: every OOD decoder's, pooled
like the r^2 values when present), ``ceiling`` (the theory's r^2_max at the decision
step). The statistics are the paper's: median and IQR over networks x folds x fits, i.e. the
per-network ``ood_r2_values`` lists pooled over the networks of a condition.

Controls sit beside every number (``probes.controls``): ``untrained_ood_r2`` (the same network
untrained), ``input_ood_r2`` (a decoder on the encoded input's stimulus average) and ``mu_ood_r2``
(on the evidence mean), pooled like the network's own values; plots draw them dashed or grey,
and tables add the gain over untrained with a bootstrap interval over networks. Two bounds sit
beside every ceiling: ``ceiling`` (1 - 12 sigma^2 / t, a linear read-out of the evidence mean) and
``bayes_bound`` (the Bayes posterior mean under the bounded prior).

Every ``plot_*`` function takes the summary rows of :func:`summarise` and writes a PNG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ARCH_LABELS = {
    "rnn": "RNN",
    "rnn_nonleaky": "non-leaky RNN",
    "gru": "GRU",
    "lstm": "LSTM",
    "transformer": "Transformer (GPT)",
}
ARCH_ORDER = ("rnn", "rnn_nonleaky", "lstm", "gru", "transformer")
METRICS = (
    "ood_r2",
    "id_r2",
    "angle_deg",
    "untrained_ood_r2",
    "untrained_id_r2",
    "untrained_angle_deg",
    "input_ood_r2",
    "input_id_r2",
    "mu_ood_r2",
)
"""Metrics pooled over networks x folds x fits (median, quartiles) by :func:`summarise`."""
CONTROL_STYLE = {
    "untrained_ood_r2": {"ls": "--", "alpha": 0.6},
    "input_ood_r2": {"ls": "-.", "color": "0.55"},
    "mu_ood_r2": {"ls": (0, (1, 1)), "color": "0.75"},
}
"""How the controls are drawn: the untrained network dashed in its network's colour, the input
baselines grey."""
N_BOOT = 2000


def bootstrap_median(values: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """Median of ``values`` [k] (one per network) and its 95% bootstrap interval over networks
    (resampling networks with replacement, ``N_BOOT`` draws). NaNs for no values; with one
    network the interval is that value."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boots = np.median(v[rng.integers(0, v.size, (N_BOOT, v.size))], axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(np.median(v)), float(lo), float(hi)


def _values(row: Mapping[str, Any], metric: str) -> list[float]:
    """All the values of one metric a network contributes (its folds x fits for OOD r^2)."""
    vals = row.get(f"{metric}_values")
    if isinstance(vals, (list, tuple)) and vals:
        out = [float(v) for v in vals]
    else:
        v = row.get(metric)
        out = [float(v)] if isinstance(v, (int, float)) and not isinstance(v, bool) else []
    return [v for v in out if math.isfinite(v)]


def bootstrap_median_difference(
    a: Sequence[float], b: Sequence[float], seed: int = 0
) -> tuple[float, float, float]:
    """median(a) - median(b) for two independent groups of networks, with its 95% bootstrap
    interval (each group resampled with replacement, ``N_BOOT`` draws)."""
    va = np.asarray([x for x in a if math.isfinite(x)], dtype=float)
    vb = np.asarray([x for x in b if math.isfinite(x)], dtype=float)
    if va.size == 0 or vb.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    ma = np.median(va[rng.integers(0, va.size, (N_BOOT, va.size))], axis=1)
    mb = np.median(vb[rng.integers(0, vb.size, (N_BOOT, vb.size))], axis=1)
    lo, hi = np.percentile(ma - mb, [2.5, 97.5])
    return float(np.median(va) - np.median(vb)), float(lo), float(hi)


def summarise(rows: Iterable[Mapping[str, Any]], by: Sequence[str]) -> list[dict[str, Any]]:
    """Group the successful rows by the ``by`` parameters; median / q25 / q75 / n per metric.

    For each metric m the summary has ``m`` (median), ``m_q25``, ``m_q75`` and ``m_n`` (how many
    values were pooled), plus ``n_networks``, the mean ``ceiling`` of the group and the mean
    decision accuracy as a fraction of the ideal observer (``frac_ideal``) when reported.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row.get("status", "ok") != "ok":
            continue
        groups.setdefault(tuple(row.get(k) for k in by), []).append(row)
    out = []
    for key in sorted(groups, key=_sort_key):
        members = groups[key]
        rec: dict[str, Any] = dict(zip(by, key))
        rec["n_networks"] = len(members)
        for m in METRICS:
            pooled = [v for r in members for v in _values(r, m)]
            if pooled:
                q25, med, q75 = np.percentile(pooled, [25, 50, 75])
                rec.update({m: med, f"{m}_q25": q25, f"{m}_q75": q75, f"{m}_n": len(pooled)})
            else:
                rec.update({m: math.nan, f"{m}_q25": math.nan, f"{m}_q75": math.nan, f"{m}_n": 0})
        for extra in ("ceiling", "bayes_bound", "frac_ideal"):
            vals = [float(r[extra]) for r in members if _finite(r.get(extra))]
            rec[extra] = float(np.mean(vals)) if vals else math.nan
        # the spread across networks: per-network medians and a bootstrap over networks
        nets = [float(r["ood_r2"]) for r in members if _finite(r.get("ood_r2"))]
        rec["ood_r2_per_network"] = nets
        rec["ood_r2_net_median"], rec["ood_r2_net_lo"], rec["ood_r2_net_hi"] = bootstrap_median(
            nets
        )
        base = [float(r["untrained_ood_r2"]) for r in members if _finite(r.get("untrained_ood_r2"))]
        rec["untrained_ood_r2_per_network"] = base
        adam = [
            (float(r["ood_r2_adam_median"]), float(r["ood_r2"]))
            for r in members
            if _finite(r.get("ood_r2_adam_median")) and _finite(r.get("ood_r2"))
        ]
        rec["ood_r2_adam"] = float(np.median([a for a, _ in adam])) if adam else math.nan
        rec["adam_minus_closed_per_network"] = [a - c for a, c in adam]
        rec["untrained_ood_r2_net_median"] = bootstrap_median(base)[0]
        gains = [
            float(r["ood_r2"]) - float(r["untrained_ood_r2"])
            for r in members
            if _finite(r.get("ood_r2")) and _finite(r.get("untrained_ood_r2"))
        ]
        rec["gain_over_untrained"], rec["gain_lo"], rec["gain_hi"] = bootstrap_median(gains)
        inp = [
            float(r["ood_r2"]) - float(r["input_ood_r2"])
            for r in members
            if _finite(r.get("ood_r2")) and _finite(r.get("input_ood_r2"))
        ]
        rec["gain_over_input"], rec["gain_input_lo"], rec["gain_input_hi"] = bootstrap_median(inp)
        out.append(rec)
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _mean_finite(values: Iterable[Any]) -> float:
    vals = [float(v) for v in values if _finite(v)]
    return float(np.mean(vals)) if vals else math.nan


def _sort_key(key: tuple) -> tuple:
    def one(v: Any) -> tuple:
        if isinstance(v, str) and v in ARCH_ORDER:
            return (0, ARCH_ORDER.index(v), "")
        if isinstance(v, (int, float)):
            return (1, float(v), "")
        return (2, 0.0, str(v))

    return tuple(one(v) for v in key)


def select(summary: Sequence[Mapping[str, Any]], **where: Any) -> list[Mapping[str, Any]]:
    """Summary rows whose fields equal ``where``."""
    return [r for r in summary if all(r.get(k) == v for k, v in where.items())]


DPI = 300
"""Resolution of the PNGs; every figure is also written as a vector PDF beside its PNG."""
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 6,
    "lines.markersize": 4,
    "pdf.fonttype": 42,  # TrueType: text stays editable in the PDF
}
"""Sizes readable at a paper's column width: panels are drawn at their printed size
(about 3.3 inches per panel)."""


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def _errorbar(ax: Any, rows: Sequence[Mapping[str, Any]], x: str, m: str, **kw: Any) -> None:
    rows = [r for r in rows if math.isfinite(r.get(m, math.nan))]
    if not rows:
        return
    xs = np.array([r[x] for r in rows], dtype=float)
    ys = np.array([r[m] for r in rows], dtype=float)
    lo = ys - np.array([r[f"{m}_q25"] for r in rows], dtype=float)
    hi = np.array([r[f"{m}_q75"] for r in rows], dtype=float) - ys
    ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, **kw)


def _finish(fig: Any, path: str | Path, caption: str) -> Path:
    """Write the figure as ``path`` (PNG, ``DPI``) and the same name with ``.pdf``; returns the
    PNG's path. Both are written to a temporary name and renamed (no half-written figure)."""
    fig.text(0.01, 0.005, caption, fontsize=5.5, color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, kw in ((path, {"dpi": DPI}), (path.with_suffix(".pdf"), {})):
        tmp = target.with_name(f".{target.name}.tmp")
        fig.savefig(tmp, format=target.suffix[1:], **kw)
        os.replace(tmp, target)
    _plt().close(fig)
    return path


def _ylim(ax: Any, low: float, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
    """Paper's y range, widened if a measured interval falls below it."""
    vals = [r[k] for r in rows for k in keys if math.isfinite(r.get(k, math.nan))]
    bottom = min([low, *vals]) if vals else low
    ax.set_ylim(max(bottom - 0.03, -1.0), 1.01)


def _line(ax: Any, rows: Sequence[Mapping[str, Any]], x: str, m: str, **kw: Any) -> None:
    """A control's median against x (no error bars: the network's own carry the IQR)."""
    rows = sorted((r for r in rows if _finite(r.get(m))), key=lambda r: r[x])
    if rows:
        ax.plot([r[x] for r in rows], [r[m] for r in rows], marker=".", lw=1.2, **kw)


def draw_controls(
    ax: Any,
    rows: Sequence[Mapping[str, Any]],
    x: str,
    *,
    color: Any = "C0",
    label: str = "",
    untrained: bool = True,
    inputs: bool = True,
) -> None:
    """The untrained network's OOD r^2 (dashed, ``color``) and the input baselines (grey) of
    ``rows`` against ``x``."""
    if untrained:
        style = {**CONTROL_STYLE["untrained_ood_r2"], "color": color}
        _line(ax, rows, x, "untrained_ood_r2", label=f"{label}untrained".strip(), **style)
    if inputs:
        # the input baselines depend on the task only: one line per x over every architecture
        by_x: dict[Any, list[Mapping[str, Any]]] = {}
        for r in rows:
            by_x.setdefault(r[x], []).append(r)
        pooled = [
            {
                x: k,
                **{m: _mean_finite([r.get(m) for r in v]) for m in ("input_ood_r2", "mu_ood_r2")},
            }
            for k, v in by_x.items()
        ]
        _line(
            ax,
            pooled,
            x,
            "input_ood_r2",
            label="input: encoded-obs average",
            **CONTROL_STYLE["input_ood_r2"],
        )
        _line(
            ax,
            pooled,
            x,
            "mu_ood_r2",
            label="input: evidence mean $\\mu$",
            **CONTROL_STYLE["mu_ood_r2"],
        )


def draw_bounds(ax: Any, rows: Sequence[Mapping[str, Any]], x: str | None = None) -> None:
    """The two ceilings: 1 - 12 sigma^2 / t (linear read-out of mu, dotted) and the Bayes
    posterior mean's r^2 (dashed), as horizontal lines (x None) or against x."""
    for m, ls, label in (
        ("ceiling", ":", "linear ceiling $1-12\\sigma^2/t$"),
        ("bayes_bound", (0, (5, 2)), "Bayes bound (posterior mean)"),
    ):
        vals = [r for r in rows if _finite(r.get(m))]
        if not vals:
            continue
        if x is None:
            ax.axhline(float(np.mean([r[m] for r in vals])), ls=ls, color="k", lw=1, label=label)
        else:
            pts = sorted({(r[x], r[m]) for r in vals})
            ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, color="k", lw=1, label=label)


def plot_fig3(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """Fig. 3a-c: r^2 against N (log x). a: RNN in-distribution and OOD with its controls;
    b: OOD per architecture, each with its untrained control (dashed); c: decoder-axis angle
    (degrees, folded to [0, 90], dashed 90) per architecture."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    archs = [a for a in ARCH_ORDER if select(summary, arch=a)]
    first = "rnn" if "rnn" in archs else (archs[0] if archs else None)
    ax = axes[0]
    if first:
        rows = select(summary, arch=first)
        _errorbar(ax, rows, "n_tasks", "id_r2", label="in-distribution", color="0.3")
        _errorbar(ax, rows, "n_tasks", "ood_r2", label="OOD (held-out quadrant)", color="C0")
        draw_controls(ax, rows, "n_tasks", color="C0", label="OOD, ")
        draw_bounds(ax, rows)
        _ylim(ax, 0.5, rows, ("ood_r2_q25", "id_r2_q25", "untrained_ood_r2"))
        ax.set_title(f"a  {ARCH_LABELS.get(first, first)}: generalisation vs tasks")
    ax = axes[1]
    for i, a in enumerate(archs):
        rows = select(summary, arch=a)
        _errorbar(ax, rows, "n_tasks", "ood_r2", label=ARCH_LABELS.get(a, a), color=f"C{i}")
        draw_controls(
            ax, rows, "n_tasks", color=f"C{i}", label=f"{ARCH_LABELS.get(a, a)}, ", inputs=False
        )
    draw_controls(ax, summary, "n_tasks", untrained=False)
    draw_bounds(ax, summary)
    _ylim(ax, 0.5, summary, ("ood_r2_q25", "untrained_ood_r2"))
    ax.set_title("b  OOD $r^2$ per architecture (dashed: untrained)")
    ax = axes[2]
    for i, a in enumerate(archs):
        rows = select(summary, arch=a)
        _errorbar(ax, rows, "n_tasks", "angle_deg", label=ARCH_LABELS.get(a, a), color=f"C{i}")
        _line(ax, rows, "n_tasks", "untrained_angle_deg", color=f"C{i}", ls="--", alpha=0.6)
    ax.axhline(90.0, ls="--", color="k", lw=1)
    ax.set_ylim(0, 95)
    ax.set_ylabel("angle between decoder axes (deg, folded)")
    ax.set_title("c  decoder axes angle (dashed: untrained)")
    for ax in axes:
        ax.set_xscale("log")
        ns = sorted({r["n_tasks"] for r in summary})
        if ns:
            ax.set_xticks(ns)
            ax.set_xticklabels([str(n) for n in ns])
            ax.minorticks_off()
        ax.set_xlabel("number of tasks N")
        ax.legend(fontsize=5.5)
    axes[0].set_ylabel("$r^2$")
    axes[1].set_ylabel("OOD $r^2$")
    return _finish(fig, path, caption)


def theory_curve(spec_kwargs: Mapping[str, Any], ts: Sequence[int]) -> np.ndarray:
    """r^2_max(t) [len(ts)] of probes.theory.ceiling for a spec (falls back to 1 - 12 s^2/t)."""
    from envs import TaskSpec

    spec = TaskSpec(**{k: v for k, v in spec_kwargs.items()})
    try:
        from probes.theory import ceiling

        return np.asarray(ceiling(spec, np.asarray(ts, dtype=int)), dtype=float)
    except ImportError:  # pragma: no cover - probes not built
        return 1.0 - 12.0 * spec.sigma**2 / np.asarray(ts, dtype=float)


def plot_fig5a(
    summary: Sequence[Mapping[str, Any]], path: str | Path, sigma: float, caption: str = ""
) -> Path:
    """Fig. 5a: OOD r^2 against trial duration (stimulus steps) with the untrained and input
    controls, the theory line (each row's ``ceiling``) and the Bayes bound."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.0))
    groups = sorted({r.get("n_tasks") for r in summary}, key=lambda v: (v is None, v))
    for i, n in enumerate(groups):
        rows = select(summary, n_tasks=n)
        _errorbar(ax, rows, "stimulus_steps", "ood_r2", label=f"OOD, N={n}", color=f"C{i}")
        _errorbar(
            ax,
            rows,
            "stimulus_steps",
            "id_r2",
            label=f"in-dist., N={n}",
            color=f"C{i}",
            alpha=0.4,
            ls="--",
        )
        draw_controls(ax, rows, "stimulus_steps", color=f"C{i}", label=f"OOD N={n}, ")
    draw_bounds(ax, summary, "stimulus_steps")
    _ylim(ax, 0.7, summary, ("ood_r2_q25", "untrained_ood_r2"))
    ax.set_xlabel("trial duration (stimulus steps)")
    ax.set_ylabel("$r^2$")
    ax.set_title(f"Fig. 5a  generalisation vs trial duration ($\\sigma$={sigma})")
    ax.legend(fontsize=5.5)
    return _finish(fig, path, caption)


def plot_fig5b(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """Fig. 5b: OOD r^2 against latent dimension D (random hyperplanes), a curve per N with its
    untrained control (dashed), the input baselines and both bounds, a panel per architecture."""
    plt = _plt()
    archs = [a for a in ARCH_ORDER if select(summary, arch=a)] or [None]
    fig, axes = plt.subplots(1, len(archs), figsize=(3.6 * len(archs), 3.0), squeeze=False)
    for ax, a in zip(axes[0], archs):
        rows_a = select(summary, arch=a) if a else list(summary)
        for i, n in enumerate(sorted({r["n_tasks"] for r in rows_a})):
            rows = select(rows_a, n_tasks=n)
            _errorbar(ax, rows, "latent_dim", "ood_r2", label=f"N={n}", color=f"C{i}")
            draw_controls(ax, rows, "latent_dim", color=f"C{i}", label=f"N={n}, ", inputs=False)
        draw_controls(ax, rows_a, "latent_dim", untrained=False)
        draw_bounds(ax, rows_a, "latent_dim")
        _ylim(ax, 0.0, rows_a, ("ood_r2_q25", "untrained_ood_r2"))
        ax.set_xticks(sorted({r["latent_dim"] for r in rows_a}))
        ax.set_xlabel("latent dimension D")
        ax.set_ylabel("OOD $r^2$")
        ax.set_title(f"Fig. 5b  {ARCH_LABELS.get(a, a) if a else ''}: OOD $r^2$ vs D")
        ax.legend(fontsize=5.5)
    return _finish(fig, path, caption)


def plot_fig5c(
    summary: Sequence[Mapping[str, Any]], path: str | Path, steps: int, caption: str = ""
) -> Path:
    """Fig. 5c: OOD r^2 against sigma, a curve per N with its untrained control (dashed), the
    input baselines, the linear ceiling 1 - 12 sigma^2 / T and the Bayes bound."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.0))
    for i, n in enumerate(sorted({r["n_tasks"] for r in summary})):
        rows = select(summary, n_tasks=n)
        _errorbar(ax, rows, "sigma", "ood_r2", label=f"N={n}", color=f"C{i}")
        draw_controls(ax, rows, "sigma", color=f"C{i}", label=f"N={n}, ", inputs=False)
    draw_controls(ax, summary, "sigma", untrained=False)
    draw_bounds(ax, summary, "sigma")
    _ylim(ax, 0.5, summary, ("ood_r2_q25", "untrained_ood_r2"))
    ax.set_xlabel(f"evidence noise $\\sigma$ (per step), T = {steps}")
    ax.set_ylabel("OOD $r^2$")
    ax.set_title("Fig. 5c  generalisation vs noise")
    ax.legend(fontsize=5.5)
    return _finish(fig, path, caption)


def plot_rl(
    summary: Sequence[Mapping[str, Any]], path: str | Path, group: str, caption: str = ""
) -> Path:
    """RL agents of each report kind: OOD and in-distribution r^2 (bars, IQR), the untrained
    agent's OOD r^2 (grey bar), the input baselines and both bounds."""
    plt = _plt()
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
        vals = [r[m] for r in summary if _finite(r.get(m))]
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
    return _finish(fig, path, caption)


def fmt(rec: Mapping[str, Any], m: str) -> str:
    """``median [q25, q75]`` with 3 decimals, or ``-``."""
    v = rec.get(m, math.nan)
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    if "angle" in m:
        return f"{v:.1f} [{rec[f'{m}_q25']:.1f}, {rec[f'{m}_q75']:.1f}]"
    return f"{v:.3f} [{rec[f'{m}_q25']:.3f}, {rec[f'{m}_q75']:.3f}]"


def _num(v: Any, digits: int = 3) -> str:
    return f"{v:.{digits}f}" if _finite(v) else "-"


def markdown_table(
    summary: Sequence[Mapping[str, Any]], keys: Sequence[str], theory: str = "ceiling"
) -> str:
    """A markdown table per condition: the network's OOD r^2 (pooled median [IQR] and the
    per-network medians), its controls (untrained, encoded-input average, evidence mean), the gain
    over untrained with its 95% bootstrap interval over networks, in-distribution r^2, angle and
    the two bounds."""
    head = [
        *keys,
        "networks",
        "OOD r^2 median [IQR]",
        "OOD r^2 per network",
        "untrained OOD r^2",
        "gain over untrained [95% CI]",
        "input-average OOD r^2",
        "mu OOD r^2",
        "in-dist. r^2",
        "angle (deg)",
        "linear ceiling" if theory == "ceiling" else theory,
        "Bayes bound",
    ]
    adam = any(_finite(r.get("ood_r2_adam")) for r in summary)
    if adam:
        head.insert(len(keys) + 3, "OOD r^2, paper's Adam protocol (median over networks)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary:
        cells = [str(r.get(k)) for k in keys]
        gain = r.get("gain_over_untrained", math.nan)
        cells += [
            str(r["n_networks"]),
            fmt(r, "ood_r2"),
            ", ".join(f"{v:.3f}" for v in r.get("ood_r2_per_network", [])) or "-",
            fmt(r, "untrained_ood_r2"),
            f"{gain:+.3f} [{r['gain_lo']:+.3f}, {r['gain_hi']:+.3f}]" if _finite(gain) else "-",
            fmt(r, "input_ood_r2"),
            fmt(r, "mu_ood_r2"),
            fmt(r, "id_r2"),
            fmt(r, "angle_deg"),
            _num(r.get(theory, math.nan)),
            _num(r.get("bayes_bound", math.nan)),
        ]
        if adam:
            cells.insert(len(keys) + 3, _num(r.get("ood_r2_adam", math.nan)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
