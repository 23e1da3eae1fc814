from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.test import Client
from django.utils import timezone

from qartsite.models import Invitation, Membership, Team
from tests.campaigns.rollup_data import event
from tests.clients import api_status

STRONG = "lighthouse-harbour-77"


def link_in(text: str) -> str:
    """The path of the first http link in an e-mail body."""
    return re.search(r"https?://testserver(/\S+)", text).group(1)


@pytest.mark.django_db
class TestSignIn:
    def test_it_signs_in_and_lands_on_campaigns(self, client, team_users):
        page = client.get("/accounts/login/")
        assert page.status_code == 200 and "Forgot your password?" in page.content.decode()
        response = client.post("/accounts/login/", {"username": "owner", "password": "pw-owner-1"})
        assert response.status_code == 302 and response["Location"] == "/campaigns/"
        assert client.get("/campaigns/").status_code == 200

    def test_it_follows_next_only_within_the_site(self, client, team_users):
        data = {"username": "owner", "password": "pw-owner-1"}
        assert client.post("/accounts/login/?next=/accounts/", data)["Location"] == "/accounts/"
        client.logout()
        assert client.post("/accounts/login/?next=https://evil.example/", data)["Location"] == "/campaigns/"

    def test_it_refuses_a_wrong_password(self, client, team_users):
        response = client.post("/accounts/login/", {"username": "owner", "password": "nope"})
        assert response.status_code == 200 and "correct username and password" in response.content.decode()
        assert "_auth_user_id" not in client.session

    def test_it_says_a_wrong_password_once(self, client, team_users):
        # The summary box lists the refusal; form.as_div under it said it a second time.
        html = client.post("/accounts/login/", {"username": "owner", "password": "nope"}).content.decode()
        assert html.count("Please enter a correct username and password") == 1
        assert 'name="username"' in html and 'name="password"' in html

    def test_it_signs_out_on_post_only(self, client, team_users):
        client.force_login(team_users.owner)
        page = client.get("/accounts/logout/")  # a typed address or an old bookmark: asked, not signed out
        assert page.status_code == 200 and "Sign out?" in page.content.decode()
        assert "_auth_user_id" in client.session
        response = client.post("/accounts/logout/")
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
        assert "_auth_user_id" not in client.session
        assert "signed out" in client.get(response["Location"]).content.decode()

    def test_it_puts_sign_out_and_the_dashboard_in_the_navigation(self, client, team_users):
        client.force_login(team_users.viewer)
        html = re.search(r"<nav\b.*?</nav>", client.get("/").content.decode(), re.S).group(0)
        assert 'action="/accounts/logout/"' in html and 'href="/campaigns/"' in html and 'href="/generate/"' in html
        assert 'href="/admin/"' not in html  # staff only


def sign_in(client, username: str, password: str, path: str = "/accounts/login/", **headers):
    return client.post(path, {"username": username, "password": password}, **headers)


