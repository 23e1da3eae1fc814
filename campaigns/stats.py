"""Dashboard figures for a date range, summed in the database from the daily rollups (`ScanRollup`).

Every figure is people only: bots (link previews, crawlers) are never counted into the rollups. Days are those of
the zone the team's rollups were counted in (`Team.counted_time_zone`: its time zone, or the old one while a change
of zone is recounted): a range is a span of its local days, both ends included.
Queries are grouped in the database and return O(placements), O(days) or O(values) rows, never one per scan; the
pages and the API ask for the same functions, so they always agree.

What a figure counts (a `Scope`) is some placements, or whole campaigns (`Campaigns`): every placement of them,
whose figures are read from the campaigns' own daily rows (`CampaignRollup`), which add up to the placements' rows,
so a campaign's lifetime reads hundreds of rows rather than one per placement and day; or all of a team's campaigns
(`TeamCampaigns`), read from the team's own rows (`TeamRollup`, its campaigns' rows added up).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, F, Func, IntegerField, Max, Min, Q, QuerySet, Sum, Value
from django.db.models.functions import ExtractIsoWeekDay
from django.utils import timezone

from campaigns import rules
from campaigns.models import Campaign, CampaignRollup, DestinationChange, Placement, ScanRollup, TeamRollup
from qartsite.models import Team
from qartsite.numbers import plain_date

Dimension = ScanRollup.Dimension
PRESETS = {"7d": 7, "30d": 30, "90d": 90}
DEFAULT_RANGE = "30d"
RANGE_KEYS = (*PRESETS, "lifetime", "custom")
MAX_DAYS = 3660  # ten years: a custom range longer than this is a typing mistake
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)  # the days a custom range may start and end on
BREAKDOWNS = (Dimension.DEVICE, Dimension.OS, Dimension.BROWSER, Dimension.COUNTRY, Dimension.LANGUAGE)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# How unique visitors are counted, in the words every page, the shared report and the API's schema use: a visitor
# is de-duplicated per placement and local day (the visitor key changes daily, as Bitly and Dub count per link), and
# a campaign's or a range's figure is the sum of those, so one person who scans two placements counts twice.
UNIQUE_COUNTED = "counted once a day per placement"
UNIQUE_COUNTED_ONE = "counted once a day"  # on one placement's page
UNIQUE_EXPLAINED_ONE = "Someone who scans this code on two days counts twice."
UNIQUE_EXPLAINED = ("Each person is counted once a day on each placement they scan, and these counts are added "
                    "up: someone who scans two placements, or on two days, counts more than once.")
# What a scan figure counts, in the words every page, the shared report and the API's schema use. A browser's
# prefetch and a page that loads the link as an image or frame are stored as bots (`redirects.visit_of`), so the
# rollups leave them out with the link previews; repeat scans (`repeats.py`) are people's and counted, as link
# products count every click: they are only flagged, in the CSV export and the webhooks. The pages said "people only
# (link previews and bots left out)" and nothing of repeats, which a reader of the export's is_repeat column took for
# left out too. Short enough for two lines on a phone beside a chosen range (tests/e2e/test_phone_layout.py): "(link
# previews, bots and pages that embed the link left out; repeat scans counted)" made the chart's head three lines of
# small print; what is left out is the title's (and the API's description's), "people only" says it in two words.
SCANS_COUNTED = "people only, repeat scans counted"
SCANS_EXPLAINED = ("Link previews, bots and pages that load the link as an image or frame are left out. A repeat scan "
                   "is one of more than 10 in a minute by one person of one code: counted, and marked in the CSV "
                   "export (is_repeat).")
# Device classes as `campaigns.links.describe_agent` stores them, as people read them.
DEVICE_NAMES = {"mobile": "Mobile", "tablet": "Tablet", "desktop": "Desktop", "other": "Other", "bot": "Bot"}


class RangeError(ValueError):
    """A date range that cannot be read; the message says what to send instead. The range picker shows it to a marketer
    and the API answers it to an integrator: it says the dates in plain words and names the query parameter (from, to)
    with what it held."""


@dataclass(frozen=True)
class DateRange:
    """Local days from `start` to `end`, both included; `key` is the preset it came from (or "custom")."""

    start: date
    end: date
    key: str = "custom"
    asked_end: date | None = None  # a custom range asked to end after today: the day asked (`end` is today)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @property
    def length(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def name(self) -> str:
        """What the range picker says under its date fields: the preset's name, not the days (the fields show them,
        in the browser's own format; the house format beside it showed every date twice, two ways)."""
        if self.key in PRESETS:
            return f"Last {PRESETS[self.key]} days"
        return "Lifetime" if self.key == "lifetime" else "Custom range"

    @property
    def label(self) -> str:
        """The range with its days in the house format, for the cards under the picker, which have no date fields."""
        if self.key in PRESETS:
            return self.name
        span = f"{self.start:%-d %b %Y} – {self.end:%-d %b %Y}"
        return f"Lifetime ({span})" if self.key == "lifetime" else span

    def previous(self) -> DateRange:
        """The period to compare this one with: as many days, ending the day before this range starts."""
        return DateRange(self.start - timedelta(days=self.length), self.start - timedelta(days=1))

    def query(self) -> dict[str, str]:
        """The query parameters that ask for this range again."""
        if self.key == "custom":
            return {"range": "custom", "from": self.start.isoformat(), "to": self.end.isoformat()}
        return {"range": self.key}


