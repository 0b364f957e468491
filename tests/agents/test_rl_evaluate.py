"""Shared RL evaluation: an oracle actor that reports the ideal observer's answer must score
exactly the ideal observer; a coin-flipping actor must score chance."""

from __future__ import annotations

import numpy as np
import pytest

from multitask_evidence.agents.rl.evaluate import evaluate
from multitask_evidence.envs import TaskSpec
from multitask_evidence.envs.ideal import IdealObserver, best_report

# encoder 'none': the observation's evidence channels are the raw samples X(t)
SPEC = TaskSpec(n_tasks=3, sigma=0.3, stimulus_steps=4, encoder="none")


class OracleActor:
    """Accumulates the raw evidence and answers with the ideal observer's best report."""

    def __init__(self, spec: TaskSpec, report: str, free_commit_at: int | None = None):
        self.spec, self.report, self.commit_at = spec, report, free_commit_at
        self.observer = IdealObserver(spec)

    def initial_state(self, n: int):
        return {"t": 0, "x": []}

    def act(self, obs, state, deterministic=True):
        s = self.spec
        t = state["t"]
        if s.stimulus_start <= t < s.stimulus_start + s.stimulus_steps:
            state["x"].append(obs[:, : s.latent_dim].astype(np.float64))
        n = obs.shape[0]
        if state["x"]:
            q = self.observer.posterior(np.stack(state["x"], axis=1))[:, -1]
        else:
            q = np.full((n, s.n_tasks), 0.5)
        a = best_report(q, self.report)
        if self.commit_at is not None:
            commit = np.full((n, 1), int(t - s.stimulus_start + 1 >= self.commit_at))
            a = np.concatenate([a, commit.astype(a.dtype)], axis=1)
        state["t"] = t + 1
        return a, state


class CoinActor:
    def __init__(self, n_tasks: int, seed: int = 0):
        self.n, self.rng = n_tasks, np.random.default_rng(seed)

    def initial_state(self, n: int):
        return None

    def act(self, obs, state, deterministic=True):
        return self.rng.integers(0, 2, size=(obs.shape[0], self.n)), state


@pytest.mark.parametrize(
    ("env_id", "report"),
    [
        ("MultiTaskEvidence-v0", "choice"),
        ("MultiTaskEvidenceWager-v0", "wager"),
        ("MultiTaskEvidenceConfidence-v0", "confidence"),
    ],
)
def test_oracle_scores_exactly_the_ideal_observer(env_id: str, report: str) -> None:
    res = evaluate(OracleActor(SPEC, report), SPEC, env_id, n_trials=600, seed=5, max_envs=256)
    assert res.n_trials == 600 and res.report == report
    assert res.mean_reward == pytest.approx(res.ideal_reward, abs=1e-9)
    assert res.frac_ideal == pytest.approx(1.0, abs=1e-9)
    assert res.frac_ideal_reward == pytest.approx(1.0, abs=1e-9)
    assert 0.75 < res.ideal_accuracy < 1.0
    if report == "wager":
        assert res.opt_out_rate == pytest.approx(res.ideal_opt_out_rate)
        assert 0.0 < res.opt_out_rate < 0.5
    if report == "confidence":
        assert res.ece == pytest.approx(res.ideal_ece) and res.ece < 0.06


def test_free_response_reaction_times() -> None:
    res = evaluate(
        OracleActor(SPEC, "choice", free_commit_at=2),
        SPEC,
        "MultiTaskEvidenceFreeRT-v0",
        n_trials=300,
        seed=1,
    )
    assert res.response == "free" and res.abort_rate == 0.0
    assert res.rt_mean == 2.0 and res.rt_hist == [0, 300, 0, 0]
    assert res.frac_ideal == pytest.approx(1.0, abs=1e-9)  # the observer after the same 2 samples


def test_coin_flipper_scores_chance() -> None:
    res = evaluate(CoinActor(SPEC.n_tasks), SPEC, "MultiTaskEvidence-v0", n_trials=2000, seed=2)
    # accuracy 0.5 +- 3 SE over 6000 answers
    assert abs(res.accuracy - 0.5) < 3 * np.sqrt(0.25 / 6000)
    assert abs(res.frac_ideal) < 0.1


def test_evaluate_rejects_bad_trial_count() -> None:
    with pytest.raises(ValueError, match="n_trials"):
        evaluate(CoinActor(3), SPEC, "MultiTaskEvidence-v0", n_trials=0)
