"""Drill: PostgreSQL frozen (every process of the cluster stopped with SIGSTOP) for 8 s during a burst of scans.

Unlike a stopped server, a frozen one keeps its connections open and never answers: the connect and statement
timeouts do not fire, and before the bounded lookup (campaigns.redirects.looked_up) every scan that asked the database
waited for the whole freeze. Real processes: gunicorn (two sync workers, connections kept warm by CONN_MAX_AGE) and
make test's own cluster. Afterwards every request had its 302 within 3 s, and the drainer stored each scan once.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from campaigns.drainer import drain_once
from campaigns.models import Campaign, Placement, ScanEvent
from qartsite.models import Team
from tests.drills.conftest import log_tail, stop
from tests.drills.phones import Phones

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]

FREEZE_AFTER = 2.0
FREEZE = 8.0
AFTER = 2.0
SLOWEST = 3.0


def cluster_processes(data: Path) -> list[int]:
    """The postmaster (first line of postmaster.pid) and its children."""
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


def test_short_links_answer_within_3_s_while_postgresql_is_frozen(postgresql_cluster, start_web, start_process,
                                                                  service_env):
    # 1. A committed link; gunicorn's two workers warm (their connections open) and the drainer running.
    campaign = Campaign.objects.create(team=Team.objects.create(name="Drill"), name="Drill",
                                       destination="https://shop.example.com/offer")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    base = start_web(DB_CONN_MAX_AGE="600")
    drainer = start_process("drainer", sys.executable, "manage.py", "qart_drain_scans", env=service_env)
    phones = Phones(base, f"/r/{placement.slug}")
    with ThreadPoolExecutor(2) as pool:
        warm_up = list(pool.map(lambda _: phones.scan_once(timeout=60), range(2)))
    assert [status for status, *_ in warm_up] == [302] * 2

    # 2. Scans go on while every process of the cluster is stopped, then continued.
    frozen: list[int] = []
    with phones:
        time.sleep(FREEZE_AFTER)
        try:
            frozen = cluster_processes(postgresql_cluster.data)
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
            down = time.monotonic() - phones.began
            time.sleep(FREEZE)
            up = time.monotonic() - phones.began
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        time.sleep(AFTER)
    answers = phones.answers
    redirects = len(warm_up) + sum(1 for status, *_ in answers if status == 302)

    # 3. The drainer stores every scan once, as after any outage.
    deadline = time.monotonic() + 60
    while ScanEvent.objects.filter(placement=placement).count() < redirects and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stop(drainer) == 0, log_tail(drainer)
    drain_once(claim_idle_ms=0)

    failures = Counter(status for status, *_ in answers if status != 302)
    assert not failures, f"{sum(failures.values())} of {len(answers)} scans were not redirected: {dict(failures)}"
    assert sum(1 for *_, sent in answers if down < sent < up) > 20  # scans while the cluster was frozen
    slow = sorted((answer for answer in answers if answer[1] > SLOWEST), key=lambda answer: answer[2])
    assert not slow, "scans over 3 s (status, seconds, sent at): " + ", ".join(f"{a[0]} {a[1]:.2f} s at {a[2]:.1f} s"
                                                                             for a in slow)
    assert ScanEvent.objects.filter(placement=placement).count() == redirects
