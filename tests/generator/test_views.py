"""The generation pages: the form, a job's status and candidates, use-this-one, downloads, the job list."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import django_rq
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone
from PIL import Image
from rq.job import Job

from campaigns.models import Campaign, Placement
from generator import jobs, leases, reconcile, uploads, views
from generator.core.codes import qr
from generator.models import Candidate, EvalRun, EvalSample, GenerationJob, Prompt
from tests.clients import logged_in
from tests.conftest import live_queue
from tests.generator.factories import (
    CONTENT,
    VALID,
    for_placement,
    job_with_candidates,
    many_placements,
    placement_of,
    qr_png,
    solid_png,
)

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def now(monkeypatch):
    # The clock the view reads, fixed: elapsed time and ETA are arithmetic, not a race with the test.
    from datetime import UTC, datetime

    fixed = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(views.timezone, "now", lambda: fixed)
    return fixed


def halftone_post(team) -> dict:
    """The generation form for a halftone job of `team`, with an uploaded picture."""
    buffer = io.BytesIO()
    Image.new("RGB", (200, 150), (30, 120, 200)).save(buffer, format="WEBP")
    return {"team": team.pk, "content": CONTENT, "engine": "halftone", "look": "balanced", "speed": "fast",
            "style": "square", "background": "white", "picture": ContentFile(buffer.getvalue(), name="logo.webp")}


@pytest.fixture
def enqueued(monkeypatch) -> list[GenerationJob]:
    calls: list[GenerationJob] = []
    monkeypatch.setattr(views.jobs, "enqueue_generation", calls.append)
    monkeypatch.setattr(views.jobs, "queue_refusal", lambda operator=False: None)
    return calls


@pytest.fixture(autouse=True)
def _fresh_rate_history():
    # The generation rate is counted in the cache, which outlives a test's database rollback.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


class TestGeneratePage:
    def test_it_requires_login(self, client, settings):
        response = client.get("/generate/")
        assert response.status_code == 302 and response["Location"].startswith(settings.LOGIN_URL)

    def test_it_answers_head_as_get_without_the_page(self, team_users):
        # A link checker's HEAD was a 405 where the GET is the form.
        response = logged_in(team_users.teammate).head("/generate/")
        assert response.status_code == 200 and response.content == b""

    def test_it_renders_the_presets_and_the_ranges(self, team_users):
        html = logged_in(team_users.teammate).get("/generate/").content.decode()
        for name in ("Balanced", "More art", "More scannable", "Fast", "Quality"):
            assert name in html
        assert re.search(r'name="steps"[^>]*min="1"[^>]*max="150"', html)
        assert re.search(r'name="conditioning_scale"[^>]*min="0"[^>]*max="3"', html)
        assert re.search(r'name="size"[^>]*min="256"[^>]*max="1024"[^>]*step="64"', html)
        assert f'name="team" value="{team_users.team.pk}"' in html  # one team: a hidden field
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html

    def test_it_explains_the_choices_without_an_engineers_words(self, team_users):
        # A marketer read "50 DDIM steps", "the code's modules" and "error correction (H)" and learnt nothing.
        html = logged_in(team_users.teammate).get("/generate/").content.decode()
        assert "The finest detail; takes the longest." in html
        assert "fewer, bigger squares in the code" in html and "phones still read it with the middle covered" in html
        for jargon in ("DDIM", "modules", "error correction (H)"):
            assert jargon not in html, jargon

    def test_its_placement_picker_costs_the_same_whatever_the_number_of_placements(self, team_users):
        # A team's 5,000 placements took 0.56 s of the page: an option template each, and whole rows of every
        # placement and its campaign (JSON rules included) read twice.
        from django.db import connection
        from django.test.signals import template_rendered
        from django.test.utils import CaptureQueriesContext

        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example.com/")
        drawn: list[str] = []

        def count(sender, template, **kwargs):
            drawn.append(template.name)

        def page_with(total: int) -> tuple[int, int, str]:
            for n in range(campaign.placements.count(), total):
                Placement.objects.create(campaign=campaign, name=f"Poster {n}")
            drawn.clear()
            template_rendered.connect(count)
            try:
                with CaptureQueriesContext(connection) as queries:
                    html = logged_in(team_users.teammate).get("/generate/").content.decode()
            finally:
                template_rendered.disconnect(count)
            picker = [q["sql"] for q in queries.captured_queries if 'FROM "campaigns_placement"' in q["sql"]]
            assert picker and all('"campaigns_campaign"."rules"' not in sql for sql in picker)
            return len(drawn), len(queries), html

        few, many = page_with(5), page_with(15)
        assert few[:2] == many[:2]
        assert all(f'<option value="{p.pk}">Poster' in many[2] for p in campaign.placements.all())

    def test_it_shows_only_the_teams_prompts_in_the_gallery(self, team_users):
        Prompt.objects.create(owner=team_users.teammate, team=team_users.team, text="a lighthouse in fog")
        Prompt.objects.create(owner=team_users.outsider, team=team_users.other_team, text="a rival's secret")
        html = logged_in(team_users.owner).get("/generate/").content.decode()
        assert 'data-prompt="a lighthouse in fog"' in html
        assert "secret" not in html

    def test_it_preselects_a_placement_and_fills_in_its_short_link(self, team_users):
        placement = placement_of(team_users.team)
        response = logged_in(team_users.owner).get(f"/generate/?placement={placement.pk}")
        html = response.content.decode()
        assert f'value="http://TESTSERVER/R/{placement.slug}"' in html  # in capitals, as the code carries it
        assert re.search(rf'<option value="{placement.pk}" selected>', html)

    def test_it_answers_404_for_another_teams_placement(self, team_users):
        theirs = placement_of(team_users.other_team)
        client = logged_in(team_users.owner)
        assert client.get(f"/generate/?placement={theirs.pk}").status_code == 404
        assert client.get("/generate/?placement=nope").status_code == 404

    def test_it_creates_a_job_and_queues_it(self, team_users, enqueued):
        placement = placement_of(team_users.team)
        response = logged_in(team_users.teammate).post(
            "/generate/", {**VALID, "team": team_users.team.pk, "placement": placement.pk, "content": "", "seed": "7"}
        )
        job = GenerationJob.objects.get()
        assert response.status_code == 302 and response["Location"] == f"/generate/jobs/{job.pk}/"
        assert (job.owner, job.team, job.placement, job.seed) == (team_users.teammate, team_users.team, placement, 7)
        assert job.content == f"http://TESTSERVER/R/{placement.slug}"
        assert job.prompt.team == team_users.team
        assert enqueued == [job]

    def test_a_queue_that_refuses_the_password_says_so_and_where_only_to_superusers(self, team_users,
                                                                                    queue_refuses_password):
        # "please try again": people retried what only whoever runs the site puts right
        where = f"127.0.0.1:{queue_refuses_password.port}/0"
        response = logged_in(team_users.teammate).post("/generate/", {**VALID, "team": team_users.team.pk})
        html = response.content.decode()
        assert response.status_code == 503 and "The job queue refuses the site&#x27;s password. Waiting" in html
        assert jobs.QUEUE_UNAVAILABLE not in html and where not in html
        assert "a koi pond at dawn</textarea>" in html and not GenerationJob.objects.exists()
        team_users.teammate.is_superuser = True
        team_users.teammate.save(update_fields=["is_superuser"])
        html = logged_in(team_users.teammate).post("/generate/", {**VALID, "team": team_users.team.pk}).content.decode()
        assert f"Redis at {where} refused the password" in html and "wrong-password" not in html

    def test_a_queue_that_does_not_answer_keeps_the_form_and_makes_nothing(self, team_users, queue_away):
        # It made the job, failed it at once and showed its page: the prompt was to be typed again, and the team's
        # rate had spent a generation on it.
        from generator.throttles import TeamGenerationThrottle

        response = logged_in(team_users.teammate).post("/generate/", {**VALID, "team": team_users.team.pk})
        html = response.content.decode()
        assert response.status_code == 503 and jobs.QUEUE_UNAVAILABLE in html
        assert "a koi pond at dawn</textarea>" in html
        assert not GenerationJob.objects.exists() and not Prompt.objects.exists()
        throttle = TeamGenerationThrottle(team_users.team)
        assert throttle.has_room() and throttle.history == []
        response = logged_in(team_users.teammate).post("/generate/", halftone_post(team_users.team))
        assert response.status_code == 503 and "data-kept-picture" in response.content.decode()
        assert not GenerationJob.objects.exists()

    @pytest.mark.parametrize(("field", "value", "message"), [
        ("steps", "0", "Steps must be between 1 and 150, got 0."),
        ("content", "https://example.com/" + "x" * 120, "This is too long for QR art: 140 characters"),
        ("conditioning_scale", "4.5", "Conditioning scale must be between 0.0 and 3.0, got 4.5."),
    ])
    def test_it_shows_the_cores_message_and_makes_no_job(self, team_users, enqueued, field, value, message):
        response = logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk, field: value})
        assert response.status_code == 400
        assert message in response.content.decode()
        assert response.context["form"].errors[field]
        assert not GenerationJob.objects.exists() and not Prompt.objects.exists() and enqueued == []

    def test_it_shows_viewers_a_disabled_form_and_refuses_their_posts(self, team_users, enqueued):
        client = logged_in(team_users.viewer)
        html = client.get("/generate/").content.decode()
        assert "Viewers can look but not change things" in html
        assert re.search(r'<textarea name="prompt"[^>]*disabled', html)
        assert re.search(r'<button type="submit" class="button" disabled>', html)
        response = client.post("/generate/", {**VALID, "team": team_users.team.pk})
        assert response.status_code == 403 and not GenerationJob.objects.exists()

    def test_a_placement_of_a_team_one_only_views_is_not_filled_in_but_said(self, team_users, enqueued):
        # The outsider owns Rival and views Acme: from an Acme placement the form filled in Acme's short link and
        # offered Acme's codes, then refused the job ("That team is not one you can make codes for"), again on reload
        from campaigns.models import Campaign, Placement
        from qartsite.models import Membership

        Membership.objects.create(team=team_users.team, user=team_users.outsider, role="viewer")
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://example.com/")
        poster = Placement.objects.create(campaign=campaign, name="Station poster")
        response = logged_in(team_users.outsider).get(f"/generate/?placement={poster.pk}")
        html = response.content.decode()
        assert response.status_code == 200 and poster.slug not in html
        assert "You can look at Station poster (Acme) but not make codes for it: you are a viewer there." in html
        assert response.context["form"].initial.get("placement") is None
        # An editor of that team gets the placement filled in, and no such note
        html = logged_in(team_users.teammate).get(f"/generate/?placement={poster.pk}").content.decode()
        assert poster.slug in html and "data-placement-note" not in html

    def test_it_refuses_a_team_the_user_cannot_edit(self, team_users, enqueued):
        response = logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.other_team.pk})
        assert response.status_code == 400 and "team" in response.context["form"].errors
        assert not GenerationJob.objects.exists()
        # one team: the field is hidden, so its error is shown above the form (it was not shown at all)
        assert "That team is not one you can make codes for" in response.content.decode()

    def test_it_tells_a_user_without_a_team_how_to_join_one(self, team_users, enqueued):
        from django.contrib.auth import get_user_model

        loner = get_user_model().objects.create_user("loner")
        client = logged_in(loner)
        assert "not in a team yet" in client.get("/generate/").content.decode()
        client.post("/generate/", {**VALID, "team": team_users.team.pk})
        assert not GenerationJob.objects.exists()

    def test_it_answers_an_empty_post_with_the_form_errors(self, team_users, enqueued):
        response = logged_in(team_users.owner).post("/generate/", {})
        assert response.status_code == 400 and "prompt" in response.context["form"].errors
        assert enqueued == []

    def test_it_needs_the_csrf_token(self, team_users, enqueued):
        client = Client(enforce_csrf_checks=True)
        client.force_login(team_users.owner)
        assert client.post("/generate/", {**VALID, "team": team_users.team.pk}).status_code == 403


@pytest.mark.django_db
def test_the_page_refuses_a_picture_or_an_earlier_candidate_that_carries_another_link(team_users, enqueued,
                                                                                   media_storage):
    client = logged_in(team_users.owner)
    body = {**halftone_post(team_users.team), "picture": ContentFile(qr_png("https://elsewhere.example/x"),
                                                                      name="code.png")}
    response = client.post("/generate/", body)
    assert response.status_code == 400 and enqueued == []
    assert "code.png already carries a QR code that opens “https://elsewhere.example/x”" in response.content.decode()
    # An earlier candidate made for another link is a code of that link.
    job = GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, content="https://old.example/p",
                                       prompt=Prompt.objects.create(owner=team_users.owner, team=team_users.team,
                                                                    text="old"))
    earlier = Candidate.objects.create(job=job, index=0, rank=1, seed=1, verdict="pass", scan_probability=0.9,
                                       image=ContentFile(qr_png("https://old.example/p"), name="old.png"))
    body = {**halftone_post(team_users.team), "earlier_candidate": earlier.pk}
    del body["picture"]
    response = client.post("/generate/", body)
    assert response.status_code == 400 and enqueued == []
    assert "The candidate already carries a QR code that opens “https://old.example/p”" in response.content.decode()
    response = client.post("/generate/", {**body, "content": "https://old.example/p"})  # its own link: fine
    assert response.status_code == 302 and len(enqueued) == 1


@pytest.mark.django_db
def test_an_earlier_code_of_the_same_short_link_in_another_case_is_taken(team_users, enqueued, media_storage):
    # Made before the team's owner turned on "HTTPS:// in capitals" (`Team.capital_scheme`): the same link, which
    # opens the same page; it was refused as "another link" a phone could open.
    client = logged_in(team_users.owner)
    made = "https://QART.EXAMPLE/R/ABCDEFGH23"
    job = GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, content=made,
                                       prompt=Prompt.objects.create(owner=team_users.owner, team=team_users.team,
                                                                    text="old"))
    earlier = Candidate.objects.create(job=job, index=0, rank=1, seed=1, verdict="pass", scan_probability=0.9,
                                       image=ContentFile(qr_png(made), name="old.png"))
    body = {**halftone_post(team_users.team), "earlier_candidate": earlier.pk,
            "content": "HTTPS://QART.EXAMPLE/R/ABCDEFGH23"}
    del body["picture"]
    response = client.post("/generate/", body)
    assert response.status_code == 302 and len(enqueued) == 1
    # Another slug, or another path, is another link still.
    response = client.post("/generate/", {**body, "content": "HTTPS://QART.EXAMPLE/R/ABCDEFGH24"})
    assert response.status_code == 400 and len(enqueued) == 1
    assert f"The candidate already carries a QR code that opens “{made}”" in response.content.decode()


def test_the_job_page_is_not_kept_by_the_browser(team_users, done_job):
    # Back after deleting the job showed it again from the browser's cache, its Delete button answering 404
    response = logged_in(team_users.teammate).get(f"/generate/jobs/{done_job.pk}/")
    assert "no-store" in response["Cache-Control"]


class TestGenerationRate:
    """The page spends the same per-team budget as the API (generator.throttles)."""

    @pytest.fixture(autouse=True)
    def _one_per_hour(self, settings):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "1/hour"}}

    def test_it_answers_429_with_the_form_and_the_message_once_the_team_used_its_rate(self, team_users, enqueued):
        assert logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk}).status_code == 302
        response = logged_in(team_users.teammate).post("/generate/", {**VALID, "team": team_users.team.pk,
                                                                      "prompt": "a heron in the reeds"})
        html = response.content.decode()
        assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 3600
        assert re.search(r'<div class="form-errors" id="form-errors" role="alert"[^>]*>.*The team Acme has used its 1 '
                         r'generation per hour\. Try again in about 60 minutes\.', html, re.S)
        assert "a heron in the reeds</textarea>" in html  # what was typed is still there
        assert GenerationJob.objects.count() == 1 and len(enqueued) == 1

    def test_the_page_and_the_api_share_one_budget(self, team_users, enqueued):
        from rest_framework.test import APIClient

        api = APIClient()
        api.force_login(team_users.owner)
        assert api.post("/api/generations/", {"prompt": "p", "content": CONTENT}, format="json").status_code == 201
        page = logged_in(team_users.teammate).post("/generate/", {**VALID, "team": team_users.team.pk})
        assert page.status_code == 429
        # And the other way round, in the other team.
        other = {**VALID, "team": team_users.other_team.pk}
        assert logged_in(team_users.outsider).post("/generate/", other).status_code == 302
        api.force_login(team_users.outsider)
        assert api.post("/api/generations/", {"prompt": "p", "content": CONTENT}, format="json").status_code == 429
        assert GenerationJob.objects.count() == 2 == len(enqueued)

    def test_a_busy_rate_lock_is_not_called_a_used_up_rate(self, team_users, enqueued, monkeypatch):
        from django.core.cache import cache

        from generator import throttles

        monkeypatch.setattr("qartsite.rates.LOCK_WAIT", 0.05)
        lock = f"{throttles.TeamGenerationThrottle(team_users.team).get_cache_key(None, None)}:lock"
        assert cache.add(lock, "someone else", 60)
        response = logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk,
                                                                   "prompt": "a heron in the reeds"})
        html = response.content.decode()
        assert response.status_code == 429 and response["Retry-After"] == "5"
        assert "could not be checked just now. Try again shortly." in html and "has used its" not in html
        assert "a heron in the reeds</textarea>" in html
        assert GenerationJob.objects.count() == 0 and enqueued == []
        cache.delete(lock)

    def test_it_checks_the_rate_before_decoding_a_picture(self, team_users, enqueued, monkeypatch):
        assert logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk}).status_code == 302
        decoded = []
        monkeypatch.setattr("generator.core.codes.images.open_picture", lambda *args, **kwargs: decoded.append(args))
        response = logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk,
                                                                   "engine": "halftone",
                                                                   "picture": solid_png((9, 9, 9))})
        assert response.status_code == 429 and decoded == []
        assert GenerationJob.objects.count() == 1
        # The picture could not be kept for the next try, and the page says so rather than losing it silently.
        html = response.content.decode()
        assert "Your picture was not kept: choose it again" in html and 'name="kept_picture"' not in html

    def test_the_page_says_the_team_has_no_room_before_anything_is_chosen(self, team_users, enqueued):
        page = logged_in(team_users.owner).get("/generate/").content.decode()
        assert "data-room-note" not in page
        assert logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk}).status_code == 302
        page = logged_in(team_users.teammate).get("/generate/").content.decode()
        assert re.search(r"data-room-note>The team Acme has used its 1 generation per hour\. Try again in about",
                         page)
        # A viewer, who cannot start a job anyway, is not told about the budget.
        assert "data-room-note" not in logged_in(team_users.viewer).get("/generate/").content.decode()

    def test_someone_in_two_teams_is_told_which_has_no_room_whichever_the_form_starts_on(self, team_users, enqueued):
        from qartsite.models import Membership

        Membership.objects.create(team=team_users.team, user=team_users.outsider, role="editor")
        assert logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk}).status_code == 302

        page = logged_in(team_users.outsider).get(f"/generate/?team={team_users.other_team.pk}").content.decode()

        assert re.search(r"data-room-note>The team Acme has used its 1 generation per hour\.", page)
        assert "The team Rival" not in page

    def test_a_picture_kept_from_an_earlier_try_stays_kept_through_the_refusal(self, team_users, enqueued):
        from generator import uploads

        token = uploads.keep(team_users.owner, Image.new("RGB", (300, 300), (9, 90, 200)), "beach.png")
        assert logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk}).status_code == 302
        body = {**VALID, "team": team_users.team.pk, "engine": "halftone", "prompt": "", "kept_picture": token}
        response = logged_in(team_users.owner).post("/generate/", body)
        html = response.content.decode()
        assert response.status_code == 429 and f'name="kept_picture" value="{token}"' in html
        assert "Keeping beach.png" in html and "picture was not kept" not in html

    def test_a_refusal_without_a_picture_does_not_mention_one(self, team_users, enqueued):
        assert logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk}).status_code == 302
        response = logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk})
        assert response.status_code == 429 and "picture was not kept" not in response.content.decode()


class TestJobPage:
    def test_a_halftone_job_without_a_prompt_has_a_heading(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner, engine="halftone")
        job.prompt.text = ""
        job.prompt.save()
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert "<h1>Your picture, as a code</h1>" in html  # was an empty <h1></h1>

    def test_it_gives_the_template_the_jobs_own_working_time(self, team_users):
        # "Took 83 s" (total_seconds) counted the 71 s the job waited in the queue: `took` is its own work.
        job = job_with_candidates(team_users.team, team_users.owner, status="done", queue_seconds=71.0,
                                  generation_seconds=9.4, scoring_seconds=3.0, total_seconds=83.0)
        assert logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/").context["took"] == "12 s"
        unfinished = job_with_candidates(team_users.team, team_users.owner, status="running", queue_seconds=71.0)
        assert logged_in(team_users.viewer).get(f"/generate/jobs/{unfinished.pk}/").context["took"] == ""

    def test_it_shows_the_top_four_in_rank_order_with_their_badges(self, team_users, done_job):
        response = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/")
        assert response.status_code == 200
        assert [c.rank for c in response.context["top"]] == [1, 2, 3, 4]
        assert [c.rank for c in response.context["rest"]] == [5, 6]
        html = response.content.decode()
        assert "Show all 6" in html and "3 of 6 candidates scan." in html and "These are not pictures" in html
        assert html.count("Scan reliability: excellent") == 1 and html.count("Scan reliability: good") == 2
        assert html.count("Scan reliability: poor") == 3 and "Repaired" in html
        # Said in a marketer's words: "module centres were nudged" meant nothing to one.
        assert "some squares of the code were touched up so phones read it" in html and "nudged" not in html
        # The numbers behind the words, one click away.
        assert "<dd data-scan-probability>90 %</dd>" in html and "<dd data-scan-probability>40 %</dd>" in html
        assert "data-job-live" not in html  # finished: no polling
        assert "Use this one" not in html  # a viewer
        assert f"/generate/candidates/{done_job.candidates.get(rank=1).pk}/download.png?size=4096" in html
        assert f"/generate/jobs/{done_job.pk}/code.svg" in html

    def test_it_says_in_plain_words_whether_each_candidate_scans(self, team_users, done_job):
        reasons = [{"code": "finder_damaged", "text": "The top-left finder pattern (the square) is damaged."}]
        done_job.candidates.filter(rank=1).update(scan_details={"reasons": []})
        done_job.candidates.filter(rank=4).update(scan_details={"reasons": reasons})
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert "Scans reliably." in html
        assert "May not scan: the top-left finder pattern (the square) is damaged." in html

    def test_it_shows_a_halftone_jobs_picture_and_each_candidates_fidelity(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner, count=2, status="done", engine="halftone",
                                  init_image=solid_png((200, 30, 40), 128))
        job.candidates.update(variant="centre 0.36, dots, colour, margin 40", fidelity_ssim=0.8123, color_error=1.24,
                              aesthetic_score=None)
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert re.search(rf'<img[^>]*src="{re.escape(job.init_image.url)}"[^>]*data-picture', html)
        assert html.count("centre 0.36, dots, colour, margin 40") == 2
        assert html.count("<dd data-fidelity>0.81</dd>") == 2 and html.count("<dd data-color-error>1.2</dd>") == 2
        assert "Aesthetic" not in html and "the most faithful to the picture" in html
        assert "Guidance" not in html  # diffusion settings mean nothing here
        assert "data-logo" not in html

    def test_it_shows_a_halftone_jobs_logo(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner, count=1, status="done", engine="halftone",
                                  init_image=solid_png((200, 30, 40), 128), logo=solid_png((20, 60, 200), 64))
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert re.search(rf'<img[^>]*src="{re.escape(job.logo.url)}"[^>]*data-logo', html)
        assert "the code carries the most spare data it can, so phones still read it with the middle covered" in html
        assert "error correction" not in html

    def test_it_shows_no_fidelity_or_picture_for_diffusion(self, team_users, done_job):
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert "data-fidelity" not in html and "data-color-error" not in html and "data-variant" not in html
        assert "data-picture" not in html and "Aesthetic" in html and "Guidance" in html

    def test_it_polls_while_the_job_runs(self, team_users, leased):
        job = leased(job_with_candidates(team_users.team, team_users.owner, status="running", stage="generating",
                                         progress=0.42))
        html = logged_in(team_users.teammate).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert f'data-status-url="/generate/jobs/{job.pk}/status.json"' in html
        assert "Drawing the candidates" in html and "42%" in html
        assert f'action="/generate/jobs/{job.pk}/cancel/"' in html and "csrfmiddlewaretoken" in html
        assert "qart/generate.js" in html

    def test_it_names_a_deleted_starter_plainly(self, team_users, done_job):
        done_job.owner.delete()  # the job stays with the team (owner: SET_NULL)
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert "asked for by a former member" in html

    def test_it_shows_the_pages_while_the_image_storage_is_away(self, team_users, unreachable_media):
        # The pages only link the images (/media/ then answers "Image unavailable"): no page fails for want of one.
        job = job_with_candidates(team_users.team, team_users.owner, status="done", progress=1.0, scannable=True)
        candidate = job.candidates.create(index=0, seed=1, image=f"generations/{job.pk}/candidate-00-seed1.png",
                                          rank=1, scan_probability=0.9, verdict="pass")
        client = logged_in(team_users.owner)
        for url in (f"/generate/jobs/{job.pk}/", "/generate/jobs/", "/generate/"):
            response = client.get(url)
            assert response.status_code == 200, url
        assert f'src="/media/{candidate.image.name}"' in client.get(f"/generate/jobs/{job.pk}/").content.decode()
        assert client.get(candidate.image.url).status_code == 503

    def test_it_shows_a_failure_plainly(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner, status="failed", error="The weights are not here.")
        html = logged_in(team_users.owner).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert "It failed." in html and "The weights are not here." in html

    def test_past_the_selects_limit_each_card_searches_and_the_placements_are_not_read(self, team_users, done_job):
        # Past the limit every placement was read (5,000 rows) and listed once in a datalist: 263 KB of the page.
        from django.db.models.signals import post_init

        from generator import placement_picker

        campaign = many_placements(team_users.team, placement_picker.SELECT_MAX)
        client = logged_in(team_users.teammate)
        html = client.get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert html.count('<select name="placement"') == 6
        assert html.count('">Poster ') == 6 * placement_picker.SELECT_MAX
        # Each card's field is named by its candidate: six fields all called "Placement" read alike to a screen reader.
        assert {f">Placement for candidate #{rank}</label>" in html for rank in range(1, 7)} == {True}
        assert "data-placement-search" not in html and "placement-search.js" not in html
        Placement.objects.bulk_create(Placement(campaign=campaign, name=f"Flyer {n}", slug=f"flyer{n:04d}")
                                      for n in range(800))
        read: list[Placement] = []
        post_init.connect(lambda sender, instance, **kwargs: read.append(instance), sender=Placement, weak=False,
                          dispatch_uid="placements-read")
        try:
            html = client.get(f"/generate/jobs/{done_job.pk}/").content.decode()
        finally:
            post_init.disconnect(sender=Placement, dispatch_uid="placements-read")
        assert read == []  # counted, not read
        assert len(html.encode()) < 30_000, len(html.encode())  # 61 KB before, with 1,000 placements
        assert "<datalist" not in html and "<select name=\"placement\"" not in html and "Flyer" not in html
        cards = done_job.candidates.all()
        for candidate in cards:  # each card its own search, of the job's team, ids of its own
            assert re.search(
                rf'<div class="placement-search" data-placement-search="/generate/placements.json" '
                rf'data-placement-team="{team_users.team.pk}">\s*<label class="visually-hidden" '
                rf'for="use-{candidate.pk}">Placement for candidate #{candidate.rank}</label>\s*'
                rf'<input type="text" name="placement_name" '
                rf'id="use-{candidate.pk}" required', html)
            assert f'id="use-{candidate.pk}-matches" role="listbox"' in html
            assert f'data-placement-matches="use-{candidate.pk}-match-"' in html
        assert html.count('<input type="hidden" name="placement" value="">') == len(cards)
        assert html.count("placement-search.js") == 1

    def test_it_answers_404_to_another_team(self, team_users, done_job):
        client = logged_in(team_users.outsider)
        candidate = done_job.candidates.first()
        for url in (f"/generate/jobs/{done_job.pk}/", f"/generate/jobs/{done_job.pk}/status.json",
                    f"/generate/jobs/{done_job.pk}/code.svg", f"/generate/candidates/{candidate.pk}/download.png"):
            assert client.get(url).status_code == 404, url
        for url in (f"/generate/jobs/{done_job.pk}/cancel/", f"/generate/candidates/{candidate.pk}/use/"):
            assert client.post(url).status_code == 404, url

    def test_it_requires_login(self, client, done_job, settings):
        response = client.get(f"/generate/jobs/{done_job.pk}/status.json")
        assert response.status_code == 302 and response["Location"].startswith(settings.LOGIN_URL)


@pytest.fixture
def leased():
    """Give a running job's worker a lease renewed `ago` seconds ago (as a GenerationWorker renews it)."""
    connection = django_rq.get_connection(jobs.QUEUE)
    held = []

    def lease(job: GenerationJob, ago: float = 0) -> GenerationJob:
        held.extend(prefix + jobs.rq_job_id(job.pk) for prefix in (leases.LEASE_PREFIX, leases.HEARD_PREFIX))
        leases.hold(connection, jobs.rq_job_id(job.pk), "gpu-worker-1", ttl=round(leases.LEASE_TTL - ago))
        return job

    yield lease
    if held:
        connection.delete(*held)


