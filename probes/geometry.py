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
* Null: the same scores after shuffling the trials' condition labels (n_shuffles times).

The classifier is a least-squares linear discriminant (ridge regression onto +-1, standardised
units, fixed small penalty): closed form, like the decoders in :mod:`probes.decoding`.
A linear code of two factors scores CCGP ~ 1 and parallelism ~ 1 on the factor dichotomies,
about 0 (CCGP) on XOR, and shattering (1 + 1 + 0.5) / 3 ~ 0.83.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from envs import orthant_index
from probes.decoding import MIN_TRIALS, check_xy

CLASSIFIER_ALPHA = 1e-3
"""Ridge penalty (units of n) of the least-squares classifier."""


@dataclass
class Dichotomy:
    """One balanced dichotomy's scores. side_a / side_b: condition indices; factor: axis index
    (0-based) when the split is the sign of one latent axis, else None."""

    name: str
    side_a: list[int]
    side_b: list[int]
    factor: int | None
    ccgp: float
    parallelism: float
    decoding: float
    ccgp_null_mean: float | None = None
    ccgp_null_p95: float | None = None
    parallelism_null_mean: float | None = None
    parallelism_null_p95: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GeometryResult:
    """CCGP / parallelism / shattering over the balanced dichotomies of the orthants.

    ccgp_factors, parallelism_factors: means over the D factor dichotomies (the headline);
    ccgp_mean, parallelism_mean: means over every dichotomy scored; shattering: mean decoding
    accuracy over every dichotomy scored; *_null_*: the same means after shuffling conditions.
    """

    n_conditions: int
    n_dichotomies: int
    ccgp_factors: float
    parallelism_factors: float
    ccgp_mean: float
    parallelism_mean: float
    shattering: float
    ccgp_factors_null_mean: float | None
    ccgp_factors_null_p95: float | None
    parallelism_factors_null_mean: float | None
    parallelism_factors_null_p95: float | None
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


class _CondStats:
    """Per-condition sufficient statistics (count, sum, X^T X) of hidden states, so that a
    least-squares classifier on any union of conditions costs one H x H solve."""

    def __init__(self, x: np.ndarray, cond: np.ndarray, n_cond: int) -> None:
        self.x, self.cond = x, cond
        self.rows = [np.flatnonzero(cond == c) for c in range(n_cond)]
        self.n = np.array([r.size for r in self.rows], dtype=float)
        self.s = np.stack([x[r].sum(axis=0) for r in self.rows])  # [m, H]
        self.q = np.stack([x[r].T @ x[r] for r in self.rows])  # [m, H, H]
        self.means = self.s / self.n[:, None]

    def fit(self, conds: list[int], signs: list[float]) -> tuple[np.ndarray, float]:
        """Ridge onto +-1 (standardised units, penalty CLASSIFIER_ALPHA * n) over the trials of
        ``conds`` labelled ``signs``; returns raw-unit weights [H] and the intercept."""
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
    x: np.ndarray,
    cond: np.ndarray,
    splits: list,
    n_cond: int,
    adjacent: bool,
    max_pairs: int,
    max_perms: int,
    rng,
) -> tuple[list[float], list[float]]:
    st = _CondStats(x, cond, n_cond)
    cc = [_ccgp(st, a, b, adjacent, max_pairs, rng) for a, b in splits]
    ps = [_parallelism(st.means, a, b, max_perms, rng) for a, b in splits]
    return cc, ps


