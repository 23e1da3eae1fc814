"""API tokens (`qartsite.tokens`): a new password revokes them all, whichever way it was set; signing in does not."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.core.management import call_command
from django.test import Client
from knox.models import AuthToken

from qartsite import tokens

pytestmark = pytest.mark.django_db


def tokens_left(user) -> int:
    return AuthToken.objects.filter(user=user).count()


@pytest.fixture
def owner_tokens(team_users):
    tokens.make_token(team_users.owner, "ci")
    tokens.make_token(team_users.owner, "reports")
    tokens.make_token(team_users.teammate, "theirs")
    return team_users


def change_password(client, user, old_password: str):
    """The site's password change form, signed in as `user`, to "Fresh-harbour-77"."""
    client.force_login(user)
    return client.post("/accounts/password_change/", {
        "old_password": old_password, "new_password1": "Fresh-harbour-77", "new_password2": "Fresh-harbour-77"})


def test_a_password_changed_on_the_site_revokes_the_users_tokens(client, owner_tokens):
    response = change_password(client, owner_tokens.owner, "pw-owner-1")
    assert response.status_code == 302
    assert tokens_left(owner_tokens.owner) == 0
    assert tokens_left(owner_tokens.teammate) == 1  # only the person's own
    assert "API tokens were revoked" in client.get(response["Location"]).content.decode()


def test_a_refused_password_change_revokes_nothing(client, owner_tokens):
    response = change_password(client, owner_tokens.owner, "wrong")
    assert response.status_code == 200
    assert tokens_left(owner_tokens.owner) == 2


def test_a_password_reset_by_email_revokes_the_users_tokens(owner_tokens, fresh_cache):
    owner_tokens.owner.email = "owner@example.com"
    owner_tokens.owner.save(update_fields=["email"])
    client = Client()
    client.post("/accounts/password_reset/", {"email": "owner@example.com"})
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", mail.outbox[-1].body).group(1)
    form_url = client.get(link)["Location"]  # Django swaps the token for a session and redirects
    response = client.post(form_url, {"new_password1": "Fresh-harbour-77", "new_password2": "Fresh-harbour-77"})
    assert response.status_code == 302
    assert tokens_left(owner_tokens.owner) == 0


def test_a_password_set_by_command_revokes_them_too(owner_tokens, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "Fresh-harbour-77")
    call_command("changepassword", "owner", stdout=io.StringIO())
    assert tokens_left(owner_tokens.owner) == 0


def test_signing_in_and_saving_other_fields_revoke_nothing(owner_tokens, settings):
    owner = owner_tokens.owner
    owner.first_name = "Olive"
    owner.save()
    # A hash from an older hasher is upgraded at sign-in (set_password, then a save): not a new password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher",
                                 "django.contrib.auth.hashers.MD5PasswordHasher"]
    owner.password = make_password("pw-owner-1", hasher="md5")
    owner.save(update_fields=["password"])
    response = Client().post("/accounts/login/", {"username": "owner", "password": "pw-owner-1"})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.password.startswith("pbkdf2_")  # upgraded
    assert tokens_left(owner) == 2
