"""The API's docs page (`/api/docs/`, qartsite.api_urls): Swagger UI inside the site's page, with its header and
navigation. That it loads only our own static files is tests/qartsite/test_schema.py's."""

from __future__ import annotations

import re

import pytest


@pytest.mark.django_db
class TestApiDocs:
    def test_it_shows_the_docs_inside_the_sites_page(self, client, team_users):
        client.force_login(team_users.owner)
        html = client.get("/api/docs/").content.decode()
        assert '<header class="topbar">' in html and '<a class="brand" href="/">' in html
        assert '<a href="/campaigns/">Campaigns</a>' in html and "<title>API · qart</title>" in html
        assert '<div id="swagger-ui"></div>' in html and 'url: "/api/schema/"' in html

    def test_it_leaves_how_to_send_a_token_to_the_schemas_description(self, client, team_users):
        # Swagger UI draws the description under the intro: both said "Authorization: Token <token>".
        client.force_login(team_users.owner)
        html = client.get("/api/docs/").content.decode()
        assert "Authorization: Token" not in html and '<a href="/accounts/">your account page</a>' in html
        schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
        assert schema["info"]["description"].count("Authorization: Token <token>") == 1

    def test_it_sends_the_csrf_token_with_the_sessions_requests(self, client, team_users):
        client.force_login(team_users.owner)
        html = client.get("/api/docs/").content.decode()
        assert re.search(r'request.headers\["X-CSRFTOKEN"\] = "[A-Za-z0-9]{64}"', html)