def local_now(team: Team, now: datetime | None = None) -> datetime:
    """`now` (the present when None) in the zone `team`'s figures are counted in (`Team.counted_zone`)."""
    return (now or timezone.now()).astimezone(team.counted_zone)


def local_today(team: Team, now: datetime | None = None) -> date:
    return local_now(team, now).date()


def parse_range(params: Mapping[str, Any], today: date, first_day: date | None) -> DateRange:
    """The range a page or API call asks for: `range` (7d, 30d, 90d, lifetime, custom; default 30d) and, for a
    custom range, `from` and `to` (YYYY-MM-DD, both included). `from`/`to` without `range` mean custom; a custom
    range that ends after `today` ends today (its `asked_end` says the day asked).

    Args:
        params: the query parameters.
        today: the team's local date.
        first_day: the first day with scans (lifetime starts there); None when there are none.

    Raises:
        RangeError: with one sentence saying what is wrong.
    """
    key = range_key(params)
    if key in PRESETS:
        return DateRange(today - timedelta(days=PRESETS[key] - 1), today, key)
    if key == "lifetime":
        start = min(first_day or today, today)
        return DateRange(start, today, key)
    if key != "custom":
        raise RangeError(f"range must be one of {', '.join(RANGE_KEYS)}; got “{str(params.get('range'))[:40]}”.")
    start, end = parse_day(params, "from"), parse_day(params, "to")
    if end < start:
        raise RangeError(f"The start date, from={start}, is after the end date, to={end}.")
    if start > today:
        raise RangeError(f"The start date, from={start}, is after today ({today:%-d %b %Y}): no scans yet.")
    if (min(end, today) - start).days + 1 > MAX_DAYS:
        raise RangeError(f"A range covers at most {MAX_DAYS} days (ten years).")
    if end > today:
        # "1-31 Dec" asked on the 7th: the days to come have no scans, and 24 empty bars read as scans stopping.
        # Shown up to today, and the page says so (`asked_end`).
        return DateRange(start, today, "custom", asked_end=end)
    return DateRange(start, end, "custom")


def range_key(params: Mapping[str, Any]) -> str:
    """The range `params` ask for as `parse_range` reads it (any case, spaces around it; not checked): callers that
    must know it before parsing (lifetime needs the first scan day) ask here, so "Lifetime" is lifetime too."""
    key = str(params.get("range") or "").strip().lower()
    if not key:
        key = "custom" if params.get("from") or params.get("to") else DEFAULT_RANGE
    return key


