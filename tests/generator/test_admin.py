"""Admin for human scan labels: team isolation and the CSV export action."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from campaigns.models import Campaign, Placement
from generator.models import Candidate, EvalRun, GenerationJob, HumanScanResult, LabelingSession, Prompt
from tests.generator.factories import job_of_clean_codes, job_with_ranks
from tests.qartsite.admin_pages import team_rows


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
class TestCandidateAdminLabelingAction:
    def test_it_creates_a_labeling_session_from_the_selected_candidates(self, client, team_users):
        user = team_users.owner
        user.is_staff = True
        user.save()
        user.user_permissions.set(Permission.objects.filter(codename="view_candidate"))
        job = job_of_clean_codes(team_users.team, user, (0.9, 0.4, 0.1))
        chosen = list(job.candidates.filter(index__lt=2).values_list("pk", flat=True))
        client.force_login(user)
        response = client.post("/admin/generator/candidate/", {"action": "create_labeling_session",
                                                               "_selected_action": chosen})
        session = LabelingSession.objects.get()
        assert response.status_code == 302 and response["Location"] == f"/evals/labeling/{session.pk}/run/"
        assert sorted(session.items.values_list("candidate", flat=True)) == sorted(chosen)
        assert session.team == team_users.team and session.created_by == user

    def test_it_refuses_candidates_of_several_teams(self, client, team_users):
        from django.contrib.auth import get_user_model

        admin_user = get_user_model().objects.create_superuser("root", password="pw-root-1")
        ours = job_of_clean_codes(team_users.team, team_users.owner)
        theirs = job_of_clean_codes(team_users.other_team, team_users.outsider)
        client.force_login(admin_user)
        chosen = [ours.candidates.first().pk, theirs.candidates.first().pk]
        response = client.post("/admin/generator/candidate/", {"action": "create_labeling_session",
                                                               "_selected_action": chosen}, follow=True)
        assert "Select candidates of one team" in response.content.decode()
        assert not LabelingSession.objects.exists()


@pytest.mark.django_db
class TestCandidateFidelityInAdmin:
    @pytest.fixture
    def jobs(self, team_users):
        halftone = job_of_clean_codes(team_users.team, team_users.owner)
        diffusion = job_of_clean_codes(team_users.team, team_users.owner)
        GenerationJob.objects.filter(pk=halftone.pk).update(engine="halftone")
        halftone.candidates.update(variant="centre 0.42, squares, greyscale, margin 72", fidelity_ssim=0.6789,
                                   color_error=3.5)
        return GenerationJob.objects.get(pk=halftone.pk), diffusion

    def test_it_lists_variant_and_fidelity_columns(self, client, admin_user, jobs):
        client.force_login(admin_user)
        body = client.get("/admin/generator/candidate/?job__engine=halftone").content.decode()
        assert "column-fidelity_ssim" in body and "column-color_error" in body and "column-variant" in body
        assert "centre 0.42, squares, greyscale, margin 72" in body and "0.6789" in body

    def test_it_shows_them_read_only_where_present(self, client, admin_user, jobs):
        halftone, diffusion = jobs
        client.force_login(admin_user)
        page = client.get(f"/admin/generator/candidate/{halftone.candidates.first().pk}/change/").content.decode()
        assert "field-fidelity_ssim" in page and "0.6789" in page and 'name="fidelity_ssim"' not in page
        page = client.get(f"/admin/generator/candidate/{diffusion.candidates.first().pk}/change/").content.decode()
        assert "field-fidelity_ssim" not in page and "field-variant" not in page

    def test_the_job_inline_has_them_for_halftone_jobs_only(self, client, admin_user, jobs):
        halftone, diffusion = jobs
        client.force_login(admin_user)
        page = client.get(f"/admin/generator/generationjob/{halftone.pk}/change/").content.decode()
        assert "field-fidelity_ssim" in page and "centre 0.42, squares, greyscale, margin 72" in page
        page = client.get(f"/admin/generator/generationjob/{diffusion.pk}/change/").content.decode()
        assert "field-fidelity_ssim" not in page and "field-variant" not in page


@pytest.mark.django_db
class TestGenerationAdminChoices:
    @pytest.fixture
    def rows(self, team_users):
        from tests.conftest import make_staff

        make_staff(team_users.owner, team_users.outsider)
        return team_rows(team_users.team, team_users.owner), team_rows(team_users.other_team, team_users.outsider)

    def test_it_offers_only_the_users_teams_prompts_on_the_job_form(self, client, team_users, rows):
        ours, theirs = rows
        client.force_login(team_users.owner)
        fields = client.get("/admin/generator/generationjob/add/").context["adminform"].form.fields
        assert list(fields["prompt"].queryset) == [ours[Prompt]]
        assert theirs[Placement] not in fields["placement"].queryset and ours[Placement] in fields["placement"].queryset
        assert list(fields["team"].queryset) == [team_users.team]

    def test_it_refuses_a_job_with_another_teams_prompt(self, client, team_users, rows):
        ours, theirs = rows
        # A queued job with no candidates yet: a started one's prompt is not editable at all.
        job = GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=ours[Prompt],
                                           content="https://x.io/queued")
        client.force_login(team_users.owner)
        response = client.post(f"/admin/generator/generationjob/{job.pk}/change/",
                               {"prompt": theirs[Prompt].pk, "team": team_users.team.pk})
        assert response.status_code == 200 and "prompt" in response.context["adminform"].form.errors
        assert GenerationJob.objects.get(pk=job.pk).prompt == ours[Prompt]

    def test_it_offers_only_the_users_teams_candidates_and_runs(self, client, team_users, rows):
        ours, theirs = rows
        client.force_login(team_users.owner)
        fields = client.get("/admin/generator/labelingsession/add/").context["adminform"].form.fields
        assert list(fields["candidates"].queryset) == [ours[Candidate]]
        fields = client.get("/admin/generator/generationpreset/add/").context["adminform"].form.fields
        assert list(fields["source_run"].queryset) == [ours[EvalRun]]


@pytest.mark.django_db
class TestDeletingPrintedArtwork:
    @pytest.fixture
    def printed(self, team_users):
        from campaigns.models import Campaign
        from tests.conftest import make_staff

        make_staff(team_users.owner)
        job = job_of_clean_codes(team_users.team, team_users.owner)
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
        Placement.objects.create(campaign=campaign, name="Station poster", artwork=job.candidates.first())
        return job

    def test_it_refuses_to_delete_a_job_whose_candidate_is_printed_with_a_message(self, client, team_users, printed):
        client.force_login(team_users.owner)
        for response in (
            client.post(f"/admin/generator/generationjob/{printed.pk}/delete/", {"post": "yes"}),
            client.post("/admin/generator/generationjob/", {"action": "delete_selected",
                                                             "_selected_action": [printed.pk], "post": "yes"}),
        ):
            html = response.content.decode()
            assert response.status_code == 200 and "Station poster</a>: printed as its artwork" in html
        assert GenerationJob.objects.filter(pk=printed.pk).exists()
        assert Placement.objects.get().artwork.job == printed

    def test_it_refuses_to_delete_the_printed_candidate_itself(self, client, team_users, printed):
        client.force_login(team_users.owner)
        art = Placement.objects.get().artwork
        response = client.post(f"/admin/generator/candidate/{art.pk}/delete/", {"post": "yes"})
        assert response.status_code == 200 and "printed as its artwork" in response.content.decode()
        assert Candidate.objects.filter(pk=art.pk).exists()


@pytest.mark.django_db
class TestVerifierModelAdmin:
    URL = "/admin/generator/verifiermodel/"

    @pytest.fixture
    def fitted(self, admin_user):
        from generator.core.codes import decision
        from generator.models import VerifierModel

        def make(model_id: str, scanned: int = 40) -> VerifierModel:
            return VerifierModel.objects.create(
                model_id=model_id, form=decision.DEFAULT_MODEL.form, bias=-4.0, weights=[["o_any", 1.0]],
                created_by=admin_user, source="sessions #1 Friday", label_count=scanned + 40, scanned_count=scanned,
                figures={"current": {"model": "logistic-v1-old", "balanced_accuracy": 0.71},
                         "cross_validated": {"balanced_accuracy": 0.86}})
        return make

    @pytest.fixture
    def staff(self, team_users):
        user = team_users.viewer  # staff with no Django permission at all: the models are still shown
        user.is_staff = True
        user.save()
        return user

    def activate(self, client, row, action: str = "activate"):
        return client.post(self.URL, {"action": action, "_selected_action": [row.pk]}, follow=True)

    def test_it_shows_staff_every_model_and_its_figures_read_only(self, client, staff, fitted):
        row = fitted("logistic-v1-aaaa1111")
        client.force_login(staff)
        body = client.get(self.URL).content.decode()
        assert "logistic-v1-aaaa1111" in body and "0.860" in body and "0.710" in body
        assert "the shipped default model" in body and "Roll back" not in body
        page = client.get(f"{self.URL}{row.pk}/change/")
        assert page.status_code == 200 and "0.86" in page.content.decode()
        assert client.post(f"{self.URL}{row.pk}/change/", {"bias": "9"}).status_code == 403
        assert client.get(f"{self.URL}add/").status_code == 403

    def test_which_labels_it_was_fitted_to_are_for_superusers_only(self, client, staff, admin_user, fitted):
        # The labels name other teams' sessions and images; staff neither see them nor filter on them.
        row = fitted("logistic-v1-aaaa1111")
        row.labels = ["Rival-poster.png"]
        row.save()
        client.force_login(staff)
        page = client.get(f"{self.URL}{row.pk}/change/").content.decode()
        assert "sessions #1 Friday" not in page and "Rival-poster.png" not in page
        assert client.get(f"{self.URL}?labels__icontains=Rival").status_code == 400
        assert client.get(f"{self.URL}?source__startswith=s").status_code == 400
        client.force_login(admin_user)
        page = client.get(f"{self.URL}{row.pk}/change/").content.decode()
        assert "sessions #1 Friday" in page and "Rival-poster.png" in page

    def test_it_refuses_staff_an_activation_with_one_message(self, client, staff, fitted):
        row = fitted("logistic-v1-aaaa1111")
        client.force_login(staff)
        body = self.activate(client, row).content.decode()
        assert "Only a superuser activates or rolls back a verifier model" in body
        row.refresh_from_db()
        assert not row.is_active

    def test_a_superuser_activates_and_rolls_back(self, client, admin_user, fitted):
        from generator import verifier_models

        first, second = fitted("logistic-v1-aaaa1111"), fitted("logistic-v1-bbbb2222")
        client.force_login(admin_user)
        self.activate(client, first)
        body = self.activate(client, second).content.decode()
        assert "Activated logistic-v1-bbbb2222: every team" in body
        assert verifier_models.active_row() == second and "Roll back" in client.get(self.URL).content.decode()
        assert client.get(f"{self.URL}rollback/").status_code == 405  # a change: POST only
        page = client.get(self.URL).content.decode()
        assert "A rollback returns to <strong>logistic-v1-aaaa1111</strong>" in page and 'id="verifier-history"' in page
        body = client.post(f"{self.URL}rollback/", follow=True).content.decode()
        assert "Rolled back: logistic-v1-aaaa1111 judges again" in body and verifier_models.active_row() == first
        assert "rolled back by admin" in body and "A rollback returns to the shipped default model" in body

    def test_it_needs_the_csrf_token_to_roll_back(self, admin_user, fitted):
        from django.test import Client

        from generator import verifier_models

        row = fitted("logistic-v1-aaaa1111")
        verifier_models.activate(row, admin_user)
        client = Client(enforce_csrf_checks=True)
        client.force_login(admin_user)
        assert client.post(f"{self.URL}rollback/").status_code == 403
        assert verifier_models.active_row() == row

    def test_it_activates_a_model_fitted_on_few_labels_only_anyway(self, client, admin_user, fitted):
        row = fitted("logistic-v1-aaaa1111", scanned=20)
        client.force_login(admin_user)
        body = self.activate(client, row).content.decode()
        assert "fewer than 30 of a class" in body and "Activate anyway" in body
        row.refresh_from_db()
        assert not row.is_active
        self.activate(client, row, "activate_anyway")
        row.refresh_from_db()
        assert row.is_active

    def test_it_refuses_to_delete_the_active_model(self, client, admin_user, fitted):
        from generator import verifier_models

        row = fitted("logistic-v1-aaaa1111")
        verifier_models.activate(row, admin_user)
        client.force_login(admin_user)
        client.post(f"{self.URL}{row.pk}/delete/", {"post": "yes"})
        assert verifier_models.active_row() == row

    def test_it_refuses_to_delete_a_model_a_rollback_would_return_to(self, client, admin_user, fitted):
        from generator import verifier_models
        from generator.models import VerifierModel

        first, second, unused = (fitted(f"logistic-v1-{c * 8}") for c in "abc")
        verifier_models.activate(first, admin_user)
        verifier_models.activate(second, admin_user)
        client.force_login(admin_user)
        assert client.post(f"{self.URL}{first.pk}/delete/", {"post": "yes"}).status_code == 403
        selected = {"action": "delete_selected", "_selected_action": [first.pk, unused.pk], "post": "yes"}
        assert client.post(self.URL, selected).status_code == 403  # Django's answer: one of them may not go
        assert VerifierModel.objects.filter(pk__in=[first.pk, unused.pk]).count() == 2
        client.post(self.URL, {**selected, "_selected_action": [unused.pk]})
        assert not VerifierModel.objects.filter(pk=unused.pk).exists()
        verifier_models.rollback(admin_user)  # second rolled back: no rollback returns to it, so it may go
        client.post(f"{self.URL}{second.pk}/delete/", {"post": "yes"})
        assert not VerifierModel.objects.filter(pk=second.pk).exists()


def change_form_data(response) -> dict:
    """What the admin change page in `response` would post back unchanged: its form's fields, its inlines'
    management forms and their rows' fields (a job's candidates, each named by its hidden id)."""
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False or name in ("image", "init_image", "logo", "control_image"):
            continue
        data[name] = "on" if value is True else value
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{inline.formset.prefix}-{name}": management[name].value() for name in management.fields})
        for row in inline.formset.forms:
            data.update({f"{row.prefix}-{name}": row[name].value() for name in row.fields
                         if row[name].value() is not None})
    return data


@pytest.mark.django_db
class TestParameterRangesInAdmin:
    @pytest.fixture
    def job(self, team_users):
        prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a lighthouse")
        return GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt,
                                            content="https://x.io/r/a")

    def post_job(self, client, job, **changes):
        url = f"/admin/generator/generationjob/{job.pk}/change/"
        return client.post(url, {**change_form_data(client.get(url)), **changes})

    def test_it_refuses_out_of_range_parameters_with_one_message_per_field(self, client, admin_user, job):
        client.force_login(admin_user)
        response = self.post_job(client, job, steps=100000, guidance_scale="1e6", candidates_per_batch=0, size=7,
                                 seed=-1, progress=-3)
        errors = response.context["adminform"].form.errors
        assert response.status_code == 200
        assert errors == {
            "steps": ["Steps must be between 1 and 150, got 100000."],
            "guidance_scale": ["Guidance scale must be between 0.0 and 20.0, got 1000000.0."],
            "candidates_per_batch": ["Candidates per batch must be between 1 and 16, got 0."],
            "size": ["Size must be between 256 and 1024, got 7."],
            "seed": [f"Seed must be between 0 and {2**32 - 129}, got -1."],
        }
        stored = GenerationJob.objects.get(pk=job.pk)
        assert (stored.steps, stored.guidance_scale, stored.size, stored.progress) == (25, 3.5, 768, 0.0)

    def test_its_images_are_never_uploaded_here(self, client, admin_user, job, media_storage):
        # Pictures and logos are capped and re-encoded where the app takes them (uploads.py); the admin's own file
        # inputs skipped every check. A file posted anyway is ignored.
        from django.core.files.uploadedfile import SimpleUploadedFile

        client.force_login(admin_user)
        url = f"/admin/generator/generationjob/{job.pk}/change/"
        assert 'type="file"' not in client.get(url).content.decode()
        payload = SimpleUploadedFile("page.png", b"<html>not a picture</html>", content_type="image/png")
        response = client.post(url, {**change_form_data(client.get(url)), "init_image": payload, "logo": payload})
        assert response.status_code == 302
        stored = GenerationJob.objects.get(pk=job.pk)
        assert not stored.init_image and not stored.logo

    def test_it_puts_the_cores_whole_job_checks_on_their_fields(self, client, admin_user, job):
        client.force_login(admin_user)
        form = self.post_job(client, job, size=800).context["adminform"].form
        assert form.errors == {"size": ["Size must be a multiple of 64 pixels, got 800."]}
        # The core says what it finds first, once.
        form = self.post_job(client, job, size=800, control_start=0.9, control_end=0.5).context["adminform"].form
        assert form.errors == {"control_start": ["Control start (0.9) must be before control end (0.5)."]}
        form = self.post_job(client, job, strength=1.5).context["adminform"].form
        assert form.errors == {"strength": ["Strength must be above 0 and at most 1, got 1.5."]}
        form = self.post_job(client, job, max_batches=0).context["adminform"].form
        assert form.errors == {"max_batches": ["The batch budget must be between 1 and 8, got 0."]}
        assert GenerationJob.objects.get(pk=job.pk).size == 768

    def test_an_old_job_the_core_no_longer_accepts_keeps_its_other_fields_editable(self, client, admin_user, job):
        GenerationJob.objects.filter(pk=job.pk).update(scheduler="retired_sampler")
        client.force_login(admin_user)
        assert self.post_job(client, job, repair="").status_code == 302  # no parameter changed: saved
        form = self.post_job(client, job, steps=30).context["adminform"].form
        assert list(form.errors) == ["scheduler"] and "retired_sampler" in form.errors["scheduler"][0]

    def test_it_saves_parameters_in_range(self, client, admin_user, job):
        client.force_login(admin_user)
        response = self.post_job(client, job, steps=150, guidance_scale=0, size=1024, candidates_per_batch=16)
        assert response.status_code == 302
        stored = GenerationJob.objects.get(pk=job.pk)
        assert (stored.steps, stored.guidance_scale, stored.size, stored.candidates_per_batch) == (150, 0, 1024, 16)

    def test_the_inputs_carry_the_ranges_for_the_browser(self, client, admin_user, job):
        client.force_login(admin_user)
        page = client.get(f"/admin/generator/generationjob/{job.pk}/change/").content.decode()
        assert 'name="steps" value="25" class="vIntegerField" min="1" max="150"' in page

    def test_it_refuses_a_candidates_figures_out_of_their_range(self, client, admin_user, job):
        candidate = Candidate.objects.create(job=job, index=0, seed=1, scan_probability=0.9, verdict="pass",
                                             image="generations/c.png")
        url = f"/admin/generator/candidate/{candidate.pk}/change/"
        client.force_login(admin_user)
        response = client.post(url, {**change_form_data(client.get(url)), "scan_probability": 1.5,
                                     "pixels_changed": -0.1, "ssim": 2})
        assert response.context["adminform"].form.errors == {
            "scan_probability": ["Scan probability must be between 0.0 and 1.0, got 1.5."],
            "pixels_changed": ["Pixels changed must be between 0.0 and 1.0, got -0.1."],
            "ssim": ["SSIM must be between -1.0 and 1.0, got 2.0."],
        }
        assert Candidate.objects.get(pk=candidate.pk).scan_probability == 0.9


@pytest.mark.django_db
class TestStartedJobsInAdmin:
    """A job's candidates hold its link and were drawn from its settings: once the worker has read the job, the admin
    changes none of that (the job page stated a link its images did not open)."""

    LOCKED = ("content", "team", "placement", "engine", "prompt", "steps", "guidance_scale", "size", "seed", "ecc",
              "scheduler", "style", "repair")

    @pytest.fixture
    def superuser(self, client):
        user = get_user_model().objects.create_superuser("boss", password="pw-boss-1")
        client.force_login(user)
        return user

    def post_job(self, client, job, **changes):
        url = f"/admin/generator/generationjob/{job.pk}/change/"
        return client.post(url, {**change_form_data(client.get(url)), **changes})

    @pytest.mark.parametrize(("status", "ranks"), [("done", (1, 2)), ("running", ()), ("queued", (1,))])
    def test_it_locks_a_started_jobs_link_team_and_settings(self, client, team_users, superuser, status, ranks):
        job = job_with_ranks(team_users.team, team_users.owner, ranks=ranks, status=status)
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://x.io")
        poster = Placement.objects.create(campaign=campaign, name="Poster A")
        page = client.get(f"/admin/generator/generationjob/{job.pk}/change/").content.decode()
        for name in self.LOCKED:
            assert f'name="{name}"' not in page, name
        assert "field-content" in page and job.content in page  # still shown, as text
        response = self.post_job(client, job, content="https://elsewhere.example/", placement=poster.pk, steps=40,
                                 team=team_users.other_team.pk, owner=team_users.teammate.pk)
        assert response.status_code == 302
        stored = GenerationJob.objects.get(pk=job.pk)
        assert (stored.content, stored.placement, stored.steps, stored.team) == (job.content, None, 25,
                                                                                  team_users.team)
        assert stored.owner == team_users.teammate  # who started it is not what the codes were made from

    def test_a_queued_job_without_candidates_stays_editable(self, client, team_users, superuser):
        job = job_with_ranks(team_users.team, team_users.owner)
        page = client.get(f"/admin/generator/generationjob/{job.pk}/change/").content.decode()
        assert all(f'name="{name}"' in page for name in self.LOCKED)
        assert self.post_job(client, job, content="https://x.io/r/new", steps=40).status_code == 302
        stored = GenerationJob.objects.get(pk=job.pk)
        assert (stored.content, stored.steps) == ("https://x.io/r/new", 40)

    def test_what_a_worker_stored_while_the_page_was_open_is_kept(self, client, team_users, superuser):
        job = job_with_ranks(team_users.team, team_users.owner, status="running")
        url = f"/admin/generator/generationjob/{job.pk}/change/"
        data = change_form_data(client.get(url))  # the page, drawn while the job ran
        GenerationJob.objects.filter(pk=job.pk).update(status="done", scannable=True, progress=1.0,
                                                       result_message="8 of 8 candidates scan.")
        assert client.post(url, {**data, "owner": team_users.teammate.pk}).status_code == 302
        stored = GenerationJob.objects.get(pk=job.pk)
        assert stored.owner == team_users.teammate
        assert (stored.status, stored.scannable, stored.progress, stored.result_message) == (
            "done", True, 1.0, "8 of 8 candidates scan.")  # not written back as "running"

    def test_a_job_that_started_while_the_page_was_open_keeps_its_link(self, client, team_users, superuser):
        job = job_with_ranks(team_users.team, team_users.owner)
        url = f"/admin/generator/generationjob/{job.pk}/change/"
        data = change_form_data(client.get(url))  # queued: its link could still change
        GenerationJob.objects.filter(pk=job.pk).update(status="running")  # a worker takes it meanwhile
        response = client.post(url, {**data, "content": "https://x.io/r/new", "owner": team_users.teammate.pk})
        stored = GenerationJob.objects.get(pk=job.pk)
        assert response.status_code == 302
        assert (stored.content, stored.status, stored.owner) == (job.content, "running", team_users.teammate)

    def test_a_job_taken_between_the_forms_check_and_its_save_keeps_its_link(self, client, team_users, superuser,
                                                                                monkeypatch):
        # The form was checked against a queued job; the worker takes it before the row is written.
        from generator import admin as job_admin

        job = job_with_ranks(team_users.team, team_users.owner)
        url = f"/admin/generator/generationjob/{job.pk}/change/"
        data = change_form_data(client.get(url))
        checked = job_admin.GenerationJobForm.clean

        def clean_then_start(form):
            cleaned = checked(form)
            GenerationJob.objects.filter(pk=job.pk).update(status="running")
            return cleaned

        monkeypatch.setattr(job_admin.GenerationJobForm, "clean", clean_then_start)
        response = client.post(url, {**data, "content": "https://x.io/r/new", "steps": 40}, follow=True)
        stored = GenerationJob.objects.get(pk=job.pk)
        assert (stored.content, stored.steps, stored.status) == (job.content, 25, "running")
        assert "started while this page was open: its content, steps stayed" in response.content.decode()


@pytest.mark.django_db
class TestAtATeamsVolume:
    """Admin pages whose queries grew with the team's rows: one more a job in the list (its thumbnail), one more a
    placement in the job form's select (each named by its campaign)."""

    def test_the_job_list_costs_the_same_for_more_jobs(self, client, team_users):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client.force_login(get_user_model().objects.create_superuser("boss", password="pw-boss-1"))

        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert client.get("/admin/generator/generationjob/").status_code == 200
            return len(captured.captured_queries)

        job_with_ranks(team_users.team, team_users.owner, ranks=(1, 2))
        few = queries()
        for _ in range(5):
            job_with_ranks(team_users.team, team_users.owner, ranks=(1, 2))
        assert queries() == few

    def test_the_job_form_takes_a_placement_by_id_not_from_every_placement(self, client, team_users):
        from campaigns.models import Campaign

        campaign = Campaign.objects.create(team=team_users.team, name="Big", destination="https://example.com")
        Placement.objects.bulk_create(Placement(campaign=campaign, name=f"P{i}", slug=f"many{i:04d}")
                                      for i in range(30))
        job = job_with_ranks(team_users.team, team_users.owner)  # queued: its placement can still be chosen
        client.force_login(get_user_model().objects.create_superuser("boss", password="pw-boss-1"))
        page = client.get(f"/admin/generator/generationjob/{job.pk}/change/").content.decode()
        assert 'name="placement"' in page and "P29</option>" not in page  # a raw id field, not a 30-option select


