"""Scan counts for the dashboard: per day, per device class or OS, and totals per placement or campaign.

Plain functions over querysets. Bots (link previews, crawlers) are left out of every count here: a code
shared in a chat is fetched by the chat's preview bot, and that is not a person scanning a poster. Days are
bucketed with TruncDate in the current time zone, which works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from campaigns.models import Campaign, Placement, ScanEvent

RECENT_DAYS = 7  # the "last 7 days" column: a rolling window of 7 x 24 hours ending now
CHART_DAYS = 30
BREAKDOWN_FIELDS = ("device_class", "os", "browser", "country")


@dataclass(frozen=True)
class DailyCounts:
    """Scans per day for each placement, zero-filled.

    Attributes:
        days: consecutive dates, oldest first, ending today.
        counts: placement id -> scans on each of `days` (same length and order), for every placement asked
            about, including those without scans.
    """

    days: list[date]
    counts: dict[int, list[int]]

    def totals(self) -> list[int]:
        """Scans on each day, all placements together."""
        return [sum(day) for day in zip(*self.counts.values(), strict=True)] if self.counts else [0] * len(self.days)


def human_scans(placements: QuerySet[Placement]) -> QuerySet[ScanEvent]:
    """Scan events of `placements` made by people (bots left out)."""
    return ScanEvent.objects.filter(placement__in=placements, is_bot=False)


def recent_since(now: datetime | None = None) -> datetime:
    """Start of the "last 7 days" window."""
    return (now or timezone.now()) - timedelta(days=RECENT_DAYS)


def with_scan_counts(placements: QuerySet[Placement], now: datetime | None = None) -> QuerySet[Placement]:
    """`placements` annotated with `total_scans` and `recent_scans` (last 7 days), bots left out."""
    people = Q(scans__is_bot=False)
    return placements.annotate(
        total_scans=Count("scans", filter=people),
        recent_scans=Count("scans", filter=people & Q(scans__time__gte=recent_since(now))),
    )


def campaigns_with_scan_counts(campaigns: QuerySet[Campaign], now: datetime | None = None) -> QuerySet[Campaign]:
    """`campaigns` annotated with `placement_count`, `total_scans` and `recent_scans`, bots left out."""
    people = Q(placements__scans__is_bot=False)
    return campaigns.annotate(
        # The join fans out to one row per scan; each scan is still counted once, placements need distinct.
        placement_count=Count("placements", distinct=True),
        total_scans=Count("placements__scans", filter=people),
        recent_scans=Count("placements__scans", filter=people & Q(placements__scans__time__gte=recent_since(now))),
    )


def daily_counts(placements: QuerySet[Placement], days: int = CHART_DAYS, today: date | None = None) -> DailyCounts:
    """Scans per day and placement over the `days` days ending `today` (local date), bots left out."""
    zone = timezone.get_current_timezone()
    today = today or timezone.localdate()
    dates = [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    start = timezone.make_aware(datetime.combine(dates[0], time.min), zone)
    end = timezone.make_aware(datetime.combine(today + timedelta(days=1), time.min), zone)
    rows = (
        human_scans(placements)
        .filter(time__gte=start, time__lt=end)
        .annotate(day=TruncDate("time", tzinfo=zone))
        .values("placement_id", "day")
        .annotate(scans=Count("id"))
        .order_by()
    )
    position = {day: index for index, day in enumerate(dates)}
    counts = {pk: [0] * days for pk in placements.values_list("pk", flat=True)}
    for row in rows:
        if row["day"] in position and row["placement_id"] in counts:
            counts[row["placement_id"]][position[row["day"]]] = row["scans"]
    return DailyCounts(days=dates, counts=counts)


def breakdown(placements: QuerySet[Placement], field: str) -> list[tuple[str, int]]:
    """(value, scans) for one of BREAKDOWN_FIELDS, most scans first; an empty value reads "Unknown"."""
    if field not in BREAKDOWN_FIELDS:
        raise ValueError(f"field must be one of {', '.join(BREAKDOWN_FIELDS)}, got {field!r}")
    rows = human_scans(placements).values(field).annotate(scans=Count("id")).order_by("-scans", field)
    return [(row[field] or "Unknown", row["scans"]) for row in rows]
