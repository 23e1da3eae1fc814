"""The ASGI entry point (`qartsite.asgi`), as uvicorn or daphne loads it: as the WSGI one does (qartsite.web_process),
a bad setting stops the server with one line, the views are imported before the first request and the country
database starts loading."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_asgi(script: str, **env: str) -> subprocess.CompletedProcess:
    """Run `script` after importing qartsite.asgi in a fresh interpreter (pytest has the application loaded)."""
    return subprocess.run([sys.executable, "-c", f"import qartsite.asgi; {script}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_a_bad_setting_stops_the_server_with_one_line():
    # It stopped with Django's traceback, ending in the one line that said what to set.
    result = load_asgi("", DEBUG="0", SECRET_KEY="")
    assert result.returncode == 3, result.stderr[-2000:]
    assert result.stderr.count("qart: Set SECRET_KEY") == 1 and "Traceback" not in result.stderr


def test_the_views_are_imported_when_the_application_loads():
    result = load_asgi("import sys; print('campaigns.views' in sys.modules, 'generator.api' in sys.modules)",
                       DEBUG="1")
    assert result.stdout.split() == ["True", "True"], result.stderr[-2000:]


def test_the_country_database_starts_loading_when_the_application_loads():
    # The first scans of an ASGI process were counted without a country while the database loaded.
    result = load_asgi("from campaigns import geo; print(geo.countries._started)", DEBUG="1")
    assert result.stdout.split() == ["True"], result.stderr[-2000:]


def test_the_application_refuses_a_body_over_the_cap_without_reading_it_all():
    # Django's ASGI handler reads a whole body to a temporary file before any middleware: 20 MB sent in chunks was
    # read to its end to be answered 411, 20 MB declared was read to be answered 413.
    script = """
import json
from tests.qartsite.server_calls import asgi_call
parts = lambda: (b"x" * 65536 for _ in range(320))  # 20 MB
headers = {"Host": "testserver", "Content-Type": "application/json"}
for name, extra in (("chunked", {"Transfer-Encoding": "chunked"}), ("declared", {"Content-Length": str(320 * 65536)})):
    answer = asgi_call(qartsite.asgi.application, "POST", "/api/generations/", parts(), {**headers, **extra})
    print(name, answer.status, answer.read, json.loads(answer.body)["detail"].split(";")[0].split(" (")[0])
"""
    result = load_asgi(script, DEBUG="1", QART_MAX_UPLOAD_BYTES="1000")
    chunked, declared = result.stdout.splitlines()[-2:] or ["", ""]
    # One part read past the cap and its room for other fields (64 KB): 128 KB, of the 20 MB.
    assert chunked == "chunked 413 131072 What you sent is over 1 KB", result.stderr[-2000:]
    assert declared == "declared 413 0 What you sent is 20 MB", result.stderr[-2000:]
