"""Training trials for K ensemble members at once (docs/science.md §2).

Member k has its own task (``specs[k]``: boundaries and encoder drawn from ``specs[k].seed``) and
its own trial stream (``rngs[k]``). Its batch equals ``envs.generate(specs[k], n, rngs[k])``
bit for bit: latents and noise are drawn from ``rngs[k]`` in the generator's order, and the K
frozen encoders are stacked ([K, in, out] per layer) and applied in one broadcast matmul whose
per-trial products are the very BLAS calls ``TaskGeometry.encode`` makes. Shapes: K members,
B trials, T = ``spec.n_steps`` steps, D latent dims, O = ``spec.obs_dim``, N tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multitask_evidence.envs import TaskSpec, TrialBatch
from multitask_evidence.envs.encoders import mlp_layers
from multitask_evidence.envs.task import task_geometry
from multitask_evidence.envs.trials import (
    build_trials,
    observations,
    sample_latents,
    sample_noise,
    trial_evidence,
)

SHAPE_FIELDS = (
    "latent_dim",
    "n_tasks",
    "fixation_steps",
    "stimulus_steps",
    "delay_steps",
    "decision_steps",
    "encoder",
    "encoder_sizes",
    "noise_stage",
    "targets",
    "ddm_bound",
)
"""TaskSpec fields every member must share: they fix the shapes of obs / targets, the network's
output and the objective. Members may differ in any other field (seed, sigma, noise, prior, ...)."""

MLP_ENCODERS = ("none", "relu_mlp", "quadratic")
"""Encoder families whose K members are stacked into one broadcast matmul per layer."""


def check_specs(specs: Sequence[TaskSpec]) -> list[TaskSpec]:
    """``specs`` as a list after checking: K >= 1 TaskSpecs sharing :data:`SHAPE_FIELDS`
    (ValueError naming the member and the field otherwise)."""
    if isinstance(specs, TaskSpec) or not isinstance(specs, Sequence):
        raise ValueError(
            f"specs must be a sequence of TaskSpecs, one per member, got {type(specs).__name__}"
        )
    specs = list(specs)
    if not specs:
        raise ValueError("specs must hold at least one TaskSpec (an ensemble has K >= 1 members)")
    for k, s in enumerate(specs):
        if not isinstance(s, TaskSpec):
            raise ValueError(f"specs[{k}] must be an envs.TaskSpec, got {type(s).__name__}")
        for name in SHAPE_FIELDS:
            a, b = getattr(s, name), getattr(specs[0], name)
            if a != b:
                raise ValueError(
                    f"specs[{k}].{name}={a!r} differs from specs[0].{name}={b!r}; ensemble "
                    f"members must share {list(SHAPE_FIELDS)} (they fix the network's shapes)"
                )
    return specs


@dataclass
class MemberTrials:
    """One training batch per member, stacked on a leading member axis.

    obs [K, B, T, O] float32; targets [K, B, T, N] float32; mask [K, B, T] float32;
    members: member k's :class:`envs.TrialBatch` (its obs is a view of ``obs[k]``).
    """

    obs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    members: list[TrialBatch]


class EnsembleTrials:
    """Fresh trials for K tasks that share :data:`SHAPE_FIELDS`.

    ``draw(n, rngs)`` gives member k exactly ``envs.generate(specs[k], n, rngs[k])``.
    """

    def __init__(self, specs: Sequence[TaskSpec]) -> None:
        self.specs = check_specs(specs)
        self.geometries = [task_geometry(s) for s in self.specs]
        first = self.specs[0]
        # The MLP encoders are stacked and applied in one broadcast matmul; any other family (or
        # a mixed code) is applied member by member (K calls, each vectorised over trials).
        self.stacked = first.encoder in MLP_ENCODERS and not any(s.encoder_mix for s in self.specs)
        per_member = [mlp_layers(g.encoder) for g in self.geometries] if self.stacked else []
        # layer i: weights [K, in, out] and biases [K, out] of the K frozen encoders
        self.layers = [
            (np.stack([m[i][0] for m in per_member]), np.stack([m[i][1] for m in per_member]))
            for i in range(len(per_member[0]) if per_member else 0)
        ]
        self.square = first.encoder == "quadratic"

    @property
    def k(self) -> int:
        """Number of members K."""
        return len(self.specs)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Member k's encoder applied to ``x[k]``: [K, ..., D] -> [K, ..., E] float32.

        The weights broadcast over the axes between K and the last two, so each matmul is the
        one ``TaskGeometry.encode`` makes for a single member (same products, same bits).
        """
        h = np.asarray(x, dtype=np.float32)
        if not self.stacked:
            return np.stack([g.encode(h[k]) for k, g in enumerate(self.geometries)])
        if not self.layers:
            return h
        vector = h.ndim == 2  # one [D] input per member: a [1, D] row (numpy's gemv either way)
        if vector:
            h = h[:, None, :]
        extra = (1,) * (h.ndim - 3)
        last = len(self.layers) - 1
        for i, (w, b) in enumerate(self.layers):
            h = np.matmul(h, w.reshape(w.shape[0], *extra, *w.shape[1:]))
            h += b.reshape(b.shape[0], *extra, 1, b.shape[-1])
            if i < last:
                if self.square:
                    np.square(h, out=h)
                else:
                    np.maximum(h, 0.0, out=h)
        return h[:, 0] if vector else h

    def draw(self, n: int, rngs: Sequence[np.random.Generator]) -> MemberTrials:
        """n fresh trials per member; member k's draws come from ``rngs[k]`` (latents, then
        noise, as ``envs.generate``)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n (trials per member) must be a positive integer, got {n!r}")
        if len(rngs) != self.k:
            raise ValueError(
                f"rngs must hold one np.random.Generator per member ({self.k}), got {len(rngs)}"
            )
        latents = np.stack([sample_latents(s, r, int(n)) for s, r in zip(self.specs, rngs)])
        noises = np.stack([sample_noise(s, r, int(n)) for s, r in zip(self.specs, rngs)])
        spec = self.specs[0]  # the layout of evidence and obs depends on SHAPE_FIELDS only
        evidence = trial_evidence(spec, latents, noises, self.encode)
        obs = observations(spec, evidence, self.encode)
        members = [
            build_trials(s, lat, eps, obs=o, evidence=ev)
            for s, lat, eps, o, ev in zip(self.specs, latents, noises, obs, evidence)
        ]
        return MemberTrials(
            obs,
            np.stack([b.targets for b in members]),
            np.stack([b.mask for b in members]),
            members,
        )
