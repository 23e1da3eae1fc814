from __future__ import annotations

import io
import re
import threading

import pytest
from django.core.files.base import ContentFile
from PIL import Image
from rest_framework.test import APIClient

from campaigns.models import Campaign, Placement
from generator import uploads
from generator.models import Candidate, EvalRun, EvalSample, GenerationJob, Prompt
from generator.throttles import TeamGenerationThrottle
from tests.clients import api_as
from tests.generator.factories import SHORT_LINK, job_with_ranks, qr_png


@pytest.fixture(autouse=True)
def _fresh_generation_rate(fresh_cache):
    """The team's generation rate starts unused."""


@pytest.fixture
def placement(team_users) -> Placement:
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example.com/")
    return Placement.objects.create(campaign=campaign, name="Station poster")


@pytest.mark.django_db
class TestCreateGeneration:
    def test_it_validates_saves_and_enqueues_the_job(self, team_users, enqueued, settings):
        response = api_as(team_users.teammate).post("/api/generations/", {
            "prompt": "a misty forest", "content": SHORT_LINK, "steps": 20, "seed": 42, "style": "dots",
        }, format="json")
        assert response.status_code == 201, response.content
        job = GenerationJob.objects.get()
        assert (job.team, job.owner, job.steps, job.seed, job.style) == (
            team_users.team, team_users.teammate, 20, 42, "dots")
        assert job.candidates_per_batch == settings.QART["CANDIDATES"]
        assert job.prompt.text == "a misty forest" and job.prompt.times_used == 1
        assert enqueued == [job]
        body = response.json()
        assert body["id"] == job.pk and body["status"] == "queued" and body["candidates"] == []
        assert body["content"] == SHORT_LINK and body["queue_position"] is None

    def test_it_defaults_the_content_and_team_to_the_placements(self, team_users, enqueued, placement):
        team_users.outsider.memberships.create(team=team_users.team, role="editor")  # now in two teams
        response = api_as(team_users.outsider).post(
            "/api/generations/", {"prompt": "neon city", "placement": placement.pk}, format="json")
        assert response.status_code == 201, response.content
        job = GenerationJob.objects.get()
        assert job.content == f"http://TESTSERVER/R/{placement.slug}"  # as its codes carry it
        assert (job.team, job.placement) == (team_users.team, placement)

    def test_blank_content_is_the_placements_link_or_refused_as_on_the_page(self, team_users, enqueued, placement):
        # "   " made codes that carried three spaces (201), where the page took it as blank.
        client = api_as(team_users.owner)
        response = client.post("/api/generations/", {"prompt": "fox", "content": "   "}, format="json")
        assert response.status_code == 400 and "Say what the code carries" in response.json()["content"][0]
        response = client.post("/api/generations/", {"prompt": "fox", "content": " \n ", "placement": placement.pk},
                               format="json")
        assert response.status_code == 201 and response.json()["content"] == f"http://TESTSERVER/R/{placement.slug}"

    def test_it_strips_the_ends_of_the_content_as_the_page_does(self, team_users, enqueued):
        # The API kept them: a pasted "  https://example.com/  " was refused for its spaces, or carried them.
        response = api_as(team_users.owner).post("/api/generations/", {"prompt": "fox",
                                                                       "content": " \t https://example.com/  \n"},
                                                 format="json")
        assert response.status_code == 201, response.json()
        assert response.json()["content"] == "https://example.com/"
        assert GenerationJob.objects.get().content == "https://example.com/"

    def test_it_says_the_same_one_thing_of_empty_and_whitespace_only_content(self, team_users, enqueued):
        client = api_as(team_users.owner)
        answers = [client.post("/api/generations/", {"prompt": "fox", "content": content}, format="json")
                   for content in ("", "   ", "\n\t ")]
        assert [answer.status_code for answer in answers] == [400] * 3
        assert [answer.json() for answer in answers] == [{"content": [
            "Say what the code carries, or choose a placement to carry its short link."]}] * 3
        assert not GenerationJob.objects.exists() and enqueued == []

    def test_it_remembers_a_reused_prompt_once(self, team_users, enqueued):
        client = api_as(team_users.owner)
        for _ in range(2):
            assert client.post("/api/generations/", {"prompt": "koi pond", "content": SHORT_LINK},
                               format="json").status_code == 201
        assert Prompt.objects.get().times_used == 2 and GenerationJob.objects.count() == 2

    @pytest.mark.parametrize(("fields", "key", "message"), [
        ({"steps": 0}, "steps", "Steps must be between 1 and 150, got 0."),
        ({"steps": 500}, "steps", "Steps must be between 1 and 150, got 500."),
        ({"conditioning_scale": 4.5}, "conditioning_scale", "Conditioning scale must be between 0.0 and 3.0, got 4.5."),
        ({"seed": 2**40}, "seed", "Seed must be between 0 and 4294967167, got 1099511627776."),
        # What only the whole job can tell is at its field too, as on the page's form.
        ({"size": 700}, "size", "Size must be a multiple of 64 pixels, got 700."),
        ({"control_start": 0.9, "control_end": 0.5}, "control_start", "Control start (0.9) must be before control end"),
        ({"max_batches": 1000}, "max_batches", "The batch budget must be between 1 and 8, got 1000."),
        ({"strength": 5}, "strength", "Strength must be above 0 and at most 1, got 5"),
        ({"content": "https://example.com/" + "x" * 300}, "content", "This is too long for QR art: 320 characters"),
        ({"content": ""}, "content", "Say what the code carries"),
        ({"scheduler": "warp"}, "scheduler", '"warp" is not a valid choice.'),
        # Quoted whole (5,000 characters); read as 20 by int()
        ({"scheduler": "w" * 5000}, "scheduler", f'"{"w" * 60}…" is not a valid choice.'),
        ({"steps": "２０"}, "steps", "A valid integer is required."),
    ])
    def test_it_answers_bad_parameters_with_400_before_saving(self, team_users, enqueued, fields, key, message):
        body = {"prompt": "a misty forest", "content": SHORT_LINK, **fields}
        response = api_as(team_users.owner).post("/api/generations/", body, format="json")
        assert response.status_code == 400
        error = response.json()[key]
        assert message in (error if isinstance(error, str) else error[0])
        assert not GenerationJob.objects.exists() and not Prompt.objects.exists() and enqueued == []

    def test_it_refuses_a_misspelt_parameter_before_asking_the_rate(self, team_users, enqueued, monkeypatch):
        # A misspelt `stepz` made a job with the default steps and answered 201: GPU time spent on the wrong thing.
        asked = []
        monkeypatch.setattr("generator.throttles.TeamGenerationThrottle.has_room", lambda self: asked.append(1))
        response = api_as(team_users.owner).post("/api/generations/", {
            "prompt": "a misty forest", "content": SHORT_LINK, "stepz": 8}, format="json")
        assert response.status_code == 400
        assert list(response.json()) == ["stepz"]
        assert response.json()["stepz"][0].startswith("Unknown field. Fields you can send: team, placement, engine,")
        assert asked == [] and not GenerationJob.objects.exists() and enqueued == []

    def test_it_names_every_value_out_of_range_at_once(self, team_users, enqueued):
        body = {"prompt": "a misty forest", "content": SHORT_LINK, "steps": 0, "size": 99999, "candidates_per_batch": 0}
        errors = api_as(team_users.owner).post("/api/generations/", body, format="json").json()
        assert set(errors) == {"steps", "size", "candidates_per_batch"}

    def test_its_schema_documents_the_ranges(self, team_users):
        schema = api_as(team_users.owner).get("/api/schema/?format=json").json()
        steps = schema["components"]["schemas"]["GenerationRequest"]["properties"]["steps"]
        assert (steps["minimum"], steps["maximum"]) == (1, 150)

    def test_its_schema_says_which_statuses_are_final(self, team_users):
        # Nothing said so: a client polling until "running" ended stopped at "scoring", with no candidates yet.
        schema = api_as(team_users.owner).get("/api/schema/?format=json").json()
        status = schema["components"]["schemas"]["Generation"]["properties"]["status"]["description"]
        on_its_way, final = status.split("\n\n")[0].split("); ")
        assert [word for word in GenerationJob.Status.values if word in on_its_way] == ["queued", "running", "scoring"]
        assert [word for word in GenerationJob.Status.values if word in final] == list(GenerationJob.FINISHED)
        assert "every few seconds" in on_its_way

    def test_it_takes_the_fewstep_scheduler_only_with_a_fewstep_lora(self, team_users, enqueued, settings):
        body = {"prompt": "a misty forest", "content": SHORT_LINK, "scheduler": "lcm", "steps": 4}
        settings.QART = dict(settings.QART, FEWSTEP_LORA="")
        response = api_as(team_users.owner).post("/api/generations/", body, format="json")
        assert response.status_code == 400 and response.json()["scheduler"] == ['"lcm" is not a valid choice.']
        settings.QART = dict(settings.QART, FEWSTEP_LORA="/models/lcm-lora.safetensors", FEWSTEP_SCHEDULER="lcm")
        response = api_as(team_users.owner).post("/api/generations/", body, format="json")
        assert response.status_code == 201, response.content
        assert GenerationJob.objects.get().scheduler == "lcm"

    def test_it_refuses_another_teams_placement_as_if_it_did_not_exist(self, team_users, enqueued, placement):
        client = api_as(team_users.outsider)
        foreign = client.post("/api/generations/", {"prompt": "p", "placement": placement.pk}, format="json")
        missing = client.post("/api/generations/", {"prompt": "p", "placement": 999999}, format="json")
        assert foreign.status_code == missing.status_code == 400
        assert foreign.json()["placement"] == [m.replace("999999", str(placement.pk))
                                               for m in missing.json()["placement"]]
        assert not GenerationJob.objects.exists()

    def test_it_refuses_a_placement_of_another_of_the_users_teams(self, team_users, enqueued, placement):
        team_users.outsider.memberships.create(team=team_users.team, role="editor")
        response = api_as(team_users.outsider).post("/api/generations/", {
            "prompt": "p", "placement": placement.pk, "team": team_users.other_team.pk}, format="json")
        assert response.status_code == 400 and "placement" in response.json()
        assert not GenerationJob.objects.exists()

    def test_it_refuses_to_create_in_another_team(self, team_users, enqueued):
        response = api_as(team_users.outsider).post("/api/generations/", {
            "prompt": "p", "content": SHORT_LINK, "team": team_users.team.pk}, format="json")
        assert response.status_code == 400 and "team" in response.json()
        assert not GenerationJob.objects.exists()

    def test_viewers_read_but_cannot_create(self, team_users, enqueued):
        job = job_with_ranks(team_users.team, team_users.owner)
        client = api_as(team_users.viewer)
        assert client.get("/api/generations/").json()["count"] == 1
        assert client.get(f"/api/generations/{job.pk}/").status_code == 200
        response = client.post("/api/generations/", {"prompt": "p", "content": SHORT_LINK}, format="json")
        assert response.status_code == 403 and "Viewers" in response.json()["detail"]
        assert GenerationJob.objects.count() == 1 and enqueued == []


