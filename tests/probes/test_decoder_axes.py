"""Decoder-axis angles, the official OOD split for D > 2 and the paper's fresh-trial Adam probe,
on codes whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from multitask_evidence.envs import TaskSpec
from multitask_evidence.probes import decoding as dc
from multitask_evidence.probes import synthetic


def skewed_code(theta_deg: float, n: int = 4000, seed: int = 0, tuned: float = 0.3):
    """h = W x* + noise [n, 29]: 20 units whose [20, 2] W has unit columns at theta_deg, then 6
    near-silent units (SD 1e-4; a ``tuned`` share of their variance follows x*, the rest is
    noise) and 3 constant units. For h = W x the decoder is pinv(W), whose rows are at
    180 - theta: as axes, min(theta, 180 - theta)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.5, 0.5, (n, 2))
    q, _ = np.linalg.qr(rng.standard_normal((20, 2)))
    t = np.radians(theta_deg)
    w = q @ np.array([[1.0, np.cos(t)], [0.0, np.sin(t)]])
    h = x @ w.T + 1e-3 * rng.standard_normal((n, 20))
    drive = x @ rng.standard_normal((2, 6))
    silent = 1e-4 * (
        tuned * drive / drive.std(0) + np.sqrt(1 - tuned**2) * rng.standard_normal((n, 6))
    )
    const = np.broadcast_to(rng.uniform(0, 1, 3), (n, 3))
    return np.hstack([h, silent, const]), x, w


THETAS = (30.0, 60.0, 90.0, 120.0, 150.0)


def test_axis_angle_is_the_analytic_decoder_angle_despite_silent_units():
    old_err, lstsq_err = [], []
    for theta in THETAS:
        h, x, w = skewed_code(theta)
        dual = np.linalg.pinv(w).T  # [20, 2]: the noiseless decoder's weight vectors
        cos = dual[:, 0] @ dual[:, 1] / np.linalg.norm(dual, axis=0).prod()
        assert np.degrees(np.arccos(cos)) == pytest.approx(180 - theta, abs=1e-9)
        truth = min(theta, 180 - theta)
        assert dc.axis_angles(h, x).mean == pytest.approx(truth, abs=1.0), theta
        assert dc.decode(h, x).angle_deg == pytest.approx(truth, abs=1.0), theta
        ood = dc.ood_generalisation(h, x)
        assert all(abs(a - truth) < 1.0 for f in ood.folds for a in f.angle_deg), theta
        # the previous computations: the scoring ridge's standardised weights / scale, and an
        # unpenalised min-norm least squares on the raw states, both led by the silent units
        old = dc.mean_angle(dc.fit_ridge(h, x, alpha=dc.OOD_ALPHA).weights)
        hc = h - h.mean(0)
        lstsq = dc.mean_angle(np.linalg.pinv(hc) @ (x - x.mean(0)))
        old_err.append(abs(old - truth))
        lstsq_err.append(abs(lstsq - truth))
    assert max(old_err) > 10.0
    assert min(lstsq_err) > 10.0


def test_orthogonal_code_gives_90_degrees(paper_mu):
    # a code of x* itself: a code of the noisy mu(T) decoded on an L-shaped training region
    # (whose x1, x2 correlate) has shrinkage axes about 1 degree off orthogonal
    x = paper_mu[0][:4000]
    h = synthetic.linear_code(x, hidden=32, noise=0.01)
    rng = np.random.default_rng(1)
    h = np.hstack([h, 1e-4 * rng.standard_normal((4000, 8)), np.ones((4000, 2))])
    assert dc.decode(h, x).angle_deg == pytest.approx(90.0, abs=1.0)
    assert dc.ood_generalisation(h, x).angle_deg_median == pytest.approx(90.0, abs=1.0)
    res = dc.axis_angles(h, x)
    assert res.matrix[0][1] == res.matrix[1][0] == res.mean
    # no decoder axes in one dimension; constant states have none either
    assert dc.mean_angle(dc.axis_weights(h, x[:, :1])) is None
    assert dc.mean_angle(dc.axis_weights(np.ones((50, 4)), x[:50])) is None


@pytest.mark.parametrize("d", [2, 3, 4, 6])
def test_orthant_split_holds_out_a_quarter_of_the_orthants(d):
    x = np.random.default_rng(d).uniform(-0.5, 0.5, (40000, d))
    q = dc.orthant_index(x)
    masks = dc.split_masks(x, "orthant")
    assert len(masks) == 4
    names = [name for name, _ in masks]
    assert names == (["q0", "q1", "q2", "q3"] if d == 2 else [f"q{k}(x1,x2)" for k in range(4)])
    held = [set(np.unique(q[m]).tolist()) for _, m in masks]
    for k, orthants in enumerate(held):
        # fold k: the orthants k, k + 4, k + 8, ... = (x1, x2) in quadrant k, any other signs
        assert orthants == set(range(k, 2**d, 4))
        assert len(orthants) / 2**d == 0.25
        assert masks[k][1].mean() == pytest.approx(0.25, abs=0.01)
        assert np.all((x[masks[k][1], 0] > 0) == bool(k & 1))
        assert np.all((x[masks[k][1], 1] > 0) == bool(k & 2))
    # the folds differ: they partition the trials
    np.testing.assert_array_equal(sum(m.astype(int) for _, m in masks), 1)
    if d == 2:  # leave one quadrant out, as before
        for (a, ma), (b, mb) in zip(masks, dc.split_masks(x, "one_orthant")):
            assert a == b and np.array_equal(ma, mb)


