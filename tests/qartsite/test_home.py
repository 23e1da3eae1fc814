from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone


@pytest.mark.django_db
class TestHome:
    def test_it_renders_the_home_page(self, client):
        response = client.get("/")
        assert response.status_code == 200
        body = response.content.decode()
        assert "QR codes that are pictures" in body
        assert "Sign in" in body
        # how long a link fits, not "up to version 6 at error-correction level H"
        assert "QR art holds a link of up to\n      58 characters" in body
        for jargon in ("version", "error-correction", "error correction", "finder pattern", "symbols"):
            assert jargon not in body, jargon

    def test_its_sample_is_qr_art_that_opens_what_its_alt_text_says(self, client):
        from pathlib import Path

        import zxingcpp
        from django.conf import settings
        from PIL import Image

        body = client.get("/").content.decode()
        assert 'src="/static/qart/sample-art.jpg"' in body and "it opens example.com" in body
        sample = Image.open(Path(settings.BASE_DIR) / "static" / "qart" / "sample-art.jpg")
        assert [result.text for result in zxingcpp.read_barcodes(sample)] == ["https://example.com/"]

    def test_it_points_integrators_at_the_api_reference(self, client):
        assert 'href="/api/docs/"' in client.get("/").content.decode()

    def test_it_shows_the_admin_link_to_staff(self, client, admin_user):
        client.force_login(admin_user)
        body = client.get("/").content.decode()
        assert 'href="/admin/"' in body and admin_user.username in body

    def test_staff_tools_sit_in_their_own_menu_and_only_for_staff(self, client, admin_user, team_users):
        client.force_login(admin_user)
        body = client.get("/").content.decode()
        staff_menu = body[body.index('<details class="nav-staff">'):body.index("</details>")]
        for href in ('href="/evals/"', 'href="/evals/labeling/"', 'href="/admin/"'):
            assert href in staff_menu
        client.force_login(team_users.owner)
        body = client.get("/").content.decode()
        assert "nav-staff" not in body and 'href="/admin/"' not in body and 'href="/evals/' not in body
        assert 'id="nav-toggle"' in body and 'href="/generate/"' in body

    def test_it_serves_a_friendly_404(self, client, settings):
        settings.DEBUG = False
        response = client.get("/no-such-page")
        assert response.status_code == 404
        assert "couldn't find that page" in response.content.decode()

    def test_it_reports_health(self, client):
        answer = client.get("/healthz").json()
        assert answer["status"] == "ok" and answer["scans"]["behind"] is False
        assert answer["scans"]["spool_files_here"] == 0 and answer["scans"]["last_drained"] is None
        assert answer["redis"] == "ok" and answer["media"] is None  # media on the filesystem: not checked
        assert answer["spool"] == "ok"

    def test_it_says_the_spool_cannot_be_written_without_failing(self, client, settings, tmp_path):
        # A read-only or full spool sent every scan to Redis (or the database) and /healthz said nothing (a drill).
        from campaigns import scan_buffer

        (tmp_path / "disk").write_text("")
        settings.QART = {**settings.QART, "SPOOL_DIR": tmp_path / "disk" / "spool"}  # no folder can be made there
        response = client.get("/healthz")
        assert response.status_code == 200 and response.json()["status"] == "ok"
        assert response.json()["spool"] == ("cannot be written (Not a directory): scans it does not take go to Redis, "
                                            "or to the database while Redis is away")
        settings.QART = {**settings.QART, "SPOOL_DIR": tmp_path / "spool"}
        scan_buffer.spool_outage.begin()  # an append failed a moment ago (a full disk takes a new empty file)
        try:
            assert client.get("/healthz").json()["spool"].startswith("refused a scan a moment ago")
        finally:
            scan_buffer.spool_outage.end()
        assert client.get("/healthz").json()["spool"] == "ok"

    def test_a_database_without_its_tables_is_not_healthy(self, client, monkeypatch):
        # SQLite makes an empty file where its file went missing: SELECT 1 answered there while every page said 503
        from django.db import connection
        from django.db.utils import OperationalError

        real = connection.cursor

        class Emptied:
            def __init__(self, cursor):
                self.cursor = cursor

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.cursor.close()

            def execute(self, sql, params=None):
                if "django_migrations" in sql:
                    raise OperationalError("no such table: django_migrations")
                return self.cursor.execute(sql, params)

        monkeypatch.setattr(connection, "cursor", lambda: Emptied(real()))
        response = client.get("/healthz")
        assert response.status_code == 503 and response.json()["status"] == "error"
        assert response.json()["database"] == "no tables: run manage.py migrate (or restore the database)"

    def test_it_reports_scans_waiting_without_failing(self, client, settings):
        # An operator's monitor alerts on scans.behind; the balancer keys on the status code, which stays 200.
        from campaigns import scan_buffer

        settings.REDIS_URL = "redis://127.0.0.1:1/0"  # Redis away too: still answered, still healthy
        old = timezone.now() - timedelta(minutes=5)
        scan_buffer.append_to_spool(json.dumps(scan_buffer.scan_event(1, old)))
        try:
            response = client.get("/healthz")
        finally:
            scan_buffer.redis_outage.end()  # the next test's Redis is there
        answer = response.json()
        assert response.status_code == 200 and answer["status"] == "ok"
        assert answer["scans"] == {"behind": True, "spool_files_here": 1, "stream_entries": None,
                                   "oldest_waiting": old.isoformat(), "last_drained": None, "refused_scans": None}


