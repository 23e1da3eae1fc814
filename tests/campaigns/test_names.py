"""Names a reader tells apart (`campaigns.names`): two requests that name alike at once make one row."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns import names
from campaigns.models import Campaign, Placement
from tests.clients import logged_in
from tests.conftest import at_once

pytestmark = pytest.mark.django_db(transaction=True)  # two threads, each its own connection, see only commits


def test_a_double_click_on_new_campaign_makes_one(team_users, monkeypatch):
    # Both requests checked the name before either saved: the team got two campaigns of one name
    data = {"team": team_users.team.pk, "name": "Summer Sale", "destination": "https://shop.example.com/",
            "utm_source": "qr", "utm_medium": "print", "dates_route": "on"}

    def send() -> int:
        return logged_in(team_users.owner).post("/campaigns/new/", data).status_code

    codes = at_once(monkeypatch, (names, "_named"), send, send)
    assert codes == [302, 400]
    assert Campaign.objects.filter(name="Summer Sale").count() == 1


def test_two_api_calls_adding_a_placement_of_one_name_make_one(team_users, monkeypatch):
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")

    def send() -> int:
        client = APIClient()
        client.force_authenticate(team_users.owner)
        return client.post("/api/placements/", {"campaign": campaign.pk, "name": "Poster"}, format="json").status_code

    assert at_once(monkeypatch, (names, "_named"), send, send) == [201, 400]
    assert Placement.objects.filter(campaign=campaign).count() == 1


def test_a_placement_added_as_its_campaign_is_archived_is_refused(team_users, monkeypatch):
    # The page read the campaign (active) at the start of the request; it was archived before the name check, and
    # the placement was added to the archived campaign all the same.
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
    hold = names._hold

    def archived_meanwhile(row):
        Campaign.objects.filter(pk=campaign.pk).update(archived=True)  # another request's archive, committed
        hold(row)

    monkeypatch.setattr(names, "_hold", archived_meanwhile)
    response = logged_in(team_users.owner).post(f"/campaigns/{campaign.pk}/placements/new/", {
        "name": "Poster", "kind": "poster", "location": "", "active": "on"})
    assert response.status_code == 400 and "archived" in response.content.decode()
    assert not Placement.objects.filter(campaign=campaign).exists()
