"""No import cycles anywhere in the project (function-level imports included), and settings free of application
imports beyond modules that import only the standard library: a reader can follow any import downward and stop."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("generator", "campaigns", "qartsite")


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (at any level: module, class or function)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    targets.add(submodule if submodule in modules else node.module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_there_is_no_import_cycle():
    graph = import_graph(project_modules())
    assert len(graph) > 50
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def imported_names(path: Path) -> list[str]:
    """What `path` imports by absolute name, at any level: each module, and each name taken from one (which may be a
    module too: `from generator.core.codes import qr`)."""
    imported = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return imported


def test_settings_import_only_application_modules_that_import_the_standard_library_alone():
    # Settings load while Django sets up, before any application: one that imported a module touching a model stopped
    # with AppRegistryNotReady; a module reading the settings would read them half made. A module that imports only the
    # standard library, in packages that import nothing else either, is safe, and a reader stops at it (echoes: how
    # every message quotes a value, start-up lines included).
    modules = project_modules()
    ours = [name for name in imported_names(ROOT / "qartsite" / "settings.py") if name in modules]
    assert ours  # the walk found the settings' one (an assertion on nothing otherwise)
    for name in ours:
        parts = name.split(".")
        for module in (".".join(parts[:depth]) for depth in range(1, len(parts) + 1)):  # its packages load first
            beyond = [imported for imported in imported_names(modules[module])
                      if imported.split(".")[0] not in sys.stdlib_module_names]
            assert not beyond, f"settings import {name}, and {module} imports {', '.join(beyond)}"
