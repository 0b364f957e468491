"""Abstraction geometry of the quadrant conditions (Bernardi et al., Cell 2020).

Conditions are the 2^D orthants of latent space (``envs.orthant_index``: bit d set = x_d > 0; for
D = 2 the four quadrants). A *balanced dichotomy* splits the conditions into two halves; for D = 2
there are three: x1 > 0 vs x1 < 0, x2 > 0 vs x2 < 0, and the XOR split. The D *factor*
dichotomies (the sign of one latent axis) are the ones a disentangled code makes abstract.

* CCGP (cross-condition generalisation performance): train a linear classifier for the dichotomy
  on all conditions but one held out from each side, test it on the two held-out conditions,
  average the balanced accuracy over the held-out pairs (by default pairs of adjacent orthants;
  see ``pairs`` in :func:`abstraction_geometry`).
* Parallelism score: the maximum, over pairings of the conditions of one side with those of the
  other, of the mean cosine between the coding vectors (mean_b - mean_a) of the pairs.
* Shattering dimensionality: mean cross-validated accuracy of a linear classifier over all
  balanced dichotomies.
* Nulls (Bernardi et al.): the *label-shuffle* null recomputes the scores after shuffling the
  trials' condition labels (nothing is decodable); the *geometric* null keeps every condition's
  cloud of states but permutes its units, independently per condition (a random relabelling of
  which unit is which, the same for all trials of the condition). Each condition stays a compact
  cluster, so dichotomies stay decodable, but the conditions' arrangement is random, which is the
  reference CCGP and parallelism must beat to call a code abstract.

Classifiers (``classifier``): 'svm' (default) is a linear support-vector machine (squared hinge,
C = SVM_C, classes weighted to balance: the optimum of scikit-learn's LinearSVC, decodanda's
default classifier, found by a few Newton steps in numpy, :func:`linear_svm`) on z-scored units, trained on at most MAX_TRAIN_PER_CONDITION trials drawn from each training
condition (the margin is set by a few hundred trials; subsampling keeps the many fits fast);
'ridge' is a least-squares linear discriminant (ridge regression onto +-1, standardised units,
penalty CLASSIFIER_ALPHA), closed form from per-condition sufficient statistics. They differ on
CCGP: a least-squares fit weighs every training trial's distance to its target, so the
direction it learns follows the training conditions' spread, while the margin classifier is set
by the trials nearest the boundary.
A linear code of two factors scores CCGP ~ 1 and parallelism ~ 1 on the factor dichotomies,
about 0 (CCGP) on XOR, and shattering (1 + 1 + 0.5) / 3 ~ 0.83.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from multitask_evidence.envs import orthant_index
from multitask_evidence.probes.decoding import MIN_TRIALS
from multitask_evidence.probes.linear import check_xy

CLASSIFIER_ALPHA = 1e-3
"""Ridge penalty (units of n) of the least-squares classifier."""
SVM_C = 1.0
"""Inverse L2 penalty of the linear SVM (decodanda's default), on z-scored units."""
MAX_TRAIN_PER_CONDITION = 1024
"""SVM fits draw at most this many trials from each training condition."""
CLASSIFIERS = ("svm", "ridge")


@dataclass
class Dichotomy:
    """One balanced dichotomy's scores. side_a / side_b: condition indices; factor: axis index
    (0-based) when the split is the sign of one latent axis, else None. ccgp, decoding: balanced
    accuracies; parallelism: a mean cosine. *_null_shuffle_* / *_null_geometric_*: mean and 95th
    percentile of the label-shuffle and geometric nulls (None where the nulls were not run: off,
    or not a factor dichotomy, see :func:`abstraction_geometry`)."""

    name: str
    side_a: list[int]
    side_b: list[int]
    factor: int | None
    ccgp: float
    parallelism: float
    decoding: float
    ccgp_null_shuffle_mean: float | None = None
    ccgp_null_shuffle_p95: float | None = None
    ccgp_null_geometric_mean: float | None = None
    ccgp_null_geometric_p95: float | None = None
    parallelism_null_shuffle_mean: float | None = None
    parallelism_null_shuffle_p95: float | None = None
    parallelism_null_geometric_mean: float | None = None
    parallelism_null_geometric_p95: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GeometryResult:
    """CCGP / parallelism / shattering over the balanced dichotomies of the orthants.

    ccgp_factors, parallelism_factors: means over the D factor dichotomies (the headline);
    ccgp_mean, parallelism_mean: means over every dichotomy scored; shattering: mean decoding
    accuracy over every dichotomy scored; *_factors_null_shuffle_* / *_factors_null_geometric_*:
    the factor means under the label-shuffle / geometric nulls (mean and 95th percentile over
    null draws; None when n_shuffles = 0). classifier: 'svm' or 'ridge'; classifier_params: its
    settings (C or alpha, the per-condition training cap, z-scoring).
    """

    n_conditions: int
    n_dichotomies: int
    classifier: str
    classifier_params: dict[str, Any]
    ccgp_factors: float
    parallelism_factors: float
    ccgp_mean: float
    parallelism_mean: float
    shattering: float
    ccgp_factors_null_shuffle_mean: float | None
    ccgp_factors_null_shuffle_p95: float | None
    ccgp_factors_null_geometric_mean: float | None
    ccgp_factors_null_geometric_p95: float | None
    parallelism_factors_null_shuffle_mean: float | None
    parallelism_factors_null_shuffle_p95: float | None
    parallelism_factors_null_geometric_mean: float | None
    parallelism_factors_null_geometric_p95: float | None
    n_null: int
    dichotomies: list[Dichotomy]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dichotomies"] = [x.to_dict() for x in self.dichotomies]
        return d


def balanced_dichotomies(
    n_conditions: int, latent_dim: int | None = None, max_dichotomies: int = 35, seed: int = 0
) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Balanced splits (side_a, side_b) of range(n_conditions), each counted once.

    When there are more than max_dichotomies, a seeded random subset is returned that always
    contains the latent_dim factor dichotomies (side_b = conditions with bit d set).
    """
    if n_conditions < 2 or n_conditions % 2:
        raise ValueError(f"n_conditions must be an even number >= 2, got {n_conditions}")
    conds = tuple(range(n_conditions))
    half = n_conditions // 2
    factors: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    if latent_dim is not None:
        for d in range(latent_dim):
            b = tuple(c for c in conds if (c >> d) & 1)
            factors.append((tuple(c for c in conds if c not in b), b))
    total = math.comb(n_conditions - 1, half - 1)
    if total <= max_dichotomies:
        # condition 0 always on side a: each unordered split once
        splits = []
        for rest in itertools.combinations(conds[1:], half - 1):
            a = (0, *rest)
            splits.append((a, tuple(c for c in conds if c not in a)))
        # factor splits first, in axis order
        fset = {f[0] for f in factors}
        return factors + [s for s in splits if s[0] not in fset]
    rng = np.random.default_rng(seed)
    out = list(factors)
    seen = {f[0] for f in factors}
    while len(out) < max_dichotomies:
        a = tuple(sorted((0, *rng.choice(conds[1:], half - 1, replace=False).tolist())))
        if a not in seen:
            seen.add(a)
            out.append((a, tuple(c for c in conds if c not in a)))
    return out


def linear_svm(
    x: np.ndarray, y: np.ndarray, c: float = SVM_C, *, tol: float = 1e-8, max_iter: int = 100
) -> tuple[np.ndarray, float]:
    """Linear SVM with the squared hinge loss: weights [H] and intercept of the classifier
    x @ w + b > 0 <=> y, for x [n, H] and boolean labels y [n] (both classes present).

    Minimises 0.5 |(w, b)|^2 + c sum_i k_i max(0, 1 - s_i (x_i . w + b))^2 with s_i = +-1 and
    class weights k_i = n / (2 n_class(i)) (balanced). The bias is penalised like a weight on a
    constant feature 1, as in liblinear, so this is the problem scikit-learn's
    ``LinearSVC(C=c, class_weight='balanced')`` solves (same unique optimum). Solved by Newton's
    method on the generalised Hessian I + 2c X_A^T K_A X_A of the active set A (margin < 1) with
    backtracking; the loss is piecewise quadratic, so it converges in ~10 steps.
    """
    n, h = x.shape
    if y.all() or not y.any():
        raise ValueError("a classifier needs trials of both classes")
    xa = np.concatenate([x, np.ones((n, 1))], axis=1)
    s = np.where(y, 1.0, -1.0)
    n_pos = float(y.sum())
    k = c * np.where(y, n / (2.0 * n_pos), n / (2.0 * (n - n_pos)))
    w = np.zeros(h + 1)

    def objective(v: np.ndarray) -> float:
        m = np.maximum(1.0 - s * (xa @ v), 0.0)
        return 0.5 * float(v @ v) + float((k * m * m).sum())

    for _ in range(max_iter):  # Newton steps
        m = 1.0 - s * (xa @ w)
        act = m > 0
        grad = w - 2.0 * xa[act].T @ (k[act] * m[act] * s[act])
        if np.linalg.norm(grad) <= tol * max(1.0, float(np.linalg.norm(w))):
            break
        xs = xa[act] * np.sqrt(2.0 * k[act])[:, None]
        step_dir = -np.linalg.solve(np.eye(h + 1) + xs.T @ xs, grad)
        f0, slope, step = objective(w), float(grad @ step_dir), 1.0
        while objective(w + step * step_dir) > f0 + 1e-4 * step * slope and step > 1e-12:
            step *= 0.5
        w = w + step * step_dir
    return w[:h], float(w[h])


class _CondStats:
    """Hidden states [n, H] grouped by condition, with the classifier to fit on unions of
    conditions. 'ridge' keeps per-condition sufficient statistics (count, sum, X^T X), so a fit
    on any union costs one H x H solve; 'svm' fits :func:`linear_svm` on z-scored units
    (z-scored once over all trials) from at most ``max_train`` trials per training condition."""

    def __init__(
        self,
        x: np.ndarray,
        cond: np.ndarray,
        n_cond: int,
        classifier: str,
        max_train: int,
        rng: np.random.Generator,
    ) -> None:
        self.x, self.cond, self.classifier = x, cond, classifier
        self.max_train, self.rng = max_train, rng
        self.rows = [np.flatnonzero(cond == c) for c in range(n_cond)]
        self.n = np.array([r.size for r in self.rows], dtype=float)
        self.s = np.stack([x[r].sum(axis=0) for r in self.rows])  # [m, H]
        self.means = self.s / self.n[:, None]
        if classifier == "ridge":
            self.q = np.stack([x[r].T @ x[r] for r in self.rows])  # [m, H, H]
        else:
            mean, sd = x.mean(axis=0), x.std(axis=0)
            self.mu, self.sd = mean, np.where(sd > 1e-12, sd, 1.0)
            self.xz = (x - self.mu) / self.sd

    def fit(self, conds: list[int], signs: list[float]) -> tuple[np.ndarray, float]:
        """Linear classifier of the trials of ``conds`` labelled ``signs`` (+-1); returns raw-unit
        weights [H] and the intercept (decision: x @ w + b > 0 for +1)."""
        if self.classifier == "ridge":
            return self._fit_ridge(conds, signs)
        return self._fit_svm(conds, signs)

    def _fit_ridge(self, conds: list[int], signs: list[float]) -> tuple[np.ndarray, float]:
        """Ridge onto +-1 (standardised units, penalty CLASSIFIER_ALPHA * n)."""
        c = np.asarray(conds)
        lab = np.asarray(signs, dtype=float)
        n = self.n[c].sum()
        m = self.s[c].sum(axis=0) / n
        g = self.q[c].sum(axis=0) - n * np.outer(m, m)
        ybar = float((lab * self.n[c]).sum() / n)
        p = (lab[:, None] * self.s[c]).sum(axis=0) - n * m * ybar
        var = np.diag(g) / n
        scale = np.where(var > 1e-24, np.sqrt(np.maximum(var, 0.0)), 1.0)
        gs = g / np.outer(scale, scale) + CLASSIFIER_ALPHA * n * np.eye(g.shape[0])
        w = np.linalg.solve(gs, p / scale) / scale
        return w, ybar - float(m @ w)

    def _fit_svm(self, conds: list[int], signs: list[float]) -> tuple[np.ndarray, float]:
        """Linear SVM (squared hinge, C = SVM_C, balanced class weights) on z-scored units."""
        idx, lab = [], []
        for c, sgn in zip(conds, signs):
            r = self.rows[c]
            if r.size > self.max_train:
                r = self.rng.choice(r, self.max_train, replace=False)
            idx.append(r)
            lab.append(np.full(r.size, sgn > 0))
        rows, y = np.concatenate(idx), np.concatenate(lab)
        wz, b0 = linear_svm(self.xz[rows], y, SVM_C)
        # back to raw units: (x - mu) / sd @ wz + b0 = x @ (wz / sd) + (b0 - mu / sd @ wz)
        return wz / self.sd, float(b0 - (self.mu / self.sd) @ wz)

    def accuracy(self, w: np.ndarray, b: float, conds: list[int], signs: list[float]) -> float:
        """Balanced accuracy over the test conditions (mean over the two sides)."""
        per_side: dict[float, list[np.ndarray]] = {}
        for c, sgn in zip(conds, signs):
            correct = (self.x[self.rows[c]] @ w + b > 0) == (sgn > 0)
            per_side.setdefault(sgn, []).append(correct)
        return float(np.mean([np.concatenate(v).mean() for v in per_side.values()]))


def _held_out_pairs(a: tuple, b: tuple, adjacent: bool) -> list[tuple[int, int]]:
    pairs = list(itertools.product(a, b))
    if adjacent:  # orthants that differ in exactly one sign bit
        pairs = [(i, j) for i, j in pairs if bin(i ^ j).count("1") == 1]
    return pairs


def _ccgp(st: _CondStats, a: tuple, b: tuple, adjacent: bool, max_pairs: int, rng) -> float:
    pairs = _held_out_pairs(a, b, adjacent)
    if not pairs:
        return float("nan")
    if len(pairs) > max_pairs:
        pairs = [pairs[i] for i in rng.choice(len(pairs), max_pairs, replace=False)]
    accs = []
    for ha, hb in pairs:  # a loop over held-out condition pairs; each fit is one H x H solve
        tr = [c for c in (*a, *b) if c not in (ha, hb)]
        w, b0 = st.fit(tr, [1.0 if c in b else -1.0 for c in tr])
        accs.append(st.accuracy(w, b0, [ha, hb], [-1.0, 1.0]))
    return float(np.mean(accs))


def _parallelism(means: np.ndarray, a: tuple, b: tuple, max_perms: int, rng) -> float:
    k = len(a)
    if k < 2:
        return float("nan")
    if math.factorial(k) <= max_perms:
        perms = list(itertools.permutations(range(k)))
    else:
        perms = [tuple(rng.permutation(k)) for _ in range(max_perms)]
    ma, mb = means[list(a)], means[list(b)]
    iu = np.triu_indices(k, 1)
    best = -np.inf
    for p in perms:  # a loop over pairings of the two sides (k! of them, capped)
        v = mb[list(p)] - ma
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
        best = max(best, float((v @ v.T)[iu].mean()))
    return best


def _scores(
    st: _CondStats,
    splits: list,
    adjacent: bool,
    max_pairs: int,
    max_perms: int,
    rng: np.random.Generator,
) -> tuple[list[float], list[float]]:
    cc = [_ccgp(st, a, b, adjacent, max_pairs, rng) for a, b in splits]
    ps = [_parallelism(st.means, a, b, max_perms, rng) for a, b in splits]
    return cc, ps


def unit_shuffle(
    hidden: np.ndarray, conditions: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """States [n, H] of the geometric null: units z-scored over all trials, then permuted
    independently per condition (one random permutation of the H units per condition, shared by
    its trials). conditions: [n] ints. Each condition keeps its cloud's shape and spread; the
    arrangement of the conditions' means becomes random."""
    x = np.asarray(hidden, dtype=np.float64)
    sd = x.std(axis=0)
    xz = (x - x.mean(axis=0)) / np.where(sd > 1e-12, sd, 1.0)
    out = np.empty_like(xz)
    for c in np.unique(conditions):  # a loop over conditions (2^D of them)
        rows = np.flatnonzero(conditions == c)
        out[rows] = xz[rows][:, rng.permutation(x.shape[1])]
    return out


_NULL_NAMES = {
    "cc_sh": "ccgp_{}null_shuffle",
    "cc_geo": "ccgp_{}null_geometric",
    "ps_sh": "parallelism_{}null_shuffle",
    "ps_geo": "parallelism_{}null_geometric",
}
"""Key of a null in the computation -> its field name (``{}``: "" per dichotomy, "factors_" for
the mean over the factor dichotomies)."""


def _null_fields(
    scope: str, stats: dict[str, tuple[float | None, float | None]]
) -> dict[str, float | None]:
    """The ``*_mean`` / ``*_p95`` fields of the four nulls for one scope."""
    out: dict[str, float | None] = {}
    for key, name in _NULL_NAMES.items():
        out[name.format(scope) + "_mean"], out[name.format(scope) + "_p95"] = stats[key]
    return out


def _null_stats(values: np.ndarray) -> tuple[float | None, float | None]:
    """(mean, 95th percentile) of null draws [k] (None, None when there are none or all NaN)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None, None
    return float(v.mean()), float(np.percentile(v, 95))


def abstraction_geometry(
    hidden: np.ndarray,
    latent: np.ndarray,
    *,
    conditions: np.ndarray | None = None,
    classifier: str = "svm",
    n_shuffles: int = 10,
    null_on: str = "factors",
    max_dichotomies: int = 35,
    max_pairs: int = 16,
    max_perms: int = 120,
    max_train_per_condition: int = MAX_TRAIN_PER_CONDITION,
    pairs: str = "adjacent",
    seed: int = 0,
) -> GeometryResult:
    """CCGP, parallelism score and shattering dimensionality of hidden [n, H] states.

    latent: [n, D] x* (conditions = orthants, 2^D of them) unless ``conditions`` [n] (ints
    0..m-1, m even) is given. Every condition needs >= MIN_TRIALS trials.
    classifier: 'svm' (default; linear SVM, see the module docstring) or 'ridge'.
    n_shuffles: draws of each null, label-shuffle and geometric (0 to skip both).
    null_on: 'factors' (default) runs the nulls on the D factor dichotomies only (the headline;
    with explicit ``conditions`` every dichotomy counts as a factor); 'all' on every dichotomy.
    max_train_per_condition: the SVM's per-condition training subsample (ignored by 'ridge').
    pairs: which held-out pairs (one condition from each side) CCGP averages over. 'adjacent'
    (default, orthant conditions only): pairs of orthants that differ in one sign bit. With four
    quadrants, holding out a *diagonal* pair leaves one training condition per side that differ in
    both factors, so no code can tell which factor the labels follow and even a perfect abstract
    code scores 0.5 on it (the mean over all pairs tops out at 0.75); 'all' keeps every pair as in
    a literal reading of Bernardi et al. Only 'all' is allowed with explicit ``conditions``.
    Cost: the SVM makes one fit per held-out pair per dichotomy, for the data and for every null
    draw: ~1 s for 4096 trials x 64 units, D = 2, n_shuffles = 10.
    """
    if pairs not in ("adjacent", "all"):
        raise ValueError(f"pairs must be 'adjacent' or 'all', got {pairs!r}")
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {list(CLASSIFIERS)}, got {classifier!r}")
    if null_on not in ("factors", "all"):
        raise ValueError(f"null_on must be 'factors' or 'all', got {null_on!r}")
    if max_train_per_condition < MIN_TRIALS:
        raise ValueError(
            f"max_train_per_condition must be >= {MIN_TRIALS}, got {max_train_per_condition}"
        )
    # the fits are many small (<= a few thousand x H) solves: BLAS threads only add
    # synchronisation, which on a busy 2-core machine costs more than they save, so one thread
    with threadpool_limits(1):
        return _abstraction_geometry(
            hidden,
            latent,
            conditions,
            classifier,
            n_shuffles,
            null_on,
            max_dichotomies,
            max_pairs,
            max_perms,
            max_train_per_condition,
            pairs,
            seed,
        )


def _abstraction_geometry(
    hidden: np.ndarray,
    latent: np.ndarray,
    conditions: np.ndarray | None,
    classifier: str,
    n_shuffles: int,
    null_on: str,
    max_dichotomies: int,
    max_pairs: int,
    max_perms: int,
    max_train_per_condition: int,
    pairs: str,
    seed: int,
) -> GeometryResult:
    x, y = check_xy(hidden, latent)
    rng = np.random.default_rng(seed)
    if conditions is None:
        cond = orthant_index(y)
        n_cond = 2 ** y.shape[1]
        latent_dim: int | None = y.shape[1]
    else:
        cond = np.asarray(conditions)
        if cond.shape != (x.shape[0],) or not np.issubdtype(cond.dtype, np.integer):
            raise ValueError(
                f"conditions must be integers of shape ({x.shape[0]},), got {cond.shape}"
            )
        n_cond = int(cond.max()) + 1
        latent_dim = None
        if pairs == "adjacent":
            raise ValueError("pairs='adjacent' needs orthant conditions; use pairs='all'")
    counts = np.bincount(cond, minlength=n_cond)
    if counts.min() < MIN_TRIALS:
        raise ValueError(
            f"every condition needs >= {MIN_TRIALS} trials; counts per condition: {counts.tolist()} "
            "(record more trials)"
        )
    splits = balanced_dichotomies(n_cond, latent_dim, max_dichotomies, seed)
    adjacent = pairs == "adjacent"
    nf = latent_dim if latent_dim is not None else len(splits)

    def stats(xs: np.ndarray, cs: np.ndarray) -> _CondStats:
        return _CondStats(xs, cs, n_cond, classifier, max_train_per_condition, rng)

    cc, ps = _scores(stats(x, cond), splits, adjacent, max_pairs, max_perms, rng)
    # shattering: train on a random half of the trials, test on the other half
    half = rng.permutation(x.shape[0]) < x.shape[0] // 2
    st_tr, st_te = stats(x[half], cond[half]), stats(x[~half], cond[~half])
    dec = []
    for _a, b in splits:
        sides = [1.0 if c in b else -1.0 for c in range(n_cond)]
        w, b0 = st_tr.fit(list(range(n_cond)), sides)
        dec.append(st_te.accuracy(w, b0, list(range(n_cond)), sides))
    null_splits = splits[:nf] if null_on == "factors" else splits
    n_null = len(null_splits)
    shape = (n_shuffles, len(splits))
    nulls = {k: np.full(shape, np.nan) for k in ("cc_sh", "ps_sh", "cc_geo", "ps_geo")}
    for i in range(n_shuffles):  # a loop over null draws
        c_sh = rng.permutation(cond)  # label shuffle: nothing left to decode
        ncc, nps = _scores(stats(x, c_sh), null_splits, adjacent, max_pairs, max_perms, rng)
        nulls["cc_sh"][i, :n_null], nulls["ps_sh"][i, :n_null] = ncc, nps
        x_geo = unit_shuffle(x, cond, rng)  # geometric: clusters kept, arrangement random
        ncc, nps = _scores(stats(x_geo, cond), null_splits, adjacent, max_pairs, max_perms, rng)
        nulls["cc_geo"][i, :n_null], nulls["ps_geo"][i, :n_null] = ncc, nps
    dichos = []
    for i, (a, b) in enumerate(splits):
        factor = i if latent_dim is not None and i < latent_dim else None
        name = f"x{factor + 1}" if factor is not None else f"{set(a)}|{set(b)}"
        col = {k: _null_stats(v[:, i]) for k, v in nulls.items()}
        dichos.append(
            Dichotomy(
                name=name,
                side_a=list(map(int, a)),
                side_b=list(map(int, b)),
                factor=factor,
                ccgp=cc[i],
                parallelism=ps[i],
                decoding=dec[i],
                **_null_fields("", col),
            )
        )
    fac = slice(0, nf)
    # the factor mean of each null draw, then its mean and 95th percentile over draws
    fac_null = {
        k: _null_stats(np.nanmean(v[:, fac], axis=1)) if n_shuffles else (None, None)
        for k, v in nulls.items()
    }
    params: dict[str, Any] = (
        {"C": SVM_C, "zscore": True, "class_weight": "balanced"}
        | {"max_train_per_condition": max_train_per_condition}
        if classifier == "svm"
        else {"alpha": CLASSIFIER_ALPHA, "zscore": True}
    )
    return GeometryResult(
        n_conditions=n_cond,
        n_dichotomies=len(splits),
        classifier=classifier,
        classifier_params=params,
        ccgp_factors=float(np.nanmean(cc[fac])),
        parallelism_factors=float(np.mean(ps[fac])),
        ccgp_mean=float(np.nanmean(cc)),
        parallelism_mean=float(np.mean(ps)),
        shattering=float(np.mean(dec)),
        **_null_fields("factors_", fac_null),
        n_null=int(n_shuffles),
        dichotomies=dichos,
    )
