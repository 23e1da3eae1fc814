"""Share links of a campaign's report (`campaigns.shares`, `campaigns.share_views`): editors make and revoke them,
anyone with a live link reads the report without signing in, and it shows no personal data."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from campaigns import drainer, scan_buffer, shares
from campaigns.models import Placement, ReportShare


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station Poster")


def shared_link(client: Client, campaign, **data) -> str:
    response = client.post(reverse("campaigns:share_new", args=[campaign.pk]), {"days": 7, **data})
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    return re.search(r'value="(http[^"]+/shared/[^"]+/)"', response.content.decode()).group(1)


class TestShares:
    def test_it_opens_the_report_without_login_and_without_personal_data(self, client, team_users, campaign,
                                                                         placement):
        team_users.owner.email = "owner@example.com"
        team_users.owner.save()
        drainer.store_events([scan_buffer.scan_event(
            placement.pk, timezone.now(), browser="Safari", os="iOS", device_class="mobile", referer="",
            accept_language="de", country="DE", is_bot=False, visitor_key="k" * 32)])
        client.force_login(team_users.teammate)
        link = shared_link(client, campaign, label="Agency")
        anonymous = Client()
        response = anonymous.get(link.split("testserver")[-1])
        page = response.content.decode()
        assert response.status_code == 200 and "Spring Sale" in page and "Station Poster" in page
        assert response["Cache-Control"] == "no-store" and "noindex" in response["X-Robots-Tag"]
        for private in ("k" * 32, "owner@example.com", "teammate", "Acme", placement.slug, "Agency"):
            assert private not in page

    def test_it_keeps_only_a_hash_of_the_token(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        token = shared_link(client, campaign).rstrip("/").rsplit("/", 1)[1]
        share = ReportShare.objects.get()
        assert share.token_hash == shares.token_hash(token) and token not in share.token_hash

    def test_it_stops_opening_once_revoked(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        link = shared_link(client, campaign).split("testserver")[-1]
        client.post(reverse("campaigns:share_revoke", args=[ReportShare.objects.get().pk]))
        response = Client().get(link)
        assert response.status_code == 404 and "does not open a report" in response.content.decode()

    def test_it_stops_opening_once_expired(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        link = shared_link(client, campaign).split("testserver")[-1]
        ReportShare.objects.update(expires=timezone.now() - timedelta(seconds=1))
        assert Client().get(link).status_code == 404

    @pytest.mark.parametrize("token", ["nope", "x" * 500, "%00"])
    def test_it_answers_404_to_unknown_tokens(self, db, token):
        assert Client().get(f"/campaigns/shared/{token}/").status_code == 404

    @pytest.mark.parametrize("days", [0, 91, "soon"])
    def test_it_refuses_a_bad_lifetime_with_one_message(self, client, team_users, campaign, days):
        client.force_login(team_users.owner)
        response = client.post(reverse("campaigns:share_new", args=[campaign.pk]), {"days": days}, follow=True)
        assert not ReportShare.objects.exists() and "Share link not made" in response.content.decode()

    @pytest.mark.parametrize("who, status", [("viewer", 403), ("outsider", 404)])
    def test_it_lets_only_the_teams_editors_make_and_revoke(self, client, team_users, campaign, who, status):
        share, _ = shares.create(campaign, team_users.owner)
        client.force_login(getattr(team_users, who))
        assert client.post(reverse("campaigns:share_new", args=[campaign.pk]), {"days": 7}).status_code == status
        assert client.get(reverse("campaigns:shares", args=[campaign.pk])).status_code == status
        assert client.post(reverse("campaigns:share_revoke", args=[share.pk])).status_code == status
        assert ReportShare.objects.filter(revoked_at__isnull=True).count() == 1

    def test_it_needs_the_csrf_token(self, team_users, campaign):
        client = Client(enforce_csrf_checks=True)
        client.force_login(team_users.owner)
        assert client.post(reverse("campaigns:share_new", args=[campaign.pk]), {"days": 7}).status_code == 403
        assert not ReportShare.objects.exists()
