"""Comparing two codes recorded on the same trials: linear CKA and RSA, with permutation nulls.

Two agents (two seeds, two architectures, a network and the ideal observer) may hold the same
information in different bases. These measures ask whether two sets of states a [n, p] and
b [n, q], recorded on the same n trials, are the same code up to the transformations a linear
read-out does not care about.

* Linear CKA (centred kernel alignment, Kornblith et al., ICML 2019): with the columns of a and
  b centred, CKA = ||b^T a||_F^2 / (||a^T a||_F ||b^T b||_F), the normalised HSIC of the two
  linear kernels. 1 for a code and any orthogonal transform or isotropic rescaling of it; about
  0 for independent codes when n is much larger than the number of units (with as many units
  as trials, independent codes score well above 0: the null below says how far). Computed from
  the feature-space products [p, q], [p, p] and [q, q] (cost n (p + q)^2, memory (p + q)^2):
  the same number as the n x n kernel form, exactly, without an n x n matrix; the n x n form
  only where it is the cheaper one (thousands of units and at most 4096 trials).
* RSA (representational similarity analysis, Kriegeskorte et al. 2008): the representational
  dissimilarity matrix (RDM, :func:`rdm`) of each code over m items (condition means, or
  trials), and the Spearman correlation of their upper triangles (:func:`rsa`). Items are the
  condition means of ``conditions`` when given; otherwise the trials themselves when
  n <= MAX_RSA_TRIALS, else condition means over a grid of latent bins (:func:`latent_bins`)
  when the latents are known, else a seeded subsample of MAX_RSA_TRIALS trials.
* Permutation nulls (:func:`compare_codes`): the same statistic after shuffling which trial of
  b goes with which trial of a (CKA: the rows of b) or which item of b's RDM goes with which of
  a's (RSA: its rows and columns together). Each null keeps both codes' own structure and breaks
  only their pairing, so it asks whether the pairing carries the similarity. p-value:
  (1 + #{null >= observed}) / (1 + n_permutations), which is never 0: with P permutations the
  smallest is 1 / (1 + P).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from multitask_evidence.common.limits import check_bytes
from multitask_evidence.common.validate import check_choice, check_int

METRICS = ("correlation", "euclidean")
"""Dissimilarities :func:`rdm` computes: 1 - Pearson r between two patterns over units, or their
Euclidean distance."""

MAX_RSA_TRIALS = 500
"""RSA on trials is used up to this many trials (and a subsample of this many is drawn when
there are more and neither conditions nor latents are given). An RDM over m items has
m (m - 1) / 2 pairs and each null permutation re-reads all of them: 500 trials give 124,750
pairs, enough for a stable rank correlation, while a 1000-permutation null stays about a
second; at 4096 trials it would be 8.4 million pairs per permutation."""

LATENT_CELLS = 64
"""About how many cells :func:`latent_bins` aims at when ``per_axis`` is not given: the
nearest whole number of bins per axis to 64^(1/D), at least 2 (8 x 8 for D = 2, the paper's
tuning grid; 4^3 for D = 3; 2^6 for D = 6). At 4096 trials a cell averages about 64 of them, so
the condition means reflect the code more than the trial noise."""

_CHUNK_ELEMENTS = 2**21
"""Elements of the temporary arrays the permutation loops build at once (16 MiB of float64):
the nulls are batched into matrix products of about this size."""

_DUAL_RATIO = 128
"""The CKA null uses the n x n kernel form when p q > 128 n (and n <= _DUAL_MAX_TRIALS): one
permutation then costs n^2 gathered kernel elements instead of n p q multiply-adds of a matrix
product, and on one core a gathered element costs about as much as 100 to 200 multiply-adds.
Whole trajectories of many units (p = T H in the thousands) take this form."""

_DUAL_MAX_TRIALS = 4096
"""Largest n for the n x n kernel form of the CKA null (two 128 MiB kernels at 4096)."""


# ---- input checks ---------------------------------------------------------------------------
def _as_real(name: str, x: Any) -> np.ndarray:
    """``x`` as a real numeric numpy array (not yet float64): object, string, complex or ragged
    input is one ValueError naming ``name``."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged nested lists
        raise ValueError(f"{name} must be a numeric array, got a ragged sequence ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def check_code(name: str, x: Any, min_rows: int = 2) -> np.ndarray:
    """Validate a code ``x`` [n, units]: a 2-D real array, finite, at least ``min_rows`` rows
    and one unit. Returns a float64 copy; errors name ``name``."""
    arr = _as_real(name, x)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [n trials, units], got shape {arr.shape}")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(
            f"{name} must hold at least {min_rows} rows and 1 unit, got shape {arr.shape}"
        )
    out = np.array(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or inf")
    return out


def _check_pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """a [n, p] and b [n, q] on the same n >= 2 trials, float64."""
    x, y = check_code("a", a), check_code("b", b)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            "a and b must hold the same trials (one row each), got "
            f"n = {x.shape[0]} and n = {y.shape[0]}"
        )
    return x, y


