"""Shared fixtures of the probe tests: one BLAS thread (the machine is shared; the tests' numbers
do not depend on it) and small known-answer representations."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from envs import TaskSpec
from probes import synthetic


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


class IdealAgent:
    """A perfect agent for encoder='none' tasks: hidden = a rotated embedding of mu(t) (plus a
    little noise) and outputs = the flat-prior ideal observer's probabilities at each step."""

    def __init__(self, spec: TaskSpec, hidden: int = 16, noise: float = 1e-3, seed: int = 0):
        self.spec = spec
        rng = np.random.default_rng(seed)
        self.q = np.linalg.qr(rng.standard_normal((hidden, spec.latent_dim)))[0]
        self.noise, self.rng = noise, rng

    def hidden_and_outputs(self, obs):
        from probes.record import running_mean
        from probes.theory import ideal_probs

        s = self.spec
        ev = obs[:, :, : s.latent_dim].astype(np.float64)
        ev[:, : s.stimulus_start] = 0.0
        ev[:, s.stimulus_start + s.stimulus_steps :] = 0.0
        mu, seen = running_mean(s, ev)
        h = mu @ self.q.T + self.noise * self.rng.standard_normal((*mu.shape[:2], self.q.shape[0]))
        out = ideal_probs(s, mu, np.maximum(seen, 1)[:, None])
        return h.astype(np.float32), out.astype(np.float32)


@pytest.fixture
def ideal_agent():
    return IdealAgent(TaskSpec(encoder="none"))


TRAINED_RUN = __import__("pathlib").Path(__file__).parent / "data" / "rnn_default_n24"


@pytest.fixture(scope="session")
def trained_recording():
    """4096 recorded trials of the trained RNN fixture (default preset, N = 24)."""
    import torch

    import agents
    from probes.record import record

    torch.set_num_threads(1)
    return record(agents.load(TRAINED_RUN), None, 4096, 12345)
