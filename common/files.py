"""Atomic file writes: every file the package writes (run folders, sweep rows and tables, figures,
probe reports, benchmark results) goes to a temporary name in the same folder and is moved into
place with ``os.replace``, so a crash never leaves a half-written file. New files get the mode a
plain ``open`` would give them (0o666 less the umask), so collaborators on shared storage can
read them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask, read without changing it where ``/proc`` allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: read the umask by setting it, and put it back at once
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0o666 less the umask
    (0o644 under the usual 022), so collaborators on shared storage can read run files.
    (``tempfile.mkstemp`` alone creates them 0o600.)"""
    return 0o666 & ~current_umask()


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
    import torch  # here, not at the top: the other writers serve callers that never load torch

    atomic_write(path, lambda fh: torch.save(obj, fh))
