"""Controls: the untrained twin is the trainer's step-0 network, the input baselines decode what
they should, and probe_run puts them in the headline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multitask_evidence import agents
from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.probes.controls import CONTROLS, score_features, stimulus_average
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


def test_evidence_mean_control_reaches_the_linear_ceiling():
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
    # r^2 of mu(T) is the ceiling 1 - 12 sigma^2 / T = 0.976 up to sampling error
    assert sc.id_r2 == pytest.approx(ceiling(spec), abs=0.006)
    assert sc.ood_r2 == pytest.approx(ceiling(spec), abs=0.012)
    assert abs(sc.angle_deg - 90) < 10  # mu's axes are the latent's own
    assert sc.headline()["mu_ood_r2"] == sc.ood_r2
    with pytest.raises(ValueError, match="control name must be one of"):
        score_features("nope", fit.latent, fit.latent, test.latent, test.latent)
    assert set(CONTROLS) == {"untrained", "input", "mu"}


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
