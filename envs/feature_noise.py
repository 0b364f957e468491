"""Noise in feature space at a stated amount of information: :func:`calibrate_sigma`.

With ``noise_stage='features'`` the per-feature noise SD ``sigma`` sets how much a trial says
about x*, and the same sigma says more through wide place cells than through narrow ones. To
compare encoders by how entangled their code is, and not by how informative it is, each
condition's sigma is chosen so that the ideal observer's accuracy equals one target: by default
the accuracy of the paper's task with the same tasks and trial timing (noise in latent space,
sigma = 0.2).
"""

from __future__ import annotations

import math

import numpy as np

from multitask_evidence.common.validate import check_int, check_number
from multitask_evidence.envs.ideal.observer import IdealObserver
from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.trials import build_trials, sample_latents

PAPER_SIGMA = 0.2
"""The paper's latent noise SD, whose task sets the default target accuracy."""


def paper_task(spec: TaskSpec) -> TaskSpec:
    """The paper's task with ``spec``'s tasks and timing: the ReLU MLP encoder, noise in latent
    space with sigma = 0.2."""
    return spec.replace(
        noise_stage="latent",
        encoder="relu_mlp",
        encoder_sizes=None,
        encoder_scale=None,
        encoder_mix=False,
        sigma=PAPER_SIGMA,
    )


def ideal_accuracy_at(
    spec: TaskSpec, latent: np.ndarray, unit_noise: np.ndarray, sigma: float
) -> float:
    """The ideal observer's accuracy at the decision on fixed trials: latents [n, D] and
    standard-normal noise [n, Te, E] scaled by ``sigma`` (common random numbers, so accuracy
    moves with sigma and not with the draw)."""
    s = spec.replace(sigma=float(sigma))
    batch = build_trials(s, latent, unit_noise * sigma)
    return IdealObserver(s).accuracy(batch)


def calibrate_sigma(
    spec: TaskSpec,
    target: float | None = None,
    *,
    n: int = 4000,
    seed: int = 0,
    rel_tol: float = 1e-3,
) -> float:
    """The noise SD at which the ideal observer's accuracy on ``spec`` equals ``target``.

    spec: a task with ``noise_stage='features'`` (its own sigma is ignored).
    target: accuracy in (0.5, 1); None: the ideal accuracy of :func:`paper_task` of ``spec`` on
        the same latents.
    n: trials of the fixed sample (n x N decisions; the sampling SD of an accuracy near 0.96 with
        N = 24 and n = 4000 is ~6e-4).
    Returns sigma (bisection in log sigma to ``rel_tol``, on common random numbers).
    """
    if not isinstance(spec, TaskSpec) or spec.noise_stage != "features":
        raise ValueError("calibrate_sigma needs a TaskSpec with noise_stage='features'")
    check_int("n", n, 100)
    check_int("seed", seed, 0)
    check_number("rel_tol", rel_tol, 0.0, 0.1, open_low=True)
    rng = np.random.default_rng(seed)
    latent = sample_latents(spec, rng, n)
    if target is None:
        paper = paper_task(spec)
        z = rng.standard_normal((n, paper.evidence_steps, paper.noise_dim))
        target = ideal_accuracy_at(paper, latent, z, PAPER_SIGMA)
    check_number("target", target, 0.5, 1.0, open_low=True, open_high=True)
    unit = rng.standard_normal((n, spec.evidence_steps, spec.noise_dim))
    lo, hi = math.log(1e-3), math.log(1e2)  # accuracy falls as sigma grows
    if ideal_accuracy_at(spec, latent, unit, math.exp(hi)) > target:
        raise ValueError(f"target accuracy {target:.4f} is below the accuracy at sigma = 100")
    if ideal_accuracy_at(spec, latent, unit, math.exp(lo)) < target:
        raise ValueError(f"target accuracy {target:.4f} is above the accuracy at sigma = 0.001")
    while hi - lo > rel_tol:
        mid = 0.5 * (lo + hi)
        if ideal_accuracy_at(spec, latent, unit, math.exp(mid)) > target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))
