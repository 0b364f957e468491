"""Dataclass fields as options: the one path from a config dataclass to the values a user types,
for the command line (argparse) and the sweep grid language alike.

- :func:`option_kinds`: each field's kind (bool, int, float, str, seq, dict, any), whether None is
  allowed and the kind of a sequence's items; :func:`field_choices`: its allowed values
  (``field(metadata={"choices": ...})``, a sequence or a function returning one, e.g. the
  registered architectures);
- :func:`coerce_value`: a typed string (``--steps 1e4``, ``--set sigma=0.1,0.2``) or a YAML/JSON
  value converted to the field's kind, or a one-line ValueError naming the field;
- :func:`add_dataclass_arguments`: one ``--field-name`` option per field, help text from the
  field's docstring (the string literal under it) or ``field(metadata={"help": ...})``, values
  parsed by :func:`coerce_value`.

Options default to "not given" so that only what the user typed overrides the dataclass's own
defaults (this keeps ``None`` = "take it from the preset" intact). Values are collected back with
:func:`collect`. The config classes validate the values themselves when they are built.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import json
import textwrap
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> help text: the string literal right under the field in the class body, or
    ``metadata['help']`` (which wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # pragma: no cover - source not available
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    for f in dataclasses.fields(cls):
        if "help" in f.metadata:
            docs[f.name] = str(f.metadata["help"])
    return docs


@dataclass(frozen=True)
class OptionKind:
    """How values of one field are read: ``kind`` in bool/int/float/str/seq/dict/any,
    ``optional`` (None allowed), ``item`` (a seq's item kind)."""

    kind: str
    optional: bool = False
    item: str = "any"


_SCALARS = {bool: "bool", int: "int", float: "float", str: "str"}


def type_kind(tp: Any) -> tuple[str, bool, str]:
    """(kind, optional, item kind) of a type annotation: ``int | None`` -> ('int', True, 'any'),
    ``tuple[int, ...]`` -> ('seq', False, 'int')."""
    optional = False
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        if len(args) != 1:
            return "any", optional, "any"
        tp = args[0]
    if tp in _SCALARS:
        return _SCALARS[tp], optional, "any"
    origin = typing.get_origin(tp) or tp
    if origin in (tuple, list, Sequence):
        items = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return "seq", optional, _SCALARS.get(items[0], "any") if items else "any"
    if origin in (dict, Mapping):
        return "dict", optional, "any"
    return "any", optional, "any"


@functools.cache
def option_kinds(cls: type) -> dict[str, OptionKind]:
    """Field name -> :class:`OptionKind` for every init field of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        kind, optional, item = type_kind(hints.get(f.name, Any))
        optional = optional or _field_default(f) is None
        out[f.name] = OptionKind(kind, optional, item)
    return out


def field_choices(cls: type, name: str) -> tuple[Any, ...] | None:
    """The allowed values of a field (``metadata['choices']``, read now), or None."""
    choices = next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("choices")
    if choices is None:
        return None
    return tuple(choices() if callable(choices) else choices)


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def coerce_value(
    name: str, value: Any, kind: str, optional: bool = False, *, what: str = "grid field"
) -> Any:
    """Convert one value (a typed string, or a YAML/JSON value) to the field's kind, or raise a
    ``ValueError`` naming ``what`` ``name`` and the kind expected. Integers accept scientific
    notation (budgets: 1e5); sequences and mappings accept JSON text."""

    def bad(expected: str) -> ValueError:
        return ValueError(
            f"{what} {name!r}: type mismatch, expected {expected}, got {value!r} "
            f"({type(value).__name__})"
        )

    if optional and (
        value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
    ):
        return None
    if kind == "any":
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise bad("a boolean (true/false)")
    if kind == "int":
        v = value
        if isinstance(v, str):
            try:
                return int(v.strip())
            except ValueError:
                try:  # scientific notation for budgets: 1e5
                    v = float(v)
                except ValueError:
                    raise bad("an integer") from None
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        raise bad("an integer")
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise bad("a number") from None
        raise bad("a number")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise bad("a string")
    if kind in ("seq", "dict"):
        expected = "a list such as [100,100,40]" if kind == "seq" else "a mapping (JSON object)"
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise bad(expected) from None
        if kind == "seq" and isinstance(value, (list, tuple)):
            return tuple(value)
        if kind == "dict" and isinstance(value, Mapping):
            return dict(value)
        raise bad(expected)
    raise AssertionError(kind)  # pragma: no cover


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _default_text(f: dataclasses.Field) -> str:
    d = _field_default(f)
    if d is dataclasses.MISSING:
        return "required"
    if d is None:
        return "from preset"
    return repr(d)


def add_dataclass_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    namespace: str,
    *,
    skip: tuple[str, ...] = (),
    rename: dict[str, str] | None = None,
) -> None:
    """Add ``--<field-name>`` for each field of dataclass ``cls`` (dest ``<namespace>__<field>``).

    bool -> ``--x/--no-x``; tuple[int, ...] -> several values; dict -> a JSON string;
    ``rename`` maps a field to another option name (e.g. TaskSpec.seed -> ``--task-seed``).
    """
    rename = rename or {}
    docs = field_docs(cls)
    kinds = option_kinds(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        k = kinds[f.name]
        flag = "--" + rename.get(f.name, f.name).replace("_", "-")
        help_text = f"{docs.get(f.name, '')} (default: {_default_text(f)})".replace("%", "%%")
        kw: dict[str, Any] = {
            "dest": f"{namespace}__{f.name}",
            "default": argparse.SUPPRESS,
            "help": help_text,
        }
        choices = field_choices(cls, f.name)
        if k.kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif k.kind == "seq":
            kw |= {"nargs": "+", "type": _parser(k.item, False), "metavar": "V"}
        else:
            kw |= {"type": _parser(k.kind, k.optional), "metavar": _METAVARS[k.kind]}
            if choices is not None:  # listed here, checked by the config (one message for all)
                kw["metavar"] = "{" + ",".join(map(str, choices)) + "}"
        parser.add_argument(flag, **kw)


_METAVARS = {"int": "INT", "float": "X", "str": "STR", "dict": "JSON", "any": "V"}


def _parser(kind: str, optional: bool) -> Callable[[str], Any]:
    """argparse ``type`` of a kind: :func:`coerce_value`; named after the kind, so a bad value
    reads ``invalid int value: 'six'``."""

    def parse(text: str) -> Any:
        return coerce_value("", text, kind, optional)

    parse.__name__ = kind
    return parse


def collect(args: argparse.Namespace, namespace: str) -> dict[str, Any]:
    """The values the user gave for ``namespace``'s fields: {field: value}."""
    prefix = f"{namespace}__"
    out = {}
    for key, value in vars(args).items():
        if key.startswith(prefix):
            out[key[len(prefix) :]] = tuple(value) if isinstance(value, list) else value
    return out
