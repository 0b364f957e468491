"""Held-out evaluation against the ideal observer (docs/science.md §3), on the SAME evidence.

The headline number is the chance-normalised fraction of the ideal observer,
``frac_ideal = (acc - 0.5) / (ideal_acc - 0.5)``, with accuracies pooled over the N tasks at the
(first) decision step. Beside it: accuracy per task, log loss (BCE of the reported probabilities
against the labels) next to the ideal observer's, and the expected calibration error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from multitask_evidence.envs import TaskSpec, TrialBatch, generate, task_geometry
from multitask_evidence.envs.calibration import choice_confidence_ece

_EPS = 1e-7


def _ideal_decision_probs(spec: TaskSpec, batch: TrialBatch) -> np.ndarray:
    """P(y_i = 1 | all evidence) [B, N] from the ideal observer (envs.ideal)."""
    from multitask_evidence.envs.ideal import (
        IdealObserver,  # lazy: envs.ideal may use scipy integration
    )

    return np.asarray(IdealObserver(spec).decision_probs(batch), dtype=np.float64)


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean binary cross-entropy (nats) of probabilities [B, N] against 0/1 labels [B, N]."""
    p = np.clip(probs, _EPS, 1 - _EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p)))


@dataclass
class HeldOutSet:
    """A fixed evaluation set and the ideal observer's answers on it.

    batch: the trials; ideal_probs [B, N] the ideal observer's decision probabilities;
    ideal_acc_per_task [N]; ideal_acc (pooled); ideal_log_loss (nats).
    """

    spec: TaskSpec
    batch: TrialBatch
    ideal_probs: np.ndarray
    ideal_acc_per_task: np.ndarray
    ideal_acc: float
    ideal_log_loss: float

    @classmethod
    def make(cls, spec: TaskSpec, n: int, seed: int) -> HeldOutSet:
        batch = generate(spec, n, np.random.default_rng(np.random.SeedSequence([seed, 7])))
        ideal = _ideal_decision_probs(spec, batch)
        correct = (ideal > 0.5) == (batch.labels > 0.5)
        return cls(
            spec,
            batch,
            ideal,
            correct.mean(axis=0),
            float(correct.mean()),
            log_loss(ideal, batch.labels),
        )


def decision_probs(
    network: torch.nn.Module, spec: TaskSpec, obs: np.ndarray, device: Any, chunk: int = 4096
) -> np.ndarray:
    """The network's decision probabilities [B, N] at the first decision step (no gradient).

    Sigmoid outputs are probabilities already; ddm outputs ddm_bound * tanh(z) are mapped to
    (tanh(z) + 1) / 2 so that their sign is the choice; linear outputs (targets='latent': an
    estimate x_hat of x*) give the plug-in choices, 1 or 0 by the label of x_hat under each
    task's boundary.
    """
    was_training = network.training
    network.eval()
    out = []
    with torch.no_grad():
        for i in range(0, obs.shape[0], chunk):
            x = torch.as_tensor(obs[i : i + chunk], device=device)
            readout, _ = network(x)
            z = readout[:, spec.decision_start]
            if network.output == "linear":
                out.append(task_geometry(spec).labels(z.double().cpu().numpy()).astype(np.float64))
                continue
            p = torch.sigmoid(z) if network.output == "sigmoid" else (torch.tanh(z) + 1) / 2
            out.append(p.double().cpu().numpy())
    network.train(was_training)
    return np.concatenate(out)


def evaluate(network: torch.nn.Module, held: HeldOutSet, device: Any = "cpu") -> dict[str, Any]:
    """Metrics of ``network`` on the held-out set (JSON-serialisable dict).

    acc, acc_per_task [N]: decision-step accuracy; ideal_acc(_per_task): the ideal observer's on
    the same trials; frac_ideal(_per_task): (acc - 0.5) / (ideal_acc - 0.5); log_loss and
    ideal_log_loss (nats per task decision); ece: calibration of the confidence in the answers
    (:func:`envs.calibration.choice_confidence_ece`, 10 bins of max(p, 1 - p) in [0.5, 1]).
    """
    labels = held.batch.labels
    p = decision_probs(network, held.spec, held.batch.obs, device)
    correct = (p > 0.5) == (labels > 0.5)
    acc_task = correct.mean(axis=0)
    acc = float(correct.mean())
    denom_task = np.maximum(held.ideal_acc_per_task - 0.5, 1e-12)
    return {
        "acc": acc,
        "ideal_acc": held.ideal_acc,
        "frac_ideal": (acc - 0.5) / max(held.ideal_acc - 0.5, 1e-12),
        "log_loss": log_loss(p, labels),
        "ideal_log_loss": held.ideal_log_loss,
        "ece": choice_confidence_ece(p, labels),
        "acc_per_task": acc_task.tolist(),
        "frac_ideal_per_task": ((acc_task - 0.5) / denom_task).tolist(),
    }
