"""Controls: the untrained twin is the trainer's step-0 network, the input baselines and the
output-implied read-outs decode what they should, and probe_run puts them in the headline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multitask_evidence import agents
from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.probes.controls import (
    CONTROLS,
    OUTPUT_CONTROLS_NOTE,
    calibration,
    ideal_decision_probs,
    logits_from_probs,
    score_features,
    stimulus_average,
)
from multitask_evidence.probes.record import record
from multitask_evidence.probes.theory import ceiling


def test_stimulus_average_averages_only_the_stimulus_steps():
    spec = TaskSpec(n_tasks=3, stimulus_steps=5, encoder="none")
    b = generate(spec, 64, np.random.default_rng(0))
    avg = stimulus_average(b.obs, b.period)
    assert avg.shape == (64, spec.obs_dim)
    stim = b.period == 1
    assert stim.sum() == 5
    np.testing.assert_allclose(avg, b.obs[:, stim].mean(axis=1), rtol=1e-5, atol=1e-6)
    # with no encoder the evidence channels' average is the evidence mean mu(T)
    np.testing.assert_allclose(avg[:, :2], b.evidence[:, stim].mean(axis=1), atol=1e-6)
    with pytest.raises(ValueError, match="no stimulus step"):
        stimulus_average(b.obs, np.zeros_like(b.period))
    with pytest.raises(ValueError, match=r"obs must be \[n, T, O\]"):
        stimulus_average(b.obs[0], b.period)


def test_evidence_mean_control_reaches_the_r2_of_mu():
    spec = TaskSpec(n_tasks=2)
    fit, test = (generate(spec, 8192, np.random.default_rng(s)) for s in (1, 2))
    stim = fit.period == 1
    sc = score_features(
        "mu",
        fit.evidence[:, stim].mean(axis=1),
        fit.latent,
        test.evidence[:, stim].mean(axis=1),
        test.latent,
    )
    # the fitted r^2 of mu(T) is the paper's Eq. 7, 1 - 12 sigma^2 / T = 0.976, up to sampling
    # error
    assert sc.id_r2 == pytest.approx(ceiling(spec), abs=0.006)
    assert sc.ood_r2 == pytest.approx(ceiling(spec), abs=0.012)
    assert abs(sc.angle_deg - 90) < 10  # mu's axes are the latent's own
    assert sc.headline()["mu_ood_r2"] == sc.ood_r2
    with pytest.raises(ValueError, match="control name must be one of"):
        score_features("nope", fit.latent, fit.latent, test.latent, test.latent)
    assert set(CONTROLS) == {"untrained", "input", "mu", "outputs", "logits", "ideal_outputs"}


def test_untrained_twin_is_the_network_the_trainer_started_from(tmp_path):
    torch.set_num_threads(1)
    spec = TaskSpec(n_tasks=3, seed=4)
    for arch in ("rnn", "transformer"):
        # an lr so small that 1 step of Adam moves every weight by ~1e-12: the trained weights
        # are the trainer's step-0 weights
        cfg = agents.TrainConfig(
            arch=arch,
            steps=1,
            lr=1e-12,
            seed=7,
            eval_every=1,
            eval_trials=64,
            progress=False,
            hidden_size=16,
            n_heads=2,
            mlp_size=32,
        )
        run = agents.train(spec, cfg, tmp_path / arch)
        twin = agents.untrained(agents.load(tmp_path / arch))
        trained = run.network.state_dict()
        for k, v in twin.network.state_dict().items():
            torch.testing.assert_close(v, trained[k], atol=1e-9, rtol=0)
        # a different seed gives a different network
        other = agents.untrained(
            agents.LoadedRun(
                network=None,
                spec=spec,
                config=agents.TrainConfig(
                    arch=arch, seed=8, hidden_size=16, n_heads=2, mlp_size=32
                ),
            )
        )
        k0 = next(iter(trained))
        assert not torch.allclose(other.network.state_dict()[k0], trained[k0])


def test_paper_model_defaults():
    cfg = agents.TrainConfig(arch="transformer").resolve()
    assert cfg.dropout == 0.1 and cfg.init == "default"  # GPT-2's config, the paper's GPT
    assert agents.TrainConfig(arch="rnn").resolve().init == "default"  # torch's init
    assert agents.TrainConfig(arch="rnn", preset="paper").resolve().dropout == 0.0
    net = agents.untrained(
        agents.LoadedRun(
            network=None, spec=TaskSpec(n_tasks=2), config=agents.TrainConfig(arch="transformer")
        )
    ).network
    w = net.core.blocks[0].qkv.weight
    assert float(w.detach().std()) == pytest.approx(0.02, rel=0.1)  # GPT-2's N(0, 0.02)
    proj = net.core.blocks[0].proj.weight
    assert float(proj.detach().std()) == pytest.approx(0.02 / np.sqrt(2), rel=0.15)
    assert float(net.core.blocks[0].qkv.bias.detach().abs().max()) == 0.0


def test_probe_run_reports_the_controls(tmp_path):
    import shutil
    from pathlib import Path

    from multitask_evidence.probes import probe_run

    src = Path(__file__).parent / "data" / "rnn_default_n24"
    shutil.copytree(src, tmp_path / "run")
    rep = probe_run(
        tmp_path / "run",
        n=2048,
        fixed_points=False,
        tuning=False,
        figures=False,
        tensorboard=False,
    )
    h = rep.headline
    for k in ("untrained_ood_r2", "input_ood_r2", "mu_ood_r2", "untrained_id_r2"):
        assert np.isfinite(h[k]), k
    for name in ("outputs", "logits", "ideal_outputs"):
        for k in (f"{name}_ood_r2", f"{name}_id_r2"):
            assert np.isfinite(h[k]), k
    # the ideal observer's outputs alone decode x* out of distribution at ~0.89 at N = 24
    assert h["ideal_outputs_ood_r2"] == pytest.approx(0.89, abs=0.03)
    # the network is a little worse calibrated than the ideal observer, by a few hundredths of
    # a nat per task
    assert 0.0 < h["excess_bce"] < 0.05
    assert rep.results["calibration"]["excess_bce"] == h["excess_bce"]
    # the extraction reads the network's logits (no rounding of probabilities to 0 or 1)
    assert rep.results["extraction"]["from"] == "logits"
    from multitask_evidence.experiments.point import headline

    row = headline(rep.to_dict())
    for name in ("outputs", "logits", "ideal_outputs", "input"):
        values = row[f"{name}_ood_r2_values"]
        assert len(values) == 4 and all(np.isfinite(values)), name  # 4 folds x 1 fit
        assert np.median(values) == pytest.approx(h[f"{name}_ood_r2"])
    assert row["excess_bce"] == h["excess_bce"]
    # every control is also read on the half-space split and with the near-OLS penalty, like
    # the network; the per-axis lists reach the row as lists of floats
    for name in CONTROLS:
        for k in (f"{name}_ood_r2_halfspace", f"{name}_ood_r2_ols"):
            assert np.isfinite(h[k]) and row[k] == h[k], k
        per_axis = row[f"{name}_ood_r2_per_axis"]
        assert len(per_axis) == 2 and all(isinstance(v, float) for v in per_axis), name
        assert per_axis == h[f"{name}_ood_r2_per_axis"]
    assert row["ood_r2_per_axis"] == h["ood_r2_per_axis"] and len(h["ood_r2_per_axis"]) == 2
    assert row["ood_r2_halfspace"] == h["ood_r2_halfspace_median"]
    assert np.isfinite(row["ood_r2_ols"]) and row["ood_alpha"] == 1e-2
    assert h["ood_gain_over_untrained"] == pytest.approx(h["ood_r2_median"] - h["untrained_ood_r2"])
    # the encoded input's average decodes x* nearly as well as mu itself (the encoder is close
    # to affine over the box); an untrained torch-init RNN does markedly worse
    assert h["input_ood_r2"] > 0.93 and h["mu_ood_r2"] > 0.95
    assert h["untrained_ood_r2"] < h["input_ood_r2"] - 0.1
    loaded = agents.load(tmp_path / "run")
    rec = record(agents.untrained(loaded), loaded.spec, 2048, 12345)
    assert rec.hidden.shape[0] == 2048
    text = (tmp_path / "run" / "probe.md").read_text()
    assert "## Controls" in text and "untrained" in text
    assert OUTPUT_CONTROLS_NOTE in text and "ideal observer's probabilities" in text
    assert "excess cross-entropy over the ideal observer" in text


def test_input_control_averages_every_evidence_step_of_free_rt_trials():
    from multitask_evidence.probes.theory import evidence_steps

    spec = TaskSpec(n_tasks=3, stimulus_steps=4, targets="free_rt_paper", encoder="none")
    b = generate(spec, 32, np.random.default_rng(0))
    mask = np.diff(evidence_steps(spec), prepend=0) > 0
    assert mask.sum() == 5  # 4 stimulus steps and the decision step
    avg = stimulus_average(b.obs, b.period, mask)
    np.testing.assert_allclose(avg[:, :2], b.stimulus_evidence.mean(axis=1), atol=1e-6)
    with pytest.raises(ValueError, match="evidence must be a"):
        stimulus_average(b.obs, b.period, mask[:-1])


# ---- output-implied controls, by hand ---------------------------------------------------------
def _fit_test(n_fit=8192, n_test=4096, seed=0, d=2):
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, 0.5, (n_fit, d)), rng.uniform(-0.5, 0.5, (n_test, d))


def _ridge_ood_by_hand(features, latent, alpha=1e-2):
    """The closed-form OOD decoder written out: per held-out quadrant, standardise the training
    features, solve (Z^T Z + alpha n I) W = Z^T (y - mean y), score 1 - 12 MSE on the quadrant."""
    q = (latent[:, 0] > 0).astype(int) + 2 * (latent[:, 1] > 0)
    out = []
    for k in range(4):
        tr, te = q != k, q == k
        m, sd = features[tr].mean(0), features[tr].std(0)
        sd = np.where(sd > 1e-12, sd, 1.0)
        z = (features[tr] - m) / sd
        ybar = latent[tr].mean(0)
        w = np.linalg.solve(z.T @ z + alpha * tr.sum() * np.eye(z.shape[1]), z.T @ (latent[tr] - ybar))
        pred = (features[te] - m) / sd @ w + ybar
        out.append(1 - 12 * ((pred - latent[te]) ** 2).mean())
    return out


def test_outputs_that_are_affine_in_the_latent_decode_it_exactly():
    x, xt = _fit_test()
    # 3 "outputs" in (0, 1) along directions 60 degrees apart, as boundaries tile the angle
    ang = np.radians([0.0, 60.0, 120.0])
    a, b = np.array([0.5, 0.4, 0.6]), 0.3 * np.stack([np.cos(ang), np.sin(ang)])
    sc = score_features("outputs", a + x @ b, x, a + xt @ b, xt)
    np.testing.assert_allclose(sc.ood_r2_values, _ridge_ood_by_hand(a + x @ b, x), atol=1e-10)
    # an exact affine code is decoded out of distribution to within the penalty's shrinkage
    assert sc.ood_r2 > 0.999 and sc.id_r2 > 0.999
    assert sc.headline()["outputs_ood_r2"] == sc.ood_r2


def test_outputs_of_one_half_predict_the_training_mean():
    x, xt = _fit_test()
    sc = score_features("outputs", np.full((len(x), 3), 0.5), x, np.full((len(xt), 3), 0.5), xt)
    # constant features carry nothing: each fold predicts its training mean, so its r^2 is
    # 1 - 12 mean |y_test - mean y_train|^2 ...
    q = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)
    by_hand = [1 - 12 * ((x[q == k] - x[q != k].mean(0)) ** 2).mean() for k in range(4)]
    np.testing.assert_allclose(sc.ood_r2_values, by_hand, atol=1e-12)
    # ... = 1 - 12 (1/48 + (1/3)^2) = -7/12 in expectation (the held-out quadrant's own
    # variance 1/48 per axis, its centre +-1/4 a third off the training mean +-1/12)
    assert sc.ood_r2 == pytest.approx(-7 / 12, abs=0.03)
    # in distribution: the fresh trials' spread about the fit's mean, r^2 ~ 0
    assert sc.id_r2 == pytest.approx(1 - 12 * ((xt - x.mean(0)) ** 2).mean(), abs=1e-12)


def test_two_certain_axis_aligned_tasks_decode_each_quadrant_to_its_centre():
    # 2 tasks y_d = 1[x_d > 0] reported with certainty: the read-out maps every trial to its
    # quadrant's centre (+-1/4, +-1/4), the held-out one included (the training quadrants fix
    # both steps), so OOD r^2 = 1 - 12 * (1/48) = 0.75 (a quadrant's variance per axis is 1/48)
    x, xt = _fit_test(20000, 8000)
    sc = score_features("outputs", (x > 0).astype(float), x, (xt > 0).astype(float), xt)
    assert sc.ood_r2 == pytest.approx(0.75, abs=0.01)
    assert min(sc.ood_r2_values) > 0.73


@pytest.mark.parametrize(("n_tasks", "expected"), [(2, 0.52), (24, 0.89)])
def test_ideal_outputs_control_on_the_paper_task(n_tasks, expected):
    """A linear read-out of the ideal observer's N probabilities: OOD r^2 ~0.52 at N = 2 and
    ~0.89 at N = 24 on the paper's task (docs/science.md; 0.51 / 0.89 in the spec)."""
    spec = TaskSpec(n_tasks=n_tasks, encoder="none")
    fit, test = (generate(spec, n, np.random.default_rng(s)) for n, s in ((4096, 3), (2048, 4)))
    p_fit = ideal_decision_probs(spec, fit.stimulus_evidence)
    assert p_fit.shape == (4096, n_tasks)
    sc = score_features(
        "ideal_outputs", p_fit, fit.latent, ideal_decision_probs(spec, test.stimulus_evidence),
        test.latent,
    )
    assert sc.ood_r2 == pytest.approx(expected, abs=0.03)