@pytest.mark.django_db
class TestHealthzDependencies:
    """What /healthz says of Redis and the media bucket: a monitor alerts on them; the status code stays the database's
    (a balancer must not take a web host out for them: short links work without either)."""

    def test_it_says_a_full_redis_refuses_writes(self, client, settings, monkeypatch):
        # A full Redis (maxmemory, noeviction) answers PING and reads, refuses every job: /healthz said ok (a drill)
        from redis import Redis
        from redis.exceptions import OutOfMemoryError

        from campaigns import scan_buffer

        class Full(Redis):
            def set(self, *args, **kwargs):
                raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

        full = Full.from_url(settings.REDIS_URL)
        monkeypatch.setattr(scan_buffer, "redis_client", lambda: full)
        response = client.get("/healthz")
        answer = response.json()
        assert response.status_code == 200 and answer["status"] == "ok"
        assert answer["redis"] == "full, refuses writes: command not allowed when used memory > 'maxmemory'."
        assert answer["scans"]["stream_entries"] == 0  # reads still answered

    def test_it_says_redis_refuses_its_password_not_that_it_is_away(self, client, settings, password_redis):
        # "refused: invalid username-password pair ...": a monitor could not tell it from any other refusal, nor that
        # only a password put right mends it. Never the password itself: /healthz is public.
        from campaigns import scan_buffer

        settings.REDIS_URL = password_redis.url_with("wrong-password")
        try:
            answer = client.get("/healthz").json()
        finally:
            scan_buffer.redis_outage.end()  # the next test's Redis is there
        assert answer["status"] == "ok" and answer["redis"].startswith("refused the password: "), answer["redis"]
        assert "wrong-password" not in answer["redis"] and password_redis.password not in answer["redis"]

    def test_it_says_why_redis_was_skipped_a_moment_ago(self, client):
        # A scan's XADD refused by a full Redis skips it for a second: /healthz said "not answering" meanwhile
        from redis.exceptions import OutOfMemoryError

        from campaigns import scan_buffer

        scan_buffer.redis_outage.begin(OutOfMemoryError("command not allowed when used memory > 'maxmemory'."))
        try:
            answer = client.get("/healthz").json()
        finally:
            scan_buffer.redis_outage.end()
        assert answer["redis"] == "full, refuses writes: command not allowed when used memory > 'maxmemory'. " \
                                  "(a moment ago)"

    def test_it_says_a_stalled_redis_does_not_answer_within_a_second(self, client, settings, silent_server):
        import time

        from campaigns import scan_buffer

        port, taken = silent_server
        settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
        try:
            started = time.monotonic()
            first = client.get("/healthz")
            took = time.monotonic() - started
            second = client.get("/healthz").json()
        finally:
            scan_buffer.redis_outage.end()  # the next test's Redis is there
        # One half-second read (the scans' backlog asks first), then Redis is known away for the write probe
        assert first.status_code == 200 and first.json()["status"] == "ok" and took < 1.5, took
        assert first.json()["redis"].startswith("not answering") and second["redis"].startswith("not answering")
        assert len(taken) == 1

    def test_it_says_a_frozen_bucket_does_not_answer_and_answers_in_a_second_or_two(self, client, settings,
                                                                                     monkeypatch, silent_server):
        import time

        from django.core.files.storage import storages

        from qartsite.storage import MediaUnavailable
        from tests.conftest import use_s3

        port, taken = silent_server
        use_s3(settings, monkeypatch, ENDPOINT_URL=f"http://127.0.0.1:{port}", BUCKET="qart",
               ACCESS_KEY_ID="qart-test", SECRET_ACCESS_KEY="qart-test-secret")
        storages["default"].connection  # noqa: B018 -- boto's client built before the clock starts (0.2-0.9 s)
        started = time.monotonic()
        first = client.get("/healthz")
        took = time.monotonic() - started
        assert first.status_code == 200 and first.json()["status"] == "ok" and took < 2, took
        assert first.json()["media"].startswith("The media storage does not answer: ")
        started = time.monotonic()
        assert client.get("/healthz").json()["media"].endswith("(a moment ago)")
        assert time.monotonic() - started < 0.5 and len(taken) == 1  # not asked again while known away
        with pytest.raises(MediaUnavailable):  # the pages' calls fail at once too, not after their 5 s
            storages["default"].reachable()

    def test_it_says_a_bucket_whose_server_answers_is_ok(self, client, settings, monkeypatch):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from tests.conftest import use_s3

        class Refusing(BaseHTTPRequestHandler):  # any HTTP answer says the server is up
            def do_HEAD(self):
                self.send_response(403)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            use_s3(settings, monkeypatch, ENDPOINT_URL=f"http://127.0.0.1:{server.server_port}", BUCKET="qart",
                   ACCESS_KEY_ID="qart-test", SECRET_ACCESS_KEY="qart-test-secret")
            assert client.get("/healthz").json()["media"] == "ok"
        finally:
            server.shutdown()
            server.server_close()