class TestStatus:
    def test_it_says_when_the_running_jobs_worker_went_quiet(self, team_users, leased, monkeypatch):
        from generator import engine_status

        monkeypatch.setattr(engine_status, "live_workers",
                            lambda: [engine_status.WorkerReport("gpu-worker-2", "", "ready")])
        job = leased(job_with_candidates(team_users.team, team_users.owner, status="running", stage="generating",
                                         progress=0.4, started=timezone.now() - timedelta(seconds=100)))
        client = logged_in(team_users.viewer)
        data = client.get(f"/generate/jobs/{job.pk}/status.json").json()
        assert data["stage_label"] == "Drawing the candidates" and data["worker_silent"] < 5 and data["eta"] > 0
        # The lease renewed 70 s ago again before each request: the silence is the lease's age when the page asks, so
        # a loaded machine's slow request (the job page's) made the next one's "71 s" (the suite failed once).
        data = client.get(f"/generate/jobs/{leased(job, ago=70).pk}/status.json").json()
        assert 69 <= data["worker_silent"] <= 72 and data["eta"] is None  # no time left measured from a quiet worker
        assert re.fullmatch(r"The worker has not answered for 7[01] s: if it stopped, the job is re-queued "
                            r"automatically within a few minutes", data["stage_label"])
        assert "re-queued automatically" in client.get(f"/generate/jobs/{leased(job, ago=70).pk}/").content.decode()
        monkeypatch.setattr(engine_status, "live_workers", lambda: [])  # re-queueing is a worker's: none runs
        assert re.fullmatch(r"The worker has not answered for 7[01] s, and no other worker is running: the job is "
                            r"re-queued once one starts",
                            client.get(f"/generate/jobs/{leased(job, ago=70).pk}/status.json").json()["stage_label"])
        django_rq.get_connection(jobs.QUEUE).delete(leases.LEASE_PREFIX + jobs.rq_job_id(job.pk),
                                                    leases.HEARD_PREFIX + jobs.rq_job_id(job.pk))
        data = client.get(f"/generate/jobs/{job.pk}/status.json").json()  # Redis restarted: nothing claimed
        assert data["worker_silent"] is None and data["stage_label"] == "Drawing the candidates"

    def test_it_does_not_count_the_quiet_worker_among_those_that_re_queue(self, team_users, leased, monkeypatch):
        # A killed worker's report outlives its silence: the page promised a re-queue within minutes, and no worker
        # ran to do it (a fault drill).
        from generator import engine_status

        monkeypatch.setattr(engine_status, "live_workers",
                            lambda: [engine_status.WorkerReport("gpu-worker-1", "", "ready")])  # the lease's holder
        job = leased(job_with_candidates(team_users.team, team_users.owner, status="running", stage="generating",
                                         progress=0.4, started=timezone.now() - timedelta(seconds=100)), ago=70)
        data = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/status.json").json()
        assert re.fullmatch(r"The worker has not answered for 7[01] s, and no other worker is running: the job is "
                            r"re-queued once one starts", data["stage_label"])  # 71 s where the request was slow

    def test_it_returns_only_the_jobs_own_fields(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner, status="scoring", stage="scoring", progress=0.85)
        data = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/status.json").json()
        assert set(data) == {"id", "status", "status_label", "stage", "stage_label", "progress", "queue_position",
                             "queue_words", "worker_silent", "finished", "scannable", "result_message", "error",
                             "elapsed", "eta", "seconds"}
        assert (data["id"], data["status"], data["progress"], data["finished"]) == (job.pk, "scoring", 0.85, False)
        assert data["stage_label"] == "Checking that they scan" and data["queue_position"] is None

    def test_a_waiting_job_says_how_long_the_job_running_now_has_left(self, team_users, monkeypatch, now):
        # A quick halftone job queued behind a twenty-minute diffusion job on a CPU worker said only "next in line".
        waiting = job_with_candidates(team_users.team, team_users.owner, status="queued")
        position = {waiting.pk: 1}
        monkeypatch.setattr(jobs, "queue_position", lambda job: position.get(job.pk))
        client = logged_in(team_users.owner)
        assert client.get(f"/generate/jobs/{waiting.pk}/status.json").json()["queue_words"] == "· next in line"
        # Another team's job, a quarter done after 60 s: 180 s left.
        job_with_candidates(team_users.other_team, team_users.outsider, status="running", progress=0.25,
                            started=now - timedelta(seconds=60))
        data = client.get(f"/generate/jobs/{waiting.pk}/status.json").json()
        assert data["queue_words"] == "· next in line, after a job with about 3 min 00 s left"
        position[waiting.pk] = 3
        page = client.get(f"/generate/jobs/{waiting.pk}/").content.decode()
        assert "· 3 in the queue; the job running now has about 3 min 00 s left" in page
        # Its worker went quiet: it will not finish in 3 minutes, so nothing is said of it.
        monkeypatch.setattr(reconcile, "worker_silence", lambda job: reconcile.SILENT_AFTER + 1)
        assert client.get(f"/generate/jobs/{waiting.pk}/status.json").json()["queue_words"] == "· 3 in the queue"
        position[waiting.pk] = None  # running, or Redis cannot tell: nothing said
        assert client.get(f"/generate/jobs/{waiting.pk}/status.json").json()["queue_words"] == ""

    @pytest.mark.parametrize(("fields", "label"), [
        ({"status": "queued"}, "Waiting in the queue"),
        ({"status": "queued", "stage": "retrying"}, "Retrying after the worker stopped"),
        ({"status": "queued", "stage": "interrupted"}, "Waiting to run again: its worker was stopped"),
        ({"status": "queued", "stage": "requeued"}, "Waiting to run again: the job queue or its worker had stopped"),
        ({"status": "running", "stage": "generating", "cancel_requested": True}, "Cancelling"),
    ])
    def test_it_says_what_the_job_is_doing(self, team_users, fields, label, monkeypatch):
        monkeypatch.setattr(reconcile, "lost", lambda job: False)  # in Redis's queue
        job = job_with_candidates(team_users.team, team_users.owner, **fields)
        assert logged_in(team_users.owner).get(f"/generate/jobs/{job.pk}/status.json").json()["stage_label"] == label

    def test_it_says_what_becomes_of_a_waiting_job_redis_lost(self, team_users, monkeypatch):
        # It said "Waiting in the queue" with no place for the reconciler's grace, in no queue at all (a fault drill).
        from generator import engine_status

        client = logged_in(team_users.viewer)
        connection = live_queue(jobs.QUEUE).connection  # `lost` asks the real Redis; skipped without one
        # An RQ id of its own: the pk-based one ("qart-generation-1") is every test database's first job's, and a
        # record left under it in the shared Redis (another test's queueing, `make run`'s worker) made this job
        # look queued, failing the test by what Redis held.
        rq_id = f"qart-generation-test-{uuid.uuid4().hex[:12]}"
        job = job_with_candidates(team_users.team, team_users.owner, status="queued", rq_job_id=rq_id)
        connection.hset(Job.key_for(jobs.rq_job_id(job.pk)), "status", "queued")  # such a leftover, not this job's

        def said() -> str:
            return client.get(f"/generate/jobs/{job.pk}/status.json").json()["stage_label"]

        monkeypatch.setattr(engine_status, "live_workers",
                            lambda: [engine_status.WorkerReport("gpu-worker-2", "", "ready")])
        assert said() == ("The job queue lost this job (Redis restarted or was emptied): it is queued again within a "
                          "few minutes")
        monkeypatch.setattr(engine_status, "live_workers", lambda: [])  # the reconciler is a worker's upkeep
        assert said().endswith("it is queued again once a worker starts")
        GenerationJob.objects.filter(pk=job.pk).update(stage=reconcile.REQUEUED)
        assert said() == ("The job queue lost this job twice (Redis restarted or was emptied); it had been re-queued "
                          "once. It is ended as failed once a worker starts.")
        connection.set(leases.LEASE_PREFIX + rq_id, "gpu-worker-1", ex=60)  # a worker took it
        try:
            assert said() == views.STAGES[reconcile.REQUEUED]
        finally:
            connection.delete(leases.LEASE_PREFIX + rq_id, Job.key_for(jobs.rq_job_id(job.pk)))

    def test_it_is_never_cached(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner)
        response = logged_in(team_users.owner).get(f"/generate/jobs/{job.pk}/status.json")
        assert "no-cache" in response["Cache-Control"]


