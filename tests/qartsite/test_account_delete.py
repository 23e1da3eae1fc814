"""Deleting one's own account (`accounts.account_delete`, `members.delete_account`): confirmed with the password,
refused for a team's last owner and for superusers, and only ever the signed-in account."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from qartsite import members
from qartsite.models import Invitation, Membership
from tests.clients import api_status

URL = "/accounts/delete/"


def exists(user) -> bool:
    return get_user_model().objects.filter(pk=user.pk).exists()


@pytest.mark.django_db
class TestAccountDelete:
    def test_the_account_page_links_to_it(self, client, team_users):
        client.force_login(team_users.teammate)
        assert f'href="{URL}"' in client.get("/accounts/").content.decode()

    def test_it_says_what_goes_and_what_stays_before_asking_for_the_password(self, client, team_users):
        client.force_login(team_users.teammate)
        page = client.get(URL)
        html = page.content.decode()
        assert page.status_code == 200 and 'type="password"' in html and "csrfmiddlewaretoken" in html
        assert "your place in Acme" in html and "What stays with your teams:" in html and "made by nobody" in html
        assert "data-confirm=" in html and exists(team_users.teammate)

    def test_it_deletes_your_account_signs_you_out_and_says_so(self, client, team_users):
        from qartsite import tokens

        _, token = tokens.make_token(team_users.teammate, "script")
        client.force_login(team_users.teammate)
        response = client.post(URL, {"password": "pw-teammate-1"})
        assert response.status_code == 302 and response["Location"] == "/accounts/login/"
        assert not exists(team_users.teammate) and "_auth_user_id" not in client.session
        assert "Your account was deleted." in client.get(response["Location"]).content.decode()
        assert not Membership.objects.filter(user_id=team_users.teammate.pk).exists()
        assert api_status(token) == 401
        assert client.get("/accounts/")["Location"].startswith("/accounts/login/")

    def test_the_team_keeps_what_you_made_made_by_nobody(self, client, team_users):
        from generator.models import GenerationJob, LabelingSession, Prompt

        prompt = Prompt.objects.create(owner=team_users.teammate, team=team_users.team, text="a misty forest")
        job = GenerationJob.objects.create(owner=team_users.teammate, team=team_users.team, prompt=prompt,
                                           content="https://qart.example/r/abc")
        session = LabelingSession.objects.create(name="Phones", team=team_users.team, created_by=team_users.teammate)
        client.force_login(team_users.teammate)
        assert client.post(URL, {"password": "pw-teammate-1"}).status_code == 302
        job.refresh_from_db()
        session.refresh_from_db()
        assert job.owner is None and job.team == team_users.team and job.prompt.owner is None
        assert session.created_by is None and session.team == team_users.team

    def test_a_co_owner_goes_with_their_unused_invitations_and_the_team_keeps_its_owner(self, client, team_users):
        Membership.objects.filter(user=team_users.teammate).update(role="owner")
        sent = Invitation.objects.create(team=team_users.team, email="new@example.com", invited_by=team_users.teammate)
        client.force_login(team_users.teammate)
        assert client.post(URL, {"password": "pw-teammate-1"}).status_code == 302
        assert not Invitation.objects.filter(pk=sent.pk).exists()
        assert Membership.role_of(team_users.owner, team_users.team) == "owner"

    def test_it_refuses_a_wrong_password_and_deletes_nothing(self, client, team_users):
        client.force_login(team_users.teammate)
        response = client.post(URL, {"password": "nope"})
        html = response.content.decode()
        assert response.status_code == 400 and "Nothing deleted:" in html and "That is not your password." in html
        assert exists(team_users.teammate) and client.session["_auth_user_id"] == str(team_users.teammate.pk)
        assert client.post(URL, {}).status_code == 400 and exists(team_users.teammate)  # no password at all

    def test_an_empty_password_is_asked_for_in_one_plain_message(self, client, team_users):
        client.force_login(team_users.teammate)
        assert re.search(r'<input type="password" name="password"[^>]* required', client.get(URL).content.decode())
        response = client.post(URL, {"password": ""})  # what a browser without script or validation sends
        html = response.content.decode()
        assert response.status_code == 400 and exists(team_users.teammate)
        assert response.context["form"].errors == {"password": ["Type your password to delete your account."]}
        assert "Nothing deleted:" in html and "This field is required" not in html

    def test_wrong_passwords_count_towards_the_sign_in_lockout(self, client, team_users):
        client.force_login(team_users.teammate)
        statuses = [client.post(URL, {"password": "nope"}).status_code for _ in range(5)]
        assert statuses == [400, 400, 400, 400, 429]
        locked = client.post(URL, {"password": "pw-teammate-1"})  # even the right one, as on the sign-in page
        assert locked.status_code == 429 and "Too many sign-in attempts" in locked.content.decode()
        assert exists(team_users.teammate)
        assert Client().post("/accounts/login/", {"username": "teammate", "password": "pw-teammate-1"}).status_code \
            == 429

    def test_the_last_owner_of_a_team_with_members_is_refused(self, client, team_users):
        client.force_login(team_users.owner)
        page = client.get(URL).content.decode()
        assert "data-delete-refused" in page and 'type="password"' not in page  # nothing to type in vain
        assert "Nothing was deleted." not in page  # nothing was tried
        response = client.post(URL, {"password": "pw-owner-1"})
        html = response.content.decode()
        assert response.status_code == 409 and "You're the last owner of" in html and "Nothing was deleted." in html
        assert f'href="/accounts/team/{team_users.team.pk}/">Acme</a>' in html
        assert "make another member an owner" in html
        assert exists(team_users.owner) and Membership.role_of(team_users.owner, team_users.team) == "owner"

    def test_the_only_member_of_a_team_is_refused(self, client, team_users):
        client.force_login(team_users.outsider)
        response = client.post(URL, {"password": "pw-outsider-1"})
        html = response.content.decode()
        assert response.status_code == 409 and "You're the only member of" in html and "Rival" in html
        assert "an administrator to close the team" in html and exists(team_users.outsider)

    def test_a_refusal_does_not_read_the_password(self, client, team_users):
        from axes.models import AccessAttempt

        client.force_login(team_users.owner)
        assert client.post(URL, {"password": "nope"}).status_code == 409
        assert not AccessAttempt.objects.exists()

    def test_a_superuser_is_refused(self, client, team_users):
        get_user_model().objects.filter(pk=team_users.viewer.pk).update(is_superuser=True, is_staff=True)
        client.force_login(team_users.viewer)
        response = client.post(URL, {"password": "pw-viewer-1"})
        assert response.status_code == 409 and "You're a superuser." in response.content.decode()
        assert exists(team_users.viewer)

    def test_an_owner_stepping_down_meanwhile_keeps_the_account(self, client, team_users, monkeypatch):
        # Both owners pass the page's check; the other steps down while this one's password is checked.
        from qartsite import forms

        Membership.objects.filter(user=team_users.teammate).update(role="owner")
        checked = forms.authenticate

        def then_the_other_steps_down(*args, **kwargs):
            Membership.objects.filter(user=team_users.owner).update(role="viewer")
            return checked(*args, **kwargs)

        monkeypatch.setattr(forms, "authenticate", then_the_other_steps_down)
        client.force_login(team_users.teammate)
        response = client.post(URL, {"password": "pw-teammate-1"})
        assert response.status_code == 409 and "You're the last owner of" in response.content.decode()
        assert exists(team_users.teammate)

    def test_it_only_ever_deletes_the_signed_in_account(self, client, team_users):
        client.force_login(team_users.teammate)
        # Another account's password, and its name and id alongside: checked against the signed-in account only.
        other = {"password": "pw-viewer-1", "username": "viewer", "user": team_users.viewer.pk}
        assert client.post(URL, other).status_code == 400
        assert client.post(URL, {**other, "password": "pw-teammate-1"}).status_code == 302
        assert not exists(team_users.teammate) and exists(team_users.viewer)

    def test_it_needs_a_signed_in_user(self, team_users):
        anonymous = Client()
        assert anonymous.get(URL)["Location"] == f"/accounts/login/?next={URL}"
        assert anonymous.post(URL, {"password": "pw-teammate-1"})["Location"] == f"/accounts/login/?next={URL}"
        assert get_user_model().objects.count() == 4

    def test_it_needs_csrf(self, team_users):
        guarded = Client(enforce_csrf_checks=True)
        guarded.force_login(team_users.teammate)
        assert guarded.post(URL, {"password": "pw-teammate-1"}).status_code == 403
        assert exists(team_users.teammate)


@pytest.mark.django_db
class TestDeleteAccount:
    def test_it_refuses_the_last_owner_naming_the_team(self, team_users):
        with pytest.raises(members.Refused, match="Acme needs an owner"):
            members.delete_account(team_users.owner)
        assert exists(team_users.owner)

    def test_it_deletes_anyone_else(self, team_users):
        members.delete_account(team_users.viewer)
        assert not exists(team_users.viewer) and Membership.objects.filter(team=team_users.team).count() == 2
