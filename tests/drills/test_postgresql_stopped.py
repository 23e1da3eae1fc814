"""Drill: PostgreSQL stopped for 10 s in the middle of a burst of scans, then started again.

Real processes: gunicorn (two sync workers) serving the short link from the test database, the scan drainer
(`manage.py qart_drain_scans`), and make test's own PostgreSQL cluster, stopped (`pg_ctl stop -m fast`) and started
again while phones keep scanning. Afterwards every request had its 302 and every 302 exactly one stored scan event.
No request may take over 3 s: a bound for the drill, not a speed target (bench/redirect.sh measures those).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from campaigns.drainer import drain_once
from campaigns.models import Campaign, Placement, ScanEvent
from qartsite.models import Team
from tests.drills.conftest import log_tail, stop, stored, wait_stored
from tests.drills.phones import Phones

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the web processes read committed rows

STOP_AFTER = 2.0  # seconds of scans before PostgreSQL stops
OUTAGE = 10.0
AFTER = 2.0  # seconds of scans once it is back
SLOWEST = 3.0


def test_short_links_answer_and_count_exactly_once_while_postgresql_restarts(postgresql_cluster, start_web,
                                                                              start_process, service_env):
    # 1. A committed link, gunicorn and the drainer on the test database. Two scans at once reach both web workers:
    # their first request loads the site (seconds here) and puts the link in their copies.
    campaign = Campaign.objects.create(team=Team.objects.create(name="Drill"), name="Drill",
                                       destination="https://shop.example.com/offer")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    base = start_web()
    drainer = start_process("drainer", sys.executable, "manage.py", "qart_drain_scans", env=service_env)
    phones = Phones(base, f"/r/{placement.slug}")
    with ThreadPoolExecutor(2) as pool:
        # A web worker's first request imports the site: on a busy two-core box that can take longer than a scan may.
        warm_up = list(pool.map(lambda _: phones.scan_once(timeout=60), range(2)))
    assert [status for status, *_ in warm_up] == [302] * 2

    # 2. Scans go on while PostgreSQL stops for OUTAGE seconds and starts again.
    with phones:
        time.sleep(STOP_AFTER)
        postgresql_cluster.stop()
        down = time.monotonic() - phones.began
        time.sleep(OUTAGE)
        up = time.monotonic() - phones.began
        postgresql_cluster.start()
        time.sleep(AFTER)
    answers = phones.answers
    redirects = len(warm_up) + sum(1 for status, *_ in answers if status == 302)

    # 3. The drainer catches up by itself (it retries with back-off while the database is away); whatever a stopped
    # drainer would have left, a pass after it stores, as a restarted drainer would.
    wait_stored(placement, redirects, drainer)
    assert stop(drainer) == 0, log_tail(drainer)
    drain_once(claim_idle_ms=0)

    failures = Counter(status for status, *_ in answers if status != 302)
    assert not failures, f"{sum(failures.values())} of {len(answers)} scans were not redirected: {dict(failures)}"
    assert sum(1 for *_, sent in answers if down < sent < up) > 50  # scans while PostgreSQL was stopped
    assert stored(placement) == redirects
    event_ids = list(ScanEvent.objects.filter(placement=placement).values_list("event_id", flat=True))
    assert None not in event_ids and len(set(event_ids)) == len(event_ids)
    slow = sorted((answer for answer in answers if answer[1] > SLOWEST), key=lambda answer: answer[2])  # not warm-up
    assert not slow, "scans over 3 s (status, seconds, sent at): " + ", ".join(f"{a[0]} {a[1]:.2f} s at {a[2]:.1f} s"
                                                                             for a in slow)
