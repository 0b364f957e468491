"""The run folder ``runs/<name>/``: its file names, the metrics log, and the weights-only
readers, for every algorithm (supervised and RL).

Layout: ``spec.json`` (TaskSpec), ``config.json`` (the algorithm's config + ``"kind"``),
``model.pt`` (state dict of the latest weights), ``checkpoint.pt`` (weights, optimizer, step and
RNG states, all tensors/primitives so ``torch.load(weights_only=True)`` reads it; sb3 runs keep
theirs in ``sb3_checkpoint.pt``), ``metrics.jsonl`` (one JSON object per evaluation), tensorboard
events (``events.out.tfevents.*``). Every file is written to a temporary name and moved into place
with ``os.replace`` (:mod:`common.files`), so a crash never leaves a half-written file.

This module sits low in ``agents``: it imports ``common``, ``envs``, ``agents.architectures`` and
``agents.networks`` only. Loading a run of any kind (``agents.load``) lives in
:mod:`agents.loading`, above the trainers.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from multitask_evidence.agents.architectures import build_core
from multitask_evidence.agents.networks import Network
from multitask_evidence.common.files import atomic_write_bytes, atomic_write_text
from multitask_evidence.common.limits import short_repr, too_deep
from multitask_evidence.common.validate import check_int, check_number, is_number
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
METRICS_KEYS = {"supervised": "step", "ppo": "update", "sb3": "env_steps"}
"""The field each kind of run counts its metrics.jsonl rows by (what its trainer writes and
cuts the log back to on resume): a non-negative integer in every row."""


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
    output = "ddm" if spec.ddm_targets else "linear" if spec.targets == "latent" else "sigmoid"
    return Network(core, spec.n_outputs, output=output, ddm_bound=spec.ddm_bound)


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


def checkpoint_dict(path: Path, ck: Any, keys: Iterable[str], what: str) -> dict[str, Any]:
    """``ck`` (what :func:`load_weights` read from ``path``) as a dict holding every name in
    ``keys``; anything else (a bare tensor, a list, a dict without them) is a ValueError naming
    the file and ``what`` it should be (e.g. ``"training checkpoint"``)."""
    if not isinstance(ck, dict):
        raise ValueError(
            f"{path}: not a valid {what} (expected a dict of training state, got "
            f"{type(ck).__name__})"
        )
    missing = [k for k in keys if k not in ck]
    if missing:
        raise ValueError(f"{path}: an incomplete {what} (fields {missing} missing)")
    return ck


def checkpoint_count(path: Path, ck: dict[str, Any], key: str, high: int, bound: str) -> int:
    """``ck[key]``: a step or update counter, an integer in [0, high]; ``bound`` says where
    ``high`` comes from (``"TrainConfig.steps in config.json"``). ValueError naming the file
    and field otherwise: a counter past the run's own length would end the run at once, or
    index schedules outside their range."""
    value = ck[key]
    check_int(f"{path}: {key}", value, 0)
    if value > high:
        raise ValueError(f"{path}: {key} must be at most {high} ({bound}), got {value}")
    return value


def checkpoint_seconds(path: Path, ck: dict[str, Any], key: str = "train_seconds") -> float:
    """``ck[key]``: training time so far, a finite number of seconds >= 0 (a NaN would never
    reach ``max_seconds``, so the time budget would silently stop counting)."""
    check_number(f"{path}: {key}", ck[key], 0.0)
    return float(ck[key])


def _hyperparameters(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Each param group's settings (all but its parameters)."""
    return [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]


def _same_kind(fresh: Any, loaded: Any) -> bool:
    """Whether an optimizer setting read from a checkpoint is of the fresh setting's kind: a
    finite number for a number, a tuple of as many for a tuple (Adam's betas), a string for a
    string, None or a bool for a flag (torch writes flags such as ``fused`` as either)."""
    if fresh is None or isinstance(fresh, bool):
        return loaded is None or isinstance(loaded, bool)
    if isinstance(fresh, str):
        return isinstance(loaded, str)
    if isinstance(fresh, (int, float)):
        return is_number(loaded)
    if isinstance(fresh, (tuple, list)):
        return (
            isinstance(loaded, (tuple, list))
            and len(loaded) == len(fresh)
            and all(_same_kind(f, v) for f, v in zip(fresh, loaded))
        )
    return True  # a setting of another type (a tensor lr) is the optimizer's own concern


def _check_optimizer_state(path: Path, optimizer: torch.optim.Optimizer) -> None:
    """After ``load_state_dict``: every per-parameter tensor (Adam's moments) has its
    parameter's shape, is floating-point and finite; scalar ones (the step count) are finite
    and >= 0."""
    for gi, group in enumerate(optimizer.param_groups):
        for pi, param in enumerate(group["params"]):
            for key, value in optimizer.state.get(param, {}).items():
                if not torch.is_tensor(value):
                    continue
                where = f"{path}: optimizer state {key!r} of parameter {pi} (group {gi})"
                if value.dim() > 0 and value.shape != param.shape:
                    raise ValueError(
                        f"{where} must have the parameter's shape {tuple(param.shape)}, got "
                        f"{tuple(value.shape)}"
                    )
                if not value.is_floating_point():
                    raise ValueError(f"{where} must hold floats, got {value.dtype}")
                if not torch.isfinite(value).all():
                    raise ValueError(f"{where} must be finite, got NaN or infinite values")
                if value.dim() == 0 and value.item() < 0:
                    raise ValueError(f"{where} must be >= 0, got {value.item()}")


