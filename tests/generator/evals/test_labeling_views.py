"""Human scan labeling pages: sessions, the full-screen page, the phone's one-time link, and the alignment page."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from django.test import Client
from PIL import Image

from campaigns import restamps
from campaigns.models import Campaign, Placement
from generator.core.codes import decoders, qr
from generator.evals import sessions
from generator.models import (
    EvalRun,
    EvalSample,
    GenerationJob,
    HumanScanResult,
    LabelingItem,
    LabelingSession,
)
from tests.clients import IPHONE
from tests.conftest import at_once, staff
from tests.generator.factories import art_png, job_of_clean_codes, placement_of

pytestmark = pytest.mark.django_db
CONTENT = "https://qart.example/r/AbC12345"
PIXEL = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/126.0.0.0 Mobile Safari/537.36")
SLACK = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"


def unreadable(job: GenerationJob) -> None:
    """Make the job's candidates art restamp cannot work with: not square, and no control image to find the grid."""
    for candidate in job.candidates.all():
        candidate.image.save("wide.png", art_png(Image.new("RGB", (264, 200), "white")))


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture
def cast(team_users):
    for user in (team_users.owner, team_users.teammate, team_users.viewer, team_users.outsider):
        staff(user)
    return team_users


@pytest.fixture
def session(cast) -> LabelingSession:
    job = job_of_clean_codes(cast.team, cast.owner)
    return sessions.create_session(cast.team, cast.owner, "Friday", job.candidates.all(), 300, seed=0)


def run_page(client: Client, session: LabelingSession, query: str = "") -> tuple[LabelingItem, str]:
    """Open the labeling page, as the labeler's browser does, and start the shown item's clock."""
    response = client.get(f"/evals/labeling/{session.pk}/run/{query}")
    assert response.status_code == 200, response.content[:300]
    item = LabelingItem.objects.get(pk=re.search(r"/items/(\d+)/status", response.content.decode()).group(1))
    assert client.post(f"/evals/labeling/{session.pk}/items/{item.pk}/shown").status_code == 200
    item.refresh_from_db()
    return item, response.content.decode()


def status_of(client: Client, item: LabelingItem) -> dict:
    return client.get(f"/evals/labeling/{item.session_id}/items/{item.pk}/status").json()


class TestSessionList:
    def test_it_creates_a_session_from_job_ids(self, cast):
        job = job_of_clean_codes(cast.team, cast.owner, (0.9, 0.5, 0.1))
        response = logged_in(cast.teammate).post("/evals/labeling/", {
            "name": "Monday", "team": cast.team.pk, "source": "jobs", "jobs": f"#{job.pk}", "display_size_px": 250})
        session = LabelingSession.objects.get(name="Monday")
        assert response.status_code == 302 and response["Location"] == f"/evals/labeling/{session.pk}/run/"
        assert session.created_by == cast.teammate and session.display_size_px == 250
        assert sorted(session.items.values_list("position", flat=True)) == [0, 1, 2]
        assert set(session.candidates.all()) == set(job.candidates.all())

    def test_it_creates_a_session_from_a_sweep(self, cast):
        job = job_of_clean_codes(cast.team, cast.owner, (0.9, 0.5))
        job_of_clean_codes(cast.team, cast.owner, (0.3,))  # not in the sweep
        run = EvalRun.objects.create(name="cs", team=cast.team)
        EvalSample.objects.create(run=run, prompt="p", content=CONTENT, config_key="a", job=job)
        logged_in(cast.teammate).post("/evals/labeling/", {
            "name": "Sweep", "team": cast.team.pk, "source": "sweep", "sweep": run.pk, "display_size_px": 300})
        assert set(LabelingSession.objects.get(name="Sweep").candidates.all()) == set(job.candidates.all())

    def test_it_draws_a_random_sample_of_the_teams_candidates(self, cast):
        job_of_clean_codes(cast.team, cast.owner, (0.9, 0.5, 0.4, 0.1))
        job_of_clean_codes(cast.other_team, cast.outsider, (0.8,))
        logged_in(cast.owner).post("/evals/labeling/", {
            "name": "Random", "team": cast.team.pk, "source": "random", "count": 3, "display_size_px": 300})
        session = LabelingSession.objects.get(name="Random")
        assert session.items.count() == 3
        assert set(session.candidates.values_list("job__team", flat=True)) == {cast.team.pk}

    def test_a_count_out_of_range_gets_its_one_message(self, cast):
        response = logged_in(cast.owner).post("/evals/labeling/", {
            "name": "Big", "team": cast.team.pk, "source": "random", "count": 301, "display_size_px": 300})
        assert response.status_code == 400 and response.context["form"].errors["count"] == [
            "Ensure this value is less than or equal to 300."]  # not also "Say how many candidates to draw."

    def test_it_explains_job_ids_it_cannot_use(self, cast):
        theirs = job_of_clean_codes(cast.other_team, cast.outsider)
        client = logged_in(cast.teammate)
        data = {"name": "x", "team": cast.team.pk, "source": "jobs", "display_size_px": 300}
        html = client.post("/evals/labeling/", {**data, "jobs": str(theirs.pk)}).content.decode()
        assert f"No candidates in Acme for job(s) {theirs.pk}." in html
        html = client.post("/evals/labeling/", {**data, "jobs": "twelve"}).content.decode()
        assert "Give job ids as numbers" in html
        assert not LabelingSession.objects.exists()

    def test_it_lists_only_the_users_teams_sessions(self, cast, session):
        mine = logged_in(cast.viewer).get("/evals/labeling/").content.decode()
        theirs = logged_in(cast.outsider).get("/evals/labeling/").content.decode()
        listed = '<span class="strong">Friday</span>'
        assert listed in mine and listed not in theirs

    def test_it_leads_back_to_the_evals_like_every_breadcrumb(self, cast):
        html = logged_in(cast.viewer).get("/evals/labeling/").content.decode()
        assert '<p class="crumbs"><a href="/evals/">Evals</a> ›</p>' in html

    def test_it_asks_for_the_source_in_a_fieldset_with_a_legend(self, cast):
        html = logged_in(cast.teammate).get("/evals/labeling/").content.decode()
        assert 'for=""' not in html
        assert re.search(r'<fieldset class="field"[^>]*>\s*<legend>Source</legend>', html)

    def test_it_refuses_a_session_for_another_team(self, cast):
        job = job_of_clean_codes(cast.team, cast.owner)
        response = logged_in(cast.outsider).post("/evals/labeling/", {
            "name": "Steal", "team": cast.team.pk, "source": "jobs", "jobs": str(job.pk), "display_size_px": 300})
        assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
        assert not LabelingSession.objects.exists()

    def test_it_lets_viewers_look_but_not_create(self, cast):
        client = logged_in(cast.viewer)
        assert client.get("/evals/labeling/").status_code == 200
        assert client.post("/evals/labeling/", {"name": "x", "team": cast.team.pk, "source": "random",
                                                 "count": 1, "display_size_px": 300}).status_code == 403

    def test_it_is_for_signed_in_staff_only(self, team_users, settings):
        response = Client().get("/evals/labeling/")
        assert response.status_code == 302 and response["Location"].startswith(settings.LOGIN_URL)
        assert logged_in(team_users.owner).get("/evals/labeling/").status_code == 403  # not staff

    def test_it_answers_head_as_get_without_the_page(self, cast):
        # A link checker's HEAD was a 405 where the GET is the page.
        response = logged_in(cast.owner).head("/evals/labeling/")
        assert response.status_code == 200 and response.content == b""


