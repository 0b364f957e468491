"""Run-folder helpers shared by the native PPO and the SB3 path (atomic writes, metrics log).

Layout (the same as supervised runs): ``spec.json``, ``config.json`` (with ``"kind"``),
``model.pt`` (a state dict for ``torch.load(weights_only=True)``), ``metrics.jsonl``, tensorboard
events, and the algorithm's resume state.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file + rename (never a half-written file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temp file + rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_run_dir(
    run_dir: str | Path | None, kind: str, spec: Any, config: Any, resume: bool, marker: str
) -> tuple[Path, bool]:
    """Create (or reopen for ``resume``) a run folder; write spec.json and config.json.

    marker: the file whose presence means "there is state to resume from".
    Returns (path, resuming). A folder that already holds a run without ``resume`` -> ValueError.
    """
    if run_dir is None:
        import time

        run_dir = Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(run_dir)
    has_run = (path / "config.json").exists()
    if has_run and not resume:
        raise ValueError(
            f"run folder {path} already holds a run; pass resume=True (--resume) to continue it "
            "or choose another run_dir"
        )
    path.mkdir(parents=True, exist_ok=True)
    resuming = resume and (path / marker).exists()
    if resuming:
        saved = json.loads((path / "config.json").read_text())
        if saved.get("kind") != kind:
            raise ValueError(f"run folder {path} holds a {saved.get('kind')!r} run, not {kind!r}")
    atomic_write_text(path / "spec.json", spec.to_json())
    cfg = {"kind": kind, **dataclasses.asdict(config)}
    atomic_write_text(path / "config.json", json.dumps(cfg, indent=2))
    return path, resuming


def read_config(run_dir: str | Path, cls: type, kind: str) -> Any:
    """Read config.json of a run folder back into its dataclass (checks ``kind``)."""
    d = json.loads((Path(run_dir) / "config.json").read_text())
    if d.pop("kind", None) != kind:
        raise ValueError(f"{run_dir}/config.json is not a {kind!r} run")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


class MetricsLog:
    """Append-only ``metrics.jsonl``; on resume, lines past the checkpoint are dropped."""

    def __init__(self, path: Path, keep_until: int | None = None, key: str = "step"):
        self.path = Path(path)
        if keep_until is not None and self.path.exists():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get(key, 0) <= keep_until
            ]
            atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))
        elif keep_until is None:
            atomic_write_text(self.path, "")

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