@pytest.mark.django_db
class TestSignInLockout:
    """django-axes: five wrong passwords (AXES_FAILURE_LIMIT) for one user name from one address lock that pair out
    for 15 minutes. The test client's address is 127.0.0.1."""

    def fail(self, client, username: str = "owner", times: int = 5, **headers) -> list:
        return [sign_in(client, username, "wrong", **headers).status_code for _ in range(times)]

    def test_it_refuses_even_the_right_password_after_five_wrong_ones(self, client, team_users):
        assert self.fail(client) == [200, 200, 200, 200, 429]
        response = sign_in(client, "owner", "pw-owner-1")
        assert response.status_code == 429 and "_auth_user_id" not in client.session
        assert "registration/locked_out.html" in [template.name for template in response.templates]
        body = response.content.decode()
        assert "Too many sign-in attempts" in body and "After 5 wrong passwords for <strong>owner</strong>" in body
        assert re.search(r"paused for 15\s+minutes from the last attempt", body)

    def test_it_locks_out_the_admin_sign_in_too(self, client, team_users):
        self.fail(client)
        assert sign_in(client, "owner", "pw-owner-1", path="/admin/login/?next=/admin/").status_code == 429

    def test_it_records_a_user_name_too_long_for_its_records_cut_short(self, client, team_users):
        # PostgreSQL refused the 300 characters in axes' record of the failure: a 500 on both sign-in pages
        for path in ("/accounts/login/", "/admin/login/?next=/admin/"):
            response = sign_in(client, "o" * 300, "wrong", path=path)
            assert response.status_code == 200 and "correct username and password" in response.content.decode()
        assert AccessAttempt.objects.get().username == "o" * 255
        assert self.fail(client, "o" * 300, times=3) == [200, 200, 429]  # counted like any name

    def test_it_lets_another_user_name_sign_in_from_the_same_address(self, client, team_users):
        self.fail(client)
        assert sign_in(client, "teammate", "pw-teammate-1")["Location"] == "/campaigns/"

    def test_it_lets_the_same_user_name_sign_in_from_another_address(self, client, team_users):
        self.fail(client)
        assert sign_in(client, "owner", "pw-owner-1", REMOTE_ADDR="198.51.100.7")["Location"] == "/campaigns/"

    def test_it_lifts_the_lockout_after_fifteen_minutes(self, client, team_users):
        self.fail(client)
        AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
        assert sign_in(client, "owner", "pw-owner-1").status_code == 429
        AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
        assert sign_in(client, "owner", "pw-owner-1")["Location"] == "/campaigns/"

    def test_it_forgets_earlier_failures_after_a_sign_in(self, client, team_users):
        self.fail(client, times=4)
        assert sign_in(client, "owner", "pw-owner-1")["Location"] == "/campaigns/"
        client.logout()
        assert self.fail(client, times=4) == [200] * 4

    def test_it_takes_the_limit_from_the_settings(self, client, team_users, settings):
        settings.AXES_FAILURE_LIMIT = 2
        assert self.fail(client, times=2) == [200, 429]

    def test_it_ignores_x_forwarded_for_without_a_trusted_proxy(self, client, team_users):
        statuses = [sign_in(client, "owner", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
                    for i in range(5)]
        assert statuses[-1] == 429
        assert sign_in(client, "owner", "pw-owner-1", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 429

    def test_it_counts_by_the_hop_our_proxy_added_behind_a_trusted_proxy(self, client, team_users, settings):
        settings.QART = {**settings.QART, "TRUST_PROXY": True, "TRUSTED_PROXY_COUNT": 1}
        # Whatever the client writes to the left of the hop our proxy appended does not make it a new client.
        statuses = [sign_in(client, "owner", "wrong", REMOTE_ADDR="10.0.0.1",
                            HTTP_X_FORWARDED_FOR=f"192.0.2.{i}, 203.0.113.9").status_code for i in range(5)]
        assert statuses[-1] == 429
        assert sign_in(client, "owner", "pw-owner-1", REMOTE_ADDR="10.0.0.1",
                       HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
        assert sign_in(client, "owner", "pw-owner-1", REMOTE_ADDR="10.0.0.1",
                       HTTP_X_FORWARDED_FOR="203.0.113.10")["Location"] == "/campaigns/"


@pytest.mark.django_db
class TestPasswords:
    def test_it_resets_a_password_by_email(self, client, team_users, mailoutbox, fresh_cache):
        team_users.owner.email = "owner@acme.example"
        team_users.owner.save()
        response = client.post("/accounts/password_reset/", {"email": "owner@acme.example"})
        assert response["Location"] == "/accounts/password_reset/done/"
        assert len(mailoutbox) == 1 and mailoutbox[0].to == ["owner@acme.example"]
        assert mailoutbox[0].subject == "Reset your qart password"

        form_url = client.get(link_in(mailoutbox[0].body))["Location"]  # Django swaps the token for a session
        assert "Choose a new password" in client.get(form_url).content.decode()
        done = client.post(form_url, {"new_password1": STRONG, "new_password2": STRONG})
        assert done["Location"] == "/accounts/reset/done/"
        assert client.login(request=HttpRequest(), username="owner", password=STRONG)  # axes needs a request

    def test_it_links_the_reset_under_site_root_whatever_host_was_asked(self, client, team_users, mailoutbox,
                                                                         fresh_cache, settings):
        # The link carries the reset token: it goes to the site's public root, never to the host a request named
        # (the server's address, or any other of ALLOWED_HOSTS).
        settings.SITE_ROOT, settings.ALLOWED_HOSTS = "https://qart.example", ["qart.example", "10.0.0.5"]
        team_users.owner.email = "owner@acme.example"
        team_users.owner.save()
        client.post("/accounts/password_reset/", {"email": "owner@acme.example"}, HTTP_HOST="10.0.0.5")
        body = mailoutbox[0].body
        assert re.search(r"https://qart\.example/accounts/reset/\S+/\S+/", body) and "10.0.0.5" not in body

    @pytest.mark.parametrize("method", ["trace", "options", "put"])
    def test_the_reset_link_answers_only_get_head_and_post(self, client, team_users, mailoutbox, fresh_cache, method):
        # Django's view answered a spent or mistyped link with its page for any method (TRACE: 200), and took a
        # valid one into the session on a PUT before any method check.
        team_users.owner.email = "owner@acme.example"
        team_users.owner.save()
        client.post("/accounts/password_reset/", {"email": "owner@acme.example"})
        for url in ("/accounts/reset/MQ/abc-def/", link_in(mailoutbox[0].body)):
            response = getattr(client, method)(url)
            assert response.status_code == 405 and response["Allow"] == "GET, HEAD, POST"
        assert client.get(link_in(mailoutbox[0].body)).status_code == 302  # the link is still good

    def test_a_reset_lifts_the_accounts_sign_in_lockout(self, client, team_users, mailoutbox, fresh_cache):
        # The lockout page sends people to the reset, whose new password was then refused for 15 minutes.
        team_users.owner.email = "owner@acme.example"
        team_users.owner.save()
        assert [sign_in(client, "owner", "wrong").status_code for _ in range(5)][-1] == 429
        client.post("/accounts/password_reset/", {"email": "owner@acme.example"})
        form_url = client.get(link_in(mailoutbox[0].body))["Location"]
        client.post(form_url, {"new_password1": STRONG, "new_password2": STRONG})
        assert sign_in(client, "owner", STRONG)["Location"] == "/campaigns/"

    def test_it_sends_nothing_for_an_unknown_address(self, client, team_users, mailoutbox, fresh_cache):
        response = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
        assert response.status_code == 302 and mailoutbox == []

    def test_it_limits_reset_links_per_network_with_the_form_and_retry_after(self, team_users, mailoutbox,
                                                                              fresh_cache):
        team_users.owner.email = "owner@acme.example"
        team_users.owner.save()
        client = Client(REMOTE_ADDR="198.51.100.7")
        asked = ["owner@acme.example", "nobody@example.com", "a@example.com", "b@example.com", "c@example.com"]
        assert [client.post("/accounts/password_reset/", {"email": e}).status_code for e in asked] == [302] * 5
        response = client.post("/accounts/password_reset/", {"email": "owner@acme.example"})
        page = response.content.decode()
        assert response.status_code == 429 and "Too many reset links" in page and "Try again in about" in page
        assert 1 <= int(response["Retry-After"]) <= 3600 and 'value="owner@acme.example"' in page
        assert len(mailoutbox) == 1  # the first ask only
        other = Client(REMOTE_ADDR="198.51.100.8").post("/accounts/password_reset/", {"email": "d@example.com"})
        assert other.status_code == 302

    def test_it_limits_reset_links_per_address_from_any_network(self, team_users, mailoutbox, fresh_cache):
        team_users.owner.email = "owner@acme.example"
        team_users.owner.save()
        statuses = [Client(REMOTE_ADDR=f"198.51.100.{n}").post("/accounts/password_reset/",
                                                               {"email": "Owner@ACME.example "}).status_code
                    for n in range(4)]
        assert statuses == [302, 302, 302, 429] and len(mailoutbox) == 3
        # An address no account has is counted the same way: the answers tell nothing about accounts.
        statuses = [Client(REMOTE_ADDR=f"203.0.113.{n}").post("/accounts/password_reset/",
                                                              {"email": "nobody@example.com"}).status_code
                    for n in range(4)]
        assert statuses == [302, 302, 302, 429]

    def test_it_changes_a_password(self, client, team_users):
        client.force_login(team_users.teammate)
        response = client.post("/accounts/password_change/", {
            "old_password": "pw-teammate-1", "new_password1": STRONG, "new_password2": STRONG})
        assert response["Location"] == "/accounts/password_change/done/"
        team_users.teammate.refresh_from_db()
        assert team_users.teammate.check_password(STRONG)

    def test_a_refused_password_change_leads_with_the_error_summary_like_every_form(self, client, team_users):
        client.force_login(team_users.teammate)
        html = client.post("/accounts/password_change/", {
            "old_password": "wrong", "new_password1": STRONG, "new_password2": STRONG}).content.decode()
        summary = html[html.index('class="form-errors"'):html.index("</ul>")]
        assert "Not changed yet" in summary and '<a href="#id_old_password">Old password</a>' in summary


@pytest.mark.django_db
class TestTeamPage:
    @pytest.fixture(autouse=True)
    def _rates(self, fresh_cache):
        """Invitations are counted in the cache, which outlives a test."""

    def test_it_lists_members_with_roles(self, client, team_users):
        client.force_login(team_users.viewer)
        html = client.get(f"/accounts/team/{team_users.team.pk}/").content.decode()
        for name, role in [("owner", "Owner"), ("teammate", "Editor"), ("viewer", "Viewer")]:
            assert re.search(rf"{name}.*?{role}</span>", html, re.S)
        assert "outsider" not in html
        assert 'name="email"' not in html and "Only the team's owners can invite" in html

    def test_it_lets_the_owner_invite_by_email(self, client, team_users, mailoutbox):
        client.force_login(team_users.owner)
        response = client.post(f"/accounts/team/{team_users.team.pk}/", {"email": "new@acme.example",
                                                                          "role": "viewer"})
        assert response.status_code == 302
        invitation = Invitation.objects.get()
        assert (invitation.team, invitation.email, invitation.role, invitation.invited_by) == (
            team_users.team, "new@acme.example", "viewer", team_users.owner)
        assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new@acme.example"]
        assert "Acme" in mailoutbox[0].subject
        assert link_in(mailoutbox[0].body) == f"/accounts/invite/{invitation.token}/"
        assert "Invitation sent to new@acme.example" in client.get(response["Location"]).content.decode()

    def test_it_links_the_invitation_under_site_root_when_set(self, client, team_users, mailoutbox, settings):
        settings.SITE_ROOT = "https://qart.example"
        client.force_login(team_users.owner)
        client.post(f"/accounts/team/{team_users.team.pk}/", {"email": "new@acme.example", "role": "viewer"})
        token = Invitation.objects.get().token
        assert f"https://qart.example/accounts/invite/{token}/" in mailoutbox[0].body

    def test_it_resends_a_pending_invitation_instead_of_making_another(self, client, team_users, mailoutbox):
        client.force_login(team_users.owner)
        url = f"/accounts/team/{team_users.team.pk}/"
        client.post(url, {"email": "new@acme.example", "role": "viewer"})
        client.post(url, {"email": "New@acme.example", "role": "editor"})
        assert Invitation.objects.get().role == "editor" and len(mailoutbox) == 2

    def test_it_limits_invitations_per_address_and_per_team(self, client, team_users, mailoutbox, settings):
        client.force_login(team_users.owner)
        url = f"/accounts/team/{team_users.team.pk}/"
        statuses = [client.post(url, {"email": "victim@example.net", "role": "viewer"}).status_code for _ in range(4)]
        assert statuses == [302, 302, 302, 429] and len(mailoutbox) == 3
        response = client.post(url, {"email": "victim@example.net", "role": "viewer"})
        assert "Too many invitations were sent to this address just now" in response.content.decode()
        assert re.search(r'id="invite-errors" role="alert" tabindex="-1" autofocus>\s*<p>Not sent yet',
                         response.content.decode())  # said first, and where focus starts
        assert 1 <= int(response["Retry-After"]) <= 3600
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "invitation_teams": "5/hour"}}
        statuses = [client.post(url, {"email": f"p{n}@example.net", "role": "viewer"}).status_code for n in range(3)]
        assert statuses == [302, 302, 429]  # the team's three sends above count too
        assert "Too many invitations were sent just now" in client.post(url, {"email": "q@example.net",
                                                                              "role": "viewer"}).content.decode()
        # Sends the team's rate refused were not counted against the address (they used up its 3 before).
        assert [client.post(url, {"email": "q@example.net", "role": "viewer"}).status_code for _ in range(2)] == [
            429, 429]
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "invitation_teams": "50/hour"}}
        assert client.post(url, {"email": "q@example.net", "role": "viewer"}).status_code == 302

    def test_it_sends_the_invitation_of_a_team_whose_name_has_a_line_break(self, client, team_users, mailoutbox):
        # A name saved before names were one line (the admin took "Acme\r\nBcc: ..."): a 500 after saving the row.
        Team.objects.filter(pk=team_users.team.pk).update(name="Acme\r\nBcc: evil@example.com")
        client.force_login(team_users.owner)
        response = client.post(f"/accounts/team/{team_users.team.pk}/", {"email": "new@acme.example", "role": "viewer"})
        assert response.status_code == 302
        assert mailoutbox[0].subject == "You're invited to Acme Bcc: evil@example.com on qart"
        assert mailoutbox[0].to == ["new@acme.example"] and not mailoutbox[0].bcc

    def test_it_refuses_to_invite_a_member(self, client, team_users):
        team_users.viewer.email = "viewer@acme.example"
        team_users.viewer.save()
        client.force_login(team_users.owner)
        response = client.post(f"/accounts/team/{team_users.team.pk}/", {"email": "viewer@acme.example",
                                                                          "role": "editor"})
        assert response.status_code == 400 and "already in the team" in response.content.decode()
        assert not Invitation.objects.exists()

    @pytest.mark.parametrize("who", ["teammate", "viewer"])
    def test_it_refuses_invitations_from_non_owners(self, client, team_users, mailoutbox, who):
        client.force_login(getattr(team_users, who))
        response = client.post(f"/accounts/team/{team_users.team.pk}/", {"email": "x@acme.example", "role": "owner"})
        assert response.status_code == 403 and not Invitation.objects.exists() and mailoutbox == []

    def test_it_hides_other_teams(self, client, team_users):
        client.force_login(team_users.outsider)
        url = f"/accounts/team/{team_users.team.pk}/"
        assert client.get(url).status_code == 404
        assert client.post(url, {"email": "x@rival.example", "role": "owner"}).status_code == 404
        assert client.get("/accounts/team/999999/").status_code == 404

    def test_it_needs_a_signed_in_user(self, client, team_users):
        response = client.get(f"/accounts/team/{team_users.team.pk}/")
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
class TestTeamMembers:
    """Owners manage members on the team page; anyone may leave; a team always keeps an owner."""

    def role(self, client, team_users, user, role):
        membership = Membership.objects.get(team=team_users.team, user=user)
        return client.post(f"/accounts/team/{team_users.team.pk}/members/{membership.pk}/role/",
                           {f"m{membership.pk}-role": role})

    def remove(self, client, team_users, user):
        membership = Membership.objects.get(team=team_users.team, user=user)
        return client.post(f"/accounts/team/{team_users.team.pk}/members/{membership.pk}/remove/")

    def test_an_owner_changes_roles_and_removes_members(self, client, team_users):
        client.force_login(team_users.owner)
        page = client.get(f"/accounts/team/{team_users.team.pk}/").content.decode()
        assert page.count(">Remove</button>") == 2
        response = self.role(client, team_users, team_users.viewer, "editor")
        assert response.status_code == 302 and Membership.role_of(team_users.viewer, team_users.team) == "editor"
        assert "viewer is now editor of Acme" in client.get(response["Location"]).content.decode()
        response = self.remove(client, team_users, team_users.teammate)
        assert response.status_code == 302 and Membership.role_of(team_users.teammate, team_users.team) is None
        assert "teammate is no longer in Acme" in client.get(response["Location"]).content.decode()

    @pytest.mark.parametrize("who", ["teammate", "viewer"])
    def test_only_owners_change_or_remove_others(self, client, team_users, who):
        client.force_login(getattr(team_users, who))
        page = client.get(f"/accounts/team/{team_users.team.pk}/").content.decode()
        assert ">Remove</button>" not in page and "/role/" not in page
        response = self.role(client, team_users, team_users.owner, "viewer")
        assert response.status_code == 403
        assert "Only a team owner manages the team&#x27;s members" in response.content.decode()
        assert self.remove(client, team_users, team_users.owner).status_code == 403
        assert Membership.role_of(team_users.owner, team_users.team) == "owner"

    def test_outsiders_and_other_teams_members_get_404(self, client, team_users):
        client.force_login(team_users.outsider)
        assert self.remove(client, team_users, team_users.viewer).status_code == 404
        assert self.role(client, team_users, team_users.viewer, "owner").status_code == 404
        rival = Membership.objects.get(team=team_users.other_team)
        client.force_login(team_users.owner)  # a membership of another team, through one's own team's address
        response = client.post(f"/accounts/team/{team_users.team.pk}/members/{rival.pk}/remove/")
        assert response.status_code == 404 and Membership.objects.filter(pk=rival.pk).exists()

    def test_a_member_leaves(self, client, team_users):
        client.force_login(team_users.viewer)
        response = self.remove(client, team_users, team_users.viewer)
        assert response["Location"] == "/accounts/" and Membership.role_of(team_users.viewer, team_users.team) is None
        assert "You left Acme" in client.get("/accounts/").content.decode()

    def test_the_last_owner_can_neither_leave_nor_step_down(self, client, team_users):
        client.force_login(team_users.owner)
        for attempt in (lambda: self.remove(client, team_users, team_users.owner),
                        lambda: self.role(client, team_users, team_users.owner, "editor")):
            response = attempt()
            assert response.status_code == 302
            assert "Acme needs an owner: make someone else an owner first." in client.get(
                response["Location"]).content.decode()
        assert Membership.role_of(team_users.owner, team_users.team) == "owner"
        self.role(client, team_users, team_users.teammate, "owner")
        assert self.role(client, team_users, team_users.owner, "viewer").status_code == 302
        assert Membership.role_of(team_users.owner, team_users.team) == "viewer"

    def test_it_offers_the_last_owner_no_leave_button_and_says_why(self, client, team_users):
        client.force_login(team_users.owner)
        url = f"/accounts/team/{team_users.team.pk}/"
        page = client.get(url).content.decode()
        assert ">Leave team</button>" not in page
        assert "You can't leave yet: you're its only owner. Make someone else an owner first." in page
        self.role(client, team_users, team_users.teammate, "owner")
        page = client.get(url).content.decode()
        assert ">Leave team</button>" in page and "leave yet" not in page
        client.force_login(team_users.viewer)  # not an owner: may always leave
        assert ">Leave team</button>" in client.get(url).content.decode()

    def test_it_offers_the_only_owner_no_role_form(self, client, team_users):
        # Its select and Change button could only be refused ("Acme needs an owner")
        client.force_login(team_users.owner)
        url = f"/accounts/team/{team_users.team.pk}/"
        owner_form = f'action="/accounts/team/{team_users.team.pk}/members/{{}}/role/"'
        owner = Membership.objects.get(team=team_users.team, user=team_users.owner)
        teammate = Membership.objects.get(team=team_users.team, user=team_users.teammate)
        page = client.get(url).content.decode()
        assert owner_form.format(owner.pk) not in page and owner_form.format(teammate.pk) in page
        assert re.search(r'data-member="owner">.*?<span class="badge role-owner">Owner</span>', page, re.S)
        self.role(client, team_users, team_users.teammate, "owner")  # two owners: each may step down
        page = client.get(url).content.decode()
        assert owner_form.format(owner.pk) in page and owner_form.format(teammate.pk) in page

    def test_it_tells_the_only_member_to_invite_an_owner_before_leaving(self, client, team_users):
        client.force_login(team_users.outsider)
        page = client.get(f"/accounts/team/{team_users.other_team.pk}/").content.decode()
        assert ">Leave team</button>" not in page and "you're its only member" in page

    @pytest.mark.parametrize("who, message", [("owner", "You are already an owner of Acme: nothing changed."),
                                              ("viewer", "viewer is already a viewer of Acme: nothing changed.")])
    def test_it_says_nothing_changed_for_the_same_role(self, client, team_users, who, message):
        client.force_login(team_users.owner)
        user = getattr(team_users, who)
        response = self.role(client, team_users, user, Membership.role_of(user, team_users.team))
        page = client.get(response["Location"]).content.decode()
        assert message in page and " now " not in page.split("<main", 1)[1]

    def test_a_bad_role_changes_nothing(self, client, team_users):
        client.force_login(team_users.owner)
        response = self.role(client, team_users, team_users.viewer, "admin")
        assert "Choose owner, editor or viewer." in client.get(response["Location"]).content.decode()
        assert Membership.role_of(team_users.viewer, team_users.team) == "viewer"

    def test_an_owner_removed_or_demoted_takes_their_pending_invitations(self, client, team_users):
        # A removed owner's invitation let an address of theirs join the team after their removal.
        second = get_user_model().objects.create_user("second", password="pw-second-1")
        Membership.objects.create(team=team_users.team, user=second, role="owner")
        sent = Invitation.objects.create(team=team_users.team, email="zed@example.com", invited_by=second)
        used = Invitation.objects.create(team=team_users.team, email="v@example.com", invited_by=second,
                                         accepted=timezone.now())
        kept = Invitation.objects.create(team=team_users.team, email="k@example.com", invited_by=team_users.owner)
        client.force_login(team_users.owner)
        self.remove(client, team_users, second)
        assert set(Invitation.objects.values_list("pk", flat=True)) == {used.pk, kept.pk}
        assert Client().get(f"/accounts/invite/{sent.token}/").status_code == 404
        # Demoted by any path, even one that sends no signal: the link is refused when opened.
        Invitation.objects.filter(pk=kept.pk).update(invited_by=team_users.teammate)
        response = Client().get(f"/accounts/invite/{kept.token}/")
        assert response.status_code == 410 and "This invitation was withdrawn" in response.content.decode()

    def test_an_owner_withdraws_an_invitation(self, client, team_users):
        invitation = Invitation.objects.create(team=team_users.team, email="zed@example.com",
                                               invited_by=team_users.owner)
        url = f"/accounts/team/{team_users.team.pk}/invitations/{invitation.pk}/withdraw/"
        client.force_login(team_users.teammate)
        assert client.post(url).status_code == 403
        client.force_login(team_users.outsider)
        assert client.post(url).status_code == 404
        client.force_login(team_users.owner)
        response = client.post(url)
        assert "its link no longer works" in client.get(response["Location"]).content.decode()
        assert Client().get(f"/accounts/invite/{invitation.token}/").status_code == 404

    def test_an_owner_renames_the_team_on_one_line(self, client, team_users):
        url = f"/accounts/team/{team_users.team.pk}/settings/"
        client.force_login(team_users.owner)
        response = client.post(url, {"name": "Acme\r\nBcc: x@example.com", "time_zone": "UTC"})
        assert response.status_code == 400 and "one line of text" in response.content.decode()
        assert client.post(url, {"name": "Acme \U0001F469\u200d\U0001F3A8", "time_zone": "UTC"}).status_code == 302
        assert client.post(url, {"name": "Acme Europe", "time_zone": "UTC"}).status_code == 302
        assert Team.objects.get(pk=team_users.team.pk).name == "Acme Europe"
        client.force_login(team_users.viewer)
        response = client.post(url, {"name": "Mine", "time_zone": "UTC"})
        assert response.status_code == 403 and "changes the team&#x27;s settings" in response.content.decode()