class TestDownloads:
    @pytest.mark.parametrize("size", [1024, 2048, 4096])
    def test_it_serves_the_png_at_print_sizes(self, team_users, media_storage, done_job, size):
        candidate = done_job.candidates.get(rank=1)
        response = logged_in(team_users.viewer).get(f"/generate/candidates/{candidate.pk}/download.png?size={size}")
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert response["Content-Disposition"].startswith("attachment;")
        image = Image.open(io.BytesIO(response.content))
        assert image.format == "PNG" and image.size == (size, size)
        assert round(image.info["dpi"][0]) == 300

    def test_its_png_answers_304_to_its_etag_and_one_range(self, team_users, media_storage, done_job):
        # The browser's copy is used again; a download cut off part-way resumes.
        url = f"/generate/candidates/{done_job.candidates.get(rank=1).pk}/download.png?size=1024"
        client = logged_in(team_users.viewer)
        first = client.get(url)
        data, etag = first.content, first["ETag"]
        assert first["Accept-Ranges"] == "bytes" and first["Cache-Control"] == "private"
        assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
        assert client.get(url.replace("1024", "2048"), HTTP_IF_NONE_MATCH=etag).status_code == 200  # another file
        rest = client.get(url, HTTP_RANGE="bytes=100-", HTTP_IF_RANGE=etag)
        assert rest.status_code == 206 and rest.content == data[100:]
        assert rest["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
        head = client.head(url)
        assert head.status_code == 200 and head["ETag"] == etag and head["Content-Length"] == str(len(data))
        outsider = logged_in(team_users.outsider)
        assert outsider.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 404
        assert outsider.get(url, HTTP_RANGE="bytes=0-9").status_code == 404

    def test_it_says_the_image_storage_is_unavailable_instead_of_failing(self, team_users, unreachable_media):
        candidate = job_with_candidates(team_users.team, team_users.owner).candidates.create(
            index=0, seed=1, image="generations/1/candidate-00-seed1.png", rank=1, scan_probability=0.9,
            verdict="pass")
        response = logged_in(team_users.owner).get(f"/generate/candidates/{candidate.pk}/download.png?size=1024")
        assert response.status_code == 503 and response["Retry-After"] == "60"
        assert response.content.decode() == ("The image storage is unavailable right now; try the download again in "
                                             "a minute.")

    # "²": int() refuses it; "２０４８" (full width) and "١٠٢٤" (Arabic-Indic): int() read them as 2048 and 1024
    @pytest.mark.parametrize("size", ["500", "8192", "big", "-1024", "%C2%B2", "9" * 5000, "２０４８", "١٠٢٤"])
    def test_it_refuses_other_sizes_with_a_message(self, team_users, done_job, size):
        candidate = done_job.candidates.get(rank=1)
        response = logged_in(team_users.owner).get(f"/generate/candidates/{candidate.pk}/download.png?size={size}")
        assert response.status_code == 400
        assert "Download sizes are 1024, 2048, 4096 pixels" in response.content.decode()

    def test_it_serves_the_plain_code_as_svg_one_rect_per_dark_module(self, team_users, done_job):
        response = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/code.svg")
        assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
        assert response["Content-Disposition"] == f'attachment; filename="qart-{done_job.pk}-code.svg"'
        svg = response.content.decode()
        code = qr.encode(CONTENT, ecc=done_job.ecc)
        assert svg.count("<rect") == int(code.matrix.sum())
        side = code.size + 8  # a four-module quiet zone on each side
        assert f'viewBox="0 0 {side} {side}"' in svg
        assert '<rect x="4" y="4"' in svg  # the top-left finder pattern starts inside the quiet zone


class TestJobList:
    def test_it_lists_the_teams_jobs_with_thumbnails(self, team_users, done_job):
        theirs = job_with_candidates(team_users.other_team, team_users.outsider, count=1)
        response = logged_in(team_users.viewer).get("/generate/jobs/")
        assert response.status_code == 200
        assert [job.pk for job in response.context["jobs"]] == [done_job.pk]
        html = response.content.decode()
        assert done_job.candidates.get(rank=1).image.url in html
        assert f"/generate/jobs/{theirs.pk}/" not in html and "Rival" not in html


    def test_a_halftone_job_without_a_prompt_still_has_a_title(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner, engine="halftone")
        job.prompt.text = ""
        job.prompt.save()
        html = logged_in(team_users.viewer).get("/generate/jobs/").content.decode()
        assert '<span class="job-card-prompt">Your picture, as a code</span>' in html

    def test_it_tells_halftone_jobs_apart_by_number_and_link_or_placement(self, team_users):
        # Every halftone job was titled "Your picture, as a code" and nothing else told them apart.
        placement = placement_of(team_users.team, "Station Poster")
        long_link = "https://shop.example.com/spring/offers/" + "x" * 80
        by_link = job_with_candidates(team_users.team, team_users.owner, engine="halftone", content=long_link)
        for_poster = job_with_candidates(team_users.team, team_users.owner, engine="halftone", placement=placement)
        for job in (by_link, for_poster):
            job.prompt.text = ""
            job.prompt.save()
        html = logged_in(team_users.viewer).get("/generate/jobs/").content.decode()
        cards = {job.pk: html[html.index(f'href="/generate/jobs/{job.pk}/"'):] for job in (by_link, for_poster)}
        cards = {pk: card[:card.index("</a>")] for pk, card in cards.items()}
        assert f"Job {by_link.pk} ·" in cards[by_link.pk] and f"Job {for_poster.pk} ·" in cards[for_poster.pk]
        # Shortened, as on the job page, without its "https://", and broken only after its slashes.
        caption = long_link.removeprefix("https://")[:49].replace("/", "/<wbr>")
        assert f'<span class="mono">{caption}…</span>' in cards[by_link.pk]
        assert long_link not in html
        assert "for Acme spring: Station Poster" in cards[for_poster.pk] and CONTENT not in cards[for_poster.pk]

    def test_it_hides_sweep_jobs_behind_a_link(self, team_users, done_job):
        swept = job_with_candidates(team_users.team, team_users.owner, count=1)
        run = EvalRun.objects.create(name="spring sweep", team=team_users.team)
        EvalSample.objects.create(run=run, prompt="p", content=CONTENT, config_key="a", job=swept)
        client = logged_in(team_users.teammate)
        response = client.get("/generate/jobs/")
        assert [job.pk for job in response.context["jobs"]] == [done_job.pk]
        assert 'href="?sweep=1"' in response.content.decode() and "Show sweep jobs (1)" in response.content.decode()
        shown = client.get("/generate/jobs/?sweep=1")
        assert sorted(job.pk for job in shown.context["jobs"]) == sorted([done_job.pk, swept.pk])
        assert "Hide sweep jobs" in shown.content.decode() and ">Sweep</span>" in shown.content.decode()

    def test_it_offers_no_sweep_link_without_sweeps(self, team_users, done_job):
        theirs = job_with_candidates(team_users.other_team, team_users.outsider)
        run = EvalRun.objects.create(name="rival sweep", team=team_users.other_team)
        EvalSample.objects.create(run=run, prompt="p", content=CONTENT, config_key="a", job=theirs)
        html = logged_in(team_users.owner).get("/generate/jobs/").content.decode()
        assert "sweep=1" not in html  # another team's sweep is not counted


def test_it_keeps_the_pages_within_a_phone_screen():
    # No fixed width wider than a small phone (360 px); grids shrink with minmax(0, …) or auto-fill.
    css = (ROOT / "static" / "qart" / "generate.css").read_text()
    for match in re.finditer(r"(?<![-\w])(?:width|min-width|flex-basis|minmax\()\s*:?\s*([\d.]+)(px|rem)", css):
        pixels = float(match[1]) * (16 if match[2] == "rem" else 1)
        assert pixels <= 360, match[0]


def test_the_page_says_the_queue_refuses_the_sites_password_where_only_to_superusers(team_users, monkeypatch,
                                                                                      password_redis):
    # It said "cannot be reached right now": a marketer waited for a password only whoever runs the site mends
    from redis import Redis

    from tests.conftest import staff

    refusing = Redis.from_url(password_redis.url_with("wrong-password"))
    monkeypatch.setattr("generator.engine_status.django_rq.get_connection", lambda name: refusing)
    where = f"127.0.0.1:{password_redis.port}"
    marketer = logged_in(team_users.owner).get("/generate/").content.decode()
    assert "the job queue (Redis) refuses the site&#x27;s password. Waiting will not mend it" in marketer
    assert "cannot be reached" not in marketer and where not in marketer
    # A team's staff are its own people, not the site's: no address
    team_staff = logged_in(staff(team_users.teammate)).get("/generate/").content.decode()
    assert "refuses the site&#x27;s password" in team_staff and where not in team_staff
    team_users.teammate.is_superuser = True
    team_users.teammate.save(update_fields=["is_superuser"])
    operator = logged_in(team_users.teammate).get("/generate/").content.decode()
    assert f"Redis at {where}/0 refused the password" in operator and "REDIS_URL carries the password" in operator
    assert "wrong-password" not in operator and password_redis.password not in operator


class TestHalftoneOnThePage:
    @pytest.fixture(autouse=True)
    def _no_weights(self, monkeypatch):
        monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: False)

    def test_it_starts_on_the_halftone_engine_and_says_why(self, team_users):
        page = logged_in(team_users.owner).get("/generate/").content.decode()
        assert 'enctype="multipart/form-data"' in page and "data-engine-note" in page
        assert "No worker here has diffusion model weights" in page and "data-engine-status" in page
        assert re.search(r'<input[^>]*name="engine"[^>]*value="halftone"[^>]*checked', page)

    def test_it_offers_only_the_teams_earlier_codes(self, team_users):
        ours = job_with_candidates(team_users.team, team_users.owner, count=1).candidates.get()
        theirs = job_with_candidates(team_users.other_team, team_users.outsider, count=1).candidates.get()
        page = logged_in(team_users.owner).get("/generate/").content.decode()
        assert f'name="earlier_candidate" value="{ours.pk}"' in page
        assert f'name="earlier_candidate" value="{theirs.pk}"' not in page

    def test_it_offers_a_viewer_nothing_to_pick(self, team_users):
        # A viewer, who cannot generate, was offered the team's earlier codes and prompts (greyed out)
        code = job_with_candidates(team_users.team, team_users.owner, count=1).candidates.get()
        html = logged_in(team_users.viewer).get("/generate/").content.decode()
        assert "Viewers can look but not change things" in html  # the form, disabled, as before
        assert 'name="earlier_candidate"' not in html and f"/media/{code.image.name}" not in html
        assert "data-reuse-prompt" not in html and 'id="gallery-title"' not in html
        assert "lighthouse" not in html  # the prompt's words: not offered either
        html = logged_in(team_users.owner).get("/generate/").content.decode()  # an editor: both pickers
        assert f'name="earlier_candidate" value="{code.pk}"' in html and "data-reuse-prompt" in html

    def test_it_offers_someone_in_two_teams_only_the_codes_of_the_team_they_edit(self, team_users):
        # The outsider owns Rival and views Acme: Acme's codes and prompts were offered, and a job for Rival (the
        # only team they can make one for) then refused Acme's code
        from qartsite.models import Membership

        Membership.objects.create(team=team_users.team, user=team_users.outsider, role="viewer")
        acme = job_with_candidates(team_users.team, team_users.owner, count=1).candidates.get()
        rival = job_with_candidates(team_users.other_team, team_users.outsider, count=1).candidates.get()
        response = logged_in(team_users.outsider).get("/generate/")
        html = response.content.decode()
        assert f'name="earlier_candidate" value="{rival.pk}"' in html
        assert f'name="earlier_candidate" value="{acme.pk}"' not in html
        assert [prompt.team for prompt in response.context["gallery"]] == [team_users.other_team]
        assert "Acme&#x27;s lighthouse" not in html and "Rival&#x27;s lighthouse" in html
        assert not response.context["several_teams"]  # one team offered: its name is not repeated on each card

    def test_it_captions_an_earlier_code_with_what_it_was_made_for_in_one_labelled_group(self, team_users):
        # The caption said "#4", a job's number where "#1" everywhere else is a candidate's rank; then "Job 4", which
        # told a marketer nothing: its placement (else its link) and its day
        ours = job_with_candidates(team_users.team, team_users.owner, count=1).candidates.get()
        placed = job_with_candidates(team_users.team, team_users.owner, count=1)
        placed.placement = placement_of(team_users.team)
        placed.save()
        page = logged_in(team_users.owner).get("/generate/").content.decode()
        cards = dict(re.findall(r'<label class="earlier" title="Job (\d+): [^"]*">(.*?)</label>', page, re.S))
        made = ours.job.created
        link = ours.job.content.removeprefix("https://").replace("/", "/<wbr>")  # a line may break after a "/"
        assert f'value="{ours.pk}"' in cards[str(ours.job_id)]
        # When, to the minute in the team's zone (the house formats): the day and the time each kept whole.
        when = (f'<time datetime="{made.isoformat()}"><span class="nowrap">{made:%-d %b %Y}</span> '
                f'<span class="nowrap">{made:%H:%M}</span></time>')
        placed_when = f'<time datetime="{placed.created.isoformat()}"><span class="nowrap">{placed.created:%-d %b %Y}'
        assert f'<span class="earlier-caption small">{link}<span class="muted"> · {when}</span></span>' in cards[
            str(ours.job_id)]
        assert f'<span class="earlier-caption small">Station Poster<span class="muted"> · {placed_when}' in cards[
            str(placed.pk)]
        assert re.search(r'<fieldset class="field earlier-field">\s*<legend>…or one of your team', page)

    def test_two_earlier_codes_of_one_placement_on_one_day_read_apart(self, team_users):
        # Both read "Flyer 1 · 7 Dec 2026"; and the list said "of this same link" before any placement was chosen.
        team_users.team.time_zone = "Europe/Berlin"
        team_users.team.save()
        placement = placement_of(team_users.team)
        morning = datetime(2026, 12, 7, 8, 5, tzinfo=UTC)
        for job, hour in ((job_with_candidates(team_users.team, team_users.owner, count=1), 8),
                          (job_with_candidates(team_users.team, team_users.owner, count=1), 13)):
            GenerationJob.objects.filter(pk=job.pk).update(placement=placement,
                                                           created=morning.replace(hour=hour))
        page = logged_in(team_users.owner).get("/generate/").content.decode()
        captions = re.findall(r'<span class="earlier-caption small">(.*?)</span></span>', page, re.S)
        assert [re.sub(r"<[^>]+>", "", caption) for caption in captions] == [
            "Station Poster · 7 Dec 2026 14:05", "Station Poster · 7 Dec 2026 09:05"]  # the team's time, newest first
        legend = page.split('<fieldset class="field earlier-field">')[1].split("</legend>")[0]
        assert "this same link" not in legend and "made for the link the new code opens" in legend

    def test_it_captions_an_earlier_code_without_its_leading_scheme_only(self, team_users):
        # The caption cut every "https://" out: "x.io/in?to=https://y.io" showed as "x.io/in?to=y.io".
        job = job_with_candidates(team_users.team, team_users.owner, count=1)
        GenerationJob.objects.filter(pk=job.pk).update(content="HTTPS://x.io/in?to=https://y.io")
        page = logged_in(team_users.owner).get("/generate/").content.decode()
        assert '<span class="earlier-caption small">x.io/<wbr>in?to=https://<wbr>y.io<span class="muted">' in page

    def test_it_creates_a_halftone_job_from_an_upload(self, team_users, media_storage, enqueued):
        response = logged_in(team_users.teammate).post("/generate/", halftone_post(team_users.team))
        job = GenerationJob.objects.get()
        assert response.status_code == 302 and enqueued == [job]
        assert job.engine == "halftone" and job.init_image.name.endswith(".png")
        with job.init_image.open("rb") as stored:  # re-encoded, in the storage the workers read
            assert Image.open(stored).format == "PNG"
        assert logged_in(team_users.viewer).get(job.init_image.url).status_code == 200

    def test_it_says_in_one_message_that_the_picture_could_not_be_stored(self, team_users, enqueued,
                                                                         unreachable_media, caplog):
        response = logged_in(team_users.teammate).post("/generate/", halftone_post(team_users.team))

        assert response.status_code == 503
        assert response.context["form"].errors == {"picture": [uploads.NOT_STORED]}
        # Said at the top, where focus starts, and at the picture: nowhere else.
        assert response.content.decode().count("The picture could not be stored") == 2
        assert not GenerationJob.objects.exists() and not Prompt.objects.exists() and enqueued == []
        # The log: one line that says why, no traceback (an outage, not a bug)
        [record] = [r for r in caplog.records if "picture could not be stored" in r.getMessage()]
        assert "Could not connect to the endpoint URL" in record.getMessage() and record.exc_info is None

    def test_it_says_an_earlier_candidate_cannot_be_read_while_the_storage_is_away(self, team_users, enqueued,
                                                                                   unreachable_media):
        candidate = job_with_candidates(team_users.team, team_users.owner).candidates.create(
            index=0, seed=1, image="generations/1/candidate-00-seed1.png", rank=1, scan_probability=0.9,
            verdict="pass")
        post = {**halftone_post(team_users.team), "earlier_candidate": candidate.pk}
        del post["picture"]

        response = logged_in(team_users.teammate).post("/generate/", post)

        assert response.status_code == 400 and enqueued == []
        assert "the image storage is unavailable" in response.context["form"].errors["earlier_candidate"][0]

    def test_it_shows_the_missing_picture_on_the_form(self, team_users, enqueued):
        response = logged_in(team_users.owner).post(
            "/generate/", {**VALID, "team": team_users.team.pk, "engine": "halftone"}
        )
        assert response.status_code == 400 and "draws the code into a picture" in response.content.decode()
        assert not GenerationJob.objects.exists() and enqueued == []


