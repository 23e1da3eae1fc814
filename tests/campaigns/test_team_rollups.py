"""Each team's own rows (`campaigns.team_rollups`): its campaigns' rows added up, archived campaigns apart, whatever
changes those; and the overview's figures read from them are the figures of the campaigns themselves."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import transaction

from campaigns import rollup_rebuilds, rollups, stats, team_rollups
from campaigns.drainer import store_events
from campaigns.models import Campaign, Placement, TeamRollup
from qartsite.models import Team
from tests.campaigns.concurrently import catching, on_postgresql
from tests.campaigns.rollup_data import event, team_added_up, team_rows

NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)


def new_campaign(team: Team, name: str, **fields) -> Campaign:
    return Campaign.objects.create(team=team, name=name, destination="https://shop.example.com/", **fields)


def figures(scope: stats.Scope, days: stats.DateRange) -> dict:
    """Everything the campaign list's overview shows of `scope`, as plain values."""
    return {
        "daily": stats.daily(scope, days),
        "hours": stats.hours(scope, days),
        "weekdays": stats.weekdays(scope, days),
        **{name: stats.breakdown(scope, name, days) for name in stats.BREAKDOWNS},
        "rules": stats.rule_breakdown(scope, days),
        "ever": stats.scans_ever(scope),
        "first": stats.first_scan_day(scope),
    }


def history(team_users) -> dict[str, Campaign]:
    """Two teams' year in short: repeat visitors across placements, campaigns and days, scans either side of
    midnight in two time zones, bots, rules; then a placement and a campaign deleted, a campaign archived and one
    brought back, a placement moved between campaigns, a time zone changed (a rebuild), and scans after all that."""
    acme, rival = team_users.team, team_users.other_team
    Team.objects.filter(pk=acme.pk).update(time_zone="America/New_York", counted_time_zone="America/New_York")
    Team.objects.filter(pk=rival.pk).update(time_zone="Asia/Tokyo", counted_time_zone="Asia/Tokyo")
    made = {name: new_campaign(team, name) for team, name in
            ((acme, "Spring"), (acme, "Autumn"), (acme, "Old"), (acme, "Gone"), (rival, "Rival"))}
    places = [Placement.objects.create(campaign=made[name], name=f"{name} {n}")
              for name in made for n in range(2)]
    made["Old"].set_archived(True)  # its codes still count
    for batch in range(4):
        store_events([event(place, NOON + timedelta(hours=7 * batch + n), visitor=f"{(n + batch) % 3:032d}",
                            country=("FR", "DE", "")[n % 3], browser=("Chrome", "Firefox")[n % 2],
                            accept_language=("fr", "de-DE", "")[(n + batch) % 3], is_bot=n % 5 == 4,
                            rule=("", "ios", "ab:0")[n % 3])
                      for n in range(6) for place in places])
    places[1].delete()  # Spring's second
    made.pop("Gone").delete()
    made["Autumn"].set_archived(True)
    made["Old"].set_archived(False)
    moved = places[5]  # Old's second, to Spring, as the admin moves one
    Placement.objects.filter(pk=moved.pk).update(campaign=made["Spring"])
    rollups.refresh_campaigns([made["Old"].pk, made["Spring"].pk])
    Team.objects.filter(pk=acme.pk).update(time_zone="Europe/Paris")
    rollup_rebuilds.rebuild(Placement.objects.filter(campaign__team=acme))
    store_events([event(place, NOON + timedelta(days=3, hours=n), visitor=f"{n % 2:032d}")
                  for n in range(3) for place in Placement.objects.all()])
    return made


