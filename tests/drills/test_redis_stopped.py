"""Drill: Redis stopped for a while (its data kept, as a Redis with persistence keeps it) while scans come in and a
generation is asked for, then started again.

Real processes: gunicorn (two sync workers) buffering scans in the Redis stream first (QART_SCAN_BUFFER=stream, so
the outage moves them to the spool), the scan drainer, and a redis-server of the drill's own, stopped (SHUTDOWN SAVE)
and started again. Every scan is redirected and stored exactly once; the generate page, asked while Redis is away,
answers 503 saying to try again, with nothing made, and makes the job once Redis is back.
"""

from __future__ import annotations

import http.client
import re
import sys
import time
from collections import Counter
from urllib.parse import urlencode, urlsplit

import pytest
from django.test import Client
from redis import Redis

from campaigns.drainer import drain_once
from campaigns.models import Campaign, Placement, ScanEvent
from generator import jobs
from generator.models import GenerationJob
from tests.drills.conftest import log_tail, stop, stored, wait_stored
from tests.drills.phones import Phones
from tests.generator.factories import VALID

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the web processes read committed rows

OUTAGE = 8.0  # seconds: several of the short link's one-second skips of Redis (scan_buffer.REDIS_RETRY_AFTER)


class Browser:
    """A signed-in person's browser against gunicorn: the session cookie, the CSRF cookie and token."""

    def __init__(self, base: str, user) -> None:
        client = Client()
        client.force_login(user)  # a session row in the shared database
        self.address = urlsplit(base).netloc
        self.cookies = {"sessionid": client.cookies["sessionid"].value}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, str, str]:
        """(status, Location, body) of one request, its cookies kept."""
        connection = http.client.HTTPConnection(self.address, timeout=60)
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name] = rest.split(";", 1)[0]
            return response.status, response.getheader("Location") or "", text
        finally:
            connection.close()

    def generate(self, form: dict) -> tuple[int, str, str]:
        status, _, page = self.request("GET", "/generate/")
        assert status == 200, page[-2000:]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return self.request("POST", "/generate/", {**form, "csrfmiddlewaretoken": token})


def test_scans_are_kept_and_generations_refused_plainly_while_redis_is_stopped(
        redis_server, start_web, start_process, service_env, settings, team_users):
    # 1. A committed link; gunicorn streaming scans, and the drainer, on the drill's Redis.
    settings.REDIS_URL = redis_server.url  # this process's drain at the end
    env = {**service_env, "REDIS_URL": redis_server.url}
    campaign = Campaign.objects.create(team=team_users.team, name="Drill", destination="https://shop.example.com/offer")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    base = start_web(REDIS_URL=redis_server.url, QART_SCAN_BUFFER="stream")
    drainer = start_process("drainer", sys.executable, "manage.py", "qart_drain_scans", env=env)
    phones = Phones(base, f"/r/{placement.slug}")
    warm_up = [phones.scan_once(timeout=60) for _ in range(2)]
    assert [status for status, *_ in warm_up] == [302] * 2
    browser = Browser(base, team_users.owner)
    form = {**VALID, "team": team_users.team.pk, "candidates_per_batch": "2"}

    # 2. Scans go on while Redis is stopped; a generation is asked for meanwhile.
    with phones:
        time.sleep(1.0)
        redis_server.stop_keeping_data()
        down = time.monotonic() - phones.began
        refused = browser.generate(form)
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - phones.began - down)))
        up = time.monotonic() - phones.began
        redis_server.start()
        time.sleep(1.0)
    answers = phones.answers
    redirects = len(warm_up) + sum(1 for status, *_ in answers if status == 302)

    # 3. The drainer stores the spool's and the stream's scans; the generate page works again.
    wait_stored(placement, redirects, drainer)
    made = browser.generate(form)
    assert stop(drainer) == 0, log_tail(drainer)
    drain_once(claim_idle_ms=0)

    failures = Counter(status for status, *_ in answers if status != 302)
    assert not failures, f"{sum(failures.values())} of {len(answers)} scans were not redirected: {dict(failures)}"
    assert sum(1 for *_, sent in answers if down < sent < up) > 20  # scans while Redis was stopped
    assert stored(placement) == redirects, log_tail(drainer)
    event_ids = list(ScanEvent.objects.filter(placement=placement).values_list("event_id", flat=True))
    assert None not in event_ids and len(set(event_ids)) == len(event_ids)
    status, _, page = refused
    assert status == 503 and jobs.QUEUE_UNAVAILABLE in page, page[-2000:]
    status, location, page = made
    job = GenerationJob.objects.get()  # the refused one made nothing
    assert status == 302 and location == f"/generate/jobs/{job.pk}/", page[-2000:]
    assert job.status == "queued" and Redis.from_url(redis_server.url).exists(f"rq:job:{job.rq_job_id}")
    assert "Traceback" not in log_tail(drainer, chars=100_000)
