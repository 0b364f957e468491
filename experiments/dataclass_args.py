"""Dataclass -> argparse: one ``--field-name`` option per field, help text from the field's
docstring (the string literal under it) or ``field(metadata={"help": ...})``.

Options default to "not given" so that only what the user typed overrides the dataclass's own
defaults (this keeps ``None`` = "take it from the preset" intact). Values are collected back with
:func:`collect`.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap
import types
import typing
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


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else str), len(args) < len(typing.get_args(tp))
    return tp, False


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        d = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        d = f.default_factory()  # type: ignore[misc]
    else:
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
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp, optional = _unwrap(hints.get(f.name, str))
        flag = "--" + rename.get(f.name, f.name).replace("_", "-")
        help_text = f"{docs.get(f.name, '')} (default: {_default_text(f)})".replace("%", "%%")
        kw: dict[str, Any] = {
            "dest": f"{namespace}__{f.name}",
            "default": argparse.SUPPRESS,
            "help": help_text,
        }
        origin = typing.get_origin(tp)
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif origin in (tuple, list):
            args = [a for a in typing.get_args(tp) if a is not Ellipsis]
            kw |= {"nargs": "+", "type": args[0] if args else str, "metavar": "V"}
        elif tp is dict or origin is dict:
            kw |= {"type": json.loads, "metavar": "JSON"}
        elif tp in (int, float, str):
            kw["type"] = tp
            kw["metavar"] = {int: "INT", float: "X", str: "STR"}[tp]
        else:
            kw["type"] = str
        if optional:
            base = kw.get("type", str)
            if base is not str and "nargs" not in kw and tp is not bool:
                kw["type"] = _none_or(base)
        parser.add_argument(flag, **kw)


def _none_or(base: Any) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else base(text)

    parse.__name__ = getattr(base, "__name__", "value")
    return parse


def collect(args: argparse.Namespace, namespace: str) -> dict[str, Any]:
    """The values the user gave for ``namespace``'s fields: {field: value}."""
    prefix = f"{namespace}__"
    out = {}
    for key, value in vars(args).items():
        if key.startswith(prefix):
            out[key[len(prefix) :]] = tuple(value) if isinstance(value, list) else value
    return out
