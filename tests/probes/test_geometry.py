"""CCGP, parallelism, shattering, DCI, sparseness, PCA and tuning maps on known codes."""

from __future__ import annotations

import numpy as np
import pytest

from multitask_evidence.probes import dci as dci_mod
from multitask_evidence.probes import geometry, sparseness, synthetic


def test_linear_code_is_abstract(paper_mu):
    x, mu = paper_mu
    x, mu = x[:10000], mu[:10000]
    g = geometry.abstraction_geometry(synthetic.linear_code(mu, 64, 0.01), x, n_shuffles=5)
    assert [d.name for d in g.dichotomies][:2] == ["x1", "x2"]
    assert g.n_dichotomies == 3
    # CCGP is bounded by how often sign(mu_d) = sign(x_d) (noise flips trials near the axes)
    sign_acc = float(np.mean(np.sign(mu) == np.sign(x)))
    assert sign_acc - 0.015 < g.ccgp_factors < sign_acc + 0.003
    assert g.classifier == "svm" and g.classifier_params["C"] == geometry.SVM_C
    ridge = geometry.abstraction_geometry(
        synthetic.linear_code(mu, 64, 0.01), x, n_shuffles=0, classifier="ridge"
    )
    assert ridge.classifier == "ridge" and ridge.classifier_params["alpha"] == 1e-3
    assert ridge.ccgp_factors == pytest.approx(sign_acc, abs=0.01)
    assert g.parallelism_factors > 0.99
    xor = g.dichotomies[2]
    assert xor.ccgp < 0.1  # the XOR split anti-generalises in a factorised code
    assert xor.parallelism == pytest.approx(-1.0, abs=0.02)
    assert g.shattering == pytest.approx((2 * sign_acc + 0.5) / 3, abs=0.02)
    assert g.ccgp_factors_null_shuffle_p95 < 0.55
    assert g.parallelism_factors_null_shuffle_mean < 0.5
    # the geometric null keeps the clusters but scrambles their arrangement
    assert g.ccgp_factors_null_geometric_mean == pytest.approx(0.5, abs=0.15)
    assert g.ccgp_factors > g.ccgp_factors_null_geometric_p95 + 0.05
    assert g.parallelism_factors > g.parallelism_factors_null_geometric_p95 + 0.5
    assert g.n_null == 5 and xor.ccgp_null_geometric_mean is None  # nulls on factors only


def test_noise_code_sits_at_the_null(paper_mu):
    x, _ = paper_mu
    g = geometry.abstraction_geometry(synthetic.noise_code(8000, 32), x[:8000], n_shuffles=5)
    assert g.ccgp_factors == pytest.approx(0.5, abs=0.03)
    assert g.shattering == pytest.approx(0.5, abs=0.03)


def test_all_pairs_ccgp_tops_out_at_three_quarters(paper_mu):
    x, mu = paper_mu
    g = geometry.abstraction_geometry(
        synthetic.linear_code(mu[:8000]), x[:8000], pairs="all", n_shuffles=0
    )
    assert g.ccgp_factors == pytest.approx(0.75 * 0.96 + 0.25 * 0.0 + 0.02, abs=0.04)
    assert g.ccgp_factors_null_shuffle_mean is None
    assert g.ccgp_factors_null_geometric_p95 is None


def test_linear_svm_is_liblinears_optimum():
    """linear_svm solves LinearSVC's problem (squared hinge, penalised bias, balanced weights)."""
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(0)
    for n, noise, thr in [(400, 0.5, 0.3), (900, 0.02, 0.0), (300, 3.0, -0.5)]:
        x = rng.standard_normal((n, 20)) * rng.uniform(0.1, 3, 20)
        y = x[:, 0] + 0.5 * x[:, 1] + noise * rng.standard_normal(n) > thr
        w, b = geometry.linear_svm(x, y, 1.0)
        ref = LinearSVC(C=1.0, class_weight="balanced", dual=False, tol=1e-10, max_iter=10000)
        ref.fit(x, y)
        np.testing.assert_allclose(w, ref.coef_[0], atol=1e-6)
        assert b == pytest.approx(ref.intercept_[0], abs=1e-6)
    with pytest.raises(ValueError, match="both classes"):
        geometry.linear_svm(x, np.ones(len(x), dtype=bool))


