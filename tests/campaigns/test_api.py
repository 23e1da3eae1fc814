"""The campaign API (`campaigns.api`), and signing in to the API: tokens, sessions and CSRF."""

from __future__ import annotations

import io
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from campaigns.models import Campaign, ScanEvent
from tests.clients import api_as

CSRF_SECRET = "abcdefghijklmnopqrstuvwxyzABCDEF"  # any 32 letters make a valid CSRF cookie


@pytest.mark.django_db
class TestAuthentication:
    def test_it_accepts_a_token_made_by_qart_token(self, team_users, campaign):
        out = io.StringIO()
        call_command("qart_token", "owner", stdout=out, stderr=io.StringIO())
        key = out.getvalue().strip()
        response = APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION=f"Token {key}")
        assert response.status_code == 200 and response.json()["results"][0]["id"] == campaign.pk

    def test_token_writes_need_no_csrf_token(self, team_users):
        _, key = AuthToken.objects.create(user=team_users.owner)
        response = Client(enforce_csrf_checks=True).post(
            "/api/campaigns/", {"name": "Summer", "destination": "https://shop.example.com/summer"},
            content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}")
        assert response.status_code == 201

    def test_it_refuses_anonymous_requests_and_bad_tokens_with_401(self, team_users, campaign):
        anonymous = APIClient().get("/api/campaigns/")
        assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
        assert APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION="Token nope").status_code == 401

    def test_it_accepts_a_session(self, team_users, campaign):
        client = Client()
        assert client.login(request=HttpRequest(), username="viewer", password="pw-viewer-1")  # axes needs a request
        assert client.get("/api/campaigns/").json()["count"] == 1

    def test_it_enforces_csrf_on_session_writes(self, team_users):
        client = Client(enforce_csrf_checks=True)
        client.force_login(team_users.owner)
        body = {"name": "Summer", "destination": "https://shop.example.com/summer"}
        refused = client.post("/api/campaigns/", body, content_type="application/json")
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        assert not Campaign.objects.exists()
        client.cookies["csrftoken"] = CSRF_SECRET
        accepted = client.post("/api/campaigns/", body, content_type="application/json", HTTP_X_CSRFTOKEN=CSRF_SECRET)
        assert accepted.status_code == 201


