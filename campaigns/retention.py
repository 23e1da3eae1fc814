"""Retention: each team's raw scan events older than its `scan_retention_days` are deleted; the daily rollups the
dashboards read (`ScanRollup`) are kept, so figures do not change, only the CSV export and a rebuild lose those days.

Run once a day by the worker's maintenance (`campaigns.maintenance`) and by `manage.py qart_retention`. Deletes in
batches of BATCH rows, each its own short transaction, so a first run over years of scans never holds a long lock
on the table the drainer writes to. A team whose days are being recounted in a new time zone is put off to the next
pass (`rollup_rebuilds.recount_held_off`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Min, QuerySet
from django.utils import timezone

from campaigns import rollup_rebuilds, stats
from campaigns.models import Placement, ScanEvent
from qartsite.models import Team

BATCH = 5000


@dataclass
class Purged:
    """Raw scans deleted per team name."""

    teams: dict[str, int] = field(default_factory=dict)
    put_off: list[str] = field(default_factory=list)  # teams whose days were being recounted: the next pass's

    @property
    def total(self) -> int:
        return sum(self.teams.values())

    def __str__(self) -> str:
        later = (f" Put off while their days are recounted in a new time zone: {', '.join(self.put_off)}."
                 if self.put_off else "")
        if not self.teams:
            return ("No team keeps raw scans for a limited time: nothing to delete." if not self.put_off
                    else f"Nothing deleted.{later}")
        parts = ", ".join(f"{name}: {count:,}" for name, count in self.teams.items())
        return (f"Deleted {self.total:,} raw scans older than their team's retention ({parts}); daily counts kept."
                f"{later}")


def expired(team: Team, now: datetime | None = None) -> QuerySet[ScanEvent]:
    """`team`'s raw scans older than its retention (none when it keeps them all)."""
    if not team.scan_retention_days:
        return ScanEvent.objects.none()
    cutoff = (now or timezone.now()) - timedelta(days=team.scan_retention_days)
    return ScanEvent.objects.filter(placement__campaign__team=team, time__lt=cutoff)


def newly_expired(team: Team, kept_days: int | None, new_days: int | None, now: datetime | None = None) -> int:
    """How many of `team`'s raw scans a retention of `new_days` deletes that one of `kept_days` keeps (None: for ever).
    A team owner is told before shortening it: the next daily pass deletes them for good."""
    if not new_days or (kept_days and kept_days <= new_days):
        return 0
    now = now or timezone.now()
    scans = ScanEvent.objects.filter(placement__campaign__team=team, time__lt=now - timedelta(days=new_days))
    if kept_days:
        scans = scans.filter(time__gte=now - timedelta(days=kept_days))
    return scans.count()


def purge(now: datetime | None = None, batch: int = BATCH, dry_run: bool = False) -> Purged:
    """Delete every team's expired raw scans (`dry_run`: only count them)."""
    now = now or timezone.now()
    done = Purged()
    for team in Team.objects.filter(scan_retention_days__isnull=False).order_by("pk"):
        scans = expired(team, now)
        if dry_run:
            done.teams[team.name] = scans.count()
            continue
        with rollup_rebuilds.recount_held_off(team.pk) as free:
            if not free:
                done.put_off.append(team.name)
                continue
            deleted = 0
            while ids := list(scans.order_by().values_list("pk", flat=True)[:batch]):
                deleted += ScanEvent.objects.filter(pk__in=ids).delete()[0]
        done.teams[team.name] = deleted
    return done


def export_gap(team: Team, placements: QuerySet[Placement], days: stats.DateRange) -> str:
    """Why an export of `placements`' raw scans in `days` lacks scans the pages count, in one line ("" when it lacks
    none): people's scans were counted (the rollups) on days of the range before the oldest raw scan still kept.
    Plain ASCII: it travels in a response header too."""
    oldest = ScanEvent.objects.filter(placement__in=placements).aggregate(first=Min("time"))["first"]
    if team.scan_retention_days:
        # A scan that reached the drainer late, after retention had deleted its day's others, is no proof that the
        # days after it are whole: the retention says which are.
        cutoff = timezone.now() - timedelta(days=team.scan_retention_days)
        oldest = max(oldest, cutoff) if oldest else None
    # The rollups' days are those of the zone they were counted in: after a change of zone, the old one's until the
    # workers recount them (the new one's midnight made a kept scan look a day past the oldest kept).
    kept_from = oldest.astimezone(team.counted_zone).date() if oldest else None
    counted = stats.rollups_of(placements, stats.Dimension.TOTAL, days).filter(scans__gt=0)
    if kept_from is not None:
        counted = counted.filter(day__lt=kept_from)
    if not counted.exists():
        return ""
    policy = (f" (this team keeps them {team.scan_retention_days} days)" if team.scan_retention_days else "")
    which = f"Raw scans before {kept_from:%Y-%m-%d}" if kept_from else "The raw scans of these days"
    return (f"{which} are no longer kept{policy}: the CSV has no rows for those days, while the page's daily counts "
            "still include them.")
