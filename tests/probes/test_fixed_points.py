"""The fixed-point finder on hand-built linear RNNs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multitask_evidence.probes.fixed_points import find_fixed_points, jacobians


def _linear_rnn(eigs, seed=0, bias=None):
    h = len(eigs)
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((h, h)))[0]
    w = q @ np.diag(eigs) @ q.T
    wt = torch.tensor(w)
    bt = torch.zeros(h, dtype=torch.float64) if bias is None else torch.tensor(bias)

    def fn(x):
        return x @ wt.T.to(x.dtype) + bt.to(x.dtype)

    return fn, w, q


def test_plane_attractor_is_found_with_two_marginal_modes():
    eigs = np.array([1.0, 1.0, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, -0.2])
    fn, w, q = _linear_rnn(eigs)
    init = np.random.default_rng(1).standard_normal((40, 10))
    res = find_fixed_points(fn, init, dtype="float64", n_iter=300)
    assert res.n_found > 10  # a continuum: many distinct points survive deduplication
    plane = q[:, :2] @ q[:, :2].T
    np.testing.assert_allclose(res.points, res.points @ plane, atol=1e-9)  # all on the plane
    np.testing.assert_allclose(
        np.sort(res.eigenvalues.real, axis=1)[:, ::-1],
        np.tile(np.sort(eigs)[::-1], (res.n_found, 1)),
        atol=1e-9,
    )
    assert res.attractor_dim == 2
    assert (res.n_marginal == 2).all()
    # the finder moves each start to the nearest point of the plane (Gauss-Newton polish)
    np.testing.assert_allclose(res.points, res.points @ plane)


def test_isolated_fixed_point_and_its_spectrum():
    eigs = np.array([0.9, 0.8, 0.5, 0.3, -0.4, 0.0])
    b = np.random.default_rng(2).standard_normal(6)
    fn, w, _ = _linear_rnn(eigs, seed=3, bias=b)
    h_star = np.linalg.solve(np.eye(6) - w, b)
    init = np.random.default_rng(4).standard_normal((30, 6)) * 3
    res = find_fixed_points(fn, init, dtype="float64", n_iter=300)
    assert res.n_found == 1
    np.testing.assert_allclose(res.points[0], h_star, atol=1e-9)
    np.testing.assert_allclose(np.sort(res.eigenvalues[0].real), np.sort(eigs), atol=1e-9)
    assert res.attractor_dim == 0


def test_float32_relu_map():
    # relu(W h + b) with W = 0.5 I, b > 0: unique fixed point h = 2 b
    b = torch.tensor([0.2, 0.4, 0.6])

    def fn(x):
        return torch.relu(0.5 * x + b.to(x.dtype))

    res = find_fixed_points(fn, np.random.default_rng(0).uniform(0, 2, (16, 3)))
    assert res.n_found == 1
    np.testing.assert_allclose(res.points[0], [0.4, 0.8, 1.2], atol=1e-5)
    jac = jacobians(fn, torch.tensor(res.points, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(jac[0], 0.5 * np.eye(3), atol=1e-6)


def test_bad_input():
    fn, _, _ = _linear_rnn(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"initial states must be \[K >= 1, H\]"):
        find_fixed_points(fn, np.zeros(2))
    with pytest.raises(ValueError, match="NaN"):
        find_fixed_points(fn, np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="fn must map"):
        find_fixed_points(lambda x: x[:, :1], np.zeros((3, 2)), dtype="float64")


@pytest.mark.parametrize(
    "eigs, dim",
    [([1.0, 1.0, 0.5, 0.3, 0.1], 2), ([1.0, 0.7, 0.5, 0.3, 0.1], 1)],
    ids=["plane", "line"],
)
def test_frozen_units_do_not_count_as_attractor_modes(eigs, dim):
    # 5 active units hold a plane (or line) attractor (eigenvalues 1 in a rotated basis); 3
    # frozen units keep their value (h -> h: eigenvalue 1, like a GRU unit with a shut update
    # gate) and never vary over the visited states
    eigs = np.array(eigs)
    _, w, q = _linear_rnn(eigs, seed=5)
    wt = torch.tensor(w)

    def fn(x):
        active = x[:, :5] @ wt.T.to(x.dtype)
        return torch.cat([active, x[:, 5:]], dim=1)

    rng = np.random.default_rng(6)
    visited = np.concatenate(
        [rng.standard_normal((40, 5)), np.tile([0.3, -0.7, 0.9], (40, 1))], axis=1
    )
    res = find_fixed_points(fn, visited, dtype="float64", n_iter=300)
    assert res.n_found > 10
    # all of J: the attractor's modes + 3 frozen units; in the visited span: the attractor's
    assert (res.n_marginal_all == dim + 3).all()
    assert (res.n_marginal == dim).all() and res.attractor_dim == dim
    np.testing.assert_allclose(res.points[:, 5:], np.tile([0.3, -0.7, 0.9], (res.n_found, 1)))
    full = find_fixed_points(fn, visited, dtype="float64", n_iter=300, span_variance=None)
    assert full.attractor_dim == dim + 3 and full.span_dim == 8
    with pytest.raises(ValueError, match="span_variance"):
        find_fixed_points(fn, visited, span_variance=1.5)
