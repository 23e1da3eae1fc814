"""The admin's team isolation where rows of two teams point at each other (qartsite.admin).

A member of two teams could link one team's things to the other's (a candidate in the other team's labeling
session, a label made in their session on our candidate). Staff of one team must still never read the other's names:
not in lists, filters, the autocomplete, delete confirmations or the index's recent actions; and the admin no longer
makes such links; the last test sweeps every registered admin's pages and actions for them. The cast and rows are
tests/qartsite/test_admin.py's ("Acme ..." ours, "Rival ..." theirs).
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils.html import strip_tags

from campaigns.models import Campaign, Placement, WebhookEndpoint
from generator.models import (
    Candidate,
    EvalRun,
    EvalSample,
    GenerationJob,
    HumanScanResult,
    LabelingItem,
    LabelingSession,
    Prompt,
)
from qartsite.models import Invitation, Membership
from tests.qartsite.admin_pages import url


@pytest.fixture
def crossed(rows):
    """Their session holds our candidate, with a labeling item and a label on it."""
    ours, theirs = rows["ours"], rows["theirs"]
    theirs[LabelingSession].candidates.add(ours[Candidate])
    item = LabelingItem.objects.create(session=theirs[LabelingSession], candidate=ours[Candidate], position=7)
    label = HumanScanResult.objects.create(session=theirs[LabelingSession], candidate=ours[Candidate],
                                           image_name="Rival label.png", scanned=True)
    return {"item": item, "label": label, **rows}


@pytest.mark.django_db
class TestRowsOfTwoTeams:
    def test_it_hides_a_label_made_in_another_teams_session(self, client, cast, crossed):
        client.force_login(cast.owner)
        page = client.get(url(HumanScanResult))
        body = page.content.decode()
        assert url(HumanScanResult, "change", crossed["ours"][HumanScanResult]) in body
        assert "Rival" not in body  # neither the label nor their session, as a row or in the session filter
        assert client.get(url(HumanScanResult, "change", crossed["label"])).status_code in (302, 404)

    def test_the_autocomplete_names_no_other_team(self, client, cast, crossed):
        # /admin/autocomplete/ answers for any relation of any model, through the related model's admin.
        client.force_login(cast.owner)
        answered = 0
        for model in apps.get_models():
            for field in model._meta.get_fields():
                if not (field.is_relation and field.concrete):
                    continue
                response = client.get("/admin/autocomplete/", {
                    "app_label": model._meta.app_label, "model_name": model._meta.model_name,
                    "field_name": field.name, "term": ""})
                answered += response.status_code == 200
                body = response.content.decode().lower()
                assert "rival" not in body and "outsider" not in body, f"{model.__name__}.{field.name}"
        assert answered > 10  # the probe reached the view

    def test_a_delete_confirmation_names_no_other_teams_objects(self, client, cast, crossed):
        # Their placement prints our candidate and their job uses our prompt (the admin refuses both choices now; older
        # rows may have them): Django listed those protected objects, by name and with a link, on our delete pages.
        ours, theirs = crossed["ours"], crossed["theirs"]
        Placement.objects.filter(pk=theirs[Placement].pk).update(artwork=ours[Candidate])
        GenerationJob.objects.filter(pk=theirs[GenerationJob].pk).update(prompt=ours[Prompt])
        client.force_login(cast.owner)
        for model in (Candidate, GenerationJob, Prompt):
            html = client.get(url(model, "delete", ours[model])).content.decode()
            assert "Rival" not in html and url(GenerationJob, "change", theirs[GenerationJob]) not in html, model
            if model is not Prompt:  # a prompt's page names no protected object: the job is not the user's to delete
                assert "Placement: one of another team: printed as its artwork" in strip_tags(html), model
        client.post(url(Candidate, "delete", ours[Candidate]), {"post": "yes"})
        assert Candidate.objects.filter(pk=ours[Candidate].pk).exists()
        assert LabelingItem.objects.filter(pk=crossed["item"].pk).exists()

    def test_superusers_still_see_every_name(self, client, admin_user, crossed):
        client.force_login(admin_user)
        assert "Rival label.png" in client.get(url(HumanScanResult)).content.decode()
        Placement.objects.filter(pk=crossed["theirs"][Placement].pk).update(artwork=crossed["ours"][Candidate])
        assert "Rival poster" in client.get(url(Candidate, "delete", crossed["ours"][Candidate])).content.decode()


@pytest.mark.django_db
class TestOneTeamForms:
    @pytest.fixture
    def both(self, cast):
        """The teammate edits in both teams."""
        Membership.objects.create(team=cast.other_team, user=cast.teammate, role="editor")
        return cast.teammate

    def test_it_refuses_another_teams_candidate_in_a_session(self, client, cast, rows, both):
        client.force_login(both)
        session = rows["theirs"][LabelingSession]
        response = client.post(url(LabelingSession, "change", session), {
            "team": cast.other_team.pk, "name": session.name, "display_size_px": 400,
            "candidates": [rows["ours"][Candidate].pk]})
        assert response.status_code == 200 and "candidates" in response.context["adminform"].form.errors
        assert not session.candidates.filter(pk=rows["ours"][Candidate].pk).exists()

    def test_it_refuses_a_label_of_two_teams(self, client, cast, rows, both):
        client.force_login(both)
        response = client.post(url(HumanScanResult, "add"), {
            "session": rows["theirs"][LabelingSession].pk, "candidate": rows["ours"][Candidate].pk, "scanned": "on"})
        assert response.status_code == 200 and response.context["adminform"].form.non_field_errors()
        assert not HumanScanResult.objects.filter(session=rows["theirs"][LabelingSession],
                                                  candidate=rows["ours"][Candidate]).exists()

    def test_a_sample_is_read_only(self, client, cast, rows, both):
        # A sample's scores name image files the sweep report opens: written by the sweep only, never by hand.
        client.force_login(both)
        sample = rows["ours"][EvalSample]
        assert client.get(url(EvalSample, "add")).status_code == 403
        response = client.post(url(EvalSample, "change", sample), {
            "run": rows["theirs"][EvalRun].pk, "prompt": "p", "content": "x", "config": "{}", "config_key": "a=2",
            "status": "done", "scores": '[{"image": "generations/init/theirs.png"}]',
            "job": rows["ours"][GenerationJob].pk})
        assert response.status_code in (302, 403)
        sample.refresh_from_db()
        assert sample.run == rows["ours"][EvalRun] and sample.scores == [] and sample.status != "done"

    def test_it_still_saves_things_of_one_team(self, client, cast, rows, both):
        client.force_login(both)
        session = rows["ours"][LabelingSession]
        response = client.post(url(LabelingSession, "change", session), {
            "team": cast.team.pk, "name": session.name, "display_size_px": 400,
            "candidates": [rows["ours"][Candidate].pk]})
        assert response.status_code == 302


@pytest.mark.django_db
class TestIndexAndUsers:
    def test_recent_actions_name_only_objects_still_seen(self, client, cast, rows):
        # The viewer once changed the other team's campaign (a member then, say): its name stays theirs.
        LogEntry.objects.log_actions(cast.viewer.pk, [rows["theirs"][Campaign], rows["ours"][Campaign]], CHANGE)
        client.force_login(cast.viewer)
        body = client.get("/admin/").content.decode()
        assert "Acme campaign" in body and "Rival campaign" not in body

    def test_recent_actions_name_no_invitation_or_webhook_once_no_longer_an_owner(self, client, cast, rows):
        # Their rows are shown to owners alone (OwnersOnly): an owner made editor kept reading the invited addresses
        # and the webhooks' addresses (a chat hook's is its key) among their recent actions.
        ours = rows["ours"]
        LogEntry.objects.log_actions(cast.owner.pk, [ours[Invitation], ours[WebhookEndpoint], ours[Campaign]], CHANGE)
        client.force_login(cast.owner)
        assert "Acme@example.com" in client.get("/admin/").content.decode()
        Membership.objects.filter(team=cast.team, user=cast.owner).update(role="editor")
        body = client.get("/admin/").content.decode()
        assert "Acme campaign" in body
        assert "Acme@example.com" not in body and "acme.example.com/hook" not in body

    def test_the_user_list_names_no_groups_to_staff(self, client, cast, admin_user):
        Group.objects.create(name="Rival auditors").user_set.add(cast.teammate)
        client.force_login(cast.owner)
        assert "Rival auditors" not in client.get(url(type(cast.owner))).content.decode()
        client.force_login(admin_user)
        assert "Rival auditors" in client.get(url(type(cast.owner))).content.decode()


def registered() -> list[type]:
    return sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.mark.django_db
@pytest.mark.parametrize("model", registered(), ids=lambda model: model._meta.label)
def test_no_admin_page_of_any_model_names_or_touches_the_other_team(client, cast, linked, model):
    # Every registered admin, as an owner on staff with every permission, our rows pointing into theirs: lists
    # (searched, faceted, filtered by their ids, as a raw-id popup), our rows' pages (their history changed by the
    # other team's owner too, a member of ours once), their rows' pages by id, the index's recent actions (their
    # row changed by our owner once), and every action run on their rows.
    ours, theirs = linked["ours"].get(model), linked["theirs"].get(model)
    if model is get_user_model():
        ours, theirs = cast.teammate, cast.outsider
    for author, obj in ((cast.outsider, ours), (cast.owner, theirs)):
        if obj is not None:
            LogEntry.objects.log_actions(author.pk, [obj], CHANGE)
    client.force_login(cast.owner)
    pages = [url(model) + query for query in ("", "?q=Riv", "?q=outs", "?_facets=1", "?_popup=1&_to_field=id")]
    pages.append("/admin/")
    if theirs is not None:
        pages += [url(model) + f"?id__exact={theirs.pk}", url(model) + f"?id={theirs.pk}&_facets=1"]
        pages += [url(model, action, ours) for action in ("change", "delete", "history")]
        for action in ("change", "delete", "history"):
            answer = client.get(url(model, action, theirs))
            assert answer.status_code in (302, 403, 404), (model, action)
            assert "Rival" not in answer.content.decode()
    for page in pages:
        answer = client.get(page)
        assert answer.status_code in (200, 400, 403), page  # 400: a lookup refused
        body = answer.content.decode()
        assert "Rival" not in body and "outsider" not in body, page
    if theirs is None:
        return
    before = list(model.objects.filter(pk=theirs.pk).values())
    for action in [*admin.site._registry[model].actions, "delete_selected"]:
        answer = client.post(url(model), {"action": action, "_selected_action": [theirs.pk], "post": "yes"})
        body = answer.content.decode()
        assert "Rival" not in body and "outsider" not in body, action
    assert list(model.objects.filter(pk=theirs.pk).values()) == before
