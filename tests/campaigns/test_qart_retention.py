"""manage.py qart_retention."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from campaigns import retention
from campaigns.drainer import store_events
from campaigns.models import Placement, ScanEvent
from campaigns.scan_buffer import scan_event


def run(*args: str) -> str:
    out = StringIO()
    call_command("qart_retention", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestCommand:
    def test_it_deletes_expired_scans_or_counts_them(self, team_users, campaign):
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        store_events([scan_event(poster.pk, timezone.now() - timedelta(days=days), visitor_key="a")
                      for days in (1, 90)])
        team_users.team.scan_retention_days = 60
        team_users.team.save()

        assert run("--dry-run") == "Would delete 1 raw scans (Acme: 1).\n" and ScanEvent.objects.count() == 2
        assert run().startswith("Deleted 1 raw scans older than their team's retention (Acme: 1)")
        assert ScanEvent.objects.count() == 1

    def test_a_database_that_is_away_is_one_message(self, monkeypatch):
        def away(**kwargs):
            raise OperationalError("connection refused")

        monkeypatch.setattr(retention, "purge", away)
        with pytest.raises(CommandError, match="The database cannot be reached"):
            run()