class TestRunPage:
    def test_it_shows_the_code_restamped_with_its_one_time_link(self, cast, media_storage, session):
        client = logged_in(cast.owner)
        item, html = run_page(client, session)
        assert item.position == 0 and item.image and item.shown_at is not None
        link = f"http://testserver/l/{item.token}"
        assert link in html and "1</strong> of 2" in html and 'width: 300px' in html
        assert f'src="/media/{item.image.name}"' in html
        shown = client.get(item.image.url)  # the image the labeler's screen loads, from where it was stored
        gray = np.asarray(Image.open(io.BytesIO(b"".join(shown.streaming_content))).convert("L"))
        assert decoders.read_zxing(gray) == [link]

    def test_two_requests_drawing_one_item_at_once_show_the_same_code(self, cast, media_storage, session):
        # Two tabs (or a double click) drew one item each with its own token and image: a phone scanning the losing
        # tab's code recorded nothing, and its image stayed in the storage for ever.
        from django.core.files.storage import default_storage

        first, second = (LabelingItem.objects.get(session=session, position=0) for _ in range(2))
        assert sessions.render_item(first, "http://testserver")
        assert sessions.render_item(second, "http://testserver")  # drawn meanwhile: it shows the first's
        stored = LabelingItem.objects.get(pk=first.pk)
        assert (second.token, second.image.name) == (first.token, first.image.name) == (stored.token,
                                                                                         stored.image.name)
        assert default_storage.listdir("labeling")[1] == [first.image.name.rsplit("/", 1)[-1]]

    def test_it_says_the_code_is_unavailable_while_the_storage_is_away_and_shows_it_after(self, cast, session,
                                                                                          request, settings):
        client, working = logged_in(cast.owner), settings.STORAGES
        request.getfixturevalue("unreachable_media")

        response = client.get(f"/evals/labeling/{session.pk}/run/")

        page = response.content.decode()
        assert response.status_code == 200 and "Image unavailable" in page and "nothing was recorded" in page
        assert 'data-scannable="false"' in page and 'id="scanned" data-key="s" disabled' in page
        assert not session.items.filter(image="").exclude(shown_at=None).exists()
        assert not session.items.exclude(image="").exists()  # no item lost its chance of a re-rendered code
        settings.STORAGES = working
        item, html = run_page(client, session)
        assert item.image and f"/l/{item.token}" in html

    def test_it_uses_the_configured_site_root(self, cast, session, settings):
        settings.SITE_ROOT = "https://lab.example"
        item, html = run_page(logged_in(cast.owner), session)
        assert f"https://lab.example/l/{item.token}" in html

    def test_it_uses_the_labelers_host_without_a_site_root(self, cast, session, settings):
        # A phone on the same Wi-Fi reaches the LAN address the labeler opened the page on.
        settings.SITE_ROOT, settings.ALLOWED_HOSTS = "", ["192.168.1.20"]
        item, html = run_page(logged_in(cast.owner, HTTP_HOST="192.168.1.20:8000"), session)
        assert f"http://192.168.1.20:8000/l/{item.token}" in html

    def test_it_warns_when_phones_cannot_open_its_links(self, cast, session, settings):
        # On 127.0.0.1 the page waited for ever for a phone that could not open the link.
        warning = "Phones cannot open this code's link"
        settings.SITE_ROOT, settings.ALLOWED_HOSTS = "", ["127.0.0.1", "192.168.1.20"]
        _, html = run_page(logged_in(cast.owner, HTTP_HOST="127.0.0.1:8000"), session)
        assert warning in html and "loopback" in html
        # Nor does the rest of the page contradict it ("... and this page moves on by itself", "Waiting for a phone").
        words = " ".join(html.split())
        assert "moves on by itself" not in words and "Waiting for a phone" not in words
        assert "record what the phone did with the buttons" in words and "Waiting for the buttons" in words
        _, html = run_page(logged_in(cast.owner, HTTP_HOST="192.168.1.20:8000"), session)
        assert warning not in html  # phones on the labeler's Wi-Fi reach it
        assert "this page moves on by itself" in html and "Waiting for a phone" in html

    def test_it_says_the_session_was_created_on_its_first_page(self, cast):
        client = logged_in(cast.owner)
        job = job_of_clean_codes(cast.team, cast.owner)
        response = client.post("/evals/labeling/", {"name": "Friday", "team": cast.team.pk, "source": "jobs",
                                                    "jobs": f"#{job.pk}", "display_size_px": 300}, follow=True)
        assert response.redirect_chain[-1][0].endswith("/run/")
        assert "Session “Friday” has 2 codes to scan." in response.content.decode()

    def test_it_shows_text_instead_of_a_link_that_cannot_fit(self, cast):
        job = job_of_clean_codes(cast.team, cast.owner, (0.9,), content="https://x.io")  # version 2: no room for a link
        session = sessions.create_session(cast.team, cast.owner, "Tiny", job.candidates.all(), 300)
        item, html = run_page(logged_in(cast.owner), session)
        assert "shows the text <code>LABEL 1</code>" in html and f"/l/{item.token}" not in html
        with item.image.open("rb") as stored:
            restamped = Image.open(stored).convert("L")
        # Same version as the art (so the same grid), carrying text a phone shows without opening anything.
        assert restamped.size == (264, 264) and decoders.read_zxing(np.asarray(restamped)) == ["LABEL 1"]
        assert sessions.scan_mode(item) == "text"

    def test_it_restamps_a_restamped_copy_as_the_code_its_art_carries(self, cast):
        # Art made for a link in byte mode (version 4), restamped with a short link in capitals (alphanumeric:
        # version 3 would do), keeps version 4 and its own mask. Its labeling item was re-encoded at version 3 from
        # the copy's text: the one-time link was cut to version 3's room and painted on a grid the art does not
        # have, and the labeler's phone read nothing.
        placement = placement_of(cast.team)
        original = job_of_clean_codes(cast.team, cast.owner, (0.9,), content="http://testserver/r/AbCdEfGh2x")
        copy = restamps.restamp_for(original.candidates.get(), placement, f"HTTP://TESTSERVER/R/{placement.slug}")
        assert copy.scan_details["version"] == 4 and qr.encode(copy.job.content, "H", max_version=40).version == 3
        session = sessions.create_session(cast.team, cast.owner, "Copies", [copy], 300)
        item, html = run_page(logged_in(cast.owner), session)
        link = f"http://testserver/l/{item.token}"
        assert sessions.scan_mode(item) == "link" and link in html
        assert len(link) > qr.capacity(link, "H", max_version=3)  # cut to version 4's room, not version 3's
        with item.image.open("rb") as stored:
            assert decoders.read_zxing(np.asarray(Image.open(stored).convert("L"))) == [link]

    def test_it_shows_the_original_it_cannot_rerender_when_no_campaign_counts_its_scans(self, cast):
        job = job_of_clean_codes(cast.team, cast.owner, (0.9,))
        unreadable(job)
        session = sessions.create_session(cast.team, cast.owner, "Odd", job.candidates.all(), 300)
        item, html = run_page(logged_in(cast.owner), session)
        assert not item.image and "still carries its own content" in html
        assert f'src="{item.candidate.image.url}"' in html

    @pytest.mark.parametrize("linked", ["placement", "content"])
    def test_it_hides_a_campaign_code_it_cannot_rerender(self, cast, linked):
        campaign = Campaign.objects.create(team=cast.team, name="Spring", destination="https://example.com/spring")
        placement = Placement.objects.create(campaign=campaign, name="Station poster")
        job = job_of_clean_codes(cast.team, cast.owner, (0.9,), content=f"http://testserver/r/{placement.slug}")
        if linked == "placement":  # made from the placement's page; else the short link was typed in
            GenerationJob.objects.filter(pk=job.pk).update(placement=placement, content="https://qart.example/r/x")
        unreadable(job)
        session = sessions.create_session(cast.team, cast.owner, "Campaign", job.candidates.all(), 300)
        client = logged_in(cast.owner)
        page = client.get(f"/evals/labeling/{session.pk}/run/").content.decode()
        assert "so it is not shown" in page and 'data-scannable="false"' in page
        assert "<img" not in page and 'id="scanned" data-key="s" disabled' in page
        item = session.items.get()
        response = client.post(f"/evals/labeling/{session.pk}/items/{item.pk}/label", {"outcome": "scanned"})
        assert response.status_code == 400 and "skip it" in response.content.decode()
        assert not HumanScanResult.objects.exists()

    def test_it_tells_campaign_links_from_other_content(self, cast):
        campaign = Campaign.objects.create(team=cast.team, name="Spring", destination="https://example.com/spring")
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        for content, counted in ((f"https://anywhere.example/r/{placement.slug}", True),
                                 ("https://anywhere.example/r/NoSuchSlug", False),
                                 ("https://example.com/menu", False), ("Just some text", False)):
            job = GenerationJob(team=cast.team, owner=cast.owner, content=content)
            assert sessions.is_campaign_link(job) is counted, content

    def test_it_refuses_viewers_and_other_teams(self, cast, session):
        assert logged_in(cast.viewer).get(f"/evals/labeling/{session.pk}/run/").status_code == 403
        outsider = logged_in(cast.outsider)
        assert outsider.get(f"/evals/labeling/{session.pk}/run/").status_code == 404
        item = session.items.first()
        assert outsider.post(f"/evals/labeling/{session.pk}/items/{item.pk}/shown").status_code == 404
        assert outsider.get(f"/evals/labeling/{session.pk}/items/{item.pk}/status").status_code == 404
        assert outsider.post(f"/evals/labeling/{session.pk}/items/{item.pk}/label",
                             {"outcome": "scanned"}).status_code == 404
        assert not HumanScanResult.objects.exists()

    def test_it_needs_the_csrf_token_to_change_anything(self, cast, session):
        client = logged_in(cast.owner, enforce_csrf_checks=True)
        page = client.get(f"/evals/labeling/{session.pk}/run/").content.decode()
        item = session.items.order_by("position").first()
        url = f"/evals/labeling/{session.pk}/items/{item.pk}"
        assert client.post(f"{url}/shown").status_code == 403
        assert client.post(f"{url}/label", {"outcome": "failed", "seconds": "3"}).status_code == 403
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        assert client.post(f"{url}/shown", HTTP_X_CSRFTOKEN=token).status_code == 200
        assert not HumanScanResult.objects.exists()