@pytest.mark.django_db
class TestAccountPage:
    def test_it_lists_your_teams(self, client, team_users):
        client.force_login(team_users.teammate)
        html = client.get("/accounts/").content.decode()
        assert f'href="/accounts/team/{team_users.team.pk}/"' in html and "Rival" not in html

    def test_it_tells_a_user_without_a_team(self, client, django_user_model):
        client.force_login(django_user_model.objects.create_user("loner", password="pw-loner-1"))
        html = client.get("/accounts/").content.decode()
        assert "data-no-team>You're not in a team." in html and "No API tokens yet." in html

    def test_it_links_the_api_reference_from_the_tokens(self, client, team_users):
        # A token was offered with no word of what it opens.
        client.force_login(team_users.teammate)
        html = client.get("/accounts/").content.decode()
        tokens = html[html.index('id="api-tokens"'):]
        assert 'href="/api/docs/"' in tokens[:tokens.index("</section>")]

    def test_someone_removed_from_every_team_still_sees_and_revokes_their_tokens(self, client, team_users):
        from knox.models import AuthToken

        from qartsite import tokens

        row, _ = tokens.make_token(team_users.viewer, "old script")
        Membership.objects.filter(user=team_users.viewer).delete()
        client.force_login(team_users.viewer)
        html = client.get("/accounts/").content.decode()
        assert "data-no-team" in html and f'data-token="{row.token_key}"' in html and "old script" in html
        response = client.post(f"/accounts/tokens/{row.token_key}/revoke/")
        assert response.status_code == 302 and not AuthToken.objects.filter(token_key=row.token_key).exists()


