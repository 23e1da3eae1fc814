"""The webhook API (`campaigns.webhook_api`): owners only, secret shown once, other teams invisible."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns import webhooks
from campaigns.models import WebhookDelivery, WebhookEndpoint


@pytest.fixture
def endpoint(team_users) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/qart",
                                          events=["scan.created"], secret=webhooks.new_secret())


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


class TestWebhookApi:
    def test_it_makes_an_endpoint_and_shows_the_secret_only_then(self, team_users):
        response = api(team_users.owner).post("/api/webhooks/", {
            "team": team_users.team.pk, "url": "https://hooks.example.com/a", "events": ["generation.finished"]},
            format="json")
        assert response.status_code == 201 and response.json()["secret"].startswith("whsec_")
        assert response.json()["secret"] == WebhookEndpoint.objects.get().secret
        listed = api(team_users.owner).get("/api/webhooks/").json()["results"]
        assert [row["url"] for row in listed] == ["https://hooks.example.com/a"] and "secret" not in listed[0]

    @pytest.mark.parametrize("body, field", [
        ({"url": "http://hooks.example.com/", "events": ["scan.created"]}, "url"),
        ({"url": "https://hooks.example.com/", "events": ["scan.deleted"]}, "events"),
        ({"url": "https://hooks.example.com/", "events": []}, "events"),
    ])
    def test_it_refuses_bad_input_with_a_400(self, team_users, body, field):
        response = api(team_users.owner).post("/api/webhooks/", {"team": team_users.team.pk, **body}, format="json")
        assert response.status_code == 400 and field in response.json()
        assert not WebhookEndpoint.objects.exists()

    def test_it_refuses_a_team_the_user_does_not_own(self, team_users):
        response = api(team_users.teammate).post("/api/webhooks/", {
            "team": team_users.team.pk, "url": "https://hooks.example.com/", "events": ["scan.created"]},
            format="json")
        assert response.status_code == 400 and "team" in response.json()

    @pytest.mark.parametrize("who", ["teammate", "viewer", "outsider"])
    def test_it_hides_endpoints_and_deliveries_from_all_but_owners(self, team_users, endpoint, who):
        WebhookDelivery.objects.create(endpoint=endpoint, message_id="m1", event="scan.created", ok=True)
        client = api(getattr(team_users, who))
        assert client.get("/api/webhooks/").json()["results"] == []
        assert client.get(f"/api/webhooks/{endpoint.pk}/").status_code == 404
        assert client.delete(f"/api/webhooks/{endpoint.pk}/").status_code == 404
        assert client.post(f"/api/webhooks/{endpoint.pk}/rotate-secret/").status_code == 404
        assert client.get("/api/webhook-deliveries/").json()["results"] == []

    def test_it_lists_deliveries_to_the_owner(self, team_users, endpoint):
        WebhookDelivery.objects.create(endpoint=endpoint, message_id="m1", event="scan.created", ok=False,
                                       error="The receiver answered 500", status_code=500)
        [row] = api(team_users.owner).get("/api/webhook-deliveries/").json()["results"]
        assert row["message_id"] == "m1" and row["status_code"] == 500 and not row["ok"]

    def test_it_rotates_the_secret(self, team_users, endpoint):
        response = api(team_users.owner).post(f"/api/webhooks/{endpoint.pk}/rotate-secret/")
        assert response.status_code == 200 and response.json()["secret"] == WebhookEndpoint.objects.get().secret
        assert response.json()["secret"] != endpoint.secret

    def test_it_switches_a_disabled_endpoint_on_with_a_fresh_start(self, team_users, endpoint):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False, disabled_reason="failed")
        response = api(team_users.owner).patch(f"/api/webhooks/{endpoint.pk}/", {"active": True}, format="json")
        assert response.status_code == 200
        endpoint.refresh_from_db()
        assert endpoint.active and endpoint.disabled_reason == "" and endpoint.failing_since is None


def test_it_answers_another_teams_endpoint_filter_like_a_missing_one(team_users, endpoint):
    theirs = WebhookEndpoint.objects.create(team=team_users.other_team, url="https://rival.example.com/",
                                            events=["scan.created"], secret=webhooks.new_secret())
    client = api(team_users.owner)
    other = client.get(f"/api/webhook-deliveries/?endpoint={theirs.pk}")
    missing = client.get("/api/webhook-deliveries/?endpoint=999999")
    assert other.status_code == missing.status_code == 400 and list(other.json()) == ["endpoint"]
    assert client.get(f"/api/webhook-deliveries/?endpoint={endpoint.pk}").status_code == 200
