"""Shared fixtures of the probe tests: one BLAS thread (the machine is shared; the tests' numbers
do not depend on it) and small known-answer representations."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from multitask_evidence.envs import TaskSpec
from multitask_evidence.probes import synthetic


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def paper_mu():
    """x* [20000, 2] and mu(T) [20000, 2] of the paper task (sigma 0.2, T = 20)."""
    return synthetic.sample_mu(TaskSpec(encoder="none"), 20000, seed=0)


@pytest.fixture
def ideal_agent():
    return synthetic.IdealAgent(TaskSpec(encoder="none"))


TRAINED_RUN = __import__("pathlib").Path(__file__).parent / "data" / "rnn_default_n24"


@pytest.fixture(scope="session")
def trained_recording():
    """4096 recorded trials of the trained RNN fixture (default preset, N = 24)."""
    import torch

    from multitask_evidence import agents
    from multitask_evidence.probes.record import record

    torch.set_num_threads(1)
    return record(agents.load(TRAINED_RUN), None, 4096, 12345)