def test_ideal_decision_probs_read_the_evidence_seen_by_the_decision_step():
    from multitask_evidence.envs.ideal import IdealObserver

    spec = TaskSpec(n_tasks=3, stimulus_steps=4, targets="free_rt_paper", encoder="none")
    b = generate(spec, 16, np.random.default_rng(0))
    post = IdealObserver(spec).posterior(b.stimulus_evidence)
    # free-RT targets: the decision step's own sample is the 5th
    np.testing.assert_allclose(ideal_decision_probs(spec, b.stimulus_evidence), post[:, 4])
    with pytest.raises(ValueError, match="stimulus_evidence must be"):
        ideal_decision_probs(spec, b.stimulus_evidence[:, :3])


def test_run_controls_on_an_agent_without_a_readout():
    """An agent that reports the ideal observer's probabilities and has no network: its outputs
    control equals the ideal observer's, its logits come from its probabilities."""
    from multitask_evidence.probes.report import run_controls
    from multitask_evidence.probes.synthetic import IdealAgent

    spec = TaskSpec(n_tasks=6, encoder="none")
    agent = IdealAgent(spec, observer="exact")
    rec, rec_test = record(agent, spec, 2048, 5), record(agent, spec, 1024, 6)
    ctrl = {c.name: c for c in run_controls(agent, rec, rec_test)}
    assert "untrained" not in ctrl  # nothing to rebuild untrained
    assert set(ctrl) == {"input", "mu", "outputs", "logits", "ideal_outputs"}
    # float32 rounding of the same probabilities
    assert ctrl["outputs"].ood_r2 == pytest.approx(ctrl["ideal_outputs"].ood_r2, abs=1e-4)
    assert ctrl["ideal_outputs"].ood_r2 == pytest.approx(0.88, abs=0.03)
    assert ctrl["input"].ood_r2 == pytest.approx(ctrl["mu"].ood_r2, abs=1e-4)  # no encoder
    assert np.isfinite(ctrl["logits"].ood_r2)


