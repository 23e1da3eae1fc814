"""The evals' admin (generator/evals/admin.py): human scan labels (team isolation, the CSV export action, a label
added there answering its session's item), labeling items (their one-time link for superusers only) and generation
presets (no parameters: the app's defaults)."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from generator.models import GenerationPreset, HumanScanResult, LabelingSession
from tests.generator.factories import job_with_ranks
from tests.qartsite.admin_pages import posted_back


@pytest.fixture
def staff_owner(team_users):
    user = team_users.owner
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_humanscanresult",
                                                                       "view_labelingsession"]))
    return user


@pytest.fixture
def labels(team_users):
    ours = LabelingSession.objects.create(name="ours sitting", team=team_users.team)
    theirs = LabelingSession.objects.create(name="theirs sitting", team=team_users.other_team)
    return {
        "ours": HumanScanResult.objects.create(session=ours, image_name="ours.png", device="iPhone", scanned=True),
        "theirs": HumanScanResult.objects.create(session=theirs, image_name="theirs.png", scanned=False),
        "loose": HumanScanResult.objects.create(image_name="loose.png", scanned=False),
    }


@pytest.mark.django_db
class TestHumanScanResultAdmin:
    def test_it_shows_staff_only_their_teams_results(self, client, staff_owner, labels):
        client.force_login(staff_owner)
        body = client.get("/admin/generator/humanscanresult/").content.decode()
        assert "ours.png" in body and "theirs.png" not in body and "loose.png" not in body
        sessions = client.get("/admin/generator/labelingsession/").content.decode()
        assert "ours sitting" in sessions and "theirs sitting" not in sessions

    def test_it_filters_by_scanned_and_device(self, client, admin_user, labels):
        client.force_login(admin_user)
        body = client.get("/admin/generator/humanscanresult/?scanned__exact=1&device=iPhone").content.decode()
        assert "ours.png" in body and "theirs.png" not in body

    def test_it_exports_selected_results_as_csv(self, client, admin_user, labels):
        client.force_login(admin_user)
        HumanScanResult.objects.filter(pk=labels["ours"].pk).update(notes="Büro, 東京")
        response = client.post("/admin/generator/humanscanresult/", {
            "action": "export_csv", "_selected_action": [labels["ours"].pk, labels["loose"].pk]})
        # It said "text/csv" alone: the UTF-8 of a note was for a reader to guess.
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(response.content.decode(response.charset))))
        assert sorted((r["image"], r["scanned"]) for r in rows) == [("loose.png", "no"), ("ours.png", "yes")]
        assert {r["notes"] for r in rows} == {"Büro, 東京", ""}


@pytest.mark.django_db
class TestLabelingItemAdmin:
    def test_it_shows_the_items_link_token_to_superusers_only(self, client, team_users, admin_user):
        from generator.models import LabelingItem
        from tests.conftest import make_staff

        make_staff(team_users.owner, team_users.viewer)
        job = job_with_ranks(team_users.team, team_users.owner, ranks=(1,))
        session = LabelingSession.objects.create(name="ours sitting", team=team_users.team)
        item = LabelingItem.objects.create(session=session, candidate=job.candidates.get(), position=1)
        url = f"/admin/generator/labelingitem/{item.pk}/change/"
        for user in (team_users.viewer, team_users.owner):  # the key that records the item's scan, to any holder
            client.force_login(user)
            response = client.get(url)
            assert response.status_code == 200 and "ours sitting" in response.content.decode()
            assert item.token not in response.content.decode() and "field-token" not in response.content.decode()
        client.force_login(admin_user)
        assert item.token in client.get(url).content.decode()

    def test_it_shows_the_items_code_to_superusers_only(self, client, team_users, admin_user):
        # The item's image is its one-time link drawn as a code (`evals.sessions.render_item`): a viewer who opened
        # it from the item's page and scanned it read the token the page leaves out, and could record the item's
        # scan.
        from generator.models import LabelingItem
        from tests.conftest import make_staff
        from tests.generator.factories import solid_png

        make_staff(team_users.owner, team_users.viewer)
        job = job_with_ranks(team_users.team, team_users.owner, ranks=(1,))
        session = LabelingSession.objects.create(name="ours sitting", team=team_users.team)
        item = LabelingItem.objects.create(session=session, candidate=job.candidates.get(), position=1)
        item.image.save(f"{session.pk}-1.png", solid_png("white"))
        url = f"/admin/generator/labelingitem/{item.pk}/change/"
        for user in (team_users.viewer, team_users.owner):
            client.force_login(user)
            page = client.get(url).content.decode()
            assert "ours sitting" in page and "field-hit_at" in page
            assert item.image.url not in page and "field-image" not in page
        client.force_login(admin_user)
        assert item.image.url in client.get(url).content.decode()

    def test_its_list_costs_the_same_for_more_items(self, client, admin_user, team_users):
        # Its session, candidate and label columns are clipped cells: without list_select_related each row's
        # session and label were a query of their own.
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from generator.models import LabelingItem

        client.force_login(admin_user)
        session = LabelingSession.objects.create(name="ours sitting", team=team_users.team)
        counts = []
        for ranks in ((1,), (1, 2, 3, 4)):
            job = job_with_ranks(team_users.team, team_users.owner, ranks=ranks)
            for position, candidate in enumerate(job.candidates.all()):
                label = HumanScanResult.objects.create(session=session, candidate=candidate, scanned=True)
                LabelingItem.objects.create(session=session, candidate=candidate, position=position, result=label)
            with CaptureQueriesContext(connection) as queries:
                assert client.get("/admin/generator/labelingitem/").status_code == 200
            counts.append(len(queries))
        assert counts[0] == counts[1]


@pytest.mark.django_db
def test_a_label_added_in_the_admin_answers_its_sessions_item(client, team_users):
    # It stayed loose: the done page and "label the remaining codes" still counted the item as unanswered.
    from generator.evals import sessions

    job = job_with_ranks(team_users.team, team_users.owner, ranks=(1, 2))
    first, second = job.candidates.order_by("rank")
    session = sessions.create_session(team_users.team, team_users.owner, "sitting", [first, second], 300, seed=1)
    item = session.items.get(candidate=first)
    client.force_login(get_user_model().objects.create_superuser("boss", password="pw-boss-1"))
    response = client.post("/admin/generator/humanscanresult/add/", {
        "session": session.pk, "candidate": first.pk, "device": "Pixel 8", "scanned": "on",
        "created": ""}, follow=True)
    assert response.status_code == 200, response.content.decode()[:2000]
    label = HumanScanResult.objects.get()
    item.refresh_from_db()
    assert item.result == label and "the session counts it as labelled" in response.content.decode()
    assert sessions.next_item(session).candidate == second
    # Saved again, or another label of the same candidate: no item is answered twice, none taken from another label.
    response = client.post(f"/admin/generator/humanscanresult/{label.pk}/change/", {
        "session": session.pk, "candidate": first.pk, "device": "Pixel 8", "scanned": ""}, follow=True)
    assert "counts it as labelled" not in response.content.decode()
    client.post("/admin/generator/humanscanresult/add/", {"session": session.pk, "candidate": first.pk,
                                                          "scanned": "on"})
    item.refresh_from_db()
    assert HumanScanResult.objects.count() == 2 and item.result == label
    assert session.items.filter(result__isnull=False).count() == 1
    # Its candidate changed: the old item is open again, the new candidate's item answered.
    response = client.post(f"/admin/generator/humanscanresult/{label.pk}/change/", {
        "session": session.pk, "candidate": second.pk, "device": "Pixel 8", "scanned": "on"}, follow=True)
    assert response.status_code == 200
    item.refresh_from_db()
    assert item.result is None and session.items.get(candidate=second).result == label


@pytest.mark.django_db
def test_a_label_of_nothing_is_refused_with_one_message(client, team_users):
    # The admin saved "candidate None: not scanned (unknown device)".
    session = LabelingSession.objects.create(name="sitting", team=team_users.team)
    client.force_login(get_user_model().objects.create_superuser("boss", password="pw-boss-1"))
    response = client.post("/admin/generator/humanscanresult/add/", {"session": session.pk, "candidate": "",
                                                                     "image_name": " ", "scanned": ""})
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {"__all__": ["Choose the candidate that was scanned, or give the image's file name."]}
    assert "Choose the candidate that was scanned" in response.content.decode()
    assert not HumanScanResult.objects.exists()
    response = client.post("/admin/generator/humanscanresult/add/", {"session": session.pk,
                                                                     "image_name": "poster-3.png", "scanned": ""})
    assert response.status_code == 302 and HumanScanResult.objects.get().image_name == "poster-3.png"


@pytest.mark.django_db
class TestGenerationPresetAdmin:
    @pytest.fixture
    def boss(self, client):
        client.force_login(get_user_model().objects.create_superuser("boss", password="pw-boss-1"))

    def test_it_saves_a_preset_of_no_parameters(self, client, team_users, boss):
        # A sweep's base configuration with no fixed parameters is stored as `{}` (`report_views.preset_params`): the
        # app's own defaults. Its page could not be saved, to rename it or make it the default ("This field is
        # required"), nor could such a preset be added.
        preset = GenerationPreset.objects.create(team=team_users.team, name="sweep: base", params={})
        page = client.get(f"/admin/generator/generationpreset/{preset.pk}/change/")
        response = client.post(f"/admin/generator/generationpreset/{preset.pk}/change/",
                               {**posted_back(page), "name": "App defaults"})
        assert response.status_code == 302, response.context["adminform"].form.errors
        preset.refresh_from_db()
        assert (preset.name, preset.params) == ("App defaults", {})
        response = client.post("/admin/generator/generationpreset/add/", {"team": team_users.team.pk,
                                                                          "name": "Plain", "params": "{}"})
        assert response.status_code == 302
        assert GenerationPreset.objects.get(name="Plain").params == {}

    def test_an_emptied_box_is_no_parameters(self, client, team_users, boss):
        response = client.post("/admin/generator/generationpreset/add/", {"team": team_users.team.pk,
                                                                          "name": "Plain", "params": ""})
        assert response.status_code == 302, response.context["adminform"].form.errors
        assert GenerationPreset.objects.get().params == {}

    @pytest.mark.parametrize("params", ["[30, 7.5]", '"fast"', "30"])
    def test_parameters_that_are_no_object_are_refused_with_one_message(self, client, team_users, boss, params):
        # The generation page reads a preset's parameters by name: a list stored here would have failed it for the
        # whole team once the preset was its default.
        response = client.post("/admin/generator/generationpreset/add/", {"team": team_users.team.pk,
                                                                          "name": "Odd", "params": params})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors == {"params": [GenerationPreset.PARAMS_NOT_AN_OBJECT]}
        assert not GenerationPreset.objects.exists()
