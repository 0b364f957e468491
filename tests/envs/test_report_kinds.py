"""A report kind is one object: a kind defined and registered here only (a graded answer, "sure"
or "guess" on either side) runs through the single env (Gymnasium's checker), the native vector
env and the RL evaluation; and no module outside envs/reports.py branches on a kind's name."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from multitask_evidence import envs
from multitask_evidence.agents.rl.evaluate import evaluate, summarise_final
from multitask_evidence.envs.ideal import IdealObserver
from multitask_evidence.envs.reports import (
    REPORT_KINDS,
    EndOfTrials,
    ReportKind,
    Rules,
    register_report_kind,
    report_kind,
)

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"n_tasks": 4, "stimulus_steps": 5}

SURE_BELOW, GUESS_BELOW, GUESS_ABOVE, SURE_ABOVE = 0, 1, 2, 3


class Graded(ReportKind):
    """Per task: 0 sure below, 1 guess below, 2 guess above, 3 sure above. A sure answer earns
    +1 right / -1 wrong, a guess +0.5 right / 0 wrong; so, with m = max(p, 1 - p), saying "sure"
    pays 2m - 1 and guessing 0.5 m: sure is best when m > 2/3."""

    name = "graded"
    n_options = 4
    chance_reward = 0.25  # guessing with no evidence (m = 0.5)

    def rule(self, a: np.ndarray, y: np.ndarray, rules: Rules, offered: object) -> np.ndarray:
        right = (a >= 2) == y
        sure = (a == SURE_BELOW) | (a == SURE_ABOVE)
        return np.where(sure, np.where(right, 1.0, -1.0), np.where(right, 0.5, 0.0))

    def correct(self, reports: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return (np.asarray(reports) >= 2) == (np.asarray(labels) > 0.5)

    def best_report(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        p = np.asarray(probs, dtype=np.float64)
        above = p > 0.5
        sure = np.maximum(p, 1.0 - p) > 2.0 / 3.0
        return np.where(above, np.where(sure, SURE_ABOVE, GUESS_ABOVE), np.where(sure, 0, 1))

    def expected_reward(self, probs: np.ndarray, rules: Rules) -> np.ndarray:
        m = np.maximum(probs, 1.0 - np.asarray(probs))
        return np.maximum(2.0 * m - 1.0, 0.5 * m)

    def display_values(self, reports: np.ndarray) -> np.ndarray:
        return np.asarray(reports, dtype=np.float64) / 3.0

    def metrics(self, trials: EndOfTrials) -> dict[str, float]:
        sure = (trials.reports == SURE_BELOW) | (trials.reports == SURE_ABOVE)
        return {"sure_rate": float(sure[~trials.aborted].mean())}


@pytest.fixture
def graded() -> Iterator[Graded]:
    kind = register_report_kind(Graded())
    yield kind
    del REPORT_KINDS[kind.name]


def _answer(labels: np.ndarray, sure: bool, right: bool) -> np.ndarray:
    side = labels.astype(np.int64) if right else 1 - labels.astype(np.int64)
    return np.where(side == 1, SURE_ABOVE if sure else GUESS_ABOVE, 0 if sure else GUESS_BELOW)


def test_registry_lookup_and_bad_kinds(graded: Graded) -> None:
    assert report_kind("graded") is graded
    allowed = r"report must be one of \['choice', 'wager', 'confidence', 'graded'\]"
    with pytest.raises(ValueError, match=allowed):
        report_kind("coarse")
    with pytest.raises(ValueError, match="already registered"):
        register_report_kind(type("Other", (Graded,), {})())
    with pytest.raises(ValueError, match="kind must be a ReportKind"):
        register_report_kind("graded")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="offer_prob applies to report='wager' only"):
        envs.MultiTaskEvidenceEnv(report="graded", offer_prob=0.5)


@pytest.mark.parametrize("response", ["fixed", "free"])
def test_new_kind_passes_gymnasium_checker(graded: Graded, response: str) -> None:
    env = gym.make("MultiTaskEvidence-v0", report="graded", response=response, **SMALL)
    n = SMALL["n_tasks"]
    nvec = [4] * n + [2] * (response == "free")
    assert env.action_space == gym.spaces.MultiDiscrete(nvec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=True)
    # the byte fast path and the exact path accept 0..3 and refuse 4 (and a commit of 2)
    env.reset(seed=0)
    bad = np.zeros(len(nvec), dtype=np.int64)
    bad[0] = 4
    with pytest.raises(ValueError, match="out of range"):
        env.step(bad)
    if response == "free":
        bad[0], bad[-1] = 3, 2
        with pytest.raises(ValueError, match="out of range"):
            env.step(bad)
    env.step(np.full(len(nvec), 0, dtype=np.int32))


def test_new_kind_rewards_in_the_single_env(graded: Graded) -> None:
    env = envs.MultiTaskEvidenceEnv(report="graded", decision_steps=2, **SMALL)
    cases = {(True, True): 1.0, (True, False): -1.0, (False, True): 0.5, (False, False): 0.0}
    for seed, ((sure, right), expected) in enumerate(cases.items()):
        _, info = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            _, r, done, _, info = env.step(_answer(info["labels"], sure, right))
            total += r
        assert total == pytest.approx(expected) and info["score"] == pytest.approx(expected)
        assert np.all(info["correct"] == right)
        # the ideal observer answers with the kind's best report of its posterior
        q = IdealObserver(env.task_spec).final_posterior(
            env._block.batch.stimulus_evidence[env._pos : env._pos + 1]
        )[0]
        np.testing.assert_array_equal(info["ideal_action"], graded.best_report(q, env.options))
        score = graded.score(info["ideal_action"], info["labels"], env.options, True)
        assert info["ideal_reward"] == pytest.approx(score)
    # free response: a sure, right answer after 2 samples, minus the evidence cost
    env = envs.MultiTaskEvidenceEnv(report="graded", response="free", evidence_cost=0.01, **SMALL)
    _, info = env.reset(seed=9)
    wait = np.zeros(SMALL["n_tasks"] + 1, dtype=np.int64)
    env.step(wait)  # fixation
    _, r1, _, _, info = env.step(wait)
    _, r2, done, _, info = env.step(np.append(_answer(info["labels"], True, True), 1))
    assert done and info["reaction_time"] == 2 and r1 == pytest.approx(-0.01)
    assert r2 == pytest.approx(1.0 - 0.01) and info["correct"].all()


def test_new_kind_vector_env_equals_single_envs(graded: Graded) -> None:
    m, kw = 3, SMALL | {"report": "graded", "block_size": 2}
    venv = envs.MultiTaskEvidenceVectorEnv(m, **kw)
    singles = [envs.MultiTaskEvidenceEnv(**kw) for _ in range(m)]
    venv.reset(seed=4)
    for i, env in enumerate(singles):
        env.reset(seed=4 + i)
    venv.action_space.seed(0)
    restart = np.zeros(m, dtype=bool)
    ends = 0
    for _ in range(60):
        actions = venv.action_space.sample()
        _, rew, term, _, vinfo = venv.step(actions)
        for i, env in enumerate(singles):
            if restart[i]:
                env.reset()
                continue
            _, r, te, _, info = env.step(actions[i])
            assert rew[i] == pytest.approx(r, abs=1e-12) and term[i] == te
            if te:
                ends += 1
                np.testing.assert_array_equal(vinfo["correct"][i], info["correct"])
                assert vinfo["score"][i] == pytest.approx(info["score"])
                assert vinfo["ideal_reward"][i] == pytest.approx(info["ideal_reward"])
                assert vinfo["ideal_action"].dtype == np.int64
        restart = term
    assert ends >= 6


class IdealGraded:
    """Accumulates the raw evidence (encoder 'none') and reports the graded best report."""

    def __init__(self, spec: envs.TaskSpec, kind: Graded) -> None:
        self.spec, self.kind, self.observer = spec, kind, IdealObserver(spec)

    def initial_state(self, n: int) -> dict:
        return {"t": 0, "x": []}

    def act(self, obs: np.ndarray, state: dict, deterministic: bool = True) -> tuple:
        s, t = self.spec, state["t"]
        if s.stimulus_start <= t < s.stimulus_start + s.stimulus_steps:
            state["x"].append(obs[:, : s.latent_dim].astype(np.float64))
        q = (
            self.observer.posterior(np.stack(state["x"], axis=1))[:, -1]
            if state["x"]
            else np.full((obs.shape[0], s.n_tasks), 0.5)
        )
        state["t"] = t + 1
        return self.kind.best_report(q, None), state


def test_new_kind_in_the_rl_evaluation(graded: Graded) -> None:
    spec = envs.TaskSpec(n_tasks=3, sigma=0.3, stimulus_steps=4, encoder="none")
    res = evaluate(
        IdealGraded(spec, graded), spec, "MultiTaskEvidence-v0", {"report": "graded"}, 300, seed=3
    )
    assert res.report == "graded" and res.mean_reward == pytest.approx(res.ideal_reward)
    assert res.frac_ideal == pytest.approx(1.0) and res.frac_ideal_reward == pytest.approx(1.0)
    assert 0.0 < res.extra["sure_rate"] < 1.0 and res.ece is None and res.opt_out_rate is None
    # hand-made terminal infos: 2 trials x 2 tasks
    final = {
        "labels": np.array([[1.0, 0.0], [1.0, 1.0]]),
        "correct": np.array([[True, False], [True, True]]),
        "ideal_action": np.array([[3, 0], [2, 3]]),
        "ideal_reward": np.array([1.0, 0.75]),
    }
    reports = np.array([[3, 2], [2, 3]])
    s = summarise_final(final, np.array([0.0, 0.75]), reports, "graded")
    assert s["accuracy"] == 0.75 and s["ideal_accuracy"] == 1.0
    assert s["frac_ideal"] == pytest.approx((0.75 - 0.5) / 0.5)
    assert s["frac_ideal_reward"] == pytest.approx((0.375 - 0.25) / (0.875 - 0.25))
    assert s["sure_rate"] == 0.5


NAME_BRANCH = re.compile(
    r"""(==|!=|\bin\b)\s*\(?\s*["'](choice|wager|confidence)["']"""
    r"""|["'](choice|wager|confidence)["']\s*(==|!=)"""
)


def test_no_branch_on_a_kind_name_outside_the_kinds() -> None:
    files = sorted((ROOT / "envs").rglob("*.py")) + [
        ROOT / "agents" / "rl" / "evaluate.py",
        ROOT / "agents" / "rl" / "layout.py",
    ]
    found = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in files
        if path.name != "reports.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if NAME_BRANCH.search(line)
    ]
    assert not found, found
