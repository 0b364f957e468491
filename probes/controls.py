"""Controls for every disentanglement number: what a decoder gets without a trained network.

A trained network's OOD r^2 is evidence of a learned code only against:

- **untrained**: the same network (architecture, init, seed) before training, probed identically
  (``agents.untrained`` builds it). A random recurrent network already carries a linear image of
  its input; with an integrator-friendly init (identity recurrence) it carries the running mean.
- **encoded input mean**: a linear decoder on the time-average of the encoded observations over
  the steps that carry evidence ([n, O]). The frozen encoder is close to affine over the latent box, so this
  input alone decodes x* well; a network's code must beat it to show more than its input.
- **evidence mean**: a linear decoder on mu(T), the mean of the raw evidence ([n, D]); its r^2 is
  the linear ceiling 1 - 12 sigma^2 / T up to sampling error.

Functions are pure over arrays; :func:`score_features` runs the same decoders as the network's
own numbers (``probes.decoding``), so control and network are measured alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from multitask_evidence.probes.decoding import decode, ood_generalisation

CONTROLS = {
    "untrained": "the same network untrained (same architecture, init and seed)",
    "input": "linear decoder on the time-average of the encoded observations over the evidence",
    "mu": "linear decoder on mu(T), the mean of the raw evidence",
}
"""Control name -> what it is (the names prefix the headline keys: ``untrained_ood_r2`` ...)."""


def stimulus_average(
    obs: np.ndarray, period: np.ndarray, evidence: np.ndarray | None = None
) -> np.ndarray:
    """Time-average [n, O] of observations obs [n, T, O] over the steps that carry evidence.

    period [T]: the trial's periods (1 = stimulus); evidence [T] bool: the evidence-bearing
    steps, when they are not just the stimulus (free-RT targets also deliver evidence at the
    decision step; ``probes.theory.evidence_steps`` counts them). Raises ValueError when no
    step carries evidence or the shapes disagree.
    """
    obs = np.asarray(obs)
    period = np.asarray(period)
    if obs.ndim != 3 or period.shape != (obs.shape[1],):
        raise ValueError(
            f"obs must be [n, T, O] and period [T], got {obs.shape} and {period.shape}"
        )
    steps = period == 1 if evidence is None else np.asarray(evidence, dtype=bool)
    if steps.shape != period.shape:
        raise ValueError(f"evidence must be a [T={period.shape[0]}] mask, got {steps.shape}")
    if not steps.any():
        raise ValueError("the trial has no stimulus step (period == 1) to average over")
    return obs[:, steps, :].mean(axis=1, dtype=np.float64)


@dataclass
class ControlScores:
    """One control's decoding scores, measured like a network's.

    ood_r2 (median), ood_r2_q25 / ood_r2_q75 and ood_r2_values (every fold x fit) of the OOD
    decoder; id_r2: in-distribution r^2 on fresh trials; angle_deg: decoder-axis angle.
    """

    name: str
    description: str
    ood_r2: float
    ood_r2_q25: float
    ood_r2_q75: float
    id_r2: float
    angle_deg: float | None
    ood_r2_values: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> dict[str, Any]:
        """Headline keys ``<name>_ood_r2``, ``<name>_id_r2``, ``<name>_angle_deg``."""
        return {
            f"{self.name}_ood_r2": self.ood_r2,
            f"{self.name}_id_r2": self.id_r2,
            f"{self.name}_angle_deg": self.angle_deg,
        }


def score_features(
    name: str,
    features: np.ndarray,
    latent: np.ndarray,
    features_test: np.ndarray,
    latent_test: np.ndarray,
    *,
    var_prior: Any = None,
    seed: int = 0,
) -> ControlScores:
    """OOD and in-distribution decoding of latent [n, D] from features [n, F] (fresh test set
    features_test [m, F], latent_test [m, D] for the in-distribution score)."""
    if name not in CONTROLS:
        raise ValueError(f"control name must be one of {list(CONTROLS)}, got {name!r}")
    ood = ood_generalisation(features, latent, var_prior=var_prior, seed=seed)
    ind = decode(features, latent, features_test, latent_test, var_prior=var_prior, seed=seed)
    return ControlScores(
        name=name,
        description=CONTROLS[name],
        ood_r2=ood.r2_median,
        ood_r2_q25=ood.r2_q25,
        ood_r2_q75=ood.r2_q75,
        id_r2=ind.r2,
        angle_deg=ind.angle_deg,
        ood_r2_values=ood.r2_values,
    )
