"""API token authentication (qartsite.authentication): knox's tokens in `Authorization: Token <token>`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def get_campaigns(authorization: str):
    return APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION=authorization)


def test_it_accepts_a_knox_token_in_the_token_header(team_users):
    _, token = AuthToken.objects.create(team_users.owner)
    assert get_campaigns(f"Token {token}").status_code == 200


def test_it_refuses_an_expired_token_and_forgets_it(team_users):
    _, token = AuthToken.objects.create(team_users.owner, expiry=timedelta(seconds=-1))
    response = get_campaigns(f"Token {token}")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert not AuthToken.objects.exists()


def test_it_answers_a_token_that_is_not_utf8_with_401(team_users):
    # The header arrives as Latin-1: "é" is the byte 0xe9, which knox's own class fails to decode (a 500).
    _, token = AuthToken.objects.create(team_users.owner)
    response = get_campaigns(f"Token {token[:15]}\xe9")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."
    assert Client().get("/api/campaigns/", HTTP_AUTHORIZATION="Token \xe9").status_code == 401