@pytest.mark.django_db
class TestTeamRows:
    def test_the_drainer_adds_each_batch_to_its_teams_set(self, team_users):
        spring, old = new_campaign(team_users.team, "Spring"), new_campaign(team_users.team, "Old")
        rival = new_campaign(team_users.other_team, "Rival")
        places = [Placement.objects.create(campaign=one, name="P") for one in (spring, spring, old, rival)]
        old.set_archived(True)  # its codes still count

        store_events([event(place, NOON + timedelta(hours=n), visitor=f"{n % 2:032d}", is_bot=n == 3)
                      for n in range(4) for place in places])

        assert team_rows() == team_added_up()
        assert team_rows()[(team_users.team.pk, False, date(2026, 3, 10), "", "")] == (6, 4)  # two placements
        assert team_rows()[(team_users.team.pk, True, date(2026, 3, 10), "", "")] == (3, 2)
        assert {key[0] for key in team_rows()} == {team_users.team.pk, team_users.other_team.pk}

    def test_archiving_moves_a_campaigns_rows_to_the_archived_set_and_back(self, team_users, campaign):
        store_events([event(Placement.objects.create(campaign=campaign, name="P"), NOON)])
        day = (team_users.team.pk, date(2026, 3, 10), "", "")

        campaign.set_archived(True)
        assert team_rows() == team_added_up()
        assert team_rows()[(day[0], True, *day[1:])] == (1, 1)
        assert not TeamRollup.objects.filter(archived=False).exists()
        campaign.archived = False
        campaign.save()  # every field: the API's and the admin's way
        assert team_rows() == team_added_up()
        assert not TeamRollup.objects.filter(archived=True).exists()

    def test_a_campaign_moved_to_another_team_takes_its_rows_along(self, team_users, campaign):
        store_events([event(Placement.objects.create(campaign=campaign, name="P"), NOON)])

        campaign.team = team_users.other_team
        campaign.save()

        assert team_rows() == team_added_up()
        assert {key[0] for key in team_rows()} == {team_users.other_team.pk}

    def test_a_save_of_other_fields_reads_nothing_more(self, campaign, django_assert_num_queries):
        with django_assert_num_queries(3):  # the savepoint, the update, its release
            campaign.name = "Renamed"
            campaign.save(update_fields=["name"])

    def test_deleting_placements_and_campaigns_takes_their_scans_out(self, team_users, campaign):
        other = new_campaign(team_users.team, "Other")
        poster, flyer, banner = (Placement.objects.create(campaign=one, name=name)
                                 for one, name in ((campaign, "Poster"), (campaign, "Flyer"), (other, "Banner")))
        store_events([event(place, NOON + timedelta(days=n)) for n in range(2) for place in (poster, flyer, banner)])

        flyer.delete()
        assert team_rows() == team_added_up()
        other.delete()
        assert team_rows() == team_added_up()
        assert team_rows()[(team_users.team.pk, False, date(2026, 3, 10), "", "")] == (1, 1)

    def test_a_rebuild_in_another_zone_moves_their_days(self, team_users, campaign):
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        store_events([event(poster, datetime(2026, 3, 10, 23, 30, tzinfo=UTC))])
        Team.objects.filter(pk=team_users.team.pk).update(time_zone="Asia/Tokyo")

        rollup_rebuilds.recount_team(team_users.team.pk, "Asia/Tokyo")

        assert team_rows() == team_added_up()
        assert {key[2] for key in team_rows()} == {date(2026, 3, 11)}

    def test_a_teams_recount_repairs_them(self, team_users, campaign):
        store_events([event(Placement.objects.create(campaign=campaign, name="Poster"), NOON)])
        TeamRollup.objects.update(scans=99)  # wrong: to be recounted
        TeamRollup.objects.create(team=team_users.other_team, day=NOON.date(), scans=5)

        team_rollups.refresh_teams([team_users.team.pk, team_users.other_team.pk])

        assert team_rows() == team_added_up()
        assert team_rows()[(team_users.team.pk, False, NOON.date(), "", "")] == (1, 1)

    def test_through_a_teams_history_they_add_up_and_give_the_campaigns_own_figures(self, team_users):
        history(team_users)
        days = stats.DateRange(date(2026, 3, 1), date(2026, 3, 20))

        assert team_rows() == team_added_up()
        for team in (team_users.team, team_users.other_team):
            for archived in (False, True, None):
                campaigns = Campaign.objects.filter(team=team)
                old = stats.Campaigns(campaigns if archived is None else campaigns.filter(archived=archived))
                new = stats.TeamCampaigns.of(team, archived)
                assert figures(new, days) == figures(old, days), (team.name, archived)
        assert stats.scans_ever(stats.TeamCampaigns.of(team_users.team, True)) > 0  # both sets have scans
        assert stats.scans_ever(stats.TeamCampaigns.of(team_users.team, False)) > 0


@on_postgresql
@pytest.mark.django_db(transaction=True)
class TestTeamRowsConcurrently:
    def test_a_campaign_archived_while_a_batch_adds_to_it_keeps_every_scan_in_its_new_set(self, team_users,
                                                                                          monkeypatch):
        # The batch read the campaign's set before the archive moved its rows: without the campaign's lock on both
        # sides its scans stayed in the active set of a campaign now archived.
        campaign = new_campaign(team_users.team, "Spring")
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        store_events([event(poster, NOON)])
        sums, go, errors = threading.Event(), threading.Event(), []
        team_sums = team_rollups.team_sums

        def pausing(campaign_sums):  # the batch, holding the campaign's lock, about to read its set
            sums.set()
            go.wait(10)
            return team_sums(campaign_sums)

        monkeypatch.setattr(team_rollups, "team_sums", pausing)
        drain = threading.Thread(target=catching, args=(
            errors, lambda: store_events([event(poster, NOON, visitor="b" * 32)])))
        drain.start()
        assert sums.wait(10)
        archive = threading.Thread(target=catching, args=(
            errors, lambda: Campaign.objects.get(pk=campaign.pk).set_archived(True)))
        archive.start()
        archive.join(0.5)
        assert archive.is_alive()  # it waits for the batch's commit
        go.set()
        drain.join()
        archive.join()

        assert errors == []
        assert team_rows() == team_added_up() == {(team_users.team.pk, True, date(2026, 3, 10), "", ""): (2, 2)} | {
            key: value for key, value in team_added_up().items() if key[3]}
        with transaction.atomic():  # nothing left behind in the active set
            assert not TeamRollup.objects.filter(archived=False).exists()