@pytest.mark.django_db
class TestGenerationRateLimit:
    @pytest.fixture(autouse=True)
    def _two_per_hour(self, settings):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "2/hour"}}

    def test_it_answers_429_with_retry_after_once_the_team_used_its_rate(self, team_users, enqueued):
        body = {"prompt": "p", "content": SHORT_LINK}
        assert api_as(team_users.owner).post("/api/generations/", body, format="json").status_code == 201
        assert api_as(team_users.teammate).post("/api/generations/", body, format="json").status_code == 201
        response = api_as(team_users.owner).post("/api/generations/", body, format="json")
        assert response.status_code == 429
        assert 0 < int(response["Retry-After"]) <= 3600
        assert GenerationJob.objects.count() == 2 and len(enqueued) == 2
        # Another team has its own budget.
        assert api_as(team_users.outsider).post("/api/generations/", body, format="json").status_code == 201

    def test_a_busy_rate_lock_is_not_called_a_used_up_rate(self, team_users, enqueued, monkeypatch):
        from django.core.cache import cache

        from generator import throttles

        monkeypatch.setattr("qartsite.rates.LOCK_WAIT", 0.05)
        lock = f"{throttles.TeamGenerationThrottle(team_users.team).get_cache_key(None, None)}:lock"
        assert cache.add(lock, "someone else", 60)
        response = api_as(team_users.owner).post("/api/generations/", {"prompt": "p", "content": SHORT_LINK},
                                                 format="json")
        assert response.status_code == 429 and response["Retry-After"] == "5"
        assert response.json()["detail"].startswith(throttles.BUSY)  # DRF adds when to try again
        assert GenerationJob.objects.count() == 0 and enqueued == []
        cache.delete(lock)

    def test_it_checks_the_rate_before_decoding_a_picture(self, team_users, enqueued, monkeypatch):
        monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: False)
        client = api_as(team_users.owner)
        for _ in range(2):
            assert client.post("/api/generations/", {"prompt": "p", "content": SHORT_LINK},
                               format="json").status_code == 201
        decoded = []
        monkeypatch.setattr("generator.core.codes.images.open_picture", lambda *args, **kwargs: decoded.append(args))
        response = client.post("/api/generations/", {"content": SHORT_LINK, "picture": picture_file()},
                               format="multipart")
        assert response.status_code == 429 and decoded == []
        # When to retry, said once in words (DRF added "Expected available in N seconds." after the message's own)
        assert re.fullmatch(r"The team Acme has used its 2 generations per hour\. Try again in [^.]+\.",
                            response.json()["detail"])
        assert 0 < int(response["Retry-After"]) <= 3600
        assert GenerationJob.objects.count() == 2

    def test_it_counts_only_accepted_jobs(self, team_users, enqueued):
        client = api_as(team_users.owner)
        for _ in range(3):
            assert client.post("/api/generations/", {"prompt": "p", "content": SHORT_LINK, "steps": 0},
                               format="json").status_code == 400
        for _ in range(2):
            assert client.post("/api/generations/", {"prompt": "p", "content": SHORT_LINK},
                               format="json").status_code == 201


