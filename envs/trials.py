"""The one vectorised trial generator (docs/science.md §2). Numpy, batch-first.

Everything that varies per trial is drawn from the ``np.random.Generator`` you pass, in a fixed
order (latent, then noise), so equal seeds give equal trials. The single env, the native vector
env, the supervised sampler and the probes' recorder all build trials here.

Shapes: B trials, T = ``spec.n_steps`` steps, D = latent_dim, N = n_tasks, O = obs_dim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from multitask_evidence.common.limits import check_bytes
from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.task import orthant_index, task_geometry

FIXATION, STIMULUS, DELAY, DECISION = 0, 1, 2, 3
PERIOD_NAMES = ("fixation", "stimulus", "delay", "decision")


@dataclass(frozen=True)
class Region:
    """A part of latent space to draw x* from (for out-of-distribution tests).

    orthants: allowed orthant indices (bit d set = x_d > 0; see ``envs.task.orthant_index``).
    halfspace: a normal w [D]; allowed latents have w . x > 0.
    Both may be given (intersection).
    """

    orthants: tuple[int, ...] | None = None
    halfspace: tuple[float, ...] | None = None

    def validate(self, latent_dim: int) -> None:
        if self.orthants is None and self.halfspace is None:
            raise ValueError("Region needs 'orthants' or 'halfspace' (or both)")
        if self.orthants is not None:
            if len(self.orthants) == 0:
                raise ValueError("Region.orthants must not be empty")
            bad = [o for o in self.orthants if not 0 <= int(o) < 2**latent_dim]
            if bad:
                raise ValueError(
                    f"Region.orthants must be integers in [0, {2**latent_dim}) for latent_dim="
                    f"{latent_dim}, got {bad}"
                )
        if self.halfspace is not None:
            w = np.asarray(self.halfspace, dtype=float)
            if w.shape != (latent_dim,) or not np.all(np.isfinite(w)) or not np.any(w):
                raise ValueError(
                    f"Region.halfspace must be a finite non-zero vector of length {latent_dim}, "
                    f"got {self.halfspace!r}"
                )

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Boolean [B]: which latents x [B, D] lie in the region."""
        ok = np.ones(x.shape[0], dtype=bool)
        if self.orthants is not None:
            ok &= np.isin(orthant_index(x), np.asarray(self.orthants))
        if self.halfspace is not None:
            ok &= x @ np.asarray(self.halfspace, dtype=float) > 0
        return ok

    @classmethod
    def coerce(cls, region: Region | dict | None) -> Region | None:
        if region is None or isinstance(region, Region):
            return region
        if isinstance(region, dict):
            unknown = set(region) - {"orthants", "halfspace"}
            if unknown:
                raise ValueError(
                    f"unknown region key(s) {sorted(unknown)}; allowed: orthants, halfspace"
                )
            o = region.get("orthants")
            h = region.get("halfspace")
            return cls(
                tuple(int(v) for v in o) if o is not None else None,
                tuple(float(v) for v in h) if h is not None else None,
            )
        raise ValueError(f"region must be a Region, a dict or None, got {type(region).__name__}")


@dataclass
class TrialBatch:
    """B trials. All arrays batch-first.

    latent:   [B, D] float64, x*.
    evidence: [B, T, E] float64, raw evidence at the evidence steps (the stimulus steps; also
              the decision steps for targets='free_rt_paper'), 0 elsewhere: x* + eps(t) (E = D,
              noise_stage='latent') or f(x*) + eta(t) (E = F, noise_stage='features').
    obs:      [B, T, O] float32, encoded evidence channels then the go channel.
    labels:   [B, N] float32 0/1.
    targets:  [B, T, N] float32 (scheme of ``spec.targets``; [B, T, D] for targets='latent').
    mask:     [B, T] float32 loss weights.
    period:   [T] int8 period code of each step (0 fixation, 1 stimulus, 2 delay, 3 decision).
    """

    spec: TaskSpec
    latent: np.ndarray
    evidence: np.ndarray
    obs: np.ndarray
    labels: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    period: np.ndarray

    @property
    def batch_size(self) -> int:
        return self.latent.shape[0]

    @property
    def stimulus_evidence(self) -> np.ndarray:
        """[B, Te, E] every raw evidence sample X(1..Te), Te = ``spec.evidence_steps`` (the
        stimulus steps; for targets='free_rt_paper' also the decision steps), E =
        ``spec.noise_dim``."""
        s = self.spec
        return self.evidence[:, s.stimulus_start : s.evidence_stop]

    def __getitem__(self, idx: int | slice | np.ndarray) -> TrialBatch:
        """Sub-batch (an int keeps a batch axis of 1)."""
        if isinstance(idx, (int, np.integer)):
            idx = slice(int(idx), int(idx) + 1)
        return TrialBatch(
            self.spec,
            self.latent[idx],
            self.evidence[idx],
            self.obs[idx],
            self.labels[idx],
            self.targets[idx],
            self.mask[idx],
            self.period,
        )


