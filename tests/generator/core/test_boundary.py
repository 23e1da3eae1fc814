"""The ML/QR core is framework-free and layered (house style rule 2): walked, not listed, so a new module is checked
the day it is added."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CORE = ROOT / "generator" / "core"
LAYERS = ("codes", "engines", "evals")  # each may import only itself and the layers before it


def core_modules() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def imported_names(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read the environment: os.environ, os.getenv, os.environ.get and friends."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb", "putenv"):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(
            alias.name in ("environ", "getenv", "environb") for alias in node.names
        ):
            lines.append(node.lineno)
    return lines


def test_the_walk_finds_every_layer():
    found = {path.relative_to(CORE).parts[0] for path in core_modules() if len(path.relative_to(CORE).parts) > 1}
    assert found == set(LAYERS)
    assert len(core_modules()) > 20


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_a_core_module_imports_no_django_and_reads_no_environment(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    names = imported_names(tree)
    framework = [n for n in names if n.split(".")[0] in ("django", "rest_framework", "django_rq", "rq")]
    web = [n for n in names if n.split(".")[0] in ("campaigns", "qartsite")]
    outside = [n for n in names if n.startswith("generator.") and not n.startswith("generator.core")]
    assert not framework, f"{path.name} imports {framework}"
    assert not web and not outside, f"{path.name} imports the Django layer: {web + outside}"
    assert not environment_reads(tree), f"{path.name} reads the environment on lines {environment_reads(tree)}"


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_a_core_layer_imports_only_downward(path):
    parts = path.relative_to(CORE).parts
    if len(parts) == 1:
        return  # generator/core/__init__.py
    allowed = LAYERS[: LAYERS.index(parts[0]) + 1]
    for name in imported_names(ast.parse(path.read_text())):
        if name.startswith("generator.core."):
            layer = name.split(".")[2]
            assert layer in allowed, f"{module_name(path)} imports {name}: {parts[0]} may import only {allowed}"


def test_the_boundary_check_catches_a_django_import_and_an_environment_read():
    tree = ast.parse("import os\nfrom django.conf import settings\nx = os.environ.get('A')\ny = os.getenv('B')\n")
    assert "django.conf" in imported_names(tree)
    assert sorted(environment_reads(tree)) == [3, 4]


def test_core_imports_and_runs_without_django():
    modules = [module_name(path) for path in core_modules()]
    script = (
        "import importlib, sys\n"
        "sys.modules['django'] = None  # any 'import django' now fails\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "from generator.core.codes import grids, qr, scan\n"
        "from generator.core.evals import alignment\n"
        "code = qr.encode('no django here')\n"
        "result = scan.verify(qr.render_control_image(code, 400), code.content, captures_count=1)\n"
        "assert result.verdict == 'pass', result\n"
        "grid = grids.grid_from_control(qr.render_control_image(code, 300))\n"
        "assert (grid.matrix == code.matrix).all()\n"
        "assert alignment.align([0.9, 0.1], [True, False]).accuracy == 1.0\n"
        "print('ok')\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
