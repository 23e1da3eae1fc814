"""Dashboard figures (`campaigns.stats`): date ranges, and sums over the daily rollups."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from campaigns import history, rules, stats
from campaigns.drainer import store_events
from campaigns.models import Campaign, Placement
from campaigns.scan_buffer import scan_event

UTC = UTC
TODAY = date(2026, 3, 20)  # a Friday


@pytest.fixture
def poster(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Poster", printed_quantity=1000)


@pytest.fixture
def flyer(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Flyer")


def scan(placement: Placement, when: datetime, visitor: str = "v" * 32, **fields) -> dict:
    made = {"browser": "Chrome Mobile", "os": "Android", "device_class": "mobile", "referer": "", "country": "DE",
            "accept_language": "de-DE", "is_bot": False, "visitor_key": visitor}
    return scan_event(placement.pk, when, **{**made, **fields})


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture(params=["placements", "campaigns", "team"])
def everything(request, team_users):
    """Every placement (all in the team's campaigns), as placements, as their whole campaigns (read from the
    campaigns' own rows) or as their team's (from the team's): the figures must not depend on which."""
    if request.param == "team":
        return stats.TeamCampaigns.of(team_users.team)
    return Placement.objects.all() if request.param == "placements" else stats.Campaigns(Campaign.objects.all())


class TestParseRange:
    def test_it_reads_the_presets_ending_today(self):
        assert stats.parse_range({"range": "7d"}, TODAY, None) == stats.DateRange(date(2026, 3, 14), TODAY, "7d")
        assert stats.parse_range({}, TODAY, None).length == 30
        assert stats.parse_range({"range": "90D"}, TODAY, None).start == TODAY - timedelta(days=89)

    def test_lifetime_starts_at_the_first_scan(self):
        assert stats.parse_range({"range": "lifetime"}, TODAY, date(2025, 1, 2)).start == date(2025, 1, 2)
        assert stats.parse_range({"range": "lifetime"}, TODAY, None) == stats.DateRange(TODAY, TODAY, "lifetime")

    def test_from_and_to_make_a_custom_range(self):
        days = stats.parse_range({"from": "2026-03-01", "to": "2026-03-03"}, TODAY, None)
        assert days == stats.DateRange(date(2026, 3, 1), date(2026, 3, 3), "custom")
        assert days.query() == {"range": "custom", "from": "2026-03-01", "to": "2026-03-03"}
        assert days.label == "1 Mar 2026 – 3 Mar 2026"
        assert days.name == "Custom range"  # the picker's fields show its days

    def test_a_custom_range_into_the_future_ends_today_and_keeps_the_day_asked(self):
        # "1-31 March" asked on the 20th was accepted as it was: eleven empty days read as scans stopping.
        days = stats.parse_range({"from": "2026-03-01", "to": "2026-03-31"}, TODAY, None)
        assert days == stats.DateRange(date(2026, 3, 1), TODAY, "custom", asked_end=date(2026, 3, 31))
        assert days.length == 20 and days.query()["to"] == "2026-03-20"
        assert stats.parse_range({"from": "2026-03-01", "to": "2026-03-20"}, TODAY, None).asked_end is None

    def test_a_ranges_name_leaves_its_days_to_the_date_fields(self):
        assert stats.parse_range({"range": "7d"}, TODAY, None).name == "Last 7 days"
        lifetime = stats.parse_range({"range": "lifetime"}, TODAY, date(2025, 1, 2))
        assert lifetime.name == "Lifetime" and lifetime.label == f"Lifetime (2 Jan 2025 – {TODAY:%-d %b %Y})"

    @pytest.mark.parametrize(("params", "message"), [
        ({"range": "1y"}, "range must be one of 7d, 30d, 90d, lifetime, custom; got “1y”."),
        ({"range": "custom", "to": "2026-03-01"}, "A custom range needs a start date (from) and an end date (to), as "
                                                  "dates like 2026-03-01; the start date is missing."),
        ({"from": "yesterday", "to": "2026-03-01"}, "The start date, from=“yesterday”, is not a date like 2026-03-01."),
        # ISO 8601's other forms, which date.fromisoformat read as 1 and 3 March: no page offers them
        ({"from": "20260301", "to": "2026-03-03"}, "The start date, from=“20260301”, is not a date like 2026-03-01."),
        ({"from": "2026-03-01", "to": "2026-W10-2"}, "The end date, to=“2026-W10-2”, is not a date like 2026-03-01."),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "The start date, from=2026-03-02, is after the end date, "
                                                     "to=2026-03-01."),
        ({"from": "1999-12-31", "to": "2000-01-01"}, "The start date, from=1999-12-31, must be in the years 2000 to "
                                                     "2999."),
        ({"from": "2000-01-01", "to": "3000-01-01"}, "The end date, to=3000-01-01, must be in the years 2000 to 2999."),
        ({"from": "2000-01-01", "to": "2026-03-01"}, "A range covers at most 3660 days (ten years)."),
        ({"from": "2026-03-21", "to": "2026-03-31"}, "The start date, from=2026-03-21, is after today (20 Mar 2026): "
                                                     "no scans yet."),
    ])
    def test_it_refuses_what_it_cannot_read_with_one_sentence(self, params, message):
        with pytest.raises(stats.RangeError) as refused:
            stats.parse_range(params, TODAY, None)
        assert str(refused.value) == message


@pytest.mark.django_db
class TestFigures:
    def test_it_sums_a_range_per_placement_with_first_last_and_trend(self, poster, flyer):
        store_events([scan(poster, at(TODAY - timedelta(days=2), 9)), scan(poster, at(TODAY, 18)),
                      scan(poster, at(TODAY, 19)), scan(poster, at(TODAY - timedelta(days=40))),
                      scan(poster, at(TODAY), visitor="bot", is_bot=True, device_class="bot")])
        days = stats.DateRange(TODAY - timedelta(days=6), TODAY)

        figures = stats.placement_figures(Placement.objects.all(), days)

        assert (figures[poster.pk].scans, figures[poster.pk].visitors) == (3, 2)
        assert (figures[poster.pk].first_scan, figures[poster.pk].last_scan) == (
            at(TODAY - timedelta(days=2), 9), at(TODAY, 19))
        assert figures[poster.pk].trend == [0, 0, 0, 0, 1, 0, 2]
        assert figures[flyer.pk] == stats.PlacementFigures(trend=[0] * 7)

    def test_trends_can_be_read_for_the_placements_a_page_shows_only(self, poster, flyer):
        store_events([scan(poster, at(TODAY)), scan(flyer, at(TODAY - timedelta(days=1)), visitor="x" * 32)])
        days = stats.DateRange(TODAY - timedelta(days=2), TODAY)

        figures = stats.placement_figures(Placement.objects.all(), days, trends=False)
        assert (figures[poster.pk].scans, figures[poster.pk].trend) == (1, [])
        stats.add_trends(figures, Placement.objects.filter(pk=flyer.pk), days)

        assert (figures[flyer.pk].trend, figures[poster.pk].trend) == ([0, 1, 0], [])

    def test_long_ranges_trend_by_week(self, poster):
        store_events([scan(poster, at(date(2026, 1, 5))), scan(poster, at(date(2026, 1, 11))),
                      scan(poster, at(date(2026, 2, 2)))])
        days = stats.DateRange(date(2026, 1, 1), date(2026, 2, 4))

        figures = stats.placement_figures(Placement.objects.all(), days)

        assert stats.trend_buckets(days)[0] == date(2025, 12, 29)  # the Monday of the first week
        assert figures[poster.pk].trend == [0, 2, 0, 0, 0, 1]

    def test_it_gives_days_hours_weekdays_and_breakdowns(self, poster, flyer, everything):
        store_events([scan(poster, at(TODAY, 8)), scan(poster, at(TODAY, 8), visitor="w" * 32, country="",
                                                         device_class="tablet", accept_language="fr"),
                      scan(flyer, at(TODAY - timedelta(days=1), 23), accept_language="")])
        placements, days = everything, stats.DateRange(TODAY - timedelta(days=2), TODAY)

        daily = stats.daily(placements, days)
        assert (daily.scans, daily.visitors) == ([0, 1, 2], [0, 1, 2])
        assert stats.hours(placements, days)[8] == 2 and stats.hours(placements, days)[23] == 1
        assert stats.weekdays(placements, days) == [0, 0, 0, 1, 2, 0, 0]  # Thursday and Friday
        assert [(s.label, s.scans) for s in stats.breakdown(placements, stats.Dimension.DEVICE, days)] == [
            ("Mobile", 2), ("Tablet", 1)]
        assert [(s.label, s.scans) for s in stats.breakdown(placements, stats.Dimension.COUNTRY, days)] == [
            ("DE", 2), ("Unknown", 1)]  # unknown last, whatever its count
        assert [(s.label, s.scans) for s in stats.breakdown(placements, stats.Dimension.LANGUAGE, days)] == [
            ("German", 1), ("French", 1), ("Unknown", 1)]
        with pytest.raises(ValueError):
            stats.breakdown(placements, "visitor_key", days)

    def test_it_gives_each_rule_in_words_with_the_split_shares_and_the_rest(self, poster, flyer, everything):
        visitors = iter(f"{n:032d}" for n in range(100))
        store_events([scan(poster, at(TODAY), next(visitors), rule="ab:0") for _ in range(3)]
                     + [scan(flyer, at(TODAY), next(visitors), rule="ab:1")]
                     + [scan(poster, at(TODAY), next(visitors), rule="ios"),
                        scan(poster, at(TODAY), next(visitors), rule="after_end"),
                        scan(poster, at(TODAY), next(visitors)), scan(flyer, at(TODAY), next(visitors)),
                        scan(poster, at(TODAY - timedelta(days=10)), next(visitors), rule="before_start"),
                        scan(poster, at(TODAY - timedelta(days=1)), next(visitors))])
        placements = everything

        shares = stats.rule_breakdown(placements, stats.DateRange(TODAY - timedelta(days=2), TODAY))

        assert [(s.value, s.label, s.scans, s.visitors, s.split_share) for s in shares] == [
            ("after_end", "After the end date", 1, 1, None),
            ("ios", "iPhone (iOS) destination", 1, 1, None),
            ("ab:0", "A/B variant A", 3, 3, 75.0),
            ("ab:1", "A/B variant B", 1, 1, 25.0),
            ("", "Main destination (no rule)", 3, 3, None),  # two today, one yesterday
        ]
        yesterday = TODAY - timedelta(days=1)
        assert stats.rule_breakdown(placements, stats.DateRange(yesterday, yesterday)) == []  # scans, no rule

    def test_it_names_each_ab_variant_by_its_destination_through_edits_and_across_placements(self, poster, flyer):
        a, b, c = "https://shop.example.com/a", "https://shop.example.com/b", "https://shop.example.com/c"
        poster.rules = {"split": [{"url": a, "weight": 1}, {"url": b, "weight": 1}]}
        poster.save()
        flyer.rules = {"split": [{"url": b, "weight": 1}, {"url": a, "weight": 1}]}  # the same two, swapped
        flyer.save()
        visitors = iter(f"{n:032d}" for n in range(100))
        va, vb, vc = (rules.variant_rule(url) for url in (a, b, c))
        store_events([scan(poster, at(TODAY), next(visitors), rule=va) for _ in range(2)]
                     + [scan(flyer, at(TODAY), next(visitors), rule=va),
                        scan(flyer, at(TODAY), next(visitors), rule=vb),
                        scan(poster, at(TODAY), next(visitors), rule=vc), scan(poster, at(TODAY), next(visitors))])
        days = stats.DateRange(TODAY, TODAY)

        shares = [(s.value, s.label, s.scans, s.split_share, s.url)
                  for s in stats.rule_breakdown(Placement.objects.all(), days)]
        assert shares == [(va, f"A/B: {a}", 3, 60.0, a),  # the poster's first and the flyer's second: one destination
                          (vc, "A/B: a destination no longer in any split", 1, 20.0, ""),  # ties: by label
                          (vb, f"A/B: {b}", 1, 20.0, b), ("", "Main destination (no rule)", 1, None, "")]
        shared = stats.rule_breakdown(Placement.objects.all(), days, named=False)  # outside the team: no addresses
        assert [(s.label, s.scans, s.url) for s in shared] == [
            ("A/B destination 1", 3, ""), ("A/B destination 2", 1, ""), ("A/B destination 3", 1, ""),
            ("Main destination (no rule)", 1, "")]
        for split in ([c, a], [a, b]):  # c was the poster's for a while: its destination history still names it
            with history.recorded(poster, None):
                poster.rules = {"split": [{"url": url, "weight": 1} for url in split]}
                poster.save()
        assert f"A/B: {c}" in [s.label for s in stats.rule_breakdown(Placement.objects.all(), days)]
        assert f"A/B: {c}" in [s.label for s in stats.rule_breakdown(stats.Campaigns(Campaign.objects.all()), days)]

    def test_it_sums_campaigns_in_a_range_or_ever(self, team_users, campaign, poster, flyer):
        empty = Campaign.objects.create(team=team_users.team, name="Empty", destination="https://example.com/")
        store_events([scan(poster, at(TODAY)), scan(flyer, at(TODAY), visitor="x" * 32),
                      scan(flyer, at(TODAY - timedelta(days=60)))])

        week = stats.campaign_figures(Campaign.objects.all(), stats.DateRange(TODAY - timedelta(days=6), TODAY))
        ever = stats.campaign_figures(Campaign.objects.all(), None)

        assert week == {campaign.pk: stats.CampaignFigures(2, 2, 2), empty.pk: stats.CampaignFigures(0, 0, 0)}
        assert ever[campaign.pk] == stats.CampaignFigures(2, 3, 3)
        assert stats.first_scan_day(Placement.objects.all()) == TODAY - timedelta(days=60)
        assert stats.first_scan_day(stats.Campaigns(Campaign.objects.all())) == TODAY - timedelta(days=60)
        assert stats.scans_ever(stats.Campaigns.one(empty)) == 0
        assert stats.scans_ever(Placement.objects.filter(pk=flyer.pk)) == 2
