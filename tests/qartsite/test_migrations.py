"""A database made before the layout refactor (commit 4502e94) migrates to today's code with no row lost.

The snapshot was filled by `data/make_snapshot.py` at that commit. Modules moved since, but models, app labels and
migrations must not have: a moved model or a renamed label would make `migrate` create empty tables beside the full
ones, or fail. Migrations run in a fresh interpreter against a copy, as `manage.py migrate` would on a server.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import SimpleTestCase, TestCase
from knox.models import AuthToken
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from qartsite.models import TokenLabel

BASE_DIR = Path(__file__).resolve().parents[2]
SNAPSHOT = Path(__file__).resolve().parent / "data" / "main-2026-12-01.sqlite3"
PROJECT_APPS = ("qartsite", "campaigns", "generator")
# Tables of models added since the snapshot, which it cannot fill: their migrations must (the ORM test below loads a
# row of every project model). qartsite 0002 carries each DRF token over into knox's table (qartsite.APIToken is a
# proxy of knox's model) and names it; generator 0009 records the verifier's shipped decision model (not active);
# campaigns 0005 counts the stored scans into the daily rollups, 0016 adds them up per campaign, 0022 per team.
ADDED_SINCE_SNAPSHOT = {"knox_authtoken", "qartsite_tokenlabel", "generator_verifiermodel",
                        "generator_verifieractivation", "campaigns_scanrollup", "campaigns_campaignrollup",
                        "campaigns_teamrollup",
                        *("campaigns_" + name for name in (
                            "webhookendpoint", "webhookdelivery", "webhookoutbox", "placementalert", "reportshare",
                            "destinationchange"))}
# Tables added since the snapshot that no migration fills: nothing of theirs to load afterwards.
EMPTY_AFTER_MIGRATION = {"campaigns_webhookendpoint", "campaigns_webhookdelivery", "campaigns_webhookoutbox",
                         "campaigns_placementalert", "campaigns_reportshare", "campaigns_destinationchange",
                         "generator_verifieractivation"}
# Rows that a migration moves on purpose: DRF's plain-text tokens become knox's hashed ones (qartsite 0002).
MOVED = {"authtoken_token": "knox_authtoken"}
# Django's registries of models, which grow with every model added since (by the project or by a new package).
GROW_WITH_MODELS = ("django_content_type", "auth_permission")

# Asks knox, as the API does, whose token each argument is; prints "token <username>" per token.
AUTHENTICATE = """
from qartsite.authentication import TokenAuthentication
for key in {keys!r}:
    user, _ = TokenAuthentication().authenticate_credentials(key.encode())
    print("token", user.get_username())
"""

# Loads one row of every project model through the ORM and prints "loaded <label>" once it has (the shell prints
# other lines too, such as what it imported).
LOAD_EVERY_MODEL = """
from django.apps import apps
for label in {labels!r}:
    for model in apps.get_app_config(label).get_models():
        if model._meta.db_table in {empty!r}:
            continue
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
        with sqlite3.connect(cls.database) as db:
            cls.drf_tokens = db.execute("SELECT key, auth_user.username FROM authtoken_token "
                                        "JOIN auth_user ON auth_user.id = authtoken_token.user_id").fetchall()
        cls.migrate = cls.manage("migrate", "--no-input")
        cls.after = row_counts(cls.database)

    @classmethod
    def manage(cls, *args: str) -> subprocess.CompletedProcess[str]:
        # The suite may point DATABASE_URL at its own database; the copy must win.
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{cls.database}", "DEBUG": "1"}
        return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env,
                              capture_output=True, text=True, timeout=120)

    def test_it_has_rows_in_every_project_table_of_the_snapshot(self):
        empty = {table for table in project_tables() - ADDED_SINCE_SNAPSHOT if self.before.get(table, 0) == 0}

        self.assertEqual(empty, set(), "the snapshot must fill every project table, or the test proves nothing")

    def test_it_migrates_the_snapshot(self):
        self.assertEqual(self.migrate.returncode, 0, self.migrate.stdout + self.migrate.stderr)

    def test_it_keeps_every_row_of_every_table(self):
        compared = {table: count for table, count in self.before.items()
                    if table not in ("django_migrations", *GROW_WITH_MODELS) and table not in MOVED}

        self.assertEqual({table: self.after.get(table) for table in compared}, compared)
        for table in ("django_migrations", *GROW_WITH_MODELS):
            self.assertGreaterEqual(self.after[table], self.before[table], table)

    def test_it_moves_drf_tokens_to_knox_as_hashes(self):
        self.assertTrue(self.drf_tokens, "the snapshot must hold a DRF token, or the test proves nothing")
        self.assertEqual(self.after["authtoken_token"], 0)
        self.assertEqual(self.after["knox_authtoken"], self.before.get("knox_authtoken", 0) + len(self.drf_tokens))
        with sqlite3.connect(self.database) as db:
            stored = " ".join(str(value) for row in db.execute("SELECT * FROM knox_authtoken") for value in row)
        for key, _ in self.drf_tokens:
            self.assertIn(key[:15], stored)  # the prefix knox looks tokens up by
            self.assertNotIn(key, stored)

    def test_it_keeps_the_tokens_drf_made_working(self):
        result = self.manage("shell", "-c", AUTHENTICATE.format(keys=[key for key, _ in self.drf_tokens]))

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        owners = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("token ")]
        self.assertEqual(owners, [username for _, username in self.drf_tokens])

    def test_it_keeps_every_project_table(self):
        self.assertLessEqual(project_tables(), set(self.after))

    def test_it_passes_the_system_checks_on_the_migrated_copy(self):
        result = self.manage("check")

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_it_loads_a_row_of_every_project_model_through_the_orm(self):
        result = self.manage("shell", "-c", LOAD_EVERY_MODEL.format(labels=PROJECT_APPS, empty=EMPTY_AFTER_MIGRATION))

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        expected = {model._meta.label for label in PROJECT_APPS for model in apps.get_app_config(label).get_models()
                    if model._meta.db_table not in EMPTY_AFTER_MIGRATION}
        loaded = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("loaded ")}
        self.assertEqual(loaded, expected)


class HashDrfTokensTestCase(TestCase):
    """qartsite 0002's data step on a token that DRF makes (its app stays installed for that migration)."""

    migration = importlib.import_module("qartsite.migrations.0002_api_tokens_hashed")

    def test_it_turns_a_drf_token_into_a_knox_token_that_still_authenticates(self):
        user = get_user_model().objects.create_user("owner", password="pw-owner-1")
        drf_token = Token.objects.create(user=user)

        self.migration.hash_drf_tokens(apps, SimpleNamespace(connection=connection))

        self.assertFalse(Token.objects.exists())
        knox_token = AuthToken.objects.get(user=user)
        self.assertEqual(knox_token.token_key, drf_token.key[:15])
        self.assertNotIn(drf_token.key, knox_token.digest)
        self.assertEqual((knox_token.created, knox_token.expiry), (drf_token.created, None))
        self.assertEqual(TokenLabel.name_of(knox_token), self.migration.CARRIED_OVER)
        response = APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION=f"Token {drf_token.key}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION=f"Token {drf_token.key[:-1]}x")
                         .status_code, 401)
