"""Figures of a probe report (matplotlib, Agg backend; PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from multitask_evidence.envs import orthant_index

QUADRANT_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_figures(report: Any, rec: Any, folder: Path) -> dict[str, str]:
    """Write every figure the report has data for; returns {name.png: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, fn in (
        ("ood.png", _ood),
        ("decoding_time.png", _over_time),
        ("pca.png", _pca),
        ("fixed_points.png", _fixed_points),
        ("tuning.png", _tuning),
    ):
        path = folder / name
        if fn(report, rec, path):
            out[name] = str(path)
    return out


def _ood(report: Any, rec: Any, path: Path) -> bool:
    plt = _plt()
    r = report.results
    sets = [("orthant", r["ood"])]
    if "ood_halfspace" in r:
        sets.append(("half-space", r["ood_halfspace"]))
    if "ood_adam" in r:
        sets.append(("orthant, Adam", r["ood_adam"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(4.2 * len(sets), 3.6), squeeze=False)
    ceil = r["ceiling"]["r2"]
    for ax, (title, o) in zip(axes[0], sets):
        folds = o["folds"]
        for i, f in enumerate(folds):
            vals = np.asarray(f["r2"])
            ax.scatter(
                np.full(vals.size, i) + np.linspace(-0.1, 0.1, vals.size),
                vals,
                s=18,
                color="k",
                zorder=3,
            )
            ax.bar(i, np.median(vals), color="#9ecae1", width=0.6)
        if ceil is not None:
            ax.axhline(ceil, ls="--", color="r", label=f"r$^2$ of mu (Eq. 7) {ceil:.3f}")
        ax.axhline(
            r["in_distribution"]["r2"],
            ls=":",
            color="g",
            label=f"in-dist {r['in_distribution']['r2']:.3f}",
        )
        ax.set_xticks(
            range(len(folds)), [f["held_out"] for f in folds], rotation=45 if len(folds) > 4 else 0
        )
        lo = min(0.5, min(v for f in folds for v in f["r2"]) - 0.05)
        ax.set_ylim(lo, 1.0)
        ax.set_xlabel("held-out region")
        ax.set_ylabel("OOD r$^2$ = 1 - MSE / Var$_{prior}$")
        ax.set_title(f"{title}: median {o['r2_median']:.3f}")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _over_time(report: Any, rec: Any, path: Path) -> bool:
    ot = report.results.get("over_time")
    if not ot:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(ot["steps"], ot["r2"], "o-", label="in-distribution r$^2$ (ridge)")
    if ot.get("ceiling"):
        ax.plot(
            range(len(ot["ceiling"])),
            ot["ceiling"],
            "r--",
            label="r$^2$ of mu (Eq. 7): 1 - Var$_{noise}$(t) / Var$_{prior}$",
        )
    if ot.get("bayes_bound"):
        ax.plot(
            range(len(ot["bayes_bound"])),
            ot["bayes_bound"],
            "k:",
            label="Bayes bound (posterior mean)",
        )
    ax.set_ylim(-0.05, 1.02)
    ax.set_xlabel("step of the trial")
    ax.set_ylabel("r$^2$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _pca(report: Any, rec: Any, path: Path) -> bool:
    p = report.extras.get("pca")
    if p is None:
        return False
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [2, 1]})
    k = min(160, rec.n)
    traj = p.project(rec.hidden[:k], 2)  # [k, T, 2]
    quad = orthant_index(rec.latent[:k])
    s1 = rec.spec.decision_start + 1
    for i in range(k):  # a plot loop over a few trajectories
        c = (
            QUADRANT_COLOURS[quad[i] % 4]
            if rec.spec.latent_dim == 2
            else plt.cm.tab10(quad[i] % 10)
        )
        ax.plot(traj[i, :s1, 0], traj[i, :s1, 1], color=c, lw=0.5, alpha=0.5)
        ax.scatter(traj[i, s1 - 1, 0], traj[i, s1 - 1, 1], color=c, s=6)
    fp = report.extras.get("fixed_points")
    if fp is not None and fp.n_found:
        pts = p.project(fp.points, 2)
        ax.scatter(
            pts[:, 0], pts[:, 1], marker="x", color="k", s=30, label=f"fixed points ({fp.n_found})"
        )
        ax.legend(fontsize=7)
    if rec.spec.latent_dim == 2:
        for q, name in enumerate(("(-,-)", "(+,-)", "(-,+)", "(+,+)")):
            ax.plot([], [], color=QUADRANT_COLOURS[q], label=f"quadrant {q} {name}")
        ax.legend(fontsize=7)
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_title("hidden trajectories (dots: decision step)")
    ev = np.asarray(p.explained_variance_ratio[:10])
    ax2.bar(np.arange(1, ev.size + 1), ev)
    ax2.set_xlabel("PC")
    ax2.set_ylabel("variance explained")
    ax2.set_title(f"participation ratio {p.participation_ratio:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _fixed_points(report: Any, rec: Any, path: Path) -> bool:
    fp = report.extras.get("fixed_points")
    if fp is None or not fp.n_found:
        return False
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9, 4))
    th = np.linspace(0, 2 * np.pi, 200)
    ax.plot(np.cos(th), np.sin(th), "k:", lw=0.8)
    ev = fp.eigenvalues[:20]
    ax.scatter(ev.real.ravel(), ev.imag.ravel(), s=8, alpha=0.4)
    ax.set_aspect("equal")
    ax.set_xlabel("Re $\\lambda$(J)")
    ax.set_ylabel("Im $\\lambda$(J)")
    ax.set_title(f"Jacobian eigenvalues at {min(20, fp.n_found)} fixed / slow points")
    top = np.sort(np.abs(fp.eigenvalues[:20] - 1.0), axis=1)[:, :6]
    ax2.plot(np.arange(1, top.shape[1] + 1), top.T, "o-", color="tab:blue", alpha=0.4)
    ax2.axhline(fp.marginal_tol, ls="--", color="r", label=f"marginal tol {fp.marginal_tol}")
    ax2.set_yscale("log")
    ax2.set_xlabel("mode (sorted)")
    ax2.set_ylabel("|$\\lambda$ - 1| (eigenvalue of J - I)")
    ax2.set_title(f"near-marginal modes: median {fp.attractor_dim}")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _tuning(report: Any, rec: Any, path: Path) -> bool:
    tm = report.extras.get("tuning")
    if tm is None or tm.maps.ndim != 3:
        return False
    plt = _plt()
    order = np.argsort(-tm.maps.reshape(tm.maps.shape[0], -1).std(axis=1))[:16]
    fig, axes = plt.subplots(4, 4, figsize=(8, 8))
    ext = (-0.5, 0.5, -0.5, 0.5)
    for ax, u in zip(axes.ravel(), order):
        ax.imshow(tm.maps[u].T, origin="lower", extent=ext, cmap="viridis")
        ax.set_title(f"unit {u}: r(x1)={tm.corr[u, 0]:.2f}, r(x2)={tm.corr[u, 1]:.2f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "decision-step responses (mean of 16 trials per cell) over an 8 x 8 grid of x*\n(x1 right, x2 up); the 16 most variable units"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
