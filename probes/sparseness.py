"""Population statistics: lifetime sparseness, PCA, participation ratio, steady-state tuning maps.

* Lifetime sparseness of each unit over m stimuli (Vinje & Gallant 2000, docs/science.md §5):
  S = [1 - (mean r)^2 / mean(r^2)] / (1 - 1/m); 0 = equal response to every stimulus,
  1 = responds to a single one. Meant for non-negative rates (ReLU units). Two summaries of a
  population: :func:`lifetime_sparseness` (this package's: silent units left out as NaN, an
  optional baseline at each unit's minimum, median over the active units) and
  :func:`paper_lifetime_sparseness` (the paper's: raw responses, every unit counted, silent
  units at a fixed value, mean over units).
* PCA of hidden states (trials x steps pooled): explained variance ratio per component and the
  participation ratio PR = (sum l)^2 / sum l^2 (an effective dimension).
* Tuning maps: mean state per cell of a latent grid (Fig. 4 of the paper: 8 x 8 grid), and each
  unit's correlation with each latent axis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from multitask_evidence.probes.linear import check_xy


@dataclass
class SparsenessResult:
    """Lifetime sparseness per unit (NaN = silent), and its mean / median over active units."""

    per_unit: list[float]
    mean: float
    median: float
    n_silent: int
    n_stimuli: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["per_unit"] = [None if not np.isfinite(v) else v for v in self.per_unit]
        return d


def _check_responses(responses: np.ndarray) -> np.ndarray:
    r = np.asarray(responses, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2:
        raise ValueError(f"responses must be [m >= 2 stimuli, H units], got shape {r.shape}")
    if not np.isfinite(r).all():
        raise ValueError("responses contain NaN or inf")
    return r


def lifetime_sparseness(responses: np.ndarray, baseline: str = "zero") -> SparsenessResult:
    """Vinje-Gallant lifetime sparseness of responses [m stimuli, H units].

    baseline: ``'zero'`` (the definition, for non-negative rates such as ReLU units) or
    ``'min'``: each unit's response above its own minimum over the m stimuli, r - min r, which
    makes the measure defined for signed states (LSTM, transformer, encoder outputs) and
    invariant to a unit's offset; on rates whose minimum is 0 the two agree.
    """
    if baseline not in ("zero", "min"):
        raise ValueError(f"baseline must be 'zero' or 'min', got {baseline!r}")
    r = _check_responses(responses)
    if baseline == "min":
        r = r - r.min(axis=0)
    m = r.shape[0]
    mean, mean_sq = r.mean(axis=0), (r**2).mean(axis=0)
    silent = mean_sq <= 1e-24
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(silent, np.nan, (1.0 - mean**2 / mean_sq) / (1.0 - 1.0 / m))
    active = s[~silent]
    return SparsenessResult(
        per_unit=s.tolist(),
        mean=float(active.mean()) if active.size else float("nan"),
        median=float(np.median(active)) if active.size else float("nan"),
        n_silent=int(silent.sum()),
        n_stimuli=m,
    )


SILENT_SPARSENESS = 1.0
"""The value :func:`paper_lifetime_sparseness` gives a silent unit (mean(r^2) = 0, where the
formula is 0 / 0): a unit that never responds is as sparse as one that responds to a single
stimulus. The official code's helper (``util.compute_sparseness``) is not in its published
``util.py``, so its own choice could not be read; this one is stated on every page that uses it."""


@dataclass
class PaperSparseness:
    """The paper's lifetime sparseness of a population: per_unit [H] (silent units at
    ``silent``), mean over all H units, how many were silent, over n_stimuli stimuli."""

    per_unit: list[float]
    mean: float
    n_silent: int
    n_stimuli: int
    silent: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paper_lifetime_sparseness(
    responses: np.ndarray, silent: float = SILENT_SPARSENESS
) -> PaperSparseness:
    """Vinje-Gallant lifetime sparseness as the paper's code summarises a network: on the raw
    responses [m stimuli, H units] (no baseline), every unit counted, silent units (mean(r^2)
    = 0) at ``silent``, then the mean over the H units (the official ``sparsity.py`` plots
    100 x this mean per network).

    On non-negative rates each unit's value lies in [0, 1]. On signed states (LSTM, transformer,
    encoder outputs) the formula still gives a number, up to m / (m - 1), but it no longer
    measures how few stimuli drive a unit: a unit of mean 0 scores m / (m - 1) however it is
    tuned. :func:`lifetime_sparseness` with ``baseline='min'`` is the measure for those.
    """
    r = _check_responses(responses)
    m = r.shape[0]
    mean, mean_sq = r.mean(axis=0), (r**2).mean(axis=0)
    quiet = mean_sq <= 1e-24
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(quiet, float(silent), (1.0 - mean**2 / mean_sq) / (1.0 - 1.0 / m))
    return PaperSparseness(
        per_unit=s.tolist(),
        mean=float(s.mean()),
        n_silent=int(quiet.sum()),
        n_stimuli=m,
        silent=float(silent),
    )


def active_fraction(responses: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Fraction [H] of the m stimuli on which each unit's response [m, H] exceeds
    ``threshold`` (100 x its mean over units at threshold 0 is the 'sparsity' of an earlier
    version of the official ``sparsity.py``; the version with the paper's N grid plots
    :func:`paper_lifetime_sparseness` x 100 as Fig. S6)."""
    return (_check_responses(responses) > threshold).mean(axis=0)


