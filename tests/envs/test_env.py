"""The single env: same seed same trials as the generator, rewards against labels and theory,
free response, pickling, reset options, bad arguments and bad actions."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

from multitask_evidence import envs
from multitask_evidence.envs import scoring
from multitask_evidence.envs.ideal import IdealObserver, best_report
from multitask_evidence.envs.stream import DEFAULT_BLOCK_SIZE

SMALL = {"n_tasks": 6, "stimulus_steps": 5}


def _play_trial(env, policy):
    """Play one trial from the current reset; policy(step, info) -> action. Returns
    (observations [T+1, O], rewards [T], last info)."""
    obs_list, rewards = [], []
    info = env._last_reset_info
    k = 0
    while True:
        obs, r, term, trunc, info = env.step(policy(k, info))
        obs_list.append(obs)
        rewards.append(r)
        k += 1
        if term:
            return np.array(obs_list), np.array(rewards), info


def _reset(env, **kw):
    obs, info = env.reset(**kw)
    env._last_reset_info = info
    return obs, info


def test_same_seed_same_trials_as_generator() -> None:
    spec = envs.TaskSpec(**SMALL)
    k = 4
    env = envs.MultiTaskEvidenceEnv(spec, block_size=k)
    rng = np.random.default_rng(7)
    blocks = [envs.generate(spec, k, rng) for _ in range(2)]  # two consecutive blocks
    for i in range(2 * k):
        b, j = blocks[i // k], i % k
        obs0, info = _reset(env, seed=7) if i == 0 else _reset(env)
        np.testing.assert_array_equal(obs0, b.obs[j, 0])
        np.testing.assert_array_equal(info["latent"], b.latent[j])
        np.testing.assert_array_equal(info["labels"], b.labels[j])
        obs, rewards, last = _play_trial(env, lambda t, inf: np.zeros(spec.n_tasks, np.int64))
        np.testing.assert_array_equal(obs[:-1], b.obs[j, 1:])
        np.testing.assert_array_equal(obs[-1], b.obs[j, -1])  # terminal obs repeats the last row
        assert last["step"] == spec.n_steps and last["period"] == envs.DECISION
    # the default block size is what the docs promise
    assert envs.MultiTaskEvidenceEnv().options.block_size == DEFAULT_BLOCK_SIZE


def test_reseeding_restarts_and_seed_none_continues() -> None:
    env = gym.make("MultiTaskEvidence-v0", **SMALL)
    a = np.zeros(6, np.int64)
    first = env.reset(seed=3)[1]["latent"]
    env.step(a)
    assert np.array_equal(env.reset(seed=3)[1]["latent"], first)
    assert not np.array_equal(env.reset()[1]["latent"], first)


@pytest.mark.parametrize("report", ["choice", "wager", "confidence"])
def test_true_labels_earn_one_and_wrong_earn_minimum(report: str) -> None:
    env = envs.MultiTaskEvidenceEnv(report=report, decision_steps=3, delay_steps=1, **SMALL)
    for trial in range(5):
        _reset(env, seed=trial)
        n_steps = env.task_spec.n_steps

        def truth(t, inf):
            lab = inf["labels"]
            return lab.astype(np.float32) if report == "confidence" else lab.astype(np.int64)

        _, rewards, info = _play_trial(env, truth)
        assert len(rewards) == n_steps
        assert rewards.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(rewards[-3:], 1 / 3)  # spread over the 3 decision steps
        assert np.all(rewards[:-3] == 0) and info["correct"].all() and info["score"] == 1.0
        _reset(env)

        def wrong(t, inf):
            lab = 1 - inf["labels"]
            return lab.astype(np.float32) if report == "confidence" else lab.astype(np.int64)

        _, rewards, info = _play_trial(env, wrong)
        worst = 1 + np.log2(scoring.LOG_FLOOR) if report == "confidence" else 0.0
        assert rewards.sum() == pytest.approx(worst) and not info["correct"].any()


def test_wager_opt_out_and_cue_channel() -> None:
    env = envs.MultiTaskEvidenceEnv(report="wager", offer_prob=0.5, sure_reward=0.6, **SMALL)
    spec = env.task_spec
    assert env.observation_space.shape == (spec.obs_dim + 1,)
    offered_seen = []
    for trial in range(40):
        obs0, info = _reset(env, seed=100 + trial)
        obs, rewards, last = _play_trial(env, lambda t, inf: np.full(6, 2, np.int64))
        cue = np.concatenate([obs0[None, -1], obs[:, -1]])
        expected_cue = np.zeros(spec.n_steps + 1)
        if info["offered"]:
            expected_cue[spec.stimulus_start + spec.stimulus_steps :] = 1.0
        np.testing.assert_array_equal(cue, expected_cue)
        assert rewards.sum() == pytest.approx(0.6 if info["offered"] else 0.0)
        assert not last["correct"].any()
        offered_seen.append(info["offered"])
    assert 8 < sum(offered_seen) < 32  # offer_prob 0.5 over 40 trials


def test_confidence_ideal_posterior_beats_distorted_reports() -> None:
    """Strict propriety, checked through the env's rewards: reporting the ideal observer's
    posterior earns more than sharpened, flattened, shifted or hard reports."""
    spec = envs.TaskSpec(n_tasks=6, stimulus_steps=5, encoder="none")
    k, n_blocks = 16, 25  # 400 trials
    rng = np.random.default_rng(11)
    batches = [envs.generate(spec, k, rng) for _ in range(n_blocks)]
    obs = IdealObserver(spec)
    post = np.concatenate([obs.final_posterior(b.stimulus_evidence) for b in batches])
    distortions = {
        "ideal": lambda p: p,
        "sharpened": lambda p: p**2 / (p**2 + (1 - p) ** 2),
        "flattened": lambda p: 0.5 + 0.6 * (p - 0.5),
        "shifted": lambda p: np.clip(p + 0.1, 0, 1),
        "hard": lambda p: np.where(p > 0.5, 0.95, 0.05),
    }
    for rule in ("log", "brier"):
        totals = {}
        for name, f in distortions.items():
            env = envs.MultiTaskEvidenceEnv(spec, report="confidence", scoring=rule, block_size=k)
            total = 0.0
            for i in range(k * n_blocks):
                _reset(env, seed=11) if i == 0 else _reset(env)
                report = f(post[i]).astype(np.float32)
                _, rewards, info = _play_trial(env, lambda t, inf, r=report: r)
                total += rewards.sum()
                if name == "ideal":  # the env's own ideal answer is the same posterior
                    np.testing.assert_allclose(info["ideal_action"], post[i], atol=1e-9)
                    assert info["ideal_reward"] == pytest.approx(rewards.sum(), abs=1e-5)
            totals[name] = total / (k * n_blocks)
        best = max(totals, key=totals.get)
        assert best == "ideal", (rule, totals)


def test_end_info_matches_ideal_observer() -> None:
    spec = envs.TaskSpec(**SMALL)
    for report in ("choice", "wager"):
        env = envs.MultiTaskEvidenceEnv(spec, report=report, block_size=8)
        batch = envs.generate(spec, 8, np.random.default_rng(5))
        q = IdealObserver(spec).final_posterior(batch.stimulus_evidence)
        best = best_report(q, report, sure_reward=0.7)
        for i in range(8):
            _reset(env, seed=5) if i == 0 else _reset(env)
            _, rewards, info = _play_trial(env, lambda t, inf: np.ones(6, np.int64))
            np.testing.assert_array_equal(info["ideal_action"], best[i])
            want = scoring.score(report, best[i], batch.labels[i], sure_reward=0.7)
            assert info["ideal_reward"] == pytest.approx(want)
            assert rewards.sum() == pytest.approx(np.mean(batch.labels[i] == 1))


def test_free_response_commit_abort_deadline_and_cost() -> None:
    spec = envs.TaskSpec(**SMALL)
    cost = 0.02
    env = envs.MultiTaskEvidenceEnv(spec, response="free", evidence_cost=cost, block_size=8)
    assert env.action_space.nvec.tolist() == [2] * 6 + [2]
    batch = envs.generate(spec, 8, np.random.default_rng(9))
    q = IdealObserver(spec).posterior(batch.stimulus_evidence)  # [8, Ts, N]
    # go channel: 1 during fixation, 0 from stimulus onset
    obs0, info = _reset(env, seed=9)
    assert obs0[-1] == 1.0 and info["period"] == envs.FIXATION

    def commit_at(step):
        return lambda t, inf: np.append(inf["labels"].astype(np.int64), int(t == step))

    obs, rewards, last = _play_trial(env, commit_at(3))  # fixation step 0, commit after 3 samples
    assert np.all(obs[:-1, -1] == 0.0)
    assert last["reaction_time"] == 3 and not last["aborted"]
    assert rewards.sum() == pytest.approx(1.0 - 3 * cost)
    np.testing.assert_array_equal(last["ideal_action"], (q[0, 2] > 0.5).astype(int))
    want = scoring.score("choice", q[0, 2] > 0.5, batch.labels[0]) - 3 * cost
    assert last["ideal_reward"] == pytest.approx(want)
    # commit during fixation: abort, reward 0
    _reset(env)
    _, rewards, last = _play_trial(env, commit_at(0))
    assert last["aborted"] and rewards.tolist() == [0.0] and last["reaction_time"] == 0
    # never commit: scored at the deadline after all samples
    _reset(env)
    _, rewards, last = _play_trial(env, commit_at(-1))
    assert last["reaction_time"] == spec.stimulus_steps and len(rewards) == 1 + spec.stimulus_steps
    assert rewards.sum() == pytest.approx(1.0 - spec.stimulus_steps * cost)
    # confidence free response: last Box component > 0.5 commits
    env = envs.MultiTaskEvidenceEnv(spec, report="confidence", response="free")
    _reset(env, seed=1)
    _, rewards, last = _play_trial(
        env, lambda t, inf: np.append(inf["labels"], 0.9 if t == 2 else 0.1).astype(np.float32)
    )
    assert last["reaction_time"] == 2 and rewards.sum() == pytest.approx(1.0)


def test_pickled_env_continues_identically() -> None:
    env = gym.make("MultiTaskEvidenceWager-v0", offer_prob=0.5, block_size=3, **SMALL)
    env.reset(seed=4)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(200)]
    for a in actions[:5]:
        env.step(a)  # mid-trial
    clone = pickle.loads(pickle.dumps(env))
    for a in actions[5:]:  # crosses trial and block boundaries
        out1, out2 = env.step(a), clone.step(a)
        np.testing.assert_array_equal(out1[0], out2[0])
        assert out1[1:4] == out2[1:4]
        assert out1[4].keys() == out2[4].keys()
        for key in out1[4]:
            np.testing.assert_array_equal(out1[4][key], out2[4][key])
        if out1[2]:
            np.testing.assert_array_equal(env.reset()[0], clone.reset()[0])


def test_reset_options_latent_and_region() -> None:
    env = envs.MultiTaskEvidenceEnv(**SMALL)
    geo = envs.task_geometry(env.task_spec)
    x = np.array([0.3, -0.2])
    obs0, info = _reset(env, seed=0, options={"latent": x})
    np.testing.assert_array_equal(info["latent"], x)
    np.testing.assert_array_equal(info["labels"], geo.labels(x))
    obs, _, last = _play_trial(env, lambda t, inf: inf["labels"].astype(np.int64))
    # the evidence is x + this trial's noise from the block: its mean is near x
    plain = envs.generate(env.task_spec, 16, np.random.default_rng(0))
    ev = x + (plain.stimulus_evidence[0] - plain.latent[0])
    np.testing.assert_allclose(obs[: env.task_spec.stimulus_steps, :-1], geo.encode(ev), rtol=1e-6)
    assert "ideal_action" in last
    for _ in range(20):
        _, info = _reset(env, options={"region": {"orthants": [3]}})
        assert np.all(info["latent"] > 0)
    with pytest.raises(ValueError, match="latent"):
        env.reset(options={"latent": [0.1]})
    with pytest.raises(ValueError, match="allowed"):
        env.reset(options={"bogus": 1})


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"report": "vote"}, "report"),
        ({"response": "sometimes"}, "response"),
        ({"scoring": "hinge"}, "scoring"),
        ({"report": "wager", "sure_reward": 1.5}, "sure_reward"),
        ({"report": "wager", "offer_prob": -0.1}, "offer_prob"),
        ({"offer_prob": 0.5}, "offer_prob"),
        ({"response": "free", "evidence_cost": -1.0}, "evidence_cost"),
        ({"evidence_cost": 0.1}, "evidence_cost"),
        ({"block_size": 0}, "block_size"),
        ({"ideal_info": "yes"}, "ideal_info"),
        ({"n_tasks": 0}, "n_tasks"),
        ({"colour": "red"}, "colour"),
        ({"render_mode": "ansi"}, "render_mode"),
        ({"spec": "paper"}, "spec"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        envs.MultiTaskEvidenceEnv(**kwargs)
    with pytest.raises(ValueError, match=name):
        envs.MultiTaskEvidenceVectorEnv(2, **kwargs)


@pytest.mark.parametrize("report", ["choice", "wager", "confidence"])
@pytest.mark.parametrize("response", ["fixed", "free"])
def test_bad_actions_raise(report: str, response: str) -> None:
    env = gym.make("MultiTaskEvidence-v0", report=report, response=response, **SMALL)
    env.reset(seed=0)
    good = env.action_space.sample()
    if response == "free":
        good[-1] = 0
    n = good.shape[0]
    bad = [good[:-1], np.append(good, 0), good[None], np.zeros((n, 1))]
    for j in (0, n - 1):
        for v in (-1.0, 3.0, np.nan, np.inf, 0.5 if report != "confidence" else 1.5):
            b = good.astype(np.float64)
            b[j] = v
            bad.append(b)
        if report != "confidence":
            for v in (-1, 3, 256, 2**40):
                b = good.copy()
                b[j] = v
                bad.append(b)
    for b in bad:
        with pytest.raises(ValueError):
            env.step(b)
    env.step(good)  # still usable after rejected actions
    # python lists and other integer dtypes are accepted
    env.step(good.tolist())
    if report != "confidence":
        env.step(good.astype(np.int32))


def test_step_after_end_raises() -> None:
    env = gym.make("MultiTaskEvidence-v0", **SMALL)
    env.reset(seed=0)
    a = np.zeros(6, np.int64)
    for _ in range(env.unwrapped.task_spec.n_steps):
        *_, term, _, _ = env.step(a)
    assert term
    with pytest.raises(envs.TrialEndedError, match="reset"):
        env.step(a)
    env.reset()
    env.step(a)
    raw = envs.MultiTaskEvidenceEnv(**SMALL)
    with pytest.raises(envs.TrialEndedError):
        raw.step(a)  # before any reset


def test_envs_refuse_evidence_in_the_decision_steps():
    # targets='free_rt_paper' puts evidence in the decision steps; the envs' episodes do not
    for make in (envs.MultiTaskEvidenceEnv, envs.MultiTaskEvidenceVectorEnv):
        with pytest.raises(ValueError, match="free_rt_paper"):
            make(targets="free_rt_paper")
