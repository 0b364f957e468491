"""Linear estimators of the latent from hidden states: the decoders the probes fit.

- ``fit_ridge``: closed-form ridge regression on standardised features with an unpenalised
  intercept; its penalty is fixed (per trial) or chosen by k-fold cross-validation over a grid
  from OLS-like (1e-8) up (the grid is relative to the number of training trials, so it is
  scale-free). All folds share one pass of sufficient statistics (X^T X per fold) and one
  eigendecomposition per fold, so a fit on 10,000 x 64 states takes milliseconds.
- ``fit_adam``: the paper's protocol (an Adam-trained linear decoder on the raw states, lr 3e-3,
  batches of 16; ``AdamConfig``), in numpy and vectorised over fits; ``official_decoder_batches``
  and ``adam_trials_needed`` size it per number of tasks.
- ``axis_weights``: the decoder whose weights measure the code's axes, a ridge on the raw centred
  states whose penalty is a small fraction of the states' variance per unit (a decoder fit on
  standardised features, or an unpenalised least squares, puts large raw-unit weights on
  near-silent units, whose directions are noise).

Every estimator returns (or is) a :class:`Ridge`, which predicts y = ((x - mean) / scale) @ coef
+ intercept. Decoding scores, out-of-distribution splits and angles live in
:mod:`probes.decoding`; DCI (:mod:`probes.dci`) and the geometry probes use these estimators too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

REL_ALPHAS = np.logspace(-8, 2, 21)
"""Ridge penalties tried by cross-validation, in units of the number of training trials."""
ANGLE_REL = 1e-3
"""Penalty of the decoder-axis ridge (``axis_weights``), as a fraction of the states' mean
variance per unit: a unit (or direction) whose variance is well under this fraction of the
average unit's gets its weight shrunk towards zero, one well above it is fit as by least squares."""
OFFICIAL_DECODER_BATCHES = {2: 3000, 3: 3000, 6: 2000, 12: 1000, 24: 1000}
"""Adam decoder batches per number of tasks N in the paper's protocol (docs/science.md §6)."""