def load_optimizer(optimizer: torch.optim.Optimizer, state: Any, path: Path) -> None:
    """``optimizer.load_state_dict(state)`` for the state read from checkpoint ``path``,
    refusing (ValueError naming the file) a state that is not a dict, whose groups or
    parameters do not match, whose settings are of other types than the optimizer's own (a
    string for a learning rate, NaN betas) or whose per-parameter tensors have other shapes
    than the parameters (torch would accept them and fail at the next step)."""
    if not isinstance(state, dict) or not isinstance(state.get("param_groups"), list):
        raise ValueError(
            f"{path}: optimizer must be an optimizer state dict, got {type(state).__name__}"
        )
    fresh = _hyperparameters(optimizer)
    try:
        optimizer.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
        msg = " ".join(str(e).split())[:300]
        raise ValueError(f"{path}: optimizer state does not fit this network ({msg})") from None
    for gi, (f, loaded) in enumerate(zip(fresh, _hyperparameters(optimizer))):
        for key, value in f.items():
            if key not in loaded or not _same_kind(value, loaded[key]):
                got = short_repr(loaded[key]) if key in loaded else "none (missing)"
                raise ValueError(
                    f"{path}: optimizer setting {key!r} (group {gi}) must be like "
                    f"{short_repr(value)}, got {got}"
                )
    _check_optimizer_state(path, optimizer)


def read_metrics(run_dir: Path | str, key: str | None = None) -> list[dict[str, Any]]:
    """Rows of ``metrics.jsonl`` (empty if missing). A last line without its newline (a write
    cut short by a kill) is dropped unless it is a complete row; a file that is not UTF-8 text
    or a complete line that is not a JSON object is a ValueError naming the file and line.

    key: the field every row must hold as a non-negative integer (the trainers' step counter);
    None: the one of the run's kind in :data:`METRICS_KEYS` (no check for other kinds, or
    without a readable config.json). A row without it is a ValueError naming the file, line
    and field."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    if key is None:
        key = _metrics_key(Path(run_dir))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a metrics log (not UTF-8 text: {e.reason})") from None
    except OSError as e:  # a folder, or no permission
        raise ValueError(f"{path}: not a readable metrics log ({e.strerror})") from None
    *complete, tail = text.split("\n")
    rows = []
    for i, line in enumerate([*complete, tail]):
        if not line.strip():
            continue
        row = _json_row(line)
        if not isinstance(row, dict):
            if i == len(complete):  # the unterminated tail of an interrupted write
                break
            raise ValueError(f"{path}: line {i + 1} is not a JSON object: {line[:80]!r}")
        if key is not None:
            _check_progress(path, i + 1, row, key)
        rows.append(row)
    return rows


def _check_progress(path: Path, line: int, row: dict[str, Any], key: str) -> None:
    """Row ``line`` of the metrics log holds ``key`` as an integer >= 0 (resume compares it with
    the checkpoint's counter; a missing or string step would fail there without the file)."""
    if key not in row:
        raise ValueError(
            f"{path}: line {line} has no {key!r} field (every row holds the run's training "
            "progress as a non-negative integer)"
        )
    check_int(f"{path}: line {line}: field {key!r}", row[key], 0)


def _json_row(line: str) -> Any:
    """``line`` parsed as JSON, or None where it is not JSON (or nested past the parser)."""
    try:
        return json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        return None


def _metrics_key(run_dir: Path) -> str | None:
    """The metrics key of the run's kind (:data:`METRICS_KEYS`); None for another kind or
    where config.json cannot be read (its own reader names that problem)."""
    try:
        kind, _ = read_kind(run_dir)
    except ValueError:
        return None
    return METRICS_KEYS.get(kind)


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
    (no checkpoint: the run starts clean). Returns the rows kept. A row without ``key`` as a
    non-negative integer is a ValueError naming the file and line (:func:`read_metrics`), raised
    before anything is written."""
    run_dir = Path(run_dir)
    rows = [] if until is None else [r for r in read_metrics(run_dir, key) if r[key] <= until]
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
    except RecursionError:
        raise too_deep(str(path)) from None
    except OSError as e:
        raise ValueError(f"{path}: not readable ({e.strerror})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected {what}, got {type(data).__name__}")
    return data


def check_config_values(path: Path, raw: dict[str, Any]) -> None:
    """Every field of a config.json is a JSON scalar (every config field is a number, string,
    bool or None) and every number is finite: a list or an overflowing ``1e400`` (read as
    inf) would otherwise reach ``int()`` or a comparison far from the file. ValueError naming
    the file and the field."""
    for name, value in raw.items():
        if not (value is None or isinstance(value, (str, bool, int, float))):
            raise ValueError(
                f"{path}: field {name!r} must be a number, string, true/false or null, got "
                f"{short_repr(value)}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{path}: field {name!r} must be a finite number, got {value}")
    if not isinstance(raw.get("kind", ""), str):
        raise ValueError(f"{path}: field 'kind' must be a string, got {short_repr(raw['kind'])}")


def read_config_json(path: Path | str) -> dict[str, Any]:
    """A config.json as a dict of plain values (:func:`read_json`, then
    :func:`check_config_values`); errors name the file and the field."""
    path = Path(path)
    raw = read_json(path, "a config object")
    check_config_values(path, raw)
    return raw


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
    raw = read_config_json(run_dir / CONFIG_FILE)
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
        saved = read_config_json(path / CONFIG_FILE)
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
    d = read_config_json(path)
    if d.pop("kind", None) != kind:
        raise ValueError(f"{path} is not a {kind!r} run")
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in d.items() if k in names})
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None
