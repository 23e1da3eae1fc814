"""Settings from the environment, checked in a fresh interpreter: production (the default, DEBUG off) refuses a
missing or development secret key in one line and passes `check --deploy`; bad values stop the start."""

from __future__ import annotations

import ast
import gzip
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock
from urllib.error import HTTPError
from urllib.request import urlopen

from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client, SimpleTestCase

from generator.core.codes import qr
from tests.conftest import free_port

BASE_DIR = Path(__file__).resolve().parents[2]


PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "a-real-production-secret-for-the-test-0123456789-abcdefghij",
              "ALLOWED_HOSTS": "qart.example"}


def import_settings(script: str = "import qartsite.settings", **env: str) -> subprocess.CompletedProcess[str]:
    """`import qartsite.settings` (or `script`) with `env` (DEBUG=1 unless `env` says otherwise, as `make run` and
    `make test`)."""
    environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    environ["DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


class ProductionSettingsTestCase(SimpleTestCase):
    def test_it_refuses_the_development_secret_key(self):
        result = import_settings(DEBUG="0", SECRET_KEY="dev-only-insecure-secret-key-change-me")

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImproperlyConfigured", result.stderr)
        self.assertIn("Set SECRET_KEY in the environment", result.stderr)

    def test_it_refuses_a_short_secret_key(self):
        result = import_settings(DEBUG="0", SECRET_KEY="short")

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("Set SECRET_KEY in the environment", result.stderr)

    def test_it_accepts_a_secret_key_from_the_environment(self):
        result = import_settings(**PRODUCTION)

        self.assertEqual(result.returncode, 0, result.stderr)

    def test_it_is_production_without_debug_and_says_so_in_one_line(self):
        environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
        result = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=environ,
                                capture_output=True, text=True, timeout=60)

        self.assertEqual(result.returncode, 1)
        self.assertTrue(result.stderr.startswith("qart: Set SECRET_KEY in the environment"), result.stderr)
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)  # no traceback

    def test_it_passes_the_deployment_checks_in_production(self):
        environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
        result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                                cwd=BASE_DIR, env={**environ, **PRODUCTION}, capture_output=True, text=True,
                                timeout=60)

        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("no issues", result.stdout)

    def test_it_fails_the_deployment_checks_with_debug_on(self):
        environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
        result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                                cwd=BASE_DIR, env={**environ, **PRODUCTION, "DEBUG": "1"}, capture_output=True,
                                text=True, timeout=60)

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("security.W018", result.stdout + result.stderr)  # DEBUG on in deployment

    def test_it_starts_with_the_development_key_when_debug_is_on(self):
        result = import_settings()

        self.assertEqual(result.returncode, 0, result.stderr)

    def test_it_refuses_a_site_root_that_is_not_a_scheme_and_host(self):
        for root in ("qart.example", "https://qart.example/app"):
            result = import_settings(SITE_ROOT=root)

            self.assertNotEqual(result.returncode, 0, root)
            self.assertIn("SITE_ROOT must be a scheme and host", result.stderr)

    def test_it_accepts_a_site_root_with_a_trailing_slash(self):
        result = subprocess.run(
            [sys.executable, "-c", "from qartsite import settings; print(settings.SITE_ROOT)"],
            cwd=BASE_DIR, env={**os.environ, "SITE_ROOT": "https://qart.example/"},
            capture_output=True, text=True, timeout=60,
        )

        self.assertEqual(result.stdout.strip(), "https://qart.example", result.stderr)

    def test_it_shares_the_rate_limit_cache_when_cache_url_is_set(self):
        script = "from qartsite import settings; print(settings.CACHES['default']['BACKEND'])"
        local = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True,
                               env={k: v for k, v in os.environ.items() if k != "CACHE_URL"}, timeout=60)
        shared = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True,
                                env={**os.environ, "CACHE_URL": "redis://127.0.0.1:6379/1"}, timeout=60)

        self.assertEqual(local.stdout.strip(), "django.core.cache.backends.locmem.LocMemCache", local.stderr)
        self.assertEqual(shared.stdout.strip(), "qartsite.redis_cache.RedisCache", shared.stderr)

    def test_it_refuses_a_cache_url_that_is_not_redis(self):
        result = import_settings(CACHE_URL="memcached://127.0.0.1:11211")

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("CACHE_URL must be a redis:// URL", result.stderr)

    def test_a_choice_set_but_empty_is_its_default_and_a_wrong_one_is_named(self):
        script = "from django.conf import settings; print(settings.QART['FEWSTEP_SCHEDULER'])"
        result = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True,
                                env={**os.environ, "DJANGO_SETTINGS_MODULE": "qartsite.settings", "DEBUG": "1",
                                     "QART_FEWSTEP_SCHEDULER": " "}, timeout=60)
        self.assertEqual(result.stdout.strip(), "lcm", result.stderr)
        result = import_settings(QART_FEWSTEP_SCHEDULER="ddim")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("QART_FEWSTEP_SCHEDULER must be one of lcm, tcd, got “ddim”", result.stderr)

    def test_short_links_are_not_sent_to_https_where_the_rest_of_the_site_is(self):
        # Behind a TLS proxy that QART_TRUST_PROXY was not set for, every plain request redirects to itself: printed
        # codes must keep working there (an upgrade from a version without the HTTPS redirect met exactly this).
        script = ("import re; from django.conf import settings as s; "
                  "print(s.SECURE_SSL_REDIRECT, [p for p in ('r/AbC12345', 'healthz', 'accounts/login/', 'api/') "
                  "if any(re.search(x, p) for x in s.SECURE_REDIRECT_EXEMPT)])")
        environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
        result = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True,
                                env={**environ, **PRODUCTION, "DJANGO_SETTINGS_MODULE": "qartsite.settings"},
                                timeout=60)
        self.assertEqual(result.stdout.strip(), "True ['r/AbC12345', 'healthz']", result.stderr)

    def test_it_refuses_a_redis_url_that_is_not_redis(self):
        # Before, the site started, /healthz said ok and every short link answered 500.
        for url in ("not-a-url", "http://127.0.0.1:6379/0"):
            result = import_settings(REDIS_URL=url)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("REDIS_URL must be a redis://", result.stderr)

    def test_it_gives_redis_connections_timeouts_unless_the_url_sets_them(self):
        script = ("from qartsite import settings; print(settings.RQ_QUEUES['gpu']['URL']); "
                  "print(settings.CACHES['default']['OPTIONS'])")
        result = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True,
                                env={**os.environ, "REDIS_URL": "redis://q.example:6379/2?socket_timeout=9",
                                     "CACHE_URL": "redis://q.example:6379/1"}, timeout=60)
        queue_url, cache_options = result.stdout.strip().splitlines()
        self.assertEqual(queue_url, "redis://q.example:6379/2?socket_timeout=9&socket_connect_timeout=2")
        unix = subprocess.run([sys.executable, "-c", "from qartsite import settings; "
                               "print(settings.RQ_QUEUES['gpu']['URL'])"], cwd=BASE_DIR, capture_output=True,
                              text=True, env={**os.environ, "REDIS_URL": "unix:///run/redis.sock?db=2"}, timeout=60)
        self.assertEqual(unix.stdout.strip(), "unix:///run/redis.sock?db=2&socket_connect_timeout=2&socket_timeout=3")
        from redis import Redis

        Redis.from_url(unix.stdout.strip())  # redis-py reads it (unix:/run/... it refused)
        self.assertEqual(cache_options, "{'socket_connect_timeout': 2, 'socket_timeout': 3}")

    def test_it_refuses_a_media_accel_prefix_that_is_not_a_path(self):
        result = import_settings(QART_MEDIA_ACCEL_PREFIX="protected-media")

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("QART_MEDIA_ACCEL_PREFIX", result.stderr)

    def test_it_refuses_an_unknown_device(self):
        result = import_settings(QART_DEVICES="cuda:0,gpu1")

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("QART_DEVICES: unknown device “gpu1”", result.stderr)


