"""The run folder ``runs/<name>/``: its file names, atomic writes, the metrics log, and the
weights-only readers, for every algorithm (supervised and RL).

Layout: ``spec.json`` (TaskSpec), ``config.json`` (the algorithm's config + ``"kind"``),
``model.pt`` (state dict of the latest weights), ``checkpoint.pt`` (weights, optimizer, step and
RNG states, all tensors/primitives so ``torch.load(weights_only=True)`` reads it; sb3 runs keep
theirs in ``sb3_checkpoint.pt``), ``metrics.jsonl`` (one JSON object per evaluation), tensorboard
events (``events.out.tfevents.*``). Every file is written to a temporary name and moved into place
with ``os.replace``, so a crash never leaves a half-written file.

This module sits low in ``agents``: it imports ``envs`` and ``agents.networks`` only. Loading a
run of any kind (``agents.load``) lives in :mod:`agents.loading`, above the trainers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from multitask_evidence.agents.architectures import build_core
from multitask_evidence.agents.networks import Network
from multitask_evidence.envs import TaskSpec

if TYPE_CHECKING:
    from multitask_evidence.agents.config import TrainConfig

SPEC_FILE = "spec.json"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_FILE = "metrics.jsonl"
SB3_CHECKPOINT_FILE = "sb3_checkpoint.pt"
"""sb3 runs' resume state (model, optimizer, RNG and rollout state as tensors)."""
SB3_LEGACY_CHECKPOINT_FILE = "sb3_checkpoint.zip"
"""sb3's own zip checkpoint (unpickles objects; refused)."""
TENSORBOARD_GLOB = "events.out.tfevents.*"


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0o666 less the umask
    (0o644 under the usual 022), so collaborators on shared storage can read run files.
    (``tempfile.mkstemp`` alone creates them 0o600.)"""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: read the umask by setting it, and put it back at once
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path | str, write: Any, mode: str = "wb") -> None:
    """Write through a temporary file in the same folder, then ``os.replace``: readers see the
    old file or the new one, never half of one. The file gets :func:`file_mode`. ``write(fh)``
    writes the content to the open temporary file. Every file the package writes goes through
    here."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file + os.replace)."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path | str, text: str, *, mkdir: bool = False) -> None:
    """Write ``text`` to ``path`` atomically (temp file + os.replace); ``mkdir``: create the
    parent folders first."""
    if mkdir:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def atomic_torch_save(obj: Any, path: Path | str) -> None:
    """``torch.save`` to ``path`` atomically."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


RUNTIME_FIELDS = ("progress", "num_threads", "device", "max_seconds")
"""Config fields a resumed run may change: they do not change what is computed (on CPU)."""


def resume_mismatch(run_dir: Path, spec: TaskSpec, stored_cfg: dict, config: dict) -> str | None:
    """Why ``spec`` / ``config`` cannot continue the run stored in ``run_dir`` (None: they can):
    the spec differs, or config fields other than :data:`RUNTIME_FIELDS` do."""
    old_spec = read_spec(run_dir)
    differ = sorted(
        k
        for k in config
        if k not in RUNTIME_FIELDS and k != "kind" and stored_cfg.get(k) != config[k]
    )
    if old_spec == spec and not differ:
        return None
    what = [f"config fields {differ}"] if differ else []
    if old_spec != spec:
        what.append(
            "spec fields "
            + str(sorted(k for k, v in spec.to_dict().items() if old_spec.to_dict()[k] != v))
        )
    return (
        f"cannot resume {run_dir}: {' and '.join(what)} differ from the stored run (resume with "
        "the stored settings, or change them explicitly: mte train --resume --override)"
    )


def child_path(parent: Path | str, name: Any, what: str) -> Path:
    """``parent / name`` for a run or sweep name that stays inside ``parent``.

    ``name`` is a relative path of plain components (``exp1`` or ``group/exp1``): not empty, not
    absolute, no ``.`` / ``..`` / empty components, no NUL, each component at most 255 bytes.
    The path must also stay inside ``parent`` once symlinks are resolved: a symlink under
    ``parent`` that leads out of it is refused (``parent`` itself may be a symlink: that is the
    caller's choice of folder). Anything else is a ValueError naming ``what`` (the flag or
    field) and what is allowed.
    """
    allowed = "a folder name or a relative path under it without '..' (e.g. 'exp1', 'grp/exp1')"
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be {allowed}; got {name!r}")
    parts = name.split("/")
    bad = (
        name.startswith("/")
        or "\0" in name
        or any(p in ("", ".", "..") or len(p.encode()) > 255 for p in parts)
    )
    if bad:
        raise ValueError(f"{what} must be {allowed} inside {parent}; got {name!r}")
    path = Path(parent, *parts)
    root = os.path.realpath(parent)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise ValueError(
            f"{what} {name!r} leads out of {parent} through a symlink (to {real}); runs and "
            "sweeps stay inside their folder: use a name without the link, or point --runs-dir "
            "at the other folder"
        )
    return path


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


def load_weights(path: Path | str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; any failure is a ValueError naming the file.

    The weights-only unpickler builds tensors, numbers, strings and containers only: a file that
    asks for any other object (a pickled class, a function call) is refused before anything in it
    runs. Missing, truncated or corrupt files are refused the same way.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure here is a bad file, reported as such
        import pickle

        if isinstance(e, pickle.UnpicklingError):
            why = "it holds objects other than tensors and numbers (refused; nothing in it ran)"
        else:
            detail = " ".join(str(e).split())[:120] or "empty or cut short"
            why = f"truncated or corrupt ({type(e).__name__}: {detail})"
        raise ValueError(f"{path}: not a readable weights-only checkpoint: {why}") from None


def load_state(module: torch.nn.Module, path: Path | str, state: Any = None) -> None:
    """Load a state dict (``state``, or the file at ``path`` read with :func:`load_weights`)
    into ``module``; a state that does not fit (other shapes or names: a model / spec / config
    mismatch) is a ValueError naming the file."""
    if state is None:
        state = load_weights(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, KeyError, AttributeError) as e:
        msg = " ".join(str(e).split())[:300]
        raise ValueError(
            f"{path}: the weights do not fit the network that spec.json and config.json describe "
            f"({msg})"
        ) from None


def read_metrics(run_dir: Path | str) -> list[dict[str, Any]]:
    """Rows of ``metrics.jsonl`` (empty if missing). A last line without its newline (a write
    cut short by a kill) is dropped unless it is a complete row; a file that is not UTF-8 text
    or a complete line that is not a JSON object is a ValueError naming the file and line."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a metrics log (not UTF-8 text: {e.reason})") from None
    *complete, tail = text.split("\n")
    rows = []
    for i, line in enumerate([*complete, tail]):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            if i == len(complete):  # the unterminated tail of an interrupted write
                break
            raise ValueError(f"{path}: line {i + 1} is not a JSON object: {line[:80]!r}")
        rows.append(row)
    return rows


