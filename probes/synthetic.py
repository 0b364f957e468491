"""Representations whose answer is known, to validate the metrics (tests, benchmarks, docs).

* :func:`linear_code` -- a random rotation of the evidence mean mu(t) embedded in H units plus
  small isotropic noise: a disentangled code that should reach the r^2 of mu (the paper's
  Eq. 7) out of distribution, with CCGP ~ 1 and parallelism ~ 1.
* :func:`relu_code` -- a ReLU population tuned linearly to mu(t) (random gains and thresholds),
  like a trained RNN's sparse non-negative code; still linearly decodable.
* :func:`entangled_code` -- high-frequency random Fourier features of x*: decodable in
  distribution by a linear read-out of many units, useless out of distribution.
* :func:`noise_code` -- pure noise: r2 about 0 or below.
* :class:`IdealAgent` -- an agent (for the recorder) whose states and outputs are the theory's.
"""

from __future__ import annotations

import numpy as np

from multitask_evidence.envs import TaskSpec, generate
from multitask_evidence.probes.record import running_mean


def sample_mu(
    spec: TaskSpec, n: int, seed: int = 0, region: dict | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Latents x* [n, D] and the decision-time evidence mean mu(T) [n, D] of n trials."""
    batch = generate(spec, n, np.random.default_rng(seed), region=region)
    mu, _ = running_mean(spec, batch.evidence)
    return batch.latent, mu[:, spec.decision_start]


def linear_code(
    mu: np.ndarray, hidden: int = 64, noise: float = 0.01, seed: int = 0, scale: float = 1.0
) -> np.ndarray:
    """h = scale * R mu + noise [n, H], R an [H, D] matrix with orthonormal columns."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((hidden, mu.shape[1])))
    return scale * mu @ q.T + noise * rng.standard_normal((mu.shape[0], hidden))


def relu_code(mu: np.ndarray, hidden: int = 64, noise: float = 0.02, seed: int = 0) -> np.ndarray:
    """h = relu(A mu + b + noise) [n, H]: random tuning directions, gains ~ 4, thresholds."""
    rng = np.random.default_rng(seed)
    a = 4.0 * rng.standard_normal((hidden, mu.shape[1]))
    b = 0.5 * rng.standard_normal(hidden) + 0.5
    return np.maximum(mu @ a.T + b + noise * rng.standard_normal((mu.shape[0], hidden)), 0.0)


def entangled_code(
    latent: np.ndarray, hidden: int = 256, frequency: float = 40.0, seed: int = 0
) -> np.ndarray:
    """Random Fourier features cos(W x + phase) [n, H] with W ~ N(0, frequency^2)."""
    rng = np.random.default_rng(seed)
    w = frequency * rng.standard_normal((latent.shape[1], hidden))
    phase = rng.uniform(0, 2 * np.pi, hidden)
    return np.cos(latent @ w + phase)


def noise_code(n: int, hidden: int = 64, seed: int = 0) -> np.ndarray:
    """Standard normal noise [n, H], independent of everything."""
    return np.random.default_rng(seed).standard_normal((n, hidden))


class IdealAgent:
    """A perfect agent for encoder='none' tasks, with the recorder's ``hidden_and_outputs``
    interface: hidden [B, T, H] = a rotated embedding of mu(t) plus ``noise``, outputs [B, T, N]
    = the ideal observer's probabilities at each step.

    observer: 'flat' (default): the flat-prior closed form Phi((C mu + b) / s(t))
    (``probes.theory.ideal_probs``, what ``theory.extract_mu`` inverts); any method of
    ``envs.ideal.IdealObserver`` ('auto', 'exact', 'mc'): that observer's posterior under the
    task's own prior (0.5 before the first evidence sample, the prior probability when the
    boundaries pass through the origin).
    """

    def __init__(
        self,
        spec: TaskSpec,
        hidden: int = 16,
        noise: float = 1e-3,
        seed: int = 0,
        observer: str = "flat",
    ):
        from multitask_evidence.envs.ideal import METHODS

        if observer != "flat" and observer not in METHODS:
            raise ValueError(f"observer must be 'flat' or one of {list(METHODS)}, got {observer!r}")
        self.spec = spec
        rng = np.random.default_rng(seed)
        self.q = np.linalg.qr(rng.standard_normal((hidden, spec.latent_dim)))[0]
        self.noise, self.rng = noise, rng
        self.observer = observer

    def hidden_and_outputs(self, obs):
        from multitask_evidence.probes.theory import ideal_probs

        s = self.spec
        ev = obs[:, :, : s.latent_dim].astype(np.float64)
        ev[:, : s.stimulus_start] = 0.0
        ev[:, s.evidence_stop :] = 0.0
        mu, seen = running_mean(s, ev)
        h = mu @ self.q.T + self.noise * self.rng.standard_normal((*mu.shape[:2], self.q.shape[0]))
        if self.observer == "flat":
            out = ideal_probs(s, mu, np.maximum(seen, 1))
        else:
            from multitask_evidence.envs.ideal import IdealObserver

            post = IdealObserver(s, self.observer).posterior(ev[:, s.stimulus_start : s.evidence_stop])
            out = np.where(
                (seen > 0)[None, :, None], post[:, np.maximum(seen, 1) - 1], 0.5
            )
        return h.astype(np.float32), out.astype(np.float32)