class TestPhoneHit:
    def test_it_records_the_first_hit_and_the_page_moves_on(self, cast, session):
        client = logged_in(cast.owner)
        item, _ = run_page(client, session)
        assert status_of(client, item)["done"] is False

        response = Client(HTTP_USER_AGENT=IPHONE).get(f"/l/{item.token}")
        assert response.status_code == 200 and "Scanned — recorded" in response.content.decode()
        result = HumanScanResult.objects.get()
        assert (result.session, result.candidate, result.labeler) == (session, item.candidate, cast.owner)
        assert result.scanned and result.device == "iPhone" and result.app == "Mobile Safari"
        assert 0 <= result.seconds < 60
        state = status_of(client, item)
        assert state["done"] and state["by_phone"] and state["device"] == "iPhone"

        following, _ = run_page(client, session, state["next"].split("/run/")[1])
        assert following.position == 1

    def test_it_credits_the_hit_to_the_labeler_at_the_screen(self, cast, session):
        item, _ = run_page(logged_in(cast.teammate), session)  # the owner made the session
        assert item.shown_by == cast.teammate
        Client(HTTP_USER_AGENT=IPHONE).get(f"/l/{item.token}")
        assert HumanScanResult.objects.get().labeler == cast.teammate

    def test_it_credits_the_session_creator_when_nobody_is_recorded_at_the_screen(self, cast, session):
        item, _ = run_page(logged_in(cast.teammate), session)
        LabelingItem.objects.filter(pk=item.pk).update(shown_by=None)  # as for an item shown before the field
        Client(HTTP_USER_AGENT=IPHONE).get(f"/l/{item.token}")
        assert HumanScanResult.objects.get().labeler == cast.owner

    def test_it_records_a_second_hit_only_once(self, cast, session):
        item, _ = run_page(logged_in(cast.owner), session)
        Client(HTTP_USER_AGENT=IPHONE).get(f"/l/{item.token}")
        response = Client(HTTP_USER_AGENT=PIXEL).get(f"/l/{item.token}")
        assert "Already recorded" in response.content.decode()
        assert HumanScanResult.objects.count() == 1 and HumanScanResult.objects.get().device == "iPhone"

    def test_a_read_just_after_could_not_scan_makes_the_label_a_scan(self, cast, session):
        # The phone was told "Already recorded ... counted" while the label stayed "not scanned".
        from datetime import timedelta

        from django.utils import timezone

        client = logged_in(cast.owner)
        item, _ = run_page(client, session)
        client.post(f"/evals/labeling/{session.pk}/items/{item.pk}/label", {"outcome": "failed", "seconds": "9",
                                                                            "notes": "gave up"})
        response = Client(HTTP_USER_AGENT=IPHONE).get(f"/l/{item.token}")
        assert "Scanned — recorded" in response.content.decode()
        result = HumanScanResult.objects.get()
        assert result.scanned and result.device == "iPhone" and result.notes.startswith("gave up Read by the phone")
        assert "Already recorded" in Client(HTTP_USER_AGENT=PIXEL).get(f"/l/{item.token}").content.decode()

        second, _ = run_page(client, session)  # the next item; a read long after: said plainly, not counted
        assert second.pk != item.pk
        client.post(f"/evals/labeling/{session.pk}/items/{second.pk}/label", {"outcome": "failed", "seconds": "9"})
        label = HumanScanResult.objects.get(labeling_item=second)
        HumanScanResult.objects.filter(pk=label.pk).update(
            created=timezone.now() - timedelta(seconds=sessions.LATE_READ_SECONDS + 5))
        response = Client(HTTP_USER_AGENT=IPHONE).get(f"/l/{second.token}")
        assert "Recorded as “Could not scan”" in response.content.decode()
        label.refresh_from_db()
        assert not label.scanned

    def test_it_answers_an_unknown_token_with_the_friendly_404(self, db):
        response = Client(HTTP_USER_AGENT=IPHONE).get("/l/NoSuchToken1")
        assert response.status_code == 404 and "couldn't find that page" in response.content.decode()

    def test_it_records_nothing_for_head_requests_and_link_previews(self, cast, session):
        item, _ = run_page(logged_in(cast.owner), session)
        assert Client(HTTP_USER_AGENT=IPHONE).head(f"/l/{item.token}").status_code == 200
        preview = Client(HTTP_USER_AGENT=SLACK).get(f"/l/{item.token}")
        assert preview.status_code == 200 and "Nothing was recorded" in preview.content.decode()
        item.refresh_from_db()
        assert item.hit_at is None and not HumanScanResult.objects.exists()

    def test_it_records_nothing_for_an_item_not_shown_yet(self, cast, session):
        item = session.items.order_by("position").last()
        response = Client(HTTP_USER_AGENT=IPHONE).get(f"/l/{item.token}")
        assert "isn't on screen yet" in response.content.decode() and not HumanScanResult.objects.exists()


