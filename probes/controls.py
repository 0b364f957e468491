"""Controls for every disentanglement number: what a decoder gets without a trained network.

A trained network's OOD r^2 is evidence of a learned code only against:

- **untrained**: the same network (architecture, init, seed) before training, probed identically
  (``agents.untrained`` builds it). A random recurrent network already carries a linear image of
  its input; with an integrator-friendly init (identity recurrence) it carries the running mean.
- **encoded input mean**: a linear decoder on the time-average of the encoded observations over
  the steps that carry evidence ([n, O]). The frozen encoder is close to affine over the latent box, so this
  input alone decodes x* well; a network's code must beat it to show more than its input.
- **evidence mean**: a linear decoder on mu(T), the mean of the raw evidence ([n, D]); its r^2 is
  the r^2 of mu (the paper's Eq. 7), 1 - 12 sigma^2 / T, up to sampling error.
- **output-implied** (``OUTPUT_CONTROLS``): a linear decoder on the network's own outputs at the
  read-out step (``outputs``: probabilities [n, N]; ``logits``: their logits [n, N]) and on the
  ideal observer's probabilities on the same trials (``ideal_outputs``, [n, N]). Boundaries
  through the origin tile the angle, so any code that holds its own outputs generalises out of
  distribution, more so as N grows (ideal outputs, paper task: about 0.51 / 0.84 / 0.88 / 0.89 /
  0.89 at N = 2 / 3 / 6 / 12 / 24); a code counts as more than its outputs only above this
  reference.

:func:`calibration` compares the network's output probabilities with the ideal observer's
(binary cross-entropy against the labels, nats per task and trial).

Functions are pure over arrays; :func:`score_features` runs the same decoders as the network's
own numbers (``probes.decoding``), so control and network are measured alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.special import log_expit

from multitask_evidence.envs import TaskSpec
from multitask_evidence.probes.decoding import OLS_ALPHA, decode, ood_generalisation
from multitask_evidence.probes.theory import decision_evidence_steps

CONTROLS = {
    "untrained": "the same network untrained (same architecture, init and seed)",
    "input": "linear decoder on the time-average of the encoded observations over the evidence",
    "mu": "linear decoder on mu(T), the mean of the raw evidence",
    "outputs": "linear decoder on the network's own outputs (probabilities) at the read-out step",
    "logits": "linear decoder on the network's output logits at the read-out step",
    "ideal_outputs": "linear decoder on the ideal observer's probabilities on the same trials",
}
"""Control name -> what it is (the names prefix the headline keys: ``untrained_ood_r2`` ...)."""

OUTPUT_CONTROLS = ("outputs", "logits", "ideal_outputs")
"""The output-implied controls: what a linear read-out of the outputs alone decodes."""

OUTPUT_CONTROLS_NOTE = (
    "Boundaries through the origin tile the angle, so a code that holds its own outputs "
    "generalises out of distribution: a code counts as more than its outputs only above this "
    "reference."
)
"""The one sentence the probe's report prints beside the output-implied controls."""

PROB_FLOOR_FLOAT32 = 2.0**-25
"""Half the float32 spacing just below 1: a float32 probability rounded to exactly 0 or 1 is
within this of it, so its logit is clipped to about +-17.3 (``logits_from_probs``)."""


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
    The robustness checks the network gets too, so a claim can be read under the same choices:
    ood_r2_halfspace: median over the half-space folds (split='halfspace', default penalty);
    ood_r2_ols: the quadrant split with the near-OLS penalty (``decoding.OLS_ALPHA``);
    ood_r2_per_axis: [D] each latent axis's OOD r^2 (quadrant split, default penalty), median
    over folds x fits. None / [] where not computed.
    """

    name: str
    description: str
    ood_r2: float
    ood_r2_q25: float
    ood_r2_q75: float
    id_r2: float
    angle_deg: float | None
    ood_r2_values: list[float] = field(default_factory=list)
    ood_r2_halfspace: float | None = None
    ood_r2_ols: float | None = None
    ood_r2_per_axis: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def headline(self) -> dict[str, Any]:
        """Headline keys ``<name>_ood_r2``, ``<name>_id_r2``, ``<name>_angle_deg``,
        ``<name>_ood_r2_halfspace``, ``<name>_ood_r2_ols`` and ``<name>_ood_r2_per_axis``
        (a list of D floats)."""
        return {
            f"{self.name}_ood_r2": self.ood_r2,
            f"{self.name}_id_r2": self.id_r2,
            f"{self.name}_angle_deg": self.angle_deg,
            f"{self.name}_ood_r2_halfspace": self.ood_r2_halfspace,
            f"{self.name}_ood_r2_ols": self.ood_r2_ols,
            f"{self.name}_ood_r2_per_axis": list(self.ood_r2_per_axis),
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
    robustness: bool = True,
) -> ControlScores:
    """OOD and in-distribution decoding of latent [n, D] from features [n, F] (fresh test set
    features_test [m, F], latent_test [m, D] for the in-distribution score).

    robustness: also the half-space split and the near-OLS penalty (two more closed-form OOD
    passes, the same calls the network's probe makes), so the control is read under the same
    choices as the network."""
    if name not in CONTROLS:
        raise ValueError(f"control name must be one of {list(CONTROLS)}, got {name!r}")
    ood = ood_generalisation(features, latent, var_prior=var_prior, seed=seed)
    half = ols = None
    if robustness:
        half = ood_generalisation(
            features, latent, split="halfspace", var_prior=var_prior, seed=seed
        ).r2_median
        ols = ood_generalisation(
            features, latent, var_prior=var_prior, seed=seed, alpha=OLS_ALPHA
        ).r2_median
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
        ood_r2_halfspace=half,
        ood_r2_ols=ols,
        ood_r2_per_axis=list(ood.r2_per_dim_median),
    )


def logits_from_probs(probs: np.ndarray) -> np.ndarray:
    """Logits log p - log(1 - p) [..., N] of probabilities probs [..., N] (float64).

    For agents whose read-out is not at hand (an RL policy's P(answer 1)): probabilities are
    clipped to [PROB_FLOOR_FLOAT32, 1 - PROB_FLOOR_FLOAT32], the resolution of a float32
    probability near 1, so a saturated output maps to a finite logit (|logit| <= 17.3) and the
    map stays odd (p and 1 - p give opposite logits).
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), PROB_FLOOR_FLOAT32, 1.0 - PROB_FLOOR_FLOAT32)
    return np.log(p) - np.log1p(-p)


