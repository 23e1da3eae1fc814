"""Drill: the spool folder cannot be written (as a full or read-only disk refuses writes), with Redis up, then with
Redis stopped too (its data kept, as a Redis with persistence keeps it).

Real processes: gunicorn (spool first, the default) and the scan drainer, a redis-server of the drill's own, and a
spool folder made read-only before the web starts (chmod 0500; as root, which chmod does not stop, the immutable
attribute). Phones keep scanning: while Redis answers, the scans go to its stream; once it is stopped too, to the
database through the web's store thread. Every request had its 302 and every 302 exactly one stored scan, and
/healthz says the spool cannot be written meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from campaigns.drainer import drain_once
from campaigns.models import Campaign, Placement, ScanEvent
from qartsite.models import Team
from tests.drills.conftest import log_tail, required, stop, stored, wait_stored
from tests.drills.phones import Phones

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the web processes read committed rows

SCANNING = 2.0  # seconds of scans in each phase


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` takes no new file (nor rename, nor delete) while in the block."""
    as_root = os.geteuid() == 0
    if as_root:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            required(f"cannot make {folder} read-only as root (chattr +i failed)")
    else:
        folder.chmod(0o500)
    try:
        try:
            (folder / "probe").touch()
        except OSError:
            pass
        else:
            (folder / "probe").unlink()
            required(f"{folder} is still writable")
        yield
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o700)


def health(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/healthz", timeout=30) as response:
        return json.loads(response.read())


def test_scans_are_kept_once_when_the_spool_cannot_be_written_with_and_without_redis(
        redis_server, start_web, start_process, service_env, settings):
    # 1. A committed link; a read-only spool folder; gunicorn and the drainer on the drill's Redis.
    settings.REDIS_URL = redis_server.url  # this process's drain at the end
    env = {**service_env, "REDIS_URL": redis_server.url}
    team = Team.objects.create(name="Drill")
    campaign = Campaign.objects.create(team=team, name="Drill", destination="https://shop.example.com/offer")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    spool = Path(settings.QART["SPOOL_DIR"])
    spool.mkdir(parents=True, exist_ok=True)
    with read_only(spool):
        base = start_web(REDIS_URL=redis_server.url)
        drainer = start_process("drainer", sys.executable, "manage.py", "qart_drain_scans", env=env)
        phones = Phones(base, f"/r/{placement.slug}")
        warm_up = [phones.scan_once(timeout=60) for _ in range(2)]
        assert [status for status, *_ in warm_up] == [302] * 2

        # 2. Scans with Redis up (its stream), then with Redis stopped (the database, through the store thread).
        with phones:
            time.sleep(SCANNING)
            with_redis = health(base)
            redis_server.stop_keeping_data()  # the stream's scans wait in its saved data
            stopped_at = time.monotonic() - phones.began
            time.sleep(SCANNING)
            without_redis = health(base)
        answers = phones.answers
        redirects = len(warm_up) + sum(1 for status, *_ in answers if status == 302)
        redis_server.start()

        # 3. The drainer stores the stream's scans; the store thread stored the rest.
        wait_stored(placement, redirects, drainer)
    assert stop(drainer) == 0, log_tail(drainer)
    drain_once(claim_idle_ms=0)

    failures = Counter(status for status, *_ in answers if status != 302)
    assert not failures, f"{sum(failures.values())} of {len(answers)} scans were not redirected: {dict(failures)}"
    assert sum(1 for *_, sent in answers if sent > stopped_at) > 20  # scans while neither buffer took them
    assert stored(placement) == redirects, log_tail(drainer)
    event_ids = list(ScanEvent.objects.filter(placement=placement).values_list("event_id", flat=True))
    assert None not in event_ids and len(set(event_ids)) == len(event_ids)
    assert not list(spool.glob("scans-*"))
    for answer in (with_redis, without_redis):
        assert answer["status"] == "ok" and answer["spool"].startswith("cannot be written"), answer
    assert with_redis["redis"] == "ok" and without_redis["redis"] != "ok"


def test_a_spool_made_read_only_under_running_processes_keeps_its_scans_until_it_can_be_drained(
        start_web, start_process, service_env, settings):
    # The folder made read-only while the web processes hold their spool files open: they still append to them, but
    # the drainer can rename (claim) none; it says so once, drains the stream meanwhile, and takes them once it can.
    placement = Placement.objects.create(campaign=Campaign.objects.create(
        team=Team.objects.create(name="Drill"), name="Drill", destination="https://shop.example.com/offer"),
        name="Poster")
    spool = Path(settings.QART["SPOOL_DIR"])
    base = start_web()
    phones = Phones(base, f"/r/{placement.slug}")
    warm_up = [phones.scan_once(timeout=60) for _ in range(2)]
    with phones:
        time.sleep(0.5)
        with read_only(spool):  # the spool files the web opened stay open (the drainer claimed none yet)
            drainer = start_process("drainer", sys.executable, "manage.py", "qart_drain_scans", env=service_env)
            deadline = time.monotonic() + 60
            while "The spool cannot be drained" not in log_tail(drainer):
                assert drainer.poll() is None and time.monotonic() < deadline, log_tail(drainer)
                time.sleep(0.1)
            time.sleep(SCANNING)
            answer = health(base)
        time.sleep(0.5)
    answers = phones.answers
    redirects = len(warm_up) + sum(1 for status, *_ in answers if status == 302)
    wait_stored(placement, redirects, drainer)
    assert stop(drainer) == 0, log_tail(drainer)

    failures = Counter(status for status, *_ in [*warm_up, *answers] if status != 302)
    assert not failures, f"{sum(failures.values())} of {len(answers)} scans were not redirected: {dict(failures)}"
    assert stored(placement) == redirects, log_tail(drainer)
    assert answer["status"] == "ok" and answer["spool"].startswith("cannot be written"), answer
    assert answer["scans"]["spool_files_here"] > 0
    log = log_tail(drainer, chars=100_000)
    assert log.count("The spool cannot be drained") == 1 and "The spool can be drained again" in log, log
    assert "Traceback" not in log