class TestButtons:
    def test_it_records_could_not_scan_with_the_seconds(self, cast, session):
        client = logged_in(cast.teammate)
        item, _ = run_page(client, session)
        response = client.post(f"/evals/labeling/{session.pk}/items/{item.pk}/label",
                               {"outcome": "failed", "seconds": "12.5", "vote": "down", "notes": "glare"})
        assert response.status_code == 200 and response.json()["done"] is True
        result = HumanScanResult.objects.get()
        assert (result.scanned, result.seconds, result.aesthetic_vote, result.notes) == (False, 12.5, -1, "glare")
        assert result.labeler == cast.teammate

    def test_a_button_answer_carries_the_phone_the_labeler_names(self, cast, session):
        # Button answers had no device: every failure fell under "unknown device" in the alignment's breakdown.
        client = logged_in(cast.owner)
        item, page = run_page(client, session)
        assert 'id="phone"' in page
        client.post(f"/evals/labeling/{session.pk}/items/{item.pk}/label",
                    {"outcome": "failed", "seconds": "8", "device": "  Pixel 8 "})
        assert HumanScanResult.objects.get().device == "Pixel 8"
        second, _ = run_page(client, session)
        Client(HTTP_USER_AGENT=IPHONE).get(f"/l/{second.token}")  # a phone's own hit names itself: kept
        client.post(f"/evals/labeling/{session.pk}/items/{second.pk}/label", {"vote": "up", "device": "Pixel 8"})
        assert HumanScanResult.objects.get(labeling_item=second).device == "iPhone"

    def test_it_amends_a_phone_hit_with_a_vote_instead_of_adding_a_row(self, cast, session):
        client = logged_in(cast.owner)
        item, _ = run_page(client, session)
        Client(HTTP_USER_AGENT=PIXEL).get(f"/l/{item.token}")
        client.post(f"/evals/labeling/{session.pk}/items/{item.pk}/label", {"vote": "up", "notes": "lovely"})
        result = HumanScanResult.objects.get()
        assert result.scanned and result.aesthetic_vote == 1 and result.notes == "lovely"

    def test_it_refuses_bad_input_with_a_message(self, cast, session):
        client = logged_in(cast.owner)
        item, _ = run_page(client, session)
        url = f"/evals/labeling/{session.pk}/items/{item.pk}/label"
        for data, message in (({"outcome": "maybe"}, "outcome must be"),
                              ({"outcome": "failed", "seconds": "nan"}, "seconds must be between"),
                              ({"outcome": "failed", "seconds": "soon"}, "seconds must be a number"),
                              # float() read them as 3 and 10
                              ({"outcome": "failed", "seconds": "٣"}, "seconds must be a number"),
                              ({"outcome": "failed", "seconds": "1_0"}, "seconds must be a number"),
                              ({"vote": "up"}, "press “scanned” or “could not scan” first"),
                              ({}, "nothing to record")):
            response = client.post(url, data)
            assert response.status_code == 400 and message in response.content.decode()
        assert not HumanScanResult.objects.exists()

    def test_it_ends_on_the_done_page_with_a_link_to_the_alignment(self, cast, session):
        client = logged_in(cast.owner)
        for _ in range(2):
            item, _ = run_page(client, session)
            client.post(f"/evals/labeling/{session.pk}/items/{item.pk}/label", {"outcome": "scanned"})
        response = client.get(f"/evals/labeling/{session.pk}/run/")
        assert response.status_code == 302 and response["Location"] == f"/evals/labeling/{session.pk}/done/"
        html = client.get(response["Location"]).content.decode()
        assert "Done: Friday" in html and f"/evals/alignment/?session={session.pk}" in html


    def test_the_done_page_counts_the_sittings_answers_and_offers_labeling_to_labelers_only(self, cast, session):
        client = logged_in(cast.owner)
        item, _ = run_page(client, session)
        client.post(f"/evals/labeling/{session.pk}/items/{item.pk}/label", {"outcome": "scanned"})
        other = session.items.exclude(pk=item.pk).first()  # a label added in the admin, beside the items
        HumanScanResult.objects.create(session=session, candidate=other.candidate, scanned=True)
        html = client.get(f"/evals/labeling/{session.pk}/done/").content.decode()
        assert '<span class="tile-num">1</span><span class="tile-label">scanned</span>' in html
        assert "remaining code" in html
        viewer_page = logged_in(cast.viewer).get(f"/evals/labeling/{session.pk}/done/").content.decode()
        assert "remaining code" not in viewer_page  # the button answered a viewer with 403


