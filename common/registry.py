"""One mechanism behind every extension point's registry (report kinds and encoder families in
envs/, architectures and algorithms in agents/, figures in experiments/): a dict from name to
entry, in registration order, with the checks every registry makes. It lives in common/, below
every other package, so that each of them can build on it without importing upwards."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """Name -> entry of one extension point, in registration order.

    field: the parameter a user names an entry with (``"arch"``, ``"report"`` ...), for the
    error on an unknown name; what: what an entry is (``"architecture"``), for the error on a
    name taken twice.
    """

    def __init__(self, field: str, what: str) -> None:
        super().__init__()
        self.field, self.what = field, what

    def add(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Register ``entry`` under ``name`` (ValueError for an empty name, or one already taken
        unless ``replace``); returns the entry."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.what}'s name must be a non-empty string, got {name!r}")
        if name in self and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = entry
        return entry

    def remove(self, name: str) -> None:
        """Forget ``name`` (no-op for a name that is not registered)."""
        self.pop(name, None)

    def lookup(self, name: Any) -> T:
        """The entry called ``name``; anything else is a ValueError listing the names."""
        if not isinstance(name, str) or name not in self:
            raise ValueError(f"{self.field} must be one of {list(self)}, got {name!r}")
        return self[name]