@pytest.mark.django_db
class TestCreateLimits:
    @pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e999"])
    @pytest.mark.parametrize("engine", ["halftone", "diffusion"])
    def test_it_refuses_numbers_that_are_not_finite_and_the_list_keeps_working(self, team_users, enqueued,
                                                                               engine, value):
        client = api_as(team_users.owner)
        body = {"content": SHORT_LINK, "engine": engine, "prompt": "a fox", "picture": picture_file(),
                "guidance_scale": value}
        response = client.post("/api/generations/", body, format="multipart")
        assert response.status_code == 400
        assert response.json() == {"guidance_scale": ["Enter a finite number (not NaN or infinity)."]}
        assert not GenerationJob.objects.exists() and enqueued == []
        assert client.get("/api/generations/").status_code == 200

    def test_it_refuses_content_longer_than_any_code_holds_before_encoding(self, team_users, enqueued,
                                                                          monkeypatch):
        monkeypatch.setattr("generator.core.codes.qr.encode", lambda *args, **kwargs: pytest.fail("encoded"))
        response = api_as(team_users.owner).post("/api/generations/", {"prompt": "p", "content": "x" * 2954},
                                                 format="json")
        assert response.status_code == 400
        assert response.json() == {
            "content": ["A QR code carries at most 2,953 characters; art codes far fewer. Use a short link instead."]}
        assert not GenerationJob.objects.exists()


    @pytest.mark.parametrize("content", ["htp:/exa mple", "https//example.com", "www.exa mple.com"])
    def test_it_refuses_an_attempted_web_address_that_is_not_one_as_the_page_does(self, team_users, enqueued,
                                                                                    content):
        response = api_as(team_users.owner).post("/api/generations/", {"prompt": "p", "content": content},
                                                 format="json")
        assert response.status_code == 400
        assert response.json()["content"][0].startswith("That doesn't look like a complete web address")
        assert not GenerationJob.objects.exists() and enqueued == []

    def test_it_takes_text_that_is_not_meant_as_a_web_address(self, team_users, enqueued):
        response = api_as(team_users.owner).post("/api/generations/", {"prompt": "p", "content": "tel:+4930123456"},
                                                 format="json")
        assert response.status_code == 201, response.json()

    def test_it_says_how_long_a_prompt_too_long_is_in_the_pages_words(self, team_users, enqueued):
        response = api_as(team_users.owner).post("/api/generations/", {
            "prompt": "p" * 1001, "negative_prompt": "n" * 1200, "content": SHORT_LINK}, format="json")
        assert response.status_code == 400
        assert response.json() == {
            "prompt": ["The prompt can be at most 1,000 characters; this one has 1,001. Shorten it."],
            "negative_prompt": ["The negative prompt can be at most 1,000 characters; this one has 1,200. Shorten it."]}


