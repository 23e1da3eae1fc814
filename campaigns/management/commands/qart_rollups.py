"""python manage.py qart_rollups: recount the dashboards' daily rollups from the stored scans.

    qart_rollups                   # every placement
    qart_rollups --team 3          # one team's (what follows a change of its time zone)
    qart_rollups --campaign 12     # one campaign's

The drainer keeps the rollups up to date as it stores scans, so this is for repairs and for a team whose time zone
changed (the worker's maintenance does that one by itself): such a team is recounted in its new zone in one
transaction, which switches its figures to it; the rest keep the zone they are counted in. Days whose scans
retention deleted keep their counts. The placements' campaigns' own rows (what the campaign and team pages read)
are recounted from theirs afterwards, and their teams' own rows (the campaign list's overview) from the campaigns'.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from django.db.models import F

from campaigns import rollup_rebuilds
from campaigns.models import Campaign, Placement
from qartsite.models import Team


class Command(BaseCommand):
    help = "Recount the daily scan rollups the dashboards read from the stored scan events."

    def add_arguments(self, parser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--team", type=int, metavar="ID", help="only this team's placements")
        which.add_argument("--campaign", type=int, metavar="ID", help="only this campaign's placements")

    def handle(self, *args, team: int | None, campaign: int | None, **options) -> None:
        placements = Placement.objects.all()
        teams = Team.objects.all()
        if team is not None:
            if not Team.objects.filter(pk=team).exists():
                raise CommandError(f"No team with id {team}.")
            placements, teams = placements.filter(campaign__team_id=team), teams.filter(pk=team)
        elif campaign is not None:
            if not Campaign.objects.filter(pk=campaign).exists():
                raise CommandError(f"No campaign with id {campaign}.")
            placements, teams = placements.filter(campaign_id=campaign), teams.none()
        try:
            # A team whose zone changed is recounted in its new one and switched to it at once (`recount_team`);
            # the rest in the zone their figures count in, as one campaign of a team not yet recounted is.
            done = rollup_rebuilds.Rebuilt()
            changed = dict(teams.exclude(counted_time_zone=F("time_zone")).values_list("pk", "time_zone"))
            for pk, zone in changed.items():
                done += rollup_rebuilds.recount_team(pk, zone) or rollup_rebuilds.Rebuilt()
            done += rollup_rebuilds.rebuild(placements.exclude(campaign__team_id__in=changed))
        except DatabaseError as exc:
            raise CommandError(f"The database cannot be reached ({exc}); run it again once it is back.") from None
        self.stdout.write(str(done))