class TestAlignmentPage:
    # Known answer: at threshold 0.5, TP 3 (0.9, 0.8, 0.6), FP 1 (0.7), FN 1 (0.4), TN 3 (0.3, 0.2, 0.1), so
    # accuracy = balanced accuracy = 0.75; 14 of the 16 (scanned, not scanned) pairs are ordered right, AUC 0.875;
    # passing from 0.4 catches every scanned code and one of four unscanned: balanced accuracy 0.875.
    LABELS = ((0.9, True), (0.8, True), (0.7, False), (0.6, True), (0.4, True), (0.3, False), (0.2, False),
              (0.1, False))

    @pytest.fixture
    def labelled(self, cast) -> LabelingSession:
        job = job_of_clean_codes(cast.team, cast.owner, [p for p, _ in self.LABELS])
        session = sessions.create_session(cast.team, cast.owner, "Known", job.candidates.all(), 300)
        for candidate, (_, scanned) in zip(job.candidates.order_by("index"), self.LABELS, strict=True):
            HumanScanResult.objects.create(session=session, candidate=candidate, scanned=scanned,
                                           device="iPhone" if candidate.index % 2 else "Pixel 8", app="Camera")
        # Another team's label, which must not count.
        theirs = job_of_clean_codes(cast.other_team, cast.outsider, (0.95,))
        HumanScanResult.objects.create(candidate=theirs.candidates.get(), scanned=False)
        return session

    @pytest.fixture
    def well_labelled(self, cast) -> LabelingSession:
        """The known labels, each scanned by four phones: 16 of each class, enough to judge by (at least
        `calibration.MIN_PER_CLASS` of each), with the same figures (no probability is in both classes)."""
        job = job_of_clean_codes(cast.team, cast.owner, [p for p, _ in self.LABELS])
        session = sessions.create_session(cast.team, cast.owner, "Known", job.candidates.all(), 300)
        for candidate, (_, scanned) in zip(job.candidates.order_by("index"), self.LABELS, strict=True):
            for phone in range(4):
                HumanScanResult.objects.create(session=session, candidate=candidate, scanned=scanned,
                                               device="iPhone" if phone % 2 else "Pixel 8", app="Camera")
        return session

    def test_it_reports_exactly_the_known_figures(self, cast, labelled, settings):
        settings.QART = {**settings.QART, "SCAN_THRESHOLD": 0.5}
        data = logged_in(cast.viewer).get("/evals/alignment/?format=json").json()
        report = data["report"]
        assert data["count"] == 8 and report["count"] == 8 and report["scanned"] == 4
        assert data["enough"] is False and data["min_per_class"] == 15  # 4 of each: figures given, said too few
        assert report["confusion"] == {"true_positive": 3, "false_positive": 1, "false_negative": 1,
                                       "true_negative": 3}
        assert report["accuracy"] == 0.75 and report["balanced_accuracy"] == 0.75
        assert report["roc_auc"] == 0.875
        assert report["best_threshold"] == 0.4 and report["best_balanced_accuracy"] == 0.875
        assert [g["group"] for g in report["groups"]] == ["Pixel 8 / Camera", "iPhone / Camera"]

    def test_it_shows_the_figures_and_plots_on_the_page(self, cast, well_labelled, settings):
        settings.QART = {**settings.QART, "SCAN_THRESHOLD": 0.5}
        html = logged_in(cast.owner).get(f"/evals/alignment/?session={well_labelled.pk}").content.decode()
        for cell, value in (("tp", "12"), ("fp", "4"), ("fn", "4"), ("tn", "12"), ("accuracy", "0.750"),
                            ("balanced-accuracy", "0.750"), ("roc-auc", "0.875"), ("best-threshold", "0.400")):
            assert re.search(rf'id="{cell}">{re.escape(value)}<', html), cell
        assert f"/evals/alignment/roc.png?session={well_labelled.pk}" in html and "iPhone / Camera" in html
        data = logged_in(cast.owner).get(f"/evals/alignment/?session={well_labelled.pk}&format=json").json()
        assert data["enough"] is True and data["count"] == 32
        assert 'id="too-few-labels"' not in html
        # Each phone has 8 read and 8 not: its own figures would be as rough as the page's with few labels.
        groups = html[html.index('id="groups"'):html.index("</table>", html.index('id="groups"'))]
        assert groups.count(">too few<") == 6 and "0.750" not in groups

    def test_with_too_few_labels_it_says_so_instead_of_figures(self, cast, labelled, settings):
        # Three labels showed AUC 0.250 and "best threshold 0.991" as findings.
        from generator.core.evals import calibration

        settings.QART = {**settings.QART, "SCAN_THRESHOLD": 0.5}
        html = logged_in(cast.owner).get(f"/evals/alignment/?session={labelled.pk}").content.decode()
        assert "8 labels: too few to judge." in html and "4 read and 4 not" in html
        assert f"at least {calibration.MIN_PER_CLASS} scans that phones read" in html
        for figure in ('id="accuracy"', 'id="roc-auc"', 'id="best-threshold"', "0.875", "roc.png", "calibration.png"):
            assert figure not in html, figure
        assert re.search(r'id="tp">3<', html)  # the counts stay: they are what happened, not an estimate

    def test_it_mentions_the_model_table_only_where_there_is_one(self, cast, well_labelled):
        html = logged_in(cast.viewer).get("/evals/alignment/").content.decode()
        assert "The figures below use each candidate's probability as stored" in html
        assert "The model table above" not in html and 'id="verifier-figures"' not in html

    def test_its_device_table_stacks_on_a_phone(self, cast, well_labelled):
        # Six columns ran 31 px past a 390 px screen: the site's stacked rows, each cell named.
        html = logged_in(cast.viewer).get("/evals/alignment/").content.decode()
        row = re.search(r'<table class="table compact stack" id="groups">.*?<tbody>\s*<tr>(.*?)</tr>', html, re.S)[1]
        labels = re.findall(r'data-label="([^"]+)"', row)
        assert labels == ["Device / app", "Scans", "Read", "Accuracy", "Bal. acc.", "AUC"]

    def test_it_serves_the_calibration_and_roc_plots(self, cast, labelled):
        client = logged_in(cast.owner)
        for name in ("calibration", "roc"):
            response = client.get(f"/evals/alignment/{name}.png?session={labelled.pk}")
            assert response.status_code == 200 and response["Content-Type"] == "image/png"
            assert Image.open(io.BytesIO(response.content)).size == (500, 420)
        assert client.get("/evals/alignment/pie.png").status_code == 404

    def test_it_shows_an_empty_state_without_labels(self, cast, labelled):
        client = logged_in(cast.outsider)
        mine = LabelingSession.objects.create(name="Empty", team=cast.other_team)  # a session nobody labelled yet
        html = client.get(f"/evals/alignment/?session={mine.pk}").content.decode()
        assert 'id="no-labels"' in html
        assert client.get(f"/evals/alignment/calibration.png?session={mine.pk}").status_code == 404

    def test_it_keeps_other_teams_sessions_out(self, cast, labelled):
        client = logged_in(cast.outsider)
        assert client.get(f"/evals/alignment/?session={labelled.pk}").status_code == 404
        assert client.get(f"/evals/alignment/roc.png?session={labelled.pk}").status_code == 404
        assert client.get("/evals/alignment/?session=abc").status_code == 404
        data = client.get("/evals/alignment/?format=json").json()
        assert data["count"] == 1  # only their own imported label

    def test_it_is_for_staff_only(self, team_users):
        assert logged_in(team_users.owner).get("/evals/alignment/").status_code == 403

    def test_it_names_the_shipped_model_while_none_is_active(self, cast):
        from generator.core.codes import decision

        client = logged_in(cast.viewer)
        assert client.get("/evals/alignment/?format=json").json()["verifier"]["model"] == decision.MODEL
        html = client.get("/evals/alignment/").content.decode()
        assert f'<code id="active-model">{decision.MODEL}</code>' in html and "the shipped default model" in html

    def test_it_shows_the_active_model_who_activated_it_and_its_figures(self, cast, labelled):
        from django.contrib.auth import get_user_model

        from generator import verifier_models
        from generator.models import VerifierModel

        root = get_user_model().objects.create_superuser("root", password="pw-root-1")
        row = VerifierModel.objects.create(
            model_id="logistic-v1-cafe0001", form="logistic-v1", bias=-4.0, weights=[["o_any", 1.0]],
            source="sessions #1 Friday", label_count=80, scanned_count=40,
            figures={"folds": 5,
                     "current": {"model": "logistic-v1-1eb1f4cf", "accuracy": 0.7, "balanced_accuracy": 0.65,
                                 "roc_auc": 0.8},
                     "cross_validated": {"accuracy": 0.9, "balanced_accuracy": 0.875, "roc_auc": None}})
        verifier_models.activate(row, root, force=True)  # whatever the verifier's feature set is by now
        client = logged_in(cast.viewer)
        html = client.get("/evals/alignment/").content.decode()
        assert '<code id="active-model">logistic-v1-cafe0001</code>, activated by root' in html
        assert "0.875" in html and "0.650" in html and "n/a" in html and "5 folds" in html
        # Which sessions it was fitted to names every team's: superusers only, as in the admin.
        assert "Fitted to 80 labels (40 scanned) of the teams that labelled scans." in html
        assert 'id="verifier-figures"' in html and "The model table above judged the images" in html
        assert "Friday" not in html.split('id="active-model"')[1].split("</p>")[0]
        root_html = logged_in(root).get("/evals/alignment/").content.decode()
        assert "Fitted to 80 labels (40 scanned) from sessions #1 Friday." in root_html
        verifier = client.get("/evals/alignment/?format=json").json()["verifier"]
        assert (verifier["model"], verifier["activated_by"], verifier["labels"]) == ("logistic-v1-cafe0001", "root", 80)