@pytest.mark.django_db
def test_admin_login_page_renders(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200 and "qart admin" in response.content.decode()


@pytest.mark.django_db
def test_the_admin_shows_the_sites_icon_and_sends_its_forms_once(client, admin_user):
    # Without the icon each admin page asked for /favicon.ico, a 404; without submit-once.js a double click on Save
    # saved twice, the second refused as a change saved meanwhile.
    pages = [client.get("/admin/login/")]
    client.force_login(admin_user)
    pages.append(client.get("/admin/"))
    for response in pages:
        body = response.content.decode()
        assert response.status_code == 200 and "qart admin" in body
        assert '<link rel="icon" href="/static/qart/favicon.svg"' in body
        assert '<script src="/static/qart/submit-once.js" defer></script>' in body


@pytest.mark.django_db
def test_a_viewer_who_tries_to_change_something_gets_a_friendly_403(client, team_users):
    client.force_login(team_users.viewer)
    response = client.post("/campaigns/new/", {"name": "x", "destination": "https://example.com"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "This isn't open to you." in body and "Ask a team owner" in body


@pytest.mark.django_db
def test_the_home_page_leads_signed_in_people_to_their_campaigns(client, team_users):
    client.force_login(team_users.owner)
    body = client.get("/").content.decode()
    assert 'href="/campaigns/"' in body and 'href="/generate/"' in body