@pytest.mark.django_db(transaction=True)
class TestConcurrentCreates:
    def test_it_creates_jobs_sent_at_once_without_database_locked_errors(self, team_users, enqueued):
        from django.db import connection, connections

        if connection.vendor != "sqlite":
            pytest.skip("SQLite's locking: PostgreSQL takes concurrent writers as they come")
        clients = [api_as(team_users.owner) for _ in range(8)]  # logged in before: sessions are writes too
        start, answers = threading.Barrier(len(clients)), []

        def create(client: APIClient, index: int) -> None:
            try:
                start.wait()
                # A new prompt each: remembering it reads, then writes, inside the job's transaction.
                response = client.post("/api/generations/", {"prompt": f"a fox, take {index}",
                                                             "content": SHORT_LINK}, format="json")
                answers.append(response.status_code)
            except Exception as exc:  # the test client re-raises the view's OperationalError
                answers.append(repr(exc))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=create, args=(client, i)) for i, client in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert answers == [201] * len(clients)
        assert GenerationJob.objects.count() == len(clients) == len(enqueued)


@pytest.mark.django_db
class TestReadGeneration:
    def test_it_reports_status_progress_timings_and_ranked_candidates(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner, ranks=(2, None, 1, 3), status="done", stage="done",
                             progress=1.0, scannable=True, result_message="3 of 4 scan.", total_seconds=41.5)
        body = api_as(team_users.viewer).get(f"/api/generations/{job.pk}/").json()
        assert (body["status"], body["stage"], body["progress"], body["scannable"]) == ("done", "done", 1.0, True)
        assert body["result_message"] == "3 of 4 scan." and body["total_seconds"] == 41.5 and body["error"] == ""
        assert body["picture_fights"] is False and body["tiny_model"] is False
        assert [c["rank"] for c in body["candidates"]] == [1, 2, 3, None]
        best = body["candidates"][0]
        assert best["image"].startswith(f"http://testserver/media/generations/{job.pk}/")
        assert (best["scan_probability"], best["aesthetic_score"], best["verdict"]) == (0.7, 7.0, "pass")

    def test_it_says_when_the_halftone_engine_found_the_picture_fighting_the_code(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner, ranks=(1,), status="done", scannable=True,
                             picture_fights=True,
                             result_message="8 of 8 variants scan. This picture fights the code: ...")
        body = api_as(team_users.viewer).get(f"/api/generations/{job.pk}/").json()
        assert body["picture_fights"] is True and body["scannable"] is True

    def test_it_says_when_the_tiny_test_model_drew_the_candidates(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner, ranks=(1,), status="done", scannable=True,
                             tiny_model=True, result_message="1 of 1 candidates scan. (tiny model: images are noise)")
        body = api_as(team_users.viewer).get(f"/api/generations/{job.pk}/").json()
        assert body["tiny_model"] is True and body["scannable"] is True

    def test_it_says_in_plain_words_whether_each_candidate_scans_and_which_model_judged(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner, ranks=(1, 2), status="done")
        reasons = [{"code": "finder_damaged", "text": "The top-left finder pattern (the square) is damaged."}]
        job.candidates.filter(rank=1).update(verifier_model="logistic-v1-1234abcd", scan_details={"reasons": []})
        job.candidates.filter(rank=2).update(verdict="fail", scan_details={"reasons": reasons})
        best, second = api_as(team_users.viewer).get(f"/api/generations/{job.pk}/").json()["candidates"]
        assert (best["scan_verdict"], best["scan_reasons"], best["verifier_model"]) == (
            "Scans reliably.", [], "logistic-v1-1234abcd")
        assert second["scan_verdict"] == "May not scan: the top-left finder pattern (the square) is damaged."
        assert second["scan_reasons"] == reasons

    def test_it_reports_the_queue_position(self, team_users, monkeypatch):
        job = job_with_ranks(team_users.team, team_users.owner)
        monkeypatch.setattr("generator.jobs.queue_position", lambda queued: 3 if queued.pk == job.pk else None)
        assert api_as(team_users.owner).get(f"/api/generations/{job.pk}/").json()["queue_position"] == 3

    def test_another_teams_generations_are_invisible(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner)
        client = api_as(team_users.outsider)
        assert client.get("/api/generations/").json() == {"count": 0, "next": None, "previous": None, "results": []}
        assert client.get(f"/api/generations/{job.pk}/").status_code == 404
        assert client.post(f"/api/generations/{job.pk}/cancel/").status_code == 404

    def test_it_filters_by_status(self, team_users):
        job_with_ranks(team_users.team, team_users.owner, status="done")
        queued = job_with_ranks(team_users.team, team_users.owner)
        results = api_as(team_users.owner).get("/api/generations/?status=queued").json()["results"]
        assert [r["id"] for r in results] == [queued.pk]

    def test_it_filters_sweep_jobs_and_lists_all_by_default(self, team_users):
        made = job_with_ranks(team_users.team, team_users.owner)
        swept = job_with_ranks(team_users.team, team_users.owner)
        run = EvalRun.objects.create(name="spring sweep", team=team_users.team)
        EvalSample.objects.create(run=run, prompt="p", content=SHORT_LINK, config_key="a", job=swept)
        client = api_as(team_users.owner)

        def ids(query: str) -> list[int]:
            return sorted(r["id"] for r in client.get(f"/api/generations/{query}").json()["results"])

        assert ids("") == sorted([made.pk, swept.pk])
        assert ids("?sweep=true") == [swept.pk] and ids("?sweep=false") == [made.pk]

    def test_it_filters_by_scannable_and_refuses_a_value_it_cannot_read(self, team_users):
        job_with_ranks(team_users.team, team_users.owner, status="done", scannable=False)
        good = job_with_ranks(team_users.team, team_users.owner, status="done", scannable=True)
        client = api_as(team_users.owner)
        assert [r["id"] for r in client.get("/api/generations/?scannable=true").json()["results"]] == [good.pk]
        response = client.get("/api/generations/?scannable=yes")  # BooleanFilter listed every job for this
        assert response.status_code == 400
        assert response.json() == {"scannable": ["Select a valid choice. yes is not one of the available choices. "
                                                 "Choose one of: true, false."]}

    def test_it_answers_a_bad_sweep_value_with_400(self, team_users):
        response = api_as(team_users.owner).get("/api/generations/?sweep=maybe")
        assert response.status_code == 400
        assert "maybe is not one of the available choices" in response.json()["sweep"][0]


