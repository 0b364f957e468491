"""Encoder families: the frozen random map f from the latent space to the observation's evidence
channels (``TaskSpec.encoder``), one registry entry per family.

Where the noise enters (``TaskSpec.noise_stage``) decides what f does to it:

- ``latent`` (the paper's): obs_t = f(x* + eps_t). Averaged over time, any smooth f is close to
  f(x*) seen through a near-linear map, so the input average is already a nearly disentangled
  code of x*.
- ``features``: obs_t = f(x*) + eta_t, eta_t ~ N(0, sigma^2 I) per feature. The time average is
  f(x*) itself, as entangled as f makes it: narrow place cells give an input average whose
  linear read-out of x* fails out of distribution, wide ones one that succeeds, so the width is
  a dial of input entanglement with the information about x* held fixed by
  :func:`envs.feature_noise.calibrate_sigma`.

Built-in families (F = ``encoder_sizes[-1]`` features):

- ``none``: f(x) = x (F = D).
- ``relu_mlp``: D -> 100 -> 100 -> 40 with ReLU, torch.nn.Linear's default initialisation.
- ``quadratic``: the same sizes with an element-wise square instead of the ReLU.
- ``place_cells``: F = m^D Gaussian bumps exp(-|x - c_k|^2 / (2 w^2)) with centres c_k on a
  regular m x ... x m grid over [-0.6, 0.6]^D (past the prior's box [-0.5, 0.5]^D, so latents at
  the edge are covered as well as central ones); w = ``encoder_scale`` (default 0.1).
- ``fourier``: random Fourier features cos(omega x . W_k + b_k), W_k ~ N(0, I_D),
  b_k ~ U[0, 2 pi); omega = ``encoder_scale`` (default 1).

``encoder_mix=True`` follows f by a fixed random orthogonal F x F rotation (a mixed code of the
same geometry: no single feature is a place cell any more).

Adding a family is one :class:`Encoder` and one :func:`register_encoder` call; a family draws its
fixed parameters from the generator it is given (the task seed's encoder stream) and maps
float32 [..., D] to float32 [..., F] elementwise over the leading axes (docs/contracts.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from multitask_evidence.common.registry import Registry

if TYPE_CHECKING:
    from multitask_evidence.envs.spec import TaskSpec

Params = tuple[np.ndarray, ...]
"""An encoder's fixed parameters (read-only arrays), drawn once per task."""

PLACE_CELL_BOX = 0.6
"""Place-cell centres span [-PLACE_CELL_BOX, PLACE_CELL_BOX]^D (the prior's box is 0.5)."""


@dataclass(frozen=True)
class Encoder:
    """One encoder family.

    build: (spec, rng) -> its fixed parameters, drawn from ``rng`` only.
    apply: (spec, params, x [..., D] float32) -> features [..., F] float32, F = sizes[-1].
    default_sizes: ``encoder_sizes`` when the spec leaves it None.
    n_params: spec -> number of fixed parameters (for the memory check before building).
    scale: what ``encoder_scale`` means for this family (None: the family takes no scale).
    default_scale: ``encoder_scale`` when the spec leaves it None.
    check: extra rules on the spec (raise ValueError naming the field), or None.
    """

    build: Callable[[TaskSpec, np.random.Generator], Params]
    apply: Callable[[TaskSpec, Params, np.ndarray], np.ndarray]
    default_sizes: tuple[int, ...]
    n_params: Callable[[TaskSpec], int]
    scale: str | None = None
    default_scale: float | None = None
    check: Callable[[TaskSpec], None] | None = None


ENCODER_KINDS: Registry[Encoder] = Registry("encoder", "encoder")


def register_encoder(name: str, encoder: Encoder, *, replace: bool = False) -> Encoder:
    """Make ``encoder`` available as ``TaskSpec(encoder=name)``."""
    if not isinstance(encoder, Encoder):
        raise ValueError(f"encoder must be an envs.encoders.Encoder, got {type(encoder).__name__}")
    return ENCODER_KINDS.add(name, encoder, replace=replace)


def encoder_names() -> list[str]:
    """The registered encoder families, in registration order."""
    return list(ENCODER_KINDS)


# ---- none --------------------------------------------------------------------------------
def _identity(spec: TaskSpec, params: Params, x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


# ---- random MLPs -------------------------------------------------------------------------
def _mlp_widths(spec: TaskSpec) -> tuple[int, ...]:
    return (spec.latent_dim, *spec.encoder_sizes)


def _mlp_build(spec: TaskSpec, rng: np.random.Generator) -> Params:
    # torch.nn.Linear's default init, so the encoder matches "a randomly initialised MLP"
    widths = _mlp_widths(spec)
    out: list[np.ndarray] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        out.append(rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32))
        out.append(rng.uniform(-bound, bound, size=fan_out).astype(np.float32))
    return tuple(out)


