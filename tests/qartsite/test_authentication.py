"""API token authentication (qartsite.authentication): knox's tokens in `Authorization: Token <token>`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.test import APIClient

from qartsite.authentication import TOKEN_EXPIRED

pytestmark = pytest.mark.django_db


def get_campaigns(authorization: str):
    return APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION=authorization)


def test_it_accepts_a_knox_token_in_the_token_header(team_users):
    _, token = AuthToken.objects.create(team_users.owner)
    assert get_campaigns(f"Token {token}").status_code == 200


def test_it_accepts_the_same_token_as_a_bearer_token(team_users):
    _, token = AuthToken.objects.create(team_users.owner)
    assert get_campaigns(f"Bearer {token}").status_code == 200
    assert get_campaigns(f"bearer {token}").status_code == 200


@pytest.mark.django_db
def test_its_schema_says_both_prefixes_are_accepted():
    scheme = APIClient().get("/api/schema/?format=json").json()["components"]["securitySchemes"]["tokenAuth"]

    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Authorization")
    assert "`Token <token>` or `Bearer <token>`" in scheme["description"]
    assert "required" not in scheme["description"]


@pytest.mark.parametrize("authorization, detail", [
    ("Bearer", "Invalid token header: send `Authorization: Token <token>`."),
    ("Bearer a b", "Invalid token header: send `Authorization: Token <token>`."),
    ("Bearer nope", "Invalid token."),
])
def test_it_refuses_a_bearer_header_without_a_valid_token(team_users, authorization, detail):
    response = get_campaigns(authorization)
    assert response.status_code == 401 and response.json() == {"detail": detail}


def test_it_refuses_an_expired_token_and_forgets_it(team_users):
    _, token = AuthToken.objects.create(team_users.owner, expiry=timedelta(seconds=-1))
    response = get_campaigns(f"Token {token}")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert not AuthToken.objects.exists()


def test_it_tells_the_holder_of_an_expired_token_that_it_expired_and_where_to_make_another(team_users):
    _, token = AuthToken.objects.create(team_users.owner, expiry=timedelta(seconds=-1))
    detail = get_campaigns(f"Token {token}").json()["detail"]
    assert detail == TOKEN_EXPIRED and "expired" in detail and "qart_token" in detail and "account page" in detail
    # Knox deleted it on that use and keeps nothing more: from then on it is like any unknown token.
    assert get_campaigns(f"Token {token}").json()["detail"] == "Invalid token."


def test_it_answers_an_unknown_token_as_invalid_even_beside_an_expired_one_with_its_prefix(team_users):
    # Knowing an expired token's prefix (shown on the account page) is not enough to be told it expired.
    auth_token, token = AuthToken.objects.create(team_users.owner, expiry=timedelta(seconds=-1))
    forged = token[:CONSTANTS.TOKEN_KEY_LENGTH] + "0" * (len(token) - CONSTANTS.TOKEN_KEY_LENGTH)
    assert forged != token and forged.startswith(auth_token.token_key)
    response = get_campaigns(f"Token {forged}")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."
    assert get_campaigns("Token 0123456789abcdef0123456789abcdef").json()["detail"] == "Invalid token."


def test_it_still_accepts_a_token_that_has_not_expired(team_users):
    _, token = AuthToken.objects.create(team_users.owner, expiry=timedelta(days=1))
    AuthToken.objects.create(team_users.owner, expiry=timedelta(seconds=-1))  # another, expired: no matter
    assert get_campaigns(f"Token {token}").status_code == 200


def test_it_answers_a_token_that_is_not_utf8_with_401(team_users):
    # The header arrives as Latin-1: "é" is the byte 0xe9, which knox's own class fails to decode (a 500).
    _, token = AuthToken.objects.create(team_users.owner)
    response = get_campaigns(f"Token {token[:15]}\xe9")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."
    assert Client().get("/api/campaigns/", HTTP_AUTHORIZATION="Token \xe9").status_code == 401


@pytest.mark.parametrize("authorization, scheme", [("Basic YWRtaW46cWFydC1kZW1v", "Basic"), ("Digest x=1", "Digest"),
                                                   ("Api-Key abc", "Api-Key")])
def test_it_answers_credentials_under_another_scheme_with_the_schemes_it_takes(team_users, authorization, scheme):
    # It said "Authentication credentials were not provided." to a client that had sent its password.
    response = get_campaigns(authorization)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": f"`Authorization: {scheme}` is not taken here: send `Authorization: Token "
                                         "<token>` (or `Bearer <token>`), a token made on your account page "
                                         "(/accounts/) or with `manage.py qart_token`."}


def test_a_session_still_signs_in_beside_another_scheme(team_users):
    # A staging site behind a proxy's Basic password: the browser sends it with every request, the API's included.
    client = APIClient()
    client.force_login(team_users.owner)
    assert client.get("/api/campaigns/", HTTP_AUTHORIZATION="Basic YWRtaW46cWFydC1kZW1v").status_code == 200