@pytest.mark.django_db(transaction=True)
class TestTwoAtOnce:
    """Two requests on one item, or a label as its session is deleted: what one after the other would make
    (`sessions.hold_session`). Each request in a thread of its own (`at_once`); on PostgreSQL the rows wait for
    each other's locks, where SQLite runs one writer at a time anyway."""

    @pytest.fixture
    def shown(self, cast) -> LabelingItem:
        job = job_of_clean_codes(cast.team, cast.owner)
        made = sessions.create_session(cast.team, cast.owner, "Friday", job.candidates.all(), 300, seed=0)
        item = made.items.get(position=0)
        sessions.show(item, cast.owner)
        return item

    @staticmethod
    def press(item: LabelingItem, user, scanned: bool = False):
        def send() -> int:
            try:
                sessions.record_label(LabelingItem.objects.get(pk=item.pk), user, scanned, 5.0, None, "")
            except LabelingItem.DoesNotExist:
                return 404
            return 200

        return send

    def test_the_same_label_sent_twice_makes_one_result(self, cast, shown, monkeypatch):
        press = self.press(shown, cast.owner)
        assert at_once(monkeypatch, (LabelingItem, "save"), press, press) == [200, 200]
        assert HumanScanResult.objects.count() == 1
        assert LabelingItem.objects.get(pk=shown.pk).result_id == HumanScanResult.objects.get().pk

    def test_a_phone_and_a_button_at_once_make_one_result(self, cast, shown, monkeypatch):
        def phone() -> int:
            sessions.record_hit(LabelingItem.objects.get(pk=shown.pk), PIXEL)
            return 200

        assert at_once(monkeypatch, (LabelingItem, "save"), phone, self.press(shown, cast.teammate)) == [200, 200]
        result = HumanScanResult.objects.get()  # the phone's scan, which the labeler's "could not scan" corrects
        assert LabelingItem.objects.get(pk=shown.pk).result_id == result.pk and result.scanned is False

    def test_a_label_written_as_its_session_is_deleted_goes_with_it(self, cast, shown, monkeypatch):
        def delete() -> int:
            sessions.delete_sessions(LabelingSession.objects.filter(pk=shown.session_id))
            return 204

        assert at_once(monkeypatch, (LabelingItem, "save"), self.press(shown, cast.owner), delete) == [200, 204]
        assert not LabelingSession.objects.exists() and not HumanScanResult.objects.exists()

    def test_a_label_for_a_session_deleted_meanwhile_finds_it_gone(self, cast, shown, monkeypatch):
        from django.db.models import QuerySet

        def delete() -> int:
            sessions.delete_sessions(LabelingSession.objects.filter(pk=shown.session_id))
            return 204

        # the delete pauses once it has deleted (the session and what goes with it), before it commits
        assert at_once(monkeypatch, (QuerySet, "delete"), delete, self.press(shown, cast.owner)) == [204, 404]
        assert not LabelingSession.objects.exists() and not HumanScanResult.objects.exists()
