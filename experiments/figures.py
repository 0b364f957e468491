"""Plots and summary tables of the paper's figures, from the rows of a sweep (results.json).

Each row is one trained-and-probed network (see :func:`experiments.point.run_point`): its grid
parameters (``arch``, ``n_tasks``, ``sigma`` ...) and headline metrics:
``ood_r2`` (median over folds x fits), ``ood_r2_values`` (every fold x fit value), ``id_r2``,
``angle_deg`` (angle between the decoder axes; ``angle_deg_values``: every OOD decoder's, pooled
like the r^2 values when present), ``ceiling`` (the theory's r^2_max at the decision
step). The statistics are the paper's: median and IQR over networks x folds x fits, i.e. the
per-network ``ood_r2_values`` lists pooled over the networks of a condition.

Every ``plot_*`` function takes the summary rows of :func:`summarise` and writes a PNG.
"""

from __future__ import annotations

import math
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
METRICS = ("ood_r2", "id_r2", "angle_deg")


def _values(row: Mapping[str, Any], metric: str) -> list[float]:
    """All the values of one metric a network contributes (its folds x fits for OOD r^2)."""
    vals = row.get(f"{metric}_values")
    if isinstance(vals, (list, tuple)) and vals:
        out = [float(v) for v in vals]
    else:
        v = row.get(metric)
        out = [float(v)] if isinstance(v, (int, float)) and not isinstance(v, bool) else []
    return [v for v in out if math.isfinite(v)]


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
        for extra in ("ceiling", "frac_ideal"):
            vals = [float(r[extra]) for r in members if isinstance(r.get(extra), (int, float))]
            rec[extra] = float(np.mean(vals)) if vals else math.nan
        out.append(rec)
    return out


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


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.text(0.01, 0.005, caption, fontsize=7, color="0.35", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    _plt().close(fig)
    return path


def _ylim(ax: Any, low: float, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> None:
    """Paper's y range, widened if a measured interval falls below it."""
    vals = [r[k] for r in rows for k in keys if math.isfinite(r.get(k, math.nan))]
    bottom = min([low, *vals]) if vals else low
    ax.set_ylim(max(bottom - 0.03, -1.0), 1.01)


def plot_fig3(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """Fig. 3a-c: r^2 against N (log x). a: RNN in-distribution and OOD; b: OOD per architecture;
    c: decoder angle (degrees, dashed 90) per architecture."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    archs = [a for a in ARCH_ORDER if select(summary, arch=a)]
    first = "rnn" if "rnn" in archs else (archs[0] if archs else None)
    ax = axes[0]
    if first:
        rows = select(summary, arch=first)
        _errorbar(ax, rows, "n_tasks", "id_r2", label="in-distribution", color="0.3")
        _errorbar(ax, rows, "n_tasks", "ood_r2", label="OOD (held-out quadrant)", color="C0")
        ceil = [r for r in rows if math.isfinite(r["ceiling"])]
        if ceil:
            ax.axhline(
                float(np.mean([r["ceiling"] for r in ceil])),
                ls=":",
                color="k",
                label="theory ceiling $1-12\\sigma^2/T$",
            )
        _ylim(ax, 0.5, rows, ("ood_r2_q25", "id_r2_q25"))
        ax.set_title(f"a  {ARCH_LABELS.get(first, first)}: generalisation vs tasks")
    ax = axes[1]
    for i, a in enumerate(archs):
        _errorbar(
            ax,
            select(summary, arch=a),
            "n_tasks",
            "ood_r2",
            label=ARCH_LABELS.get(a, a),
            color=f"C{i}",
        )
    _ylim(ax, 0.5, summary, ("ood_r2_q25",))
    ax.set_title("b  OOD $r^2$ per architecture")
    ax = axes[2]
    for i, a in enumerate(archs):
        strong = a in ("rnn", "transformer")
        _errorbar(
            ax,
            select(summary, arch=a),
            "n_tasks",
            "angle_deg",
            label=ARCH_LABELS.get(a, a),
            color=f"C{i}",
            alpha=1.0 if strong else 0.35,
        )
    ax.axhline(90.0, ls="--", color="k", lw=1)
    vals = [r["angle_deg"] for r in summary if math.isfinite(r.get("angle_deg", math.nan))]
    lo = min([60.0, *vals]) - 5
    hi = max([120.0, *vals]) + 5
    ax.set_ylim(lo, hi)
    ax.set_ylabel("angle between decoder axes (deg)")
    ax.set_title("c  decoder axes angle")
    for ax in axes:
        ax.set_xscale("log")
        ns = sorted({r["n_tasks"] for r in summary})
        if ns:
            ax.set_xticks(ns)
            ax.set_xticklabels([str(n) for n in ns])
            ax.minorticks_off()
        ax.set_xlabel("number of tasks N")
        ax.legend(fontsize=7)
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
    """Fig. 5a: OOD r^2 against trial duration (stimulus steps), theory 1 - 12 sigma^2 / t."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
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
    ts = sorted({int(r["stimulus_steps"]) for r in summary})
    if ts:
        grid = np.arange(max(1, min(ts)), max(ts) + 1)
        ax.plot(
            grid,
            theory_curve({"sigma": sigma}, grid),
            "k:",
            label=f"theory $1-12\\sigma^2/t$ ($\\sigma$={sigma})",
        )
    _ylim(ax, 0.7, summary, ("ood_r2_q25",))
    ax.set_xlabel("trial duration t (stimulus steps)")
    ax.set_ylabel("OOD $r^2$")
    ax.set_title("Fig. 5a  generalisation vs trial duration")
    ax.legend(fontsize=7)
    return _finish(fig, path, caption)


def plot_fig5b(summary: Sequence[Mapping[str, Any]], path: str | Path, caption: str = "") -> Path:
    """Fig. 5b: OOD r^2 against latent dimension D (random hyperplanes), a curve per N, a panel
    per architecture."""
    plt = _plt()
    archs = [a for a in ARCH_ORDER if select(summary, arch=a)] or [None]
    fig, axes = plt.subplots(1, len(archs), figsize=(5.5 * len(archs), 4.2), squeeze=False)
    for ax, a in zip(axes[0], archs):
        rows_a = select(summary, arch=a) if a else list(summary)
        for i, n in enumerate(sorted({r["n_tasks"] for r in rows_a})):
            _errorbar(
                ax, select(rows_a, n_tasks=n), "latent_dim", "ood_r2", label=f"N={n}", color=f"C{i}"
            )
        ceil = sorted(
            {(r["latent_dim"], r["ceiling"]) for r in rows_a if math.isfinite(r["ceiling"])}
        )
        if ceil:
            ax.plot([c[0] for c in ceil], [c[1] for c in ceil], "k:", label="theory ceiling")
        _ylim(ax, 0.0, rows_a, ("ood_r2_q25",))
        ax.set_xticks(sorted({r["latent_dim"] for r in rows_a}))
        ax.set_xlabel("latent dimension D")
        ax.set_ylabel("OOD $r^2$")
        ax.set_title(f"Fig. 5b  {ARCH_LABELS.get(a, a) if a else ''}: OOD $r^2$ vs D")
        ax.legend(fontsize=7)
    return _finish(fig, path, caption)


def plot_fig5c(
    summary: Sequence[Mapping[str, Any]], path: str | Path, steps: int, caption: str = ""
) -> Path:
    """Fig. 5c: OOD r^2 against sigma, a curve per N, with the ceilings 1 - 12 sigma^2 / T."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for i, n in enumerate(sorted({r["n_tasks"] for r in summary})):
        _errorbar(ax, select(summary, n_tasks=n), "sigma", "ood_r2", label=f"N={n}", color=f"C{i}")
    sigmas = sorted({float(r["sigma"]) for r in summary})
    if sigmas:
        grid = np.linspace(min(sigmas), max(sigmas), 50)
        ceil = [
            theory_curve({"sigma": float(s), "stimulus_steps": steps}, [steps])[0] for s in grid
        ]
        ax.plot(grid, ceil, "k:", label=f"ceiling $1-12\\sigma^2/T$, T={steps}")
    _ylim(ax, 0.5, summary, ("ood_r2_q25",))
    ax.set_xlabel("evidence noise $\\sigma$ (per step)")
    ax.set_ylabel("OOD $r^2$")
    ax.set_title("Fig. 5c  generalisation vs noise")
    ax.legend(fontsize=7)
    return _finish(fig, path, caption)


def plot_rl(
    summary: Sequence[Mapping[str, Any]], path: str | Path, group: str, caption: str = ""
) -> Path:
    """RL agents of each report kind: OOD and in-distribution r^2 (bars, IQR) beside the ceiling."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.5, 1.6 * len(summary) + 2), 4.2))
    labels = [str(r.get(group)) for r in summary]
    x = np.arange(len(summary))
    for off, m, color in ((-0.2, "ood_r2", "C0"), (0.2, "id_r2", "0.5")):
        ys = np.array([r[m] for r in summary], dtype=float)
        lo = ys - np.array([r[f"{m}_q25"] for r in summary], dtype=float)
        hi = np.array([r[f"{m}_q75"] for r in summary], dtype=float) - ys
        ax.bar(
            x + off,
            np.nan_to_num(ys),
            width=0.4,
            yerr=[np.nan_to_num(lo), np.nan_to_num(hi)],
            color=color,
            capsize=3,
            label="OOD" if m == "ood_r2" else "in-distribution",
        )
    ceil = [r["ceiling"] for r in summary if math.isfinite(r["ceiling"])]
    if ceil:
        ax.axhline(float(np.mean(ceil)), ls=":", color="k", label="theory ceiling")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=15, fontsize=8)
    ax.set_ylabel("$r^2$ of x* from the hidden state")
    ax.set_ylim(min(0.0, *(np.nan_to_num([r["ood_r2_q25"] for r in summary]) - 0.05)), 1.02)
    ax.set_title("RL agents: disentanglement by report kind")
    ax.legend(fontsize=7)
    return _finish(fig, path, caption)


def fmt(rec: Mapping[str, Any], m: str) -> str:
    """``median [q25, q75]`` with 3 decimals, or ``-``."""
    v = rec.get(m, math.nan)
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    if m == "angle_deg":
        return f"{v:.1f} [{rec[f'{m}_q25']:.1f}, {rec[f'{m}_q75']:.1f}]"
    return f"{v:.3f} [{rec[f'{m}_q25']:.3f}, {rec[f'{m}_q75']:.3f}]"


def markdown_table(
    summary: Sequence[Mapping[str, Any]], keys: Sequence[str], theory: str = "ceiling"
) -> str:
    """A markdown table: condition, networks, OOD r^2, in-distribution r^2, angle, theory."""
    head = [
        *keys,
        "networks",
        "OOD r^2 median [IQR]",
        "in-dist. r^2",
        "angle (deg)",
        "theory ceiling",
        "OOD / ceiling",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary:
        ceil = r.get(theory, math.nan)
        ratio = r["ood_r2"] / ceil if math.isfinite(ceil) and ceil > 0 else math.nan
        cells = [str(r.get(k)) for k in keys]
        cells += [
            str(r["n_networks"]),
            fmt(r, "ood_r2"),
            fmt(r, "id_r2"),
            fmt(r, "angle_deg"),
            f"{ceil:.3f}" if math.isfinite(ceil) else "-",
            f"{ratio:.3f}" if math.isfinite(ratio) else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
