"""The import graph of the five packages: no cycle between modules, and the layering
common <- envs <- agents <- probes <- experiments (a package imports only from itself and lower
ones; common, the shared kernel, imports none of the others).

Every ``import x`` / ``from x import y`` counts, at module level or inside a function (a lazy
import still ties the two modules together), except under ``if TYPE_CHECKING:`` (never run).
``from pkg import name`` counts as an import of the submodule ``pkg.name`` when there is one, of
``pkg`` otherwise. The parent packages that Python initialises on the way to a submodule are not
edges: importing ``multitask_evidence.agents.run`` is an import of ``agents/run.py``.

Modules are named as installed (``multitask_evidence.<layer>...``); an import of a layer by its
bare top-level name (``import envs``) is an error of its own, since the installed distribution has
no such name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "multitask_evidence"
LAYERS = ("common", "envs", "agents", "probes", "experiments")
"""Lowest first: a module may import from its own package and the ones before it."""


def module_files() -> dict[str, Path]:
    """Installed module name -> file, for every .py file of the five packages."""
    out: dict[str, Path] = {NAMESPACE: ROOT / "src" / NAMESPACE / "__init__.py"}
    for pkg in LAYERS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((NAMESPACE, *parts))] = path
    return out


def layer(module: str) -> str:
    """``multitask_evidence.agents.rl.ppo`` -> ``agents`` (the root package -> itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, function bodies included, ``if TYPE_CHECKING:``
    bodies excluded."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` or its longest prefix that is one of our modules (None: not ours)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        cand = ".".join(parts[:i])
        if cand in modules:
            return cand
    return None


def imports_of(name: str, modules: dict[str, Path]) -> set[str]:
    """The modules of the five packages that module ``name`` imports."""
    path = modules[name]
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [_known(a.name, modules) for a in node.names]
        else:
            if node.level:
                package = name.split(".") if is_pkg else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else _known(base, modules)
                for a in node.names
            ]
        out.update(t for t in targets if t is not None and t != name)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, modules) for name in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def cycle_path(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """A shortest closed path from the component's first module back to it (for the failure
    message), e.g. ``[a, b, a]``."""
    members = set(comp)
    start = comp[0]
    prev: dict[str, str] = {start: start}
    todo = [start]
    while todo:
        v = todo.pop(0)
        if start in graph[v]:
            path = [v]
            while path[-1] != start:
                path.append(prev[path[-1]])
            return [*reversed(path), start]
        for w in sorted(graph[v] & members):
            if w not in prev:
                prev[w] = v
                todo.append(w)
    return comp


KNOWN_CYCLES: dict[str, str] = {}
"""Package -> the cycle it still has (its test is an expected failure until it is broken)."""


@pytest.mark.parametrize(
    "package",
    [
        pytest.param(p, marks=pytest.mark.xfail(reason=KNOWN_CYCLES[p], strict=True))
        if p in KNOWN_CYCLES
        else p
        for p in LAYERS
    ],
)
def test_no_import_cycle(package: str) -> None:
    graph = import_graph()
    found = [c for c in cycles(graph) if any(layer(m) == package for m in c)]
    assert not found, "import cycles: " + "; ".join(
        " -> ".join(cycle_path(graph, c)) for c in found
    )


def test_layering() -> None:
    rank = {p: i for i, p in enumerate(LAYERS)}
    bad = [
        f"{a} imports {b}"
        for a, targets in sorted(import_graph().items())
        for b in sorted(targets)
        if a != NAMESPACE and rank[layer(b)] > rank[layer(a)]
    ]
    assert not bad, "a lower package imports a higher one: " + "; ".join(bad)


def test_no_module_imports_a_layer_by_its_bare_name() -> None:
    """``import envs`` would find another distribution's ``envs`` (or nothing) once installed."""
    bad = []
    for name, path in module_files().items():
        for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""] if not node.level else []
            )
            bad += [f"{name}: {n}" for n in names if n.split(".")[0] in LAYERS]
    assert not bad, "bare top-level imports: " + "; ".join(bad)


def test_the_walker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    src = tmp_path / "a.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import c\n"
        "def f():\n    from b import thing\n    from . import d\n"
    )
    modules = {"pkg.a": src, "b": tmp_path / "b.py", "c": tmp_path / "c.py", "pkg.d": src}
    assert imports_of("pkg.a", modules) == {"b", "pkg.d"}
    graph = {"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": {"x"}}
    assert cycles(graph) == [["x", "y", "z"]]
    assert cycle_path(graph, ["x", "y", "z"]) == ["x", "y", "z", "x"]
