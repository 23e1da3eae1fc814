"""DEVELOPERS.md's "Map of the tree" is where a behaviour lives "in one hop": each row is a folder of code and names
its modules. A module the map leaves out (`redis_cache.py`, `tiny.py`, the routes' `urls.py`) costs a newcomer a
search of the tree, and a name the map keeps after its module moved sends them to a file that is not there; both
happened. These tests hold the map to the tree: every module of a mapped folder is named in that folder's row as
`<name>.py` (template tags as `templatetags/<name>.py`, in their app's row), every `<name>.py` a row names exists,
and every folder of application code has a row."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("qartsite", "campaigns", "generator")
# Django's own boilerplate, the same in every app: naming it would say nothing.
UNNAMED = {"__init__.py", "apps.py"}
# Folders whose modules Django finds by convention and README.md lists by name (the commands), or that hold no
# behaviour of their own (migrations, the date formats, the evaluation set's text files).
NOT_MAPPED = {"migrations", "management", "commands", "formats", "data", "__pycache__"}
ROW = re.compile(r"^\| `([^`]+)`[^|]*\| (.*) \|$")
NAMED_MODULE = re.compile(r"`([\w/]+\.py)`")


def map_rows(text: str) -> dict[str, str]:
    """The map's rows: folder (as written, with its trailing slash) -> the row's description."""
    section = text.split("## Map of the tree", 1)[1].split("\n## ", 1)[0]
    return {match[1]: match[2] for match in map(ROW.match, section.splitlines()) if match}


def code_folders() -> list[Path]:
    """The folders of application code under the apps, template tags aside (they belong to their app's row)."""
    folders = []
    for app in APPS:
        for folder in [ROOT / app, *sorted((ROOT / app).rglob("*"))]:
            parts = set(folder.relative_to(ROOT).parts)
            if folder.is_dir() and not parts & NOT_MAPPED and folder.name != "templatetags":
                folders.append(folder)
    return folders


def modules_of(folder: Path) -> list[str]:
    """The module names a row must carry for `folder`: its own modules and its template tags."""
    names = [path.name for path in sorted(folder.glob("*.py")) if path.name not in UNNAMED]
    names += [f"templatetags/{path.name}" for path in sorted((folder / "templatetags").glob("*.py"))
              if path.name not in UNNAMED]
    return names


def missing_and_stale(text: str) -> tuple[list[str], list[str]]:
    """(modules no row names, `<name>.py` that a row names but that does not exist), as repository paths."""
    rows = map_rows(text)
    missing, stale = [], []
    for folder in code_folders():
        key = folder.relative_to(ROOT).as_posix() + "/"
        modules = modules_of(folder)
        if key not in rows:
            if modules:
                missing.append(f"{key} (no row)")
            continue
        named = set(NAMED_MODULE.findall(rows[key]))
        missing += [key + name for name in modules if name not in named]
        # A name with a folder in it may be the repository's path (`qartsite/urls.py`, a test module).
        stale += [key + name for name in sorted(named)
                  if not (folder / name).is_file() and not (ROOT / name).is_file()]
    return missing, stale


def test_the_map_names_every_module_where_a_newcomer_looks():
    missing, _ = missing_and_stale((ROOT / "DEVELOPERS.md").read_text())
    assert missing == []


def test_every_module_the_map_names_exists():
    _, stale = missing_and_stale((ROOT / "DEVELOPERS.md").read_text())
    assert stale == []


def test_the_check_finds_a_module_left_out_a_stale_name_and_a_folder_without_a_row():
    # The real map's rows, each with one change: generator/core/engines/ forgets tiny.py, campaigns/ names a module
    # that moved away, and generator/evals/ loses its row.
    text = (ROOT / "DEVELOPERS.md").read_text()
    rows = map_rows(text)
    assert "`tiny.py`" in rows["generator/core/engines/"] and "generator/evals/" in rows
    text = text.replace("(`tiny.py`)", "")
    text = text.replace("(`names.py`:", "(`names.py`, `gone.py`:")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("| `generator/evals/` |"))
    missing, stale = missing_and_stale(text)
    assert missing == ["generator/core/engines/tiny.py", "generator/evals/ (no row)"]
    assert stale == ["campaigns/gone.py"]
