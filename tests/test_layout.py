"""A test module is for tests: none imports from another (or from itself), at the top or inside a function. A helper
two test modules share has one home in a helper module next to them (tests/generator/factories.py,
tests/clients.py, ...); importing it from a test module drags that module's fixtures, autouse ones included, and
its name (`make_job`) into the caller, where three different `make_job`s once met."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def is_test_module(dotted: str) -> bool:
    return dotted.rpartition(".")[2].startswith("test_")


def imports_of_test_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, test module) for each import of a test module in `source`, a module of `package` (for relative
    imports): `import tests.a.test_b`, `from tests.a.test_b import c`, `from tests.a import test_b`, `from .test_b
    import c`, `from . import test_b`. A `test_` name imported from a helper module counts too: the importer would
    collect that test a second time."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names
                      if any(is_test_module(part) for part in alias.name.split("."))]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if any(is_test_module(part) for part in module.split(".")):
                found.append((node.lineno, module))
            else:
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names if is_test_module(alias.name)]
    return found


def test_no_module_under_tests_imports_a_test_module():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        package = ".".join(path.relative_to(TESTS.parent).parent.parts)
        offenders += [f"{path.relative_to(TESTS.parent)}:{line}: imports {module}"
                      for line, module in imports_of_test_modules(path.read_text(), package)]
    assert offenders == []


def test_the_check_finds_every_way_of_importing_a_test_module():
    source = """
import tests.generator.test_views
import tests.generator.factories
from tests.generator.test_api import make_job
from tests.generator import test_views, factories
from tests.generator.factories import job_with_ranks
from .test_api import api_as
from . import test_admin, admin_pages
from ..campaigns.rollup_data import event


def inside():
    from tests.campaigns.test_rollups import event
"""
    assert imports_of_test_modules(source, "tests.qartsite") == [
        (2, "tests.generator.test_views"),
        (4, "tests.generator.test_api"),
        (5, "tests.generator.test_views"),
        (7, "tests.qartsite.test_api"),
        (8, "tests.qartsite.test_admin"),
        (13, "tests.campaigns.test_rollups"),
    ]
