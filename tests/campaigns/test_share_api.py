"""The share-link API (`campaigns.share_api`): owners and editors make, list and revoke; the link is shown once;
viewers and other teams see nothing."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from campaigns import shares
from campaigns.models import Campaign, ReportShare


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def _fresh_rates():
    cache.clear()  # the shared page's rate is counted per address, and every test client is 127.0.0.1
    yield
    cache.clear()


@pytest.fixture
def their_campaign(team_users) -> Campaign:
    return Campaign.objects.create(team=team_users.other_team, name="Rival sale", destination="https://x.io/")


class TestShareApi:
    def test_it_makes_a_share_whose_link_opens_the_report_and_is_shown_once(self, team_users, campaign):
        response = api(team_users.teammate).post("/api/shares/", {"campaign": campaign.pk, "days": 7,
                                                                  "label": "Agency"}, format="json")
        assert response.status_code == 201 and response["Cache-Control"] == "no-store"
        body = response.json()
        assert body["live"] is True and body["label"] == "Agency" and "/campaigns/shared/" in body["url"]
        page = Client().get(body["url"].split("testserver")[-1])
        assert page.status_code == 200 and "Spring Sale" in page.content.decode()
        listed = api(team_users.owner).get("/api/shares/").json()["results"]
        assert [row["id"] for row in listed] == [body["id"]] and "url" not in listed[0]
        assert "url" not in api(team_users.owner).get(f"/api/shares/{body['id']}/").json()

    def test_it_revokes_a_share_and_the_link_stops_opening(self, team_users, campaign):
        share, token = shares.create(campaign, team_users.owner, days=7)
        response = api(team_users.teammate).post(f"/api/shares/{share.pk}/revoke/")
        assert response.status_code == 200 and response.json()["live"] is False
        assert response.json()["revoked_at"] is not None
        assert Client().get(f"/campaigns/shared/{token}/").status_code == 410
        again = api(team_users.teammate).post(f"/api/shares/{share.pk}/revoke/")
        assert again.json()["revoked_at"] == response.json()["revoked_at"]

    @pytest.mark.parametrize("body, field", [
        ({"days": 0}, "days"), ({"days": 91}, "days"), ({"days": "soon"}, "days"), ({"label": "x" * 101}, "label"),
        ({"campaign": None}, "campaign"),
    ])
    def test_it_refuses_bad_input_with_one_message(self, team_users, campaign, body, field):
        response = api(team_users.owner).post("/api/shares/", {"campaign": campaign.pk, **body}, format="json")
        assert response.status_code == 400 and list(response.json()) == [field]
        assert not ReportShare.objects.exists()

    def test_it_refuses_a_viewer_with_403_and_lists_them_nothing(self, team_users, campaign):
        shares.create(campaign, team_users.owner)
        client = api(team_users.viewer)
        assert client.post("/api/shares/", {"campaign": campaign.pk}, format="json").status_code == 403
        assert client.get("/api/shares/").json()["results"] == []
        assert client.post(f"/api/shares/{ReportShare.objects.get().pk}/revoke/").status_code == 404
        assert ReportShare.objects.count() == 1 and ReportShare.objects.get().revoked_at is None

    def test_it_treats_another_teams_campaign_and_share_as_missing(self, team_users, campaign, their_campaign):
        theirs, _ = shares.create(their_campaign, team_users.outsider)
        client = api(team_users.owner)
        made = client.post("/api/shares/", {"campaign": their_campaign.pk}, format="json")
        missing = client.post("/api/shares/", {"campaign": 999999}, format="json")
        assert made.status_code == missing.status_code == 400
        assert made.json()["campaign"] == [m.replace("999999", str(their_campaign.pk))
                                           for m in missing.json()["campaign"]]
        assert client.get(f"/api/shares/{theirs.pk}/").status_code == 404
        assert client.post(f"/api/shares/{theirs.pk}/revoke/").status_code == 404
        assert client.get(f"/api/shares/?campaign={their_campaign.pk}").status_code == 400
        theirs.refresh_from_db()
        assert theirs.revoked_at is None and ReportShare.objects.count() == 1

    def test_it_filters_by_campaign(self, team_users, campaign):
        other = Campaign.objects.create(team=team_users.team, name="Autumn", destination="https://x.io/")
        share, _ = shares.create(campaign, team_users.owner)
        shares.create(other, team_users.owner)
        listed = api(team_users.owner).get(f"/api/shares/?campaign={campaign.pk}").json()["results"]
        assert [row["id"] for row in listed] == [share.pk]

    def test_it_has_no_update_or_delete(self, team_users, campaign):
        share, _ = shares.create(campaign, team_users.owner, label="Agency")
        client = api(team_users.owner)
        assert client.patch(f"/api/shares/{share.pk}/", {"label": "x"}, format="json").status_code == 405
        assert client.delete(f"/api/shares/{share.pk}/").status_code == 405
        share.refresh_from_db()
        assert share.label == "Agency"