def ideal_decision_probs(spec: TaskSpec, stimulus_evidence: np.ndarray) -> np.ndarray:
    """The ideal observer's P(y_i = 1 | X(1..t)) [n, N] at the read-out (decision) step.

    stimulus_evidence: [n, Ts, E] raw evidence of the trials (``TrialBatch.stimulus_evidence``;
    E = ``spec.noise_dim``);
    t = ``theory.decision_evidence_steps(spec)`` samples are used (Ts, or only those seen by the
    decision step when evidence goes on after it). The observer is ``envs.ideal.IdealObserver``
    with method 'auto' (the bounded prior's exact posterior for D <= 2), the one the env's
    ``info["ideal_reward"]`` and the trainers' ``frac_ideal`` use.
    """
    from multitask_evidence.envs.ideal import IdealObserver

    x = np.asarray(stimulus_evidence, dtype=np.float64)
    t = decision_evidence_steps(spec)
    if x.ndim != 3 or x.shape[1] < t or x.shape[2] != spec.noise_dim:
        raise ValueError(
            f"stimulus_evidence must be [n, Ts >= {t}, E={spec.noise_dim}], got {x.shape}"
        )
    return IdealObserver(spec).final_posterior(x[:, :t])


@dataclass
class Calibration:
    """Mean binary cross-entropy against the labels at the read-out step (nats per task and
    trial): ``bce`` of the agent's probabilities, ``ideal_bce`` of the ideal observer's on the
    same trials, ``excess_bce = bce - ideal_bce`` (0 for an agent that reports the ideal
    observer's probabilities; > 0 in expectation for any other, since the ideal observer's
    probabilities are the true conditional probabilities of the labels)."""

    bce: float
    ideal_bce: float
    excess_bce: float
    n_trials: int
    n_tasks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bce(labels: np.ndarray, probs: np.ndarray | None, logits: np.ndarray | None) -> float:
    """Mean -log P(label) over [n, N]; from logits exactly, else from probabilities, where a
    probability of the true label rounded to exactly 0 counts as half its dtype's spacing
    below 1 (the most it can be), so one rounded output does not dominate the mean."""
    y = labels > 0.5
    if logits is not None:
        lg = np.asarray(logits, dtype=np.float64)
        return float(-np.where(y, log_expit(lg), log_expit(-lg)).mean())
    raw = np.asarray(probs)
    dtype = raw.dtype if np.issubdtype(raw.dtype, np.floating) else np.dtype(np.float64)
    p = raw.astype(np.float64)
    p_true = np.where(y, p, 1.0 - p)
    p_true = np.where(p_true > 0, p_true, float(np.finfo(dtype).epsneg) / 2)
    return float(-np.log(p_true).mean())


def calibration(
    labels: np.ndarray,
    ideal: np.ndarray,
    probs: np.ndarray | None = None,
    *,
    logits: np.ndarray | None = None,
) -> Calibration:
    """How far the agent's output probabilities are from the ideal observer's.

    labels: [n, N] 0/1 task labels; ideal: [n, N] the ideal observer's probabilities on the same
    trials (``ideal_decision_probs``); probs: [n, N] the agent's probabilities at the read-out
    step, or ``logits`` [n, N] (exact where probabilities would round to 0 or 1). Returns
    :class:`Calibration` (nats per task and trial).
    """
    if (probs is None) == (logits is None):
        raise ValueError("give exactly one of probs or logits")
    y = np.asarray(labels)
    out = np.asarray(probs if probs is not None else logits)
    ide = np.asarray(ideal)
    if y.ndim != 2 or out.shape != y.shape or ide.shape != y.shape:
        raise ValueError(
            f"labels, ideal and probs/logits must all be [n, N], got {y.shape}, {ide.shape}, "
            f"{out.shape}"
        )
    if not (np.isfinite(out).all() and np.isfinite(ide).all()):
        raise ValueError("probs/logits and ideal must be finite")
    if probs is not None and (np.any(out < 0) or np.any(out > 1)):
        raise ValueError("probs must lie in [0, 1]")
    if np.any(ide < 0) or np.any(ide > 1):
        raise ValueError("ideal probabilities must lie in [0, 1]")
    bce = _bce(y, probs, logits)
    ideal_bce = _bce(y, ide, None)
    return Calibration(
        bce=bce,
        ideal_bce=ideal_bce,
        excess_bce=bce - ideal_bce,
        n_trials=int(y.shape[0]),
        n_tasks=int(y.shape[1]),
    )
