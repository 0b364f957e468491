"""Multi-task evidence-aggregation tasks (Vafidis, Bhargava & Rangel, ICLR 2025) for Gymnasium.

``import envs`` registers the ``MultiTaskEvidence*-v0`` ids with Gymnasium.
"""

from envs.spec import TaskSpec
from envs.task import TaskGeometry, orthant_index, task_geometry
from envs.trials import (
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

__all__ = [
    "DECISION",
    "DELAY",
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
    "task_geometry",
]
