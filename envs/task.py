"""The fixed parts of a task, drawn once from ``TaskSpec.seed``: boundaries and the encoder.

``task_geometry(spec)`` is cached per spec, so every env, sampler and observer built from equal
specs shares one (read-only) copy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from multitask_evidence.envs.encoders import ENCODER_KINDS, Params, random_rotation
from multitask_evidence.envs.spec import TaskSpec

# Independent sub-streams of the task seed, so adding a component never moves another one.
_STREAM_BOUNDARIES = 1
_STREAM_OFFSETS = 2
_STREAM_ENCODER = 3
_STREAM_RADII = 4
_STREAM_MIX = 5


def _task_rng(spec: TaskSpec, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([spec.seed, stream]))


@dataclass(frozen=True)
class TaskGeometry:
    """Fixed random parts of a task. Arrays are read-only.

    normals: [N, D] unit normals c_i (linear families; None otherwise).
    offsets: [N] offsets b_i (zeros unless ``offset_scale`` > 0).
    thresholds: [N] hyperbolic thresholds c_k or circle radii r_k (nonlinear families).
    quadrants: [N] quadrant index of each hyperbolic task (bits: x1 > 0, x2 > 0).
    encoder: the encoder family's fixed parameters (:mod:`envs.encoders`; for the MLPs
        W0, b0, W1, b1, ... float32, ``envs.encoders.mlp_layers`` pairs them); empty for 'none'.
    mix: [F, F] float32 orthogonal rotation after the encoder (``encoder_mix``), or None.
    """

    spec: TaskSpec
    normals: np.ndarray | None
    offsets: np.ndarray
    thresholds: np.ndarray | None
    quadrants: np.ndarray | None
    encoder: Params
    mix: np.ndarray | None = None

    # ---- labels --------------------------------------------------------------------------
    def margins(self, x: np.ndarray) -> np.ndarray:
        """Signed margins [..., N] whose sign is the label (label = margin > 0).

        Linear: c_i . x + b_i. Circles: |x| - r_k. Hyperbolic: |x1 x2| - c_k inside the task's
        quadrant and -inf... represented as -1 outside it.
        """
        x = np.asarray(x, dtype=np.float64)
        s = self.spec
        if s.is_linear:
            return x @ self.normals.T + self.offsets
        if s.boundaries == "circles":
            return np.linalg.norm(x, axis=-1, keepdims=True) - self.thresholds
        # hyperbolic
        q = orthant_index(x)[..., None]
        prod = np.abs(x[..., 0] * x[..., 1])[..., None] - self.thresholds
        return np.where(q == self.quadrants, prod, -1.0)

    def labels(self, x: np.ndarray) -> np.ndarray:
        """Binary labels [..., N] (float32 0/1) of latents x [..., D]."""
        return (self.margins(x) > 0).astype(np.float32)

    # ---- encoder -------------------------------------------------------------------------
    def encode(self, evidence: np.ndarray) -> np.ndarray:
        """Apply the frozen encoder f to evidence [..., D]; returns [..., evidence_dim] float32."""
        s = self.spec
        h = ENCODER_KINDS[s.encoder].apply(s, self.encoder, np.asarray(evidence, dtype=np.float32))
        return h @ self.mix if self.mix is not None else h


def orthant_index(x: np.ndarray) -> np.ndarray:
    """Orthant of each latent [..., D] -> int [...]: bit d is set when x_d > 0.

    For D = 2: 0 = (-,-), 1 = (+,-), 2 = (-,+), 3 = (+,+).
    """
    x = np.asarray(x)
    weights = 1 << np.arange(x.shape[-1])
    return ((x > 0) * weights).sum(axis=-1)


def _product_quantile(p: float) -> float:
    """Quantile of |x1 x2| for (x1, x2) uniform on [0, 0.5]^2 (bisection on z - z ln z)."""
    lo, hi = 1e-12, 1.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if mid - mid * np.log(mid) < p:
            lo = mid
        else:
            hi = mid
    return 0.25 * 0.5 * (lo + hi)


@functools.lru_cache(maxsize=64)
def task_geometry(spec: TaskSpec) -> TaskGeometry:
    """Build (once per spec) the boundaries and encoder of ``spec``."""
    d, n = spec.latent_dim, spec.n_tasks
    normals = thresholds = quadrants = None
    if spec.boundaries == "lines":
        phi = (np.arange(n) + 0.5) * np.pi / n
        normals = np.stack([-np.sin(phi), np.cos(phi)], axis=1)
    elif spec.boundaries == "random":
        c = _task_rng(spec, _STREAM_BOUNDARIES).standard_normal((n, d))
        normals = c / np.linalg.norm(c, axis=1, keepdims=True)
    elif spec.boundaries == "hyperbolic":
        per_q = n // 4
        # thresholds at the (k+1)/(K+1) quantiles of |x1 x2| within a quadrant
        thresholds = np.tile([_product_quantile((k + 1) / (per_q + 1)) for k in range(per_q)], 4)
        quadrants = np.repeat(np.arange(4), per_q)
    else:  # circles: radii at the (k + 1/2)/N quantiles of |x*| under the uniform prior
        sample = _task_rng(spec, _STREAM_RADII).random((200_000, d)) - 0.5
        thresholds = np.quantile(np.linalg.norm(sample, axis=1), (np.arange(n) + 0.5) / n)
    offsets = np.zeros(n)
    if spec.offset_scale > 0:
        offsets = _task_rng(spec, _STREAM_OFFSETS).uniform(-spec.offset_scale, spec.offset_scale, n)
    params = ENCODER_KINDS[spec.encoder].build(spec, _task_rng(spec, _STREAM_ENCODER))
    mix = random_rotation(_task_rng(spec, _STREAM_MIX), spec.evidence_dim) if spec.encoder_mix else None
    for arr in (normals, offsets, thresholds, quadrants, mix, *params):
        if arr is not None:
            arr.setflags(write=False)
    return TaskGeometry(spec, normals, offsets, thresholds, quadrants, tuple(params), mix)
