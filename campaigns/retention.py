"""Retention: each team's raw scan events older than its `scan_retention_days` are deleted; the daily rollups the
dashboards read (`ScanRollup`) are kept, so figures do not change, only the CSV export and a rebuild lose those days.

Run once a day by the worker's maintenance (`campaigns.maintenance`) and by `manage.py qart_retention`. Deletes in
batches of BATCH rows, each its own short transaction, so a first run over years of scans never holds a long lock
on the table the drainer writes to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import ScanEvent
from qartsite.models import Team

BATCH = 5000


@dataclass
class Purged:
    """Raw scans deleted per team name."""

    teams: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.teams.values())

    def __str__(self) -> str:
        if not self.teams:
            return "No team keeps raw scans for a limited time: nothing to delete."
        parts = ", ".join(f"{name}: {count:,}" for name, count in self.teams.items())
        return f"Deleted {self.total:,} raw scans older than their team's retention ({parts}); daily counts kept."


def expired(team: Team, now: datetime | None = None) -> QuerySet[ScanEvent]:
    """`team`'s raw scans older than its retention (none when it keeps them all)."""
    if not team.scan_retention_days:
        return ScanEvent.objects.none()
    cutoff = (now or timezone.now()) - timedelta(days=team.scan_retention_days)
    return ScanEvent.objects.filter(placement__campaign__team=team, time__lt=cutoff)


def purge(now: datetime | None = None, batch: int = BATCH, dry_run: bool = False) -> Purged:
    """Delete every team's expired raw scans (`dry_run`: only count them)."""
    now = now or timezone.now()
    done = Purged()
    for team in Team.objects.filter(scan_retention_days__isnull=False).order_by("pk"):
        scans = expired(team, now)
        if dry_run:
            done.teams[team.name] = scans.count()
            continue
        deleted = 0
        while ids := list(scans.order_by().values_list("pk", flat=True)[:batch]):
            deleted += ScanEvent.objects.filter(pk__in=ids).delete()[0]
        done.teams[team.name] = deleted
    return done
