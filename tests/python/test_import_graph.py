"""The package's import graph: no cycles (function-local imports included, since those
are how a cycle hides), and the layers import downward only: the serving core imports no
frontend, and neither frontend imports the other."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import cadence

PACKAGE_ROOT = Path(cadence.__file__).resolve().parent
# A sitecustomize that makes the HTTP stack unimportable.
NO_HTTP_STACK = Path(__file__).resolve().parent / "no_http_stack"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path | None]:
    """Every cadence module: its source, or None for a compiled one (cadence._core)."""
    modules: dict[str, Path | None] = {
        _module_name(path): path
        for path in PACKAGE_ROOT.rglob("*.py")
        if "v1" not in path.relative_to(PACKAGE_ROOT).parts  # generated stubs
    }
    for path in PACKAGE_ROOT.glob("*.so"):
        modules[f"cadence.{path.name.split('.')[0]}"] = None
    return modules


def _resolve(name: str, modules: dict[str, Path | None]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, modules: dict[str, Path | None]) -> set[str]:
    """The cadence modules ``path`` imports anywhere in its body: ``from a.b import c`` is
    a.b.c when that is a module, else a.b. (The implicit import of a module's parent
    packages is left out, as every import-cycle check does.)"""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(filter(None, (_resolve(alias.name, modules) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.update(filter(None, [_resolve(submodule, modules)]))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: _imports(path, modules) - {name} if path is not None else set()
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_function_local_imports():
    graph = import_graph()
    # serve.py imports the frontends inside run_server only.
    assert "cadence.entrypoints.grpc.server" in graph["cadence.entrypoints.serve"]
    assert "cadence.entrypoints.openai.api_server" in graph["cadence.entrypoints.serve"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


def test_layers_import_downward_only():
    graph = import_graph()
    for module in graph:
        reached = _reachable(graph, module)
        if module.startswith("cadence.serving"):
            assert not any(m.startswith("cadence.entrypoints.openai") for m in reached), module
            assert not any(m.startswith("cadence.entrypoints.grpc") for m in reached), module
        if module.startswith("cadence.entrypoints.grpc"):
            assert not any(m.startswith("cadence.entrypoints.openai") for m in reached), module
        if module.startswith("cadence.entrypoints.openai"):
            assert not any(m.startswith("cadence.entrypoints.grpc") for m in reached), module
        if module.startswith(("cadence.engine", "cadence.serving")):
            assert "cadence.entrypoints.serve" not in reached, module


def test_grpc_modules_import_without_the_http_stack():
    code = (
        "import sys, sitecustomize\n"
        "import cadence.entrypoints.grpc.server, cadence.entrypoints.serve, cadence.cli\n"
        "stack = sitecustomize.HTTP_STACK\n"
        "assert not any(m.split('.')[0] in stack for m in sys.modules)\n"
        "try:\n"
        "    import fastapi\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('the blocker let fastapi in')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(NO_HTTP_STACK), *sys.path])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
