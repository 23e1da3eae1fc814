"""Names a reader tells apart (`campaigns.names`): two requests that name alike at once make one row."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from campaigns import names
from campaigns.models import Campaign, Placement

pytestmark = pytest.mark.django_db(transaction=True)  # two threads, each its own connection, see only commits


def at_once(monkeypatch, send) -> list[int]:
    """Run `send()` in two threads: the first pauses just after its name check, the second runs meanwhile (it waits
    for the first's lock where there is one); the first then saves. Their status codes, in order."""
    checked, resume = threading.Event(), threading.Event()
    named = names._named

    def pausing(rows, name):
        taken = named(rows, name)
        if threading.current_thread().name == "first":
            checked.set()
            resume.wait(10)
        return taken

    monkeypatch.setattr(names, "_named", pausing)
    codes = {}

    def run(tag):
        try:
            codes[tag] = send()
        finally:
            connection.close()

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert checked.wait(10)
    second = threading.Thread(target=run, args=("second",), name="second")
    second.start()
    second.join(1)  # without a lock it has checked and saved by now; with one it waits for the first
    resume.set()
    first.join(10)
    second.join(10)
    return [codes.get("first"), codes.get("second")]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_double_click_on_new_campaign_makes_one(team_users, monkeypatch):
    # Both requests checked the name before either saved: the team got two campaigns of one name
    data = {"team": team_users.team.pk, "name": "Summer Sale", "destination": "https://shop.example.com/",
            "utm_source": "qr", "utm_medium": "print", "dates_route": "on"}
    codes = at_once(monkeypatch, lambda: signed_in(team_users.owner).post("/campaigns/new/", data).status_code)
    assert codes == [302, 400]
    assert Campaign.objects.filter(name="Summer Sale").count() == 1


def test_two_api_calls_adding_a_placement_of_one_name_make_one(team_users, monkeypatch):
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")

    def send() -> int:
        client = APIClient()
        client.force_authenticate(team_users.owner)
        return client.post("/api/placements/", {"campaign": campaign.pk, "name": "Poster"}, format="json").status_code

    assert at_once(monkeypatch, send) == [201, 400]
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
    response = signed_in(team_users.owner).post(f"/campaigns/{campaign.pk}/placements/new/", {
        "name": "Poster", "kind": "poster", "location": "", "active": "on"})
    assert response.status_code == 400 and "archived" in response.content.decode()
    assert not Placement.objects.filter(campaign=campaign).exists()
