"""Field validators shared by every config class (TaskSpec in :mod:`envs.spec`; the agents'
configs build on them in :mod:`agents.validate`).

Each check raises one ``ValueError`` line that names the parameter and says what is allowed,
e.g. ``TaskSpec.sigma must be a finite number in (0.0, 1000000.0], got nan``. ``name`` is the
parameter as the user knows it (``TaskSpec.sigma``, ``n_layers``); :class:`FieldChecker` prefixes
a config's class name and reads the values off the config.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any


def plain(value: Any) -> Any:
    """A numpy integer or float scalar as the Python int / float it holds; anything else as is
    (so ``np.int64(5)`` is a valid ``steps`` and a config never stores a numpy scalar that JSON
    cannot write)."""
    if isinstance(value, bool) or type(value).__module__ != "numpy":
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


def is_number(value: Any) -> bool:
    """True for a finite int or float, numpy scalars included (bools are not numbers here)."""
    value = plain(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_int(name: str, value: Any, minimum: int = 0, *, allow_none: bool = False) -> None:
    """``value`` is an integer >= ``minimum`` (or None when ``allow_none``)."""
    if value is None and allow_none:
        return
    value = plain(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def number_range(
    low: float | None, high: float | None, *, open_low: bool = False, open_high: bool = False
) -> str:
    """What :func:`check_number` allows, in words: ``a finite number in (0, 1]`` etc."""
    if low is not None and high is not None:
        return (
            f"a finite number in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        )
    if low is not None:
        return f"a finite number {'>' if open_low else '>='} {low}"
    if high is not None:
        return f"a finite number {'<' if open_high else '<='} {high}"
    return "a finite number"


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    allow_none: bool = False,
) -> None:
    """``value`` is a finite number within [low, high] (either end open or absent)."""
    if value is None and allow_none:
        return
    value = plain(value)
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        what = number_range(low, high, open_low=open_low, open_high=open_high)
        raise ValueError(f"{name} must be {what}, got {value!r}")


def check_choice(
    name: str, value: Any, allowed: Sequence[Any], *, allow_none: bool = False
) -> None:
    """``value`` is one of ``allowed`` (or None when ``allow_none``)."""
    if (value is None and allow_none) or value in allowed:
        return
    raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


class FieldChecker:
    """The checks above applied to the fields of one config object: ``FieldChecker(spec)
    .integer("n_tasks", 1)`` checks ``spec.n_tasks`` and names it ``TaskSpec.n_tasks``."""

    def __init__(self, obj: Any, owner: str | None = None) -> None:
        self.obj = obj
        self.owner = owner or type(obj).__name__

    def label(self, field: str) -> str:
        """``Owner.field``: how messages name the field."""
        return f"{self.owner}.{field}"

    def value(self, field: str) -> Any:
        """The field's value, a numpy scalar replaced on the object by its Python number (the
        one place configs convert them; frozen dataclasses included)."""
        v = getattr(self.obj, field)
        p = plain(v)
        if p is not v:
            object.__setattr__(self.obj, field, p)
        return p

    def integer(self, field: str, minimum: int = 0, *, allow_none: bool = False) -> None:
        check_int(self.label(field), self.value(field), minimum, allow_none=allow_none)

    def number(
        self, field: str, low: float | None = None, high: float | None = None, **kw: bool
    ) -> None:
        """:func:`check_number` (``open_low``, ``open_high``, ``allow_none`` as there)."""
        check_number(self.label(field), self.value(field), low, high, **kw)

    def choice(self, field: str, allowed: Sequence[Any], *, allow_none: bool = False) -> None:
        check_choice(self.label(field), self.value(field), allowed, allow_none=allow_none)

    def fail(self, field: str, what: str) -> None:
        """Raise the one-line error for a field that breaks a rule of its own (``what``)."""
        raise ValueError(f"{self.label(field)} {what}")
