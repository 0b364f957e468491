"""Linear decoding of the latent from hidden states, in and out of distribution (docs/science.md §5).

The decoders are the linear estimators of :mod:`probes.linear` (a closed-form ridge on
standardised features with its penalty fixed or chosen by cross-validation, the paper's
Adam-trained decoder, and the raw-unit ridge whose weights give the decoder axes); their public
names are re-exported here.

Scores (paper convention, docs/science.md §5): r2 = 1 - MSE_test / Var_prior(x*), with MSE averaged
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
protocol itself (an Adam-trained linear decoder on the raw states, lr 3e-3, batches of 16, 5 fits
per fold), vectorised over fits: by default 1000 batches drawn with replacement from the
recording; ``official_adam_config(n_tasks)`` gives the official per-N batch count
(``official_decoder_batches``) with fresh trials in every batch, for a recording of
``adam_trials_needed(n_tasks)`` trials. ``alpha=None`` chooses the penalty by in-distribution CV.

Decoder-axis angles (``axis_weights``, ``decoder_angles``) come from their own decoder, a ridge on
the raw centred states whose penalty is a small fraction of the states' variance per unit: a
decoder fit on standardised features (or an unpenalised least squares, which is the same fit)
puts large raw-unit weights on near-silent units, whose directions are noise, and then the angle
measures those units rather than the code. Angles are folded to [0, 90] degrees (an axis and its
negative are one axis).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from multitask_evidence.envs import orthant_index
from multitask_evidence.probes.linear import ANGLE_REL as ANGLE_REL
from multitask_evidence.probes.linear import OFFICIAL_DECODER_BATCHES as OFFICIAL_DECODER_BATCHES
from multitask_evidence.probes.linear import REL_ALPHAS as REL_ALPHAS
from multitask_evidence.probes.linear import AdamConfig as AdamConfig
from multitask_evidence.probes.linear import Ridge as Ridge
from multitask_evidence.probes.linear import adam_trials_needed as adam_trials_needed
from multitask_evidence.probes.linear import axis_weights as axis_weights
from multitask_evidence.probes.linear import batch_indices as batch_indices
from multitask_evidence.probes.linear import check_xy as check_xy
from multitask_evidence.probes.linear import fit_adam as fit_adam
from multitask_evidence.probes.linear import fit_ridge as fit_ridge
from multitask_evidence.probes.linear import official_decoder_batches as official_decoder_batches

VAR_UNIFORM = 1.0 / 12.0
"""Variance of U[-0.5, 0.5], the prior variance of each latent axis (docs/science.md §2)."""
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
OLS_ALPHA = 1e-6
"""Near-OLS per-trial penalty (standardised features) for the penalty-robustness check of
``ood_generalisation``: 1e-4 of ``OOD_ALPHA``, so every direction whose per-trial variance in
standardised units is well above 1e-6 (all of a code's signal, and the fine structure a ridge
would shrink) is fit as by least squares, while the tiny floor keeps the solve finite on
rank-deficient states (silent or collinear units: zero eigenvalues of Z^T Z, and rounding-level
ones near 1e-16 n H) without a pseudo-inverse. It is in the range of ``REL_ALPHAS``, the grid
cross-validation already solves on the same eigenbasis."""
MIN_TRIALS = 10
"""Fewest trials allowed on either side of a fold."""
ORTHANT_SPLIT = 4
"""The official code's ``split``: fold k holds out the orthants whose index is k modulo this (see
``split_masks``), a quarter of the orthants whatever D."""


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


def official_adam_config(n_tasks: int, latent: Any = None, split: str = "orthant") -> AdamConfig:
    """The paper's protocol for a network trained on ``n_tasks`` tasks: per-N batches, fresh
    trials. With ``latent`` [n, D] (the recording's) it falls back to batches drawn with
    replacement when some fold of ``split`` has fewer training trials than one fit uses
    (``fresh`` then says False; record ``adam_trials_needed(n_tasks)`` trials to avoid it)."""
    cfg = AdamConfig(n_batches=official_decoder_batches(n_tasks), fresh=True)
    if latent is not None:
        y = np.asarray(latent)
        smallest = min(int((~m).sum()) for _, m in split_masks(y, split))
        if smallest < cfg.n_batches * cfg.batch_size:
            cfg = replace(cfg, fresh=False)
    return cfg


# ---- decoder axes and the angles between them -----------------------------------------------
def fold_angle(deg: Any) -> Any:
    """Angle between two axes (lines) from the angle between two vectors, in degrees:
    min(a, 180 - a), in [0, 90] (an axis and its negative are the same axis)."""
    a = np.asarray(deg, dtype=float)
    out = np.minimum(a, 180.0 - a)
    return float(out) if out.ndim == 0 else out


@dataclass
class AnglesResult:
    """Angles (degrees, folded to [0, 90]) between the decoder's axes; 90 = orthogonal.

    matrix: [D][D] pairwise angles; mean: mean over pairs i < j; pairs: (i, j, angle) for i < j.
    """

    matrix: list[list[float]]
    mean: float
    pairs: list[tuple[int, int, float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decoder_angles(weights: np.ndarray) -> AnglesResult:
    """Folded angles between the columns of a decoder's weight matrix [H, D] (D >= 2), in
    degrees in [0, 90]. The one place decoder angles are computed; give it ``axis_weights``
    (raw-unit ridge weights) to measure the code's axes."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] < 2:
        raise ValueError(f"weights must be [H, D] with D >= 2, got shape {w.shape}")
    norms = np.linalg.norm(w, axis=0)
    if np.any(norms == 0) or not np.isfinite(w).all():
        raise ValueError("weights must be finite with non-zero columns")
    cos = np.clip((w.T @ w) / np.outer(norms, norms), -1.0, 1.0)
    ang = fold_angle(np.degrees(np.arccos(cos)))
    iu = np.triu_indices(w.shape[1], 1)
    pairs = [(int(i), int(j), float(ang[i, j])) for i, j in zip(*iu)]
    return AnglesResult(ang.tolist(), float(ang[iu].mean()), pairs)


def mean_angle(weights: np.ndarray) -> float | None:
    """Mean pairwise folded angle (degrees, [0, 90]) between the columns of weights [H, D];
    None for D = 1 or a zero column."""
    w = np.asarray(weights)
    if w.shape[1] < 2 or np.any(np.linalg.norm(w, axis=0) == 0):
        return None
    return decoder_angles(w).mean


def axis_angles(hidden: Any, latent: Any, *, rel: float = ANGLE_REL) -> AnglesResult:
    """Folded angles between the decoder axes of latent [n, D] in hidden [n, H] (D >= 2):
    ``decoder_angles(axis_weights(hidden, latent, rel=rel))``."""
    return decoder_angles(axis_weights(hidden, latent, rel=rel))


# ---- in-distribution decoding ---------------------------------------------------------------
@dataclass
class DecodingResult:
    """In-distribution linear decoding of x* (fit on one set, scored on fresh trials).

    r2: 1 - MSE / Var_prior (paper); r2_usual: classic R^2 on the test set; r2_per_dim: [D];
    alpha: ridge penalty (absolute); weights: [H][D] the scoring decoder's weights in raw hidden
    units; axis_weights: [H][D] ``axis_weights`` of the training trials (raw-unit ridge, what the
    angle measures); angle_deg: folded angle in [0, 90] degrees between the decoder axes (D = 2),
    or the mean pairwise one (D > 2), from axis_weights; None for D = 1.
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
    axis_weights: list[list[float]] = field(default_factory=list, repr=False)

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

    With hidden_test/latent_test (fresh trials, as the in-distribution control asks) the decoder is fit on
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
    axes = axis_weights(x, y)
    sc = scores(model.predict(xt), yt, var)
    return DecodingResult(
        r2=sc["r2"],
        r2_usual=sc["r2_usual"],
        mse=sc["mse"],
        r2_per_dim=sc["r2_per_dim"],
        alpha=model.alpha,
        n_train=int(x.shape[0]),
        n_test=int(xt.shape[0]),
        angle_deg=mean_angle(axes),
        weights=model.weights.tolist(),
        intercept=model.intercept.tolist(),
        axis_weights=axes.tolist(),
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
    """One held-out region: its name, sizes, and scores per decoder fit.

    angle_deg: folded decoder-axis angles (degrees, [0, 90]; ``axis_weights`` on the fit's
    training trials): one per fit for the ridge (its bootstrap resample when n_fits > 1), one per
    fold for Adam (its weights keep their random init on silent units, so they do not measure
    the code's axes; the fold's training trials do).
    """

    held_out: str
    n_train: int
    n_test: int
    r2: list[float]
    r2_usual: list[float]
    mse: list[float]
    alpha: list[float]
    angle_deg: list[float | None]
    r2_per_dim: list[list[float]] = field(default_factory=list)
    """[fits][D] r^2 of each latent axis separately: 1 - MSE_d / Var_prior_d on the held-out
    trials."""

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
    r2_per_dim_median: [D] per-axis r^2 (1 - MSE_d / Var_prior_d), median over folds x fits;
    angle_deg_median: folded angle (degrees, [0, 90]) between the decoder axes, median over the
    folds' values (FoldResult.angle_deg);
    estimator: which decoder produced the numbers, in words (e.g. "ridge, fixed per-trial
    alpha=0.01" or "adam (lr 0.003, 2000 batches of 16, fresh trials, 5 fits/fold)");
    alpha_rel: the fixed per-trial penalty, None when CV chose it per fold (see folds[].alpha) or
    for Adam; adam_config: the AdamConfig used (as a dict), None for the ridge.
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
    r2_per_dim_median: list[float] = field(default_factory=list)
    """[D] median over folds x fits of each axis's r^2 (FoldResult.r2_per_dim)."""
    estimator: str = ""
    alpha_rel: float | None = None
    adam_config: dict[str, Any] | None = None

    @property
    def r2_values(self) -> list[float]:
        return [v for f in self.folds for v in f.r2]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["folds"] = [f.to_dict() for f in self.folds]
        return d


SPLITS = ("orthant", "one_orthant", "halfspace")
"""Names ``split_masks`` accepts."""


def split_masks(
    latent: np.ndarray, split: str, max_folds: int | None = 16, seed: int = 0
) -> list[tuple[str, np.ndarray]]:
    """Held-out masks [n] bool for each fold of latent [n, D].

    Orthants are numbered as ``envs.orthant_index`` (bit d set = x_{d+1} > 0), the binary
    numbering the official code's high-D splits use.

    'orthant' (default; the official code's ``split`` = ORTHANT_SPLIT = 4, generalize.py): fold k
    = 0..3 holds out the orthants whose index is k modulo 4, i.e. the trials whose (x1, x2) lie in
    quadrant k, every sign of x3..xD included: a quarter of the orthants (2^D / 4 of them) and
    about a quarter of the trials (uniform latents), 4 folds, whatever D. For D = 2 this is leave
    one quadrant out ('q0'..'q3'); for D > 2 the folds are named 'q0(x1,x2)'..'q3(x1,x2)'; for
    D = 1, two folds x1 < 0 / x1 > 0 ('q0', 'q1').
    'one_orthant': leave one of the 2^D orthants out (names 'q<index>'); if 2^D > max_folds a
    seeded random subset of max_folds orthants is used. At large D a held-out orthant is a tiny
    corner (1/64 of the box at D = 6), so this is close to interpolation.
    'halfspace': hold out x_d > 0 and x_d <= 0 for each axis d (2D folds; names 'x1>0', 'x1<0').
    """
    d = latent.shape[1]
    if split == "orthant":
        q = orthant_index(latent)
        n_folds = min(ORTHANT_SPLIT, 2**d)
        tag = "(x1,x2)" if d > 2 else ""
        return [(f"q{k}{tag}", q % ORTHANT_SPLIT == k) for k in range(n_folds)]
    if split == "one_orthant":
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
    raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")


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
    n_tasks: int | None = None,
    ceiling: float | None = None,
    alpha: float | None = OOD_ALPHA,
) -> OODResult:
    """Leave-one-region-out decoding of latent [n, D] from hidden [n, H].

    For each fold of ``split_masks(latent, split)`` (default 'orthant': 4 folds, each holding out
    a quarter of the orthants, the official rule; D = 2: one quadrant) the decoder is fit on the
    trials outside the held-out region and scored inside it. method='ridge' (closed form, 1
    deterministic fit per fold unless n_fits > 1 asks for bootstrap resamples of the training
    set) or 'adam' (the paper: n_fits=5 Adam decoders per fold, ``adam`` their AdamConfig;
    ``n_tasks`` sets its n_batches to ``official_decoder_batches(n_tasks)``; AdamConfig(fresh=True)
    gives each fit fresh trials, which needs n_batches x batch_size training trials per fold:
    ``official_adam_config`` / ``adam_trials_needed``).
    ceiling: optional theory reference stored beside the result (the r^2 of mu, the paper's
    Eq. 7: ``probes.theory.ceiling``).
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
    Raises ValueError when a fold has fewer than MIN_TRIALS trials on either side, when fresh
    Adam batches need more training trials than a fold has, or for a non-positive alpha.
    """
    x, y = check_xy(hidden, latent)
    var = prior_var(var_prior, y.shape[1])
    # per-axis prior variance [D] (a scalar prior broadcasts): each axis's own r^2 scale
    var_d = np.broadcast_to(
        np.asarray(VAR_UNIFORM if var_prior is None else var_prior, dtype=float), (y.shape[1],)
    )
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
    cfg = adam or AdamConfig()
    if n_tasks is not None:
        cfg = replace(cfg, n_batches=official_decoder_batches(n_tasks))
    masks = split_masks(y, split, max_folds, seed)
    for name, m in masks:
        if m.sum() < MIN_TRIALS or (~m).sum() < MIN_TRIALS:
            raise ValueError(
                f"fold {name!r} has {int(m.sum())} held-out and {int((~m).sum())} training trials; "
                f"each side needs >= {MIN_TRIALS} (record more trials, or use split='halfspace')"
            )
        if method == "adam" and cfg.fresh and (~m).sum() < cfg.n_batches * cfg.batch_size:
            raise ValueError(
                f"fold {name!r} has {int((~m).sum())} training trials; fresh Adam batches need "
                f"{cfg.n_batches} x {cfg.batch_size} = {cfg.n_batches * cfg.batch_size} "
                "(record adam_trials_needed(...) trials, or set fresh=False)"
            )
    rng = np.random.default_rng(seed)
    folds = []
    for fi, (name, m) in enumerate(masks):  # a loop over folds (4, 2^D or 2D of them)
        xtr, ytr, xte, yte = x[~m], y[~m], x[m], y[m]
        if method == "adam":
            models = fit_adam(xtr, ytr, n_fits, seed * 7919 + fi, cfg)
            angles = [mean_angle(axis_weights(xtr, ytr))]
        elif n_fits == 1:
            models = [fit_ridge(xtr, ytr, alpha=alpha, rng=rng)]
            angles = [mean_angle(axis_weights(xtr, ytr))]
        else:
            models, angles = [], []
            for _ in range(n_fits):
                boot = rng.integers(0, xtr.shape[0], xtr.shape[0])
                models.append(fit_ridge(xtr[boot], ytr[boot], alpha=alpha, rng=rng))
                angles.append(mean_angle(axis_weights(xtr[boot], ytr[boot])))
        preds = [mod.predict(xte) for mod in models]
        sc = [scores(p, yte, var) for p in preds]
        per_dim = [(1.0 - ((p - yte) ** 2).mean(axis=0) / var_d).tolist() for p in preds]
        folds.append(
            FoldResult(
                held_out=name,
                n_train=int(xtr.shape[0]),
                n_test=int(xte.shape[0]),
                r2=[s["r2"] for s in sc],
                r2_usual=[s["r2_usual"] for s in sc],
                mse=[s["mse"] for s in sc],
                alpha=[mod.alpha for mod in models],
                angle_deg=angles,
                r2_per_dim=per_dim,
            )
        )
    vals = [v for f in folds for v in f.r2]
    q = quantiles(vals)
    all_angles = [a for f in folds for a in f.angle_deg if a is not None]
    if method == "adam":
        draw = "fresh trials" if cfg.fresh else "trials drawn with replacement"
        estimator = (
            f"adam (lr {cfg.lr:g}, {cfg.n_batches} batches of {cfg.batch_size}, {draw}, "
            f"{n_fits} fits/fold)"
        )
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
        angle_deg_median=float(np.median(all_angles)) if all_angles else None,
        ceiling=ceiling,
        r2_per_dim_median=np.median(
            [r for f in folds for r in f.r2_per_dim], axis=0
        ).tolist(),
        estimator=estimator,
        alpha_rel=None if method == "adam" or alpha is None else float(alpha),
        adam_config=asdict(cfg) if method == "adam" else None,
    )
