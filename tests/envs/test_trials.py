"""The trial generator: the generative model of docs/science.md §2, checked statistically."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from multitask_evidence.envs import Region, TaskSpec, generate, orthant_index, task_geometry
from multitask_evidence.envs.trials import DECISION, FIXATION, STIMULUS, build_trials, noise_scales

PAPER = TaskSpec()


def test_shapes_periods_and_go_channel():
    b = generate(PAPER, 7, 0)
    assert b.latent.shape == (7, 2) and b.evidence.shape == (7, 22, 2)
    assert b.obs.shape == (7, 22, 41) and b.obs.dtype == np.float32
    assert b.labels.shape == (7, 24) and b.targets.shape == (7, 22, 24) and b.mask.shape == (7, 22)
    assert list(b.period) == [FIXATION] + [STIMULUS] * 20 + [DECISION]
    assert np.all(b.obs[:, :21, -1] == 1) and np.all(b.obs[:, 21, -1] == 0)
    # evidence is zero outside the stimulus period, and the encoder sees f(0) there
    assert np.all(b.evidence[:, 0] == 0) and np.all(b.evidence[:, 21] == 0)
    f0 = task_geometry(PAPER).encode(np.zeros(2))
    np.testing.assert_allclose(b.obs[:, 0, :-1], np.broadcast_to(f0, (7, 40)))


def test_same_seed_same_trials_and_different_seed_differs():
    a, b, c = (
        generate(PAPER, 64, 5),
        generate(PAPER, 64, np.random.default_rng(5)),
        generate(PAPER, 64, 6),
    )
    for name in ("latent", "evidence", "obs", "labels", "targets"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.allclose(a.latent, c.latent)


def test_fixed_parts_come_from_the_spec_seed():
    g0, g1 = (
        task_geometry(TaskSpec(latent_dim=4, seed=0)),
        task_geometry(TaskSpec(latent_dim=4, seed=1)),
    )
    assert not np.allclose(g0.normals, g1.normals)
    np.testing.assert_array_equal(g0.normals, task_geometry(TaskSpec(latent_dim=4, seed=0)).normals)
    np.testing.assert_allclose(np.linalg.norm(g0.normals, axis=1), 1.0)
    w_a = task_geometry(TaskSpec(seed=2)).encoder[0]
    w_b = task_geometry(TaskSpec(seed=3)).encoder[0]
    assert w_a.shape == (2, 100) and not np.allclose(w_a, w_b)


def test_paper_lines_and_labels():
    geo = task_geometry(PAPER)
    phi = (np.arange(24) + 0.5) * np.pi / 24
    x = np.array([[0.3, -0.1], [-0.2, 0.45]])
    # y_i = 1[c_i . x > 0] with c_i = (-sin phi_i, cos phi_i). SPEC also writes this as
    # 1[x2 > tan(phi_i) x1]; the two agree for phi_i < pi/2 and are label-flipped beyond it
    # (same boundary lines). We keep the unit-normal form, which the theory formulas use.
    expected = (np.cos(phi) * x[:, 1:2] - np.sin(phi) * x[:, 0:1] > 0).astype(np.float32)
    np.testing.assert_array_equal(geo.labels(x), expected)
    first_half = phi < np.pi / 2
    tan_form = x[:, 1:2] > np.tan(phi) * x[:, 0:1]
    np.testing.assert_array_equal(geo.labels(x)[:, first_half], tan_form[:, first_half])


def test_noise_sd_and_mean_every_kind():
    n = 20_000
    for kind in ("gaussian", "anisotropic", "ar1", "gumbel"):
        spec = PAPER.replace(noise=kind, encoder="none")
        b = generate(spec, n, 1)
        eps = b.stimulus_evidence - b.latent[:, None, :]
        sd = eps.reshape(-1, 2).std(axis=0)
        np.testing.assert_allclose(sd, noise_scales(spec), rtol=0.02, err_msg=kind)
        assert np.all(np.abs(eps.reshape(-1, 2).mean(axis=0)) < 0.01), kind
    # AR(1): lag-1 autocorrelation is the coefficient
    b = generate(PAPER.replace(noise="ar1"), n, 2)
    e = (b.stimulus_evidence - b.latent[:, None, :])[..., 0]
    r = np.corrcoef(e[:, 5], e[:, 6])[0, 1]
    assert abs(r - 0.7) < 0.02


def test_prior_uniform_moments_and_label_balance():
    b = generate(PAPER, 40_000, 3)
    assert np.all(np.abs(b.latent) <= 0.5)
    np.testing.assert_allclose(b.latent.var(axis=0), 1 / 12, rtol=0.03)
    # every task through the origin of a symmetric prior is balanced: 0.5 +- 4 SE
    assert np.all(np.abs(b.labels.mean(axis=0) - 0.5) < 4 * 0.5 / np.sqrt(40_000))


def test_copula_correlation():
    rho = 0.6
    b = generate(PAPER.replace(prior="correlated", rho=rho, encoder="none"), 40_000, 4)
    assert np.all(np.abs(b.latent) <= 0.5)
    np.testing.assert_allclose(b.latent.var(axis=0), 1 / 12, rtol=0.03)  # uniform marginals
    # the Gaussian copula's normal scores are correlated rho
    z = norm.ppf(b.latent + 0.5)
    assert abs(np.corrcoef(z.T)[0, 1] - rho) < 0.015


def test_region_orthants_and_halfspace():
    b = generate(PAPER, 6000, 0, region=Region(orthants=(0, 1, 3)))
    counts = np.bincount(orthant_index(b.latent), minlength=4)
    assert counts[2] == 0 and np.all(np.abs(counts[[0, 1, 3]] - 2000) < 200)
    h = generate(PAPER.replace(latent_dim=3), 2000, 0, region={"halfspace": (1.0, -1.0, 0.0)})
    assert np.all(h.latent[:, 0] > h.latent[:, 1])
    c = generate(PAPER.replace(prior="correlated", rho=0.5), 500, 0, region={"orthants": [2]})
    assert np.all(orthant_index(c.latent) == 2)


def test_given_latents_and_targets():
    lat = np.array([[0.4, 0.4], [-0.3, 0.1]])
    b = generate(PAPER, 2, 0, latent=lat)
    np.testing.assert_array_equal(b.latent, lat)
    np.testing.assert_array_equal(b.targets[:, 21], b.labels)
    assert np.all(b.targets[:, :21] == 0.5) and np.all(b.mask == 1)
    d = generate(PAPER.replace(targets="decision_only"), 3, 0)
    assert np.all(d.mask[:, :21] == 0) and np.all(d.mask[:, 21] == 1)


def test_ddm_targets_are_bounded_running_evidence():
    spec = PAPER.replace(targets="ddm_bound", ddm_bound=1.0, sigma=0.05)
    b = generate(spec, 500, 0)
    c = task_geometry(spec).normals
    run = np.cumsum(b.evidence @ c.T, axis=1)
    assert np.all(np.abs(b.targets) <= 1.0 + 1e-6)
    never = ~np.any(np.abs(run) >= 1.0, axis=1)  # [B, N] tasks whose sum never hits the bound
    np.testing.assert_allclose(
        b.targets.transpose(0, 2, 1)[never], run.transpose(0, 2, 1)[never], atol=1e-5
    )
    hit = np.abs(b.targets[:, -1]) == 1.0
    assert hit.mean() > 0.3  # strong evidence reaches the bound
    # absorbed: the final target has the sign of the latent's side for strong evidence
    agree = np.sign(b.targets[:, -1])[hit] == np.sign(b.latent @ c.T)[hit]
    assert agree.mean() > 0.95


@pytest.mark.parametrize(
    "kw",
    [
        {"boundaries": "hyperbolic"},
        {"boundaries": "circles"},
        {"latent_dim": 1},
        {"latent_dim": 5},
        {"encoder": "quadratic"},
        {"encoder": "none"},
        {"offset_scale": 0.2},
    ],
)
def test_variants_generate(kw):
    spec = PAPER.replace(**kw)
    b = generate(spec, 256, 0)
    assert b.obs.shape == (256, spec.n_steps, spec.obs_dim)
    assert np.all(np.isfinite(b.obs))
    np.testing.assert_array_equal(b.labels, task_geometry(spec).labels(b.latent))


def test_hyperbolic_and_circle_labels():
    geo = task_geometry(PAPER.replace(boundaries="hyperbolic"))
    x = np.array([[0.45, 0.45], [-0.45, 0.45], [0.01, 0.01]])
    lab = geo.labels(x)
    assert lab[0, geo.quadrants == 3].all() and not lab[0, geo.quadrants != 3].any()
    assert lab[1, geo.quadrants == 2].all() and lab[2].sum() == 0
    circ = task_geometry(PAPER.replace(boundaries="circles"))
    assert circ.labels(np.array([[0.49, 0.49]])).all() and not circ.labels(np.zeros((1, 2))).any()


def test_bad_generator_input():
    with pytest.raises(ValueError, match="n"):
        generate(PAPER, 0, 0)
    with pytest.raises(ValueError, match="latent"):
        generate(PAPER, 2, 0, latent=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="orthants"):
        generate(PAPER, 2, 0, region={"orthants": [4]})
    with pytest.raises(ValueError, match="orthants"):
        generate(PAPER, 2, 0, region={"orthants": []})
    with pytest.raises(ValueError, match="halfspace"):
        generate(PAPER, 2, 0, region={"halfspace": [1.0]})
    with pytest.raises(ValueError, match="region key"):
        generate(PAPER, 2, 0, region={"quadrant": 1})


# ---- the official code's free-RT targets (Fig. 5a) -------------------------------------------
FREE = TaskSpec(
    targets="free_rt_paper", n_tasks=2, stimulus_steps=3, encoder="none", ddm_bound=1.0
)  # lines at 45 and 135 degrees: tan(phi) = 1, -1; steps: fixation, 3 stimulus, 1 decision


def _hand_free_rt(spec, evidence, bound):
    """Plain loop: S += g_i (X2 - tan(phi_i) X1) at every step, absorbed once |S| >= bound;
    g_i = sign(cos phi_i) orients it like the label 1[c_i . x* > 0]."""
    n = spec.n_tasks
    phis = [(i + 0.5) * np.pi / n for i in range(n)]
    tans = [np.tan(p) for p in phis]
    signs = [np.sign(np.cos(p)) for p in phis]
    out = np.zeros(evidence.shape[:2] + (n,))
    for b in range(evidence.shape[0]):
        for i in range(n):
            run, stuck = 0.0, None
            for k in range(evidence.shape[1]):
                run += signs[i] * (evidence[b, k, 1] - tans[i] * evidence[b, k, 0])
                if stuck is None and abs(run) >= bound:
                    stuck = np.sign(run) * bound
                out[b, k, i] = run if stuck is None else stuck
    return out


def test_free_rt_targets_by_hand():
    # trial 0: no noise, x* = (0.3, 0.1): drifts X2 - X1 = -0.2 and -(X2 + X1) = -0.4 per step
    # (cos 135 deg < 0 flips task 1), 4 evidence steps (3 stimulus + the decision step); task 1
    # reaches the bound 1 at step 3.
    # trial 1: x* = 0, X2 = +0.6, +0.6, -0.6, -0.6: the sums hit +1 and -1 at step 2 and stay
    # there (unabsorbed they would fall back to +-0.6 and 0).
    latent = np.array([[0.3, 0.1], [0.0, 0.0]])
    noise = np.zeros((2, 4, 2))
    noise[1, :, 1] = [0.6, 0.6, -0.6, -0.6]
    b = build_trials(FREE, latent, noise)
    expected = np.array(
        [
            [[0, 0], [-0.2, -0.4], [-0.4, -0.8], [-0.6, -1.0], [-0.8, -1.0]],
            [[0, 0], [0.6, -0.6], [1.0, -1.0], [1.0, -1.0], [1.0, -1.0]],
        ]
    )
    np.testing.assert_allclose(b.targets, expected, atol=1e-6)
    # not unit-normalised: the 'ddm_bound' targets of the same trial are c_i . X = drift / sqrt 2
    unit = build_trials(FREE.replace(targets="ddm_bound", ddm_bound=10.0), latent, noise[:, :3])
    free_sums = np.array([[-0.2, -0.4], [-0.4, -0.8], [-0.6, -1.2]])  # trial 0, unbounded
    np.testing.assert_allclose(unit.targets[0, 1:4], free_sums / np.sqrt(2), atol=1e-6)
    # evidence (and the encoded observation) continue at the decision step
    assert FREE.evidence_steps == 4 and FREE.evidence_stop == FREE.n_steps == 5
    np.testing.assert_allclose(b.evidence[0, 4], [0.3, 0.1])
    np.testing.assert_allclose(b.obs[0, 4, :2], [0.3, 0.1])
    assert b.obs[0, 4, -1] == 0 and b.obs[0, 3, -1] == 1  # the go channel is unchanged
    assert b.stimulus_evidence.shape == (2, 4, 2) and np.all(b.mask == 1)


def test_free_rt_targets_match_the_loop_on_random_trials():
    spec = TaskSpec(targets="free_rt_paper", n_tasks=6, stimulus_steps=8, ddm_bound=2.0)
    b = generate(spec, 40, 3)
    assert b.evidence.shape == (40, 10, 2) and np.all(b.evidence[:, 0] == 0)
    assert np.all(b.evidence[:, 9] != 0)  # the decision step carries evidence
    want = _hand_free_rt(spec, b.evidence, 2.0)
    np.testing.assert_allclose(b.targets, want, atol=1e-5)
    assert 0.1 < np.mean(np.abs(b.targets[:, -1]) == 2.0) < 1.0  # some, not all, absorbed
    # the sign of an absorbed sum agrees with the label
    hit = np.abs(b.targets[:, -1]) == 2.0
    assert np.mean((b.targets[:, -1] > 0)[hit] == (b.labels > 0.5)[hit]) > 0.9
    # odd N has a vertical line (phi = pi/2): tan is ~1.6e16, the sum is absorbed at once
    odd = generate(spec.replace(n_tasks=3), 50, 0)
    assert np.all(np.isfinite(odd.targets))
    np.testing.assert_array_equal(np.abs(odd.targets[:, 1:, 1]), 2.0)