class MetricsLog:
    """Append-only ``metrics.jsonl`` (cut back to the checkpoint by :func:`trim_logs` before a
    run starts or resumes, so no step is logged twice)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _event_records(path: Path) -> list[tuple[bytes, int]]:
    """(raw record, step) of every complete record of a tensorboard event file (TFRecord
    framing: uint64 length, uint32 crc, data, uint32 crc); a truncated tail is dropped."""
    from tensorboard.compat.proto.event_pb2 import Event

    raw = path.read_bytes()
    out, i = [], 0
    while i + 12 <= len(raw):
        (n,) = struct.unpack("<Q", raw[i : i + 8])
        end = i + 12 + n + 4
        if end > len(raw):
            break
        try:
            step = Event.FromString(raw[i + 12 : i + 12 + n]).step
        except Exception:  # noqa: BLE001 - a damaged record ends the readable part
            break
        out.append((raw[i:end], int(step)))
        i = end
    return out


def trim_tensorboard(run_dir: Path | str, until: int | None) -> None:
    """Drop tensorboard events past step ``until`` from every event file under ``run_dir``
    (``until=None``: remove the event files), so that a resumed run logs each step once."""
    for path in sorted(Path(run_dir).rglob(TENSORBOARD_GLOB)):
        if not path.is_file():
            continue
        if until is None:
            path.unlink()
            continue
        records = _event_records(path)
        kept = [r for r, step in records if step <= until]
        if len(kept) != len(records) or sum(map(len, kept)) != path.stat().st_size:
            atomic_write_bytes(path, b"".join(kept))


def trim_logs(run_dir: Path | str, key: str, until: int | None, tb_step: int | None) -> list[dict]:
    """Cut a run folder's logs back to its checkpoint: metrics.jsonl rows with ``row[key] <=
    until`` and tensorboard events with step ``<= tb_step`` stay; ``None`` empties that log
    (no checkpoint: the run starts clean). Returns the rows kept."""
    run_dir = Path(run_dir)
    rows = [] if until is None else [r for r in read_metrics(run_dir) if r.get(key, 0) <= until]
    atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in rows))
    trim_tensorboard(run_dir, tb_step)
    return rows


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


def read_json(path: Path | str, what: str = "a JSON object") -> Any:
    """A JSON file's content; a missing file or bad JSON is a ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected {what}, got {type(data).__name__}")
    return data