class TestRunningJob:

    def test_it_measures_the_elapsed_time_and_the_time_left(self, team_users, now):
        from datetime import timedelta

        job = job_with_candidates(team_users.team, team_users.owner, status="running", stage="generating",
                                  progress=0.25, started=now - timedelta(seconds=100))
        data = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/status.json").json()
        assert (data["elapsed"], data["eta"]) == (100.0, 300.0)
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert "1 min 40 s elapsed" in html and "about 5 min 00 s left" in html

    def test_the_page_first_draws_the_times_as_its_script_redraws_them(self, team_users, now):
        # "about 1361 s left · 93 s elapsed" until generate.js wrote "22 min 41 s".
        from datetime import timedelta

        job = job_with_candidates(team_users.team, team_users.owner, status="running", stage="generating",
                                  progress=0.0625, started=now - timedelta(seconds=93))
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert "· 1 min 33 s elapsed" in html and "· about 23 min 15 s left" in html

    @pytest.mark.parametrize(("fields", "elapsed"), [
        ({"status": "queued"}, None),  # not started: nothing to measure
        ({"status": "running", "progress": 0.01}, 20.0),  # too little done to say how long the rest takes
        ({"status": "done", "progress": 1.0}, None),
    ])
    def test_it_gives_no_eta_it_cannot_measure(self, team_users, now, fields, elapsed):
        from datetime import timedelta

        started = now - timedelta(seconds=20) if fields["status"] != "queued" else None
        job = job_with_candidates(team_users.team, team_users.owner, started=started, **fields)
        data = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/status.json").json()
        assert (data["elapsed"], data["eta"]) == (elapsed, None)

    def test_it_says_finishing_not_running_once_every_step_is_done(self, team_users, now, leased):
        job = leased(job_with_candidates(team_users.team, team_users.owner, status="running", stage="done",
                                         progress=1.0, started=now))
        data = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/status.json").json()
        assert (data["status_label"], data["stage_label"]) == ("Finishing", "Storing the candidates")
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert re.search(r"data-status>Finishing<", html) and "Running" not in html
        listed = logged_in(team_users.viewer).get("/generate/jobs/").content.decode()
        assert ">Finishing</span>" in listed and ">Running</span>" not in listed


