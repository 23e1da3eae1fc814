"""The API's routes (`qartsite.api_urls`): every endpoint answers with or without its trailing slash, and the schema
lists each path once, with the slash."""

from __future__ import annotations

import pytest
from django.urls import resolve
from rest_framework.test import APIClient

from campaigns.models import Campaign, WebhookEndpoint
from campaigns.webhooks import new_secret
from tests.clients import signed_in

pytestmark = pytest.mark.django_db


def schema_paths() -> list[str]:
    return list(APIClient().get("/api/schema/?format=json").json()["paths"])


class TestTrailingSlash:
    def test_it_creates_without_the_trailing_slash(self, team_users, settings):
        # Under DEBUG, Django's APPEND_SLASH answered this POST with a RuntimeError page; in production, a 301 to
        # the slashed URL that clients follow with a GET and no body.
        settings.DEBUG = True
        response = signed_in(team_users.owner).post("/api/campaigns", {
            "team": team_users.team.pk, "name": "Summer", "destination": "https://shop.example.com/"}, format="json")
        assert response.status_code == 201, response.content[:300]
        assert Campaign.objects.get().name == "Summer"

    def test_it_reads_changes_and_acts_without_the_trailing_slash(self, team_users):
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        endpoint = WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/",
                                                  events=["scan.created"], secret=new_secret())
        client = signed_in(team_users.owner)
        assert client.get("/api/campaigns").json()["count"] == 1
        assert client.get(f"/api/campaigns/{campaign.pk}").json()["name"] == "Spring"
        assert client.patch(f"/api/campaigns/{campaign.pk}", {"name": "Autumn"}, format="json").status_code == 200
        assert client.post(f"/api/webhooks/{endpoint.pk}/rotate-secret").status_code == 200
        assert Campaign.objects.get().name == "Autumn"
        assert WebhookEndpoint.objects.get().secret != endpoint.secret

    @pytest.mark.parametrize("written", [
        "+{pk}", "%20{pk}", "0{pk}", "{pk}.0",
        "{arabic_indic}", "{full_width}",
    ])
    def test_an_object_has_one_address(self, team_users, written):
        # "+1", " 1", "01", Arabic-Indic and full-width digits all read as 1 and answered with campaign 1.
        pk = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/").pk
        digits = str(pk)
        address = written.format(pk=pk, arabic_indic=digits.translate({48 + d: 0x660 + d for d in range(10)}),
                                 full_width=digits.translate({48 + d: 0xFF10 + d for d in range(10)}))
        client = signed_in(team_users.owner)
        assert client.get(f"/api/campaigns/{pk}/").status_code == 200
        response = client.get(f"/api/campaigns/{address}/")
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}

    def test_it_still_answers_with_the_trailing_slash(self, team_users):
        assert signed_in(team_users.owner).get("/api/campaigns/").status_code == 200

    def test_every_schema_path_resolves_to_the_same_view_without_its_slash(self):
        paths = schema_paths()
        assert len(paths) > 20
        for path in paths:
            concrete = path.replace("{id}", "1")
            with_slash, without = resolve(concrete), resolve(concrete.rstrip("/"))
            assert (without.url_name, without.kwargs) == (with_slash.url_name, with_slash.kwargs), path


class TestSchemaPaths:
    def test_it_lists_each_path_once_with_its_slash(self):
        paths = schema_paths()
        assert all(path.endswith("/") for path in paths), [p for p in paths if not p.endswith("/")]
        assert len({path.rstrip("/") for path in paths}) == len(paths)
        assert {"/api/campaigns/", "/api/campaigns/{id}/", "/api/webhooks/{id}/rotate-secret/"} <= set(paths)


def test_the_schema_and_docs_answer_without_the_trailing_slash_too(team_users):
    client = signed_in(team_users.owner)
    assert client.get("/api/schema?format=json").json()["paths"] == client.get("/api/schema/?format=json").json()[
        "paths"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and '<div id="swagger-ui"></div>' in docs.content.decode()


def test_the_root_answers_without_the_trailing_slash_too(team_users, settings):
    # /api was left to APPEND_SLASH: a POST got a RuntimeError page under DEBUG, a 301 that dropped its body without
    settings.DEBUG = True
    client = signed_in(team_users.owner)
    unslashed, slashed = client.get("/api"), client.get("/api/")
    assert unslashed.status_code == 200 and unslashed.json().keys() == slashed.json().keys()
    assert "campaigns" in unslashed.json()
    refused = client.post("/api", {}, format="json")
    assert refused.status_code == 405 and refused.json()["detail"] == 'Method "POST" not allowed.'


def test_the_docs_page_answers_options_in_json(team_users):
    # The page's template drew OPTIONS' description without the page's context: TemplateDoesNotExist, a 500.
    response = signed_in(team_users.owner).options("/api/docs/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["Allow"] == "GET, HEAD, OPTIONS" and response.json()["name"]


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
@pytest.mark.parametrize("path", ["/api/nope/", "/api/campaigns/abc/", "/api/campaigns//1/", "/api/teams/01/",
                                  "/api/campaigns/1/nope", "/api/shares/a%0Ab/revoke/", "/api/nope%0A",
                                  "/api/%0D%0A"])
def test_an_address_no_route_takes_is_the_apis_json_404_under_debug_too(team_users, settings, method, path):
    # `make run` runs with DEBUG on, where Django answered these with its HTML debug page (its handler404 is for DEBUG
    # off), and a POST with the HTML CSRF page.
    settings.DEBUG = True
    response = getattr(signed_in(team_users.owner), method)(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/api%0A", "/api%0D%0A", "/api%20", "/api.json", "/apiv2/campaigns/", "/api;x"])
def test_an_address_just_past_api_is_the_apis_json_404(team_users, settings, debug, method, path):
    # Outside /api/, these were the site's HTML 404 (Django's debug page under DEBUG) where a client reads JSON.
    settings.DEBUG = debug
    response = getattr(signed_in(team_users.owner), method)(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/API/campaigns/", "/Api/campaigns", "/API", "/API/", "/aPi/teams/1/", "/API.json"])
def test_an_api_address_in_capitals_is_the_apis_json_404_saying_so(team_users, settings, debug, method, path):
    # The site's HTML 404 (Django's debug page under DEBUG) where an integrator's client reads JSON.
    settings.DEBUG = debug
    response = getattr(signed_in(team_users.owner), method)(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found: the API's addresses are in lower case (/api/campaigns/)."}
