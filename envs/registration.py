"""Gymnasium registration of the ``MultiTaskEvidence*-v0`` ids (run on ``import envs``).

Every id defaults to the paper's task (``TaskSpec()``); override any TaskSpec field or env option
through ``gym.make(id, n_tasks=6, latent_dim=3, ...)`` or ``spec=TaskSpec(...)``. Each id also has
a native vector env: ``gym.make_vec(id, num_envs, vectorization_mode="vector_entry_point")``.
"""

from __future__ import annotations

import gymnasium as gym

ENTRY_POINT = "multitask_evidence.envs.env:MultiTaskEvidenceEnv"
VECTOR_ENTRY_POINT = "multitask_evidence.envs.vector:MultiTaskEvidenceVectorEnv"

ENV_IDS: dict[str, dict[str, str]] = {
    "MultiTaskEvidence-v0": {"report": "choice"},
    "MultiTaskEvidenceWager-v0": {"report": "wager"},
    "MultiTaskEvidenceConfidence-v0": {"report": "confidence"},
    "MultiTaskEvidenceFreeRT-v0": {"report": "choice", "response": "free"},
}
"""Registered ids and their default env options."""


def register_envs() -> None:
    """Register every id once (idempotent: re-importing does not warn)."""
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=dict(kwargs),
        )
