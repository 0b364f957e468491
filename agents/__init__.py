"""Supervised agents: recurrent and transformer networks with exposed hidden states, a trainer
with checkpoints and tensorboard, and run folders (SPEC.md section 4).

``train(spec, TrainConfig(...), run_dir)`` trains; ``load(run_dir)`` gives the network and spec
back with ``hidden_and_outputs(obs)`` for the probes.
"""

from agents.config import PRESETS, TrainConfig
from agents.networks import Network, RecurrentCore, build_core
from agents.run import LoadedRun, Run, load, untrained
from agents.trainer import TrainingDivergedError, train

__all__ = [
    "PRESETS",
    "LoadedRun",
    "Network",
    "RecurrentCore",
    "Run",
    "TrainConfig",
    "TrainingDivergedError",
    "build_core",
    "load",
    "train",
    "untrained",
]