def parse_day(params: Mapping[str, Any], name: str) -> date:
    words = "start date" if name == "from" else "end date"
    raw = str(params.get(name) or "").strip()
    if not raw:
        raise RangeError(f"A custom range needs a start date (from) and an end date (to), as dates like 2026-03-01; "
                         f"the {words} is missing.")
    day = plain_date(raw)
    if day is None:
        raise RangeError(f"The {words}, {name}=“{raw[:40]}”, is not a date like 2026-03-01.")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise RangeError(f"The {words}, {name}={day}, must be in the years 2000 to 2999.")
    return day


@dataclass(frozen=True)
class Campaigns:
    """Every placement of `campaigns`, counted from the campaigns' own rows."""

    campaigns: QuerySet[Campaign]

    @classmethod
    def one(cls, campaign: Campaign) -> Campaigns:
        return cls(Campaign.objects.filter(pk=campaign.pk))


@dataclass(frozen=True)
class TeamCampaigns(Campaigns):
    """Every campaign of a team (`archived`: only its archived ones, or only the others; None: all), counted from the
    team's own rows: the same figures as `Campaigns` of those campaigns, from one row per day and value."""

    team_id: int = 0
    archived: bool | None = None

    @classmethod
    def of(cls, team: Team, archived: bool | None = None) -> TeamCampaigns:
        campaigns = Campaign.objects.filter(team=team)
        return cls(campaigns if archived is None else campaigns.filter(archived=archived), team.pk, archived)


Scope = QuerySet[Placement] | Campaigns


def placements_in(scope: Scope) -> QuerySet[Placement]:
    return Placement.objects.filter(campaign__in=scope.campaigns) if isinstance(scope, Campaigns) else scope


def first_scan_day(scope: Scope) -> date | None:
    """The first local day any placement of `scope` was scanned (one index lookup per placement or campaign)."""
    return rollups_of(scope, Dimension.TOTAL).aggregate(first=Min("day"))["first"]


# Figures ---------------------------------------------------------------------------------------------------------

def rollups_of(scope: Scope, dimension: str, days: DateRange | None = None) -> QuerySet:
    """The daily rows of one dimension that `scope` adds up to: `ScanRollup` rows of placements, or `CampaignRollup`
    rows of whole campaigns, `TeamRollup` rows of a team's (all have day, value, scans and visitors)."""
    if isinstance(scope, TeamCampaigns):
        rows = TeamRollup.objects.filter(team_id=scope.team_id, dimension=dimension)
        if scope.archived is not None:
            rows = rows.filter(archived=scope.archived)
    elif isinstance(scope, Campaigns):
        rows = CampaignRollup.objects.filter(campaign__in=scope.campaigns, dimension=dimension)
    else:
        rows = ScanRollup.objects.filter(placement__in=scope, dimension=dimension)
    return rows.filter(day__range=(days.start, days.end)) if days else rows


@dataclass
class PlacementFigures:
    """One placement's figures in a range."""

    scans: int = 0
    visitors: int = 0
    first_scan: datetime | None = None
    last_scan: datetime | None = None
    trend: list[int] = field(default_factory=list)


def placement_figures(placements: QuerySet[Placement], days: DateRange,
                      trends: bool = True) -> dict[int, PlacementFigures]:
    """placement id -> its scans, unique visitors, first and last scan in `days`, and (`trends`) its trend (see
    `add_trends`); every placement of `placements` has an entry."""
    figures = {pk: PlacementFigures() for pk in placements.values_list("pk", flat=True)}
    totals = (rollups_of(placements, Dimension.TOTAL, days).values("placement_id")
              .annotate(scans=Sum("scans"), visitors=Sum("visitors"), first=Min("first_scan"), last=Max("last_scan"))
              .order_by())
    for row in totals:
        if row["placement_id"] in figures:
            figures[row["placement_id"]] = PlacementFigures(row["scans"], row["visitors"], row["first"], row["last"])
    if trends:
        add_trends(figures, placements, days)
    return figures


