"""Daily rollups (`campaigns.rollups`): kept by the drainer as scans are stored, and the same when rebuilt."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from campaigns import rollups
from campaigns.drainer import store_events
from campaigns.models import Placement, ScanEvent, ScanRollup
from campaigns.scan_buffer import scan_event

UTC = UTC


@pytest.fixture
def poster(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Poster")


def event(placement: Placement, when: datetime, visitor: str = "a" * 32, **fields) -> dict:
    made = {"browser": "Mobile Safari", "os": "iOS", "device_class": "mobile", "referer": "",
            "accept_language": "fr-FR,fr;q=0.9", "country": "FR", "is_bot": False, "visitor_key": visitor}
    return scan_event(placement.pk, when, **{**made, **fields})


def rows(placement: Placement, dimension: str = "") -> dict:
    return {(row.day, row.value): (row.scans, row.visitors)
            for row in ScanRollup.objects.filter(placement=placement, dimension=dimension)}


def all_rows() -> set:
    return set(ScanRollup.objects.values_list("placement_id", "day", "dimension", "value", "scans", "visitors",
                                              "first_scan", "last_scan"))


@pytest.mark.django_db
class TestAdd:
    def test_it_counts_scans_and_each_visitor_once_a_day_across_batches(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        store_events([event(poster, noon), event(poster, noon + timedelta(minutes=5)),
                      event(poster, noon, visitor="b" * 32)])
        store_events([event(poster, noon + timedelta(hours=2)),  # a visitor of an earlier batch
                      event(poster, noon + timedelta(days=1))])  # the same key the next day: a new visitor

        assert rows(poster) == {(date(2026, 3, 10), ""): (4, 2), (date(2026, 3, 11), ""): (1, 1)}
        total = ScanRollup.objects.get(placement=poster, dimension="", day=date(2026, 3, 10))
        assert (total.first_scan, total.last_scan) == (noon, noon + timedelta(hours=2))

    def test_it_leaves_out_bots_and_counts_a_stored_event_once(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        again = event(poster, noon)
        store_events([again, event(poster, noon, visitor="c" * 32, is_bot=True, device_class="bot")])
        store_events([again])  # delivered twice

        assert rows(poster) == {(date(2026, 3, 10), ""): (1, 1)}
        assert rows(poster, "device") == {(date(2026, 3, 10), "mobile"): (1, 1)}

    def test_it_counts_days_and_hours_in_the_team_time_zone(self, poster, team_users):
        team_users.team.time_zone = "America/New_York"
        team_users.team.save()
        late = datetime(2026, 3, 11, 3, 30, tzinfo=UTC)  # 23:30 on the 10th in New York

        store_events([event(poster, late)])

        assert rows(poster) == {(date(2026, 3, 10), ""): (1, 1)}
        assert rows(poster, "hour") == {(date(2026, 3, 10), "23"): (1, 0)}

    def test_it_counts_each_dimension_with_its_visitors(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        store_events([event(poster, noon), event(poster, noon, visitor="d" * 32, device_class="desktop", os="Windows",
                                                 browser="Firefox", country="", accept_language="de-DE")])

        day = date(2026, 3, 10)
        assert rows(poster, "device") == {(day, "mobile"): (1, 1), (day, "desktop"): (1, 1)}
        assert rows(poster, "country") == {(day, "FR"): (1, 1), (day, ""): (1, 1)}
        assert rows(poster, "language") == {(day, "fr"): (1, 1), (day, "de"): (1, 1)}
        assert rows(poster, "os") == {(day, "iOS"): (1, 1), (day, "Windows"): (1, 1)}

    def test_it_counts_the_rules_that_sent_scans_with_their_visitors(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        store_events([event(poster, noon, rule="ab:0"), event(poster, noon, visitor="b" * 32, rule="ab:1"),
                      event(poster, noon, visitor="c" * 32, rule="ios"), event(poster, noon, visitor="d" * 32),
                      event(poster, noon, visitor="e" * 32, rule="ab:1", is_bot=True)])
        # Later batches: a visitor of variant A again (not new), and one whose first scan of the day had no rule.
        store_events([event(poster, noon + timedelta(hours=1), rule="ab:0"),
                      event(poster, noon + timedelta(hours=1), visitor="d" * 32, rule="after_end")])

        day = date(2026, 3, 10)
        assert rows(poster, "rule") == {(day, "ab:0"): (2, 1), (day, "ab:1"): (1, 1), (day, "ios"): (1, 1),
                                        (day, "after_end"): (1, 0)}
        assert rows(poster) == {(day, ""): (6, 4)}  # no row for "": the main destination is the rest

    def test_it_counts_a_scan_without_a_visitor_key_as_its_own_visitor(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        store_events([event(poster, noon, visitor=""), event(poster, noon, visitor="")])

        assert rows(poster) == {(date(2026, 3, 10), ""): (2, 2)}


@pytest.mark.django_db
class TestRebuild:
    def test_it_rebuilds_exactly_what_the_drainer_counted(self, campaign, poster):
        flyer = Placement.objects.create(campaign=campaign, name="Flyer")
        start = datetime(2026, 3, 1, 8, tzinfo=UTC)
        for batch in range(4):
            store_events([event(place, start + timedelta(hours=7 * n + batch), visitor=f"{n % 5:032d}",
                                country=("FR", "DE")[n % 2], is_bot=n % 7 == 0,
                                rule=("", "ab:0", "ab:1", "ios", "after_end")[(n + batch) % 5])
                          for n in range(12) for place in (poster, flyer)])
        counted = all_rows()
        assert {row[2] for row in counted} >= {"rule"}  # the rules were counted, so their rebuild is compared

        done = rollups.rebuild(Placement.objects.all())

        assert all_rows() == counted
        assert (done.placements, done.scans) == (2, ScanEvent.objects.filter(is_bot=False).count())

    def test_it_recounts_days_in_a_new_time_zone(self, poster, team_users):
        store_events([event(poster, datetime(2026, 3, 11, 3, 30, tzinfo=UTC))])
        assert rows(poster) == {(date(2026, 3, 11), ""): (1, 1)}
        team_users.team.time_zone = "America/New_York"
        team_users.team.save()

        rollups.rebuild(Placement.objects.all())

        assert rows(poster) == {(date(2026, 3, 10), ""): (1, 1)}

    def test_it_keeps_the_days_whose_scans_are_gone(self, poster):
        store_events([event(poster, datetime(2026, 3, day, hour, tzinfo=UTC), visitor=f"{hour:032d}")
                      for day, hour in ((1, 12), (2, 10), (2, 16), (5, 12))])
        ScanEvent.objects.filter(time__lt=datetime(2026, 3, 2, 13, tzinfo=UTC)).delete()  # retention, mid-day
        ScanRollup.objects.filter(day=date(2026, 3, 5)).update(scans=99)  # wrong: to be recounted

        rollups.rebuild(Placement.objects.all())

        assert rows(poster) == {(date(2026, 3, 1), ""): (1, 1), (date(2026, 3, 2), ""): (2, 2),
                                (date(2026, 3, 5), ""): (1, 1)}

    def test_it_keeps_every_row_when_no_scan_is_left(self, poster):
        store_events([event(poster, datetime(2026, 3, 1, 12, tzinfo=UTC))])
        ScanEvent.objects.all().delete()

        rollups.rebuild(Placement.objects.all())

        assert rows(poster) == {(date(2026, 3, 1), ""): (1, 1)}


@pytest.mark.parametrize(("header", "language"), [
    ("fr-FR,fr;q=0.9,en;q=0.8", "fr"), ("EN_us", "en"), ("de", "de"), ("*", ""), ("", ""), ("i-klingon", ""),
    (" pt-BR ; q=1", "pt"), ("haw", "haw"), ("12-34", ""),
])
def test_it_reads_the_first_language(header, language):
    assert rollups.language_of(header) == language
