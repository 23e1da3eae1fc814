from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from campaigns import stats
from campaigns.models import Campaign, Placement, ScanEvent


def scan(placement: Placement, when: datetime, **fields) -> ScanEvent:
    event = ScanEvent.objects.create(placement=placement, **fields)
    # `time` is auto_now_add: set the moment afterwards.
    ScanEvent.objects.filter(pk=event.pk).update(time=when)
    return event


@pytest.fixture
def campaign(team_users) -> Campaign:
    return Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example.com/")


@pytest.fixture
def poster(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Poster")


@pytest.fixture
def flyer(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Flyer")


@pytest.mark.django_db
class TestScanCounts:
    def test_it_counts_all_time_and_the_last_7_days_without_bots(self, poster, flyer):
        now = timezone.now()
        scan(poster, now - timedelta(hours=1))
        scan(poster, now - timedelta(days=6, hours=23))  # inside the 7-day window
        scan(poster, now - timedelta(days=7, hours=1))  # just outside
        scan(poster, now - timedelta(days=40))
        scan(poster, now - timedelta(hours=2), is_bot=True, device_class="bot")

        counted = {p.name: (p.total_scans, p.recent_scans)
                   for p in stats.with_scan_counts(Placement.objects.all(), now=now)}

        assert counted == {"Poster": (4, 2), "Flyer": (0, 0)}

    def test_it_counts_campaigns_once_per_scan_and_placement(self, team_users, campaign, poster, flyer):
        now = timezone.now()
        for _ in range(3):
            scan(poster, now - timedelta(days=1))
        scan(flyer, now - timedelta(days=10))
        scan(flyer, now - timedelta(days=1), is_bot=True)
        empty = Campaign.objects.create(team=team_users.team, name="Empty", destination="https://example.com/")

        counted = {c.pk: (c.placement_count, c.total_scans, c.recent_scans)
                   for c in stats.campaigns_with_scan_counts(Campaign.objects.all(), now=now)}

        assert counted == {campaign.pk: (2, 4, 3), empty.pk: (0, 0, 0)}


@pytest.mark.django_db
class TestDailyCounts:
    def test_it_gives_zero_filled_days_per_placement_ending_today(self, poster, flyer):
        today = timezone.localdate()
        noon = timezone.make_aware(datetime.combine(today, datetime.min.time())) + timedelta(hours=12)
        scan(poster, noon)
        scan(poster, noon)
        scan(poster, noon - timedelta(days=3))
        scan(flyer, noon - timedelta(days=29))
        scan(flyer, noon - timedelta(days=30))  # one day before the window
        scan(poster, noon, is_bot=True)

        daily = stats.daily_counts(Placement.objects.all(), days=30, today=today)

        assert len(daily.days) == 30 and daily.days[-1] == today and daily.days[0] == today - timedelta(days=29)
        assert daily.counts[poster.pk][-1] == 2 and daily.counts[poster.pk][-4] == 1
        assert sum(daily.counts[poster.pk]) == 3
        assert daily.counts[flyer.pk][0] == 1 and sum(daily.counts[flyer.pk]) == 1
        assert daily.totals()[-1] == 2 and sum(daily.totals()) == 4

    def test_it_buckets_by_the_local_date(self, settings, poster):
        settings.TIME_ZONE = "America/New_York"
        zone = zoneinfo.ZoneInfo("America/New_York")
        # 02:00 UTC on 10 March is still 9 March in New York.
        scan(poster, datetime(2025, 3, 10, 2, 0, tzinfo=zoneinfo.ZoneInfo("UTC")))

        with timezone.override(zone):
            daily = stats.daily_counts(Placement.objects.all(), days=3, today=datetime(2025, 3, 10).date())

        assert [d.day for d in daily.days] == [8, 9, 10]
        assert daily.counts[poster.pk] == [0, 1, 0]

    def test_it_includes_placements_without_scans(self, poster):
        daily = stats.daily_counts(Placement.objects.all(), days=7)

        assert daily.counts == {poster.pk: [0] * 7} and daily.totals() == [0] * 7


@pytest.mark.django_db
class TestBreakdown:
    def test_it_counts_devices_and_systems_most_first_without_bots(self, poster, flyer):
        now = timezone.now()
        for _ in range(3):
            scan(poster, now, device_class="mobile", os="iOS")
        scan(flyer, now, device_class="mobile", os="Android")
        scan(flyer, now, device_class="desktop", os="")
        scan(poster, now, device_class="bot", os="Other", is_bot=True)

        placements = Placement.objects.all()
        assert stats.breakdown(placements, "device_class") == [("mobile", 4), ("desktop", 1)]
        # Ties are ordered by value, and the empty value (shown as "Unknown") sorts first.
        assert stats.breakdown(placements, "os") == [("iOS", 3), ("Unknown", 1), ("Android", 1)]
        assert stats.breakdown(Placement.objects.filter(pk=flyer.pk), "device_class") == [("desktop", 1), ("mobile", 1)]

    def test_it_refuses_fields_it_does_not_count(self, poster):
        with pytest.raises(ValueError, match="field must be one of"):
            stats.breakdown(Placement.objects.all(), "client_hash")