def test_one_orthant_split_is_still_available():
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (40000, 6))
    masks = dc.split_masks(x, "one_orthant", max_folds=16)
    assert len(masks) == 16
    assert all(m.mean() == pytest.approx(1 / 64, abs=0.003) for _, m in masks)
    assert [n for n, _ in dc.split_masks(x[:, :1], "orthant")] == ["q0", "q1"]


def test_official_decoder_batches():
    for n, k in {2: 3000, 3: 3000, 6: 2000, 12: 1000, 24: 1000}.items():
        assert dc.official_decoder_batches(n) == k
    # other N: the nearest tabulated N on a log scale
    for n, k in {1: 3000, 4: 3000, 5: 2000, 8: 2000, 9: 1000, 48: 1000}.items():
        assert dc.official_decoder_batches(n) == k, n
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_tasks must be a positive integer"):
            dc.official_decoder_batches(bad)
    assert dc.adam_trials_needed(2) == 67200  # 3000 x 16 / (3/4) x 1.05
    assert dc.adam_trials_needed(24) == 22400
    assert dc.adam_trials_needed(config=dc.AdamConfig(n_batches=10, batch_size=3)) == 42
    cfg = dc.official_adam_config(6)
    assert (cfg.n_batches, cfg.batch_size, cfg.lr, cfg.fresh) == (2000, 16, 3e-3, True)
    assert not (cfg.center or cfg.standardize)  # the official decoder sees the raw states


def test_fresh_batches_never_reuse_a_trial_within_a_fit():
    cfg = dc.AdamConfig(n_batches=50, batch_size=16, fresh=True)
    idx = dc.batch_indices(1000, 5, cfg, np.random.default_rng(0))
    assert idx.shape == (50, 5, 16)
    assert idx.min() >= 0 and idx.max() < 1000
    for f in range(5):
        assert np.unique(idx[:, f]).size == 800  # 50 x 16 distinct trials
    assert not np.array_equal(idx[:, 0], idx[:, 1])  # fits draw independently
    # with replacement (the default), 800 draws from 1000 repeat trials
    rep = dc.batch_indices(1000, 5, dc.AdamConfig(n_batches=50), np.random.default_rng(0))
    assert np.unique(rep[:, 0]).size < 800
    with pytest.raises(ValueError, match="need 50 x 16 = 800 training trials per fit, got 799"):
        dc.batch_indices(799, 1, cfg, np.random.default_rng(0))


def test_fresh_adam_protocol_agrees_with_the_closed_form_on_a_linear_code():
    n = dc.adam_trials_needed(24)
    x, mu = synthetic.sample_mu(TaskSpec(encoder="none"), n, seed=5)
    h = synthetic.linear_code(mu, 64, noise=0.05)
    cfg = dc.official_adam_config(24, x)
    assert cfg.fresh and cfg.n_batches == 1000
    adam = dc.ood_generalisation(h, x, method="adam", n_tasks=24, adam=dc.AdamConfig(fresh=True))
    assert adam.estimator == "adam (lr 0.003, 1000 batches of 16, fresh trials, 5 fits/fold)"
    assert adam.adam_config["fresh"] and adam.adam_config["n_batches"] == 1000
    assert all(len(f.r2) == 5 and len(f.angle_deg) == 1 for f in adam.folds)
    closed = dc.ood_generalisation(h, x)
    assert abs(adam.r2_median - closed.r2_median) < 0.01
    # N = 2 needs 3000 batches: this recording is too small for fresh trials
    assert not dc.official_adam_config(2, x).fresh
    with pytest.raises(ValueError, match="fresh Adam batches need 3000 x 16 = 48000"):
        dc.ood_generalisation(h, x, method="adam", n_tasks=2, adam=dc.AdamConfig(fresh=True))


def test_probe_report_runs_the_faithful_adam_protocol_when_the_recording_allows():
    from multitask_evidence.probes.record import record
    from multitask_evidence.probes.report import markdown, probe_recording

    spec = TaskSpec(encoder="none", n_tasks=24)
    agent = synthetic.IdealAgent(spec, hidden=16, noise=1e-2)
    rec = record(agent, spec, 3000, seed=0)
    big = record(agent, spec, dc.adam_trials_needed(24), seed=3)
    kw = dict(halfspace=False, over_time=False, n_shuffles=1)
    faithful = probe_recording(rec, adam=True, rec_adam=big, **kw).results["ood_adam"]
    assert faithful["estimator"] == (
        "adam (lr 0.003, 1000 batches of 16, fresh trials, 5 fits/fold)"
    )
    assert faithful["adam_config"]["fresh"] and faithful["folds"][0]["n_train"] >= 16000
    assert abs(faithful["r2_median"] - 0.976) < 0.01  # the ideal code reaches the ceiling
    small = probe_recording(rec, adam=True, **kw)
    est = small.results["ood_adam"]["estimator"]
    assert est.startswith("adam (lr 0.003, 1000 batches of 16, trials drawn with replacement")
    assert est.endswith("; 3000 trials recorded, fresh batches need 22400")
    assert "decoder: adam (lr 0.003, 1000 batches of 16, trials drawn with" in markdown(small)
