"""The recorder (with a perfect agent whose answers are known) and the full report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.probes import theory
from multitask_evidence.probes.record import Recording, record
from multitask_evidence.probes.report import probe_recording
from multitask_evidence.probes.synthetic import IdealAgent

TRAINED_RUN = Path(__file__).parent / "data" / "rnn_default_n24"


def test_record_shapes_and_running_mean(ideal_agent):
    spec = ideal_agent.spec
    rec = record(ideal_agent, spec, 300, seed=5, batch_size=64)
    assert rec.hidden.shape == (300, spec.n_steps, 16)
    assert rec.outputs.shape == (300, spec.n_steps, spec.n_tasks)
    assert rec.mu.shape == (300, spec.n_steps, 2) and rec.latent.shape == (300, 2)
    assert rec.step.tolist() == [0, *range(1, 21), 20]
    assert rec.period.tolist() == [0] + [1] * 20 + [3]
    b = generate(spec, 300, np.random.default_rng(5))
    np.testing.assert_allclose(rec.latent, b.latent)
    np.testing.assert_allclose(rec.mu[:, -1], b.stimulus_evidence.mean(axis=1))
    np.testing.assert_allclose(rec.mu[:, 5], b.stimulus_evidence[:, :5].mean(axis=1))
    assert np.all(rec.mu[:, 0] == 0)
    # batching does not change the result
    again = record(ideal_agent, spec, 300, seed=5, batch_size=1000)
    np.testing.assert_array_equal(again.mu, rec.mu)
    np.testing.assert_allclose(again.outputs, rec.outputs)


class _StepTagAgent:
    """hidden[b, k] = (k, first encoded evidence channel at k): shows which step a probe reads."""

    def hidden_and_outputs(self, obs):
        k = np.broadcast_to(np.arange(obs.shape[1], dtype=np.float32)[None, :], obs.shape[:2])
        hidden = np.stack([k, obs[:, :, 0]], axis=-1)
        return hidden, np.zeros(obs.shape[:2] + (2,), dtype=np.float32)


def test_free_rt_probe_reads_the_decision_step_with_its_sample():
    spec = TaskSpec(targets="free_rt_paper", n_tasks=2, stimulus_steps=4, encoder="none")
    rec = record(_StepTagAgent(), spec, 50, seed=1)
    b = generate(spec, 50, np.random.default_rng(1))
    # the probe step is the decision step (index fixation + T = 5, the trial's last step) ...
    assert rec.decision_index == 5 == spec.n_steps - 1
    np.testing.assert_array_equal(rec.at()[:, 0], 5.0)
    # ... where the agent sees the (T + 1)-th sample and mu averages all T + 1
    np.testing.assert_allclose(rec.at()[:, 1], b.evidence[:, 5, 0], rtol=1e-6)
    assert rec.step.tolist() == [0, 1, 2, 3, 4, 5]
    np.testing.assert_allclose(rec.mu[:, 5], b.evidence[:, 1:6].mean(axis=1))
    # the report's ceiling is the one for T + 1 samples
    rep = probe_recording(rec)
    assert rep.results["ceiling"]["t"] == 5
    assert rep.headline["ceiling"] == pytest.approx(1 - 0.48 / 5)
    assert "extraction" not in rep.results  # ddm outputs are not probabilities


def test_record_region_latent_and_roundtrip(ideal_agent, tmp_path):
    spec = ideal_agent.spec
    rec = record(ideal_agent, spec, 200, seed=1, region={"orthants": [3]})
    assert np.all(rec.latent > 0)
    grid = np.array([[0.1, -0.2]] * 10)
    rg = record(ideal_agent, spec, 10, seed=1, latent=grid)
    np.testing.assert_array_equal(rg.latent, grid)
    path = rec.save(tmp_path / "rec.npz")
    back = Recording.load(path)
    assert back.spec == spec and back.seed == 1
    for k in ("hidden", "outputs", "latent", "labels", "mu", "step", "period"):
        np.testing.assert_array_equal(getattr(back, k), getattr(rec, k))


def test_record_bad_input(ideal_agent):
    spec = ideal_agent.spec
    with pytest.raises(ValueError, match="hidden_and_outputs"):
        record(object(), spec, 10)

    class WrongSteps:
        def hidden_and_outputs(self, obs):  # answers a 22-step trial whatever it is shown
            return np.zeros((obs.shape[0], 22, 4)), np.zeros((obs.shape[0], 22, 24))

    with pytest.raises(ValueError, match=r"expected \[10, 7, \.\.\.\]"):
        record(WrongSteps(), spec.replace(stimulus_steps=5), 10)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        record(ideal_agent, spec, 10, batch_size=0)
    with pytest.raises(ValueError, match="Region.orthants must be integers in"):
        record(ideal_agent, spec, 10, region={"orthants": [7]})

    class NaNAgent(IdealAgent):
        def hidden_and_outputs(self, obs):
            h, o = super().hidden_and_outputs(obs)
            h[0, 0, 0] = np.nan
            return h, o

    with pytest.raises(ValueError, match="non-finite"):
        record(NaNAgent(spec), spec, 10)
    with pytest.raises(ValueError, match="latent_dim=2"):
        Recording(
            spec,
            np.zeros((3, 22, 4)),
            np.zeros((3, 22, 24)),
            np.zeros((3, 3)),
            np.zeros((3, 24)),
            np.zeros((3, 22, 3)),
            np.arange(22),
            np.zeros(22),
        )


def test_report_on_the_ideal_agent_reaches_the_theory():
    spec = TaskSpec(encoder="none")
    agent = IdealAgent(spec, hidden=16, noise=1e-2)
    rec = record(agent, spec, 12000, seed=0)
    fresh = record(agent, spec, 4000, seed=1)
    rep = probe_recording(rec, fresh, n_shuffles=3)
    h = rep.headline
    assert h["ceiling"] == pytest.approx(0.976)
    assert abs(h["ood_r2_median"] - h["ceiling"]) < 0.01
    assert abs(h["id_r2"] - h["ceiling_linear_shrunk"]) < 0.01
    assert h["angle_deg"] == pytest.approx(90, abs=3)
    assert h["parallelism_factors"] > 0.99
    assert h["ccgp_factors"] > 0.95
    # the agent's outputs are the ideal observer's (rounded to float32): extraction gives mu back
    assert h["extraction_rmse_vs_mu"] < 1e-4
    assert h["extraction_r2_latent"] == pytest.approx(
        1 - 12 * ((rec.mu[:, -1] - rec.latent) ** 2).mean(), abs=1e-4
    )
    ot = rep.results["over_time"]
    np.testing.assert_allclose(
        ot["r2"][1:], theory.ceiling_curve(spec, form="linear_shrunk")[1:], atol=0.02
    )
    json.dumps(rep.to_dict())  # serialisable


@pytest.mark.slow
def test_probe_run_on_a_trained_rnn(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(TRAINED_RUN, run)
    from multitask_evidence.probes import probe_run

    rep = probe_run(run, n=4096, seed=12345)
    h = rep.headline
    # done-when: a default-preset network at N = 24 decodes within 0.02 of the ceiling
    assert abs(h["id_r2"] - h["ceiling"]) < 0.02
    assert 0.75 < h["ood_r2_median"] < h["id_r2"]
    assert h["decision_accuracy"] > 0.95
    assert h["attractor_dim"] in (1, 2) and h["n_fixed_points"] > 0
    for name in ("probe.json", "probe.md"):
        assert (run / name).exists()
    for fig in ("ood.png", "pca.png", "fixed_points.png", "tuning.png", "decoding_time.png"):
        assert (run / "figures" / fig).stat().st_size > 10_000
    data = json.loads((run / "probe.json").read_text())
    assert data["ood"]["r2_median"] == pytest.approx(h["ood_r2_median"])
    # the headline says which decoder gave the OOD number (the closed form's fixed penalty)
    assert data["headline"]["ood_estimator"] == data["ood"]["estimator"]
    assert data["headline"]["ood_estimator"].startswith("ridge, fixed per-trial alpha=")
    assert data["in_distribution"]["r2"] == pytest.approx(h["id_r2"])
    assert data["ceiling"]["r2"] == pytest.approx(0.976)
    assert "| OOD r2, leave-one-orthant-out" in (run / "probe.md").read_text()
    assert "decoder: ridge, fixed per-trial alpha=" in (run / "probe.md").read_text()
    assert len(list(run.glob("events.out.tfevents.*"))) == 1


def test_a_network_that_never_learned_is_probed_not_refused(ideal_agent):
    # one state for every trial (a network whose loss stayed at ln 2): nothing to decode and no
    # decoder axes; the page says so instead of the probe failing
    import dataclasses

    rec = record(ideal_agent, n=512, seed=0)
    dead = dataclasses.replace(rec, hidden=np.full_like(rec.hidden, 0.3))
    rep = probe_recording(dead, n_shuffles=0)
    assert rep.results["angles"] == {
        "skipped": "the states do not vary across trials at the read-out step"
    }
    assert rep.headline["angle_deg"] is None
    assert rep.headline["id_r2"] < 0.01 and rep.headline["ood_r2_median"] < 0.01
