"""The alert API's filters and the body its dismiss refuses (`campaigns.alert_api`); listing and dismissing are in
test_alerts.py's TestAlertApi."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns.models import Campaign, Placement, PlacementAlert


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def alerts(campaign, team_users) -> tuple[PlacementAlert, PlacementAlert]:
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    open_one = PlacementAlert.objects.create(placement=placement, kind="stopped", day=date(2026, 5, 2), message="x")
    dismissed = PlacementAlert.objects.create(placement=placement, kind="dropped", day=date(2026, 5, 1), message="y",
                                              dismissed_at=timezone.now(), dismissed_by=team_users.owner)
    return open_one, dismissed


class TestAlertFilters:
    # Every yes/no filter of the API reads true and false in any case, and 1 and 0 (qartsite.filters).
    @pytest.mark.parametrize("value, expected", [("true", [0]), ("false", [1]), ("", [0, 1]), ("True", [0]),
                                                 ("1", [0]), ("0", [1])])
    def test_it_filters_open_and_dismissed_alerts(self, team_users, alerts, value, expected):
        rows = api(team_users.viewer).get(f"/api/alerts/?open={value}").json()["results"]
        assert [row["id"] for row in rows] == [alerts[index].pk for index in expected]

    @pytest.mark.parametrize("value", ["maybe", "2", "yes"])
    def test_it_refuses_an_open_value_it_cannot_read(self, team_users, alerts, value):
        response = api(team_users.viewer).get(f"/api/alerts/?open={value}")
        assert response.status_code == 400 and list(response.json()) == ["open"]

    def test_it_answers_another_teams_placement_like_a_missing_one(self, team_users, alerts):
        theirs = Placement.objects.create(name="Rival poster", campaign=Campaign.objects.create(
            team=team_users.other_team, name="Rival sale", destination="https://x.io/"))
        PlacementAlert.objects.create(placement=theirs, kind="stopped", day=date(2026, 5, 1), message="z")
        client = api(team_users.owner)
        other, missing = client.get(f"/api/alerts/?placement={theirs.pk}"), client.get("/api/alerts/?placement=999999")
        assert other.status_code == missing.status_code == 400 and list(other.json()) == ["placement"]
        ours = client.get(f"/api/alerts/?placement={alerts[0].placement_id}").json()["results"]
        assert len(ours) == 2


def test_dismiss_refuses_a_body_and_leaves_the_alert_open(team_users, alerts):
    # {"dismissed": false} dismissed the alert and answered 200: the body was not read.
    response = api(team_users.owner).post(f"/api/alerts/{alerts[0].pk}/dismiss/", {"dismissed": False}, format="json")
    assert response.status_code == 400 and response.json() == {"dismissed": ["This action reads no body: send none."]}
    alerts[0].refresh_from_db()
    assert alerts[0].dismissed_at is None
