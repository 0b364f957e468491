"""Ensembles: K networks of one architecture trained as one batched model.

``train_ensemble(specs, configs, run_dirs)`` trains member k as the solo
``agents.train(specs[k], configs[k], run_dirs[k])`` would (same initial weights, task, trial
stream and dropout masks; CPU results equal to float32 rounding) and writes each member as an
ordinary run folder. ``ensemble_members(spec, config, seeds)`` builds the per-member lists.

Modules: ``trials`` (K tasks' batches at once), ``model`` (:class:`StackedNetwork`), ``trainer``,
``memory`` (malloc settings that keep its large buffers mapped between steps).
"""

from multitask_evidence.agents.ensemble.model import StackedNetwork
from multitask_evidence.agents.ensemble.trainer import (
    default_ensemble_dir,
    ensemble_members,
    train_ensemble,
)
from multitask_evidence.agents.ensemble.trials import SHAPE_FIELDS, EnsembleTrials

__all__ = [
    "SHAPE_FIELDS",
    "EnsembleTrials",
    "StackedNetwork",
    "default_ensemble_dir",
    "ensemble_members",
    "train_ensemble",
]