def test_abstract_codes_beat_both_nulls(paper_mu):
    x, mu = paper_mu
    x, mu = x[:4000], mu[:4000]
    for h in (synthetic.linear_code(mu, 64, 0.01), synthetic.relu_code(mu, 64)):
        g = geometry.abstraction_geometry(h, x, n_shuffles=8)
        assert g.ccgp_factors > 0.9
        assert g.ccgp_factors > g.ccgp_factors_null_geometric_p95 + 0.05
        assert g.ccgp_factors > g.ccgp_factors_null_shuffle_p95 + 0.3
        assert g.ccgp_factors_null_shuffle_mean == pytest.approx(0.5, abs=0.02)
        assert g.shattering > 0.75  # every split but XOR stays decodable


def test_random_code_sits_at_the_geometric_null(paper_mu):
    """Condition means at random positions: each dichotomy is decodable, but CCGP is a draw
    from the same distribution as the geometric null (it is not significant for any code)."""
    x, _ = paper_mu
    x = x[:4000]
    q = geometry.orthant_index(x)
    ccgp, null_mean, beyond_p95 = [], [], 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        h = rng.standard_normal((4, 64))[q] + rng.standard_normal((4000, 64))
        g = geometry.abstraction_geometry(h, x, n_shuffles=8, seed=seed)
        assert g.shattering > 0.99  # clusters are separable...
        assert g.parallelism_factors < 0.5
        beyond_p95 += g.ccgp_factors > g.ccgp_factors_null_geometric_p95
        ccgp.append(g.ccgp_factors)
        null_mean.append(g.ccgp_factors_null_geometric_mean)
    # ...but not abstract: about 1 in 20 codes crosses its null's 95th percentile by chance
    assert beyond_p95 <= 1
    assert np.mean(ccgp) == pytest.approx(np.mean(null_mean), abs=0.1)
    assert np.mean(null_mean) == pytest.approx(0.5, abs=0.08)


def test_unit_shuffle_permutes_units_per_condition():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((200, 6)) * np.arange(1, 7) + np.arange(6)
    cond = np.repeat(np.arange(4), 50)
    out = geometry.unit_shuffle(h, cond, np.random.default_rng(1))
    z = (h - h.mean(axis=0)) / h.std(axis=0)
    perms = []
    for c in range(4):
        rows = cond == c
        # one permutation of the units, shared by every trial of the condition
        perm = [int(np.flatnonzero(np.isclose(z[rows][0], v))[0]) for v in out[rows][0]]
        np.testing.assert_allclose(out[rows], z[rows][:, perm])
        perms.append(tuple(perm))
    assert len(set(perms)) > 1


def test_dichotomies_enumeration():
    assert len(geometry.balanced_dichotomies(4, 2)) == 3
    d8 = geometry.balanced_dichotomies(8, 3)
    assert len(d8) == 35 and len({s[0] for s in d8}) == 35
    assert d8[0] == ((0, 2, 4, 6), (1, 3, 5, 7))  # factor x1 first
    d16 = geometry.balanced_dichotomies(16, 4, max_dichotomies=20)
    assert len(d16) == 20


def test_geometry_bad_input(paper_mu):
    x, mu = paper_mu
    h = synthetic.linear_code(mu[:400])
    q = geometry.orthant_index(x[:400])
    keep = np.concatenate([np.flatnonzero(q != 0), np.flatnonzero(q == 0)[:3]])
    with pytest.raises(ValueError, match="every condition needs >= 10 trials"):
        geometry.abstraction_geometry(h[keep], x[:400][keep])
    with pytest.raises(ValueError, match="pairs must be 'adjacent' or 'all'"):
        geometry.abstraction_geometry(h, x[:400], pairs="some")
    with pytest.raises(ValueError, match="classifier must be one of"):
        geometry.abstraction_geometry(h, x[:400], classifier="lda")


def test_dci_rewards_axis_alignment_only(paper_mu):
    x, mu = paper_mu
    x, mu = x[:6000], mu[:6000]
    rng = np.random.default_rng(0)
    aligned = np.concatenate([mu, 0.01 * rng.standard_normal((6000, 14))], axis=1)
    rotated = synthetic.linear_code(mu, 16, 0.01)
    a = dci_mod.dci(aligned, x)
    r = dci_mod.dci(rotated, x)
    assert a.disentanglement > 0.95 and a.completeness > 0.9
    assert r.disentanglement < 0.5 and r.completeness < 0.5
    # both are equally informative: the code is the same up to a rotation
    assert a.informativeness_r2 == pytest.approx(r.informativeness_r2, abs=0.01)
    assert a.informativeness_r2 > 0.95


