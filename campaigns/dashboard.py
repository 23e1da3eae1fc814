"""What the dashboard pages show for a date range: the range picker, charts as Chart.js data, the placement comparison
table with its sparklines, and the breakdown cards. Figures come from `campaigns.stats`; this module only shapes them
for the templates (`templates/campaigns/_range.html`, `_scans.html`, `campaign_detail.html`, `campaign_list.html`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode

from django.core.paginator import Paginator

from campaigns import scan_backlog, stats
from campaigns.models import Placement
from qartsite.models import Team
from qartsite.numbers import whole

SPARK_WIDTH, SPARK_HEIGHT = 100, 24
CARD_ROWS = 8  # values per breakdown card; the rest are summed into "Other"
WEEKLY_PAST = 60  # days: a longer range's scans chart has a bar per week (`daily_chart`)


def bars(rows: Iterable[tuple[str, int]]) -> list[dict]:
    """Rows of (label, count) with each bar's width in percent of the largest."""
    rows = list(rows)
    largest = max((count for _, count in rows), default=0) or 1
    return [{"label": label, "count": count, "width": round(100 * count / largest)} for label, count in rows]


def day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def range_for(team: Team, params: Mapping, scope: stats.Scope) -> stats.DateRange:
    """The range asked for, in `team`'s days (stats.RangeError when it cannot be read)."""
    return stats.parse_range(params, stats.local_today(team), stats.first_scan_day(scope)
                             if stats.range_key(params) == "lifetime" else None)


def picker(days: stats.DateRange, kept: Mapping[str, str] | None = None, error: str = "",
           typed: Mapping[str, str] | None = None) -> dict:
    """The range picker's context: the presets as query strings (with `kept`, the page's other parameters), the
    custom form's values (as `typed` when the range asked could not be read: the person corrects them rather than
    types them again), and the reason it could not be read, if so."""
    kept = dict(kept or {})
    typed = typed or {}
    presets = [{"label": f"{count} days", "query": urlencode({**kept, "range": key}), "chosen": key == days.key}
               for key, count in stats.PRESETS.items()]
    presets.append({"label": "Lifetime", "query": urlencode({**kept, "range": "lifetime"}),
                    "chosen": days.key == "lifetime"})
    # The period before, which the scans tile compares with (`previous_period`), one click away; the lifetime has none.
    # One that starts before any range can (stats.FIRST_DAY) has no link: it led to the picker's refusal.
    previous, unlinked = "", ""
    if days.key != "lifetime" and days.previous().start < stats.FIRST_DAY:
        unlinked = f"it starts before {stats.FIRST_DAY:%-d %b %Y}, the earliest day a range can show"
    elif days.key != "lifetime":
        previous = urlencode({**kept, **days.previous().query()})
    return {"presets": presets, "range": days, "range_query": urlencode({**kept, **days.query()}),
            "previous_query": previous, "previous_unlinked": unlinked,
            "range_kept": kept, "range_error": error,
            "range_from": str(typed.get("from") or days.start.isoformat())[:10],
            "range_to": str(typed.get("to") or days.end.isoformat())[:10]}


def daily_chart(daily: stats.Daily, today: date) -> dict:
    """Chart.js bar data: scans per day with unique visitors as a line, or per week past WEEKLY_PAST days; the bar
    that holds today, a day (or week) not over, marked.

    Args:
        daily: the range's figures, one per day (`stats.daily`).
        today: the team's local date.

    Returns:
        `labels`, `datasets`, `partial_last` and `per` ("day" or "week", for the chart's heading and notes).
    """
    # 274 days drew 274 bars into a phone's 300 px, a smear of hairlines; weeks, as the placements' trends switch
    # to past 31 days. The table under the chart, the CSV and the API keep days.
    per = "week" if len(daily.days) > WEEKLY_PAST else "day"
    shown = stats.weekly(daily) if per == "week" else daily
    return {
        "labels": [day_label(day) for day in shown.days],
        "datasets": [{"label": "Scans", "data": shown.scans, "type": "bar"},
                     {"label": "Unique visitors", "data": shown.visitors, "type": "line"}],
        # A range ending today: its last bar (today, or this week, today in it) is not over.
        "partial_last": bool(daily.days) and daily.days[-1] == today,
        "per": per,
    }


def pattern_charts(scope: stats.Scope, days: stats.DateRange) -> dict:
    return {
        "hours_chart": {"labels": [f"{hour:02d}" for hour in range(24)],
                        "datasets": [{"label": "Scans", "data": stats.hours(scope, days), "type": "bar"}]},
        "weekdays_chart": {"labels": list(stats.WEEKDAYS),
                           "datasets": [{"label": "Scans", "data": stats.weekdays(scope, days), "type": "bar"}]},
    }


