"""Test clients signed in as a user (Django's, DRF's), a token's answer from the API, a phone's user agent, and the
site's own 404 page told from any other answer."""

from __future__ import annotations

from django.test import Client
from rest_framework.test import APIClient

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api_status(token: str) -> int:
    return APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION=f"Token {token}").status_code


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_not_found(response) -> None:
    """The site's friendly 404 page: what anyone gets for what is not theirs, as for what does not exist."""
    assert response.status_code == 404
    assert "404.html" in [t.name for t in response.templates], "not the site's friendly 404"
    assert b"couldn't find that page" in response.content
