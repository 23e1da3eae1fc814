"""Data steps of the campaign migrations, run on the current models (their fields are the ones the steps read)."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps

from campaigns.drainer import store_events
from campaigns.models import Campaign, CampaignRollup, Placement, ScanRollup, TeamRollup
from tests.campaigns.rollup_data import added_up, all_rows, campaign_rows, event, team_added_up, team_rows

rollups_by_rule = importlib.import_module("campaigns.migrations.0009_rollups_by_rule")
dates_route_switch = importlib.import_module("campaigns.migrations.0014_campaign_dates_route_switch")
campaign_rollups = importlib.import_module("campaigns.migrations.0016_campaign_rollups")
team_rollups = importlib.import_module("campaigns.migrations.0022_team_rollups")


@pytest.mark.django_db
def test_0009_counts_the_rules_of_stored_scans_as_the_drainer_does(campaign):
    poster = Placement.objects.create(campaign=campaign, name="Poster")
    plain = Placement.objects.create(campaign=campaign, name="No rules")
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    for batch in range(3):  # in time order, as scans reach the drainer (batch 2 runs into the next day)
        store_events([event(poster, start + timedelta(hours=10 * batch + n), visitor=f"{n % 4:032d}",
                            rule=("", "ab:0", "ab:1", "ios")[(n + batch) % 4]) for n in range(10)])
    store_events([event(plain, start)])
    counted = all_rows()
    ScanRollup.objects.filter(dimension="rule").delete()  # as before the migration: no rule rows

    rollups_by_rule.count_stored_rules(apps, None)

    assert all_rows() == counted
    assert ScanRollup.objects.filter(dimension="rule", placement=poster).exists()


@pytest.mark.django_db
def test_0014_leaves_campaigns_made_before_it_leading_where_they_did(campaign):
    campaign.ends_on = datetime(2026, 1, 31).date()  # long past: as a label, it sent nothing to the fallback
    campaign.save()
    assert campaign.dates_route and "ends_at" in campaign.effective_rules  # what a new campaign does

    dates_route_switch.keep_existing_campaigns_where_they_lead(apps, None)

    campaign.refresh_from_db()
    assert not campaign.dates_route and campaign.effective_rules == {}


@pytest.mark.django_db(transaction=True)  # sqlmigrate of a non-atomic migration refuses to run in a transaction
def test_0015_builds_its_index_without_stopping_writes_on_postgresql():
    # A plain CREATE INDEX on millions of rollups held every write to them for the whole build.
    from io import StringIO

    from django.core.management import call_command
    from django.db import connection

    forwards, backwards = StringIO(), StringIO()
    call_command("sqlmigrate", "campaigns", "0015", stdout=forwards)
    call_command("sqlmigrate", "campaigns", "0015", "--backwards", stdout=backwards)
    if connection.vendor == "postgresql":
        assert 'CREATE INDEX CONCURRENTLY "rollups_by_dimension_and_day"' in forwards.getvalue()
        assert "INCLUDE" in forwards.getvalue() and "BEGIN;" not in forwards.getvalue()
        assert 'DROP INDEX CONCURRENTLY IF EXISTS "rollups_by_dimension_and_day"' in backwards.getvalue()
    else:
        assert 'CREATE INDEX "rollups_by_dimension_and_day"' in forwards.getvalue()
        assert 'DROP INDEX "rollups_by_dimension_and_day"' in backwards.getvalue()


@pytest.mark.django_db(transaction=True)  # sqlmigrate of a non-atomic migration refuses to run in a transaction
def test_0021_builds_the_campaign_rollups_index_without_stopping_writes_on_postgresql():
    # Millions of campaign rows: a plain CREATE INDEX would hold the drainer's writes for the whole build.
    from io import StringIO

    from django.core.management import call_command
    from django.db import connection

    forwards = StringIO()
    call_command("sqlmigrate", "campaigns", "0021", stdout=forwards)
    if connection.vendor == "postgresql":
        assert 'CREATE INDEX CONCURRENTLY "campaign_rollups_by_dim_day"' in forwards.getvalue()
        assert "INCLUDE" in forwards.getvalue() and "BEGIN;" not in forwards.getvalue()
    else:
        assert 'CREATE INDEX "campaign_rollups_by_dim_day"' in forwards.getvalue()


@pytest.mark.django_db
def test_0016_adds_up_each_campaigns_rows_from_its_placements(campaign, monkeypatch):
    poster = Placement.objects.create(campaign=campaign, name="Poster")
    flyer = Placement.objects.create(campaign=campaign, name="Flyer")
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    store_events([event(place, start + timedelta(hours=n), visitor=f"{n % 3:032d}", country=("FR", "DE")[n % 2])
                  for n in range(30) for place in (poster, flyer)])
    expected = added_up()
    CampaignRollup.objects.all().delete()  # as before the migration
    monkeypatch.setattr(campaign_rollups, "BATCH", 7)  # several batches and a last short one

    campaign_rollups.add_up_placement_rollups(apps, None)

    assert campaign_rows() == expected
    assert len(expected) > 7


@pytest.mark.django_db
def test_0022_adds_up_each_teams_rows_from_its_campaigns_archived_ones_apart(team_users, campaign, monkeypatch):
    old = Campaign.objects.create(team=team_users.team, name="Old", destination="https://shop.example.com/")
    rival = Campaign.objects.create(team=team_users.other_team, name="Rival", destination="https://shop.example.com/")
    places = [Placement.objects.create(campaign=one, name=one.name) for one in (campaign, campaign, old, rival)]
    old.set_archived(True)
    start = datetime(2026, 12, 1, 8, tzinfo=UTC)
    store_events([event(place, start + timedelta(hours=5 * n), visitor=f"{n % 3:032d}", country=("FR", "DE")[n % 2])
                  for n in range(12) for place in places])
    expected = team_added_up()
    TeamRollup.objects.all().delete()  # as before the migration
    monkeypatch.setattr(team_rollups, "BATCH", 7)  # several batches and a last short one

    team_rollups.add_up_campaign_rollups(apps, None)

    assert team_rows() == expected
    assert {(key[0], key[1]) for key in expected} == {(team_users.team.pk, False), (team_users.team.pk, True),
                                                      (team_users.other_team.pk, False)}
