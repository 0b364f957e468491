"""benchmarks/bench_encoder.py on a small block (nothing here is timed against a target): the
per-trial product it measures gives a trial the same bits alone and in a block, as the
generator promises; both ways agree to float32 rounding."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from multitask_evidence.envs import TaskSpec
from multitask_evidence.envs.task import task_geometry

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_encoder.py"
_spec = importlib.util.spec_from_file_location("bench_encoder", PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_per_trial_product_is_block_invariant_and_close_to_the_flat_one():
    row = bench.measure((8,), repeats=1)["rows"][0]
    assert row["block"] == 8
    assert row["differ_alone_vs_block_per_trial"] == 0.0
    assert row["us_per_trial_per_trial_matmul"] > 0 and row["us_per_trial_flat_matmul"] > 0
    encode = task_geometry(TaskSpec()).encode
    x = np.random.default_rng(1).normal(0.0, 0.3, (8, 20, 2))
    a, b = bench.per_trial(encode, x), bench.flat(encode, x)
    assert a.shape == b.shape == (8, 20, 40) and a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.array_equal(a, encode(x))  # the generator's own call
