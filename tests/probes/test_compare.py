"""Comparing two codes: linear CKA and RSA against their definitions computed by hand, their
invariances, the permutation nulls, and one-line errors for bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

from multitask_evidence.probes import compare
from multitask_evidence.probes.compare import (
    MAX_RSA_TRIALS,
    compare_codes,
    latent_bins,
    linear_cka,
    rdm,
    rsa,
    rsa_items,
)


def hsic_cka(a: np.ndarray, b: np.ndarray) -> float:
    """CKA from its definition: HSIC of the centred n x n linear kernels, normalised."""
    n = a.shape[0]
    h = np.eye(n) - np.full((n, n), 1.0 / n)
    k, lk = h @ (a @ a.T) @ h, h @ (b @ b.T) @ h
    return float(np.sum(k * lk) / (np.linalg.norm(k) * np.linalg.norm(lk)))


def orthogonal(p: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, p)))
    return q * np.sign(np.diag(r))


# ---- linear CKA -----------------------------------------------------------------------------
def test_cka_of_a_code_with_itself_its_rotations_and_rescalings_is_one():
    a = np.random.default_rng(0).standard_normal((300, 12)) @ np.diag(np.linspace(0.1, 3, 12))
    assert linear_cka(a, a) == pytest.approx(1.0, abs=1e-12)
    assert abs(linear_cka(a, a @ orthogonal(12, 1)) - 1.0) < 1e-10
    assert abs(linear_cka(a, 7.5 * a) - 1.0) < 1e-12
    assert abs(linear_cka(0.01 * a @ orthogonal(12, 2) + 3.0, a) - 1.0) < 1e-10
    # embedded in more units by orthonormal columns: still the same code
    embed = np.linalg.qr(np.random.default_rng(3).standard_normal((40, 12)))[0]  # [40, 12]
    assert abs(linear_cka(a, a @ embed.T) - 1.0) < 1e-10
    # an anisotropic rescaling of an isotropic code is a different code
    white = np.random.default_rng(4).standard_normal((300, 12))
    assert linear_cka(white, white * np.geomspace(1, 100, 12)) < 0.8


def test_cka_of_independent_codes_is_small():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2000, 10)), rng.standard_normal((2000, 10))
    assert 0 < linear_cka(a, b) < 0.1


def test_cka_equals_the_n_by_n_hsic_formula_on_a_small_case():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((6, 3))
    b = a[:, :2] @ rng.standard_normal((2, 2)) + 0.5 * rng.standard_normal((6, 2))
    assert linear_cka(a, b) == pytest.approx(hsic_cka(a, b), abs=1e-12)
    assert linear_cka(b, a) == pytest.approx(hsic_cka(a, b), abs=1e-12)
    # many units and few trials take the n x n kernel form: the same number
    wide_a, wide_b = rng.standard_normal((6, 30)), rng.standard_normal((6, 40))
    assert 30 * 40 > compare._DUAL_RATIO * 6
    assert linear_cka(wide_a, wide_b) == pytest.approx(hsic_cka(wide_a, wide_b), abs=1e-12)


# ---- RDMs and RSA ---------------------------------------------------------------------------
def test_rdm_is_the_pairwise_distance_matrix():
    x = np.random.default_rng(6).standard_normal((5, 4))
    np.testing.assert_allclose(rdm(x), squareform(pdist(x, "correlation")), atol=1e-12)
    np.testing.assert_allclose(rdm(x, "euclidean"), squareform(pdist(x)), atol=1e-12)
    assert np.all(np.diag(rdm(x)) == 0) and np.array_equal(rdm(x), rdm(x).T)


def test_rsa_by_hand_on_three_conditions():
    # one unit, Euclidean: a's condition means 0, 1, 3 -> pairs (01, 02, 12) at 1, 3, 2, ranks
    # 1, 3, 2; b's means 0, 2, 1 -> 2, 1, 1, ranks 3, 1.5, 1.5. Pearson of the ranks:
    # (-1, 1, 0) . (1, -0.5, -0.5) / (sqrt 2 sqrt 1.5) = -1.5 / sqrt 3 = -sqrt(3) / 2.
    conditions = np.array([0, 0, 1, 1, 2, 2])
    a = np.array([[-1.0], [1.0], [0.5], [1.5], [3.0], [3.0]])  # means 0, 1, 3
    b = np.array([[0.0], [0.0], [2.0], [2.0], [0.5], [1.5]])  # means 0, 2, 1
    r = rsa(a, b, conditions=conditions, metric="euclidean")
    assert r == pytest.approx(-np.sqrt(3) / 2, abs=1e-12)


def test_rsa_on_condition_means_equals_scipy():
    rng = np.random.default_rng(7)
    conditions = np.repeat([3, 9, 4, 1], 5)  # labels need not be 0..m-1
    a, b = rng.standard_normal((20, 6)), rng.standard_normal((20, 3))
    means = [np.stack([x[conditions == c].mean(axis=0) for c in (1, 3, 4, 9)]) for x in (a, b)]
    for metric in ("correlation", "euclidean"):
        want = spearmanr(pdist(means[0], metric), pdist(means[1], metric)).statistic
        assert rsa(a, b, conditions=conditions, metric=metric) == pytest.approx(want, abs=1e-12)


def test_rsa_on_trials_equals_scipy_and_a_code_with_itself_is_one():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((40, 5))
    b = np.tanh(a @ rng.standard_normal((5, 7)))
    want = spearmanr(pdist(a, "correlation"), pdist(b, "correlation")).statistic
    assert rsa(a, b) == pytest.approx(want, abs=1e-12)
    assert rsa(a, a) == pytest.approx(1.0, abs=1e-12)
    # Euclidean RDMs do not change under a rotation of the units
    assert rsa(a, a @ orthogonal(5, 9), metric="euclidean") == pytest.approx(1.0, abs=1e-12)


def test_latent_bins_cut_the_latents_range_into_a_grid():
    latent = np.array([[-0.5, -0.5], [0.5, 0.5], [0.0, -0.5], [-0.26, 0.1]])
    # two bins per axis over [-0.5, 0.5]: cell = 2 * bin(x1) + bin(x2)
    np.testing.assert_array_equal(latent_bins(latent, per_axis=2), [0, 3, 2, 1])
    uniform = np.random.default_rng(10).uniform(-0.5, 0.5, (5000, 2))
    bins = latent_bins(uniform)  # 8 per axis for D = 2
    assert bins.dtype.kind == "i" and bins.min() == 0 and bins.max() == 63
    assert np.unique(bins).size == 64
    six = np.random.default_rng(11).uniform(-1, 1, (5000, 6))
    assert np.unique(latent_bins(six)).size == 2**6


def test_rsa_items_follow_the_documented_order():
    rng = np.random.default_rng(12)
    n = MAX_RSA_TRIALS + 100
    a, b = rng.standard_normal((n, 4)), rng.standard_normal((n, 3))
    latent = rng.uniform(-0.5, 0.5, (n, 2))
    assert rsa_items(a[:50], b[:50]).over == "trials"
    sub = rsa_items(a, b, seed=3)
    assert (sub.over, sub.m) == ("trial subsample", MAX_RSA_TRIALS)
    np.testing.assert_array_equal(sub.a, rsa_items(a, b, seed=3).a)  # seeded
    assert not np.array_equal(sub.a, rsa_items(a, b, seed=4).a)
    binned = rsa_items(a, b, latent=latent)
    assert (binned.over, binned.m) == ("latent bins", 64)
    cells = latent_bins(latent)
    want = np.stack([a[cells == c].mean(axis=0) for c in np.unique(cells)])
    np.testing.assert_allclose(binned.a, want, atol=1e-12)
    given = rsa_items(a, b, latent=latent, conditions=np.arange(n) % 5)
    assert (given.over, given.m) == ("conditions", 5)


# ---- permutation nulls ----------------------------------------------------------------------
def test_a_code_against_itself_has_the_smallest_p_value():
    rng = np.random.default_rng(13)
    a = rng.standard_normal((300, 10))
    c = compare_codes(a, a, n_permutations=99, seed=0)
    assert c.cka == pytest.approx(1.0, abs=1e-12) and c.rsa == pytest.approx(1.0, abs=1e-12)
    assert c.cka_p == pytest.approx(1 / 100) and c.rsa_p == pytest.approx(1 / 100)
    assert c.cka_null_p95 < 0.1 and c.rsa_null_p95 < 0.1
    assert (c.n, c.units_a, c.units_b, c.rsa_over, c.rsa_items) == (300, 10, 10, "trials", 300)
    # a rotated copy: the same code for CKA, and for RSA on Euclidean RDMs
    rotated = a @ orthogonal(10, 14)
    c = compare_codes(a, rotated, metric="euclidean", n_permutations=99, seed=0)
    assert c.cka == pytest.approx(1.0, abs=1e-10) and c.rsa == pytest.approx(1.0, abs=1e-12)
    assert c.cka_p == pytest.approx(1 / 100) and c.rsa_p == pytest.approx(1 / 100)


def test_independent_codes_are_not_significant_and_the_null_is_seeded():
    rng = np.random.default_rng(15)
    a, b = rng.standard_normal((300, 10)), rng.standard_normal((300, 8))
    c = compare_codes(a, b, n_permutations=99, seed=1)
    assert c.cka_p > 0.05 and c.rsa_p > 0.05
    assert c.cka < c.cka_null_p95 * 2 and abs(c.rsa) < 0.05
    assert compare_codes(a, b, n_permutations=99, seed=1) == c
    other = compare_codes(a, b, n_permutations=99, seed=2)
    assert other.cka == c.cka and other.cka_null_p95 != c.cka_null_p95
    none = compare_codes(a, b, n_permutations=0)
    assert none.cka_p is None and none.rsa_null_p95 is None and none.cka == c.cka
    json.dumps(c.to_dict())
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.cka = 0.0  # type: ignore[misc]


def test_the_cka_null_is_the_same_in_both_forms(monkeypatch):
    rng = np.random.default_rng(16)
    a = rng.standard_normal((40, 6))
    b = a[:, :3] @ rng.standard_normal((3, 5)) + rng.standard_normal((40, 5))
    monkeypatch.setattr(compare, "_DUAL_RATIO", 10**9)
    feature = compare._cka_with_null(a, b, 50, np.random.default_rng(0))
    monkeypatch.setattr(compare, "_DUAL_RATIO", 0)
    kernel = compare._cka_with_null(a, b, 50, np.random.default_rng(0))
    assert feature[0] == pytest.approx(kernel[0], abs=1e-12)
    np.testing.assert_allclose(feature[1], kernel[1], atol=1e-12)
    # and each null value is the CKA of b with its rows permuted
    perm = np.random.default_rng(0).permuted(np.broadcast_to(np.arange(40), (50, 40)), axis=1)[0]
    assert feature[1][0] == pytest.approx(hsic_cka(a, b[perm]), abs=1e-12)


def test_the_rsa_null_relabels_the_conditions_of_b():
    rng = np.random.default_rng(17)
    conditions = np.repeat(np.arange(6), 4)
    a, b = rng.standard_normal((24, 5)), rng.standard_normal((24, 5))
    items = rsa_items(a, b, conditions=conditions)
    observed, null = compare._rsa_with_null(items, "correlation", 5, np.random.default_rng(1))
    assert observed == pytest.approx(rsa(a, b, conditions=conditions), abs=1e-12)
    perms = np.random.default_rng(1).permuted(np.broadcast_to(np.arange(6), (5, 6)), axis=1)
    for value, perm in zip(null, perms):
        want = spearmanr(pdist(items.a, "correlation"), pdist(items.b[perm], "correlation"))
        assert value == pytest.approx(want.statistic, abs=1e-12)


# ---- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"b": np.zeros((9, 3)) + np.arange(3)}, "a and b must hold the same trials"),
        ({"a": np.full((10, 4), np.nan)}, "a contains NaN"),
        ({"b": np.ones((10, 3, 2))}, r"b must be a 2-D array \[n trials, units\]"),
        ({"a": np.ones(10)}, "a must be a 2-D array"),
        ({"a": np.empty((10, 4), dtype=object)}, "a must hold real numbers, got dtype object"),
        ({"b": [[1.0, 2.0], [3.0]]}, "b must be a numeric array"),
        ({"b": np.array([["x", "y"]] * 10)}, "b must hold real numbers"),
        ({"latent": np.zeros((9, 2))}, r"latent must be a 2-D array \[n = 10, D\]"),
        ({"conditions": np.linspace(0, 1, 10)}, "conditions must be an integer array"),
        ({"conditions": np.arange(9)}, "conditions must be an integer array"),
        ({"conditions": np.arange(10) % 2}, "at least 3 distinct conditions"),
        ({"metric": "cosine"}, "metric must be one of"),
        ({"n_permutations": -1}, "n_permutations must be an integer >= 0"),
        ({"n_permutations": 2.5}, "n_permutations must be an integer >= 0"),
        ({"seed": -3}, "seed must be an integer >= 0"),
        ({"b": np.ones((10, 3))}, "b is constant over trials"),
        ({"b": np.arange(10.0)[:, None]}, "use metric='euclidean'"),
    ],
)
def test_bad_input_is_one_value_error_naming_the_argument(kwargs, match):
    rng = np.random.default_rng(18)
    args = {"a": rng.standard_normal((10, 4)), "b": rng.standard_normal((10, 3))}
    args.update(kwargs)
    a, b = args.pop("a"), args.pop("b")
    with pytest.raises(ValueError, match=match) as e:
        compare_codes(a, b, n_permutations=args.pop("n_permutations", 5), **args)
    assert "\n" not in str(e.value)


def test_bad_input_to_the_parts():
    with pytest.raises(ValueError, match="x must be a 2-D array"):
        rdm(np.zeros(4))
    with pytest.raises(ValueError, match="per_axis must be an integer >= 2"):
        latent_bins(np.zeros((5, 2)), per_axis=1)
    with pytest.raises(ValueError, match="latent contains NaN"):
        latent_bins(np.full((5, 2), np.inf))
    with pytest.raises(ValueError, match="a and b must hold the same trials"):
        linear_cka(np.ones((5, 2)), np.ones((6, 2)))
