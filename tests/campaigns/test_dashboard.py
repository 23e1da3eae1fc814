"""What the dashboard pages show, shaped from the figures (`campaigns.dashboard`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from campaigns import dashboard, stats
from campaigns.drainer import store_events
from campaigns.models import Placement
from campaigns.scan_buffer import scan_event


def test_a_sparkline_spans_its_box_with_the_peak_at_the_top():
    points = dashboard.sparkline([0, 5, 10]).split()
    assert points == ["0.0,23.0", "50.0,12.0", "100.0,1.0"]
    assert dashboard.sparkline([7]) == "" and dashboard.sparkline([0, 0]) == "0.0,23.0 100.0,23.0"


def test_a_card_keeps_the_busiest_values_and_sums_the_rest():
    shares = [stats.Share(f"v{n}", f"V{n}", 20 - n, 1) for n in range(10)]
    rows = dashboard.card(shares)
    assert [row["label"] for row in rows] == [f"V{n}" for n in range(8)] + ["2 more"]
    assert rows[-1]["count"] == 12 + 11 and rows[-1]["width"] == 100  # widths relative to the largest bar


def test_a_country_card_hands_its_codes_to_the_browser_to_name():
    shares = [stats.Share(f"C{n}", f"C{n}", 20 - n, 1) for n in range(8)] + [stats.Share("", "Unknown", 3, 1),
                                                                               stats.Share("ZZ", "ZZ", 2, 1)]
    rows = dashboard.card(shares, regions=True)
    assert [row["region"] for row in rows] == [f"C{n}" for n in range(8)] + [""]  # "2 more" is no country
    assert "region" not in dashboard.card(shares)[0]


def test_the_picker_keeps_the_pages_other_parameters():
    days = stats.DateRange(date(2026, 3, 1), date(2026, 3, 3))
    picker = dashboard.picker(days, {"archived": "1"}, "nope")
    assert [p["query"] for p in picker["presets"]] == ["archived=1&range=7d", "archived=1&range=30d",
                                                       "archived=1&range=90d", "archived=1&range=lifetime"]
    assert not any(p["chosen"] for p in picker["presets"]) and picker["range_error"] == "nope"
    assert picker["range_query"] == "archived=1&range=custom&from=2026-03-01&to=2026-03-03"


def test_comparison_rows_give_scans_per_100_printed_busiest_first():
    poster, flyer = Placement(pk=1, name="Poster", printed_quantity=300), Placement(pk=2, name="Flyer")
    figures = {1: stats.PlacementFigures(scans=4, trend=[1, 3]), 2: stats.PlacementFigures(scans=9)}
    rows = dashboard.comparison([poster, flyer], figures, {1: "https://q/r/a", 2: "https://q/r/b"})
    assert [row.placement.name for row in rows] == ["Flyer", "Poster"]
    assert rows[1].per_hundred_printed == 1.3 and rows[0].per_hundred_printed is None and rows[1].spark


@pytest.mark.django_db
@pytest.mark.parametrize("asked", ["lifetime", "Lifetime", " LIFETIME ", "lifetime\t"])
def test_lifetime_starts_at_the_first_scan_however_it_is_written(team_users, campaign, asked):
    poster = Placement.objects.create(campaign=campaign, name="Poster")
    first = timezone.now() - timedelta(days=40)
    store_events([scan_event(poster.pk, first, visitor_key="a" * 32), scan_event(poster.pk, timezone.now())])

    days = dashboard.range_for(team_users.team, {"range": asked}, Placement.objects.all())

    assert (days.key, days.start, days.end) == ("lifetime", first.date(), timezone.now().date())  # a UTC team


def test_the_picker_keeps_the_dates_typed_when_they_could_not_be_read():
    days = stats.DateRange(date(2026, 11, 5), date(2026, 12, 4), "30d")
    assert (dashboard.picker(days)["range_from"], dashboard.picker(days)["range_to"]) == ("2026-11-05", "2026-12-04")

    wrong = dashboard.picker(days, {}, "The start date, from=2026-12-04, is after the end date, to=2026-11-01.",
                             typed={"from": "2026-12-04", "to": "2026-11-01"})

    assert (wrong["range_from"], wrong["range_to"]) == ("2026-12-04", "2026-11-01")


def test_the_picker_links_the_period_before_with_the_pages_other_parameters():
    days = stats.DateRange(date(2026, 3, 8), date(2026, 3, 14), "7d")
    assert days.previous() == stats.DateRange(date(2026, 3, 1), date(2026, 3, 7))
    assert dashboard.picker(days, {"archived": "1"})["previous_query"] == \
        "archived=1&range=custom&from=2026-03-01&to=2026-03-07"
    assert dashboard.picker(stats.DateRange(date(2026, 1, 1), date(2026, 3, 14), "lifetime"))["previous_query"] == ""


@pytest.mark.django_db
def test_the_scans_tile_compares_the_range_with_as_many_days_before(team_users, campaign):
    poster = Placement.objects.create(campaign=campaign, name="Poster")
    now = timezone.now()
    store_events([scan_event(poster.pk, now - timedelta(days=days), visitor_key=f"{days:032d}")
                  for days in (0, 1, 1, 8, 30)])  # 3 in the last 7 days, 1 in the 7 before, 1 long before
    scope = Placement.objects.filter(pk=poster.pk)
    week = dashboard.range_for(team_users.team, {"range": "7d"}, scope)

    previous = dashboard.previous_period(scope, week, 3)

    assert previous == {"range": week.previous(), "scans": 1, "change": "up 200 %", "basis": ""}  # whole days
    assert dashboard.previous_period(scope, week, 1)["change"] == "the same"
    assert dashboard.previous_period(scope, week, 0)["change"] == "down 100 %"
    before_any = stats.DateRange(week.start - timedelta(days=60), week.start - timedelta(days=40))
    assert dashboard.previous_period(scope, before_any, 0) == {"range": before_any.previous(), "scans": 0,
                                                               "change": "", "basis": ""}  # no % of nothing
    lifetime = dashboard.range_for(team_users.team, {"range": "lifetime"}, scope)
    assert dashboard.previous_period(scope, lifetime, 5) is None


def monday_mornings_scans(team, campaign) -> Placement:
    """A placement of `team` (in Berlin, UTC+1) scanned at 08:00 and 15:00 every day from Tuesday 17 to Sunday 29
    November 2026 and at 08:00 on Monday 30: the same two scans a day, the week before and this one."""
    team.time_zone = "Europe/Berlin"
    team.save()
    poster = Placement.objects.create(campaign=campaign, name="Poster")
    days = [datetime(2026, 11, 17, tzinfo=UTC) + timedelta(days=n) for n in range(14)]
    store_events([scan_event(poster.pk, day + timedelta(hours=hour), visitor_key=f"{n:030d}{hour:02d}")
                  for n, day in enumerate(days) for hour in (7, 14)][:-1])  # 08:00 and 15:00 in Berlin
    return poster


@pytest.mark.django_db
def test_a_range_ending_today_is_compared_with_the_period_before_to_the_same_hour(team_users, campaign, monkeypatch):
    # Monday at 09:30: the last 7 days held 6 days and 9 hours (13 scans) against 7 full days (14), "down 7 %" for
    # a week just like the one before. Both are counted to 09:00 on their last day now.
    poster = monday_mornings_scans(team_users.team, campaign)
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 11, 30, 8, 30, tzinfo=UTC))  # 09:30 in Berlin
    scope = Placement.objects.filter(pk=poster.pk)
    week = dashboard.range_for(team_users.team, {"range": "7d"}, scope)
    cards = dashboard.scan_cards(scope, week, team_users.team)

    assert cards["range_scans"] == 13  # the tile counts every scan so far
    assert cards["previous"] == {"range": week.previous(), "scans": 13, "change": "the same",
                                 "basis": "both to 09:00 on their last day (13 in this range by then)"}


@pytest.mark.django_db
def test_a_range_ending_today_seen_before_one_oclock_leaves_both_last_days_out(team_users, campaign, monkeypatch):
    poster = monday_mornings_scans(team_users.team, campaign)
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 11, 29, 23, 30, tzinfo=UTC))  # Monday 00:30
    scope = Placement.objects.filter(pk=poster.pk)
    week = dashboard.range_for(team_users.team, {"range": "7d"}, scope)

    previous = dashboard.scan_cards(scope, week, team_users.team)["previous"]

    assert (previous["scans"], previous["change"]) == (12, "the same")  # it said "down 14 %": 12 against 14
    assert previous["basis"] == "both without their last day (12 in this range before today)"
    # A range that ended before today has whole days: nothing to cut.
    days_before = stats.DateRange(date(2026, 11, 23), date(2026, 11, 29))
    assert dashboard.scan_cards(scope, days_before, team_users.team)["previous"]["basis"] == ""


def test_a_period_before_the_first_day_a_range_can_show_has_no_link_but_a_reason():
    # Its link led to "The start date, from=1999-12-27, ... must be in the years 2000 to 2999".
    days = stats.DateRange(date(2000, 1, 3), date(2000, 1, 9))
    picker = dashboard.picker(days)
    assert picker["previous_query"] == ""
    assert picker["previous_unlinked"] == "it starts before 1 Jan 2000, the earliest day a range can show"
    first = dashboard.picker(stats.DateRange(date(2000, 1, 8), date(2000, 1, 14)))  # its period before: 1-7 Jan
    assert first["previous_query"] == "range=custom&from=2000-01-01&to=2000-01-07" and not first["previous_unlinked"]
    with pytest.raises(stats.RangeError):
        stats.parse_range(days.previous().query(), date(2026, 12, 7), None)


def test_the_comparison_says_the_same_only_when_it_is(monkeypatch):
    monkeypatch.setattr(stats, "daily", lambda scope, days: SimpleNamespace(scans=[20_000, 239]))
    week = stats.DateRange(date(2026, 10, 1), date(2026, 10, 31))
    assert dashboard.previous_period(None, week, 20_277)["change"] == "up less than 1 %"  # it said "the same"
    assert dashboard.previous_period(None, week, 20_200)["change"] == "down less than 1 %"
    assert dashboard.previous_period(None, week, 20_239)["change"] == "the same"


def test_a_range_past_sixty_days_charts_scans_per_week_from_monday():
    # 274 days drew 274 bars into a phone's chart: a smear. Weeks, Monday to Sunday, each under its first day.
    days = stats.DateRange(date(2026, 3, 4), date(2026, 5, 6))  # a Wednesday to a Wednesday: 64 days
    daily = stats.Daily(days.days, [1] * days.length, [n % 2 for n in range(days.length)])
    chart = dashboard.daily_chart(daily, today=date(2026, 5, 6))
    assert chart["per"] == "week" and len(chart["labels"]) == 10
    assert chart["labels"][:2] == ["4 Mar", "9 Mar"] and chart["labels"][-1] == "4 May"
    scans = chart["datasets"][0]["data"]
    assert scans[0] == 5 and scans[1:-1] == [7] * 8 and scans[-1] == 3 and sum(scans) == days.length
    assert sum(chart["datasets"][1]["data"]) == sum(daily.visitors)
    assert chart["partial_last"]  # this week, today in it, is not over


def test_a_range_of_sixty_days_keeps_a_bar_a_day():
    days = stats.DateRange(date(2026, 3, 1), date(2026, 4, 29))
    chart = dashboard.daily_chart(stats.Daily(days.days, [1] * 60, [1] * 60), today=date(2026, 5, 6))
    assert chart["per"] == "day" and len(chart["labels"]) == 60 and not chart["partial_last"]


def test_the_lifetime_page_says_per_week_and_keeps_its_table_of_days(client, team_users, campaign):
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    store_events([scan_event(placement.pk, timezone.now() - timedelta(days=100), visitor_key="a" * 32)])
    client.force_login(team_users.viewer)
    html = client.get(f"/campaigns/{campaign.pk}/?range=lifetime").content.decode()
    assert "<h2>Scans per week</h2>" in html and "Bar chart of scans per week, " in html
    assert "data-weekly-note" in html and "this week's is the week so far" in html
    assert html.split("Daily totals as a table")[1].split("</tbody>")[0].count("<tr><td>") == 101
    html = client.get(f"/campaigns/{campaign.pk}/?range=30d").content.decode()
    assert "<h2>Scans per day</h2>" in html and "data-weekly-note" not in html


def test_a_custom_range_into_the_future_is_shown_to_today_and_the_page_says_so(client, team_users, campaign):
    today = stats.local_today(team_users.team)
    asked = {"range": "custom", "from": (today - timedelta(days=6)).isoformat(),
             "to": (today + timedelta(days=24)).isoformat()}
    client.force_login(team_users.viewer)
    response = client.get(f"/campaigns/{campaign.pk}/", asked)
    html = response.content.decode()
    assert response.status_code == 200 and response.context["range"].end == today
    assert (f'data-range-clamped>Shown up to today, {today:%-d %b %Y}: the days to '
            f'{today + timedelta(days=24):%-d %b %Y} are still to come.</p>') in html
    assert f'name="to" value="{today.isoformat()}"' in html