@dataclass
class PCAResult:
    """explained_variance_ratio: [H] per component, descending; participation_ratio; n_90 / n_95:
    components needed for 90 / 95 % of the variance. mean, components: for projections."""

    explained_variance_ratio: list[float]
    participation_ratio: float
    n_90: int
    n_95: int
    mean: np.ndarray = field(repr=False)
    components: np.ndarray = field(repr=False)

    def project(self, hidden: np.ndarray, k: int = 3) -> np.ndarray:
        """Coordinates [..., k] of states [..., H] on the first k principal components."""
        return (np.asarray(hidden) - self.mean) @ self.components[:k].T

    def to_dict(self) -> dict[str, Any]:
        return {
            "explained_variance_ratio": self.explained_variance_ratio,
            "participation_ratio": self.participation_ratio,
            "n_90": self.n_90,
            "n_95": self.n_95,
        }


def pca(hidden: np.ndarray) -> PCAResult:
    """PCA of states [n, H] or trajectories [n, T, H] (steps pooled with trials)."""
    x = np.asarray(hidden, dtype=np.float64)
    if x.ndim == 3:
        x = x.reshape(-1, x.shape[-1])
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"hidden must be [n, H] or [n, T, H] with n >= 2, got {np.shape(hidden)}")
    if not np.isfinite(x).all():
        raise ValueError("hidden contains NaN or inf")
    mean = x.mean(axis=0)
    cov = np.cov(x - mean, rowvar=False).reshape(x.shape[1], x.shape[1])
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals = np.maximum(evals[order], 0.0)
    total = evals.sum()
    ratio = evals / total if total > 0 else np.zeros_like(evals)
    cum = np.cumsum(ratio)
    pr = float(total**2 / (evals**2).sum()) if total > 0 else 0.0
    return PCAResult(
        explained_variance_ratio=ratio.tolist(),
        participation_ratio=pr,
        n_90=int(np.searchsorted(cum, 0.9 - 1e-12) + 1),
        n_95=int(np.searchsorted(cum, 0.95 - 1e-12) + 1),
        mean=mean,
        components=evecs[:, order].T,
    )


def latent_grid(grid_size: int = 8, repeats: int = 1, latent_dim: int = 2) -> np.ndarray:
    """Centres of a grid_size^D grid of cells over [-0.5, 0.5]^D, each repeated ``repeats``
    times: [grid_size^D * repeats, D] (row-major, the last axis varying fastest)."""
    if grid_size < 2 or repeats < 1:
        raise ValueError(f"grid_size must be >= 2 and repeats >= 1, got {grid_size}, {repeats}")
    c = (np.arange(grid_size) + 0.5) / grid_size - 0.5
    mesh = np.stack(np.meshgrid(*([c] * latent_dim), indexing="ij"), axis=-1).reshape(
        -1, latent_dim
    )
    return np.repeat(mesh, repeats, axis=0)


@dataclass
class TuningResult:
    """maps: [H][G]...[G] mean response per grid cell (axis k = latent axis k); corr: [H][D]
    correlation of each unit's map with each latent axis; sparseness over the grid cells."""

    grid_size: int
    maps: np.ndarray = field(repr=False)
    corr: np.ndarray = field(repr=False)
    sparseness: SparsenessResult = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid_size": self.grid_size,
            "corr": self.corr.tolist(),
            "mean_abs_corr": np.nanmean(np.abs(self.corr), axis=0).tolist(),
            "sparseness": self.sparseness.to_dict(),
        }


def tuning_maps(hidden: np.ndarray, latent: np.ndarray, grid_size: int = 8) -> TuningResult:
    """Steady-state tuning maps from states hidden [n, H] recorded on latents [n, D] drawn from
    :func:`latent_grid` (any order; cells are found by binning, every cell needs a trial)."""
    x, y = check_xy(hidden, latent)
    d = y.shape[1]
    cell = np.clip(((y + 0.5) * grid_size).astype(int), 0, grid_size - 1)
    flat = np.ravel_multi_index(tuple(cell.T), (grid_size,) * d)
    n_cells = grid_size**d
    counts = np.bincount(flat, minlength=n_cells)
    if counts.min() == 0:
        raise ValueError(f"every grid cell needs a trial; {int((counts == 0).sum())} are empty")
    sums = np.zeros((n_cells, x.shape[1]))
    np.add.at(sums, flat, x)
    cell_mean = sums / counts[:, None]  # [cells, H]
    centres = latent_grid(grid_size, 1, d)
    xc = cell_mean - cell_mean.mean(axis=0)
    yc = centres - centres.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (xc.T @ yc) / np.outer(np.linalg.norm(xc, axis=0), np.linalg.norm(yc, axis=0))
    maps = cell_mean.T.reshape(x.shape[1], *((grid_size,) * d))
    return TuningResult(grid_size, maps, corr, lifetime_sparseness(cell_mean))
