"""Drawing shared by the figures' plots: style, error bars, controls, bounds, the saved files.

The controls are drawn beside every network's curve: the untrained network dashed in its
network's colour, the input baselines grey (``CONTROL_STYLE``); the two bounds in black
(:func:`draw_bounds`). Every plot is written by :func:`finish` as a PNG (``DPI``) and a vector
PDF beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.common.files import atomic_write

from .inference import t_interval
from .stats import finite, mean_finite, select

CONTROL_STYLE = {
    "untrained_ood_r2": {"ls": "--", "alpha": 0.6},
    "input_ood_r2": {"ls": "-.", "color": "0.55"},
    "mu_ood_r2": {"ls": (0, (1, 1)), "color": "0.75"},
}
"""How the controls are drawn: the untrained network dashed in its network's colour, the input
baselines grey."""


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


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(STYLE)
    return plt


def errorbar(ax: Any, rows: Sequence[Mapping[str, Any]], x: str, m: str, **kw: Any) -> None:
    """Metric ``m`` of each condition against ``x``: every network as a small dot (spread a
    little along x so that they do not hide each other) and the mean over networks with its
    95% t-interval. Rows without per-network values (``_by_seed``) fall back to the pooled
    median and IQR, the paper's statistic."""
    rows = sorted((r for r in rows if math.isfinite(r.get(m, math.nan))), key=lambda r: r[x])
    if not rows:
        return
    per = [list(((r.get("_by_seed") or {}).get(m) or {}).values()) for r in rows]
    if not all(per):
        xs = np.array([r[x] for r in rows], dtype=float)
        ys = np.array([r[m] for r in rows], dtype=float)
        lo = ys - np.array([r[f"{m}_q25"] for r in rows], dtype=float)
        hi = np.array([r[f"{m}_q75"] for r in rows], dtype=float) - ys
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, **kw)
        return
    color = kw.get("color")
    xs, means, lo, hi = [], [], [], []
    for r, vals in zip(rows, per):
        k = len(vals)
        spread = 1 + 0.05 * (np.arange(k) / max(k - 1, 1) - 0.5)
        ax.plot(float(r[x]) * spread, vals, ls="", marker=".", ms=3, alpha=0.45, color=color)
        a, b = t_interval(vals)
        mean = float(np.mean(vals))
        xs.append(float(r[x]))
        means.append(mean)
        lo.append(mean - a if math.isfinite(a) else 0.0)
        hi.append(b - mean if math.isfinite(b) else 0.0)
    ax.errorbar(xs, means, yerr=[lo, hi], marker="o", capsize=3, **kw)


def network_values(rows: Sequence[Mapping[str, Any]], m: str) -> list[float]:
    """Every network's value of ``m`` over ``rows`` (their ``_by_seed``)."""
    return [v for r in rows for v in ((r.get("_by_seed") or {}).get(m) or {}).values()]


