"""Noise in feature space: the input-average control is a dial of entanglement (place-cell
width at a fixed amount of information), and a probe of a network trained on such inputs
carries its references (the Bayes bound, mu as the posterior mean) and no latent-space theory
that does not apply."""

from __future__ import annotations

import numpy as np
import pytest

from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.envs.feature_noise import calibrate_sigma
from multitask_evidence.probes import theory
from multitask_evidence.probes.controls import score_features, stimulus_average
from multitask_evidence.probes.record import running_mean


def _input_average_ood(spec: TaskSpec) -> tuple[float, float]:
    fit, test = generate(spec, 3000, 1), generate(spec, 1000, 2)
    sc = score_features(
        "input",
        stimulus_average(fit.obs, fit.period),
        fit.latent,
        stimulus_average(test.obs, test.period),
        test.latent,
        var_prior=theory.prior_variance(spec),
        robustness=False,
    )
    return sc.ood_r2, sc.id_r2


@pytest.mark.parametrize(("width", "below", "above"), [(0.1, 0.3, None), (1.0, None, 0.9)])
def test_place_cell_width_dials_the_input_averages_entanglement(width, below, above) -> None:
    spec = TaskSpec(encoder="place_cells", encoder_scale=width, noise_stage="features", n_tasks=6)
    sigma = calibrate_sigma(spec, n=300, rel_tol=0.02)  # as informative as the paper's task
    ood, ind = _input_average_ood(spec.replace(sigma=sigma))
    if below is not None:
        # narrow bumps: the time-averaged input holds x* (in distribution) but entangled
        assert ood < below and ind > ood + 0.3
    else:
        assert ood > above


def test_mu_is_the_posterior_mean_and_theory_gives_the_bayes_bound() -> None:
    spec = TaskSpec(
        encoder="place_cells", noise_stage="features", sigma=1.3, n_tasks=6, stimulus_steps=8
    )
    batch = generate(spec, 3000, 0)
    mu, seen = running_mean(spec, batch.evidence)
    s0, s1 = spec.stimulus_start, spec.evidence_stop
    assert mu.shape == (3000, spec.n_steps, 2) and seen[-1] == 8
    assert np.all(mu[:, :s0] == 0) and np.all(mu[:, s1:] == mu[:, s1 - 1 : s1])
    # the posterior mean's r^2 on these trials is the Bayes bound theory computes on its own
    # 1000 (both sampling errors ~0.01)
    var = theory.prior_variance(spec)
    r2 = 1 - ((mu[:, -1] - batch.latent) ** 2).mean(0).mean() / var.mean()
    bound = theory.bayes_bound(spec)
    assert abs(r2 - bound) < 0.03 and 0.5 < bound < 0.9
    curve = theory.bayes_bound_curve(spec)
    assert curve[0] == 0.0 and np.all(np.diff(curve[s0 : s1 + 1]) >= -1e-9)
    # the r^2 of mu in latent space (the paper's Eq. 7) does not apply here
    assert theory.ceiling(spec) is None and theory.ceiling_curve(spec) is None
    assert theory.bayes_bound_method(spec).method == "monte_carlo"


def test_mu_at_the_decision_step_only_is_the_timelines_last_value() -> None:
    spec = TaskSpec(
        encoder="place_cells", noise_stage="features", sigma=1.3, n_tasks=6, stimulus_steps=8
    )
    ev = generate(spec, 200, 4).evidence
    full, seen = running_mean(spec, ev)
    last, seen_last = running_mean(spec, ev, timeline=False)
    s1 = spec.evidence_stop
    np.testing.assert_array_equal(seen, seen_last)
    np.testing.assert_allclose(last[:, s1 - 1 :], full[:, s1 - 1 :], rtol=0, atol=1e-12)
    assert np.all(last[:, : s1 - 1] == 0)  # not computed: left at the prior mean
    # noise in latent space has no posterior to skip: both give the running mean
    plain = spec.replace(encoder="relu_mlp", noise_stage="latent", sigma=0.2)
    ev = generate(plain, 50, 4).evidence
    np.testing.assert_array_equal(
        running_mean(plain, ev)[0], running_mean(plain, ev, timeline=False)[0]
    )


def test_bayes_bound_is_shared_across_label_fields_but_not_across_encoders() -> None:
    from multitask_evidence.probes.theory import _FEATURE_VARIANCE_TABLES, _information_key

    spec = TaskSpec(
        encoder="place_cells", noise_stage="features", sigma=1.3, n_tasks=6, stimulus_steps=8
    )
    # the posterior over x* ignores N, the boundaries and (place cells unmixed) the seed
    same = spec.replace(n_tasks=2, seed=9, boundaries="random")
    assert _information_key(spec) == _information_key(same)
    assert _information_key(spec) != _information_key(spec.replace(encoder_scale=0.2))
    assert _information_key(spec) != _information_key(spec.replace(sigma=1.2))
    # a mixed encoder draws its rotation from the seed: the seed matters again
    mixed = spec.replace(encoder_mix=True)
    assert _information_key(mixed) != _information_key(mixed.replace(seed=9))
    _FEATURE_VARIANCE_TABLES.clear()
    first = theory.bayes_bound(spec)
    assert len(_FEATURE_VARIANCE_TABLES) == 1
    assert theory.bayes_bound(same) == first and len(_FEATURE_VARIANCE_TABLES) == 1
    # computed afresh, the other task's bound is the same number
    _FEATURE_VARIANCE_TABLES.clear()
    assert theory.bayes_bound(same) == pytest.approx(first, abs=1e-12)


def test_probe_of_a_network_trained_on_feature_noise(tmp_path) -> None:
    import torch

    from multitask_evidence import agents
    from multitask_evidence.probes import probe_run

    torch.set_num_threads(1)
    spec = TaskSpec(
        encoder="place_cells", noise_stage="features", sigma=1.3, n_tasks=6, stimulus_steps=6
    )
    cfg = agents.TrainConfig(
        steps=1000, eval_every=1000, eval_trials=512, progress=False, hidden_size=32
    )
    run = agents.train(spec, cfg, tmp_path / "run")
    # it learns (chance 0.5; the ideal observer ~0.8 at this short trial)
    assert run.metrics[-1]["acc"] > 0.6
    rep = probe_run(
        tmp_path / "run",
        n=512,
        seed=3,
        fixed_points=False,
        tuning=False,
        figures=False,
        tensorboard=False,
    )
    h = rep.headline
    assert h["ceiling"] is None and 0.4 < h["bayes_bound"] < 1.0
    assert h.get("extraction_r2_latent") is None  # the latent-noise inversion does not apply
    # mu (the posterior mean) generalises; the narrow cells' average much less
    assert h["input_ood_r2"] < 0.3 and h["mu_ood_r2"] > h["input_ood_r2"] + 0.2
    assert "r2 of mu (Eq. 7) -" in (tmp_path / "run" / "probe.md").read_text()


def test_mu_grid_is_close_to_the_default_grid() -> None:
    from multitask_evidence.envs.ideal import IdealObserver
    from multitask_evidence.probes.record import MU_GRID

    for width, sigma in ((0.1, 1.31), (1.0, 0.6)):
        spec = TaskSpec(
            encoder="place_cells", encoder_scale=width, noise_stage="features", sigma=sigma
        )
        x = generate(spec, 100, 0).stimulus_evidence
        fine = IdealObserver(spec).posterior_mean(x)
        coarse = IdealObserver(spec, n_grid=MU_GRID).posterior_mean(x)
        assert np.abs(fine - coarse).max() < 0.005 and np.abs(fine - coarse).mean() < 2e-4
