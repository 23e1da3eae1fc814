"""The dashboards' upkeep in the worker's maintenance (`campaigns.maintenance`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from campaigns import alerts, maintenance, retention, rollup_rebuilds
from campaigns.drainer import store_events
from campaigns.models import Placement, ScanRollup
from campaigns.scan_buffer import scan_event
from qartsite.models import Team


@pytest.mark.django_db
class TestRecount:
    def test_it_recounts_a_team_whose_time_zone_changed_once(self, team_users, campaign):
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        store_events([scan_event(poster.pk, datetime(2026, 3, 11, 3, 30, tzinfo=UTC), visitor_key="a")])
        Team.objects.filter(pk=team_users.team.pk).update(time_zone="America/New_York")

        assert maintenance.recount_changed_zones() == ["Acme"]
        assert maintenance.recount_changed_zones() == []  # counted in its zone now
        assert set(ScanRollup.objects.filter(dimension="").values_list("day", flat=True)) == {date(2026, 3, 10)}
        assert Team.objects.get(pk=team_users.team.pk).counted_time_zone == "America/New_York"

    def test_a_team_whose_recount_fails_holds_back_neither_the_others_nor_the_retention(self, team_users, campaign,
                                                                                       scan_redis, monkeypatch):
        # The failure was raised out of the maintenance: every later pass tried the same team first and failed again,
        # and no other team was recounted, and no retention or alert check ran, for as long as it kept failing.
        from django.db import OperationalError

        Team.objects.filter(pk=team_users.team.pk).update(time_zone="America/New_York")
        Team.objects.filter(pk=team_users.other_team.pk).update(time_zone="Asia/Tokyo")
        recount, purged = rollup_rebuilds.recount_team, []

        def failing_for_acme(team_id: int, zone: str):
            if team_id == team_users.team.pk:
                raise OperationalError("deadlock detected")
            return recount(team_id, zone)

        monkeypatch.setattr(rollup_rebuilds, "recount_team", failing_for_acme)
        monkeypatch.setattr(retention, "purge", lambda: purged.append(1) or retention.Purged())
        try:
            maintenance.run(scan_redis)
        finally:
            scan_redis.delete(maintenance.retention_key(), alerts.check_key())

        assert purged == [1]
        assert Team.objects.get(pk=team_users.other_team.pk).counted_time_zone == "Asia/Tokyo"
        assert Team.objects.get(pk=team_users.team.pk).counted_time_zone == "UTC"  # tried again next time


@pytest.mark.django_db
class TestRetentionDaily:
    def test_it_runs_once_a_day_across_workers(self, scan_redis, monkeypatch, settings):
        runs = []
        monkeypatch.setattr(retention, "purge", lambda: runs.append(1) or retention.Purged())
        try:
            assert maintenance.apply_retention_daily(scan_redis) is not None
            assert maintenance.apply_retention_daily(scan_redis) is None  # another worker, the same day
            assert runs == [1] and 0 < scan_redis.ttl(maintenance.retention_key()) <= maintenance.RETENTION_EVERY
        finally:
            scan_redis.delete(maintenance.retention_key())

    def test_a_purge_the_database_failed_is_tried_again_at_the_next_maintenance(self, scan_redis, monkeypatch):
        # The day's turn was taken before purging: a database that failed in between skipped the day's retention.
        from django.db import OperationalError

        def down():
            raise OperationalError("the database went away")

        monkeypatch.setattr(retention, "purge", down)
        try:
            with pytest.raises(OperationalError):
                maintenance.apply_retention_daily(scan_redis)
            monkeypatch.setattr(retention, "purge", lambda: retention.Purged())
            assert maintenance.apply_retention_daily(scan_redis) is not None  # the next maintenance, the same day
        finally:
            scan_redis.delete(maintenance.retention_key())

    def test_it_deletes_old_print_files_and_a_storage_away_does_not_stop_it(self, scan_redis, monkeypatch):
        from campaigns import print_builds
        from qartsite.storage import MediaUnavailable

        deletions = []
        monkeypatch.setattr(retention, "purge", lambda: retention.Purged())
        monkeypatch.setattr(print_builds, "forget_old_files", lambda: deletions.append(1) or 3)
        try:
            assert maintenance.apply_retention_daily(scan_redis) is not None and deletions == [1]
            scan_redis.delete(maintenance.retention_key())

            def away():
                raise MediaUnavailable("The media storage could not list 'print-files'")

            monkeypatch.setattr(print_builds, "forget_old_files", away)
            assert maintenance.apply_retention_daily(scan_redis) is not None  # purged all the same
        finally:
            scan_redis.delete(maintenance.retention_key())

    def test_it_sweeps_media_no_row_names_guarded_and_a_storage_away_does_not_stop_it(self, scan_redis,
                                                                                     monkeypatch):
        from qartsite import media_sweep
        from qartsite.storage import MediaUnavailable

        sweeps = []
        monkeypatch.setattr(retention, "purge", lambda: retention.Purged())
        monkeypatch.setattr(media_sweep, "sweep", lambda storage, delete, **kwargs: sweeps.append((delete, kwargs))
                            or media_sweep.Swept())
        try:
            assert maintenance.apply_retention_daily(scan_redis) is not None
            assert sweeps == [(True, {})]  # deletes, with the guard on (its default)
            scan_redis.delete(maintenance.retention_key())

            def away(storage, delete, **kwargs):
                raise MediaUnavailable("The media storage could not list 'generations'")

            monkeypatch.setattr(media_sweep, "sweep", away)
            assert maintenance.apply_retention_daily(scan_redis) is not None
        finally:
            scan_redis.delete(maintenance.retention_key())
