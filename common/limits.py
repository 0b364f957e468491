"""Upper bounds on sizes: a setting whose arrays would not fit in memory is refused before
anything is allocated, with the memory it would take in the message; a sweep grid is counted
before its points are built; nested input is measured before anything walks it recursively; and
an error message quotes at most a few hundred characters of a user's value.

The memory limit is 64 GiB per estimate (a large workstation); an estimate counts the dominant
arrays only, so it is a lower bound on what the job would really use.
"""

from __future__ import annotations

import reprlib
from typing import Any

MEMORY_LIMIT = 64 * 2**30
"""Bytes: the most any one estimate may reach."""

MAX_POINTS = 100_000
"""The most points a sweep grid (or a ``--seeds`` range) may hold unless the caller raises it
(``mte sweep --max-points``, ``max_points=``). Each point trains a network, so a grid this large
is far more likely a typo than a plan; and checking 1e5 points alone takes about 20 s of one
core, so the count is checked before any point is built."""

MAX_NESTING = 32
"""The deepest nesting of lists / mappings in a grid file or a JSON value: a grid is 4 to 6
levels deep, while the parsers and the recursive code after them (``repr``, ``json.dumps``)
fail near 1000 levels with a RecursionError instead of a message."""

MAX_VALUES = 100_000
"""The most values (scalars, lists and mappings; a YAML alias counted each time it is used) a
grid file may hold: a few hundred bytes of nested aliases expand to billions of values, which
printing, hashing or saving the grid would then walk one by one. As many as ``MAX_POINTS``:
a grid's axes hold fewer values than it has points (unless its values are long lists), so a
grid within that limit is well within this one."""

QUOTE_CHARS = 200
"""The most characters of a user's value that an error message quotes (then ``...``)."""

MESSAGE_CHARS = 500
"""The most characters kept of a message from code that quotes a value whole (a type or range
check of a config field): room for its prefix (field, point id, what is allowed) and about
``QUOTE_CHARS`` of the value."""


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


def check_points(what: str, n: int, limit: int = MAX_POINTS, option: str = "max_points") -> None:
    """ValueError when ``n`` points (counted, not built) exceed ``limit``; ``what`` names the
    grid or range (``"the grid"``, ``"--seeds range '0-99'"``), ``option`` how to raise it."""
    if n > limit:
        raise ValueError(
            f"{what} holds {n:,} points, more than the limit of {limit:,}; choose fewer values, "
            f"or raise the limit with {option}"
        )


def too_deep(what: str, max_depth: int = MAX_NESTING) -> ValueError:
    """The error for input nested more than ``max_depth`` levels (raised by the caller, also on
    a parser's RecursionError)."""
    return ValueError(
        f"{what} is nested too deeply: more than {max_depth} levels of lists / mappings"
    )


def check_nesting(
    what: str, data: Any, max_depth: int = MAX_NESTING, max_values: int = MAX_VALUES
) -> None:
    """ValueError when parsed YAML / JSON ``data`` nests lists / mappings (or tuples) more than
    ``max_depth`` levels deep, or holds more than ``max_values`` values, counting a value shared
    by several aliases each time it is reached (as printing or saving it would). The walk is
    iterative and stops at the first excess, so a self-referencing or alias-bomb document is
    refused in about ``max_values`` steps."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    n = 0
    while stack:
        value, depth = stack.pop()
        n += 1
        if n > max_values:
            raise ValueError(
                f"{what} holds more than {max_values:,} values (an alias counted each time it is "
                "used); write the grid out with fewer values"
            )
        if isinstance(value, (dict, list, tuple)):
            if depth >= max_depth:
                raise too_deep(what, max_depth)
            items = value.values() if isinstance(value, dict) else value
            stack.extend((v, depth + 1) for v in items)


def clip(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when cut."""
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


_REPR = reprlib.Repr()
# at most 10 items of each list / mapping and 4 levels (10**4 items in all): the repr takes a
# bounded time even for a value that expands to billions of items; the clip bounds its length
_REPR.maxlevel = 4
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 10
_REPR.maxdict = 10
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = QUOTE_CHARS


def short_repr(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` for an error message: at most ``limit`` characters, ``...`` where cut, and
    computed in bounded time whatever the value's size."""
    try:
        text = _REPR.repr(value)
    except ValueError:  # an int too long for str() (sys.set_int_max_str_digits)
        text = f"<{type(value).__name__} too large to show>"
    return clip(text, limit)