def finish(fig: Any, path: str | Path, caption: str) -> Path:
    """Write the figure as ``path`` (PNG, ``DPI``) and the same name with ``.pdf``; returns the
    PNG's path. Both are written to a temporary name and renamed (no half-written figure)."""
    fig.text(0.01, 0.005, caption, fontsize=5.5, color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, kw in ((path, {"dpi": DPI}), (path.with_suffix(".pdf"), {})):
        atomic_write(target, lambda fh, t=target, kw=kw: fig.savefig(fh, format=t.suffix[1:], **kw))
    pyplot().close(fig)
    return path


def ylim(ax: Any, low: float, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
    """Paper's y range, widened if a measured interval or a network falls below it."""
    vals = [r[k] for r in rows for k in keys if math.isfinite(r.get(k, math.nan))]
    vals += network_values(rows, "ood_r2")
    bottom = min([low, *vals]) if vals else low
    ax.set_ylim(max(bottom - 0.03, -1.0), 1.01)


def line(ax: Any, rows: Sequence[Mapping[str, Any]], x: str, m: str, **kw: Any) -> None:
    """A control's median against x (no error bars: the network's own carry the IQR)."""
    rows = sorted((r for r in rows if finite(r.get(m))), key=lambda r: r[x])
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
        line(ax, rows, x, "untrained_ood_r2", label=f"{label}untrained".strip(), **style)
    if inputs:
        # the input baselines depend on the task only: one line per x over every architecture
        by_x: dict[Any, list[Mapping[str, Any]]] = {}
        for r in rows:
            by_x.setdefault(r[x], []).append(r)
        pooled = [
            {
                x: k,
                **{m: mean_finite([r.get(m) for r in v]) for m in ("input_ood_r2", "mu_ood_r2")},
            }
            for k, v in by_x.items()
        ]
        line(
            ax,
            pooled,
            x,
            "input_ood_r2",
            label="input: encoded-obs average",
            **CONTROL_STYLE["input_ood_r2"],
        )
        line(
            ax,
            pooled,
            x,
            "mu_ood_r2",
            label="input: evidence mean $\\mu$",
            **CONTROL_STYLE["mu_ood_r2"],
        )


def draw_bounds(ax: Any, rows: Sequence[Mapping[str, Any]], x: str | None = None) -> None:
    """The theory's two lines: 1 - 12 sigma^2 / t, the r^2 of mu itself (the paper's Eq. 7,
    dotted; no bound on a read-out), and the Bayes posterior mean's r^2 (dashed, the bound), as
    horizontal lines (x None) or against x."""
    for m, ls, label in (
        ("ceiling", ":", "$r^2$ of $\\mu$ (Eq. 7) $1-12\\sigma^2/t$"),
        ("bayes_bound", (0, (5, 2)), "Bayes bound (posterior mean)"),
    ):
        vals = [r for r in rows if finite(r.get(m))]
        if not vals:
            continue
        if x is None:
            ax.axhline(float(np.mean([r[m] for r in vals])), ls=ls, color="k", lw=1, label=label)
        else:
            pts = sorted({(r[x], r[m]) for r in vals})
            ax.plot([p[0] for p in pts], [p[1] for p in pts], ls=ls, color="k", lw=1, label=label)


def theory_curve(spec_kwargs: Mapping[str, Any], ts: Sequence[int]) -> np.ndarray:
    """r^2_max(t) [len(ts)] of probes.theory.ceiling for a spec (falls back to 1 - 12 s^2/t)."""
    from multitask_evidence.envs import TaskSpec

    spec = TaskSpec(**{k: v for k, v in spec_kwargs.items()})
    try:
        from multitask_evidence.probes.theory import ceiling

        return np.asarray(ceiling(spec, np.asarray(ts, dtype=int)), dtype=float)
    except ImportError:  # pragma: no cover - probes not built
        return 1.0 - 12.0 * spec.sigma**2 / np.asarray(ts, dtype=float)


def draw_condition(
    ax: Any, rows: Sequence[Mapping[str, Any]], x: str, *, color: Any, label: str
) -> None:
    """One condition's OOD r^2 against x (:func:`errorbar`) with its own controls in its colour:
    the same networks untrained (dashed) and the decoder on its encoded input's average
    (dash-dot). For figures whose conditions change the input itself (the encoder, the
    evidence steps), where one grey input line would not be each condition's control."""
    rows = sorted(rows, key=lambda r: r[x])
    errorbar(ax, rows, x, "ood_r2", label=label, color=color)
    style = {**CONTROL_STYLE["untrained_ood_r2"], "color": color}
    line(ax, rows, x, "untrained_ood_r2", label=f"{label}, untrained", **style)
    line(
        ax,
        rows,
        x,
        "input_ood_r2",
        label=f"{label}, input average",
        ls="-.",
        color=color,
        alpha=0.45,
    )


def log_n_axis(ax: Any, rows: Sequence[Mapping[str, Any]], x: str = "n_tasks") -> None:
    """A log x axis ticked at the numbers of tasks present, labelled 'number of tasks N'."""
    ax.set_xscale("log")
    ns = sorted({r[x] for r in rows})
    if ns:
        ax.set_xticks(ns)
        ax.set_xticklabels([str(n) for n in ns])
        ax.minorticks_off()
    ax.set_xlabel("number of tasks N")


def plot_conditions(
    summary: Sequence[Mapping[str, Any]],
    key: str,
    labels: Mapping[Any, str],
    path: str | Path,
    title: str,
    caption: str = "",
    bounds: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """OOD r^2 (each network a dot, the mean over networks with its 95% t-interval) against N
    (log x), one colour per
    condition of ``key`` with its own controls (:func:`draw_condition`), the two bounds of
    ``bounds`` (default: every row) and the legend beside the axes."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    for i, (v, name) in enumerate(labels.items()):
        rows = select(summary, **{key: v})
        if rows:
            draw_condition(ax, rows, "n_tasks", color=f"C{i}", label=name)
    draw_bounds(ax, summary if bounds is None else bounds)
    ylim(ax, 0.5, summary, ("ood_r2_q25", "untrained_ood_r2", "input_ood_r2"))
    log_n_axis(ax, summary)
    ax.set_ylabel("OOD $r^2$")
    ax.set_title(title)
    ax.legend(fontsize=5.5, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return finish(fig, path, caption)