def add_trends(figures: Mapping[int, PlacementFigures], placements: QuerySet[Placement], days: DateRange) -> None:
    """Set the trend (scans per day, or per week for ranges over 31 days) of each of `placements` in `figures`. A
    page that shows 100 of a campaign's 3,000 placements asks for those 100: a lifetime's trends of them all read
    every placement's every day."""
    buckets = trend_buckets(days)
    for pk in placements.values_list("pk", flat=True):
        if pk in figures:
            figures[pk].trend = [0] * len(buckets)
    # Each row's bucket as a number (days or weeks since the first bucket), and tuples rather than dicts: a lifetime
    # of 3,000 placements is 159,000 (placement, week) rows, and turning each week's timestamp back into a date
    # cost seconds.
    per = 1 if days.length <= 31 else 7
    rows = (rollups_of(placements, Dimension.TOTAL, days)
            .annotate(bucket=DaysSince("day", Value(buckets[0]), per=per)).values_list("placement_id", "bucket")
            .annotate(scans_sum=Sum("scans")).order_by())
    for placement_id, bucket, scans in rows:
        if placement_id in figures and 0 <= bucket < len(buckets):
            figures[placement_id].trend[bucket] = scans


class DaysSince(Func):
    """Whole days (`per`=1) or weeks (`per`=7) from a date to a date column, as an integer."""

    output_field = IntegerField()
    arg_joiner = " - "

    def __init__(self, column: str, since: Value, per: int) -> None:
        super().__init__(F(column), since)
        self.per = int(per)

    def as_sql(self, compiler, connection, **extra):  # PostgreSQL: date - date is a number of days
        return super().as_sql(compiler, connection, template=f"((%(expressions)s) / {self.per})", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        (column, column_params), (since, since_params) = (compiler.compile(expression)
                                                          for expression in self.get_source_expressions())
        return (f"CAST((julianday({column}) - julianday({since})) / {self.per} AS INTEGER)",
                [*column_params, *since_params])


def trend_buckets(days: DateRange) -> list[date]:
    """Each day of a range up to 31 days; else the Mondays of its weeks."""
    if days.length <= 31:
        return days.days
    monday = days.start - timedelta(days=days.start.weekday())
    return [monday + timedelta(weeks=n) for n in range((days.end - monday).days // 7 + 1)]


@dataclass(frozen=True)
class Daily:
    """Scans and unique visitors on each day of a range, zero-filled, oldest first."""

    days: list[date]
    scans: list[int]
    visitors: list[int]


def weekly(daily: Daily) -> Daily:
    """`daily`'s figures summed per week, Monday to Sunday, each week dated by its first day in the range (the
    range's first day may be a Wednesday: that week holds only its days in the range); the visitors are summed as
    every range's are (`UNIQUE_COUNTED`)."""
    days: list[date] = []
    scans: list[int] = []
    visitors: list[int] = []
    for day, day_scans, day_visitors in zip(daily.days, daily.scans, daily.visitors, strict=True):
        if not days or day.weekday() == 0:
            days.append(day)
            scans.append(0)
            visitors.append(0)
        scans[-1] += day_scans
        visitors[-1] += day_visitors
    return Daily(days, scans, visitors)


def daily(scope: Scope, days: DateRange) -> Daily:
    rows = (rollups_of(scope, Dimension.TOTAL, days).values("day")
            .annotate(scans_sum=Sum("scans"), visitors_sum=Sum("visitors")).order_by())
    position = {day: n for n, day in enumerate(days.days)}
    scans, visitors = [0] * days.length, [0] * days.length
    for row in rows:
        if row["day"] in position:
            scans[position[row["day"]]] = row["scans_sum"]
            visitors[position[row["day"]]] = row["visitors_sum"]
    return Daily(days.days, scans, visitors)


def scans_to_hour(scope: Scope, days: DateRange, hour: int) -> int:
    """`scope`'s scans in `days`, its last day's only those before local `hour`:00. The rollups count hours of the
    day (`Dimension.HOUR`, every scan's), not minutes, so a range that ends today is compared with the period before
    it to the hour begun on both sides (`dashboard.previous_period`).

    Args:
        scope: what is counted.
        days: the range; its last day is cut.
        hour: the local hour (0-23) the last day is counted up to; 0 leaves the last day out.

    Returns:
        The scans.
    """
    whole_days = rollups_of(scope, Dimension.TOTAL).filter(day__gte=days.start, day__lt=days.end)
    last_day = rollups_of(scope, Dimension.HOUR).filter(day=days.end, value__lt=f"{hour:02d}")  # "00"-"23"
    return sum(rows.aggregate(scans=Sum("scans"))["scans"] or 0 for rows in (whole_days, last_day))


def hours(scope: Scope, days: DateRange) -> list[int]:
    """Scans in each local hour of the day (0-23) over the range."""
    counts = [0] * 24
    rows = rollups_of(scope, Dimension.HOUR, days).values("value").annotate(scans_sum=Sum("scans")).order_by()
    for row in rows:
        if row["value"].isdigit() and int(row["value"]) < 24:
            counts[int(row["value"])] = row["scans_sum"]
    return counts


def weekdays(scope: Scope, days: DateRange) -> list[int]:
    """Scans on each day of the week, Monday first, over the range."""
    counts = [0] * 7
    rows = (rollups_of(scope, Dimension.TOTAL, days).annotate(weekday=ExtractIsoWeekDay("day"))
            .values("weekday").annotate(scans_sum=Sum("scans")).order_by())
    for row in rows:
        counts[row["weekday"] - 1] = row["scans_sum"]
    return counts


@dataclass(frozen=True)
class Share:
    value: str  # as stored ("" when not known)
    label: str  # as people read it
    scans: int
    visitors: int


def breakdown(scope: Scope, dimension: str, days: DateRange) -> list[Share]:
    """Scans and unique visitors per value of one of BREAKDOWNS, most scans first; unknown values last."""
    if dimension not in BREAKDOWNS:
        raise ValueError(f"dimension must be one of {', '.join(BREAKDOWNS)}, got {dimension!r}")
    rows = (rollups_of(scope, dimension, days).values("value")
            .annotate(scans_sum=Sum("scans"), visitors_sum=Sum("visitors")).order_by("-scans_sum", "value"))
    shares = [Share(row["value"], label_of(dimension, row["value"]), row["scans_sum"], row["visitors_sum"])
              for row in rows]
    return sorted(shares, key=lambda share: not share.value)  # stable: "Unknown" goes last, the rest keep order


def label_of(dimension: str, value: str) -> str:
    if not value:
        return "Unknown"
    if dimension == Dimension.DEVICE:
        return DEVICE_NAMES.get(value, value.capitalize())
    if dimension == Dimension.LANGUAGE:
        from django.conf.locale import LANG_INFO

        return LANG_INFO.get(value, {}).get("name", value)
    return value


@dataclass(frozen=True)
class RuleShare(Share):
    """One destination rule's scans; an A/B variant's also its share of the split's scans (percent)."""

    split_share: float | None = None
    url: str = ""  # a named A/B variant's destination (its label reads "A/B: <url>"), for pages that shorten it


def split_destinations(scope: Scope) -> dict[str, str]:
    """A/B variant rule -> its destination (`rules.variant_destinations`), for every split destination these
    placements follow now (their campaigns' included) or followed before (their destination history): a variant
    keeps its name after it left the split."""
    placements = placements_in(scope)
    sets = [placement.effective_rules for placement in placements.select_related("campaign__team")]
    changes = DestinationChange.objects.filter(field=DestinationChange.Field.RULES).filter(
        Q(placement__in=placements) | Q(placement=None, campaign__placements__in=placements))
    for before, after in changes.values_list("before", "after").distinct().order_by():
        sets += [rules.from_text(before), rules.from_text(after)]
    return rules.variant_destinations(sets)


def rule_breakdown(scope: Scope, days: DateRange, named: bool = True) -> list[RuleShare]:
    """Scans and unique visitors per destination rule that sent scans in `days` (`ScanEvent.rule`), in precedence
    order (A/B variants by scans, then label), then the main destination's (the scans no rule sent: the total's
    less the rules'); [] when no rule sent any. A/B variants are destinations: one destination's scans are summed
    across the placements' splits and through edits of a split (scans stored before recorded positions, summed by
    position). `named=False` (a report shared outside the team) numbers them instead of naming their URLs."""
    rows = (rollups_of(scope, Dimension.RULE, days).values("value")
            .annotate(scans_sum=Sum("scans"), visitors_sum=Sum("visitors")).order_by())
    found = [(row["value"], row["scans_sum"], row["visitors_sum"]) for row in rows]
    if not found:
        return []
    variants = split_destinations(scope) if named and any(rules.is_variant(v) for v, _, _ in found) else {}
    labelled = [(value, scans, visitors, rules.rule_label(value, variants)) for value, scans, visitors in found]
    # A/B variants by scans, most first: the leading destination on top
    labelled.sort(key=lambda row: (rules.rule_order(row[0]), -row[1] if rules.is_variant(row[0]) else 0, row[3],
                                   row[0]))
    split_scans = sum(scans for value, scans, _, _ in labelled if rules.is_variant(value))
    shares, number = [], 0
    for value, scans, visitors, label in labelled:
        if rules.is_variant(value) and not named:
            number += 1
            label = f"A/B destination {number}"
        shares.append(RuleShare(value, label, scans, visitors,
                                round(100 * scans / split_scans, 1) if rules.is_variant(value) else None,
                                variants.get(value, "")))
    # A visitor counts under their first scan of the day's rule (or none), so the rest is what no rule sent.
    total = rollups_of(scope, Dimension.TOTAL, days).aggregate(scans=Sum("scans"), visitors=Sum("visitors"))
    rest_scans = (total["scans"] or 0) - sum(share.scans for share in shares)
    rest_visitors = (total["visitors"] or 0) - sum(share.visitors for share in shares)
    if rest_scans > 0:
        shares.append(RuleShare("", rules.rule_label(""), rest_scans, max(rest_visitors, 0)))
    return shares


def scans_ever(scope: Scope) -> int:
    return rollups_of(scope, Dimension.TOTAL).aggregate(scans=Sum("scans"))["scans"] or 0


# Campaigns -------------------------------------------------------------------------------------------------------

@dataclass
class CampaignFigures:
    placements: int = 0
    scans: int = 0
    visitors: int = 0


def campaign_figures(campaigns: QuerySet[Campaign], days: DateRange | None) -> dict[int, CampaignFigures]:
    """campaign id -> placements, scans and unique visitors in `days` (None: ever)."""
    figures = {pk: CampaignFigures(placements=count) for pk, count in
               campaigns.annotate(count=Count("placements")).values_list("pk", "count")}
    rows = rollups_of(Campaigns(campaigns), Dimension.TOTAL, days)
    for row in (rows.values("campaign_id").annotate(scans_sum=Sum("scans"), visitors_sum=Sum("visitors"))
                .order_by()):
        one = figures.get(row["campaign_id"])
        if one is not None:
            one.scans, one.visitors = row["scans_sum"], row["visitors_sum"]
    return figures
