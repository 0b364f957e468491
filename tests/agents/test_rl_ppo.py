"""Native recurrent PPO: GAE, rollout masks, config errors, training on every report kind,
run folder, resume and loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from multitask_evidence.agents.rl import ALGOS, load
from multitask_evidence.agents.rl.ppo import build_agent, collect, gae, make_vector_env
from multitask_evidence.agents.rl.ppo_config import PPOConfig
from multitask_evidence.envs import TaskSpec

EASY = TaskSpec(n_tasks=2, sigma=0.1, stimulus_steps=4)  # 6 steps per trial


def _cfg(**kw) -> PPOConfig:
    base = dict(
        num_envs=128,
        total_steps=128 * 6 * 30,
        eval_every=1000,
        eval_trials=512,
        progress=False,
        seed=0,
    )
    return PPOConfig(**{**base, **kw})


def test_gae_matches_hand_computation() -> None:
    r = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.5, 0.0, 0.0]])
    v = torch.tensor([[0.2, 0.4, 0.6, 0.0], [0.1, 0.3, 0.0, 0.0]])
    alive = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    adv, ret = gae(r, v, alive, gamma=1.0, lam=1.0)
    # lambda = 1, gamma = 1: returns are the sums of future rewards within the trial
    torch.testing.assert_close(ret, torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.5, 0.5, 0.0, 0.0]]))
    adv, _ = gae(r, v, alive, gamma=0.9, lam=0.5)
    d2 = 1.0 - 0.6
    d1 = 0.9 * 0.6 - 0.4
    d0 = 0.9 * 0.4 - 0.2
    a1 = d1 + 0.45 * d2
    torch.testing.assert_close(adv[0, :3], torch.tensor([d0 + 0.45 * a1, a1, d2]))
    assert adv[0, 3] == 0 and adv[1, 2:].abs().sum() == 0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(arch="mamba"), "arch"),
        (dict(num_envs=4, num_minibatches=8), "num_minibatches"),
        (dict(env_id="CartPole-v1x"), "env_id"),
        (dict(env_kwargs="[1, 2]"), "env_kwargs"),
        (dict(env_kwargs="{bad json"), "env_kwargs"),
        (dict(continuous_head="cauchy"), "continuous_head"),
        (dict(gamma=1.5), "gamma"),
        (dict(ratio="sum"), "ratio"),
        (dict(lr=0.0), "lr"),
    ],
)
def test_config_errors(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PPOConfig(**kw)


def test_task_fields_in_env_kwargs_are_rejected() -> None:
    with pytest.raises(ValueError, match="belong in the spec"):
        build_agent(EASY, PPOConfig(env_kwargs='{"n_tasks": 3}'))


def test_fixed_rollout_scores_only_the_decision_step() -> None:
    cfg = _cfg(num_envs=16)
    agent, layout, scoring = build_agent(EASY, cfg)
    vec = make_vector_env(cfg.env_id, EASY, 16, {})
    ro = collect(agent, vec, EASY, layout, scoring, 3, torch.device("cpu"))
    vec.close()
    assert ro.alive.sum() == 16 * EASY.n_steps
    dec = EASY.decision_start
    assert torch.all(ro.scored[:, dec] == 1) and ro.scored.sum() == 16 * 2
    assert torch.all(ro.rewards[:, :dec] == 0)
    # the decision-step reward is the fraction of correct answers of the sampled action
    correct = (ro.actions[:, dec].numpy() == ro.final["labels"]).mean(1)
    np.testing.assert_allclose(ro.rewards[:, dec].numpy(), correct, atol=1e-6)


def test_free_rollout_masks_after_commit() -> None:
    cfg = _cfg(env_id="MultiTaskEvidenceFreeRT-v0", num_envs=64)
    agent, layout, scoring = build_agent(EASY, cfg)
    assert scoring.commit_index == 2 and scoring.trial_steps == 5
    vec = make_vector_env(cfg.env_id, EASY, 64, {})
    ro = collect(agent, vec, EASY, layout, scoring, 0, torch.device("cpu"))
    vec.close()
    length = ro.alive.sum(1)
    assert torch.all((length >= 1) & (length <= 5)) and length.min() < 5  # random commits
    # commit scored at every alive step, the report once at the end (unless aborted)
    torch.testing.assert_close(ro.scored[:, :, 2], ro.alive)
    ended_in_stim = length >= 2
    assert torch.all(ro.scored[:, :, 0].sum(1) == ended_in_stim.float())
    assert torch.all(ro.alive[:, 1:] <= ro.alive[:, :-1])  # alive is a prefix


@pytest.mark.parametrize(
    "env_id",
    [
        "MultiTaskEvidence-v0",
        "MultiTaskEvidenceWager-v0",
        "MultiTaskEvidenceConfidence-v0",
        "MultiTaskEvidenceFreeRT-v0",
    ],
)
def test_native_ppo_beats_chance_on_every_report_kind(env_id: str, tmp_path) -> None:
    # Wagers have an "opt-out trap": the sure reward (0.7) beats the initial random answers (0.5),
    # so a slow learner settles on always opting out. Four epochs per rollout escape it here.
    epochs = 4 if env_id == "MultiTaskEvidenceWager-v0" else 2
    cfg = _cfg(env_id=env_id, update_epochs=epochs)
    run = ALGOS["ppo"][1](EASY, cfg, tmp_path / "run", False)
    ev = run.final_eval
    # chance: random answers (choice, wager: reward 0.5) / reporting 0.5 (confidence: score 0)
    assert ev["frac_ideal"] > 0.5, ev
    if env_id == "MultiTaskEvidenceWager-v0":
        assert ev["mean_reward"] > 0.7, ev  # better than always taking the sure reward
    if env_id == "MultiTaskEvidenceConfidence-v0":
        assert ev["frac_ideal_reward"] > 0.25 and ev["ece"] < 0.25, ev
    if env_id == "MultiTaskEvidenceFreeRT-v0":
        assert ev["abort_rate"] < 0.05 and ev["frac_ideal"] > 0.5, ev


@pytest.mark.parametrize("arch", ["rnn", "lstm", "transformer"])
def test_every_core_trains_and_loads(arch: str, tmp_path) -> None:
    cfg = _cfg(
        arch=arch,
        hidden_size=16,
        n_heads=2,
        mlp_size=32,
        num_envs=32,
        total_steps=32 * 6 * 2,
        eval_trials=64,
    )
    run = ALGOS["ppo"][1](EASY, cfg, tmp_path / arch, False)
    assert run.updates == 2
    pol = load(tmp_path / arch)
    obs = np.random.default_rng(0).standard_normal((3, 6, EASY.obs_dim)).astype(np.float32)
    h, out = pol.hidden_and_outputs(obs)
    assert h.shape == (3, 6, 16) and out.shape == (3, 6, 2)
    assert np.all((out >= 0) & (out <= 1))


def test_run_folder_resume_and_load(tmp_path) -> None:
    cfg = _cfg(
        num_envs=32, total_steps=32 * 6 * 4, eval_every=2, checkpoint_every=2, eval_trials=64
    )
    full = ALGOS["ppo"][1](EASY, cfg, tmp_path / "full", False)
    d = tmp_path / "full"
    assert json.loads((d / "config.json").read_text())["kind"] == "ppo"
    assert TaskSpec.from_json((d / "spec.json").read_text()) == EASY
    lines = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert [x["update"] for x in lines] == [1, 2, 3, 4]
    assert "eval/frac_ideal" in lines[1] and "loss/pg" in lines[1]
    assert any(p.name.startswith("events.out.tfevents") for p in d.iterdir())
    with pytest.raises(ValueError, match="already holds a run"):
        ALGOS["ppo"][1](EASY, cfg, d, False)

    # interrupted after 2 updates, then resumed: the same weights as the uninterrupted run
    half = PPOConfig(**{**cfg.__dict__, "total_steps": cfg.total_steps})
    part = tmp_path / "part"
    ALGOS["ppo"][1](EASY, PPOConfig(**{**half.__dict__, "max_seconds": 1e-9}), part, False)
    ck = torch.load(part / "checkpoint.pt", weights_only=True)
    assert ck["update"] == 1  # max_seconds stops after the first update
    resumed = ALGOS["ppo"][1](EASY, half, part, True)
    assert resumed.updates == 4
    a = torch.load(d / "model.pt", weights_only=True)
    b = torch.load(part / "model.pt", weights_only=True)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)

    # load(): outputs agree with the policy's own step-wise decisions
    pol = load(d)
    assert pol.spec == EASY and pol.config.num_envs == 32
    from multitask_evidence.envs import generate

    batch = generate(EASY, 50, 9)
    h, out = pol.hidden_and_outputs(batch.obs)
    state = pol.initial_state(50)
    for t in range(EASY.n_steps):
        env_a, state, _ = pol.act(batch.obs[:, t], state)
    np.testing.assert_array_equal(env_a, (out[:, -1] > 0.5).astype(np.int64))
    assert full.final_eval["n_trials"] == 64
