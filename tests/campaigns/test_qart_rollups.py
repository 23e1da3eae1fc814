"""manage.py qart_rollups."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaigns.drainer import store_events
from campaigns.models import Placement, ScanRollup, TeamRollup
from campaigns.scan_buffer import scan_event
from qartsite.models import Team


def run(*args: str) -> str:
    out = StringIO()
    call_command("qart_rollups", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestCommand:
    def test_it_recounts_a_teams_rollups_and_marks_its_zone_counted(self, team_users, campaign):
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        store_events([scan_event(poster.pk, timezone.now(), visitor_key="a")])
        ScanRollup.objects.update(scans=50)
        Team.objects.filter(pk=team_users.team.pk).update(time_zone="Europe/Paris")

        assert run("--team", str(team_users.team.pk)).startswith("Recounted 1 scan of 1 placement into")
        assert set(ScanRollup.objects.values_list("scans", flat=True)) == {1}
        assert Team.objects.get(pk=team_users.team.pk).counted_time_zone == "Europe/Paris"

    @pytest.mark.parametrize("args", [(), ("--team", "{team}"), ("--campaign", "{campaign}")])
    def test_it_recounts_the_teams_own_rows_too(self, team_users, campaign, args):
        store_events([scan_event(Placement.objects.create(campaign=campaign, name="Poster").pk, timezone.now(),
                                 visitor_key="a")])
        TeamRollup.objects.update(scans=50)  # wrong: what a repair is for

        run(*(arg.format(team=team_users.team.pk, campaign=campaign.pk) for arg in args))

        assert set(TeamRollup.objects.values_list("scans", flat=True)) == {1}

    @pytest.mark.parametrize(("args", "message"), [(("--team", "999"), "No team with id 999."),
                                                   (("--campaign", "999"), "No campaign with id 999.")])
    def test_it_names_what_it_cannot_find(self, db, args, message):
        with pytest.raises(CommandError, match=message):
            run(*args)