@pytest.mark.django_db
def test_a_job_whose_candidates_people_labelled_is_not_deleted_with_its_labels(client, team_users):
    # Deleting a job took its 26 labels along: the verifier's only ground truth, gone in one click.

    job = job_with_ranks(team_users.team, team_users.owner, ranks=(1, 2))
    session = LabelingSession.objects.create(name="sitting", team=team_users.team)
    label = HumanScanResult.objects.create(session=session, candidate=job.candidates.first(), scanned=True)
    client.force_login(get_user_model().objects.create_superuser("boss", password="pw-boss-1"))
    page = client.get(f"/admin/generator/generationjob/{job.pk}/delete/").content.decode()
    assert "would require deleting the following protected related objects" in page
    assert "a person's scan label of it" in page and "printed as its artwork" not in page
    client.post(f"/admin/generator/generationjob/{job.pk}/delete/", {"post": "yes"})
    assert GenerationJob.objects.filter(pk=job.pk).exists() and HumanScanResult.objects.filter(pk=label.pk).exists()
    client.post("/admin/generator/generationjob/", {"action": "delete_selected", "_selected_action": [job.pk],
                                                    "post": "yes"})
    client.post(f"/admin/generator/candidate/{label.candidate_id}/delete/", {"post": "yes"})
    assert HumanScanResult.objects.filter(pk=label.pk).exists()
    loose = HumanScanResult.objects.create(candidate=job.candidates.last(), scanned=False)  # imported, no session
    team_users.team.delete()  # a team deleted as a whole takes its labels along, session-less ones too
    assert not HumanScanResult.objects.filter(pk__in=[label.pk, loose.pk]).exists()


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
def test_not_even_a_superuser_points_a_teams_job_at_another_teams_placement(client, team_users):
    # The superuser skipped the per-field check: team A's job pages then named team B's placement and its link.

    job = job_with_ranks(team_users.team, team_users.owner)  # queued: a started job's placement is not editable at all
    theirs = Placement.objects.create(campaign=Campaign.objects.create(
        team=team_users.other_team, name="Rival sale", destination="https://x.io"), name="Rival poster")
    client.force_login(get_user_model().objects.create_superuser("boss", password="pw-boss-1"))
    page = client.get(f"/admin/generator/generationjob/{job.pk}/change/")
    response = client.post(f"/admin/generator/generationjob/{job.pk}/change/",
                           {**change_form_data(page), "placement": theirs.pk})
    assert response.status_code == 200 and "this is another team" in response.content.decode()
    job.refresh_from_db()
    assert job.placement is None

