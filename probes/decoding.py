"""Linear decoding of the latent from hidden states, in and out of distribution (SPEC section 5).

The workhorse is a closed-form ridge regression on standardised features with an unpenalised
intercept; its penalty is chosen by k-fold cross-validation over a grid from OLS-like (1e-8) up
(the grid is relative to the number of training trials, so it is scale-free). All folds share one
pass of sufficient statistics (X^T X per fold) and one eigendecomposition per fold, so a fit on
10,000 x 64 states takes milliseconds.

Scores (paper convention, SPEC section 5): r2 = 1 - MSE_test / Var_prior(x*), with MSE averaged
over trials and latent axes and Var_prior the prior variance averaged over axes (1/12 for
U[-0.5, 0.5]); beside it the usual coefficient of determination r2_usual = mean_d (1 - SSE_d /
SST_d) computed with the *test set's* own variance (which, in a held-out quadrant, is a quarter of
the prior's, so r2_usual is much lower than r2 there).

On the ridge penalty and OOD extrapolation: the OOD r2 of an imperfect code (a trained network's)
depends on the decoder's regularisation, and in-distribution CV does not see it: with more trials CV
picks a smaller penalty and the OOD score of the same network moves (on the trained default-preset
RNN, N = 24: 0.89 at 2048 trials, 0.82-0.84 at 4096-20,000). ``ood_generalisation`` therefore uses a
fixed per-trial penalty by default (``OOD_ALPHA``: objective mean squared error + alpha |w|^2 on
standardised features, intercept free), the closed-form counterpart of the paper's protocol, whose
fixed optimisation budget (1000 batches of 16 whatever n is) is a fixed implicit regularisation.
The estimator then converges to a population value as n grows, stays scale-free, and is exact on
linear codes (their signal eigenvalues dwarf the penalty). ``method='adam'`` reproduces the paper's
protocol itself (an Adam-trained linear decoder on the raw states, lr 3e-3, batches of 16, 1000
batches, 5 fits), vectorised over fits; ``alpha=None`` chooses the penalty by in-distribution CV.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from envs import orthant_index

VAR_UNIFORM = 1.0 / 12.0
"""Variance of U[-0.5, 0.5], the prior variance of each latent axis (SPEC section 2)."""
REL_ALPHAS = np.logspace(-8, 2, 21)
"""Ridge penalties tried by cross-validation, in units of the number of training trials."""
OOD_ALPHA = 1e-2
"""Default per-trial ridge penalty of ``ood_generalisation`` (standardised features): objective
mean squared error + OOD_ALPHA |w|^2. Calibrated against the paper's Adam protocol (20 fits per
fold) on RNN/GRU-64 networks of the paper task (torch's default init) at 2048-20,000 trials
(benchmarks/results/probe_ood_estimators.md): within 0.003 on the trained default-preset fixture
and within 0.02 on a 400-step one at every size; over six such networks the mean difference is
-0.008 and the largest 0.07, the protocol's own spread (its 5-fit median moves by sd 0.01-0.06
between seeds, and by up to 0.13 when the states are scaled by 3, which no scale-free estimator
can follow). On identity-initialised RNNs (states ~10x larger) the protocol does not converge
(OOD r2 < 0); on their states scaled by 0.1 it gives 0.81-0.83, the fixed ridge 0.82."""
MIN_TRIALS = 10
"""Fewest trials allowed on either side of a fold."""


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


def prior_var(var_prior: Any, latent_dim: int) -> float:
    """Average prior variance over axes from a scalar or a per-axis [D] array."""
    v = np.atleast_1d(np.asarray(VAR_UNIFORM if var_prior is None else var_prior, dtype=float))
    if v.ndim != 1 or v.size not in (1, latent_dim) or not np.all(v > 0):
        raise ValueError(
            f"var_prior must be a positive scalar or a [D={latent_dim}] array, got {var_prior!r}"
        )
    return float(v.mean())


def quantiles(values: Any) -> dict[str, float]:
    """Median, 25th and 75th percentiles and IQR of a list of scores."""
    v = np.asarray(values, dtype=float)
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75), "iqr": float(q75 - q25)}


def scores(pred: np.ndarray, target: np.ndarray, var: float) -> dict[str, Any]:
    """r2 (prior-normalised), r2_usual (test-variance normalised), mse and r2 per axis."""
    err = (pred - target) ** 2
    mse_d = err.mean(axis=0)
    sst_d = target.var(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        usual_d = np.where(sst_d > 0, 1.0 - mse_d / sst_d, np.nan)
    return {
        "r2": float(1.0 - mse_d.mean() / var),
        "r2_usual": float(np.nanmean(usual_d)) if np.isfinite(usual_d).any() else float("nan"),
        "mse": float(mse_d.mean()),
        "r2_per_dim": (1.0 - mse_d / var).tolist(),
    }


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
    """The paper's decoder protocol: a linear layer trained by Adam on MSE."""

    lr: float = 3e-3
    batch_size: int = 16
    n_batches: int = 1000
    center: bool = False
    """Subtract the training mean of each unit first (decouples weights from the intercept)."""
    standardize: bool = False
    """Standardise features with the training mean/SD first (a reparametrisation of the same
    linear decoder that makes Adam's fixed step size suit any unit scale)."""


