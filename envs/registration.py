"""Gymnasium registration of the ``MultiTaskEvidence*-v0`` ids (run on ``import envs``).

Every id defaults to the paper's task (``TaskSpec()``); override any TaskSpec field or env option
through ``gym.make(id, n_tasks=6, latent_dim=3, ...)`` or ``spec=TaskSpec(...)``. Each id also has
a native vector env: ``gym.make_vec(id, num_envs, vectorization_mode="vector_entry_point")``.
"""

from __future__ import annotations

import gymnasium as gym

from multitask_evidence.envs.reports import REPORT_KINDS

ENTRY_POINT = "multitask_evidence.envs.env:MultiTaskEvidenceEnv"
VECTOR_ENTRY_POINT = "multitask_evidence.envs.vector:MultiTaskEvidenceVectorEnv"

FREE_RT_ID = "MultiTaskEvidenceFreeRT-v0"
"""The paper's choice report with free response (reaction times)."""


def env_ids() -> dict[str, dict[str, str]]:
    """Every id and its default env options: one per report kind that names an ``env_id``
    (:data:`envs.reports.REPORT_KINDS`), then the free-response choice id."""
    ids = {k.env_id: {"report": k.name} for k in REPORT_KINDS.values() if k.env_id}
    ids[FREE_RT_ID] = {"report": "choice", "response": "free"}
    return ids


ENV_IDS: dict[str, dict[str, str]] = env_ids()
"""Registered ids and their default env options (:func:`register_envs` adds the ids of kinds
registered later)."""


def register_envs() -> None:
    """Register every id once (idempotent: re-importing does not warn)."""
    ENV_IDS.update(env_ids())
    for env_id, kwargs in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=ENTRY_POINT,
            vector_entry_point=VECTOR_ENTRY_POINT,
            kwargs=dict(kwargs),
        )