@pytest.mark.django_db
class TestCancelGeneration:
    def test_it_cancels_a_queued_job_at_once(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner)
        response = api_as(team_users.teammate).post(f"/api/generations/{job.pk}/cancel/")
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["cancel_requested"]) == ("cancelled", True)

    def test_it_asks_a_running_job_to_stop(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner, status="running")
        body = api_as(team_users.owner).post(f"/api/generations/{job.pk}/cancel/").json()
        assert (body["status"], body["cancel_requested"]) == ("running", True)

    def test_it_answers_409_for_a_finished_job(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner, status="done")
        assert api_as(team_users.owner).post(f"/api/generations/{job.pk}/cancel/").status_code == 409
        job.refresh_from_db()
        assert not job.cancel_requested

    @pytest.mark.parametrize("body, kind, refused", [
        ({"reason": "changed my mind"}, "json", {"reason": ["This action reads no body: send none."]}),
        ([1], "json", {"non_field_errors": ["This action reads no body: send none."]}),
        ({"reason": "x"}, "multipart", {"reason": ["This action reads no body: send none."]}),
        ({}, "json", None),
    ], ids=["field", "list", "form", "empty"])
    def test_it_refuses_a_body_it_does_not_read_and_cancels_nothing(self, team_users, body, kind, refused):
        # A body used to be ignored: whatever it asked, the job was cancelled and the answer was 200.
        job = job_with_ranks(team_users.team, team_users.owner)
        response = api_as(team_users.owner).post(f"/api/generations/{job.pk}/cancel/", body, format=kind)
        job.refresh_from_db()
        if refused:
            assert response.status_code == 400 and response.json() == refused
            assert job.status == "queued" and not job.cancel_requested
        else:
            assert response.status_code == 200 and job.status == "cancelled"

    @pytest.mark.parametrize("raw", ["[]", "null", "false", "0"])
    def test_a_falsy_json_body_is_a_body_too(self, team_users, raw):
        # `null`, `[]`, `false` and `0` passed for "no body" (they are falsy) and cancelled the job.
        job = job_with_ranks(team_users.team, team_users.owner)
        response = api_as(team_users.owner).post(f"/api/generations/{job.pk}/cancel/", raw,
                                                  content_type="application/json")
        job.refresh_from_db()
        assert response.status_code == 400 and not job.cancel_requested

    def test_viewers_cannot_cancel(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner)
        assert api_as(team_users.viewer).post(f"/api/generations/{job.pk}/cancel/").status_code == 403
        job.refresh_from_db()
        assert job.status == "queued" and not job.cancel_requested


def picture_file(name: str = "logo.png", size: int = 160) -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 40, 90)).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name=name)


def banner_file() -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (4000, 100), (200, 40, 90)).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="banner.png")