def abstraction_geometry(
    hidden: np.ndarray,
    latent: np.ndarray,
    *,
    conditions: np.ndarray | None = None,
    n_shuffles: int = 10,
    max_dichotomies: int = 35,
    max_pairs: int = 16,
    max_perms: int = 120,
    pairs: str = "adjacent",
    seed: int = 0,
) -> GeometryResult:
    """CCGP, parallelism score and shattering dimensionality of hidden [n, H] states.

    latent: [n, D] x* (conditions = orthants, 2^D of them) unless ``conditions`` [n] (ints
    0..m-1, m even) is given. Every condition needs >= MIN_TRIALS trials.
    n_shuffles: size of the condition-shuffle null (0 to skip).
    pairs: which held-out pairs (one condition from each side) CCGP averages over. 'adjacent'
    (default, orthant conditions only): pairs of orthants that differ in one sign bit. With four
    quadrants, holding out a *diagonal* pair leaves one training condition per side that differ in
    both factors, so no code can tell which factor the labels follow and even a perfect abstract
    code scores 0.5 on it (the mean over all pairs tops out at 0.75); 'all' keeps every pair as in
    a literal reading of Bernardi et al. Only 'all' is allowed with explicit ``conditions``.
    """
    if pairs not in ("adjacent", "all"):
        raise ValueError(f"pairs must be 'adjacent' or 'all', got {pairs!r}")
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
    cc, ps = _scores(x, cond, splits, n_cond, adjacent, max_pairs, max_perms, rng)
    # shattering: train on a random half of the trials, test on the other half
    half = rng.permutation(x.shape[0]) < x.shape[0] // 2
    st_tr = _CondStats(x[half], cond[half], n_cond)
    st_te = _CondStats(x[~half], cond[~half], n_cond)
    dec = []
    for _a, b in splits:
        sides = [1.0 if c in b else -1.0 for c in range(n_cond)]
        w, b0 = st_tr.fit(list(range(n_cond)), sides)
        dec.append(st_te.accuracy(w, b0, list(range(n_cond)), sides))
    null_cc, null_ps = [], []
    for _ in range(n_shuffles):  # a loop over shuffles of the trials' condition labels
        c_sh = rng.permutation(cond)
        ncc, nps = _scores(x, c_sh, splits, n_cond, adjacent, max_pairs, max_perms, rng)
        null_cc.append(ncc)
        null_ps.append(nps)
    ncc_arr, nps_arr = np.array(null_cc), np.array(null_ps)
    dichos = []
    for i, (a, b) in enumerate(splits):
        factor = i if latent_dim is not None and i < latent_dim else None
        name = f"x{factor + 1}" if factor is not None else f"{set(a)}|{set(b)}"
        dichos.append(
            Dichotomy(
                name=name,
                side_a=list(map(int, a)),
                side_b=list(map(int, b)),
                factor=factor,
                ccgp=cc[i],
                parallelism=ps[i],
                decoding=dec[i],
                ccgp_null_mean=float(ncc_arr[:, i].mean()) if n_shuffles else None,
                ccgp_null_p95=float(np.percentile(ncc_arr[:, i], 95)) if n_shuffles else None,
                parallelism_null_mean=float(nps_arr[:, i].mean()) if n_shuffles else None,
                parallelism_null_p95=float(np.percentile(nps_arr[:, i], 95))
                if n_shuffles
                else None,
            )
        )
    nf = latent_dim if latent_dim is not None else len(splits)
    fac = slice(0, nf)

    def null(arr: np.ndarray, fn: Any) -> float | None:
        return float(fn(np.nanmean(arr[:, fac], axis=1))) if n_shuffles else None

    return GeometryResult(
        n_conditions=n_cond,
        n_dichotomies=len(splits),
        ccgp_factors=float(np.nanmean(cc[fac])),
        parallelism_factors=float(np.mean(ps[fac])),
        ccgp_mean=float(np.nanmean(cc)),
        parallelism_mean=float(np.mean(ps)),
        shattering=float(np.mean(dec)),
        ccgp_factors_null_mean=null(ncc_arr, np.mean),
        ccgp_factors_null_p95=null(ncc_arr, lambda v: np.percentile(v, 95)),
        parallelism_factors_null_mean=null(nps_arr, np.mean),
        parallelism_factors_null_p95=null(nps_arr, lambda v: np.percentile(v, 95)),
        dichotomies=dichos,
    )