class TestResultBanner:
    def test_it_warns_rather_than_congratulates_on_noise(self, team_users, done_job):
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert re.search(r'class="result result-warn"[^>]*data-noise', html) and "result-ok" not in html
        assert "These are not pictures" in html

    def test_it_congratulates_on_real_pictures_that_scan(self, team_users, done_job):
        done_job.result_message, done_job.tiny_model = "3 of 6 candidates scan.", False
        done_job.save()
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert 'class="result result-ok"' in html and "data-noise" not in html

    def test_it_reads_the_workers_flag_not_the_message(self, team_users, done_job):
        # The note is the worker's to word: the page once decided by finding "images are noise" in the message.
        GenerationJob.objects.filter(pk=done_job.pk).update(result_message="3 of 6 candidates scan.")
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert re.search(r'class="result result-warn"[^>]*data-noise', html)
        GenerationJob.objects.filter(pk=done_job.pk).update(
            result_message="3 of 6 candidates scan. (tiny model: images are noise)", tiny_model=False)
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert "data-noise" not in html and 'class="result result-ok"' in html

    def test_it_warns_when_the_picture_fought_the_code(self, team_users, done_job):
        # Every code scanned, but kept 3 % of the picture: the message was shown in the green success box.
        from generator.core.engines import halftone

        done_job.engine = "halftone"
        done_job.result_message = (f"8 of 8 variants scan. {halftone.PICTURE_FIGHTS}: the code that scans and keeps "
                                   "the most of it has a likeness of 3 % to your picture; below 40 % the picture is "
                                   "hard to make out.")
        done_job.picture_fights, done_job.tiny_model = True, False
        done_job.save()
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert 'class="result result-warn" role="status"' in html and "result-ok" not in html

    @pytest.mark.parametrize(("link", "warned"), [
        ("http://127.0.0.1:8140/r/AbC123", True), ("http://192.168.1.20/r/AbC123", True), (CONTENT, False),
    ])
    def test_it_warns_when_phones_cannot_open_the_short_link(self, team_users, done_job, link, warned):
        done_job.placement = placement_of(team_users.team)
        done_job.content = link
        done_job.save()
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert ("data-unreachable" in html) is warned


