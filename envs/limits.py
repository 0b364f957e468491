"""Upper bounds on sizes: a setting whose arrays would not fit in memory is refused before
anything is allocated, with the memory it would take in the message.

The limit is 64 GiB per estimate (a large workstation); an estimate counts the dominant arrays
only, so it is a lower bound on what the job would really use.
"""

from __future__ import annotations

MEMORY_LIMIT = 64 * 2**30
"""Bytes: the most any one estimate may reach."""


def format_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def check_bytes(what: str, nbytes: float, limit: float = MEMORY_LIMIT) -> None:
    """ValueError when ``nbytes`` exceeds ``limit``; ``what`` names the settings responsible,
    e.g. ``"TrainConfig.batch_size=10**9 x 22 steps x 64 units"``."""
    if nbytes > limit:
        raise ValueError(
            f"{what} would take about {format_bytes(nbytes)} of memory (limit "
            f"{format_bytes(limit)}); choose smaller sizes"
        )