@pytest.mark.django_db
class TestHalftoneGeneration:
    @pytest.fixture(autouse=True)
    def _no_weights(self, monkeypatch):
        monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: False)

    def test_it_takes_a_multipart_picture_and_defaults_to_halftone_without_weights(self, team_users, media_storage,
                                                                                   enqueued):
        response = api_as(team_users.owner).post(
            "/api/generations/", {"content": SHORT_LINK, "picture": picture_file()}, format="multipart"
        )
        assert response.status_code == 201, response.json()
        job = GenerationJob.objects.get()
        assert response.json()["engine"] == "halftone" and "picture" not in response.json()
        assert job.engine == "halftone" and job.init_image.name.endswith(".png") and enqueued == [job]
        assert job.repair is True  # left out of the form body: its default, as in JSON (not an unticked box)
        with job.init_image.open("rb") as stored:
            assert Image.open(stored).size == (160, 160)

    @pytest.mark.parametrize("field", ["picture", "logo"])
    def test_it_refuses_two_files_under_one_name(self, team_users, enqueued, field):
        # The last part was read and the first dropped without a word: which picture a job used was the client's
        # library's order.
        body = {"content": SHORT_LINK, "picture": picture_file(), field: [picture_file("a.png"), picture_file("b.png")]}
        response = api_as(team_users.owner).post("/api/generations/", body, format="multipart")
        assert response.status_code == 400 and enqueued == [] and not GenerationJob.objects.exists()
        assert response.json() == {field: [f"Send one file: the body has 2 parts named {field}."]}

    def test_a_picture_that_carries_another_code_is_refused(self, team_users, media_storage, enqueued):
        # An uploaded QR code drawn over scored "excellent", then print-size captures read the other link.

        client = api_as(team_users.owner)
        other = ContentFile(qr_png("https://elsewhere.example/x"), name="code.png")
        response = client.post("/api/generations/", {"content": SHORT_LINK, "picture": other}, format="multipart")
        assert response.status_code == 400 and enqueued == []
        assert response.json()["picture"] == [
            "code.png already carries a QR code that opens “https://elsewhere.example/x”: a phone could open that "
            "instead of your link. Choose a picture without a code in it."]
        logo = ContentFile(qr_png("https://elsewhere.example/x"), name="mark.png")
        response = client.post("/api/generations/", {"content": SHORT_LINK, "picture": picture_file(), "logo": logo},
                               format="multipart")
        assert response.status_code == 400 and "mark.png already carries a QR code" in response.json()["logo"][0]
        # A picture carrying this very link (an earlier code of it, restyled) is fine.
        same = ContentFile(qr_png(SHORT_LINK), name="same.png")
        response = client.post("/api/generations/", {"content": SHORT_LINK, "picture": same}, format="multipart")
        assert response.status_code == 201 and len(enqueued) == 1

    def test_a_picture_sent_with_the_diffusion_engine_is_refused_not_dropped(self, team_users, media_storage,
                                                                            enqueued):
        # It was thrown away without a word and a text-to-image job ran (201): the picture looked used.
        client = api_as(team_users.owner)
        response = client.post("/api/generations/", {"content": SHORT_LINK, "picture": picture_file(),
                                                     "engine": "diffusion", "prompt": "fox"}, format="multipart")
        assert response.status_code == 400 and response.json() == {"picture": [uploads.PICTURE_NEEDS_HALFTONE]}
        response = client.post("/api/generations/", {"content": SHORT_LINK, "earlier_candidate": 1,
                                                     "engine": "diffusion", "prompt": "fox"}, format="json")
        assert response.status_code == 400
        assert response.json() == {"earlier_candidate": [uploads.PICTURE_NEEDS_HALFTONE]}
        assert enqueued == [] and not GenerationJob.objects.exists()

    def test_it_takes_a_logo_for_the_centre_and_makes_the_code_level_h(self, team_users, media_storage, enqueued):
        response = api_as(team_users.owner).post(
            "/api/generations/", {"content": SHORT_LINK, "picture": picture_file(), "logo": picture_file("l.png", 90)},
            format="multipart",
        )
        assert response.status_code == 201, response.json()
        job = GenerationJob.objects.get()
        assert job.ecc == "H" and job.logo.name.endswith(".png") and "logo" not in response.json()
        with job.logo.open("rb") as stored:
            assert Image.open(stored).size == (90, 90)

    def test_a_wordmark_logo_is_taken_whatever_its_shape(self, team_users, media_storage, enqueued):
        buffer = io.BytesIO()
        Image.new("RGB", (1700, 200), (20, 60, 200)).save(buffer, format="PNG")
        response = api_as(team_users.owner).post(
            "/api/generations/",
            {"content": SHORT_LINK, "picture": picture_file(), "logo": ContentFile(buffer.getvalue(), name="w.png")},
            format="multipart",
        )
        assert response.status_code == 201, response.json()
        with GenerationJob.objects.get().logo.open("rb") as stored:
            assert Image.open(stored).size == (512, 60)  # thinner than a picture may be: the worker takes it

    def test_it_answers_503_when_the_picture_cannot_be_stored(self, team_users, enqueued, unreachable_media, caplog):
        response = api_as(team_users.owner).post(
            "/api/generations/", {"content": SHORT_LINK, "picture": picture_file()}, format="multipart"
        )
        assert response.status_code == 503 and response["Retry-After"] == "60"
        assert response.json() == {"detail": uploads.NOT_STORED}
        assert not GenerationJob.objects.exists() and not Prompt.objects.exists() and enqueued == []
        # An outage, not a bug: one line that says why, no traceback
        [record] = [r for r in caplog.records if "picture could not be stored" in r.getMessage()]
        assert "Could not connect to the endpoint URL" in record.getMessage() and record.exc_info is None

    def test_it_keeps_diffusion_without_a_picture(self, team_users, enqueued):
        response = api_as(team_users.owner).post("/api/generations/", {"prompt": "a fox", "content": SHORT_LINK},
                                                 format="json")
        assert response.status_code == 201 and response.json()["engine"] == "diffusion"

    @pytest.mark.parametrize(("body", "key", "message"), [
        ({"engine": "halftone"}, "picture", "draws the code into a picture"),
        ({"engine": "halftone", "picture": ContentFile(b"GIF89a nonsense", name="x.gif")}, "picture", "x.gif: "),
        ({"engine": "halftone", "earlier_candidate": 999999}, "earlier_candidate", "Pick one of this team's"),
        ({"engine": "diffusion"}, "prompt", "Describe the picture"),
        ({"engine": "halftone", "picture": picture_file(), "logo": ContentFile(b"GIF89a nonsense", name="l.gif")},
         "logo", "l.gif: "),
        ({"prompt": "a fox", "engine": "diffusion", "logo": picture_file()}, "logo", "drawn by the halftone engine"),
        # accepted before, then the job failed: stored 2048 px long its short side was 51 px
        ({"engine": "halftone", "picture": banner_file()}, "picture", "banner.png: 4000x100 pixels is too long"),
    ])
    def test_it_answers_bad_pictures_with_400(self, team_users, enqueued, body, key, message):
        response = api_as(team_users.owner).post("/api/generations/", {"content": SHORT_LINK, **body},
                                                 format="multipart")
        assert response.status_code == 400 and message in response.json()[key][0]
        assert not GenerationJob.objects.exists() and enqueued == []

    def test_another_teams_candidate_is_refused_as_if_it_did_not_exist(self, team_users, enqueued):
        theirs = job_with_ranks(team_users.other_team, team_users.outsider, ranks=(1,)).candidates.get()
        ours = job_with_ranks(team_users.team, team_users.owner, ranks=(1,)).candidates.get()
        ours.image.save("c.png", picture_file(), save=True)  # the helper's 8 px PNGs are too small to draw from
        client = api_as(team_users.owner)
        refused = client.post("/api/generations/", {"content": SHORT_LINK, "earlier_candidate": theirs.pk})
        assert refused.status_code == 400
        assert refused.json()["earlier_candidate"] == ["Pick one of this team's earlier candidates."]
        accepted = client.post("/api/generations/", {"content": SHORT_LINK, "earlier_candidate": ours.pk})
        assert accepted.status_code == 201 and accepted.json()["engine"] == "halftone"

    def test_a_picture_and_an_earlier_candidate_together_are_refused(self, team_users, enqueued):
        # The upload won without a word, and the candidate was never looked at
        ours = job_with_ranks(team_users.team, team_users.owner, ranks=(1,)).candidates.get()
        ours.image.save("c.png", picture_file(), save=True)
        response = api_as(team_users.owner).post("/api/generations/", {
            "content": SHORT_LINK, "engine": "halftone", "picture": picture_file(), "earlier_candidate": ours.pk},
            format="multipart")
        assert response.status_code == 400
        assert response.json() == {"earlier_candidate": ["Send a picture or an earlier candidate, not both."]}
        assert GenerationJob.objects.count() == 1 and enqueued == []  # the helper's job only

    def test_it_reports_each_candidates_variant_and_fidelity(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner, ranks=(1,), engine="halftone")
        job.candidates.update(variant="centre 0.30, dots, colour, margin 40", fidelity_ssim=0.81, color_error=1.5)
        candidate = api_as(team_users.owner).get(f"/api/generations/{job.pk}/").json()["candidates"][0]
        assert (candidate["variant"], candidate["fidelity_ssim"], candidate["color_error"]) == (
            "centre 0.30, dots, colour, margin 40", 0.81, 1.5)