class TestPlainScores:
    def test_it_gives_a_halftone_candidates_likeness_in_percent_with_the_numbers_behind(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner, count=1, status="done", engine="halftone")
        job.candidates.update(fidelity_ssim=0.7, color_error=0.0, aesthetic_score=None, variant="centre 0.36, dots")
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert "Likeness to your picture: 70 %" in html and "Looks:" not in html
        numbers = html[html.index("<details class=\"numbers\""):html.index("</details>")]
        assert "data-fidelity" in numbers and "data-color-error" in numbers and "centre 0.36, dots" in numbers

    def test_the_likeness_shown_is_the_one_candidates_are_ordered_by(self, team_users):
        # A grey copy of a colour picture keeps its luminance (SSIM 0.67) but not its colours: ranked below a colour
        # candidate of SSIM 0.61, so its card must not show the higher figure.
        job = job_with_candidates(team_users.team, team_users.owner, count=2, status="done", engine="halftone")
        job.candidates.filter(rank=1).update(fidelity_ssim=0.61, color_error=2.55, aesthetic_score=None)
        job.candidates.filter(rank=2).update(fidelity_ssim=0.67, color_error=56.1, aesthetic_score=None)
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert html.index("Likeness to your picture: 60 %") < html.index("Likeness to your picture: 45 %")

    def test_it_says_when_the_job_was_asked_for_as_a_time_in_the_teams_zone(self, team_users, done_job):
        # "started by ann now" stayed on the page while the job ran, and a queued job had not started.
        from datetime import datetime
        from zoneinfo import ZoneInfo

        team_users.team.time_zone = "Asia/Tokyo"
        team_users.team.save()
        created = datetime(2026, 3, 1, 23, 30, tzinfo=ZoneInfo("UTC"))
        GenerationJob.objects.filter(pk=done_job.pk).update(created=created)
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert re.search(r'asked for by \w+ on\s+<time datetime="2026-03-01T23:30:00\+00:00">2 Mar 2026 08:30</time>',
                         html), html

    def test_it_never_calls_a_misread_reliable(self, team_users, done_job):
        done_job.candidates.filter(rank=1).update(misread=True)
        response = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/")
        assert response.context["top"][0].reliability == "poor"

    def test_it_numbers_candidates_by_rank_everywhere(self, team_users, done_job):
        # Rank, not the 0-based index: #1 on the card, in the alt text, the download's name and the messages.
        best = done_job.candidates.get(rank=1)
        client = logged_in(team_users.viewer)
        html = client.get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert '<span class="rank">#1</span>' in html and 'alt="Candidate #1 (seed' in html
        download = client.get(f"/generate/candidates/{best.pk}/download.png?size=1024")
        assert "rank1" in download["Content-Disposition"]
        for_placement(done_job, placement_of(team_users.team), own=True)
        response = logged_in(team_users.owner).post(f"/generate/candidates/{best.pk}/use/", follow=True)
        assert "Candidate #1 is now the artwork" in response.content.decode()


