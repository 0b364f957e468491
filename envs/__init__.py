"""Multi-task evidence-aggregation tasks (Vafidis, Bhargava & Rangel, ICLR 2025) for Gymnasium.

``import multitask_evidence`` (or ``multitask_evidence.envs``) registers the ``MultiTaskEvidence*-v0``
ids with Gymnasium.
"""

from multitask_evidence.envs.env import MultiTaskEvidenceEnv, TrialEndedError
from multitask_evidence.envs.registration import ENV_IDS, register_envs
from multitask_evidence.envs.spec import TaskSpec
from multitask_evidence.envs.task import TaskGeometry, orthant_index, task_geometry
from multitask_evidence.envs.trials import (
    DECISION,
    DELAY,
    FIXATION,
    STIMULUS,
    Region,
    TrialBatch,
    build_trials,
    generate,
    sample_latents,
    sample_noise,
)
from multitask_evidence.envs.vector import MultiTaskEvidenceVectorEnv

__all__ = [
    "DECISION",
    "DELAY",
    "ENV_IDS",
    "MultiTaskEvidenceEnv",
    "MultiTaskEvidenceVectorEnv",
    "TrialEndedError",
    "FIXATION",
    "STIMULUS",
    "Region",
    "TaskGeometry",
    "TaskSpec",
    "TrialBatch",
    "build_trials",
    "generate",
    "orthant_index",
    "sample_latents",
    "sample_noise",
    "register_envs",
    "task_geometry",
]

register_envs()