def test_logits_from_probs_are_finite_and_odd():
    p = np.array([0.0, 1e-12, 0.25, 0.5, 0.75, 1.0 - 1e-12, 1.0])
    lg = logits_from_probs(p)
    assert np.isfinite(lg).all()
    np.testing.assert_allclose(lg, -lg[::-1], atol=1e-12)
    assert lg[3] == 0.0 and lg[4] == pytest.approx(np.log(3.0))
    assert lg[-1] == pytest.approx(np.log(2.0**25 - 1))  # float32's resolution near 1


def test_calibration_by_hand_and_zero_for_the_ideal_observer():
    labels = np.array([[1.0, 0.0], [0.0, 1.0]])
    probs = np.array([[0.8, 0.4], [0.3, 0.9]])
    ideal = np.array([[0.9, 0.1], [0.2, 0.6]])
    cal = calibration(labels, ideal, probs)
    bce = -(np.log(0.8) + np.log(0.6) + np.log(0.7) + np.log(0.9)) / 4
    ideal_bce = -(np.log(0.9) + np.log(0.9) + np.log(0.8) + np.log(0.6)) / 4
    assert cal.bce == pytest.approx(bce, rel=1e-12)
    assert cal.ideal_bce == pytest.approx(ideal_bce, rel=1e-12)
    assert cal.excess_bce == pytest.approx(bce - ideal_bce, rel=1e-12)
    # logits give the same numbers without rounding
    lg = np.log(probs) - np.log1p(-probs)
    assert calibration(labels, ideal, logits=lg).bce == pytest.approx(bce, rel=1e-12)
    # a float32 output rounded to 1 on a wrong label costs what the rounding allows, not inf
    worst = calibration(np.array([[0.0]]), np.array([[0.5]]), np.array([[1.0]], np.float32))
    assert worst.bce == pytest.approx(-np.log(np.finfo(np.float32).epsneg / 2))
    # the ideal observer against itself
    spec = TaskSpec(n_tasks=6, encoder="none")
    b = generate(spec, 2048, np.random.default_rng(2))
    p = ideal_decision_probs(spec, b.stimulus_evidence)
    same = calibration(b.labels, p, p)
    assert same.excess_bce == 0.0 and same.bce > 0
    with pytest.raises(ValueError, match="exactly one of"):
        calibration(labels, ideal)
    with pytest.raises(ValueError, match=r"must all be \[n, N\]"):
        calibration(labels, ideal[:1], probs)


