"""CCGP, parallelism, shattering, DCI, sparseness, PCA and tuning maps on known codes."""

from __future__ import annotations

import numpy as np
import pytest

from probes import dci as dci_mod
from probes import geometry, sparseness, synthetic


def test_linear_code_is_abstract(paper_mu):
    x, mu = paper_mu
    x, mu = x[:10000], mu[:10000]
    g = geometry.abstraction_geometry(synthetic.linear_code(mu, 64, 0.01), x, n_shuffles=5)
    assert [d.name for d in g.dichotomies][:2] == ["x1", "x2"]
    assert g.n_dichotomies == 3
    # CCGP is bounded by how often sign(mu_d) = sign(x_d) (noise flips trials near the axes)
    sign_acc = float(np.mean(np.sign(mu) == np.sign(x)))
    assert g.ccgp_factors == pytest.approx(sign_acc, abs=0.01)
    assert g.parallelism_factors > 0.99
    xor = g.dichotomies[2]
    assert xor.ccgp < 0.1  # the XOR split anti-generalises in a factorised code
    assert xor.parallelism == pytest.approx(-1.0, abs=0.02)
    assert g.shattering == pytest.approx((2 * sign_acc + 0.5) / 3, abs=0.02)
    assert g.ccgp_factors_null_p95 < 0.55
    assert g.parallelism_factors_null_mean < 0.5


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
    assert g.ccgp_factors_null_mean is None


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