def fit_adam(
    x: np.ndarray, y: np.ndarray, n_fits: int, seed: int, config: AdamConfig | None = None
) -> list[Ridge]:
    """Train ``n_fits`` linear decoders y [n, D] <- x [n, H] by Adam, vectorised over fits.

    Each fit has its own torch.nn.Linear-style init and its own batch draws (with replacement);
    the optimiser is Adam exactly as torch implements it (a test checks the two agree), in numpy.
    Returns them as :class:`Ridge` objects (alpha = 0) so they predict the same way.
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
    idx = rng.integers(0, n, (cfg.n_batches, n_fits, cfg.batch_size))
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


# ---- in-distribution decoding ---------------------------------------------------------------
@dataclass
class DecodingResult:
    """In-distribution linear decoding of x* (fit on one set, scored on fresh trials).

    r2: 1 - MSE / Var_prior (paper); r2_usual: classic R^2 on the test set; r2_per_dim: [D];
    alpha: ridge penalty (absolute); weights: [H][D] decoder weights in raw hidden units;
    angle_deg: angle between the decoder axes (D = 2), or the mean pairwise angle (D > 2).
    """

    r2: float
    r2_usual: float
    mse: float
    r2_per_dim: list[float]
    alpha: float
    n_train: int
    n_test: int
    angle_deg: float | None
    weights: list[list[float]] = field(repr=False)
    intercept: list[float] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decode(
    hidden: np.ndarray,
    latent: np.ndarray,
    hidden_test: np.ndarray | None = None,
    latent_test: np.ndarray | None = None,
    *,
    var_prior: Any = None,
    test_fraction: float = 0.25,
    seed: int = 0,
    cv: int = 5,
) -> DecodingResult:
    """In-distribution decoding of latent [n, D] from hidden [n, H].

    With hidden_test/latent_test (fresh trials, as the SPEC's control asks) the decoder is fit on
    all of (hidden, latent) and scored there; otherwise a random ``test_fraction`` is held out.
    """
    x, y = check_xy(hidden, latent)
    var = prior_var(var_prior, y.shape[1])
    rng = np.random.default_rng(seed)
    if (hidden_test is None) != (latent_test is None):
        raise ValueError("give both hidden_test and latent_test, or neither")
    if hidden_test is None:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
        perm = rng.permutation(x.shape[0])
        n_test = int(round(test_fraction * x.shape[0]))
        xt, yt, x, y = x[perm[:n_test]], y[perm[:n_test]], x[perm[n_test:]], y[perm[n_test:]]
    else:
        xt, yt = check_xy(hidden_test, latent_test, name="hidden_test")
        if xt.shape[1] != x.shape[1] or yt.shape[1] != y.shape[1]:
            raise ValueError(
                f"test arrays must match the training widths H={x.shape[1]}, D={y.shape[1]}, "
                f"got {xt.shape[1]}, {yt.shape[1]}"
            )
    if min(x.shape[0], xt.shape[0]) < MIN_TRIALS:
        raise ValueError(
            f"too few trials to decode: {x.shape[0]} train / {xt.shape[0]} test (need >= {MIN_TRIALS})"
        )
    model = fit_ridge(x, y, cv=cv, rng=rng)
    sc = scores(model.predict(xt), yt, var)
    return DecodingResult(
        r2=sc["r2"],
        r2_usual=sc["r2_usual"],
        mse=sc["mse"],
        r2_per_dim=sc["r2_per_dim"],
        alpha=model.alpha,
        n_train=int(x.shape[0]),
        n_test=int(xt.shape[0]),
        angle_deg=mean_angle(model.weights),
        weights=model.weights.tolist(),
        intercept=model.intercept.tolist(),
    )


@dataclass
class TimeDecodingResult:
    """In-distribution r2 at each chosen step index (``steps``) of the trial."""

    steps: list[int]
    r2: list[float]
    r2_usual: list[float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decode_over_time(
    hidden: np.ndarray,
    latent: np.ndarray,
    steps: Any = None,
    *,
    var_prior: Any = None,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> TimeDecodingResult:
    """Decode latent [n, D] from hidden [n, T, H] separately at each step index in ``steps``
    (default every step), with the same train/test split at every step."""
    h = np.asarray(hidden)
    if h.ndim != 3:
        raise ValueError(f"hidden must be [n, T, H], got shape {h.shape}")
    idx = list(range(h.shape[1])) if steps is None else [int(s) for s in steps]
    bad = [s for s in idx if not -h.shape[1] <= s < h.shape[1]]
    if bad:
        raise ValueError(f"steps must be indices in [0, {h.shape[1]}), got {bad}")
    r2, usual = [], []
    for s in idx:  # a loop over steps; each is one closed-form fit
        res = decode(h[:, s], latent, var_prior=var_prior, test_fraction=test_fraction, seed=seed)
        r2.append(res.r2)
        usual.append(res.r2_usual)
    return TimeDecodingResult(idx, r2, usual)


# ---- out-of-distribution decoding -----------------------------------------------------------
@dataclass
class FoldResult:
    """One held-out region: its name, sizes, and scores per decoder fit."""

    held_out: str
    n_train: int
    n_test: int
    r2: list[float]
    r2_usual: list[float]
    mse: list[float]
    alpha: list[float]
    angle_deg: list[float | None]

    @property
    def r2_median(self) -> float:
        return float(np.median(self.r2))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"r2_median": self.r2_median}


@dataclass
class OODResult:
    """Out-of-distribution generalisation of a linear decoder (the paper's main metric).

    r2_median / r2_q25 / r2_q75 / r2_iqr: over folds x fits (prior-normalised r2);
    r2_usual_median: the classic R^2 (test-set variance) over the same values;
    angle_deg_median: angle between the decoder axes over folds x fits;
    estimator: which decoder produced the numbers, in words (e.g. "ridge, fixed per-trial
    alpha=0.01" or "adam (paper protocol, 5 fits/fold)"); alpha_rel: the fixed per-trial penalty,
    None when CV chose it per fold (see folds[].alpha) or for Adam.
    """

    split: str
    method: str
    var_prior: float
    folds: list[FoldResult]
    r2_median: float
    r2_q25: float
    r2_q75: float
    r2_iqr: float
    r2_min: float
    r2_usual_median: float
    angle_deg_median: float | None
    ceiling: float | None = None
    estimator: str = ""
    alpha_rel: float | None = None

    @property
    def r2_values(self) -> list[float]:
        return [v for f in self.folds for v in f.r2]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["folds"] = [f.to_dict() for f in self.folds]
        return d


def split_masks(
    latent: np.ndarray, split: str, max_folds: int | None = 16, seed: int = 0
) -> list[tuple[str, np.ndarray]]:
    """Held-out masks [n] bool for each fold.

    'orthant': leave one of the 2^D orthants out (bit d set = x_d > 0, as ``envs.orthant_index``;
    names like 'q3'); if 2^D > max_folds a seeded random subset of max_folds orthants is used.
    'halfspace': hold out x_d > 0 and x_d < 0 for each axis d (2D folds; names 'x1>0', 'x1<0').
    """
    d = latent.shape[1]
    if split == "orthant":
        q = orthant_index(latent)
        ids = np.arange(2**d)
        if max_folds is not None and ids.size > max_folds:
            ids = np.sort(np.random.default_rng(seed).choice(ids, size=max_folds, replace=False))
        return [(f"q{int(o)}", q == o) for o in ids]
    if split == "halfspace":
        out = []
        for k in range(d):
            out.append((f"x{k + 1}>0", latent[:, k] > 0))
            out.append((f"x{k + 1}<0", latent[:, k] <= 0))
        return out
    raise ValueError(f"split must be 'orthant' or 'halfspace', got {split!r}")


def ood_generalisation(
    hidden: np.ndarray,
    latent: np.ndarray,
    *,
    split: str = "orthant",
    method: str = "ridge",
    var_prior: Any = None,
    n_fits: int | None = None,
    seed: int = 0,
    max_folds: int | None = 16,
    adam: AdamConfig | None = None,
    ceiling: float | None = None,
    alpha: float | None = OOD_ALPHA,
) -> OODResult:
    """Leave-one-region-out decoding of latent [n, D] from hidden [n, H].

    For each fold the decoder is fit on the trials outside the held-out region and scored inside
    it. method='ridge' (closed form, 1 deterministic fit per fold unless n_fits > 1 asks for
    bootstrap resamples of the training set) or 'adam' (the paper: n_fits=5 Adam decoders).
    ceiling: optional theory ceiling stored beside the result (see ``probes.theory.ceiling``).
    alpha: the ridge's per-trial penalty on standardised features (default ``OOD_ALPHA``; the
    objective is mean squared error + alpha |w|^2, so it does not fade as n grows); None chooses
    it per fold by in-distribution 5-fold CV (the estimator of ``decode``).

    Caveat: the OOD r2 of an imperfect code depends on the decoder's regularisation, which
    in-distribution CV does not see and which shrinks as CV gets more trials. On the trained
    default-preset RNN (N = 24) alpha=None gives 0.89 / 0.84 / 0.82 / 0.84 at 2048 / 4096 /
    10,000 / 20,000 trials against the Adam protocol's 0.87 / 0.87 / 0.86 / 0.86; the fixed
    default gives 0.868 / 0.869 / 0.857 / 0.857 (within 0.003). The Adam protocol is itself not
    scale-free (scaling the states by 3 moves it by up to -0.13 on the networks measured) and
    its 5-fit median moves by sd 0.01-0.03 between seeds, so on other networks the two agree to
    about that precision (mean -0.008, worst 0.07 over six networks). On linear codes every
    choice agrees to 0.001.
    Raises ValueError when a fold has fewer than MIN_TRIALS trials on either side, or for a
    non-positive alpha.
    """
    x, y = check_xy(hidden, latent)
    var = prior_var(var_prior, y.shape[1])
    if method not in ("ridge", "adam"):
        raise ValueError(f"method must be 'ridge' or 'adam', got {method!r}")
    if alpha is not None and not (
        isinstance(alpha, (float, int, np.floating, np.integer))
        and not isinstance(alpha, bool)
        and np.isfinite(alpha)
        and alpha > 0
    ):
        raise ValueError(f"alpha must be a positive finite float or None (CV), got {alpha!r}")
    if n_fits is None:
        n_fits = 5 if method == "adam" else 1
    if isinstance(n_fits, bool) or not isinstance(n_fits, (int, np.integer)) or n_fits < 1:
        raise ValueError(f"n_fits must be a positive integer, got {n_fits!r}")
    masks = split_masks(y, split, max_folds, seed)
    for name, m in masks:
        if m.sum() < MIN_TRIALS or (~m).sum() < MIN_TRIALS:
            raise ValueError(
                f"fold {name!r} has {int(m.sum())} held-out and {int((~m).sum())} training trials; "
                f"each side needs >= {MIN_TRIALS} (record more trials, or use split='halfspace')"
            )
    rng = np.random.default_rng(seed)
    folds = []
    for fi, (name, m) in enumerate(masks):  # a loop over folds (2^D or 2D of them)
        xtr, ytr, xte, yte = x[~m], y[~m], x[m], y[m]
        if method == "adam":
            models = fit_adam(xtr, ytr, n_fits, seed * 7919 + fi, adam)
        elif n_fits == 1:
            models = [fit_ridge(xtr, ytr, alpha=alpha, rng=rng)]
        else:
            models = []
            for _ in range(n_fits):
                boot = rng.integers(0, xtr.shape[0], xtr.shape[0])
                models.append(fit_ridge(xtr[boot], ytr[boot], alpha=alpha, rng=rng))
        sc = [scores(mod.predict(xte), yte, var) for mod in models]
        folds.append(
            FoldResult(
                held_out=name,
                n_train=int(xtr.shape[0]),
                n_test=int(xte.shape[0]),
                r2=[s["r2"] for s in sc],
                r2_usual=[s["r2_usual"] for s in sc],
                mse=[s["mse"] for s in sc],
                alpha=[mod.alpha for mod in models],
                angle_deg=[mean_angle(mod.weights) for mod in models],
            )
        )
    vals = [v for f in folds for v in f.r2]
    q = quantiles(vals)
    angles = [a for f in folds for a in f.angle_deg if a is not None]
    if method == "adam":
        estimator = f"adam (paper protocol, {n_fits} fits/fold)"
    elif alpha is None:
        estimator = "ridge, alpha by in-distribution 5-fold CV"
    else:
        estimator = f"ridge, fixed per-trial alpha={float(alpha):g}"
    if method == "ridge" and n_fits > 1:
        estimator += f", {n_fits} bootstrap fits/fold"
    return OODResult(
        split=split,
        method=method,
        var_prior=var,
        folds=folds,
        r2_median=q["median"],
        r2_q25=q["q25"],
        r2_q75=q["q75"],
        r2_iqr=q["iqr"],
        r2_min=float(np.min(vals)),
        r2_usual_median=float(np.median([v for f in folds for v in f.r2_usual])),
        angle_deg_median=float(np.median(angles)) if angles else None,
        ceiling=ceiling,
        estimator=estimator,
        alpha_rel=None if method == "adam" or alpha is None else float(alpha),
    )


# ---- angles between decoder axes ------------------------------------------------------------
@dataclass
class AnglesResult:
    """Angles (degrees) between the decoder's weight vectors; 90 = orthogonal axes.

    matrix: [D][D] pairwise angles; mean: mean over pairs; pairs: (i, j, angle) for i < j.
    """

    matrix: list[list[float]]
    mean: float
    pairs: list[tuple[int, int, float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decoder_angles(weights: np.ndarray) -> AnglesResult:
    """Angles between the columns of a decoder's weight matrix [H, D] (D >= 2), in degrees."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] < 2:
        raise ValueError(f"weights must be [H, D] with D >= 2, got shape {w.shape}")
    norms = np.linalg.norm(w, axis=0)
    if np.any(norms == 0) or not np.isfinite(w).all():
        raise ValueError("weights must be finite with non-zero columns")
    cos = np.clip((w.T @ w) / np.outer(norms, norms), -1.0, 1.0)
    ang = np.degrees(np.arccos(cos))
    iu = np.triu_indices(w.shape[1], 1)
    pairs = [(int(i), int(j), float(ang[i, j])) for i, j in zip(*iu)]
    return AnglesResult(ang.tolist(), float(ang[iu].mean()), pairs)


def mean_angle(weights: np.ndarray) -> float | None:
    """Mean pairwise angle (degrees) between decoder axes, None for D = 1 or a zero column."""
    w = np.asarray(weights)
    if w.shape[1] < 2 or np.any(np.linalg.norm(w, axis=0) == 0):
        return None
    return decoder_angles(w).mean