def card(shares: list[stats.Share], regions: bool = False) -> list[dict]:
    """A breakdown card's bars: the busiest CARD_ROWS values, the rest summed as "N more".

    Args:
        shares: the breakdown, most scans first (`stats.breakdown`).
        regions: the values are ISO 3166 country codes: each known one's row also carries it as `region`, which
            `_bars.html` hands to the browser to name (no country-name list ships with the site's packages; the
            browser's `Intl.DisplayNames` has CLDR's, kept up to date with it). Without script the code shows.

    Returns:
        The rows of `bars`, and `region` ("" when not a country) on each when `regions`.
    """
    shown = shares[:CARD_ROWS]
    rest = sum(share.scans for share in shares[CARD_ROWS:])
    rows = bars([(share.label, share.scans) for share in shown]
                + ([(f"{len(shares) - CARD_ROWS} more", rest)] if rest else []))
    if regions:
        for row, share in zip(rows, shown + [None], strict=False):  # the summed rest is no country
            row["region"] = share.value if share else ""
    return rows


def rule_rows(scope: stats.Scope, days: stats.DateRange, shared: bool = False) -> list[dict]:
    """The "Destination rules" card's rows (none when no rule sent a scan in `days`): each rule in words with its
    scans, unique visitors and, for an A/B variant, its share of the split ("" otherwise) and its address ("" when
    unnamed). A shared report numbers
    the A/B destinations rather than showing their addresses."""
    return [{"label": share.label, "url": share.url, "count": share.scans, "visitors": share.visitors,
             "split_share": "" if share.split_share is None else f"{share.split_share:g}%"}
            for share in stats.rule_breakdown(scope, days, named=not shared)]


def recount_note(team: Team) -> str:
    """One line while a change of `team`'s time zone is being recounted ("" otherwise): every figure keeps the old
    zone's days until the recount commits, and says so rather than show either zone's days over the other's
    counts."""
    if not team.recounting:
        return ""
    return (f"The figures are being recounted in {team.time_zone}, the team's new time zone; until that is done "
            f"(usually within a few minutes) they count the days of {team.counted_time_zone}.")


def scan_cards(scope: stats.Scope, days: stats.DateRange, team: Team, shared: bool = False) -> dict:
    """Everything `_scans.html` shows for `scope` in `days`; `shared`: for a report shared outside the team
    (aggregates only: no destination addresses)."""
    daily = stats.daily(scope, days)
    return {
        "chart": daily_chart(daily, stats.local_today(team)),
        "daily": list(zip(daily.days, daily.scans, daily.visitors, strict=True)),
        "range_scans": sum(daily.scans),
        "range_visitors": sum(daily.visitors),
        "devices": card(stats.breakdown(scope, stats.Dimension.DEVICE, days)),
        "systems": card(stats.breakdown(scope, stats.Dimension.OS, days)),
        "browsers": card(stats.breakdown(scope, stats.Dimension.BROWSER, days)),
        "countries": card(stats.breakdown(scope, stats.Dimension.COUNTRY, days), regions=True),
        "languages": card(stats.breakdown(scope, stats.Dimension.LANGUAGE, days)),
        "rule_rows": rule_rows(scope, days, shared),
        "previous": previous_period(scope, days, sum(daily.scans), stats.local_now(team)),
        "time_zone": team.counted_time_zone,
        "recount_note": recount_note(team),
        "scans_counted": stats.SCANS_COUNTED,
        "scans_explained": stats.SCANS_EXPLAINED,
        "unique_counted": stats.UNIQUE_COUNTED,
        "unique_explained": stats.UNIQUE_EXPLAINED,
        **pattern_charts(scope, days),
    }


def previous_period(scope: stats.Scope, days: stats.DateRange, scans: int, now: datetime | None = None) -> dict | None:
    """The scans tile's comparison: `scope`'s scans in the period before `days` (as many days, `DateRange.previous`)
    and how the range's own changed from them. A marketer asking "is this month better than the last?" had to open
    the two ranges and compare the numbers by hand.

    A range that ends today holds the day so far: "last 7 days" seen at 09:00 held 6 days and 9 hours against 7 full
    days, and read "down 13 %" every Monday morning. Such a range is compared like with like: both periods up to the
    hour begun now on their last day (the rollups count hours, not minutes: `stats.scans_to_hour`).

    Args:
        scope: what is counted (a campaign, a team's campaigns, a placement).
        days: the range shown.
        scans: its scans (all of them: the tile's figure).
        now: the present in the team's counted zone (`stats.local_now`); None compares whole days.

    Returns:
        `range` (the period before), `scans` there, `change` in words ("up 12 %", "down less than 1 %", "the same";
        empty when there were none before: no percentage of nothing) and `basis`, what was compared when not the
        whole days, in words ("" when it was); None for the lifetime, which has no period before.
    """
    if days.key == "lifetime":
        return None
    before = days.previous()
    basis = ""
    if now is not None and days.end == now.date():
        earlier, scans = stats.scans_to_hour(scope, before, now.hour), stats.scans_to_hour(scope, days, now.hour)
        # The range's own figure compared is shown too: the tile's counts the hour begun, which the comparison cannot.
        basis = (f"both to {now.hour:02d}:00 on their last day ({scans:,} in this range by then)" if now.hour else
                 f"both without their last day ({scans:,} in this range before today)")
    else:
        earlier = sum(stats.daily(scope, before).scans)
    change = ""
    if earlier:
        percent = round(abs(scans - earlier) * 100 / earlier)
        # "the same" only when it is: 20,277 against 20,239 said so, under 0.5 % apart.
        size = f"{percent} %" if percent else "less than 1 %"
        change = "the same" if scans == earlier else f"up {size}" if scans > earlier else f"down {size}"
    return {"range": before, "scans": earlier, "change": change, "basis": basis}


