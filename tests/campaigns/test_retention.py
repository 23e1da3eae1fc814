"""Scan retention (`campaigns.retention`): raw scans older than the team's period go, daily counts stay."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from campaigns import retention, stats
from campaigns.drainer import store_events
from campaigns.models import Campaign, Placement, ScanEvent
from campaigns.scan_buffer import scan_event

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def scans(placement: Placement, *days_ago: int) -> None:
    store_events([scan_event(placement.pk, NOW - timedelta(days=n), device_class="mobile", visitor_key=f"{n:032d}")
                  for n in days_ago])


@pytest.mark.django_db
class TestPurge:
    def test_it_deletes_only_scans_older_than_each_teams_period_and_keeps_the_counts(self, team_users, campaign):
        ours = Placement.objects.create(campaign=campaign, name="Poster")
        rival = Campaign.objects.create(team=team_users.other_team, name="Rival", destination="https://r.example/")
        theirs = Placement.objects.create(campaign=rival, name="Theirs")
        team_users.team.scan_retention_days = 30
        team_users.team.save()
        scans(ours, 1, 29, 31, 400)
        scans(theirs, 1, 400)  # their team keeps everything
        lifetime = stats.DateRange(date(2025, 1, 1), NOW.date())
        before = stats.placement_figures(Placement.objects.all(), lifetime)

        purged = retention.purge(now=NOW, batch=1)  # one row per batch: the loop goes round

        assert purged.teams == {"Acme": 2} and "Deleted 2 raw scans" in str(purged)
        assert sorted((NOW - event.time).days for event in ScanEvent.objects.filter(placement=ours)) == [1, 29]
        assert ScanEvent.objects.filter(placement=theirs).count() == 2
        assert stats.placement_figures(Placement.objects.all(), lifetime) == before

    def test_a_dry_run_only_counts(self, team_users, campaign):
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        team_users.team.scan_retention_days = 30
        team_users.team.save()
        scans(poster, 40, 50)
        assert retention.purge(now=NOW, dry_run=True).total == 2 and ScanEvent.objects.count() == 2

    def test_it_says_when_no_team_limits_retention(self, team_users):
        assert str(retention.purge(now=NOW)) == "No team keeps raw scans for a limited time: nothing to delete."


@pytest.mark.django_db
class TestExportGap:
    def test_a_new_time_zone_not_yet_recounted_is_no_gap(self, team_users, campaign):
        # Saved a minute ago, Tokyo's days start sooner than the UTC ones the rollups were counted in, until the
        # workers recount them: the campaign page said the raw scans before today were "no longer kept", all kept.
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        store_events([scan_event(poster.pk, datetime(2026, 5, 31, 20, tzinfo=UTC), visitor_key="1" * 32)])
        team = campaign.team
        team.time_zone = "Asia/Tokyo"  # 05:00 on 1 June there; counted_time_zone is still UTC
        team.save()
        month = stats.DateRange(date(2026, 5, 3), date(2026, 6, 1))
        assert retention.export_gap(team, Placement.objects.filter(pk=poster.pk), month) == ""
        ScanEvent.objects.all().delete()  # and once they are gone, it says so
        assert "The raw scans of these days are no longer kept" in retention.export_gap(
            team, Placement.objects.filter(pk=poster.pk), month)