def test_excess_bce_of_an_ideal_agent_is_zero_in_the_report():
    from multitask_evidence.probes.record import regenerate
    from multitask_evidence.probes.report import markdown, probe_recording
    from multitask_evidence.probes.synthetic import IdealAgent

    spec = TaskSpec(n_tasks=6, encoder="none")
    rec = record(IdealAgent(spec, observer="exact"), spec, 2048, 8)
    ideal = ideal_decision_probs(spec, regenerate(rec).stimulus_evidence)
    rep = probe_recording(rec, ideal=ideal, halfspace=False, over_time=False, n_shuffles=1)
    # the agent's outputs are the ideal observer's, rounded to float32
    assert rep.headline["excess_bce"] == pytest.approx(0.0, abs=1e-6)
    assert "excess cross-entropy" in markdown(rep)
    # flat-prior outputs ignore the box's edges: worse than ideal, if only slightly
    flat = record(IdealAgent(spec), spec, 2048, 8)
    h = probe_recording(flat, ideal=ideal, halfspace=False, over_time=False, n_shuffles=1).headline
    assert 0.0 < h["excess_bce"] < 0.005
    # without the ideal observer's probabilities there is nothing to compare with
    plain = probe_recording(flat, halfspace=False, over_time=False, n_shuffles=1)
    assert plain.headline["excess_bce"] is None and "calibration" not in plain.results