def never_scanned(scans_ever: int, backlog: scan_backlog.Backlog) -> bool:
    """No scan stored (`scans_ever`, `stats.scans_ever`) and none waiting to be stored: the campaign list's overview,
    the campaign and placement pages then say what to do next in one line (a shared report, whose reader can do
    nothing about it, only that none came yet) and draw no charts (three empty ones said nothing). Whether anything
    was ever scanned, not the range shown: a quiet range keeps its charts. A scan waiting in `backlog` is about to be
    counted: its charts stay."""
    return not scans_ever and not backlog.waiting


def sparkline(values: list[int]) -> str:
    """SVG polyline points for `values` in a SPARK_WIDTH x SPARK_HEIGHT box ('' for fewer than two values)."""
    if len(values) < 2:
        return ""
    top = max(values) or 1
    step = SPARK_WIDTH / (len(values) - 1)
    return " ".join(f"{n * step:.1f},{SPARK_HEIGHT - 1 - (SPARK_HEIGHT - 2) * value / top:.1f}"
                    for n, value in enumerate(values))


@dataclass
class ComparisonRow:
    placement: Placement
    short_url: str
    figures: stats.PlacementFigures

    @property
    def link_root(self) -> str:
        """The short link up to its slug, which the table shows apart so that it never splits over two lines. Cut off
        at the end only: the template's `cut` took the slug's letters wherever they were, the host's included."""
        return self.short_url.removesuffix(self.placement.slug)

    @property
    def spark(self) -> str:
        return sparkline(self.figures.trend)

    @property
    def per_hundred_printed(self) -> float | None:
        """Scans per 100 printed copies, when the printed quantity is known."""
        quantity = self.placement.printed_quantity
        return round(100 * self.figures.scans / quantity, 1) if quantity else None


# Placements one page of a comparison table shows, most scanned first: a campaign of three whole imports drew 3,000
# rows (4-5 MB of HTML, 2-4 s to render). And the charts come after the table: at 100 rows a campaign of 70
# placements put its scans-per-day chart 8,000 px down the page (20,000 px on a phone, a card per placement).
COMPARISON_PAGE = 25
# Open alerts a campaign page lists; each placement's page shows its own.
ALERTS_SHOWN = 20


def matching(rows: list[ComparisonRow], asked: str) -> list[ComparisonRow]:
    """The comparison `rows` whose placement's name or location holds `asked`, in any case; all of them when it is
    empty."""
    wanted = asked.strip().casefold()
    if not wanted:
        return rows
    return [row for row in rows
            if wanted in row.placement.name.casefold() or wanted in row.placement.location.casefold()]


def comparison_page(rows: list, number: object) -> dict:
    """One page of a comparison table's `rows` (`?page=`, read leniently: a bad number, or one past 64 bits, shows
    the first page; one past the end the last) and what its links need: `rows_page` (None when one page holds them
    all) and `rows_total`."""
    # Read as `qartsite.numbers.whole` reads it: Django's `int()` showed page 2 for "２" (full width) and "1_0" as
    # page 10, and the last page for "0" and "-1".
    asked = whole(number)
    page = Paginator(rows, COMPARISON_PAGE).get_page(asked if asked else 1)
    return {"rows": list(page.object_list), "rows_page": page if page.paginator.num_pages > 1 else None,
            "rows_total": len(rows)}


def comparison(placements: list[Placement], figures: Mapping[int, stats.PlacementFigures],
               urls: Mapping[int, str]) -> list[ComparisonRow]:
    """The placement comparison table's rows, most scans first (their sparklines drawn from `figures`' trends: give
    them with `stats.add_trends` for the rows a page shows)."""
    rows = [ComparisonRow(p, urls[p.pk], figures.get(p.pk) or stats.PlacementFigures()) for p in placements]
    return sorted(rows, key=lambda row: (-row.figures.scans, row.placement.name))
