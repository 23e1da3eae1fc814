"""The WSGI entry point (`qartsite.wsgi`), as gunicorn loads it: a bad setting stops the server with one line, and
the views are imported before the first request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def gunicorn(**env: str) -> subprocess.CompletedProcess[str]:
    """gunicorn serving `qartsite.wsgi` with one worker, and `env`, until it stops (as a bad setting makes it)."""
    return subprocess.run([sys.executable, "-m", "gunicorn", "qartsite.wsgi", "-b", f"127.0.0.1:{free_port()}",
                           "-w", "1"], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


def test_a_bad_setting_stops_gunicorn_with_one_line():
    # Exit status 1 made gunicorn start new workers forever (hundreds of lines a minute) while the port accepted
    # connections nothing answered; 3 is its "worker failed to boot": the master stops. One worker: with two, both
    # failing at once can make the master's own shutdown raise twice (then status 1, still stopped).
    result = gunicorn(DEBUG="0", SECRET_KEY="")
    assert result.returncode == 3, result.stderr[-2000:]
    assert result.stderr.count("qart: Set SECRET_KEY") == 1 and "Reason: Worker failed to boot." in result.stderr
    assert "Traceback" not in result.stderr


def test_a_database_url_it_cannot_read_stops_gunicorn_with_one_line_and_no_password():
    # dj-database-url's error was a traceback in the server's log, read by more people than the password is.
    result = gunicorn(DEBUG="1", DATABASE_URL="postgres://qart:s3cret@db:port/qart")
    assert result.returncode == 3, result.stderr[-2000:]
    assert result.stderr.count("qart: DATABASE_URL must be a URL such as ") == 1, result.stderr[-2000:]
    assert "got “postgres://qart:***@db:port/qart”" in result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr


def test_the_views_are_imported_when_the_application_loads():
    script = "import sys, qartsite.wsgi; print('campaigns.views' in sys.modules, 'generator.api' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "DEBUG": "1"})
    assert result.stdout.split() == ["True", "True"], result.stderr[-2000:]


def test_the_country_database_starts_loading_when_the_application_loads():
    script = "import qartsite.wsgi; from campaigns import geo; print(geo.countries._started)"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "DEBUG": "1"})
    assert result.stdout.split() == ["True"], result.stderr[-2000:]
