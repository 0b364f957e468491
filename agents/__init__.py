"""Supervised agents: recurrent and transformer networks with exposed hidden states, a trainer
with checkpoints and tensorboard, and run folders (docs/science.md §4).

``train(spec, TrainConfig(...), run_dir)`` trains; ``load(run_dir)`` gives the network and spec
back with ``hidden_and_outputs(obs)`` for the probes (any algorithm's run folder).
``ALGOS`` (:mod:`agents.algos`) names every training algorithm, supervised and RL.

Modules, lowest first: ``devices``, ``validate``, ``networks``, ``architectures`` (the
registry: ``register_architecture``), ``config``, ``errors``, ``algorithm`` (the
``Algo`` record), ``run`` (the run folder), ``evaluate``, ``trainer`` (supervised), ``rl``
(PPO, sb3), ``algos`` (the registry), ``loading`` (``load`` / ``untrained``).
"""

from multitask_evidence.agents.algorithm import Algo
from multitask_evidence.agents.algos import ALGOS
from multitask_evidence.agents.architectures import build_core, register_architecture
from multitask_evidence.agents.config import PRESETS, NetworkConfig, TrainConfig
from multitask_evidence.agents.ensemble import train_ensemble
from multitask_evidence.agents.errors import TrainingDivergedError
from multitask_evidence.agents.loading import load, untrained
from multitask_evidence.agents.networks import Network, RecurrentCore
from multitask_evidence.agents.run import LoadedRun, Run
from multitask_evidence.agents.trainer import train

__all__ = [
    "ALGOS",
    "PRESETS",
    "Algo",
    "LoadedRun",
    "Network",
    "NetworkConfig",
    "RecurrentCore",
    "Run",
    "TrainConfig",
    "TrainingDivergedError",
    "build_core",
    "register_architecture",
    "load",
    "train",
    "train_ensemble",
    "untrained",
]