def test_lifetime_sparseness_values():
    one_hot = np.eye(10)  # each unit answers one of 10 stimuli
    s = sparseness.lifetime_sparseness(one_hot)
    np.testing.assert_allclose(s.per_unit, 1.0)
    flat = sparseness.lifetime_sparseness(np.ones((10, 3)))
    np.testing.assert_allclose(flat.per_unit, 0.0)
    half = sparseness.lifetime_sparseness(np.array([[1.0], [1.0], [0.0], [0.0]]))
    # [1 - (1/2)^2 / (1/2)] / (1 - 1/4) = (1/2) / (3/4)
    assert half.per_unit[0] == pytest.approx(2 / 3)
    silent = sparseness.lifetime_sparseness(np.zeros((5, 2)))
    assert silent.n_silent == 2 and np.isnan(silent.mean)
    with pytest.raises(ValueError, match="NaN"):
        sparseness.lifetime_sparseness(np.full((3, 2), np.nan))


def test_sparseness_of_signed_states_and_active_fraction():
    rng = np.random.default_rng(0)
    one_hot = np.eye(10)
    # an offset and a sign flip leave the 'min' baseline's measure unchanged
    shifted = sparseness.lifetime_sparseness(one_hot - 0.5, baseline="min")
    np.testing.assert_allclose(shifted.per_unit, 1.0)
    assert sparseness.lifetime_sparseness(one_hot + 3.0).mean < 0.1  # 'zero' sees the offset
    signed = rng.standard_normal((500, 4))
    a = sparseness.lifetime_sparseness(signed, baseline="min").per_unit
    b = sparseness.lifetime_sparseness(5.0 + 2.0 * signed, baseline="min").per_unit
    np.testing.assert_allclose(a, b)  # offset and gain invariant
    assert 0.0 < min(a) and max(a) < 0.3  # a Gaussian above its minimum is dense
    rates = np.maximum(signed, 0.0)
    rates[0] = 0.0  # every unit's minimum is 0: the two baselines agree on rates
    np.testing.assert_allclose(
        sparseness.lifetime_sparseness(rates).per_unit,
        sparseness.lifetime_sparseness(rates, baseline="min").per_unit,
    )
    with pytest.raises(ValueError, match="baseline must be"):
        sparseness.lifetime_sparseness(one_hot, baseline="mean")
    frac = sparseness.active_fraction(np.array([[1.0, 0.0], [0.0, 0.0], [2.0, -1.0], [3.0, 0.5]]))
    np.testing.assert_allclose(frac, [0.75, 0.25])
    with pytest.raises(ValueError, match="responses must be"):
        sparseness.active_fraction(np.ones(4))


def test_pca_and_participation_ratio():
    rng = np.random.default_rng(0)
    h = (
        rng.standard_normal((20000, 3))
        @ np.diag([3.0, 3.0, 0.0])
        @ np.linalg.qr(rng.standard_normal((3, 3)))[0]
    )
    p = sparseness.pca(h)
    assert p.participation_ratio == pytest.approx(2.0, abs=0.05)
    assert sum(p.explained_variance_ratio[:2]) == pytest.approx(1.0)
    assert p.n_90 == 2
    traj = sparseness.pca(h.reshape(1000, 20, 3))
    assert traj.participation_ratio == pytest.approx(p.participation_ratio)


def test_tuning_maps_recover_linear_tuning():
    grid = sparseness.latent_grid(8, 3, 2)
    assert grid.shape == (192, 2)
    h = np.stack([grid[:, 0], -grid[:, 1], np.maximum(grid[:, 0], 0)], axis=1)
    tm = sparseness.tuning_maps(h, grid, 8)
    assert tm.maps.shape == (3, 8, 8)
    assert tm.corr[0, 0] == pytest.approx(1.0) and tm.corr[1, 1] == pytest.approx(-1.0)
    assert tm.maps[0][:, 0] == pytest.approx((np.arange(8) + 0.5) / 8 - 0.5)
    with pytest.raises(ValueError, match="every grid cell needs a trial"):
        sparseness.tuning_maps(h[:100], grid[:100], 8)
