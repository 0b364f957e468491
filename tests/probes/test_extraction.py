"""The theory's extraction of mu from output probabilities (probes.theory.extract_mu) reaches the
r^2 of mu on an agent whose outputs are the ideal observer's, through the whole probe; outputs
whose probits are compressed (what trained networks do in the tails) fall far below it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.envs.ideal import IdealObserver
from multitask_evidence.probes import theory
from multitask_evidence.probes.record import record
from multitask_evidence.probes.report import probe_recording
from multitask_evidence.probes.synthetic import IdealAgent


def _r2(estimate, latent):
    return 1 - 12 * ((estimate - latent) ** 2).mean()


@pytest.fixture(scope="module")
def paper_trials():
    spec = TaskSpec(encoder="none")  # the paper's task: D = 2, N = 24, sigma = 0.2, T = 20
    b = generate(spec, 8192, np.random.default_rng(7))
    return spec, b, b.stimulus_evidence.mean(axis=1)


def test_extraction_of_ideal_outputs_reaches_the_r2_of_mu(paper_trials):
    spec, b, mu = paper_trials
    t = spec.stimulus_steps
    r2_mu = _r2(mu, b.latent)
    # the r^2 of mu is the paper's Eq. 7 up to sampling error (SE ~0.0005 at 8192 trials)
    assert r2_mu == pytest.approx(1 - 12 * spec.sigma**2 / t, abs=0.002)
    # flat-prior ideal outputs (the forward model the extraction inverts): mu itself, exactly
    flat = theory.ideal_probs(spec, mu, t)
    res = theory.extraction_error(spec, mu[:, None], b.latent, np.array([t]), flat[:, None])
    assert res.decision_rmse < 1e-9
    assert res.decision_r2_latent == pytest.approx(r2_mu, abs=1e-9)
    # the bounded prior's exact posterior (what a network trained on the labels approximates)
    # differs from the flat one only near the box's edges: the extraction still reaches the
    # r^2 of mu (here slightly above it, the posterior's pull towards the box)
    exact = IdealObserver(spec).final_posterior(b.stimulus_evidence)
    res = theory.extraction_error(spec, mu[:, None], b.latent, np.array([t]), exact[:, None])
    assert res.decision_r2_vs_mu > 0.998
    assert res.decision_r2_latent == pytest.approx(r2_mu, abs=0.002)
    assert res.decision_ceiling == pytest.approx(theory.ceiling(spec))


def test_compressed_probits_pull_the_extraction_far_below_it(paper_trials):
    """Dividing the ideal probits by 2 keeps every choice (accuracy is the ideal observer's)
    but halves the implied mu: r^2 = 1 - 12 E|mu/2 - x*|^2 ~ 0.75, as on trained networks,
    whose tail probits are compressed to 0.4-0.65 of the ideal observer's."""
    spec, b, mu = paper_trials
    t = spec.stimulus_steps
    geo = theory.task_geometry(spec)
    z = (mu @ geo.normals.T + geo.offsets) / (spec.sigma / np.sqrt(t))
    tempered = ndtr(z / 2)
    assert np.array_equal(tempered > 0.5, ndtr(z) > 0.5)
    mu_hat = theory.extract_mu(spec, t, tempered)
    np.testing.assert_allclose(mu_hat, mu / 2, atol=1e-9)
    assert _r2(mu_hat, b.latent) == pytest.approx(_r2(mu / 2, b.latent), abs=1e-9)
    assert _r2(mu_hat, b.latent) == pytest.approx(0.75, abs=0.01)


@pytest.mark.parametrize(("targets", "delay"), [("paper", 0), ("decision_only", 3)])
def test_probe_extraction_reads_the_evidence_steps_seen_at_the_read_out(targets, delay):
    """Through the recorder and the report: the ideal agent's outputs give mu back at the
    decision step, after a delay too (mu and t held at the last of the T samples)."""
    spec = TaskSpec(
        n_tasks=6, stimulus_steps=10, delay_steps=delay, targets=targets, encoder="none"
    )
    rec = record(IdealAgent(spec), spec, 2048, seed=3)
    dec = rec.decision_index
    assert rec.step[dec] == 10
    rep = probe_recording(rec, halfspace=False, over_time=False, n_shuffles=1)
    ex = rep.results["extraction"]
    assert ex["steps"] == [10] and ex["from"] == "probs"
    assert rep.headline["extraction_rmse_vs_mu"] < 1e-4  # float32 outputs
    r2_mu = _r2(rec.mu[:, dec], rec.latent)
    assert rep.headline["extraction_r2_latent"] == pytest.approx(r2_mu, abs=1e-4)
    assert r2_mu == pytest.approx(theory.ceiling(spec), abs=0.01)


def test_ddm_outputs_are_not_inverted():
    # free-RT targets are bounded evidence sums, not probabilities: no extraction, no BCE
    spec = TaskSpec(n_tasks=3, stimulus_steps=4, targets="free_rt_paper", encoder="none")
    rec = record(IdealAgent(spec), spec, 256, seed=3)
    rep = probe_recording(rec, halfspace=False, over_time=False, n_shuffles=1)
    assert "extraction" not in rep.results and rep.headline["excess_bce"] is None
