"""python manage.py qart_retention: delete raw scan events older than each team's retention, keeping daily counts.

    qart_retention            # what the worker's maintenance does once a day
    qart_retention --dry-run  # how many would go, per team

A team sets its retention on its team page (`Team.scan_retention_days`); empty keeps every scan.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from campaigns import retention


class Command(BaseCommand):
    help = "Delete raw scan events older than each team's retention period; the dashboards' daily counts stay."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="only count, per team, what would be deleted")

    def handle(self, *args, dry_run: bool, **options) -> None:
        try:
            purged = retention.purge(dry_run=dry_run)
        except DatabaseError as exc:
            raise CommandError(f"The database cannot be reached ({exc}); nothing more was deleted.") from None
        if dry_run:
            counts = ", ".join(f"{name}: {count:,}" for name, count in purged.teams.items()) or "no team"
            self.stdout.write(f"Would delete {purged.total:,} raw scans ({counts}).")
        else:
            self.stdout.write(str(purged))
