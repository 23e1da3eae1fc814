"""The admin's log as staff read it (qartsite/admin_log.py): an object's history page names only the user's
teammates, and the index's recent actions list only the user's actions on objects their admin still shows them.
The cast and rows are tests/qartsite/test_admin.py's ("Acme ..." ours, "Rival ..." theirs).
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from knox.models import AuthToken

from campaigns.models import Campaign
from generator.core.codes import decision
from generator.models import VerifierModel
from qartsite.admin_log import SOMEONE_OUTSIDE
from qartsite.models import APIToken, Membership
from tests.qartsite.admin_pages import url


@pytest.fixture
def strangers(cast):
    """Who changed our things without being our teammates now, by the words that name each on a page: someone who
    left the team, the other team's owner, and a superuser."""
    users = get_user_model().objects
    former = users.create_user("formerly", first_name="Fay", last_name="Former")
    Membership.objects.create(team=cast.team, user=former, role="editor").delete()  # joined, then left
    operator = users.create_superuser("root-operator", first_name="Sam", last_name="Super")
    return {former: ("formerly", "Fay Former"), cast.outsider: ("outsider",), operator: ("root-operator", "Sam Super")}


@pytest.fixture
def shown_to_owner(cast, rows) -> dict:
    """An object of every registered model whose admin shows the owner any (the other admins refuse staff)."""
    token, _ = AuthToken.objects.create(cast.owner)
    verifier = VerifierModel.objects.create(model_id="logistic-v1-aaaa1111", form=decision.DEFAULT_MODEL.form,
                                            bias=-4.0, weights=[["o_any", 1.0]])
    return {**rows["ours"], get_user_model(): cast.viewer, APIToken: APIToken.objects.get(pk=token.pk),
            VerifierModel: verifier}


def log_change(author, obj) -> None:
    LogEntry.objects.log_actions(author.pk, [obj], CHANGE, change_message="Changed the name.")


@pytest.mark.django_db
class TestHistory:
    def test_every_history_page_names_only_the_users_teammates(self, client, cast, shown_to_owner, strangers):
        client.force_login(cast.owner)
        for model, model_admin in admin.site._registry.items():
            obj = shown_to_owner.get(model)
            if obj is None:  # a new admin that shows staff its rows needs an object here
                request = client.get(url(model)).wsgi_request
                assert not model_admin.has_view_or_change_permission(request), model
                continue
            for author in [cast.teammate, *strangers]:
                log_change(author, obj)
            page = client.get(url(model, "history", obj))
            body = page.content.decode()
            assert page.status_code == 200 and body.count("Changed the name.") == 4, model
            assert "teammate" in body and body.count(SOMEONE_OUTSIDE) == 3, model
            for words in strangers.values():
                assert not any(word in body for word in words), (model, words)

    def test_ones_own_changes_name_oneself_outside_every_team(self, client, cast):
        # The owner left every team: the history of their own API token called its author "someone outside your
        # teams", as if another person had changed it.
        token, _ = AuthToken.objects.create(cast.owner)
        Membership.objects.filter(user=cast.owner).delete()
        api_token = APIToken.objects.get(pk=token.pk)
        log_change(cast.owner, api_token)
        client.force_login(cast.owner)
        body = client.get(url(APIToken, "history", api_token)).content.decode()
        assert "Changed the name." in body and SOMEONE_OUTSIDE not in body

    def test_superusers_read_every_name(self, client, cast, rows, strangers):
        operator = next(user for user in strangers if user.is_superuser)
        campaign = rows["ours"][Campaign]
        for author in strangers:
            log_change(author, campaign)
        client.force_login(operator)
        body = client.get(url(type(campaign), "history", campaign)).content.decode()
        assert all(word in body for words in strangers.values() for word in words)
        assert SOMEONE_OUTSIDE not in body


@pytest.mark.django_db
class TestRecentActions:
    def test_a_superuser_made_staff_no_longer_reads_what_they_changed_elsewhere(self, client, cast):
        # The viewer was a superuser once and changed other teams' people, groups and tokens: the sidebar named them.
        others_token, _ = AuthToken.objects.create(cast.outsider)
        group = Group.objects.create(name="Rival auditors")
        LogEntry.objects.log_actions(cast.viewer.pk, [cast.outsider, group, APIToken.objects.get(pk=others_token.pk),
                                                      cast.teammate], CHANGE)
        client.force_login(cast.viewer)
        body = client.get("/admin/").content.decode()
        assert url(get_user_model(), "change", cast.teammate) in body  # a teammate is still theirs to read
        assert "outsider" not in body and "Rival auditors" not in body

    def test_it_lists_ones_own_token_under_its_own_kind(self, client, cast):
        # The admin logs a token as an API token (a proxy of knox's), not as knox's own kind.
        token, _ = AuthToken.objects.create(cast.owner)
        LogEntry.objects.log_actions(cast.owner.pk, [APIToken.objects.get(pk=token.pk)], CHANGE)
        client.force_login(cast.owner)
        assert f"{token.token_key}…" in client.get("/admin/").content.decode()
