"""Keep an ensemble's freed buffers mapped between training steps (glibc malloc settings).

A K-member step allocates and frees buffers of megabytes (the LSTM's saved gate factors for 32
members at batch 16: [32, 22, 16, 4, 64] floats, 11.5 MB). With its default, self-adjusting
thresholds glibc's malloc hands such blocks back to the kernel when they are freed (it trims the
heap top, or unmaps a block it mapped on its own), so the next step faults every page back in;
the settings below keep those pages mapped (benchmarks/results/ensemble.md has the fault counts
and the throughput they cost). The default thresholds adapt to the process's history of frees, so the
count without the settings varies from process to process. Fixed thresholds keep
blocks up to 32 MB (glibc's largest allowed) in the heap and leave up to 1 GiB of free heap
untrimmed, so the pages stay mapped. Solo networks' buffers are small enough that malloc keeps
them already.

The settings are process-wide and stay for the process's life: it keeps its peak heap rather
than returning it to the system. Elsewhere than glibc (macOS, musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
"""Blocks below this come from the heap (glibc's upper limit for M_MMAP_THRESHOLD on 64-bit)."""
TRIM_THRESHOLD = 1 << 30
"""Free heap the process keeps at its top before malloc returns any to the kernel."""

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set glibc malloc's thresholds as the module says (once per process); returns whether
    malloc took them (False where the C library is not glibc or refuses)."""
    global _applied
    if _applied is None:
        _applied = _set_thresholds()
    return _applied


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
