"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams, ICLR 2018).

Importances R [H, D] are the absolute weights of a ridge regression of each latent factor on the
*standardised raw units* (CV-chosen penalty, :func:`probes.linear.fit_ridge`).

* disentanglement: sum_i rho_i (1 - H_D(P_i.)), P_ij = R_ij / sum_j R_ij, rho_i = unit i's share of
  the total importance, entropy in base D: 1 when every unit serves one factor;
* completeness: mean_j (1 - H_H(P~_.j)), P~_ij = R_ij / sum_i R_ij: 1 when one unit holds a factor;
* informativeness: the held-out r2 of the same regression (1 - MSE / Var_prior) and its MSE.

Caveat: DCI rewards *axis-aligned* codes -- one unit per factor. The paper does not claim that a
disentangled agent aligns factors with units: a random rotation of a perfect linear code scores
low disentanglement and completeness here while generalising perfectly out of distribution. The
rotation-invariant measures of the paper's claim are the OOD decoding
(:func:`probes.decoding.ood_generalisation`), CCGP and parallelism (:mod:`probes.geometry`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from multitask_evidence.probes.decoding import prior_var, scores
from multitask_evidence.probes.linear import check_xy, fit_ridge


@dataclass
class DCIResult:
    """DCI scores in [0, 1] (informativeness_r2 may be negative); importance: [H][D]."""

    disentanglement: float
    completeness: float
    informativeness_r2: float
    informativeness_mse: float
    completeness_per_factor: list[float]
    importance: list[list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _entropy(p: np.ndarray, base: int, axis: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=axis) / np.log(base)


def dci(
    hidden: np.ndarray,
    latent: np.ndarray,
    *,
    var_prior: Any = None,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> DCIResult:
    """DCI of hidden [n, H] states for latent [n, D] factors (see the module docstring)."""
    x, y = check_xy(hidden, latent)
    var = prior_var(var_prior, y.shape[1])
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(x.shape[0])
    n_test = max(1, int(round(test_fraction * x.shape[0])))
    te, tr = perm[:n_test], perm[n_test:]
    model = fit_ridge(x[tr], y[tr], rng=rng)
    r = np.abs(model.coef)  # [H, D], standardised units
    h, d = r.shape
    total = r.sum()
    if total == 0:
        dis = comp = 0.0
        comp_j = [0.0] * d
    else:
        row = r.sum(axis=1)
        p_unit = np.divide(r, row[:, None], out=np.zeros_like(r), where=row[:, None] > 0)
        d_i = 1.0 - _entropy(p_unit, d, axis=1) if d > 1 else np.ones(h)
        dis = float(((row / total) * d_i).sum())
        col = r.sum(axis=0)
        p_fac = np.divide(r, col[None, :], out=np.zeros_like(r), where=col[None, :] > 0)
        comp_j = (1.0 - _entropy(p_fac, h, axis=0)) if h > 1 else np.ones(d)
        comp = float(np.mean(comp_j))
        comp_j = [float(c) for c in comp_j]
    sc = scores(model.predict(x[te]), y[te], var)
    return DCIResult(
        disentanglement=dis,
        completeness=comp,
        informativeness_r2=sc["r2"],
        informativeness_mse=sc["mse"],
        completeness_per_factor=comp_j,
        importance=r.tolist(),
    )