@pytest.fixture
def invitation(team_users) -> Invitation:
    return Invitation.objects.create(team=team_users.team, email="newbie@acme.example", role="viewer",
                                     invited_by=team_users.owner)


@pytest.mark.django_db
class TestInvitation:
    def signup(self, client, invitation, username="newbie", password=STRONG):
        return client.post(f"/accounts/invite/{invitation.token}/",
                           {"username": username, "password1": password, "password2": password})

    def test_it_shows_the_team_and_role(self, client, invitation):
        html = client.get(f"/accounts/invite/{invitation.token}/").content.decode()
        assert "Join Acme" in html and "Viewer" in html and 'name="password1"' in html

    def test_it_creates_the_account_and_joins_the_team(self, client, team_users, invitation):
        response = self.signup(client, invitation)
        assert response.status_code == 302 and response["Location"] == "/campaigns/"
        user = get_user_model().objects.get(username="newbie")
        assert user.email == "newbie@acme.example" and user.check_password(STRONG)
        assert Membership.role_of(user, team_users.team) == "viewer"
        invitation.refresh_from_db()
        assert invitation.accepted is not None
        assert client.session["_auth_user_id"] == str(user.pk)
        assert "Welcome to Acme" in client.get("/campaigns/").content.decode()

    def test_it_refuses_a_used_invitation(self, client, team_users, invitation):
        self.signup(client, invitation)
        client.logout()
        response = self.signup(client, invitation, username="second")
        assert response.status_code == 410 and "already been used" in response.content.decode()
        assert client.get(f"/accounts/invite/{invitation.token}/").status_code == 410
        assert not get_user_model().objects.filter(username="second").exists()

    def test_it_refuses_an_unknown_token(self, client, db):
        response = client.get("/accounts/invite/not-a-real-token/")
        assert response.status_code == 404 and "isn't valid" in response.content.decode()
        assert client.post("/accounts/invite/not-a-real-token/", {"username": "x"}).status_code == 404

    def test_it_refuses_an_expired_invitation(self, client, invitation):
        Invitation.objects.filter(pk=invitation.pk).update(created=timezone.now() - timedelta(days=15))
        response = self.signup(client, invitation)
        assert response.status_code == 410 and "expired" in response.content.decode()
        assert not get_user_model().objects.filter(username="newbie").exists()

    @pytest.mark.parametrize("password, message", [("short", "too short"), ("password123", "too common"),
                                                   ("newbieacme1", "too similar")])
    def test_it_validates_the_password(self, client, invitation, password, message):
        response = self.signup(client, invitation, password=password)
        assert response.status_code == 400 and message in response.content.decode()
        invitation.refresh_from_db()
        assert invitation.accepted is None and not get_user_model().objects.filter(username="newbie").exists()

    def test_it_puts_password_rules_on_the_password_and_sums_them_up(self, client, invitation):
        response = self.signup(client, invitation, password="short")
        form = response.context["form"]
        assert any("too short" in error for error in form.errors["password1"]) and "password2" not in form.errors
        html = response.content.decode()
        assert 'class="form-errors"' in html and '<a href="#id_password1">Password</a>: ' in html

    def test_it_keeps_a_mismatch_on_the_confirmation(self, client, invitation):
        response = client.post(f"/accounts/invite/{invitation.token}/",
                               {"username": "newbie", "password1": STRONG, "password2": STRONG + "x"})
        assert response.status_code == 400 and list(response.context["form"].errors) == ["password2"]
        assert "fields didn’t match" in response.context["form"].errors["password2"][0]

    def test_it_refuses_a_taken_username(self, client, team_users, invitation):
        response = self.signup(client, invitation, username="owner")
        assert response.status_code == 400 and "already exists" in response.content.decode()

    def test_it_lets_a_signed_in_user_join_with_their_account(self, client, team_users):
        invitation = Invitation.objects.create(team=team_users.team, email="o@rival.example", role="editor")
        team_users.outsider.email = "O@Rival.example"  # addresses compare without case
        team_users.outsider.save(update_fields=["email"])
        client.force_login(team_users.outsider)
        assert "signed in as" in client.get(f"/accounts/invite/{invitation.token}/").content.decode()
        assert client.post(f"/accounts/invite/{invitation.token}/")["Location"] == "/campaigns/"
        assert Membership.role_of(team_users.outsider, team_users.team) == "editor"

    def test_it_refuses_a_signed_in_account_of_another_address(self, client, team_users):
        # A leaked owner invitation must not let anyone else's account into the team.
        invitation = Invitation.objects.create(team=team_users.team, email="boss@acme.example", role="owner")
        team_users.outsider.email = "o@rival.example"
        team_users.outsider.save(update_fields=["email"])
        client.force_login(team_users.outsider)
        for response in (client.get(f"/accounts/invite/{invitation.token}/"),
                         client.post(f"/accounts/invite/{invitation.token}/")):
            page = response.content.decode()
            assert response.status_code == 403 and "for another address" in page and "b***@acme.example" in page
        invitation.refresh_from_db()
        assert invitation.accepted is None and Membership.role_of(team_users.outsider, team_users.team) is None

    def test_it_never_changes_an_existing_members_role(self, client, team_users):
        invitation = Invitation.objects.create(team=team_users.team, email="v@acme.example", role="owner")
        team_users.viewer.email = "v@acme.example"
        team_users.viewer.save(update_fields=["email"])
        client.force_login(team_users.viewer)
        response = client.post(f"/accounts/invite/{invitation.token}/")
        assert Membership.role_of(team_users.viewer, team_users.team) == "viewer"
        page = client.get(response["Location"]).content.decode()
        assert "You were already in Acme, as viewer" in page and "Welcome" not in page

    def test_an_address_with_an_account_signs_in_to_join_rather_than_making_a_second(self, client, team_users):
        team_users.outsider.email = "o@rival.example"
        team_users.outsider.save(update_fields=["email"])
        invitation = Invitation.objects.create(team=team_users.team, email="O@rival.example", role="editor",
                                               invited_by=team_users.owner)
        page = client.get(f"/accounts/invite/{invitation.token}/").content.decode()
        assert 'name="password1"' not in page and "There is already a qart account" in page
        assert f'href="/accounts/login/?next=/accounts/invite/{invitation.token}/"' in page
        response = self.signup(client, invitation, username="second")
        assert response.status_code == 400 and not get_user_model().objects.filter(username="second").exists()
        client.force_login(team_users.outsider)
        client.post(f"/accounts/invite/{invitation.token}/")
        assert Membership.role_of(team_users.outsider, team_users.team) == "editor"


