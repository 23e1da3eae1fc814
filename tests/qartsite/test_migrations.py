"""A database made before the layout refactor (commit 4502e94) migrates to today's code with no row lost.

The snapshot was filled by `data/make_snapshot.py` at that commit. Modules moved since, but models, app labels and
migrations must not have: a moved model or a renamed label would make `migrate` create empty tables beside the full
ones, or fail. Migrations run in a fresh interpreter against a copy, as `manage.py migrate` would on a server.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from django.apps import apps
from django.test import SimpleTestCase

BASE_DIR = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).resolve().parent / "data" / "main-2026-12-01.sqlite3"
PROJECT_APPS = ("qartsite", "campaigns", "generator")

# Loads one row of every project model through the ORM and prints "loaded <label>" once it has (the shell prints
# other lines too, such as what it imported).
LOAD_EVERY_MODEL = """
from django.apps import apps
for label in {labels!r}:
    for model in apps.get_app_config(label).get_models():
        assert model._default_manager.first() is not None, model._meta.label
        print("loaded", model._meta.label)
"""


def row_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
                for table in tables if not table.startswith("sqlite_")}


def project_tables() -> set[str]:
    """Tables of the project's models, many-to-many tables included."""
    return {model._meta.db_table for label in PROJECT_APPS
            for model in apps.get_app_config(label).get_models(include_auto_created=True)}


class SnapshotMigrationTestCase(SimpleTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        folder = tempfile.TemporaryDirectory()
        cls.addClassCleanup(folder.cleanup)
        cls.database = Path(folder.name) / "qart.sqlite3"
        shutil.copyfile(SNAPSHOT, cls.database)
        cls.before = row_counts(cls.database)
        cls.migrate = cls.manage("migrate", "--no-input")
        cls.after = row_counts(cls.database)

    @classmethod
    def manage(cls, *args: str) -> subprocess.CompletedProcess[str]:
        # The suite may point DATABASE_URL at its own database; the copy must win.
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{cls.database}", "DEBUG": "1"}
        return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env,
                              capture_output=True, text=True, timeout=120)

    def test_it_has_rows_in_every_project_table_of_the_snapshot(self):
        empty = {table for table in project_tables() if self.before.get(table, 0) == 0}

        self.assertEqual(empty, set(), "the snapshot must fill every project table, or the test proves nothing")

    def test_it_migrates_the_snapshot(self):
        self.assertEqual(self.migrate.returncode, 0, self.migrate.stdout + self.migrate.stderr)

    def test_it_keeps_every_row_of_every_table(self):
        compared = {table: count for table, count in self.before.items() if table != "django_migrations"}

        self.assertEqual({table: self.after.get(table) for table in compared}, compared)
        self.assertGreaterEqual(self.after["django_migrations"], self.before["django_migrations"])

    def test_it_keeps_every_project_table(self):
        self.assertLessEqual(project_tables(), set(self.after))

    def test_it_passes_the_system_checks_on_the_migrated_copy(self):
        result = self.manage("check")

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_it_loads_a_row_of_every_project_model_through_the_orm(self):
        result = self.manage("shell", "-c", LOAD_EVERY_MODEL.format(labels=PROJECT_APPS))

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        expected = {model._meta.label for label in PROJECT_APPS for model in apps.get_app_config(label).get_models()}
        loaded = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("loaded ")}
        self.assertEqual(loaded, expected)
