"""Drill: the scan drainer SIGKILLed again and again in the middle of its batches while scans keep coming.

Real processes: two gunicorns serving one short link, one buffering scans in its spool files (the default) and one in
the Redis stream (QART_SCAN_BUFFER=stream), and `manage.py qart_drain_scans`, killed with SIGKILL as soon as it has
stored something (its batch's files claimed, its stream entries pending) and started again, several times. Afterwards
every 302 has exactly one stored scan (a killed drainer's claimed files and pending entries are taken up by the next
one), and the rollups the drainer kept equal a rebuild from the stored scans.
"""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from campaigns import rollup_rebuilds, scan_buffer
from campaigns.drainer import drain_once
from campaigns.models import Campaign, Placement, ScanEvent
from campaigns.scan_models import CampaignRollup, ScanRollup, TeamRollup
from qartsite.models import Team
from tests.drills.conftest import log_tail, required, stop, stored, wait_stored
from tests.drills.phones import Phones

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the web processes read committed rows

KILLS = 4
BACKLOG = 1.5  # seconds of scans with no drainer before each start: a batch to be killed in the middle of


def rollups() -> dict[str, set[tuple]]:
    fields = ("day", "dimension", "value", "scans", "visitors")
    return {model.__name__: set(model.objects.values_list(*fields)) for model in (ScanRollup, CampaignRollup,
                                                                                   TeamRollup)}


def in_flight(spool: Path, placement: Placement, before: int) -> bool:
    """Whether a killed drainer left work half done: a claimed spool file, or stream entries read and not
    acknowledged, while some of the same pass was already stored."""
    pending = scan_buffer.redis_client().xpending(scan_buffer.stream_key(), "drainers")["pending"]
    claimed = list(spool.glob(f"scans-*{scan_buffer.CLAIMED_SUFFIX}"))
    return stored(placement) > before and bool(pending or claimed)


def test_a_drainer_killed_mid_batch_loses_and_doubles_nothing(start_web, start_process, service_env, settings):
    from redis.exceptions import RedisError

    try:
        scan_buffer.redis_client().ping()
    except RedisError as exc:
        required(f"no Redis at the suite's REDIS_URL ({exc})")
    # 1. A committed link; one gunicorn spooling its scans, one streaming them.
    team = Team.objects.create(name="Drill")
    campaign = Campaign.objects.create(team=team, name="Drill", destination="https://shop.example.com/offer")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    spooling = Phones(start_web(), f"/r/{placement.slug}")
    streaming = Phones(start_web(QART_SCAN_BUFFER="stream"), f"/r/{placement.slug}")
    warm_up = [phones.scan_once(timeout=60) for phones in (spooling, streaming) for _ in range(2)]
    assert [status for status, *_ in warm_up] == [302] * 4
    spool = Path(settings.QART["SPOOL_DIR"])

    # 2. Scans go on; a drainer starts on a backlog and is killed once it has stored part of it, KILLS times.
    kills_mid_batch = 0
    with spooling, streaming:
        for kill in range(KILLS):
            time.sleep(BACKLOG)
            before = stored(placement)
            drainer = start_process(f"drainer-{kill}", sys.executable, "manage.py", "qart_drain_scans",
                                    env=service_env)
            deadline = time.monotonic() + 60
            while stored(placement) == before:
                assert drainer.poll() is None and time.monotonic() < deadline, log_tail(drainer)
                time.sleep(0.005)
            drainer.send_signal(signal.SIGKILL)
            drainer.wait(timeout=30)
            kills_mid_batch += in_flight(spool, placement, before)
        last = start_process("drainer-last", sys.executable, "manage.py", "qart_drain_scans", "--claim-idle", "0",
                             env=service_env)
        time.sleep(BACKLOG)
    answers = spooling.answers + streaming.answers
    redirects = len(warm_up) + sum(1 for status, *_ in answers if status == 302)

    # 3. The last drainer, taking over the killed ones' pending entries at once, catches up with every scan.
    wait_stored(placement, redirects, last)
    assert stop(last) == 0, log_tail(last)

    failures = Counter(status for status, *_ in answers if status != 302)
    assert not failures, f"{sum(failures.values())} of {len(answers)} scans were not redirected: {dict(failures)}"
    assert kills_mid_batch, "no kill landed in the middle of a batch"
    assert stored(placement) == redirects, log_tail(last)
    assert drain_once(claim_idle_ms=0).read == 0  # nothing was left behind
    event_ids = list(ScanEvent.objects.filter(placement=placement).values_list("event_id", flat=True))
    assert len(set(event_ids)) == len(event_ids) == redirects
    kept = rollups()
    rollup_rebuilds.rebuild(Placement.objects.filter(pk=placement.pk))
    assert rollups() == kept
    totals = ScanRollup.objects.filter(placement=placement, dimension="").values_list("scans", flat=True)
    assert sum(totals) == redirects
