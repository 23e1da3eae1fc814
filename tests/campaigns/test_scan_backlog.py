"""Scans not counted yet (`campaigns.scan_backlog`): the pages' one line and what /healthz reports."""

from __future__ import annotations

import json
import os
import re
import socket
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns import refused_scans, scan_backlog, scan_buffer
from campaigns.drainer import drain_once
from campaigns.models import Placement

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station Poster")


def spool_scan(placement: Placement, minutes_ago: float) -> datetime:
    """Spools one scan made `minutes_ago`; returns when, so a page read a minute later still expects that time."""
    made = timezone.now() - timedelta(minutes=minutes_ago)
    scan_buffer.append_to_spool(json.dumps(scan_buffer.scan_event(placement.pk, made, is_bot=False)))
    return made


def drainer_ran(redis, minutes_ago: float) -> datetime:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    redis.hset(scan_backlog.drained_key(), socket.gethostname(), at.timestamp())
    return at


def clock(moment: datetime) -> str:
    """How the pages write `moment` in New York: the house date-time format ("6 Dec 2026 14:03")."""
    local = moment.astimezone(NEW_YORK)
    return f"{local.day} {local:%b %Y %H:%M}"


@pytest.mark.django_db
class TestBacklog:
    def test_it_says_nothing_while_the_drainer_keeps_up(self, placement, scan_redis):
        drainer_ran(scan_redis, 0)
        spool_scan(placement, 0)  # a scan of this second: the next pass stores it
        now = scan_backlog.backlog()
        assert now.waiting and now.spool_files == 1 and now.stream_entries == 0
        assert not now.behind and now.note(NEW_YORK) == ""

    def test_it_names_the_oldest_waiting_scan_in_the_teams_zone(self, placement, scan_redis):
        drainer_ran(scan_redis, 0)
        oldest = spool_scan(placement, 5)
        spool_scan(placement, 2)
        note = scan_backlog.backlog().note(NEW_YORK)
        assert note.startswith(f"Some scans are still being counted: the oldest waiting was made on {clock(oldest)}")
        assert "last ran" not in note

    def test_it_writes_its_times_in_the_house_format(self, placement, scan_redis):
        # "14:03 on 6 Dec", or "14:03" alone today: no year, and no other page wrote a time that way
        drainer_ran(scan_redis, 10)
        made = spool_scan(placement, 5)
        local = made.astimezone(NEW_YORK)
        note = scan_backlog.backlog().note(NEW_YORK)
        assert f"made on {local.day} {local:%b} {local.year} {local:%H:%M};" in note
        assert re.search(r"last ran on \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d\.$", note), note

    def test_it_says_when_the_drainer_stopped_though_nothing_waits_here(self, placement, scan_redis):
        ran = drainer_ran(scan_redis, 10)
        now = scan_backlog.backlog()
        assert not now.waiting and now.behind
        assert now.note(NEW_YORK) == (f"Scans made after {clock(ran)} may not be counted yet: the scan counter has "
                                      "not run since.")

    def test_it_counts_the_stream_with_no_drainer_ever_seen(self, placement, scan_redis):
        assert scan_buffer.add_to_stream(json.dumps(scan_buffer.scan_event(placement.pk, timezone.now())))
        now = scan_backlog.backlog()
        assert now.stream_entries == 1 and now.drained_at is None and now.behind
        assert now.to_dict()["stream_entries"] == 1 and now.to_dict()["behind"] is True

    def test_a_drain_clears_it_and_records_the_pass(self, placement, scan_redis):
        spool_scan(placement, 5)
        assert scan_backlog.backlog().behind
        drain_once()
        now = scan_backlog.backlog()
        assert not now.waiting and not now.behind and now.drained_at is not None
        assert scan_redis.hget(scan_backlog.drained_key(), socket.gethostname())

    def test_healthz_counts_the_refused_scans_in_redis_and_in_this_hosts_files(self, client, placement, scan_redis):
        # A refused scan is never counted until someone retries it, and nothing else says so: a monitor needs it
        refused_scans.set_aside(scan_buffer.scan_event(placement.pk, timezone.now()), "value too long", scan_redis)
        refused_scans.set_aside(scan_buffer.scan_event(placement.pk, timezone.now()), "value too long", None)
        assert scan_backlog.backlog().refused == 2
        assert client.get("/healthz").json()["scans"]["refused_scans"] == 2

    def test_it_says_what_the_spool_shows_when_redis_is_away(self, placement, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        made = spool_scan(placement, 5)
        now = scan_backlog.backlog()
        assert now.stream_entries is None and now.spool_files == 1 and now.behind
        assert clock(made) in now.note(NEW_YORK)

    def test_it_knows_this_hosts_drainer_keeps_up_while_redis_is_away(self, placement, settings):
        # Every page said "Some scans are still being counted" through a Redis outage (fault drills), while the
        # drainer stored this host's spool within a second: its passes were known to Redis only.
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        spool_scan(placement, 5)
        drain_once()  # stores the spool: the database answers
        assert placement.scans.count() == 1
        spool_scan(placement, 0)  # a scan of this second: the next pass stores it
        now = scan_backlog.backlog()
        assert now.stream_entries is None and now.waiting and now.drained_at is not None
        assert not now.behind and now.note(NEW_YORK) == ""
        # and a drainer that stopped passing is still said, from the same record
        old = (timezone.now() - timedelta(minutes=10)).timestamp()
        os.utime(Path(settings.QART["SPOOL_DIR"]) / scan_backlog.PASS_FILE, (old, old))
        assert scan_backlog.backlog().stalled


@pytest.mark.django_db
class TestPages:
    def test_the_overview_campaign_and_placement_pages_say_scans_wait(self, client, team_users, campaign, placement,
                                                                      scan_redis):
        team_users.team.time_zone = "America/New_York"
        team_users.team.save()
        client.force_login(team_users.viewer)
        pages = ("/campaigns/", f"/campaigns/{campaign.pk}/", f"/campaigns/placements/{placement.pk}/")
        drainer_ran(scan_redis, 0)
        for url in pages:
            assert "data-backlog" not in client.get(url).content.decode()
        made = spool_scan(placement, 5)
        for url in pages:
            assert f"the oldest waiting was made on {clock(made)}" in client.get(url).content.decode()

    def test_the_pages_render_when_redis_is_away(self, client, team_users, campaign, placement, settings):
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        spool_scan(placement, 5)
        client.force_login(team_users.viewer)
        for url in (f"/campaigns/{campaign.pk}/", f"/campaigns/placements/{placement.pk}/"):
            response = client.get(url)
            assert response.status_code == 200 and "Some scans are still being counted" in response.content.decode()
