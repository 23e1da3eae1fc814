"""The admin's team scoping (qartsite.scoped_admin), on every team-scoped admin: changelists and their filters show
only the user's teams' rows, forms offer only their things (raw-id inputs, JSON and ids the database can hold
included), no changelist filters on a secret or, for staff, through a reverse relation, and viewers only read.
The cast and rows are tests/qartsite/test_admin.py's ("Acme ..." ours, "Rival ..." theirs).
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils.html import strip_tags

from campaigns.models import Campaign, Placement, ReportShare, ScanEvent, WebhookEndpoint
from generator.models import GenerationPreset, LabelingItem, LabelingSession
from qartsite.models import Invitation, Membership, Team
from qartsite.scoped_admin import SuperusersOnlyFields, TeamScopedAdmin
from tests.qartsite.admin_pages import choices_on, scoped_admins, team_rows, url


@pytest.mark.django_db
class TestChangelists:
    def test_it_hides_the_other_teams_rows_on_every_team_scoped_changelist(self, client, cast, rows):
        for model, _ in scoped_admins():
            assert model in rows["ours"], f"team_rows() makes no {model.__name__}: add one"
        client.force_login(cast.owner)
        for model in rows["ours"]:
            ours, theirs = rows["ours"][model], rows["theirs"][model]
            response = client.get(url(model))
            assert response.status_code == 200, model
            body = response.content.decode()
            assert url(model, "change", ours) in body, model
            assert url(model, "change", theirs) not in body, model
            assert client.get(url(model, "change", theirs)).status_code in (302, 404), model

    def test_it_names_no_other_team_in_list_filters(self, client, cast, rows):
        # A second team of the owner's, so that the team filters have two choices to show (one, they hide).
        second = Team.objects.create(name="Beta")
        Membership.objects.create(team=second, user=cast.owner, role="editor")
        team_rows(second, cast.owner)
        client.force_login(cast.owner)
        for model, _ in scoped_admins():
            body = client.get(url(model)).content.decode()
            assert "rival" not in body.lower(), f"{model.__name__}'s changelist names the other team"
        filters = {spec.field_path: spec for spec in client.get(url(Campaign)).context["cl"].filter_specs}
        assert sorted(name for _, name in filters["team"].lookup_choices) == ["Acme", "Beta"]

    def test_staff_get_no_team_filter_of_one_useless_choice(self, client, cast, rows):
        # A labeling session's team may be empty: the filter offered staff of one team that team and "-", which
        # selects rows of no team, never theirs. Now no empty choice, and a filter of one team hides itself.
        client.force_login(cast.owner)
        filters = {spec.field_path: spec for spec in client.get(url(LabelingSession)).context["cl"].filter_specs}
        assert "team" not in filters or not filters["team"].has_output()
        second = Team.objects.create(name="Beta")
        Membership.objects.create(team=second, user=cast.owner, role="editor")
        team_rows(second, cast.owner)
        changelist = client.get(url(LabelingSession)).context["cl"]
        shown = [choice["display"] for spec in changelist.filter_specs if spec.field_path == "team"
                 for choice in spec.choices(changelist)]
        assert shown == ["All", "Acme", "Beta"]

    def test_it_shows_superusers_every_team(self, client, rows):
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        for model, _ in scoped_admins():
            body = client.get(url(model)).content.decode()
            assert url(model, "change", rows["ours"][model]) in body, model
            assert url(model, "change", rows["theirs"][model]) in body, model


@pytest.mark.django_db
class TestPermissionQueries:
    def test_it_asks_once_a_request_whether_staff_may_change_anything(self, cast):
        # Django asks each registered model's add, change and delete permission for the admin's navigation on every
        # page: each was the same query (30-odd a page for a team's staff).
        request = RequestFactory().get("/admin/")
        request.user = cast.owner
        scoped = [model_admin for model_admin in admin.site._registry.values()
                  if hasattr(model_admin, "changing_teams")]
        with CaptureQueriesContext(connection) as queries:
            for model_admin in scoped:
                model_admin.has_add_permission(request)
                model_admin.has_change_permission(request)
                model_admin.has_delete_permission(request)
        kinds = {model_admin.changing_teams for model_admin in scoped}  # editors' teams, owners' teams, ...
        assert len(scoped) > 10 and len(queries) <= len(kinds) + 2  # + the user's permissions, read once

    def test_a_new_request_asks_again(self, cast):
        # Answered per request, never for longer: an owner who leaves the team is not left with the rights.
        scoped = admin.site._registry[Campaign]
        request = RequestFactory().get("/admin/")
        request.user = cast.viewer
        assert not scoped.has_change_permission(request)
        Membership.objects.filter(user=cast.viewer).update(role="editor")
        fresh = RequestFactory().get("/admin/")
        fresh.user = get_user_model().objects.get(pk=cast.viewer.pk)
        assert scoped.has_change_permission(fresh)


@pytest.mark.django_db
class TestForms:
    def test_it_offers_only_editable_teams_in_team_fields(self, client, cast, rows):
        # The outsider owns Rival and only views Acme: Acme is visible to them, but not theirs to add to.
        Membership.objects.create(team=cast.team, user=cast.outsider, role="viewer")
        client.force_login(cast.outsider)
        for model, _ in scoped_admins():
            response = client.get(url(model, "add"))
            if response.status_code == 403:  # teams and scan events: never added here by staff
                continue
            choices = choices_on(response)
            if "team" in choices:
                assert choices["team"] == [cast.other_team], model

    def test_it_offers_only_the_users_teams_objects_and_members(self, client, cast, rows):
        client.force_login(cast.owner)
        theirs = set(rows["theirs"].values()) | {cast.outsider}
        for model, _ in scoped_admins():
            pages = [url(model, "add"), url(model, "change", rows["ours"][model])]
            for page in pages:
                response = client.get(page)
                if response.status_code == 403:  # scan events: never added or changed by hand
                    continue
                for name, choices in choices_on(response).items():
                    assert not theirs & set(choices), f"{page} offers the other team's {name}"

    @pytest.mark.parametrize(("model", "field", "param"), [
        (LabelingItem, "result", "result"), (GenerationPreset, "source_run", "source_run"),
        (Placement, "artwork", "artwork"), (LabelingItem, "candidate", "candidate"),
    ])
    def test_a_raw_id_input_names_no_other_teams_object(self, client, cast, rows, model, field, param):
        # Django's raw-id input looked the id of `?job=2` up in the whole table and printed its name beside it.
        client.force_login(cast.owner)
        theirs = rows["theirs"][model._meta.get_field(field).related_model]
        html = strip_tags(client.get(url(model, "add") + f"?{param}={theirs.pk}").content.decode())
        assert "Rival" not in html
        ours = rows["ours"][model._meta.get_field(field).related_model]
        page = client.get(url(model, "add") + f"?{param}={ours.pk}").content.decode()
        assert f'/{ours._meta.model_name}/{ours.pk}/change/' in page  # one's own is still named and linked

    def test_a_json_field_refuses_numbers_its_database_cannot_hold(self, client, cast, rows):
        client.force_login(cast.owner)
        preset = rows["ours"][GenerationPreset]
        # 5,000 digits: Python refuses to read so long an int (a ValueError Django's field let through: a 500)
        for text in ('{"steps": NaN}', '{"steps": 1e400}', '{"seed": 99999999999999999999}', "[%s]" % ("9" * 5000)):
            response = client.post(url(GenerationPreset, "change", preset),
                                   {"team": cast.team.pk, "name": preset.name, "params": text})
            assert response.status_code == 200, text  # the form again, not a 500
            assert "Numbers must be finite" in response.content.decode()
        response = client.post(url(GenerationPreset, "change", preset),
                               {"team": cast.team.pk, "name": preset.name, "params": "[" * 100_000 + "]" * 100_000})
        assert response.status_code == 200  # the form again, not a RecursionError's 500
        assert "The JSON is nested more than 200 levels deep." in response.content.decode()

    def test_an_id_too_large_for_the_database_is_a_form_error(self, client, cast, rows):
        client.force_login(cast.owner)
        huge = "9" * 30
        session = client.post(url(LabelingSession, "add"), {"team": cast.team.pk, "name": "s", "candidates": huge})
        preset = client.post(url(GenerationPreset, "add"), {"team": cast.team.pk, "name": "p", "params": "{}",
                                                            "source_run": huge})
        for response in (session, preset):
            assert response.status_code == 200 and response.context["adminform"].form.errors

    def test_it_lets_superusers_choose_any_team(self, client, rows):
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        choices = choices_on(client.get(url(Campaign, "add")))
        assert set(choices["team"]) == {rows["ours"][Team], rows["theirs"][Team]}


@pytest.mark.django_db
class TestSecrets:
    @pytest.mark.parametrize(("model", "lookup"), [
        (WebhookEndpoint, "secret__startswith=whsec_A"), (WebhookEndpoint, "secret__regex=^whsec"),
        (ReportShare, "token_hash__startswith=A"), (Invitation, "token__startswith=a"),
        (LabelingItem, "token__gt=0"), (Placement, "campaign__team__webhook_endpoints__secret__startswith=w"),
    ])
    def test_no_changelist_filters_on_a_secret(self, client, cast, rows, model, lookup):
        # A row shown or not for each guess spelt out a webhook's signing secret to a viewer, one character at a time.
        Membership.objects.filter(team=cast.team, user=cast.viewer).update(role="viewer")
        client.force_login(cast.owner)
        assert client.get(url(model) + "?" + lookup).status_code == 400


@pytest.mark.django_db
class TestSuperusersOnlyFields:
    def test_it_leaves_the_fields_out_of_every_part_of_the_page_but_for_superusers(self, cast):
        # Columns, search and filters too, not only the detail page: one admin that lists such a field must not show
        # it to the team's staff in any of them.
        class Admin(SuperusersOnlyFields, TeamScopedAdmin):
            superusers_only = ("client_hash",)
            list_display = ("time", "client_hash", "os")
            search_fields = ("os", "=client_hash", "client_hash__startswith")
            list_filter = ("is_bot", "client_hash", ("client_hash", admin.EmptyFieldListFilter))

        model_admin = Admin(ScanEvent, admin.site)
        staff, root = RequestFactory().get("/"), RequestFactory().get("/")
        staff.user, root.user = cast.owner, get_user_model()(username="root", is_superuser=True)
        assert model_admin.get_list_display(staff) == ["time", "os"]
        assert model_admin.get_search_fields(staff) == ["os"]
        assert model_admin.get_list_filter(staff) == ["is_bot"]
        assert "client_hash" not in model_admin.get_fields(staff) and "os" in model_admin.get_fields(staff)
        assert len(model_admin.get_list_filter(root)) == 3 and "client_hash" in model_admin.get_fields(root)
        assert model_admin.get_search_fields(root) == ["os", "=client_hash", "client_hash__startswith"]


@pytest.mark.django_db
class TestReverseLookups:
    def test_staff_filter_no_changelist_through_a_reverse_relation(self, client, cast, rows):
        # `?human_scans=3` on candidates listed which of a team's codes another team's hidden label sat on
        client.force_login(cast.owner)
        checked = 0
        for model, _ in scoped_admins():
            reverse_names = [f.name for f in model._meta.get_fields() if f.is_relation and f.auto_created
                             and not f.concrete]
            for name in reverse_names:
                assert client.get(url(model) + f"?{name}=1").status_code == 400, (model, name)
                assert client.get(url(model) + f"?{name}__isnull=False").status_code == 400, (model, name)
                checked += 1
        assert checked > 10
        assert client.get(url(Placement) + "?active__exact=1").status_code == 200  # its own filters still work

    def test_superusers_still_may(self, client, rows):
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
        assert client.get(url(Placement) + "?scans__isnull=False").status_code == 200


class TestViewers:
    def test_it_lets_viewers_read_but_not_add_change_or_delete(self, client, cast, rows):
        client.force_login(cast.viewer)
        for model, model_admin in scoped_admins():
            ours = rows["ours"][model]
            if model_admin.seeing_teams != TeamScopedAdmin.seeing_teams:
                # Not even shown to viewers: invitations, webhooks (TestInvitationAdmin, tests/campaigns/test_admin.py)
                # and share links (one opens the report to anyone who has it).
                continue
            assert client.get(url(model, "change", ours)).status_code == 200, model
            assert client.get(url(model, "add")).status_code == 403, model
            assert client.post(url(model, "change", ours), {}).status_code == 403, model
            assert client.post(url(model, "delete", ours), {"post": "yes"}).status_code == 403, model
            assert model.objects.filter(pk=ours.pk).exists(), model

    def test_it_refuses_viewers_a_bulk_delete(self, client, cast, rows):
        client.force_login(cast.viewer)
        campaign = rows["ours"][Campaign]
        client.post(url(Campaign), {"action": "delete_selected", "_selected_action": [campaign.pk], "post": "yes"})
        assert Campaign.objects.filter(pk=campaign.pk).exists()


@pytest.mark.django_db
class TestInlines:
    def test_it_names_every_field_of_an_inline_row_by_its_column(self, client, cast, rows):
        # A tabular inline's row ties no <label> to its fields: a screen reader read each as a bare "edit text".
        client.force_login(cast.owner)
        named, unnamed = 0, []
        for model, model_admin in scoped_admins():
            if not model_admin.inlines:
                continue
            html = client.get(url(model, "change", rows["ours"][model])).content.decode()
            for tag in re.findall(r'<(?:input|select|textarea)\b[^>]*\bid="id_\w+-\d+-\w+"[^>]*>', html):
                if 'type="hidden"' in tag:
                    continue
                if "aria-label=" in tag:
                    named += 1
                else:
                    unnamed.append((model.__name__, tag))
        assert unnamed == [] and named > 0, (named, unnamed)