class TestCandidateCard:
    def test_its_artwork_line_links_to_the_placement_and_its_print_files(self, team_users, done_job):
        poster = placement_of(team_users.team, "Poster A")
        poster.artwork = done_job.candidates.get(rank=1)
        poster.save()
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        assert f'✓ Artwork of <a href="/campaigns/placements/{poster.pk}/">Poster A</a>' in html

    def test_it_offers_print_files_only_for_codes_that_pass(self, team_users, done_job):
        html = logged_in(team_users.viewer).get(f"/generate/jobs/{done_job.pk}/").content.decode()
        cards = {c.verdict: c for c in done_job.candidates.all()}  # ranks 1-3 pass, 4-6 fail

        def card(candidate) -> str:
            start = html.index(f'id="candidate-{candidate.pk}"')
            return html[start:html.index("</article>", start)]

        passing, failing = card(cards["pass"]), card(cards["fail"])
        assert "PNG for print (300 dpi)" in passing and "size=4096" in passing and "data-no-print" not in passing
        assert "PNG for print" not in failing and "download.png" not in failing
        assert "It fails the scan check: do not print it." in failing
        assert f'<a href="{cards["fail"].image.url}" download>Plain PNG' in failing


class TestJobListOrderAndFilters:
    @pytest.fixture
    def three(self, team_users):
        from datetime import timedelta

        from django.utils import timezone

        poster = placement_of(team_users.team, "Poster")
        made = []
        for age, status, placement in ((3, "done", None), (1, "failed", poster), (2, "done", poster)):
            job = job_with_candidates(team_users.team, team_users.owner, status=status, placement=placement)
            GenerationJob.objects.filter(pk=job.pk).update(created=timezone.now() - timedelta(hours=age))
            made.append(job)
        return poster, made

    def test_it_lists_the_newest_first(self, team_users, three):
        _, (oldest, newest, middle) = three
        response = logged_in(team_users.viewer).get("/generate/jobs/")
        assert [job.pk for job in response.context["jobs"]] == [newest.pk, middle.pk, oldest.pk]
        assert "newest first" in response.content.decode()

    def test_it_filters_by_placement_and_status(self, team_users, three):
        poster, (oldest, newest, middle) = three
        client = logged_in(team_users.viewer)
        by_placement = client.get(f"/generate/jobs/?placement={poster.pk}")
        assert [job.pk for job in by_placement.context["jobs"]] == [newest.pk, middle.pk]
        both = client.get(f"/generate/jobs/?placement={poster.pk}&status=done")
        assert [job.pk for job in both.context["jobs"]] == [middle.pk]
        assert f'<option value="{poster.pk}" selected>' in both.content.decode()
        none = client.get("/generate/jobs/?status=cancelled")
        assert none.context["jobs"] == [] and "No jobs match these filters." in none.content.decode()

    @pytest.mark.parametrize("query", ["status=exploded", "placement=abc", "placement=999999", "placement=theirs"])
    def test_it_refuses_an_unknown_filter_with_one_message(self, team_users, three, query):
        if query == "placement=theirs":
            theirs = placement_of(team_users.other_team, "Rival poster")
            job_with_candidates(team_users.other_team, team_users.outsider, placement=theirs)
            query = f"placement={theirs.pk}"
        response = logged_in(team_users.viewer).get(f"/generate/jobs/?{query}")
        assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
        # The list page with the site's header, one message, and the filters reset: not a bare text answer.
        html = response.content.decode()
        assert "id=\"main-nav\"" in html and "<h1>Generation jobs</h1>" in html
        assert len(re.findall(r'role="alert"', html)) == 1 and "Unknown" in html
        assert "selected>" not in html and response.context["chosen"] == {"status": "", "placement": ""}
        assert len(response.context["jobs"]) == 3  # every job, as without the filter
        assert "Rival" not in html

    def test_it_shows_older_jobs_a_page_at_a_time(self, team_users, three, monkeypatch):
        # The list showed the newest 60 and nothing older: a year's 2,000 jobs were out of reach.
        monkeypatch.setattr(views, "JOB_LIST_SIZE", 2)
        _, (oldest, newest, middle) = three
        client = logged_in(team_users.viewer)
        first = client.get("/generate/jobs/")
        assert [job.pk for job in first.context["jobs"]] == [newest.pk, middle.pk]
        assert "Jobs 1–2 of 3" in first.content.decode() and 'href="?page=2"' in first.content.decode()
        second = client.get("/generate/jobs/?page=2")
        assert [job.pk for job in second.context["jobs"]] == [oldest.pk]
        assert 'href="?page=1"' in second.content.decode()
        for unreadable in ("x", "-1", "２"):  # the first page, as the campaign page reads its page numbers
            assert client.get(f"/generate/jobs/?page={unreadable}").context["jobs"] == first.context["jobs"]
        assert client.get("/generate/jobs/?page=99").context["jobs"] == second.context["jobs"]

    def test_its_pages_keep_the_filters(self, team_users, three, monkeypatch):
        monkeypatch.setattr(views, "JOB_LIST_SIZE", 1)
        poster, (oldest, newest, middle) = three
        response = logged_in(team_users.viewer).get(f"/generate/jobs/?placement={poster.pk}")
        assert [job.pk for job in response.context["jobs"]] == [newest.pk]
        assert f'href="?placement={poster.pk}&amp;page=2"' in response.content.decode()

    def test_it_offers_only_the_teams_placements(self, team_users, three):
        theirs = placement_of(team_users.other_team, "Rival poster")
        job_with_candidates(team_users.other_team, team_users.outsider, placement=theirs)
        html = logged_in(team_users.viewer).get("/generate/jobs/").content.decode()
        assert "Poster" in html and "Rival poster" not in html