# ---- input checks ---------------------------------------------------------------------------
def check_xy(hidden: Any, latent: Any, *, name: str = "hidden") -> tuple[np.ndarray, np.ndarray]:
    """Validate hidden [n, H] and latent [n, D]: 2-D, same n, finite. Returns float64 copies."""
    x = np.asarray(hidden, dtype=np.float64)
    y = np.asarray(latent, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n, H], got shape {x.shape}")
    if y.ndim != 2:
        raise ValueError(f"latent must be a 2-D array [n, D], got shape {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{name} and latent must have the same number of trials, got {x.shape[0]} and {y.shape[0]}"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    if not np.isfinite(y).all():
        raise ValueError("latent contains NaN or inf")
    return x, y


# ---- closed-form ridge ----------------------------------------------------------------------
@dataclass
class Ridge:
    """A fitted linear decoder y = ((x - mean) / scale) @ coef + intercept.

    mean, scale: [H] feature standardisation; coef: [H, D] in standardised units;
    intercept: [D]; alpha: the penalty used (absolute, standardised units).
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    alpha: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions [n, D] for states x [n, H]."""
        return (
            (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        ) @ self.coef + self.intercept

    @property
    def weights(self) -> np.ndarray:
        """Decoder weights [H, D] in the raw units of the hidden state (what angles use)."""
        return self.coef / self.scale[:, None]


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12 * max(1.0, float(np.abs(mean).max(initial=0.0))), scale, 1.0)
    return (x - mean) / scale, mean, scale


def _solve(gc: np.ndarray, pc: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """coef [A, H, D] = (Gc + a I)^-1 Pc for every penalty a, from one eigendecomposition."""
    e, v = np.linalg.eigh(gc)
    e = np.maximum(e, 0.0)
    vtp = v.T @ pc  # [H, D]
    return np.matmul(v, vtp[None] / (e[None, :, None] + alphas[:, None, None]))


def fit_ridge(
    x: np.ndarray,
    y: np.ndarray,
    *,
    alpha: float | None = None,
    rel_alphas: np.ndarray = REL_ALPHAS,
    cv: int = 5,
    rng: np.random.Generator | int | None = 0,
) -> Ridge:
    """Closed-form ridge of y [n, D] on x [n, H] (standardised features, free intercept).

    alpha: a fixed per-trial penalty (objective: mean squared error over trials + alpha |w|^2 per
    output, w in standardised units; ``Ridge.alpha`` holds alpha * n); None chooses it by
    ``cv``-fold cross-validation over ``rel_alphas`` (MSE averaged over the D outputs).
    """
    z, mean, scale = _standardise(x)
    n = z.shape[0]
    if alpha is None:
        if cv < 2 or n < 2 * cv:
            raise ValueError(f"cross-validation needs cv >= 2 and n >= 2 * cv, got cv={cv}, n={n}")
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        fold_of = np.empty(n, dtype=np.int64)
        fold_of[rng.permutation(n)] = np.arange(n) % cv
        q_tot, p_tot = z.T @ z, z.T @ y
        s_tot, y_tot = z.sum(0), y.sum(0)
        err = np.zeros(len(rel_alphas))
        for k in range(cv):  # a loop over folds; each is one small eigenproblem
            zk, yk = z[fold_of == k], y[fold_of == k]
            nt = n - zk.shape[0]
            mz = (s_tot - zk.sum(0)) / nt
            my = (y_tot - yk.sum(0)) / nt
            gc = q_tot - zk.T @ zk - nt * np.outer(mz, mz)
            pc = p_tot - zk.T @ yk - nt * np.outer(mz, my)
            coefs = _solve(gc, pc, np.asarray(rel_alphas) * nt)
            pred = np.matmul(zk - mz, coefs) + my  # [A, n_k, D]
            err += ((pred - yk) ** 2).sum(axis=(1, 2))
        alpha = float(rel_alphas[int(np.argmin(err))])
    my = y.mean(0)
    coef = _solve(z.T @ z, z.T @ (y - my), np.array([alpha * n]))[0]
    return Ridge(mean, scale, coef, my, alpha * n)


# ---- the paper's Adam-trained decoder -------------------------------------------------------
@dataclass
class AdamConfig:
    """The paper's decoder protocol: a linear layer trained by Adam on MSE.

    The official code (generalize.py) trains ``nn.Linear(H, D)`` on the raw hidden states (no
    centring or scaling) with ``Adam(lr=0.003)``, batches of 16 fresh trials from the task, a
    number of batches set per N (``official_decoder_batches``).
    """

    lr: float = 3e-3
    batch_size: int = 16
    n_batches: int = 1000
    center: bool = False
    """Subtract the training mean of each unit first (decouples weights from the intercept)."""
    standardize: bool = False
    """Standardise features with the training mean/SD first (a reparametrisation of the same
    linear decoder that makes Adam's fixed step size suit any unit scale)."""
    fresh: bool = False
    """Each fit draws its n_batches x batch_size trials without replacement from the training
    set (every batch is new to that fit, as the official code's stream of new trials is), so the
    training set needs at least that many trials; False: batches sampled with replacement. The
    fits of a fold draw from one pool, so they share some trials, where the official stream
    gives every fit its own."""


def official_decoder_batches(n_tasks: int) -> int:
    """Adam decoder batches of the paper's protocol for a network trained on ``n_tasks`` tasks.

    N = 2, 3, 6, 12, 24 -> 3000, 3000, 2000, 1000, 1000 (``OFFICIAL_DECODER_BATCHES``). Another
    N takes the count of the tabulated N nearest on a log scale (the paper's N grid is
    log-spaced and the count falls with N: fewer tasks, a less settled code, a longer decoder
    fit), so N = 1 -> 3000, 4 -> 3000, 5 -> 2000, 8 -> 2000, 48 -> 1000.
    """
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, (int, np.integer)) or n_tasks < 1:
        raise ValueError(f"n_tasks must be a positive integer, got {n_tasks!r}")
    table = np.array(sorted(OFFICIAL_DECODER_BATCHES))
    nearest = int(table[np.argmin(np.abs(np.log(table) - np.log(float(n_tasks))))])
    return OFFICIAL_DECODER_BATCHES[nearest]


def adam_trials_needed(
    n_tasks: int | None = None,
    *,
    config: AdamConfig | None = None,
    held_out_fraction: float = 0.25,
    margin: float = 0.05,
) -> int:
    """Trials a recording needs for the fresh-trial Adam protocol on every fold.

    Each fit needs n_batches x batch_size training trials (batches from
    ``official_decoder_batches(n_tasks)`` when n_tasks is given, else from ``config``); a fold
    trains on the 1 - held_out_fraction of trials outside its held-out region (1/4 held out by
    the 'orthant' split for uniform latents), and ``margin`` covers the sampling spread of the
    regions' sizes (a fold's share moves by well under 1% at these sizes). E.g. N = 2: 3000 x 16 =
    48,000 training trials -> 67,200 recorded; N = 24: 22,400.
    """
    cfg = config or AdamConfig()
    if n_tasks is not None:
        cfg = replace(cfg, n_batches=official_decoder_batches(n_tasks))
    if not 0.0 <= held_out_fraction < 1.0 or margin < 0:
        raise ValueError(
            f"need 0 <= held_out_fraction < 1 and margin >= 0, got {held_out_fraction}, {margin}"
        )
    per_fit = cfg.n_batches * cfg.batch_size
    return int(np.ceil(per_fit / (1.0 - held_out_fraction) * (1.0 + margin)))


def batch_indices(n: int, n_fits: int, config: AdamConfig, rng: np.random.Generator) -> np.ndarray:
    """Training-trial indices [n_batches, n_fits, batch_size] of every Adam step of every fit.

    config.fresh: each fit's indices are the first n_batches x batch_size of its own random
    permutation of range(n) (no trial twice within a fit; fits draw independently); otherwise
    uniform draws with replacement. Raises ValueError when fresh and n is too small.
    """
    k, b = config.n_batches, config.batch_size
    if not config.fresh:
        return rng.integers(0, n, (k, n_fits, b))
    if n < k * b:
        raise ValueError(
            f"fresh Adam batches need {k} x {b} = {k * b} training trials per fit, got {n} "
            "(record more trials: see adam_trials_needed, or set fresh=False)"
        )
    perms = rng.permuted(np.broadcast_to(np.arange(n), (n_fits, n)), axis=1)[:, : k * b]
    return np.ascontiguousarray(perms.reshape(n_fits, k, b).transpose(1, 0, 2))


def fit_adam(
    x: np.ndarray, y: np.ndarray, n_fits: int, seed: int, config: AdamConfig | None = None
) -> list[Ridge]:
    """Train ``n_fits`` linear decoders y [n, D] <- x [n, H] by Adam, vectorised over fits.

    Each fit has its own torch.nn.Linear-style init and its own batches (``batch_indices``: with
    replacement, or fresh trials when config.fresh); the optimiser is Adam exactly as torch
    implements it (a test checks the two agree), in numpy. Returns them as :class:`Ridge`
    objects (alpha = 0) so they predict the same way.
    """
    cfg = config or AdamConfig()
    if cfg.standardize:
        z, mean, scale = _standardise(x)
    elif cfg.center:
        mean, scale = x.mean(axis=0), np.ones(x.shape[1])
        z = x - mean
    else:
        z, mean, scale = x, np.zeros(x.shape[1]), np.ones(x.shape[1])
    n, h = z.shape
    d = y.shape[1]
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(h)  # torch.nn.Linear's default init
    w = rng.uniform(-bound, bound, (n_fits, h, d))
    b = rng.uniform(-bound, bound, (n_fits, 1, d))
    idx = batch_indices(n, n_fits, cfg, rng)
    # Adam (torch's defaults: betas 0.9 / 0.999, eps 1e-8) with the exact gradient of each fit's
    # mean squared error over its batch [B, D]; numpy, vectorised over fits.
    b1, b2, eps = 0.9, 0.999, 1e-8
    mw, vw, mb, vb = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    scale_g = 2.0 / (cfg.batch_size * d)
    for k in range(cfg.n_batches):  # a loop over optimisation steps, vectorised over fits
        xb, yb = z[idx[k]], y[idx[k]]  # [F, B, H], [F, B, D]
        g = scale_g * (np.matmul(xb, w) + b - yb)  # dLoss / dpred
        gw = np.matmul(xb.transpose(0, 2, 1), g)
        gb = g.sum(axis=1, keepdims=True)
        c1, c2 = 1.0 - b1 ** (k + 1), np.sqrt(1.0 - b2 ** (k + 1))
        for p_, m_, v_, g_ in ((w, mw, vw, gw), (b, mb, vb, gb)):
            m_ *= b1
            m_ += (1 - b1) * g_
            v_ *= b2
            v_ += (1 - b2) * g_ * g_
            p_ -= (cfg.lr / c1) * m_ / (np.sqrt(v_) / c2 + eps)
    return [Ridge(mean, scale, w[f], b[f, 0], 0.0) for f in range(n_fits)]


# ---- decoder axes -----------------------------------------------------------------------
def axis_weights(hidden: Any, latent: Any, *, rel: float = ANGLE_REL) -> np.ndarray:
    """Decoder weights [H, D] in raw hidden units, built to measure the decoder's axes.

    A ridge regression of latent [n, D] on the raw, centred states hidden [n, H]: w = (C +
    lam I)^-1 Cov(h, x*), C the states' covariance [H, H] (per trial), lam = rel * trace(C) / H
    (``rel`` of the mean variance per unit). Why this and not the r2 decoders' weights: a
    standardised ridge, and equally an unpenalised (min-norm) least squares on raw states, give
    a near-silent unit (SD 1e-4 against ~0.1) a raw weight of its noise's chance correlation
    divided by its tiny SD, which can outweigh the code's own axes; here such a unit's weight
    is shrunk by var / (var + lam) ~ 0, while directions with the variance of the code (>> lam)
    are fit as least squares fits them. Constant units get weight 0.
    """
    x, y = check_xy(hidden, latent)
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    n, h = x.shape
    cov = xc.T @ xc / n
    lam = rel * np.trace(cov) / h
    if not lam > 0:
        return np.zeros((h, y.shape[1]))
    return np.linalg.solve(cov + lam * np.eye(h), xc.T @ yc / n)
