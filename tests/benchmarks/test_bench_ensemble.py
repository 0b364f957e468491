"""benchmarks/bench_ensemble.py's compute accounting (nothing here is timed): the FLOPs it
counts per network-step and the dropout mask elements it charges per network equal the counts
worked out by hand for the paper's task (T = 22, batch 16, H = 64, N = 24)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from multitask_evidence.envs import TaskSpec

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ensemble.py"
_spec = importlib.util.spec_from_file_location("bench_ensemble", PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

B, T, H, N = 16, 22, 64, 24


def mm(m: int, k: int, n: int) -> int:
    return 2 * m * k * n


def test_rnn_flops_are_the_matmuls_of_its_forward_and_hand_written_backward():
    torch.set_num_threads(1)
    spec = TaskSpec()
    o = spec.obs_dim  # 40 encoded channels + go
    forward = mm(B * T, o, H) + T * mm(B, H, H) + mm(B * T, H, N)  # drive, recurrence, readout
    backward = (
        (T - 1) * mm(B, H, H)  # d h_{t-1} through W_hh (none before step 0)
        + mm(H, B * (T - 1), H)  # d W_hh
        + mm(o, B * T, H)  # d W_ih (the observations need no gradient)
        + 2 * mm(B * T, H, N)  # d readout weight and d hidden
    )
    assert bench.flops_per_network_step(spec, "rnn") == forward + backward == 15_327_232


def test_dropout_elements_are_the_transformers_four_dropouts():
    torch.set_num_threads(1)
    spec = TaskSpec()
    heads = 8
    embedding, attention, projection, mlp = B * T * H, B * heads * T * T, B * T * H, B * T * H
    expected = embedding + attention + projection + mlp
    assert bench.dropout_elements_per_network_step(spec, "transformer") == expected == 129_536
    assert bench.dropout_elements_per_network_step(spec, "lstm") == 0