def test_controls_read_on_the_networks_robustness_choices():
    """On identical features a control gets exactly the network's half-space, near-OLS and
    per-axis numbers: the same decoders, splits and penalties (probe_recording vs
    score_features)."""
    from multitask_evidence.experiments.point import headline
    from multitask_evidence.probes.decoding import OLS_ALPHA, OOD_ALPHA, ood_generalisation
    from multitask_evidence.probes.report import probe_recording
    from multitask_evidence.probes.synthetic import IdealAgent
    from multitask_evidence.probes.theory import prior_variance

    spec = TaskSpec(encoder="none")
    agent = IdealAgent(spec, hidden=16, noise=1e-2)
    rec, fresh = record(agent, spec, 2000, seed=0), record(agent, spec, 500, seed=1)
    rep = probe_recording(rec, fresh, over_time=False, n_shuffles=2)
    h = rep.headline
    sc = score_features(
        "mu", rec.at(), rec.latent, fresh.at(), fresh.latent, var_prior=prior_variance(spec)
    )
    assert sc.ood_r2_halfspace == h["ood_r2_halfspace"] == h["ood_r2_halfspace_median"]
    assert sc.ood_r2_ols == h["ood_r2_ols"]
    assert sc.ood_r2_per_axis == h["ood_r2_per_axis"]
    assert sc.ood_r2 == h["ood_r2_median"]
    assert h["ood_alpha"] == OOD_ALPHA
    assert h["ood_r2_ols"] == ood_generalisation(
        rec.at(), rec.latent, alpha=OLS_ALPHA
    ).r2_median
    # the ideal agent's states are an affine image of mu (plus 1e-2 noise): both penalties and
    # both axes sit at the r^2 of mu, 0.976
    assert h["ood_r2_ols"] == pytest.approx(h["ood_r2_median"], abs=0.005)
    np.testing.assert_allclose(h["ood_r2_per_axis"], ceiling(spec), atol=0.02)
    assert np.mean(h["ood_r2_per_axis"]) == pytest.approx(h["ood_r2_median"], abs=0.01)
    geo = rep.results["geometry"]
    for k in ("parallelism_factors_null_geometric_p95", "parallelism_factors_null_shuffle_p95"):
        assert h[k] == geo[k] and np.isfinite(h[k]), k
    assert rep.timings["ood_ols"] >= 0.0
    row = headline(rep.to_dict())
    assert row["ood_r2_per_axis"] == h["ood_r2_per_axis"]
    assert row["ood_r2_halfspace"] == h["ood_r2_halfspace"]
    for k in ("ood_r2_ols", "ood_alpha", "parallelism_factors_null_shuffle_p95"):
        assert row[k] == h[k], k
    # strings stay out of the row; a None inside a per-axis list keeps its slot as NaN
    assert "ood_estimator" not in row
    odd = headline({"headline": {"x_per_axis": [0.5, None], "words": ["a"]}})
    assert odd["x_per_axis"][0] == 0.5 and np.isnan(odd["x_per_axis"][1])
    assert "words" not in odd