@pytest.mark.django_db
class TestCampaigns:
    def test_it_creates_in_the_users_only_editable_team(self, team_users):
        response = api_as(team_users.teammate).post("/api/campaigns/", {
            "name": "Summer Sale", "destination": "https://shop.example.com/summer"}, format="json")
        assert response.status_code == 201, response.content
        created = Campaign.objects.get()
        assert created.team == team_users.team and created.utm_campaign == "summer-sale"
        assert response.json()["team"] == team_users.team.pk

    def test_it_asks_for_a_team_when_the_user_edits_in_several(self, team_users):
        team_users.outsider.memberships.create(team=team_users.team, role="editor")
        client = api_as(team_users.outsider)
        body = {"name": "Summer", "destination": "https://shop.example.com/"}
        response = client.post("/api/campaigns/", body, format="json")
        assert response.status_code == 400 and "more than one team" in response.json()["team"][0]
        assert client.post("/api/campaigns/", {**body, "team": team_users.team.pk}, format="json").status_code == 201
        assert Campaign.objects.get().team == team_users.team

    def test_it_refuses_to_create_in_another_team_as_if_it_did_not_exist(self, team_users):
        client = api_as(team_users.outsider)
        body = {"name": "Hijack", "destination": "https://shop.example.com/"}
        foreign = client.post("/api/campaigns/", {**body, "team": team_users.team.pk}, format="json")
        missing = client.post("/api/campaigns/", {**body, "team": 999999}, format="json")
        assert foreign.status_code == missing.status_code == 400
        assert foreign.json()["team"] == [m.replace("999999", str(team_users.team.pk)) for m in missing.json()["team"]]
        assert not Campaign.objects.exists()

    def test_another_teams_campaigns_answer_404_and_stay_unchanged(self, team_users, campaign):
        client = api_as(team_users.outsider)
        assert client.get("/api/campaigns/").json()["count"] == 0
        assert client.get(f"/api/campaigns/{campaign.pk}/").status_code == 404
        assert client.patch(f"/api/campaigns/{campaign.pk}/", {"name": "Mine"}, format="json").status_code == 404
        assert client.delete(f"/api/campaigns/{campaign.pk}/").status_code == 404
        campaign.refresh_from_db()
        assert campaign.name == "Spring Sale"

    def test_viewers_read_but_cannot_create_change_or_delete(self, team_users, campaign):
        client = api_as(team_users.viewer)
        assert client.get(f"/api/campaigns/{campaign.pk}/").status_code == 200
        created = client.post("/api/campaigns/", {"name": "X", "destination": "https://a.example/"}, format="json")
        assert created.status_code == 403 and "Viewers" in created.json()["detail"]
        assert client.patch(f"/api/campaigns/{campaign.pk}/", {"name": "X"}, format="json").status_code == 403
        assert client.delete(f"/api/campaigns/{campaign.pk}/").status_code == 403
        assert Campaign.objects.get().name == "Spring Sale"

    def test_a_team_has_one_active_campaign_of_a_name(self, team_users, campaign):
        # The list showed two identical rows; "Spring sale" and "SPRING SALE" are one name to a reader
        client = api_as(team_users.owner)
        body = {"name": "SPRING SALE", "destination": "https://a.example/"}
        refused = client.post("/api/campaigns/", body, format="json")
        assert refused.status_code == 400
        assert refused.json() == {"name": ["Your team already has a campaign with this name: give this one another."]}
        other = client.post("/api/campaigns/", {**body, "name": "Autumn"}, format="json").json()
        assert client.patch(f"/api/campaigns/{other['id']}/", {"name": "spring sale"},
                            format="json").status_code == 400
        assert client.patch(f"/api/campaigns/{campaign.pk}/", {"name": "Spring SALE"}, format="json").status_code == 200
        client.delete(f"/api/campaigns/{campaign.pk}/")  # archived: a team runs "Spring sale" every year
        assert client.post("/api/campaigns/", body, format="json").status_code == 201
        assert api_as(team_users.outsider).post("/api/campaigns/", body, format="json").status_code == 201  # its team

    def test_the_name_rule_leaves_archived_and_older_pairs_editable_and_guards_a_return(self, team_users, campaign):
        client = api_as(team_users.owner)
        client.delete(f"/api/campaigns/{campaign.pk}/")  # archived
        fresh = client.post("/api/campaigns/", {"name": "Spring Sale", "destination": "https://a.example/"},
                            format="json").json()
        # The archived one's own edits (its fallback is where its printed codes lead now)
        edit = client.patch(f"/api/campaigns/{campaign.pk}/", {"name": "Spring Sale",
                                                               "fallback_url": "https://b.example/"}, format="json")
        assert edit.status_code == 200, edit.json()
        # Back from the archive beside an active one of its name: refused, where it made two
        back = client.patch(f"/api/campaigns/{campaign.pk}/", {"archived": False}, format="json")
        assert back.status_code == 400 and "already has a campaign with this name" in back.json()["name"][0]
        assert Campaign.objects.get(pk=campaign.pk).archived
        assert client.patch(f"/api/campaigns/{campaign.pk}/", {"archived": False, "name": "Spring Sale 2025"},
                            format="json").status_code == 200
        # A pair of one name made before the rule: each stays editable under its own name
        Campaign.objects.filter(pk=fresh["id"]).update(name="Spring Sale 2025")
        assert client.patch(f"/api/campaigns/{fresh['id']}/", {"utm_source": "poster"},
                            format="json").status_code == 200

    @pytest.mark.parametrize("path", ["/api/campaigns/", "/api/placements/", "/api/generations/"])
    def test_a_user_in_no_team_is_told_so_not_called_a_viewer(self, team_users, path):
        from django.contrib.auth import get_user_model

        lonely = get_user_model().objects.create_user("lonely", password="pw-lonely-1")
        created = api_as(lonely).post(path, {"name": "X", "destination": "https://a.example/"}, format="json")
        assert created.status_code == 403
        assert created.json()["detail"] == ("You are not in a team yet, so there is nothing you can change. Ask a "
                                            "team owner to invite you.")

    @pytest.mark.parametrize("field, value", [("name", "Summer\nSale"), ("name", "Sale \u202egnirps"),
                                              ("utm_source", "a\r\nSet-Cookie: x=1"), ("utm_campaign", "tab\there")])
    def test_names_and_utm_values_are_one_line_of_text(self, team_users, campaign, field, value):
        client = api_as(team_users.owner)
        response = client.patch(f"/api/campaigns/{campaign.pk}/", {field: value}, format="json")
        assert response.status_code == 400
        assert "is one line of text: no line breaks, tabs or control characters." in response.json()[field][0]
        assert getattr(Campaign.objects.get(), field) != value
        # Joiners are text: an emoji family and scripts that join letters need them
        family = "👨\u200d👩\u200d👧 Family week"
        joined = client.patch(f"/api/campaigns/{campaign.pk}/", {"name": family}, format="json")
        assert joined.status_code == 200 and Campaign.objects.get().name == family

    def test_delete_archives_and_answers_the_archived_campaign(self, team_users, campaign, placement):
        ScanEvent.objects.create(placement=placement, device_class="mobile")
        client = api_as(team_users.teammate)
        response = client.delete(f"/api/campaigns/{campaign.pk}/")
        assert response.status_code == 200 and response.json()["archived"] is True
        campaign.refresh_from_db()
        assert campaign.archived and campaign.placements.get() == placement and placement.scans.count() == 1
        assert client.get(f"/api/campaigns/{campaign.pk}/").json()["archived"] is True
        unarchived = client.patch(f"/api/campaigns/{campaign.pk}/", {"archived": False}, format="json")
        assert unarchived.status_code == 200 and not Campaign.objects.get().archived

    def test_it_takes_a_fallback_url_and_checks_it_like_the_destination(self, team_users, campaign):
        client = api_as(team_users.owner)
        url = f"/api/campaigns/{campaign.pk}/"
        refused = client.patch(url, {"fallback_url": "javascript:alert(1)"}, format="json")
        assert refused.status_code == 400 and "fallback_url" in refused.json()
        accepted = client.patch(url, {"fallback_url": "https://shop.example.com/ended"}, format="json")
        assert accepted.status_code == 200 and accepted.json()["fallback_url"] == "https://shop.example.com/ended"

    def test_an_editor_in_one_team_cannot_create_where_they_only_view(self, team_users):
        team_users.outsider.memberships.create(team=team_users.team, role="viewer")
        response = api_as(team_users.outsider).post("/api/campaigns/", {
            "name": "X", "destination": "https://a.example/", "team": team_users.team.pk}, format="json")
        assert response.status_code == 403 and not Campaign.objects.exists()

    @pytest.mark.parametrize(("url", "message"), [
        ("ftp://shop.example.com/", "The destination must start with http:// or https://."),
        ("https://user:secret@shop.example.com/", "The destination must not contain a user name or password."),
        ("javascript:alert(1)", "The destination must start with http:// or https://."),
        ("https://shop", "The destination needs a host name, like https://example.com/offer."),
        # Strict, unlike the pages' forms, which add https:// themselves: a client learns what to send instead.
        ("shop.example.com/winter", "The destination must start with http:// or https://, like "
                                    "https://shop.example.com/winter."),
        # DRF's length check added "Ensure this field has no more than 2000 characters." to this one.
        ("https://shop.example.com/" + "x" * 2000, "The destination contains spaces or is too long."),
    ])
    def test_it_answers_a_bad_destination_with_400_and_one_message(self, team_users, url, message):
        response = api_as(team_users.owner).post("/api/campaigns/", {"name": "X", "destination": url}, format="json")
        assert response.status_code == 400 and response.json()["destination"] == [message]
        assert not Campaign.objects.exists()

    def test_it_answers_a_bad_fallback_with_one_message(self, team_users, campaign):
        response = api_as(team_users.owner).patch(f"/api/campaigns/{campaign.pk}/", {
            "fallback_url": "ftp://shop.example.com/"}, format="json")
        assert response.status_code == 400
        assert response.json()["fallback_url"] == ["The destination must start with http:// or https://."]

    def test_it_answers_a_check_made_only_on_save_with_400_not_500(self, team_users, campaign, monkeypatch):
        # Campaign.save validates the destination itself; whatever it refuses must come back as a 400.
        def refuse(url: str) -> None:
            raise ValidationError("That host is blocked.")

        monkeypatch.setattr("campaigns.links.validate_destination", refuse)
        response = api_as(team_users.owner).patch(f"/api/campaigns/{campaign.pk}/", {"name": "Renamed"}, format="json")
        assert response.status_code == 400 and response.json() == {"destination": ["That host is blocked."]}

    def test_it_refuses_an_end_before_the_start(self, team_users, campaign):
        response = api_as(team_users.owner).patch(f"/api/campaigns/{campaign.pk}/", {
            "starts_on": "2026-05-10", "ends_on": "2026-05-01"}, format="json")
        assert response.status_code == 400 and "ends_on" in response.json()

    def test_a_campaign_stays_in_its_team(self, team_users, campaign):
        team_users.owner.memberships.create(team=team_users.other_team, role="editor")
        response = api_as(team_users.owner).patch(f"/api/campaigns/{campaign.pk}/", {
            "team": team_users.other_team.pk}, format="json")
        assert response.status_code == 400 and "team" in response.json()
        campaign.refresh_from_db()
        assert campaign.team == team_users.team

    def test_it_filters_and_orders(self, team_users, campaign):
        Campaign.objects.create(team=team_users.team, name="Archived", destination="https://a.example/", archived=True)
        client = api_as(team_users.owner)
        assert [c["name"] for c in client.get("/api/campaigns/?archived=false").json()["results"]] == ["Spring Sale"]
        assert [c["name"] for c in client.get("/api/campaigns/?ordering=name").json()["results"]] == [
            "Archived", "Spring Sale"]
        assert client.get(f"/api/campaigns/?team={team_users.other_team.pk}").status_code == 400

    def test_it_pages_by_fifty(self, team_users):
        Campaign.objects.bulk_create(Campaign(team=team_users.team, name=f"C{n:02d}", destination="https://a.example/")
                                     for n in range(51))
        client = api_as(team_users.owner)
        first = client.get("/api/campaigns/").json()
        assert first["count"] == 51 and len(first["results"]) == 50 and first["next"].endswith("?page=2")
        assert len(client.get(first["next"]).json()["results"]) == 1


@pytest.mark.django_db
def test_the_docs_name_no_python_module(team_users):
    # The campaigns' description sent integrators to "`campaigns.bulk_api`", the rules' to
    # "`campaigns.rules.clean_rules`", the webhooks' to "`OneAtATime`": our code, which they cannot open.
    text = api_as(team_users.owner).get("/api/schema/?format=json").content.decode()
    assert "Destination rules by kind" in text
    assert not re.findall(r"`(?:campaigns|generator|qartsite)\.\w+|OneAtATime", text)