class TestEngineFit:
    def test_it_fits_the_subtitle_fields_and_gallery_to_the_engine(self, team_users):
        html = logged_in(team_users.owner).get("/generate/").content.decode()
        assert re.search(r'data-engine-part="halftone">Upload a picture or logo', html)
        assert re.search(r'data-engine-part="diffusion">Describe a picture', html)
        assert re.search(r'<aside class="gallery card"[^>]*data-engine-part="diffusion"', html)
        # Diffusion-only advanced fields are wrapped so halftone hides them; the halftone engine's own are not.
        assert re.search(r'<div data-engine-part="diffusion"><div class="field">\s*<label for="id_guidance_scale"',
                         html)
        assert not re.search(r'data-engine-part="diffusion"><div class="field">\s*<label for="id_size"', html)

    def test_it_estimates_minutes_without_a_gpu_worker_from_the_last_job(self, team_users, monkeypatch):
        monkeypatch.setattr(views.engine_status, "live_workers", lambda: [])
        job_with_candidates(team_users.team, team_users.owner, status="done", total_seconds=336.0,
                            generation_seconds=300.0, scoring_seconds=36.0)
        job_with_candidates(team_users.other_team, team_users.outsider, status="done", total_seconds=7.0,
                            generation_seconds=5.0, scoring_seconds=2.0)  # not theirs
        html = logged_in(team_users.owner).get("/generate/").content.decode()
        assert "No GPU worker is ready: on the CPU this takes several minutes." in html
        assert "The last one here took 5 min 36 s." in html and "7 s" not in html

    def test_the_halftone_estimate_says_about_a_second_a_candidate_and_the_last_job(self, team_users):
        # It said half a second; candidates strengthened to survive phone-like captures take about a second each.
        job_with_candidates(team_users.team, team_users.owner, status="done", total_seconds=12.0,
                            generation_seconds=9.0, scoring_seconds=3.0, engine="halftone")
        html = logged_in(team_users.owner).get("/generate/").content.decode()
        halftone = re.search(r'data-engine-part="halftone">(About[^<]*)</span>', html).group(1)
        assert halftone == ("About a second per candidate on the CPU; you can follow it live. The last one here took "
                            "12 s.")

    def test_the_last_jobs_time_is_its_own_work_without_the_wait_in_the_queue(self, team_users):
        # It said "took 83 s" of a job that waited 71 s in the queue behind others and worked for 12.
        job_with_candidates(team_users.team, team_users.owner, status="done", engine="halftone", queue_seconds=71.0,
                            generation_seconds=9.0, scoring_seconds=3.0, total_seconds=83.0)
        html = logged_in(team_users.owner).get("/generate/").content.decode()
        assert "The last one here took 12 s." in html and "83 s" not in html

    def test_it_promises_under_a_minute_only_with_a_ready_gpu_worker(self, team_users, monkeypatch):
        from generator.engine_status import WorkerReport

        monkeypatch.setattr(views.engine_status, "live_workers",
                            lambda: [WorkerReport(worker="w", host="h", state="ready", device="cuda")])
        html = logged_in(team_users.owner).get("/generate/").content.decode()
        assert "Usually under a minute on the GPU worker" in html and "No GPU worker" not in html

    @pytest.mark.parametrize(("root", "warned"), [("http://127.0.0.1:8140", True), ("https://qart.example", False)])
    def test_it_warns_when_the_short_links_are_unreachable(self, team_users, settings, root, warned):
        settings.SITE_ROOT = root
        placement_of(team_users.team)
        html = logged_in(team_users.owner).get("/generate/").content.decode()
        assert ("data-unreachable" in html) is warned


def halves_png(width: int = 200, height: int = 100) -> ContentFile:
    """Red on the left half, blue on the right: which square was kept shows in its colour."""
    picture = Image.new("RGB", (width, height), (220, 20, 20))
    picture.paste((20, 20, 220), (width // 2, 0, width, height))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="halves.png")


class TestCrop:
    def post(self, team_users, **crop):
        return logged_in(team_users.owner).post(
            "/generate/", {"team": team_users.team.pk, "content": CONTENT, "engine": "halftone",
                           "picture": halves_png(), "look": "balanced", "speed": "fast", "style": "square",
                           "background": "white", **crop})

    @pytest.mark.parametrize(("x", "colour"), [("0", (220, 20, 20)), ("1", (20, 20, 220))])
    def test_it_stores_the_square_the_page_chose(self, team_users, enqueued, x, colour):
        response = self.post(team_users, crop_x=x, crop_y="0.5", crop_zoom="1.5")
        assert response.status_code == 302
        with GenerationJob.objects.get().init_image.open("rb") as stored:
            picture = Image.open(stored).convert("RGB")
        assert picture.size == (67, 67)
        assert picture.getpixel((33, 33)) == colour

    def test_a_square_too_small_to_draw_from_is_refused_before_the_job(self, team_users, enqueued):
        # zoom 2 on a 200x100 picture keeps 50x50: the job took it, then failed on it in the worker
        response = self.post(team_users, crop_x="0", crop_y="0.5", crop_zoom="2")
        assert response.status_code == 400 and not GenerationJob.objects.exists() and enqueued == []
        html = response.content.decode()
        assert "halves.png: the part chosen is 50x50 pixels, too small to draw a code from" in html
        assert 'name="kept_picture"' not in html  # not kept for the next try: it would fail the same way

    @pytest.mark.parametrize("crop", [{"crop_zoom": "9"}, {"crop_x": "1.5"}, {"crop_y": "nan"}, {"crop_x": "left"}])
    def test_it_refuses_a_crop_it_cannot_follow_with_one_message(self, team_users, enqueued, crop):
        response = self.post(team_users, **crop)
        assert response.status_code == 400 and not GenerationJob.objects.exists() and enqueued == []
        assert response.content.decode().count("The crop was not understood") == 2  # the summary and the crop


class TestKeptUploads:
    """A browser cannot refill a file input: a form sent back with an error keeps its picture and logo."""

    def post(self, user, team, **fields):
        data = {"team": team.pk, "content": CONTENT, "engine": "halftone", "look": "balanced", "speed": "fast",
                "style": "square", "background": "white", **fields}
        return logged_in(user).post("/generate/", data)

    @staticmethod
    def token(response, name: str) -> str:
        return re.search(rf'name="{name}" value="([^"]+)"', response.content.decode())[1]

    def test_the_picture_is_kept_as_cropped_and_used_on_the_next_try(self, team_users, enqueued):
        first = self.post(team_users.owner, team_users.team, picture=halves_png(), crop_x="1", crop_y="0.5",
                          crop_zoom="1.5", candidates_per_batch="0", size="99999")
        assert first.status_code == 400 and not GenerationJob.objects.exists()
        assert "Keeping halves.png from your last try" in first.content.decode()
        # The crop sent again with it is not applied twice: the kept picture already is the square chosen.
        second = self.post(team_users.owner, team_users.team, kept_picture=self.token(first, "kept_picture"),
                           crop_x="0", crop_y="0.5", crop_zoom="2")
        assert second.status_code == 302
        with GenerationJob.objects.get().init_image.open("rb") as stored:
            picture = Image.open(stored).convert("RGB")
        assert picture.size == (67, 67) and picture.getpixel((33, 33)) == (20, 20, 220)

    def test_a_new_picture_replaces_the_kept_one(self, team_users, enqueued):
        first = self.post(team_users.owner, team_users.team, picture=halves_png(), candidates_per_batch="0")
        second = self.post(team_users.owner, team_users.team, kept_picture=self.token(first, "kept_picture"),
                           picture=solid_png((9, 200, 9), size=80))
        assert second.status_code == 302
        with GenerationJob.objects.get().init_image.open("rb") as stored:
            assert Image.open(stored).convert("RGB").getpixel((40, 40)) == (9, 200, 9)

    def test_a_refusal_that_cannot_keep_the_files_says_to_choose_them_again(self, team_users, enqueued, monkeypatch):
        # The cache away: the form still goes back as it was typed (a 400, like every form's refusal), and the page
        # says the picture and logo must be chosen again rather than dropping them without a word.
        monkeypatch.setattr(uploads.cache, "set", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("gone")))
        response = self.post(team_users.owner, team_users.team, picture=halves_png(), logo=solid_png((200, 30, 30), 96),
                             prompt="a heron in the reeds", size="99999")
        html = response.content.decode()
        assert response.status_code == 400 and not GenerationJob.objects.exists() and enqueued == []
        assert "Your picture was not kept: choose it again" in html and 'name="kept_picture"' not in html
        assert "Your logo was not kept: choose it again" in html and 'name="kept_logo"' not in html
        assert "a heron in the reeds</textarea>" in html and 'value="99999"' in html
        # Kept, they are not called lost.
        monkeypatch.undo()
        kept = self.post(team_users.owner, team_users.team, picture=halves_png(), size="99999")
        assert kept.status_code == 400 and "Keeping halves.png" in kept.content.decode()
        assert "was not kept" not in kept.content.decode()

    def test_someone_elses_or_a_made_up_token_keeps_nothing(self, team_users, enqueued):
        first = self.post(team_users.owner, team_users.team, picture=halves_png(), candidates_per_batch="0")
        for user, token in ((team_users.teammate, self.token(first, "kept_picture")),
                            (team_users.owner, "x" * 32), (team_users.owner, "<script>")):
            response = self.post(user, team_users.team, kept_picture=token)
            assert response.status_code == 400
            assert response.context["form"].errors["picture"] == [uploads.KEPT_GONE]
        assert not GenerationJob.objects.exists() and enqueued == []

    def test_the_logo_is_kept_too_and_can_be_left_out(self, team_users, enqueued):
        first = self.post(team_users.owner, team_users.team, picture=halves_png(), logo=solid_png((200, 30, 30), 96),
                          candidates_per_batch="0")
        html = first.content.decode()
        assert "Keeping the logo" in html
        picture, logo = self.token(first, "kept_picture"), self.token(first, "kept_logo")
        with_logo = self.post(team_users.owner, team_users.team, kept_picture=picture, kept_logo=logo)
        assert with_logo.status_code == 302 and GenerationJob.objects.get().logo
        without = self.post(team_users.owner, team_users.team, kept_picture=picture, kept_logo=logo,
                            kept_logo_off="on")
        assert without.status_code == 302 and not GenerationJob.objects.latest("pk").logo
