"""benchmarks/bench_neurogym.py on a tiny budget (nothing here is timed against a target): the
measurement counts steps and resets as its protocol says, a round runs our side in a worker, the
medians are medians of per-round ratios; the neurogym side runs only where its venv exists."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium as gym
import pytest

from multitask_evidence import envs  # noqa: F401  (registers the ids)

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_neurogym.py"
_spec = importlib.util.spec_from_file_location("bench_neurogym", PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

NO_VENV = not bench.venv_python(bench.DEFAULT_VENV).exists()


def test_measure_counts_steps_and_resets_of_a_single_env():
    env = gym.make(bench.OURS_ID)
    out = bench.measure(env, 500, seed=3)
    trial = env.unwrapped.trial_steps  # 22: one trial per episode
    # the warm-up leaves the env WARMUP % 22 steps into a trial; the timed steps then end a trial
    # after the rest of it, and every 22 steps after that
    first = trial - bench.WARMUP % trial
    assert out["steps"] == 500
    assert out["resets"] == (500 - first) // trial + 1
    assert out["steps_per_s"] == pytest.approx(500 / out["wall_s"])
    assert out["cpu_steps_per_s"] > 0


def test_measure_counts_every_sub_env_of_a_vector_env():
    venv = gym.make_vec(bench.OURS_ID, 4, vectorization_mode="vector_entry_point")
    out = bench.measure(venv, 1000, num_envs=4)
    assert out["steps"] == 1000 and out["resets"] == 0  # 250 calls; the vector env autoresets
    with pytest.raises(ValueError, match="n_steps"):
        bench.measure(venv, 0, num_envs=4)


def test_summary_takes_medians_of_per_round_ratios():
    def side(rate, cpu):
        return {"steps_per_s": rate, "cpu_steps_per_s": cpu}

    rows = [
        {
            "ours": side(o, 2 * o),
            "neurogym": side(n, 2 * n),
            "ratio_steps_per_s": o / n,
            "ratio_cpu_steps_per_s": o / n,
        }
        for o, n in ((100.0, 200.0), (300.0, 100.0), (120.0, 100.0))
    ]
    m = bench.summarise(rows)
    assert m["ours_steps_per_s"] == 120.0 and m["neurogym_cpu_steps_per_s"] == 200.0
    # the median of the ratios (0.5, 3, 1.2), not the ratio of the medians (120 / 100)
    assert m["ratio_steps_per_s"] == 1.2
    assert m["ratio_cpu_steps_per_s"] == 1.2


def test_a_round_of_our_side_runs_in_a_worker():
    rows = bench.run_rounds(1, 300, 0, None, variants=False)
    assert rows[0]["ours"]["steps"] == 300
    assert "neurogym" not in rows[0] and "ratio_steps_per_s" not in rows[0]
    assert "ours_bare" not in rows[0]
    assert len(rows[0]["load_before"]) == 3


def test_variants_change_only_what_they_name():
    # the bare variant is our env without encoder and ideal observer: raw evidence channels
    bare = gym.make(bench.OURS_ID, **bench.SINGLE_VARIANTS["ours_bare"])
    default = gym.make(bench.OURS_ID, **bench.SINGLE_VARIANTS["ours"])
    assert bare.observation_space.shape[0] == 2 + 1  # D evidence channels + go
    assert default.observation_space.shape[0] == 40 + 1  # the encoder's 40 channels + go
    _, info = bare.reset(seed=0)
    assert set(info) == {"latent", "labels", "step", "period"}
    out = bench.measure(bare, 100, seed=0)
    assert out["steps"] == 100
    with pytest.raises(ValueError, match="side must be one of"):
        bench._worker("theirs", 10, 0)


@pytest.mark.skipif(
    NO_VENV,
    reason=f"neurogym's venv {bench.DEFAULT_VENV} is missing (python benchmarks/bench_neurogym.py "
    "creates it); our side is tested above",
)
def test_a_round_against_neurogym():
    python = bench.venv_python(bench.DEFAULT_VENV)
    rows = bench.run_rounds(1, 300, 0, python, bench._torch_standin(bench.DEFAULT_VENV))
    row = rows[0]
    assert row["neurogym"]["steps"] == 300 and row["neurogym"]["resets"] == 0
    assert row["ratio_steps_per_s"] == pytest.approx(
        row["ours"]["steps_per_s"] / row["neurogym"]["steps_per_s"]
    )


def test_where_the_time_goes_subtracts_the_variants_rates():
    rates = {
        "neurogym": 250_000.0,  # 4 us per step
        "ours": 125_000.0,  # 8 us
        "ours_no_ideal": 200_000.0,  # 5 us
        "ours_bare": 400_000.0,  # 2.5 us
        "ours_vector": 500_000.0,  # 2 us
        "ours_vector_no_ideal": 1_250_000.0,  # 0.8 us
    }
    m = {f"{side}_steps_per_s": r for side, r in rates.items()}
    m["ratio_ours_bare_steps_per_s"] = 1.6
    text = "\n".join(bench._where_the_time_goes(m))
    assert "| the encoder (2 -> 100 -> 100 -> 40 ReLU, on every observation row) | 2.50 | |" in text
    assert "| the ideal observer's answer in the end-of-trial `info` | 3.00 | 1.20 |" in text
    assert "| target | 3.08 (1.3x neurogym) | 1.00 (1,000,000 env steps/s) |" in text
    assert "together cost 5.50 us per step, more than the target's whole budget of 3.08" in text
    assert "runs at 1.60x neurogym" in text and "1,250,000 env steps/s" in text
    # without every variant there is nothing to subtract
    del m["ours_bare_steps_per_s"]
    assert bench._where_the_time_goes(m) == []
