"""targets='latent': a network that regresses x* itself (the positive control of what an
architecture extracts when asked for x* directly): trials, objective, plug-in choices, training,
ensembles and the probe."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multitask_evidence import agents
from multitask_evidence.agents.ensemble.trainer import member_objective
from multitask_evidence.agents.evaluate import decision_probs
from multitask_evidence.agents.run import build_network
from multitask_evidence.agents.trainer import objective
from multitask_evidence.envs import TaskSpec, generate, task_geometry

SPEC = TaskSpec(targets="latent", n_tasks=6, stimulus_steps=8)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_trials_ask_for_x_star_at_the_decision_only() -> None:
    assert (SPEC.n_outputs, SPEC.mse_targets, TaskSpec().n_outputs) == (2, True, 24)
    b = generate(SPEC, 5, 0)
    d0 = SPEC.decision_start
    assert b.targets.shape == (5, SPEC.n_steps, 2) and b.labels.shape == (5, 6)
    np.testing.assert_array_equal(b.targets[:, d0], b.latent.astype(np.float32))
    assert np.all(b.targets[:, :d0] == 0)
    np.testing.assert_array_equal(b.mask[0], (np.arange(SPEC.n_steps) >= d0).astype(np.float32))
    assert TaskSpec.from_json(SPEC.to_json()) == SPEC


def test_linear_outputs_mse_and_plug_in_choices() -> None:
    cfg = agents.TrainConfig(hidden_size=8).resolve()
    net = build_network(SPEC, cfg)
    assert net.output == "linear" and net.readout.out_features == 2
    readout = torch.randn(3, SPEC.n_steps, 2)
    targets = torch.randn(3, SPEC.n_steps, 2)
    mask = torch.zeros(3, SPEC.n_steps)
    mask[:, -1] = 1.0
    want = ((readout[:, -1] - targets[:, -1]) ** 2).mean()
    torch.testing.assert_close(objective(net, readout, targets, mask, SPEC), want)
    # an ensemble member's objective is its solo objective
    k = member_objective(
        net,
        readout[None].repeat(2, 1, 1, 1),
        targets[None].repeat(2, 1, 1, 1),
        mask[None].repeat(2, 1, 1),
        SPEC,
    )
    torch.testing.assert_close(k, torch.stack([want, want]))
    # the choices are the labels of the estimate under each task's boundary
    obs = generate(SPEC, 16, 1).obs
    with torch.no_grad():
        x_hat = net(torch.as_tensor(obs))[0][:, SPEC.decision_start].double().numpy()
    p = decision_probs(net, SPEC, obs, "cpu")
    np.testing.assert_array_equal(p, task_geometry(SPEC).labels(x_hat))


def test_a_regression_network_learns_and_is_probed(tmp_path) -> None:
    from multitask_evidence.probes import probe_run

    cfg = agents.TrainConfig(
        steps=600, eval_every=600, eval_trials=512, progress=False, hidden_size=32
    )
    run = agents.train(SPEC, cfg, tmp_path / "run")
    last = run.metrics[-1]
    assert last["loss"] < 0.02 and last["frac_ideal"] > 0.8  # x* regressed, choices near-ideal
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
    assert h["decision_accuracy"] > 0.85 and h["id_r2"] > 0.85
    assert h["ood_r2_median"] > h["untrained_ood_r2"] + 0.2
    # outputs are x_hat: no probabilities to calibrate, no logits, no extraction
    assert h.get("excess_bce") is None and h.get("logits_ood_r2") is None
    assert h.get("extraction_r2_latent") is None and h["outputs_ood_r2"] > 0.85
