"""The qart_token command: API tokens made (and shown) once, listed without secrets, revoked by prefix."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from qartsite.models import TokenLabel

pytestmark = pytest.mark.django_db


def qart_token(*args: str) -> tuple[str, str]:
    """Run the command; return what it printed on stdout and on stderr."""
    out, err = StringIO(), StringIO()
    call_command("qart_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def status_with(token: str) -> int:
    return APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION=f"Token {token}").status_code


class TestCreate:
    def test_it_prints_a_working_token_alone_on_stdout(self, team_users):
        out, err = qart_token("owner")
        token = out.strip()
        assert out == token + "\n" and len(token) == 64
        assert status_with(token) == 200
        assert "shown only now" in err and "never expires" in err

    def test_it_stores_only_a_hash_and_the_prefix(self, team_users):
        token = qart_token("owner")[0].strip()
        row = AuthToken.objects.get(user=team_users.owner)
        stored = [str(getattr(row, field.attname)) for field in AuthToken._meta.concrete_fields]
        assert row.token_key == token[:15] and not any(token in value for value in stored)

    def test_it_names_the_token(self, team_users):
        qart_token("owner", "--name", "  nightly export ")
        assert TokenLabel.name_of(AuthToken.objects.get(user=team_users.owner)) == "nightly export"

    def test_it_makes_tokens_that_never_expire_by_default(self, team_users):
        qart_token("owner")
        assert AuthToken.objects.get(user=team_users.owner).expiry is None

    def test_it_expires_tokens_after_the_configured_days(self, team_users, settings):
        settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(days=30)}
        _, err = qart_token("owner")
        expiry = AuthToken.objects.get(user=team_users.owner).expiry
        assert timedelta(days=29) < expiry - timezone.now() <= timedelta(days=30)
        assert f"expires {expiry:%Y-%m-%d}" in err

    def test_it_refuses_unknown_and_inactive_users_and_long_names(self, team_users):
        team_users.viewer.is_active = False
        team_users.viewer.save()
        for args, message in ((["nobody"], "No user named “nobody”"), (["viewer"], "viewer is inactive"),
                              (["owner", "--name", "x" * 65], "the most is 64"),
                              (["owner", "--name", "ci\x00"], "A token's name is one line of text")):
            with pytest.raises(CommandError, match=message):
                qart_token(*args)
        assert not AuthToken.objects.exists()


class TestList:
    def test_it_lists_prefix_dates_and_name_without_secrets(self, team_users):
        named = qart_token("owner", "--name", "ci")[0].strip()
        unnamed = qart_token("owner")[0].strip()
        qart_token("teammate")
        out, _ = qart_token("owner", "--list")
        lines = out.splitlines()
        assert lines[0].split() == ["PREFIX", "CREATED", "(UTC)", "EXPIRES", "(UTC)", "NAME"]
        assert len(lines) == 3 and lines[1].split()[0] == named[:15] and lines[1].split()[-2:] == ["never", "ci"]
        assert lines[2].split()[0] == unnamed[:15] and lines[2].split()[-1] == "never"
        for row in AuthToken.objects.all():
            assert row.digest not in out
        assert named not in out and unnamed not in out

    def test_it_marks_expired_tokens(self, team_users):
        AuthToken.objects.create(team_users.owner, expiry=timedelta(days=-1))
        assert "(expired)" in qart_token("owner", "--list")[0]

    def test_it_says_when_there_are_none(self, team_users):
        assert qart_token("owner", "--list")[0] == "owner has no API tokens.\n"

    def test_it_takes_no_name_when_listing_or_revoking(self, team_users):
        with pytest.raises(CommandError, match="--name labels a new token"):
            qart_token("owner", "--list", "--name", "ci")


class TestRevoke:
    def test_it_revokes_the_token_with_that_prefix(self, team_users):
        kept, revoked = qart_token("owner")[0].strip(), qart_token("owner")[0].strip()
        out, _ = qart_token("owner", "--revoke", revoked[:15])
        assert out == f"Revoked owner's token {revoked[:15]}.\n"
        assert status_with(revoked) == 401 and status_with(kept) == 200

    def test_it_revokes_only_the_users_own_tokens(self, team_users):
        theirs = qart_token("teammate")[0].strip()
        with pytest.raises(CommandError, match="owner has no token starting with"):
            qart_token("owner", "--revoke", theirs[:15])
        assert status_with(theirs) == 200

    def test_it_asks_for_more_of_an_ambiguous_prefix(self, team_users):
        for key in ("abc1", "abc2"):
            AuthToken(user=team_users.owner, token_key=key * 3, digest=key * 32).save()
        ambiguous = r"^Several of owner's tokens start with “abc”: give more of the prefix\. Their prefixes: --list\.$"
        with pytest.raises(CommandError, match=ambiguous):
            qart_token("owner", "--revoke", "abc")
        qart_token("owner", "--revoke", "abc2")
        assert list(AuthToken.objects.values_list("token_key", flat=True)) == ["abc1abc1abc1"]
