"""The admin of generation (generator/admin.py): prompts, jobs and candidates: team-scoped choices, a labeling
session from candidates, parameter ranges, started jobs kept as they ran, printed and labelled artwork kept."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from campaigns.models import Campaign, Placement
from generator.models import Candidate, EvalRun, GenerationJob, HumanScanResult, LabelingSession, Prompt
from tests.generator.factories import job_of_clean_codes, job_with_ranks
from tests.qartsite.admin_pages import team_rows


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