@pytest.mark.django_db
class TestApiTokens:
    def test_it_makes_a_named_token_shown_once_that_the_api_accepts(self, client, team_users):
        from knox.models import AuthToken

        client.force_login(team_users.teammate)
        made = client.post("/accounts/tokens/", {"name": "  reporting script "})
        assert made.status_code == 302 and made["Location"] == "/accounts/"  # a reload does not post again
        assert client.head("/accounts/").status_code == 200  # a HEAD does not use up its showing
        shown = client.get("/accounts/")
        html = shown.content.decode()
        token = re.search(r'class="token-once" value="([^"]+)"', html).group(1)
        assert shown.status_code == 200 and shown["Cache-Control"] == "no-store"
        assert "“reporting script”" in html and api_status(token) == 200
        again = client.get("/accounts/").content.decode()
        assert token not in again and "reporting script" in again and f"<code>{token[:15]}…</code>" in again
        assert AuthToken.objects.filter(user=team_users.teammate).count() == 1

    def test_the_account_page_shows_its_token_section_once_under_a_plain_title(self, client, team_users):
        client.force_login(team_users.teammate)
        html = client.post("/accounts/tokens/", {"name": "ci"}, follow=True).content.decode()
        assert re.search(r"<title>(.*?)</title>", html, re.S).group(1) == "Your account · qart"
        token = re.search(r'class="token-once" value="([^"]+)"', html).group(1)
        assert html.count('id="api-tokens"') == 1 and html.count(token) == 2  # the field and its Copy button

    def test_it_lists_and_revokes_only_your_own_tokens(self, client, team_users):
        from knox.models import AuthToken

        mine, my_token = AuthToken.objects.create(user=team_users.owner)
        theirs, their_token = AuthToken.objects.create(user=team_users.outsider)
        client.force_login(team_users.owner)
        page = client.get("/accounts/").content.decode()
        assert mine.token_key in page and theirs.token_key not in page
        refused = client.post(f"/accounts/tokens/{theirs.token_key}/revoke/")
        assert refused.status_code == 400 and "has no token starting with" in refused.content.decode()
        assert api_status(their_token) == 200
        # The prefix comes from the address: repr quoted it as Python writes a string, unlike every other message.
        quoted = client.post("/accounts/tokens/it%27s%09x/revoke/")
        assert quoted.status_code == 400 and "starting with “it&#x27;s\\u0009x”" in quoted.content.decode()
        revoked = client.post(f"/accounts/tokens/{mine.token_key}/revoke/", follow=True)
        assert "revoked" in revoked.content.decode() and api_status(my_token) == 401

    def test_it_refuses_a_name_too_long_with_one_message(self, client, team_users):
        client.force_login(team_users.owner)
        refused = client.post("/accounts/tokens/", {"name": "x" * 65})
        assert refused.status_code == 400
        assert "The name is 65 characters long; the most is 64." in refused.content.decode()
        assert 'class="token-once"' not in refused.content.decode()

    @pytest.mark.parametrize("name", ["ci\x00", "ci\nbot", "ci\u202ebot"])
    def test_it_refuses_a_name_with_a_control_character_keeping_it_in_the_field(self, client, team_users, name):
        from knox.models import AuthToken

        client.force_login(team_users.owner)
        refused = client.post("/accounts/tokens/", {"name": f"  {name}"})  # PostgreSQL: NUL was a 500
        html = refused.content.decode()
        assert refused.status_code == 400 and "A token&#x27;s name is one line of text" in html
        assert re.search(r'<input id="token-name" type="text" name="name" value="  ci', html)
        assert not AuthToken.objects.filter(user=team_users.owner).exists()

    def test_it_needs_a_signed_in_post_with_csrf(self, team_users):
        from django.test import Client

        assert Client().post("/accounts/tokens/", {"name": "x"}).status_code == 302  # to sign in
        guarded = Client(enforce_csrf_checks=True)
        guarded.force_login(team_users.owner)
        assert guarded.post("/accounts/tokens/", {"name": "x"}).status_code == 403
        assert guarded.get("/accounts/tokens/").status_code == 405


