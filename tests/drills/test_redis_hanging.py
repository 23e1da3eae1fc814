"""Drill: Redis frozen (SIGSTOP: its port takes connections into the kernel's backlog and nothing ever answers) while
phones scan, a person uses the dashboard and the API, a generation runs and commands are run; then thawed (SIGCONT).

Unlike a stopped Redis (refused at once: `test_redis_stopped.py`), a frozen one costs every call the whole of its
client's read timeout, and a client without one hangs with it. Real processes: gunicorn (two sync workers) putting
scans in the Redis stream first (QART_SCAN_BUFFER=stream, so the freeze moves them to the spool) and caching in the
same Redis (CACHE_URL, as production shares one), the scan drainer, an RQ worker on the tiny model, and a
redis-server of the drill's own. While it is frozen every short link redirects within `SCAN_WITHIN`, every page and API
call answers within `ANSWER_WITHIN` (a create says plainly that the job could not be queued, with nothing made), and
`qart_reconcile` and `qart_drain_scans --once` end with one line within Django's start and `COMMAND_REDIS_WAIT`;
thawed, every scan is stored once, the job that ran meanwhile ends done (or retried once), and a job queued afterwards
finishes. Measured on a two-core host shared with other test runs: scans 1.1 s at most, pages 2.7 s, commands 3.8 s
after Django's start (which took 3 to 15 s there).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import django_rq
import pytest
from django.conf import settings as django_settings

from campaigns.drainer import drain_once
from campaigns.models import Campaign, Placement, ScanEvent
from generator import jobs
from generator.models import Candidate, GenerationJob
from qartsite import tokens
from tests.drills.conftest import log_tail, stop, stored, wait_stored
from tests.drills.people import Person
from tests.drills.phones import Phones
from tests.drills.worker_jobs import tiny_job, wait_for
from tests.generator.factories import VALID

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the other processes read committed rows

# Seconds at least: two of the breakers' pauses (queues.REDIS_AWAY_FOR; scan_buffer.REDIS_SILENT_RETRY_AFTER), so
# that each is tried again while Redis is still frozen.
FREEZE = 10.0
CANDIDATES = 2
# A scan waits for a frozen Redis once per pause (scan_buffer.REDIS_SILENT_RETRY_AFTER) in each web process, for its
# read timeout (scan_buffer.REQUEST_TIMEOUT, 0.5 s), and may queue behind a page's wait in its gunicorn worker; 3 s, as
# the PostgreSQL drills bound theirs: make test runs its two passes at once on two cores, and a scan took 1.56 s
# there (0.5-1.1 s on a quiet host). Without the short link's own timeouts a scan waits a frozen Redis 20 s and more.
SCAN_WITHIN = 3.0
# A page's first call waits out the web processes' Redis timeout (settings.WEB_REDIS_TIMEOUT, 1 s) once, then the
# breaker skips Redis (queues.REDIS_AWAY_FOR); with two sync workers it may queue behind another request's wait; and a
# three seconds for the page's own work on a two-core host running make test's two passes at once (each took under
# 0.3 s warm on a quiet one, the placement page up to 2.7 s the first time under the drill's load; its preflight is
# this process's copy: `printfiles.kept_preflights`). Without the web processes' Redis timeouts a page waits 20 s.
ANSWER_WITHIN = 2 * django_settings.WEB_REDIS_TIMEOUT + 3.0
# A command: Django's start, measured beside it (a command that stops before it asks Redis: 2 to 3 s on a quiet
# two-core host, twice that under the drill's load), then one call that waits out the commands' timeouts
# (settings.REDIS_TIMEOUTS: 2 s to connect, 3 s to read; a frozen Redis's backlog takes the connection at once) before
# it gives up, and a second for the rest.
COMMAND_REDIS_WAIT = sum(django_settings.REDIS_TIMEOUTS.values()) + 1.0


def command(env: dict, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """`manage.py *args` run to its end (killed after a minute), and how many seconds it took."""
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "manage.py", *args], capture_output=True, text=True, timeout=60,
                              env=env)
    except subprocess.TimeoutExpired as exc:
        done = subprocess.CompletedProcess(exc.cmd, -9, exc.stdout or "", exc.stderr or "")
    return done, time.monotonic() - started


@pytest.mark.worker
def test_scans_pages_commands_and_jobs_outlast_a_frozen_redis(redis_server, start_web, start_process, start_worker,
                                                               service_env, settings, monkeypatch, team_users,
                                                               tmp_path):
    # 1. Gunicorn, the drainer and a worker on the drill's Redis; a committed link; a job being drawn.
    settings.REDIS_URL = redis_server.url  # this process's queues and drain at the end
    for queue in ("default", "gpu", "webhooks"):
        monkeypatch.setitem(django_rq.settings.QUEUES[queue], "URL", redis_server.url)
    env = {**service_env, "REDIS_URL": redis_server.url, "CACHE_URL": redis_server.url.replace("/0", "/1")}
    owner, team = team_users.owner, team_users.team
    campaign = Campaign.objects.create(team=team, name="Drill", destination="https://shop.example.com/offer")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    worker = start_worker(REDIS_URL=redis_server.url, CACHE_URL=env["CACHE_URL"])
    base = start_web(REDIS_URL=redis_server.url, CACHE_URL=env["CACHE_URL"], QART_SCAN_BUFFER="stream")
    drainer = start_process("drainer", sys.executable, "manage.py", "qart_drain_scans", env=env)
    _, token = tokens.make_token(owner, "drill")
    api = {"Authorization": f"Token {token}"}
    person = Person(base, owner)
    running = tiny_job(owner, team, CANDIDATES, steps=24)
    pages = [
        ("campaign list", "GET", "/campaigns/", {}),
        ("campaign", "GET", f"/campaigns/{campaign.pk}/", {}),
        ("placement", "GET", f"/campaigns/placements/{placement.pk}/", {}),
        ("generation page", "GET", "/generate/", {}),
        ("job page", "GET", f"/generate/jobs/{running.pk}/", {}),
        ("job status", "GET", f"/generate/jobs/{running.pk}/status.json", {}),
        ("healthz", "GET", "/healthz", {}),
        ("API campaigns", "GET", "/api/campaigns/", {"headers": api}),
    ]
    other = Person(base, owner)
    with ThreadPoolExecutor(2) as pool:  # two at once: both gunicorn workers load what each page needs
        for what, method, path, kwargs in pages:
            asked = [pool.submit(one.ask, "warm " + what, method, path, **kwargs) for one in (person, other)]
            assert [answer.result().status_code for answer in asked] == [200, 200], what
    phones = Phones(base, f"/r/{placement.slug}")
    warm_up = [phones.scan_once(timeout=60) for _ in range(2)]
    assert [status for status, *_ in warm_up] == [302] * 2
    wait_for(running, lambda row: row.stage == "generating" and row.progress > 0, worker)
    form = {**VALID, "team": team.pk, "candidates_per_batch": "2", "csrfmiddlewaretoken": person.csrf("/generate/")}
    asked_from = len(person.answers)

    # 2. Redis freezes; phones scan, the person goes through the pages and the API, commands run.
    with phones, ThreadPoolExecutor(3) as commands:
        time.sleep(1.0)
        redis_server.freeze()
        try:
            down = time.monotonic() - phones.began
            running.refresh_from_db()
            assert not running.is_finished  # drawn while Redis is frozen
            started = commands.submit(command, env, "qart_reconcile", "--grace", "nan")  # Django's start alone
            reconciled = commands.submit(command, env, "qart_reconcile")
            drained = commands.submit(command, env, "qart_drain_scans", "--once")
            for what, method, path, kwargs in pages:
                person.ask(what, method, path, **kwargs)
            person.ask("API create", "POST", "/api/generations/", headers=api,
                       json={"prompt": "frozen harbour", "content": "https://qart.example/r/AbC123"})
            person.ask("page create", "POST", "/generate/", data={**form, "prompt": "frozen lake"})
            for what, method, path, kwargs in pages:  # again, past the breakers' first wait
                person.ask(what + " again", method, path, **kwargs)
            started, reconciled, drained = started.result(), reconciled.result(), drained.result()
            time.sleep(max(0.0, FREEZE - (time.monotonic() - phones.began - down)))
            up = time.monotonic() - phones.began
        finally:
            redis_server.thaw()
        time.sleep(2.0)
    answers = phones.answers
    redirects = len(warm_up) + sum(1 for status, *_ in answers if status == 302)

    # 3. Thawed: the job that ran finishes, a new one too, and the drainer stores every scan.
    running = wait_for(running, lambda row: row.is_finished, worker)
    after = wait_for(tiny_job(owner, team, CANDIDATES), lambda row: row.is_finished, worker)
    wait_stored(placement, redirects, drainer)
    assert worker.poll() is None and drainer.poll() is None, (log_tail(worker), log_tail(drainer))
    assert stop(drainer) == 0, log_tail(drainer)
    drain_once(claim_idle_ms=0)

    timings = {what: (status, round(seconds, 2)) for what, status, seconds, _ in person.answers[asked_from:]}
    scans = sorted(seconds for _, seconds, sent in answers if down < sent < up)
    print(f"\nfrozen {up - down:.1f} s; {len(scans)} scans meanwhile, slowest {scans[-3:]}; pages {timings}; "
          f"Django's start {started[1]:.1f} s, qart_reconcile {reconciled[1]:.1f} s, qart_drain_scans --once "
          f"{drained[1]:.1f} s; the job drawn meanwhile {running.status} on attempt {running.attempts}")

    # Scans: each redirected within SCAN_WITHIN, each stored once.
    failures = Counter(status for status, *_ in answers if status != 302)
    assert not failures, f"{sum(failures.values())} of {len(answers)} scans were not redirected: {dict(failures)}"
    assert len(scans) > 20  # scans while Redis was frozen
    slow = [(status, round(seconds, 2), round(sent, 1)) for status, seconds, sent in answers if seconds > SCAN_WITHIN]
    assert not slow, f"scans over {SCAN_WITHIN} s (status, seconds, sent at): {slow}"
    assert stored(placement) == redirects, log_tail(drainer)
    event_ids = list(ScanEvent.objects.filter(placement=placement).values_list("event_id", flat=True))
    assert None not in event_ids and len(set(event_ids)) == len(event_ids)

    # Pages and the API: within ANSWER_WITHIN, never a 500 or a traceback; a create refused plainly, nothing made.
    slow = {what: answer for what, answer in timings.items() if answer[1] > ANSWER_WITHIN}
    failed = {what: (status, body[-500:]) for what, status, _, body in person.answers[asked_from:]
              if status >= 500 and status != 503 or "Traceback" in body}
    assert not slow and not failed, (slow, failed)
    answered = {what: (status, body) for what, status, _, body in person.answers[asked_from:]}
    for what in ("API create", "page create"):
        status, body = answered[what]
        assert status == 503 and jobs.QUEUE_UNAVAILABLE in body, (what, status, body[-1000:])
    assert not GenerationJob.objects.filter(prompt__text__in=["frozen harbour", "frozen lake"]).exists()
    for what, _, _, _ in pages:
        if what not in ("healthz",):
            assert answered[what][0] == 200, (what, answered[what][0], answered[what][1][-1000:])
    assert '"redis": "ok"' not in answered["healthz"][1], answered["healthz"]

    # Jobs: the one that ran during the freeze done once (or retried once), the one queued after it done.
    assert running.status == "done" and running.attempts in (1, 2), (running.error, log_tail(worker))
    made = list(Candidate.objects.filter(job=running).values_list("batch", "index"))
    assert len(made) == len(set(made)) == CANDIDATES
    assert after.status == "done" and after.attempts == 1, (after.error, log_tail(worker))

    # Commands: Django's start and one wait for Redis at most, one line, no traceback.
    assert "--grace must be" in started[0].stderr, started[0].stderr[-2000:]
    for name, (done, seconds) in (("qart_reconcile", reconciled), ("qart_drain_scans --once", drained)):
        said = (done.stdout + done.stderr).strip()
        assert seconds < started[1] + COMMAND_REDIS_WAIT, (name, round(seconds, 1), round(started[1], 1))
        assert "Traceback" not in said and len(said.splitlines()) == 1, (name, done.returncode, said[-2000:])
    assert "cannot be reached" in reconciled[0].stderr and "not answering" in drained[0].stdout, (reconciled, drained)
    for process in (worker, drainer):
        assert "Traceback" not in log_tail(process, chars=100_000), log_tail(process)
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text(), (tmp_path / "gunicorn.log").read_text()[-3000:]
