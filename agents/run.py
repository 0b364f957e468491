"""The run folder ``runs/<name>/``: atomic writes, checkpoints for resume, and loading.

Layout: ``spec.json`` (TaskSpec), ``config.json`` (TrainConfig + ``"kind": "supervised"``),
``model.pt`` (state dict of the latest weights), ``checkpoint.pt`` (weights, optimizer, step and
RNG states, all tensors/primitives so ``torch.load(weights_only=True)`` reads it),
``metrics.jsonl`` (one JSON object per evaluation), tensorboard events (``events.out.tfevents.*``).
Every file is written to a temporary name and moved into place with ``os.replace``, so a crash
never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.config import TrainConfig
from agents.networks import Network, build_core
from envs import TaskSpec

SPEC_FILE = "spec.json"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"


def _atomic(path: Path, write: Any) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file + os.replace)."""
    _atomic(Path(path), lambda fh: fh.write(text.encode()))


def atomic_torch_save(obj: Any, path: Path | str) -> None:
    """``torch.save`` to ``path`` atomically."""
    _atomic(Path(path), lambda fh: torch.save(obj, fh))


def encode_state(state: dict[str, Any]) -> torch.Tensor:
    """A JSON-able state (e.g. ``np.random.Generator.bit_generator.state``, whose 128-bit ints
    the weights-only unpickler would not take) as a uint8 tensor."""
    return torch.tensor(list(json.dumps(state).encode()), dtype=torch.uint8)


def decode_state(t: torch.Tensor) -> dict[str, Any]:
    return json.loads(bytes(t.tolist()).decode())


def build_network(spec: TaskSpec, config: TrainConfig) -> Network:
    """The network a (resolved) config describes for a task (readout: one unit per task)."""
    kw = config.core_kwargs()
    core = build_core(config.arch, spec.obs_dim, max_len=max(512, spec.n_steps), **kw)
    output = "ddm" if spec.ddm_targets else "sigmoid"
    return Network(core, spec.n_tasks, output=output, ddm_bound=spec.ddm_bound)


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """Rows of ``metrics.jsonl`` (empty if missing)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class LoadedRun:
    """A trained supervised network with its task. ``hidden_and_outputs`` is what probes use."""

    network: Network
    spec: TaskSpec
    config: TrainConfig
    run_dir: Path | None = None
    device: str = "cpu"

    def hidden_and_outputs(
        self, obs: np.ndarray, chunk: int = 4096
    ) -> tuple[np.ndarray, np.ndarray]:
        """obs [B, T, O] -> (hidden [B, T, H], outputs [B, T, N]) float32 numpy, no gradient.

        outputs are activated: sigmoid probabilities, or ddm_bound * tanh for ddm targets.
        """
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim != 3 or obs.shape[-1] != self.spec.obs_dim:
            raise ValueError(f"obs must have shape [B, T, {self.spec.obs_dim}], got {obs.shape}")
        net = self.network
        was_training = net.training
        net.eval()
        hs, outs = [], []
        with torch.no_grad():
            for i in range(0, obs.shape[0], chunk):
                readout, hidden = net(torch.from_numpy(obs[i : i + chunk]).to(self.device))
                hs.append(hidden.float().cpu().numpy())
                outs.append(net.activate(readout).float().cpu().numpy())
        net.train(was_training)
        return np.concatenate(hs), np.concatenate(outs)


@dataclass
class Run(LoadedRun):
    """What ``agents.train`` returns: the loaded run plus its evaluation history."""

    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        """The last evaluation (empty dict if none)."""
        return self.metrics[-1] if self.metrics else {}


def load(run_dir: Path | str, device: str = "cpu") -> Any:
    """Load a run folder. Supervised runs -> :class:`LoadedRun`; other kinds -> ``agents.rl.load``."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.exists():
        raise ValueError(f"{run_dir} is not a run folder (no {CONFIG_FILE})")
    raw = json.loads(cfg_path.read_text())
    kind = raw.get("kind", "supervised")
    if kind != "supervised":
        try:
            from agents import rl
        except ImportError as e:  # pragma: no cover - depends on the RL package being present
            raise ValueError(
                f"run {run_dir} has kind={kind!r} but agents.rl is not available"
            ) from e
        return rl.load(run_dir)
    spec = TaskSpec.from_json((run_dir / SPEC_FILE).read_text())
    config = TrainConfig.from_dict(raw)
    network = build_network(spec, config)
    model = run_dir / MODEL_FILE
    if not model.exists():
        raise ValueError(f"{run_dir} has no {MODEL_FILE} yet (no checkpoint written)")
    network.load_state_dict(torch.load(model, map_location=device, weights_only=True))
    network.to(device).eval()
    return LoadedRun(network, spec, config, run_dir, device)


def untrained(loaded: Any) -> Any:
    """The same agent before training: same architecture, init and seed, fresh weights.

    A loaded run (supervised :class:`LoadedRun`, or an RL policy from ``agents.rl.load``) -> an
    object of the same kind whose network is exactly what its trainer built at step 0
    (``torch.manual_seed(config.seed)`` then the same builder), for the untrained control of
    every probe. Torch's global RNG is restored afterwards.
    """
    config = getattr(loaded, "config", None)
    spec = getattr(loaded, "spec", None)
    if config is None or spec is None:
        raise ValueError(
            f"untrained needs a loaded run with .spec and .config, got {type(loaded).__name__}"
        )
    if isinstance(config, TrainConfig):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            network = build_network(spec, config.resolve())
        return LoadedRun(network=network, spec=spec, config=config, run_dir=None)
    from agents import rl

    return rl.untrained(loaded)