def _check_conditions(conditions: Any, n: int) -> np.ndarray:
    """conditions: an integer array [n]."""
    c = _as_real("conditions", conditions)
    if c.dtype.kind not in "iu" or c.ndim != 1 or c.shape[0] != n:
        raise ValueError(
            f"conditions must be an integer array [n = {n}] (one condition per trial), got "
            f"dtype {c.dtype} shape {c.shape}"
        )
    return c


def _check_latent(latent: Any, n: int | None = None) -> np.ndarray:
    """latent: a finite real array [n, D]."""
    y = _as_real("latent", latent)
    if y.ndim != 2 or y.shape[1] < 1 or (n is not None and y.shape[0] != n):
        want = "[n, D]" if n is None else f"[n = {n}, D]"
        raise ValueError(f"latent must be a 2-D array {want}, got shape {y.shape}")
    y = np.asarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ValueError("latent contains NaN or inf")
    return y


def _check_seed(seed: Any) -> int:
    check_int("seed", seed, 0)
    return int(seed)


# ---- linear CKA -----------------------------------------------------------------------------
def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=0)


def _gram_norm(xc: np.ndarray) -> float:
    """||x^T x||_F = ||x x^T||_F of a centred code [n, p], from the smaller of the two."""
    n, p = xc.shape
    return float(np.linalg.norm(xc.T @ xc if p <= n else xc @ xc.T))


def _norms(ac: np.ndarray, bc: np.ndarray) -> tuple[float, float]:
    """||a^T a||_F and ||b^T b||_F of centred codes; a constant code is a ValueError (its
    kernel is 0 and CKA is 0 / 0)."""
    na, nb = _gram_norm(ac), _gram_norm(bc)
    for name, v in (("a", na), ("b", nb)):
        if v == 0.0:
            raise ValueError(f"{name} is constant over trials: CKA is undefined (0 / 0)")
    return na, nb


def linear_cka(a: Any, b: Any) -> float:
    """Centred linear CKA of a [n, p] and b [n, q] (rows: the same n trials; any units).

    ||b_c^T a_c||_F^2 / (||a_c^T a_c||_F ||b_c^T b_c||_F) with a_c, b_c the codes with each
    unit's mean over trials removed: a number in [0, 1], unitless. Invariant to an orthogonal
    transform or an isotropic rescaling of either side (and to adding a constant); 1 for a code
    with itself. Computed from the feature-space products (no n x n matrix), which equal the
    n x n form <K_c, L_c>_F / (||K_c||_F ||L_c||_F) with K = a a^T, L = b b^T exactly; that
    form is used instead only where it is the cheaper one (p q > 128 n with n <= 4096, e.g.
    whole trajectories of many units). :func:`compare_codes` reports this same number.
    """
    x, y = _check_pair(a, b)
    return _cka_with_null(x, y, 0, np.random.default_rng(0))[0]