@pytest.mark.django_db
def test_a_created_generation_says_what_is_left_of_the_teams_rate(team_users, enqueued, settings, fresh_cache):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "3/hour"}}
    client = api_as(team_users.owner)
    first = client.post("/api/generations/", {"prompt": "koi", "content": SHORT_LINK}, format="json")
    second = client.post("/api/generations/", {"prompt": "koi", "content": SHORT_LINK}, format="json")
    assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("3", "2")
    assert second["RateLimit-Remaining"] == "1" and 3590 <= int(second["RateLimit-Reset"]) <= 3600
    # Said in the docs: the 201 was documented as the generation alone.
    documented = client.get("/api/schema/?format=json").json()["paths"]["/api/generations/"]["post"]["responses"]
    sent = [header for header in first.headers if header.startswith("RateLimit-")]
    assert len(sent) == 3 and all(header in documented["201"]["description"] for header in sent)
    # As the 201's headers too, which a client made from the schema reads (in words alone, it had none).
    headers = documented["201"].get("headers", {})
    assert {name: headers[name]["schema"]["type"] for name in sent if name in headers} == dict.fromkeys(sent, "integer")


@pytest.mark.django_db(transaction=True)  # the job is queued when its transaction commits
def test_a_generation_the_queue_could_not_take_is_a_503_not_a_201(team_users, monkeypatch, fresh_cache, settings,
                                                                   caplog):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from generator import jobs

    def away(name):
        raise RedisConnectionError("Connection refused")

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "3/hour"}}
    # It went away between the check and the commit
    monkeypatch.setattr(jobs, "queue_refusal", lambda operator=False: None)
    monkeypatch.setattr(jobs.django_rq, "get_queue", away)
    response = api_as(team_users.owner).post("/api/generations/", {"prompt": "koi", "content": SHORT_LINK},
                                             format="json")
    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert response.json()["detail"] == jobs.QUEUE_UNAVAILABLE
    assert GenerationJob.objects.get(pk=response.json()["id"]).status == "failed"
    [logged] = [r for r in caplog.records if "Could not enqueue" in r.getMessage()]
    assert "Connection refused" in logged.getMessage() and logged.exc_info is None  # an outage: one line
    throttle = TeamGenerationThrottle(team_users.team)
    assert throttle.has_room() and throttle.history == []  # the team's rate got its job back