def read_spec(run_dir: Path | str) -> TaskSpec:
    """The run folder's spec.json as a TaskSpec (errors name the file)."""
    path = Path(run_dir) / SPEC_FILE
    data = read_json(path, "a TaskSpec object")
    try:
        return TaskSpec.from_dict(data)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"{path}: not a valid TaskSpec ({e})") from None


def read_kind(run_dir: Path | str) -> tuple[str, dict[str, Any]]:
    """(kind, raw config dict) of a run folder's config.json (errors name the file)."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).exists():
        raise ValueError(f"{run_dir} is not a run folder (no {CONFIG_FILE})")
    raw = read_json(run_dir / CONFIG_FILE, "a config object")
    return str(raw.get("kind", "supervised")), raw


def prepare_run_dir(
    run_dir: str | Path | None, kind: str, spec: TaskSpec, config: Any, resume: bool, marker: str
) -> tuple[Path, bool]:
    """Create (or reopen for ``resume``) a run folder; write spec.json and config.json.

    marker: the file whose presence means "there is state to resume from".
    Returns (path, resuming). A folder that already holds a run without ``resume`` -> ValueError.
    """
    if run_dir is None:
        import time

        run_dir = Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(run_dir)
    has_run = (path / CONFIG_FILE).exists()
    if has_run and not resume:
        raise ValueError(
            f"run folder {path} already holds a run; pass resume=True (--resume) to continue it "
            "or choose another run_dir"
        )
    path.mkdir(parents=True, exist_ok=True)
    resuming = resume and (path / marker).exists()
    if has_run and resume:
        saved = read_json(path / CONFIG_FILE, "a config object")
        if saved.get("kind") != kind:
            raise ValueError(f"run folder {path} holds a {saved.get('kind')!r} run, not {kind!r}")
        why = resume_mismatch(path, spec, saved, dataclasses.asdict(config))
        if why:
            raise ValueError(why)
    write_spec_and_config(path, spec, kind, config)
    return path, resuming


def write_spec_and_config(run_dir: Path | str, spec: TaskSpec, kind: str, config: Any) -> None:
    """Write a run folder's spec.json and config.json (the config dataclass + ``"kind"``)."""
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / SPEC_FILE, spec.to_json())
    cfg = {"kind": kind, **dataclasses.asdict(config)}
    atomic_write_text(run_dir / CONFIG_FILE, json.dumps(cfg, indent=2))


def read_config(run_dir: str | Path, cls: type, kind: str) -> Any:
    """Read config.json of a run folder back into its dataclass (checks ``kind``; errors name
    the file)."""
    path = Path(run_dir) / CONFIG_FILE
    d = read_json(path, "a config object")
    if d.pop("kind", None) != kind:
        raise ValueError(f"{path} is not a {kind!r} run")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in d.items() if k in names})
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None