def _permutation_chunks(
    rng: np.random.Generator, n: int, n_permutations: int
) -> Iterator[np.ndarray]:
    """Yield the permutations [c, n] of range(n), in chunks of about _CHUNK_ELEMENTS."""
    size = max(1, min(n_permutations, _CHUNK_ELEMENTS // n))
    done = 0
    while done < n_permutations:
        c = min(size, n_permutations - done)
        yield rng.permuted(np.broadcast_to(np.arange(n), (c, n)), axis=1)
        done += c


def _cka_with_null(
    a: np.ndarray, b: np.ndarray, n_permutations: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """(CKA, its null [P]): the rows of b permuted against a, P times. Both the observed value
    and the null go through the same form (feature space, or n x n kernels when p q >> n) so
    that a tie between them is a tie of the same arithmetic."""
    ac, bc = _centred(a), _centred(b)
    na, nb = _norms(ac, bc)
    n, p = ac.shape
    q = bc.shape[1]
    null = np.empty(n_permutations)
    if p * q > _DUAL_RATIO * n and n <= _DUAL_MAX_TRIALS:
        k, lk = ac @ ac.T, bc @ bc.T  # [n, n] each
        observed = float(np.vdot(k, lk)) / (na * nb)
        i = 0
        for perms in _permutation_chunks(rng, n, n_permutations):
            for perm in perms:  # one gather and one inner product of n x n per permutation
                null[i] = np.vdot(k, lk[np.ix_(perm, perm)]) / (na * nb)
                i += 1
        return observed, null
    cross = bc.T @ ac
    observed = float(np.sum(cross * cross)) / (na * nb)
    step = max(1, _CHUNK_ELEMENTS // (n * q))
    i = 0
    for perms in _permutation_chunks(rng, n, n_permutations):
        for s in range(0, perms.shape[0], step):
            sub = perms[s : s + step]  # [c, n]
            c = sub.shape[0]
            stacked = bc[sub.T].reshape(n, c * q)  # column block j: b's rows in order sub[j]
            g = (ac.T @ stacked).reshape(p, c, q)  # one matrix product for c permutations
            null[i : i + c] = np.einsum("pcq,pcq->c", g, g) / (na * nb)
            i += c
    return observed, null


# ---- RDMs and RSA ---------------------------------------------------------------------------
def rdm(x: Any, metric: str = "correlation") -> np.ndarray:
    """Representational dissimilarity matrix [m, m] of patterns x [m items, units] (condition
    means or trials): symmetric, 0 on the diagonal.

    metric: ``'correlation'``: 1 - Pearson r between two items' patterns over units (in [0, 2];
    blind to each pattern's mean and gain; every item must vary over units, so it needs at
    least 2 units); ``'euclidean'``: the distance between the patterns, in the units' own
    units. Only the Euclidean RDM is unchanged by a rotation of the units: the correlation
    distance removes each pattern's mean over units, which a rotation does not preserve, so a
    rotated copy of a code scores an RSA just under 1 with it.
    """
    check_choice("metric", metric, METRICS)
    return _rdm(check_code("x", x), metric, "x")


def _rdm(z: np.ndarray, metric: str, name: str) -> np.ndarray:
    """:func:`rdm` of validated float64 patterns z [m, units]; errors name ``name``."""
    if metric == "correlation":
        z = z - z.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(z, axis=1)
        if (norm == 0).any():
            raise ValueError(
                f"{name} has {int((norm == 0).sum())} item(s) whose pattern is the same in every "
                "unit: the correlation distance is undefined there; use metric='euclidean'"
            )
        z = z / norm[:, None]
        d = np.clip(1.0 - z @ z.T, 0.0, 2.0)
    else:
        z = z - z.mean(axis=0)  # distances do not change; the Gram trick loses less to rounding
        sq = np.einsum("ij,ij->i", z, z)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (z @ z.T), 0.0))
    np.fill_diagonal(d, 0.0)
    return (d + d.T) / 2.0


def latent_bins(latent: Any, per_axis: int | None = None) -> np.ndarray:
    """An integer condition [n] per trial: the cell of a per_axis^D grid over the range of the
    latents [n, D] (each axis from its smallest to its largest value, split into per_axis equal
    bins; cell index row-major, the last axis fastest). per_axis: None picks the nearest whole
    number to LATENT_CELLS^(1/D), at least 2. Cells no trial falls in simply do not occur."""
    y = _check_latent(latent)
    d = y.shape[1]
    if per_axis is None:
        per_axis = max(2, round(LATENT_CELLS ** (1.0 / d)))
    check_int("per_axis", per_axis, 2)
    k = int(per_axis)
    if k**d > 2**62:
        raise ValueError(f"per_axis = {k} over D = {d} axes makes {k}^{d} cells, too many")
    low, high = y.min(axis=0), y.max(axis=0)
    span = np.where(high > low, high - low, 1.0)  # an axis that never varies: one bin
    cell = np.clip(((y - low) / span * k).astype(np.int64), 0, k - 1)
    flat = np.zeros(y.shape[0], dtype=np.int64)
    for axis in range(d):  # a loop over the D axes, not the trials
        flat = flat * k + cell[:, axis]
    return flat


def _condition_means(x: np.ndarray, conditions: np.ndarray) -> np.ndarray:
    """Mean pattern [m, units] of each condition that occurs (sorted by label)."""
    _, inverse, counts = np.unique(conditions, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.add.reduceat(x[order], starts, axis=0) / counts[:, None]


@dataclass(frozen=True, eq=False)
class RSAItems:
    """What RSA compares: the patterns of a [m, p] and b [m, q] over the same m items, and
    what the items are (``over``: 'trials', 'trial subsample', 'conditions' or 'latent
    bins')."""

    a: np.ndarray
    b: np.ndarray
    over: str

    @property
    def m(self) -> int:
        return int(self.a.shape[0])


def rsa_items(
    a: Any,
    b: Any,
    *,
    conditions: Any = None,
    latent: Any = None,
    per_axis: int | None = None,
    seed: int = 0,
) -> RSAItems:
    """The items RSA compares for codes a [n, p], b [n, q] on the same trials: the condition
    means of ``conditions`` [n] (integers) when given; else the trials when
    n <= MAX_RSA_TRIALS; else the means over :func:`latent_bins` of ``latent`` [n, D] (with
    ``per_axis``) when given; else MAX_RSA_TRIALS trials drawn without replacement with
    ``seed``. At least 3 items are needed (a rank correlation over 3 pairs)."""
    x, y = _check_pair(a, b)
    n = x.shape[0]
    seed = _check_seed(seed)
    lat = None if latent is None else _check_latent(latent, n)
    if conditions is not None:
        labels, over = _check_conditions(conditions, n), "conditions"
    elif n <= MAX_RSA_TRIALS:
        labels, over = None, "trials"
    elif lat is not None:
        labels, over = latent_bins(lat, per_axis), "latent bins"
    else:
        rng = np.random.default_rng([seed, 0])
        keep = np.sort(rng.choice(n, MAX_RSA_TRIALS, replace=False))
        return RSAItems(x[keep], y[keep], "trial subsample")
    if labels is not None:
        m = int(np.unique(labels).size)
        if m < 3:
            raise ValueError(f"{over} must make at least 3 distinct conditions for RSA, got {m}")
        check_bytes(f"RSA over {m} {over}", 8.0 * 4 * m * m)
        x, y = _condition_means(x, labels), _condition_means(y, labels)
    if x.shape[0] < 3:
        raise ValueError(f"RSA needs at least 3 items (trials or conditions), got {x.shape[0]}")
    return RSAItems(x, y, over)


def _upper_ranks(d: np.ndarray, name: str) -> np.ndarray:
    """Ranks (ties averaged) of the upper triangle of an RDM [m, m], row-major."""
    iu = np.triu_indices(d.shape[0], 1)
    r = rankdata(d[iu])
    if np.ptp(r) == 0:
        raise ValueError(
            f"every pair of items is equally dissimilar in {name}'s RDM: the rank correlation "
            "is undefined"
        )
    return r


def _rsa_with_null(
    items: RSAItems, metric: str, n_permutations: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """(Spearman r of the two RDMs' upper triangles, its null [P]: b's items relabelled)."""
    da, db = _rdm(items.a, metric, "a"), _rdm(items.b, metric, "b")
    m = items.m
    iu0, iu1 = np.triu_indices(m, 1)
    ra, rb = _upper_ranks(da, "a"), _upper_ranks(db, "b")
    za = ra - ra.mean()
    za /= np.linalg.norm(za)
    zb = rb - rb.mean()
    scale = float(np.linalg.norm(zb))
    observed = float(za @ zb) / scale
    # A relabelling moves b's dissimilarities between pairs without changing them, so the
    # permuted triangle holds the same ranks (same mean and norm): each null value is the
    # ranks' matrix read at the relabelled pairs, dotted with a's centred ranks (za sums to 0).
    rank_matrix = np.zeros((m, m))
    rank_matrix[iu0, iu1] = rb
    rank_matrix += rank_matrix.T
    null = np.empty(n_permutations)
    step = max(1, _CHUNK_ELEMENTS // iu0.size)
    i = 0
    for perms in _permutation_chunks(rng, m, n_permutations):
        for s in range(0, perms.shape[0], step):
            sub = perms[s : s + step]  # [c, m]
            moved = rank_matrix[sub[:, iu0], sub[:, iu1]]  # [c, pairs]
            null[i : i + sub.shape[0]] = (moved @ za) / scale
            i += sub.shape[0]
    return observed, null


def rsa(
    a: Any,
    b: Any,
    *,
    conditions: Any = None,
    latent: Any = None,
    metric: str = "correlation",
    per_axis: int | None = None,
    seed: int = 0,
) -> float:
    """RSA of codes a [n, p] and b [n, q] on the same trials: the Spearman correlation (in
    [-1, 1], unitless) of the upper triangles of their RDMs (:func:`rdm` with ``metric``) over
    the items :func:`rsa_items` picks (condition means of ``conditions``, trials, latent bins of
    ``latent`` or a seeded subsample).

    Spearman rather than Pearson: two codes that arrange the items alike need not have
    dissimilarities in a linear relation (different units, non-linearities, a distance that
    saturates), and a rank correlation asks only that they order the pairs alike; it is also
    not led by a few very large distances (Kriegeskorte et al. 2008, Nili et al. 2014).
    """
    check_choice("metric", metric, METRICS)
    items = rsa_items(a, b, conditions=conditions, latent=latent, per_axis=per_axis, seed=seed)
    observed, _ = _rsa_with_null(items, metric, 0, np.random.default_rng(0))
    return observed


# ---- both, with their nulls -----------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """Two codes compared on the same n trials (see the module docstring).

    cka: linear CKA in [0, 1]; rsa: Spearman r of the RDMs in [-1, 1]. *_null_p95: the 95th
    percentile of the statistic over n_permutations re-pairings of b against a; *_p: the
    permutation p-value (1 + #{null >= observed}) / (1 + n_permutations), at least
    1 / (1 + n_permutations); None, both, when n_permutations = 0. n: trials; units_a,
    units_b: units of each code. rsa_over: what the RDMs' items are ('trials', 'trial
    subsample', 'conditions', 'latent bins'), rsa_items: how many; metric: the RDMs'
    dissimilarity; seed: of the permutations (and the subsample).
    """

    cka: float
    cka_null_p95: float | None
    cka_p: float | None
    rsa: float
    rsa_null_p95: float | None
    rsa_p: float | None
    n: int
    units_a: int
    units_b: int
    rsa_over: str
    rsa_items: int
    metric: str
    n_permutations: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summary(observed: float, null: np.ndarray) -> tuple[float | None, float | None]:
    """(95th percentile of the null, permutation p-value); (None, None) without a null."""
    if null.size == 0:
        return None, None
    p = (1 + int(np.count_nonzero(null >= observed))) / (1 + null.size)
    return float(np.percentile(null, 95)), float(p)


def compare_codes(
    a: Any,
    b: Any,
    *,
    latent: Any = None,
    conditions: Any = None,
    metric: str = "correlation",
    per_axis: int | None = None,
    n_permutations: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Linear CKA and RSA of codes a [n, p] and b [n, q] recorded on the same n trials, each
    with a permutation null of n_permutations re-pairings (CKA: b's rows shuffled against a's;
    RSA: b's RDM items relabelled). latent [n, D] and conditions [n] choose RSA's items as in
    :func:`rsa_items`; metric: the RDMs' dissimilarity (:func:`rdm`). Deterministic given
    ``seed``; n_permutations = 0 skips the nulls."""
    x, y = _check_pair(a, b)
    check_choice("metric", metric, METRICS)
    check_int("n_permutations", n_permutations, 0)
    seed = _check_seed(seed)
    items = rsa_items(x, y, conditions=conditions, latent=latent, per_axis=per_axis, seed=seed)
    n_perm = int(n_permutations)
    cka, cka_null = _cka_with_null(x, y, n_perm, np.random.default_rng([seed, 1]))
    r, rsa_null = _rsa_with_null(items, metric, n_perm, np.random.default_rng([seed, 2]))
    cka_p95, cka_p = _summary(cka, cka_null)
    rsa_p95, rsa_p = _summary(r, rsa_null)
    return Comparison(
        cka=cka,
        cka_null_p95=cka_p95,
        cka_p=cka_p,
        rsa=r,
        rsa_null_p95=rsa_p95,
        rsa_p=rsa_p,
        n=int(x.shape[0]),
        units_a=int(x.shape[1]),
        units_b=int(y.shape[1]),
        rsa_over=items.over,
        rsa_items=items.m,
        metric=metric,
        n_permutations=n_perm,
        seed=seed,
    )