@pytest.mark.django_db
class TestTeamSettings:
    def test_an_owner_sets_the_time_zone_and_retention(self, client, team_users):
        client.force_login(team_users.owner)
        response = client.post(f"/accounts/team/{team_users.team.pk}/settings/",
                               {"name": "Acme", "time_zone": "Europe/Paris", "scan_retention_days": "90"},
                               follow=True)
        team_users.team.refresh_from_db()
        assert (team_users.team.time_zone, team_users.team.scan_retention_days) == ("Europe/Paris", 90)
        assert team_users.team.counted_time_zone == "Europe/Paris"  # nothing counted yet: nothing to recount
        assert "Days now count in Europe/Paris" in response.content.decode()
        assert "Team settings saved." in response.content.decode()  # the retention changed too
        response = client.post(f"/accounts/team/{team_users.team.pk}/settings/",
                               {"name": "Acme", "time_zone": "Europe/Berlin", "scan_retention_days": "90"},
                               follow=True)
        assert "Team settings saved." not in response.content.decode()  # the time zone alone

    def test_an_owner_writes_the_codes_scheme_in_capitals_and_others_read_it(self, client, team_users):
        client.force_login(team_users.owner)
        page = client.get(f"/accounts/team/{team_users.team.pk}/").content.decode()
        assert 'name="capital_scheme"' in page and "Pixel Camera" in page
        client.post(f"/accounts/team/{team_users.team.pk}/settings/",
                    {"name": "Acme", "time_zone": "UTC", "scan_retention_days": "", "capital_scheme": "on"})
        team_users.team.refresh_from_db()
        assert team_users.team.capital_scheme is True
        client.force_login(team_users.viewer)
        assert "Codes' links start HTTPS:// in capitals." in client.get(
            f"/accounts/team/{team_users.team.pk}/").content.decode()

    @pytest.mark.parametrize(("data", "message"), [
        ({"name": "Acme", "time_zone": "Mars/Olympus", "scan_retention_days": ""}, "Select a valid choice"),
        ({"name": "Acme", "time_zone": "UTC", "scan_retention_days": "7"}, "greater than or equal to 30"),
        ({"name": "Acme", "time_zone": "UTC", "scan_retention_days": "-1"}, "greater than or equal to 30"),
        ({"name": " ", "time_zone": "UTC", "scan_retention_days": ""}, "This field is required"),
        ({"name": "Acme", "time_zone": "UTC", "scan_retention_days": "３６５"}, "Enter a whole number"),  # int(): 365
        ({"name": "Acme", "time_zone": "UTC", "scan_retention_days": "3_65"}, "Enter a whole number"),
    ])
    def test_it_refuses_bad_settings_with_a_message(self, client, team_users, data, message):
        client.force_login(team_users.owner)
        response = client.post(f"/accounts/team/{team_users.team.pk}/settings/", data)
        assert response.status_code == 400 and message in response.content.decode()
        team_users.team.refresh_from_db()
        assert team_users.team.time_zone == "UTC" and team_users.team.scan_retention_days is None

    def test_the_invite_form_stays_whole_and_posts_to_the_team_page_after_a_settings_error(self, client, team_users):
        # It rendered as a bare "Send invitation" without its fields, posting to the settings address.
        client.force_login(team_users.owner)
        page = client.post(f"/accounts/team/{team_users.team.pk}/settings/",
                           {"name": " ", "time_zone": "UTC", "scan_retention_days": ""}).content.decode()
        invite = page[page.index('id="invite"'):]
        invite = invite[:invite.index("</form>")]
        assert f'action="/accounts/team/{team_users.team.pk}/"' in invite
        assert 'name="email"' in invite and 'name="role"' in invite

    def test_shortening_the_retention_says_how_many_scans_go_and_waits_for_a_yes(self, client, team_users):
        # A typo (30 for 365) deleted a year of single scans at the next daily pass, after "Team settings saved."
        from campaigns.drainer import store_events
        from campaigns.models import Campaign, Placement

        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        now = timezone.now()
        store_events([event(poster, now - timedelta(days=age)) for age in (400, 100, 40, 10, 1)])
        client.force_login(team_users.owner)
        url, data = f"/accounts/team/{team_users.team.pk}/settings/", {"name": "Acme", "time_zone": "UTC",
                                                                       "scan_retention_days": "30"}
        response = client.post(url, data)
        html = response.content.decode()
        assert response.status_code == 409 and "data-retention-warning" in html
        assert re.search(r"deletes\s+3 scans from before", html) and "Delete them and save" in html
        team_users.team.refresh_from_db()
        assert team_users.team.scan_retention_days is None
        # A yes to another number is no yes to this one.
        assert client.post(url, {**data, "confirm_retention": "90"}).status_code == 409
        assert client.post(url, {**data, "confirm_retention": "30"}).status_code == 302
        team_users.team.refresh_from_db()
        assert team_users.team.scan_retention_days == 30
        # Longer again: no question; shorter without scans to lose (none between 200 and 365 days old): none either.
        assert client.post(url, {**data, "scan_retention_days": "365"}).status_code == 302
        assert client.post(url, {**data, "scan_retention_days": "200"}).status_code == 302
        response = client.post(url, {**data, "scan_retention_days": "60"})
        assert response.status_code == 409 and re.search(r"deletes\s+1 scan from before", response.content.decode())

    def test_the_retention_warnings_date_is_the_teams_day(self, client, team_users, monkeypatch):
        # It was the server's (UTC) date: at 09:00 on 7 Dec in Auckland (20:00 on 6 Dec UTC) 30 days deleted the
        # scans from before 09:00 on 7 Nov there, which it called "from before 6 Nov", as if 6 Nov's were kept.
        from datetime import UTC, datetime

        from campaigns.drainer import store_events
        from campaigns.models import Campaign, Placement

        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        now = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
        store_events([event(poster, now - timedelta(days=31))])  # 6 Nov, 09:00 in Auckland
        monkeypatch.setattr(timezone, "now", lambda: now)
        client.force_login(team_users.owner)
        response = client.post(f"/accounts/team/{team_users.team.pk}/settings/",
                               {"name": "Acme", "time_zone": "Pacific/Auckland", "scan_retention_days": "30"})
        assert response.status_code == 409
        assert re.search(r"deletes\s+1 scan from before\s+7 Nov 2026", response.content.decode())

    def test_the_zone_choices_are_places(self, client, team_users):
        client.force_login(team_users.owner)
        page = client.get(f"/accounts/team/{team_users.team.pk}/").content.decode()
        assert 'value="Europe/Paris"' in page and 'value="localtime"' not in page and 'value="Factory"' not in page

    def test_only_owners_change_them(self, client, team_users):
        data = {"name": "Mine", "time_zone": "Europe/Paris", "scan_retention_days": ""}
        client.force_login(team_users.teammate)
        assert client.post(f"/accounts/team/{team_users.team.pk}/settings/", data).status_code == 403
        page = client.get(f"/accounts/team/{team_users.team.pk}/").content.decode()
        assert "Days count in <strong>UTC</strong>" in page
        client.force_login(team_users.outsider)
        assert client.post(f"/accounts/team/{team_users.team.pk}/settings/", data).status_code == 404
        team_users.team.refresh_from_db()
        assert team_users.team.time_zone == "UTC"