def period_codes(spec: TaskSpec) -> np.ndarray:
    """[T] int8 period code of each step of a trial."""
    return np.repeat(
        np.array([FIXATION, STIMULUS, DELAY, DECISION], dtype=np.int8),
        [spec.fixation_steps, spec.stimulus_steps, spec.delay_steps, spec.decision_steps],
    )


def _equicorrelation_cholesky(spec: TaskSpec) -> np.ndarray:
    d = spec.latent_dim
    corr = np.full((d, d), spec.rho) + (1 - spec.rho) * np.eye(d)
    return np.linalg.cholesky(corr)


def _draw_prior(spec: TaskSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    if spec.prior == "uniform":
        return rng.random((n, spec.latent_dim)) - 0.5
    z = rng.standard_normal((n, spec.latent_dim)) @ _equicorrelation_cholesky(spec).T
    return ndtr(z) - 0.5


def sample_latents(
    spec: TaskSpec, rng: np.random.Generator, n: int, region: Region | dict | None = None
) -> np.ndarray:
    """Draw n latents [n, D] from the prior, optionally restricted to ``region``."""
    region = Region.coerce(region)
    if region is None:
        return _draw_prior(spec, rng, n)
    region.validate(spec.latent_dim)
    if spec.prior == "uniform" and region.halfspace is None:
        # Exact and rejection-free: the uniform prior is symmetric under sign flips of each axis.
        mags = 0.5 * rng.random((n, spec.latent_dim))
        which = np.asarray(region.orthants)[rng.integers(len(region.orthants), size=n)]
        signs = np.where((which[:, None] >> np.arange(spec.latent_dim)) & 1, 1.0, -1.0)
        return mags * signs
    out = np.empty((0, spec.latent_dim))
    for _ in range(1000):
        draw = _draw_prior(spec, rng, max(2 * (n - len(out)), 64))
        out = np.concatenate([out, draw[region.contains(draw)]])
        if len(out) >= n:
            return out[:n]
    raise ValueError(f"region {region} has too little prior mass to sample from")


def sample_noise(spec: TaskSpec, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw the evidence noise [n, Te, E] of ``spec.noise`` (mean 0), Te = spec.evidence_steps,
    E = ``spec.noise_dim`` (D in latent space, F per feature for noise_stage='features')."""
    shape = (n, spec.evidence_steps, spec.noise_dim)
    if spec.noise == "gumbel":
        return rng.gumbel(0.0, spec.sigma, size=shape) - spec.sigma * np.euler_gamma
    eps = rng.standard_normal(shape) * noise_scales(spec)
    if spec.noise == "ar1":
        a = spec.ar_coef
        innov = np.sqrt(1.0 - a * a)
        for t in range(1, spec.evidence_steps):  # a loop over time steps, vectorised over trials
            eps[:, t] = a * eps[:, t - 1] + innov * eps[:, t]
    return eps


def noise_scales(spec: TaskSpec) -> np.ndarray:
    """Per-axis stationary noise SD [E] (E = ``spec.noise_dim``)."""
    scales = np.full(spec.noise_dim, float(spec.sigma))
    if spec.noise == "anisotropic":
        scales[1:] *= spec.anisotropy
    elif spec.noise == "gumbel":
        scales *= np.pi / np.sqrt(6.0)
    return scales


def trial_evidence(
    spec: TaskSpec,
    latent: np.ndarray,
    noise: np.ndarray,
    encode: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Raw evidence [..., B, T, E] float64 at the evidence steps, 0 elsewhere, from latents
    [..., B, D] and noise [..., B, Te, E] (leading axes: e.g. K ensemble members): x* + eps(t)
    (noise_stage='latent', E = D) or f(x*) + eta(t) (noise_stage='features', E = F).

    encode: the encoder f (noise_stage='features' only; see :func:`observations`)."""
    latent = np.asarray(latent, dtype=np.float64)
    if spec.noise_stage == "features":
        encode = encode if encode is not None else task_geometry(spec).encode
        clean = encode(latent).astype(np.float64)  # f(x*) once per trial, not per step
    else:
        clean = latent
    evidence = np.zeros((*latent.shape[:-1], spec.n_steps, spec.noise_dim))
    evidence[..., spec.stimulus_start : spec.evidence_stop, :] = clean[..., None, :] + noise
    return evidence


def observations(
    spec: TaskSpec, evidence: np.ndarray, encode: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """Observations [..., B, T, O] float32 of raw evidence [..., B, T, E]: at the evidence steps
    the encoder's image of the evidence (noise_stage='latent') or the noisy features themselves
    (noise_stage='features'); f(0) at the other steps; then the go channel (1 before the
    decision steps, 0 at them).

    encode: the encoder f, mapping [..., D] to [..., O - 1] with the leading axes of ``evidence``
    before (B, T) kept (None: ``task_geometry(spec).encode``; an ensemble passes K task encoders
    applied at once, see ``agents.ensemble``).
    """
    encode = encode if encode is not None else task_geometry(spec).encode
    s0, s1 = spec.stimulus_start, spec.evidence_stop
    lead = evidence.shape[:-3]  # axes before (B, T, E)
    obs = np.empty((*evidence.shape[:-1], spec.obs_dim), dtype=np.float32)
    rest = encode(np.zeros((*lead, spec.latent_dim)))  # f(0) outside the stimulus period
    obs[..., :-1] = rest.reshape(*lead, 1, 1, rest.shape[-1])
    if spec.noise_stage == "features":
        obs[..., s0:s1, :-1] = evidence[..., s0:s1, :]
    else:
        obs[..., s0:s1, :-1] = encode(evidence[..., s0:s1, :])
    obs[..., -1] = 1.0
    obs[..., spec.decision_start :, -1] = 0.0
    return obs


def build_trials(
    spec: TaskSpec,
    latent: np.ndarray,
    noise: np.ndarray,
    *,
    obs: np.ndarray | None = None,
    evidence: np.ndarray | None = None,
) -> TrialBatch:
    """Deterministic part of the generator: trials from given latents [B, D] and noise [B, Te, E]
    (Te = spec.evidence_steps, E = spec.noise_dim). obs / evidence: the observations [B, T, O]
    and raw evidence [B, T, E] of these trials when the caller has computed them already
    (:func:`trial_evidence` and :func:`observations` with a batched encoder); None: computed
    here."""
    geo = task_geometry(spec)
    latent = np.asarray(latent, dtype=np.float64)
    b, t_all = latent.shape[0], spec.n_steps
    if evidence is None:
        evidence = trial_evidence(spec, latent, noise)
    if obs is None:
        obs = observations(spec, evidence)

    labels = geo.labels(latent)
    mask = np.ones((b, t_all), dtype=np.float32)
    if spec.targets == "ddm_bound":
        targets = ddm_targets(spec, evidence)
    elif spec.targets == "free_rt_paper":
        targets = free_rt_targets(spec, evidence)
    elif spec.targets == "latent":
        targets = np.zeros((b, t_all, spec.latent_dim), dtype=np.float32)
        targets[:, spec.decision_start :] = latent[:, None, :]
        mask[:, : spec.decision_start] = 0.0
    else:
        targets = np.full((b, t_all, spec.n_tasks), 0.5, dtype=np.float32)
        targets[:, spec.decision_start :] = labels[:, None, :]
        if spec.targets == "decision_only":
            mask[:, : spec.decision_start] = 0.0
    return TrialBatch(spec, latent, evidence, obs, labels, targets, mask, period_codes(spec))


def _absorb(run: np.ndarray, bound: float) -> np.ndarray:
    """Running sums [B, T, N] absorbed at +-bound: from the first step where |run| >= bound the
    value stays at sign(run there) * bound. Returns float32."""
    hit = np.abs(run) >= bound
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), run.shape[1])  # [B, N]
    steps = np.arange(run.shape[1])[None, :, None]
    at_hit = np.take_along_axis(run, np.minimum(first, run.shape[1] - 1)[:, None, :], axis=1)
    absorbed = np.sign(at_hit) * bound
    return np.where(steps >= first[:, None, :], absorbed, run).astype(np.float32)


def ddm_targets(spec: TaskSpec, evidence: np.ndarray) -> np.ndarray:
    """Drift-diffusion targets [B, T, N]: running sum of c_i . X(s) + b_i over evidence steps,
    absorbed at +-ddm_bound (once the bound is hit the target stays there)."""
    geo = task_geometry(spec)
    stim = period_codes(spec) == STIMULUS
    drift = evidence @ geo.normals.T + geo.offsets * stim[None, :, None]
    return _absorb(np.cumsum(drift, axis=1), spec.ddm_bound)


def free_rt_targets(spec: TaskSpec, evidence: np.ndarray) -> np.ndarray:
    """The official code's free-reaction-time targets [B, T, N] (targets='free_rt_paper').

    Target of task i at step k: S_i(k) = sum_{s <= k} g_i [X2(s) - tan(phi_i) X1(s)] over the
    evidence steps up to and including k, absorbed at +-ddm_bound (5 in the paper); 0 before the
    evidence. g_i = sign(cos phi_i) orients the sum like this package's label 1[c_i . x* > 0]
    (c_i = (-sin phi_i, cos phi_i)); the official label is 1[x2 > tan(phi_i) x1], the complement
    for phi_i > pi/2, so there target and label are both flipped: the same learning problem.
    evidence: [B, T, 2] raw evidence, 0 outside the evidence steps.

    How it differs from 'ddm_bound':
    - the drift is g_i [X2 - tan(phi_i) X1] = (c_i . X) / |cos phi_i|, not the unit-normal
      projection c_i . X: tasks with steep lines (phi near pi/2) drift 1 / |cos phi_i| times
      faster and reach the bound sooner;
    - evidence keeps arriving at the decision steps and the sum keeps running there, so the
      state the probe reads at the (first) decision step has seen T + 1 samples, not T.
    Both are trained with MSE on ``ddm_bound * tanh`` outputs at every step.

    Not reproduced from the official code (panvaf/DisentangleRes tasks.py
    ``LinearClassificationBound``): its stimulus targets lag one step (the sum through the
    previous sample), its targets are stored in neurogym's integer ground-truth array (truncated
    toward 0), its training trial has no evidence and target 0 at the decision step (its probe
    trial ``DenoiseQuadsFreeRT`` does have evidence there), and it has no go channel.
    """
    normals = task_geometry(spec).normals  # [N, 2] = (-sin phi_i, cos phi_i)
    # c_i / |cos phi_i| = g_i (-tan phi_i, 1)
    drift = evidence @ (normals / np.abs(normals[:, 1:2])).T  # [B, T, N]
    return _absorb(np.cumsum(drift, axis=1), spec.ddm_bound)


def generate(
    spec: TaskSpec,
    n: int,
    rng: np.random.Generator | int | None = None,
    *,
    region: Region | dict | None = None,
    latent: np.ndarray | Sequence | None = None,
) -> TrialBatch:
    """Generate n trials of ``spec``.

    rng: a ``np.random.Generator`` (or an int seed). Draw order: latents, then noise.
    region: restrict x* to orthants / a half-space (see :class:`Region`).
    latent: given latents [n, D] (then nothing is drawn for them; ``region`` must be None).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (number of trials) must be a positive integer, got {n!r}")
    check_bytes(f"generate(n={n}) ({spec.n_steps} steps per trial)", int(n) * spec.trial_bytes)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    if latent is not None:
        if region is not None:
            raise ValueError("give either 'latent' or 'region', not both")
        latent = np.asarray(latent, dtype=np.float64)
        if latent.shape != (n, spec.latent_dim) or not np.all(np.isfinite(latent)):
            raise ValueError(
                f"latent must be a finite array of shape ({n}, {spec.latent_dim}), "
                f"got shape {latent.shape}"
            )
    else:
        latent = sample_latents(spec, rng, int(n), region)
    return build_trials(spec, latent, sample_noise(spec, rng, int(n)))