@pytest.mark.django_db(transaction=True)
def test_a_generation_asked_while_the_queue_does_not_answer_is_a_503_and_makes_nothing(team_users, queue_away,
                                                                                       fresh_cache):
    # It made the job and failed it at once: a failed job for every try while Redis was down.
    from generator import jobs

    response = api_as(team_users.owner).post("/api/generations/", {"prompt": "koi", "content": SHORT_LINK},
                                             format="json")
    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert response.json() == {"detail": jobs.QUEUE_UNAVAILABLE}
    assert not GenerationJob.objects.exists() and not Prompt.objects.exists()
    throttle = TeamGenerationThrottle(team_users.team)
    assert throttle.has_room() and throttle.history == []


@pytest.mark.django_db(transaction=True)
def test_a_generation_asked_while_the_queue_refuses_the_password_says_so_with_no_retry(team_users,
                                                                                       queue_refuses_password,
                                                                                       fresh_cache):
    # "The job queue is unavailable right now; please try again." and Retry-After: 60, for what no wait mends
    response = api_as(team_users.owner).post("/api/generations/", {"prompt": "koi", "content": SHORT_LINK},
                                             format="json")
    assert response.status_code == 503 and "Retry-After" not in response
    assert response.json() == {"detail": "The job queue refuses the site's password. Waiting will not mend it: "
                                         "whoever runs the site must put it right."}
    assert not GenerationJob.objects.exists() and not Prompt.objects.exists()
    throttle = TeamGenerationThrottle(team_users.team)
    assert throttle.has_room() and throttle.history == []


@pytest.mark.django_db(transaction=True)
def test_a_generation_asked_while_the_queue_refuses_writes_is_a_503_and_makes_nothing(team_users, monkeypatch,
                                                                                      fresh_cache):
    # A full Redis (maxmemory, noeviction) answers PING and refuses the job: each try made a job and failed it at once
    # (a fault drill: eleven failed jobs in half a minute).
    from redis import Redis
    from redis.exceptions import OutOfMemoryError

    from generator import jobs

    def full(self, *args, **kwargs):
        raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(Redis, "set", full)
    response = api_as(team_users.owner).post("/api/generations/", {"prompt": "koi", "content": SHORT_LINK},
                                             format="json")
    assert response.status_code == 503 and response.json() == {"detail": jobs.QUEUE_UNAVAILABLE}
    assert not GenerationJob.objects.exists() and not Prompt.objects.exists()


@pytest.mark.django_db
class TestDeleteGeneration:
    """A team deletes its own finished generation, uploads and all, unless print or people's labels keep it."""

    def test_an_editor_deletes_a_finished_job_and_nobody_else_can(self, team_users):
        job = job_with_ranks(team_users.team, team_users.owner, ranks=(1, 2), status="done")
        url = f"/api/generations/{job.pk}/"
        assert api_as(team_users.viewer).delete(url).status_code == 403
        assert api_as(team_users.outsider).delete(url).status_code == 404
        assert GenerationJob.objects.filter(pk=job.pk).exists()
        assert api_as(team_users.teammate).delete(url).status_code == 204
        assert not GenerationJob.objects.filter(pk=job.pk).exists() and not Candidate.objects.exists()

    def test_print_running_and_labels_keep_a_job_with_the_reason(self, team_users, placement):
        from generator.models import HumanScanResult, LabelingSession

        running = job_with_ranks(team_users.team, team_users.owner, ranks=(1,), status="running")
        response = api_as(team_users.owner).delete(f"/api/generations/{running.pk}/")
        assert response.status_code == 409 and response.json()["detail"].startswith("This job has not finished")
        printed = job_with_ranks(team_users.team, team_users.owner, ranks=(1,), status="done")
        placement.artwork = printed.candidates.get()
        placement.save()
        response = api_as(team_users.owner).delete(f"/api/generations/{printed.pk}/")
        assert response.status_code == 409 and "artwork of “Station poster”" in response.json()["detail"]
        labelled = job_with_ranks(team_users.team, team_users.owner, ranks=(1,), status="done")
        HumanScanResult.objects.create(session=LabelingSession.objects.create(name="s", team=team_users.team),
                                       candidate=labelled.candidates.get(), scanned=True)
        response = api_as(team_users.owner).delete(f"/api/generations/{labelled.pk}/")
        assert response.status_code == 409 and "People labelled its codes" in response.json()["detail"]
        assert GenerationJob.objects.count() == 3