@pytest.mark.django_db(transaction=True)  # two requests at once, each with a connection of its own
def test_two_invitations_to_one_address_at_once_make_one(team_users, monkeypatch, fresh_cache):
    # A double click on "Invite" made two pending invitations, and sent two e-mails with different links.
    # Both requests are lined up at `invite` (a barrier: the sign-in and the form are behind them), so they reach the
    # guarded lookup together. Whichever gets past the lookup first is held just before it creates the invitation;
    # the other, if the guard lets it through, gets there too meanwhile. No step waits on a guess of how fast a
    # loaded machine is: only the guard's holding the other request off is given a bound, and a slow machine can
    # only make that pass, not fail.
    import threading

    from django.db import connection

    from qartsite import accounts

    timeout = 60  # seconds: only ever reached when something is wrong
    lined_up = threading.Barrier(2, timeout=timeout)
    creating, through, go = [], threading.Event(), threading.Event()
    first_there = threading.Event()
    invite, create = accounts.invite, Invitation.objects.create

    def invite_together(*args, **kwargs):
        lined_up.wait()
        return invite(*args, **kwargs)

    def held_create(*args, **kwargs):
        creating.append(threading.current_thread().name)  # list.append is atomic
        if len(creating) == 1:
            first_there.set()
            go.wait(timeout)
        else:
            through.set()
        return create(*args, **kwargs)

    monkeypatch.setattr(accounts, "invite", invite_together)
    monkeypatch.setattr(Invitation.objects, "create", held_create)
    codes, errors = {}, []

    def run(name: str) -> None:
        try:
            client = Client()
            client.force_login(team_users.owner)
            codes[name] = client.post(f"/accounts/team/{team_users.team.pk}/",
                                      {"email": "new@acme.example", "role": "viewer"}).status_code
        except BaseException as exc:  # raised again in the test's own thread, below
            errors.append(exc)
            lined_up.abort()  # the other request is not left waiting at the barrier
        finally:
            go.set()
            connection.close()

    threads = [threading.Thread(target=run, args=(name,), name=name) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    assert first_there.wait(timeout) or errors, f"neither request reached the invitation's creation in {timeout} s"
    # The first holds the team (and, on SQLite, the database's write lock): the other waits on it, or, without the
    # guard, reaches the creation too, in milliseconds. Two seconds to show itself, then the first goes on.
    through.wait(2)
    go.set()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), f"a request did not end within {timeout} s"
    if errors:
        raise errors[0]
    assert not through.is_set(), "the guard let the second request look while the first was making the invitation"
    assert codes == {"one": 302, "two": 302}
    assert Invitation.objects.filter(email="new@acme.example").count() == 1