def setting_read(expression: str, **env: str) -> str:
    """What `expression` (of `settings`, the module) prints once qartsite.settings is loaded with `env`."""
    result = import_settings(f"from qartsite import settings; print({expression})", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def start_line(**env: str) -> str:
    """What `manage.py check` says on stderr with `env` (DEBUG=1 unless it says otherwise), asserting it stopped with
    one line: what a person starting a command, or gunicorn's log (`qartsite.web_process`), shows."""
    environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE_DIR, env={**environ, "DEBUG": "1", **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no traceback
    return result.stderr.strip()


DATABASE_URL_IS = ("DATABASE_URL must be a URL such as postgres://USER:PASSWORD@HOST:5432/NAME or "
                   "sqlite:////path/to/file, got")


class StartUpLineTestCase(SimpleTestCase):
    def test_it_quotes_a_bad_value_as_every_message_does(self):
        # repr wrote '8\n9', and Python's quotes, unlike every other message of the site.
        self.assertEqual(start_line(QART_CANDIDATES="8\n9"),
                         "qart: QART_CANDIDATES must be a whole number, got “8\\u000a9”")

    def test_it_never_shows_the_password_of_a_url_it_refuses(self):
        # A deployment's log (gunicorn's, a CI job's) is read by more people than the secrets are.
        for env, said in (
            ({"REDIS_URL": "http://:s3cret@redis.internal:6379/0"},
             "REDIS_URL must be a redis://, rediss:// or unix:// URL, got “http://:***@redis.internal:6379/0”"),
            ({"CACHE_URL": "edis://qart:s3cret@redis.internal:6379/1"},
             "CACHE_URL must be a redis:// URL or empty, got “edis://qart:***@redis.internal:6379/1”"),
            ({"SITE_ROOT": "https://qart:s3cret@qart.example/app"},
             "SITE_ROOT must be a scheme and host such as https://qart.example, got “https://qart:***@qart.example/app”"),
            # A scheme and host with a user part: taken before, and its password written into every printed code.
            ({"SITE_ROOT": "https://qart:s3cret@qart.example"},
             "SITE_ROOT must be a scheme and host such as https://qart.example, got “https://qart:***@qart.example”"),
            ({"MEDIA_STORAGE": "s3", "MEDIA_S3_BUCKET": "b", "MEDIA_S3_ENDPOINT_URL": "http://key:s3cret@minio/path"},
             "MEDIA_S3_ENDPOINT_URL must be a scheme and host such as http://10.0.0.5:9000 (keys in "
             "MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY), got “http://key:***@minio/path”"),
            # dj-database-url's own errors were a traceback.
            ({"DATABASE_URL": "postgress://qart:s3cret@db/qart"}, f"{DATABASE_URL_IS} “postgress://qart:***@db/qart”"),
            ({"DATABASE_URL": "postgres://qart:s3cret@db:port/qart"},
             f"{DATABASE_URL_IS} “postgres://qart:***@db:port/qart”"),
        ):
            with self.subTest(env=env):
                self.assertEqual(start_line(**env), f"qart: {said}")


class DefaultEccTestCase(SimpleTestCase):
    def test_it_takes_the_level_in_either_case(self):
        # "h" failed every code the site draws (the core's levels are capitals); the home page answered 500.
        self.assertEqual(setting_read("settings.QART['DEFAULT_ECC']", QART_DEFAULT_ECC="h"), "H")

    def test_it_offers_the_levels_the_core_draws_and_refuses_another(self):
        levels = ", ".join(qr.ECC_LEVELS)
        self.assertEqual(start_line(QART_DEFAULT_ECC="X"), f"qart: QART_DEFAULT_ECC must be one of {levels}, got “X”")


class LogLevelTestCase(SimpleTestCase):
    def test_it_refuses_an_unknown_level_in_one_line(self):
        # logging's own refusal was a traceback ("Unable to configure root logger").
        self.assertEqual(start_line(LOG_LEVEL="LOUD"), "qart: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, "
                                                       "CRITICAL, WARN, FATAL, NOTSET, got “LOUD”")

    def test_it_takes_every_name_logging_takes(self):
        # LOG_LEVEL=WARN (FATAL, NOTSET) started the site before the check: refused, such a site stopped at its start.
        script = ("import importlib, logging, os\nfrom qartsite import settings\n"
                  "for name in logging.getLevelNamesMapping():\n"
                  "    os.environ['LOG_LEVEL'] = name\n"
                  "    print(importlib.reload(settings).LOGGING['root']['level'])")
        result = subprocess.run([sys.executable, "-c", script], cwd=BASE_DIR, capture_output=True, text=True,
                                env=os.environ, timeout=60)
        self.assertEqual(result.stdout.split(), list(logging.getLevelNamesMapping()), result.stderr)

    def test_it_takes_a_level_in_either_case(self):
        self.assertEqual(setting_read("settings.LOGGING['root']['level']", LOG_LEVEL="warning"), "WARNING")


class EnvDevicesTestCase(SimpleTestCase):
    def test_it_parses_a_device_list(self):
        from qartsite.settings import envdevices

        with mock.patch.dict(os.environ, {"QART_TEST_DEVICES": " cuda:0, cuda:1 "}):
            self.assertEqual(envdevices("QART_TEST_DEVICES"), ["cuda:0", "cuda:1"])
        with mock.patch.dict(os.environ, {"QART_TEST_DEVICES": ""}):
            self.assertEqual(envdevices("QART_TEST_DEVICES"), [])

    def test_it_refuses_an_unknown_name(self):
        from qartsite.settings import envdevices

        for text in ["gpu", "cuda:x", "cuda0", "cuda:0;cuda:1"]:
            with self.subTest(text=text), mock.patch.dict(os.environ, {"QART_TEST_DEVICES": text}):
                with self.assertRaisesMessage(ImproperlyConfigured, "unknown device"):
                    envdevices("QART_TEST_DEVICES")


class WarmShapesTestCase(SimpleTestCase):
    """QART_WARM_SHAPES: the shapes a CUDA worker compiles at start (parsed by `generator.warm_engines.warm_shapes`)."""

    script = "from qartsite import settings; print(settings.QART['WARM_SHAPES'])"

    def warm_shapes(self, **env: str) -> str:
        environ = {k: v for k, v in os.environ.items() if k not in ("QART_WARM_SHAPES", "QART_CANDIDATES")}
        result = subprocess.run([sys.executable, "-c", self.script], cwd=BASE_DIR, capture_output=True, text=True,
                                env={**environ, "DEBUG": "1", **env}, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.strip()

    def test_it_warms_the_configured_candidates_at_768_unless_told(self):
        self.assertEqual(self.warm_shapes(), "768x8")
        self.assertEqual(self.warm_shapes(QART_CANDIDATES="4"), "768x4")
        self.assertEqual(self.warm_shapes(QART_WARM_SHAPES="768x8,512x8"), "768x8,512x8")


class DatabaseTimeoutTestCase(SimpleTestCase):
    script = "from qartsite import settings; print(settings.DATABASES['default'].get('OPTIONS', {}))"

    def database_options(self, url: str) -> str:
        result = subprocess.run([sys.executable, "-c", self.script], cwd=BASE_DIR, capture_output=True, text=True,
                                env={**os.environ, "DATABASE_URL": url}, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.strip()

    def test_it_gives_up_connecting_to_postgresql_after_two_seconds(self):
        self.assertIn("'connect_timeout': 2", self.database_options("postgres://qart@127.0.0.1:5432/qart"))
        self.assertIn("'connect_timeout': 5", self.database_options("postgres://qart@127.0.0.1:5432/qart"
                                                                    "?connect_timeout=5"))

    def test_it_sets_no_connect_timeout_on_sqlite(self):
        self.assertNotIn("connect_timeout", self.database_options("sqlite:////tmp/qart-settings-test.sqlite3"))


class EnvDaysTestCase(SimpleTestCase):
    """QART_TOKEN_TTL_DAYS: after how many days a new API token expires; empty, never."""

    def test_it_reads_whole_days_and_empty_as_none(self):
        from datetime import timedelta

        from qartsite.settings import envdays

        for text, days in (("30", timedelta(days=30)), (" 1 ", timedelta(days=1)), ("", None), ("  ", None)):
            with self.subTest(text=text), mock.patch.dict(os.environ, {"QART_TEST_DAYS": text}):
                self.assertEqual(envdays("QART_TEST_DAYS"), days)
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertIsNone(envdays("QART_TEST_DAYS"))

    def test_it_refuses_what_is_not_a_positive_number_of_days(self):
        from qartsite.settings import envdays

        for text, message in (("0", "number of days (1 or more)"), ("-3", "number of days (1 or more)"),
                              ("a week", "must be a whole number")):
            with self.subTest(text=text), mock.patch.dict(os.environ, {"QART_TEST_DAYS": text}):
                with self.assertRaisesMessage(ImproperlyConfigured, message):
                    envdays("QART_TEST_DAYS")


class SignInSettingsTestCase(SimpleTestCase):
    script = ("from qartsite import settings; "
              "print(settings.AXES_FAILURE_LIMIT, settings.REST_KNOX['TOKEN_TTL'], settings.AXES_COOLOFF_TIME)")

    def sign_in_settings(self, **env: str) -> str:
        environ = {k: v for k, v in os.environ.items() if k not in ("AXES_FAILURE_LIMIT", "QART_TOKEN_TTL_DAYS")}
        result = subprocess.run([sys.executable, "-c", self.script], cwd=BASE_DIR, capture_output=True, text=True,
                                env={**environ, **env}, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.strip()

    def test_it_locks_out_after_five_failures_and_keeps_tokens_by_default(self):
        self.assertEqual(self.sign_in_settings(), "5 None 0:15:00")

    def test_it_reads_the_lockout_limit_and_token_lifetime_from_the_environment(self):
        self.assertEqual(self.sign_in_settings(AXES_FAILURE_LIMIT="3", QART_TOKEN_TTL_DAYS="90"),
                         "3 90 days, 0:00:00 0:15:00")


class MediaStorageSettingsTestCase(SimpleTestCase):
    """MEDIA_STORAGE: the filesystem by default, or an S3-compatible bucket configured by MEDIA_S3_*."""

    script = ("from qartsite import settings; import json; print(json.dumps({name: settings.STORAGES[name] "
              "for name in ('default', 's3')}))")

    def storages(self, **env: str) -> dict:
        import json

        environ = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_S")}
        result = subprocess.run([sys.executable, "-c", self.script], cwd=BASE_DIR, capture_output=True, text=True,
                                env={**environ, "DEBUG": "1", **env}, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def test_it_keeps_media_on_the_filesystem_by_default(self):
        self.assertEqual(self.storages()["default"], {"BACKEND": "qartsite.storage.FileSystemMediaStorage"})

    def test_it_reads_the_bucket_from_the_environment(self):
        storages = self.storages(
            MEDIA_STORAGE="s3", MEDIA_S3_BUCKET="qart-media", MEDIA_S3_ENDPOINT_URL="http://10.0.0.5:9000",
            MEDIA_S3_REGION="eu-west-1", MEDIA_S3_ACCESS_KEY_ID="AKIAEXAMPLE", MEDIA_S3_SECRET_ACCESS_KEY="s3cret",
            MEDIA_S3_ADDRESSING_STYLE="Path", MEDIA_S3_PREFIX="/prod/",
        )

        self.assertEqual(storages["default"], storages["s3"])
        self.assertEqual(storages["default"], {"BACKEND": "qartsite.storage.S3MediaStorage", "OPTIONS": {
            "bucket_name": "qart-media", "endpoint_url": "http://10.0.0.5:9000", "region_name": "eu-west-1",
            "access_key": "AKIAEXAMPLE", "secret_key": "s3cret", "addressing_style": "path", "location": "prod",
        }})

    def test_it_leaves_empty_keys_to_boto3_and_aws_its_endpoint(self):
        options = self.storages(MEDIA_STORAGE="s3", MEDIA_S3_BUCKET="qart-media")["default"]["OPTIONS"]

        self.assertEqual([options[name] for name in ("endpoint_url", "access_key", "secret_key", "region_name")],
                         [None, None, None, None])

    def test_it_refuses_what_it_cannot_use(self):
        for env, message in (
            ({"MEDIA_STORAGE": "ftp"}, "MEDIA_STORAGE must be filesystem or s3, got “ftp”"),
            ({"MEDIA_STORAGE": "s3"}, "MEDIA_STORAGE=s3 needs MEDIA_S3_BUCKET"),
            ({"MEDIA_STORAGE": "s3", "MEDIA_S3_BUCKET": "b", "MEDIA_S3_ENDPOINT_URL": "minio:9000"},
             "MEDIA_S3_ENDPOINT_URL must be a scheme and host"),
            # Keys in the URL: boto never signs with them, and its messages quote the endpoint.
            ({"MEDIA_STORAGE": "s3", "MEDIA_S3_BUCKET": "b", "MEDIA_S3_ENDPOINT_URL": "http://key:s3cret@minio:9000"},
             "MEDIA_S3_ENDPOINT_URL must be a scheme and host"),
            ({"MEDIA_STORAGE": "s3", "MEDIA_S3_BUCKET": "b", "MEDIA_S3_ADDRESSING_STYLE": "dns"},
             "MEDIA_S3_ADDRESSING_STYLE must be path, virtual or auto"),
            ({"MEDIA_STORAGE": "s3", "MEDIA_S3_BUCKET": "b", "QART_MEDIA_ACCEL_PREFIX": "/protected-media/"},
             "with MEDIA_STORAGE=s3 there are none there"),
        ):
            with self.subTest(env=env):
                result = import_settings(**env)
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(message, result.stderr)
                self.assertEqual(result.stderr.count("ImproperlyConfigured:"), 1)


class LoggingTestCase(SimpleTestCase):
    def test_it_prints_djangos_lines_once_under_debug(self):
        # Django's default config gave its logger a console handler of its own that also passed records on to the
        # root's: every "Not Found: ..." printed twice in `make run`'s terminal.
        probe = ("import django, logging, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'qartsite.settings'); "
                 "django.setup(); logging.getLogger('django.request').warning('probe-line')")
        environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE")}
        result = subprocess.run([sys.executable, "-c", probe], cwd=BASE_DIR, env={**environ, "DEBUG": "1"},
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr.count("probe-line"), 1)


class EnvExampleTestCase(SimpleTestCase):
    """`.env.example` is where a deployer looks for what can be set: every variable the settings read is there."""

    READERS = {"envbool", "envint", "envfloat", "envchoice", "envdevices", "envdays", "envlist", "getenv"}

    def variables_read(self) -> set[str]:
        tree = ast.parse((BASE_DIR / "qartsite" / "settings.py").read_text())
        names = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
                continue
            function = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if function in self.READERS:
                names.add(node.args[0].value)
        return names

    def test_it_lists_every_variable_the_settings_read(self):
        listed = set(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", (BASE_DIR / ".env.example").read_text(), re.MULTILINE))
        read = self.variables_read()

        self.assertGreater(len(read), 50)  # the walk found the settings' reads at all
        self.assertEqual(sorted(read - listed), [])


def test_static_files_are_sent_gzipped_to_browsers_that_take_it(settings, tmp_path):
    # Django's plain StaticFilesStorage wrote no compressed copies, so WhiteNoise sent every script and style sheet
    # uncompressed (chart.js: 208 kB, 70 kB gzipped).
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", interactive=False, verbosity=0)
    url = "/static/vendor/chart.js/chart.umd.min.js"
    plain = Client().get(url)
    zipped = Client().get(url, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert zipped.status_code == 200 and zipped["Content-Encoding"] == "gzip"
    assert int(zipped["Content-Length"]) < int(plain["Content-Length"]) / 2
    assert "Accept-Encoding" in zipped["Vary"] and not plain.has_header("Content-Encoding")
    assert gzip.decompress(b"".join(zipped.streaming_content)) == b"".join(plain.streaming_content)


def test_runserver_leaves_static_files_to_whitenoise(tmp_path):
    # `make run` serves with runserver, whose own static handler (django.contrib.staticfiles) answered a path climbing
    # out of /static/ with a 500 and the traceback; WhiteNoise, as in production, answers 404.
    port = free_port()
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                              cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "runserver did not start"
                time.sleep(0.2)
        statuses = {}
        for path in ("/static/qart/site.css", "/static/..%2F..%2Fmanage.py", "/static/%2e%2e/%2e%2e/manage.py"):
            try:
                statuses[path] = urlopen(f"http://127.0.0.1:{port}{path}", timeout=30).status
            except HTTPError as error:
                statuses[path] = error.code
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert statuses == {"/static/qart/site.css": 200, "/static/..%2F..%2Fmanage.py": 404,
                        "/static/%2e%2e/%2e%2e/manage.py": 404}, output[-2000:]
    assert "Traceback" not in output
