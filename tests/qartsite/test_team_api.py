"""The team API (`qartsite.team_api`): members read their teams' settings; only owners change the time zone and
the retention of raw scans; other teams do not exist."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from qartsite.models import Team
from tests.campaigns.rollup_data import event


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
class TestTeamApi:
    def test_it_lists_the_users_teams_with_their_role(self, team_users):
        rows = api(team_users.viewer).get("/api/teams/").json()["results"]
        assert [(row["name"], row["role"], row["time_zone"], row["scan_retention_days"]) for row in rows] == [
            ("Acme", "viewer", "UTC", None)]

    def test_it_lets_an_owner_set_the_retention_and_time_zone(self, team_users):
        response = api(team_users.owner).patch(f"/api/teams/{team_users.team.pk}/", {
            "scan_retention_days": 90, "time_zone": "Europe/Paris"}, format="json")
        assert response.status_code == 200 and response.json()["role"] == "owner"
        team_users.team.refresh_from_db()
        assert team_users.team.scan_retention_days == 90 and team_users.team.time_zone == "Europe/Paris"
        cleared = api(team_users.owner).patch(f"/api/teams/{team_users.team.pk}/", {"scan_retention_days": None},
                                              format="json")
        assert cleared.status_code == 200 and cleared.json()["scan_retention_days"] is None

    def test_an_owner_writes_the_codes_scheme_in_capitals_and_placements_links_follow(self, team_users):
        # Off by default: Google's Pixel Camera app opens no browser for "HTTPS://" (`campaigns.links.code_link`).
        from campaigns.models import Campaign, Placement

        placement = Placement.objects.create(name="Poster", campaign=Campaign.objects.create(
            team=team_users.team, name="Spring", destination="https://shop.example.com/"))
        link = f"/api/placements/{placement.pk}/"
        assert api(team_users.owner).get(f"/api/teams/{team_users.team.pk}/").json()["capital_scheme"] is False
        assert api(team_users.viewer).get(link).json()["short_url"] == f"http://TESTSERVER/R/{placement.slug}"
        response = api(team_users.owner).patch(f"/api/teams/{team_users.team.pk}/", {"capital_scheme": True},
                                               format="json")
        assert response.status_code == 200 and response.json()["capital_scheme"] is True
        assert api(team_users.viewer).get(link).json()["short_url"] == f"HTTP://TESTSERVER/R/{placement.slug}"

    @pytest.mark.parametrize("body, field", [
        ({"scan_retention_days": 29}, "scan_retention_days"), ({"scan_retention_days": 3661}, "scan_retention_days"),
        ({"scan_retention_days": "forever"}, "scan_retention_days"), ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ])
    def test_it_refuses_bad_settings_with_one_message(self, team_users, body, field):
        response = api(team_users.owner).patch(f"/api/teams/{team_users.team.pk}/", body, format="json")
        assert response.status_code == 400 and list(response.json()) == [field]
        team_users.team.refresh_from_db()
        assert team_users.team.scan_retention_days is None and team_users.team.time_zone == "UTC"

    def test_a_long_time_zone_is_not_echoed_whole(self, team_users):
        response = api(team_users.owner).patch(f"/api/teams/{team_users.team.pk}/", {"time_zone": "Z" * 10_000},
                                               format="json")
        assert response.status_code == 400
        assert any(message == f"“{'Z' * 60}…” is not a time zone name, like Europe/Paris or America/New_York."
                   for message in response.json()["time_zone"])
        assert len(str(response.json())) < 1000

    @pytest.mark.parametrize("who", ["teammate", "viewer"])
    def test_it_refuses_members_who_do_not_own_the_team(self, team_users, who):
        response = api(getattr(team_users, who)).patch(f"/api/teams/{team_users.team.pk}/",
                                                       {"scan_retention_days": 30}, format="json")
        assert response.status_code == 403 and "owner" in response.json()["detail"]
        team_users.team.refresh_from_db()
        assert team_users.team.scan_retention_days is None

    @pytest.mark.parametrize("who", ["teammate", "viewer"])
    def test_it_refuses_non_owners_before_reading_the_settings(self, team_users, who):
        response = api(getattr(team_users, who)).patch(f"/api/teams/{team_users.team.pk}/",
                                                       {"scan_retention_days": 1}, format="json")
        assert response.status_code == 403 and response.json() == {
            "detail": "Only a team owner changes the team's settings."}

    def test_it_treats_another_team_as_missing(self, team_users):
        client = api(team_users.owner)
        other = team_users.other_team.pk
        assert client.get(f"/api/teams/{other}/").status_code == 404
        assert client.patch(f"/api/teams/{other}/", {"scan_retention_days": 30}, format="json").status_code == 404
        assert Team.objects.get(pk=other).scan_retention_days is None

    def test_an_owner_renames_the_team_on_one_line(self, team_users):
        # The name was read-only: a PATCH answered 200 and changed nothing, and nothing else renamed a team.
        url, client = f"/api/teams/{team_users.team.pk}/", api(team_users.owner)
        response = client.patch(url, {"name": "Acme\nBcc: x@example.com"}, format="json")
        assert response.status_code == 400 and "one line of text" in response.json()["name"][0]
        assert client.patch(url, {"name": "Renamed"}, format="json").json()["name"] == "Renamed"
        # One rule with every other name: an emoji's joiner is no line break (refused for a team, taken for a campaign)
        assert client.patch(url, {"name": "Design \U0001F469\u200d\U0001F3A8"}, format="json").status_code == 200
        assert client.patch(url, {"name": "Renamed"}, format="json").status_code == 200
        assert api(team_users.teammate).patch(url, {"name": "Mine"}, format="json").status_code == 403
        team_users.team.refresh_from_db()
        assert team_users.team.name == "Renamed"

    def test_a_shorter_retention_that_deletes_scans_needs_a_confirmation(self, team_users):
        # It saved at once (200), and the next daily pass deleted the scans for good.
        from datetime import timedelta

        from django.utils import timezone

        from campaigns.drainer import store_events
        from campaigns.models import Campaign, Placement

        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        store_events([event(poster, timezone.now() - timedelta(days=age)) for age in (400, 100, 1)])
        url = f"/api/teams/{team_users.team.pk}/"
        response = api(team_users.owner).patch(url, {"scan_retention_days": 30}, format="json")
        assert response.status_code == 409 and response.json()["scans_deleted"] == 2
        assert '"confirm_retention": 30' in response.json()["detail"]
        team_users.team.refresh_from_db()
        assert team_users.team.scan_retention_days is None
        response = api(team_users.owner).patch(url, {"scan_retention_days": 30, "confirm_retention": 30},
                                                  format="json")
        assert response.status_code == 200 and "confirm_retention" not in response.json()
        team_users.team.refresh_from_db()
        assert team_users.team.scan_retention_days == 30
        assert api(team_users.owner).patch(url, {"scan_retention_days": 60}, format="json").status_code == 200