def _mlp_n_params(spec: TaskSpec) -> int:
    widths = _mlp_widths(spec)
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def mlp_layers(params: Params) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (W [in, out], b [out]) layers of a ``relu_mlp`` / ``quadratic`` encoder."""
    return [(params[i], params[i + 1]) for i in range(0, len(params), 2)]


def _mlp_apply(square: bool) -> Callable[[TaskSpec, Params, np.ndarray], np.ndarray]:
    def apply(spec: TaskSpec, params: Params, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, dtype=np.float32)
        layers = mlp_layers(params)
        for k, (w, b) in enumerate(layers):
            h = h @ w
            h += b
            if k < len(layers) - 1:
                if square:
                    np.square(h, out=h)
                else:
                    np.maximum(h, 0.0, out=h)
        return h

    return apply


# ---- place cells -------------------------------------------------------------------------
def _cells_per_axis(spec: TaskSpec) -> int:
    return int(round(spec.encoder_sizes[-1] ** (1.0 / spec.latent_dim)))


def _place_check(spec: TaskSpec) -> None:
    k, d = spec.encoder_sizes[-1], spec.latent_dim
    m = _cells_per_axis(spec)
    if len(spec.encoder_sizes) != 1 or m**d != k or m < 2:
        raise ValueError(
            f"TaskSpec.encoder_sizes for encoder='place_cells' must be one width K = m^D (m >= 2 "
            f"cells per axis of the grid), got {list(spec.encoder_sizes)} with latent_dim={d}; "
            f"e.g. [{max(m, 2) ** d}]"
        )


def _place_build(spec: TaskSpec, rng: np.random.Generator) -> Params:
    axis = np.linspace(-PLACE_CELL_BOX, PLACE_CELL_BOX, _cells_per_axis(spec))
    grids = np.meshgrid(*([axis] * spec.latent_dim), indexing="ij")
    centres = np.stack([g.ravel() for g in grids], axis=1).astype(np.float32)  # [K, D]
    return (centres, (centres.astype(np.float64) ** 2).sum(axis=1).astype(np.float32))


def _place_apply(spec: TaskSpec, params: Params, x: np.ndarray) -> np.ndarray:
    centres, c2 = params
    x = np.asarray(x, dtype=np.float32)
    # |x - c|^2 = |x|^2 - 2 x . c + |c|^2: one matmul, no [..., K, D] temporary
    d2 = x @ centres.T
    d2 *= -2.0
    d2 += c2
    d2 += np.einsum("...d,...d->...", x, x)[..., None]
    np.maximum(d2, 0.0, out=d2)
    d2 *= -0.5 / float(spec.encoder_scale) ** 2
    return np.exp(d2, out=d2)


# ---- random Fourier features -------------------------------------------------------------
def _fourier_check(spec: TaskSpec) -> None:
    if len(spec.encoder_sizes) != 1:
        raise ValueError(
            "TaskSpec.encoder_sizes for encoder='fourier' must be one width (the number of "
            f"features), got {list(spec.encoder_sizes)}"
        )


def _fourier_build(spec: TaskSpec, rng: np.random.Generator) -> Params:
    k, d = spec.encoder_sizes[-1], spec.latent_dim
    w = rng.standard_normal((d, k)).astype(np.float32)
    b = rng.uniform(0.0, 2.0 * np.pi, size=k).astype(np.float32)
    return (w, b)


def _fourier_apply(spec: TaskSpec, params: Params, x: np.ndarray) -> np.ndarray:
    w, b = params
    h = np.asarray(x, dtype=np.float32) @ w
    h *= np.float32(spec.encoder_scale)
    h += b
    return np.cos(h, out=h)


register_encoder("none", Encoder(lambda s, r: (), _identity, (100, 100, 40), lambda s: 0))
register_encoder("relu_mlp", Encoder(_mlp_build, _mlp_apply(False), (100, 100, 40), _mlp_n_params))
register_encoder("quadratic", Encoder(_mlp_build, _mlp_apply(True), (100, 100, 40), _mlp_n_params))
register_encoder(
    "place_cells",
    Encoder(
        _place_build,
        _place_apply,
        (100,),
        lambda s: s.encoder_sizes[-1] * (s.latent_dim + 1),
        scale="the bumps' width w (latent units)",
        default_scale=0.1,
        check=_place_check,
    ),
)
register_encoder(
    "fourier",
    Encoder(
        _fourier_build,
        _fourier_apply,
        (100,),
        lambda s: s.encoder_sizes[-1] * (s.latent_dim + 1),
        scale="the frequency omega (radians per latent unit)",
        default_scale=1.0,
        check=_fourier_check,
    ),
)


def random_rotation(rng: np.random.Generator, k: int) -> np.ndarray:
    """A [k, k] float32 orthogonal matrix, Haar-distributed (QR with the sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return (q * np.sign(np.diag(r))).astype(np.float32)
