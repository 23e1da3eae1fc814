from __future__ import annotations

import csv
import io

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from PIL import Image

from campaigns import bulk
from campaigns.models import Campaign, Placement
from generator import uploads
from generator.models import GenerationJob
from tests.generator.factories import qr_png

HEADER = "name,kind,location,printed_quantity,printed_width_cm,scan_distance_m,destination_override\n"
ONE_BAD = HEADER + "Gate poster,poster,Gate,200,30,,\nTram screen,screen,,12,,,ftp://example.com/\n"
FIXED = ONE_BAD.replace("ftp://", "https://")


@pytest.fixture(autouse=True)
def _fresh_generation_rate(fresh_cache):
    """The team's generation rate starts unused."""


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def csv_file(text: str, name: str = "placements.csv") -> ContentFile:
    return ContentFile(text.encode(), name=name)


def streamed(response) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.mark.django_db
class TestImportPage:
    def test_it_shows_every_row_error_and_stores_nothing(self, team_users, campaign):
        url = f"/campaigns/{campaign.pk}/placements/import/"
        response = as_user(team_users.teammate).post(url, {"file": csv_file(ONE_BAD), "action": "import"})
        assert response.status_code == 400
        html = response.content.decode()
        assert 'data-row="3"' in html and "destination_override" in html and "http:// or https://" in html
        assert "1 problem in 1 of 2 rows: nothing was imported" in html and "Import 2 placements" not in html
        assert Placement.objects.count() == 0
        assert response.context["form"].initial["text"] == ONE_BAD  # the rows again, to fix in place

    def test_an_empty_post_is_refused_not_the_blank_form(self, team_users, campaign):
        # It was the blank form, 200, as if nothing had been sent.
        response = as_user(team_users.teammate).post(f"/campaigns/{campaign.pk}/placements/import/")
        assert response.status_code == 400 and not campaign.placements.exists()

    def test_it_imports_all_rows_once_they_pass(self, team_users, campaign):
        url = f"/campaigns/{campaign.pk}/placements/import/"
        client = as_user(team_users.owner)
        checked = client.post(url, {"text": FIXED, "action": "check"})
        assert checked.status_code == 200 and "Import 2 placements" in checked.content.decode()
        assert Placement.objects.count() == 0
        response = client.post(url, {"text": FIXED, "action": "import"})
        assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/"
        assert sorted(campaign.placements.values_list("name", flat=True)) == ["Gate poster", "Tram screen"]

    def test_it_shows_the_names_another_import_took_meanwhile(self, team_users, campaign, monkeypatch):
        store = bulk.store

        def racing(checked: bulk.CheckedFile):
            Placement.objects.create(campaign=campaign, name="Gate poster")  # another import, between check and store
            return store(checked)

        monkeypatch.setattr(bulk, "store", racing)
        response = as_user(team_users.owner).post(f"/campaigns/{campaign.pk}/placements/import/",
                                                  {"text": FIXED, "action": "import"})
        assert response.status_code == 409
        assert [(e.row, e.column) for e in response.context["checked"].errors] == [(2, "name")]
        assert list(campaign.placements.values_list("name", flat=True)) == ["Gate poster"]

    @pytest.mark.parametrize(("upload", "message"), [
        (ContentFile(b"PK\x03\x04\x00\x00binary", name="sheet.xlsx"), "This is not a CSV file"),
        (ContentFile(b"name\n" + b"a" * bulk.MAX_BYTES, name="big.csv"), "files up to 1 MB"),
        (ContentFile(b"", name="empty.csv"), "The file is empty: the first row names"),  # the form's own: 200 before
    ])
    def test_it_answers_a_file_it_cannot_read_with_one_message(self, team_users, campaign, upload, message):
        response = as_user(team_users.owner).post(f"/campaigns/{campaign.pk}/placements/import/",
                                                  {"file": upload, "action": "import"})
        assert response.status_code == 400 and message in response.content.decode()
        assert Placement.objects.count() == 0

    @pytest.mark.parametrize(("text", "message"), [
        (HEADER, "The text has a header but no rows."),
        ('name\n"Gate poster\n', "The text cannot be read as CSV: a quoted cell is never closed"),
    ])
    def test_it_says_the_text_of_pasted_rows_it_cannot_read(self, team_users, campaign, text, message):
        response = as_user(team_users.owner).post(f"/campaigns/{campaign.pk}/placements/import/",
                                                  {"text": text, "action": "check"})
        assert response.status_code == 400 and message in response.content.decode()
        assert "The file" not in response.content.decode()

    def test_it_asks_for_a_file_when_none_was_sent(self, team_users, campaign):
        response = as_user(team_users.owner).post(f"/campaigns/{campaign.pk}/placements/import/", {"action": "check"})
        assert response.status_code == 400 and "Choose a CSV file" in response.content.decode()

    def test_it_refuses_viewers_and_hides_other_teams_campaigns(self, team_users, campaign):
        url = f"/campaigns/{campaign.pk}/placements/import/"
        assert as_user(team_users.viewer).get(url).status_code == 403
        assert as_user(team_users.viewer).post(url, {"text": FIXED, "action": "import"}).status_code == 403
        assert as_user(team_users.outsider).post(url, {"text": FIXED, "action": "import"}).status_code == 404
        assert Client().get(url).status_code == 302
        assert Placement.objects.count() == 0

    def test_it_needs_the_csrf_token(self, team_users, campaign):
        client = Client(enforce_csrf_checks=True)
        client.force_login(team_users.owner)
        response = client.post(f"/campaigns/{campaign.pk}/placements/import/", {"text": FIXED, "action": "import"})
        assert response.status_code == 403 and Placement.objects.count() == 0

    def test_the_campaign_page_links_to_the_bulk_pages_for_editors_only(self, team_users, campaign):
        links = (f"/campaigns/{campaign.pk}/placements/import/", f"/campaigns/{campaign.pk}/generate/")
        editor_page = as_user(team_users.teammate).get(f"/campaigns/{campaign.pk}/").content.decode()
        viewer_page = as_user(team_users.viewer).get(f"/campaigns/{campaign.pk}/").content.decode()
        assert all(link in editor_page for link in links)
        assert not any(link in viewer_page for link in links)
        assert f"/campaigns/{campaign.pk}/placements.csv" in viewer_page


@pytest.mark.django_db
class TestExports:
    def test_the_placements_export_imports_again(self, team_users, campaign):
        Placement.objects.create(campaign=campaign, name="Gate", kind="billboard", printed_width_cm=120)
        response = as_user(team_users.viewer).get(f"/campaigns/{campaign.pk}/placements.csv")
        assert response.status_code == 200 and response.streaming
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        text = streamed(response)
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows[0]["name"] == "Gate" and rows[0]["short_url"] == f"http://TESTSERVER/R/{Placement.objects.get().slug}"
        other = Campaign.objects.create(team=team_users.team, name="Autumn", destination="https://shop.example.com/")
        imported = as_user(team_users.owner).post(f"/campaigns/{other.pk}/placements/import/",
                                                  {"file": csv_file(text), "action": "import"})
        assert imported.status_code == 302
        assert other.placements.get().printed_width_cm == 120 and other.placements.get().kind == "billboard"

    @pytest.mark.parametrize("team", ["%C2%B2", "9" * 30, "abc"])
    def test_a_team_filter_it_cannot_read_exports_all_the_users_campaigns(self, team_users, campaign, team):
        text = streamed(as_user(team_users.viewer).get(f"/campaigns/campaigns.csv?team={team}"))
        assert "Spring Sale" in text

    def test_exports_are_named_in_any_script_and_no_cache_keeps_them(self, team_users, campaign):
        Campaign.objects.filter(pk=campaign.pk).update(name="東京")
        client = as_user(team_users.viewer)
        placements = client.get(f"/campaigns/{campaign.pk}/placements.csv")
        assert placements["Content-Disposition"] == (
            "attachment; filename=\"placements.csv\"; filename*=utf-8''%E6%9D%B1%E4%BA%AC-placements.csv")
        for response in (placements, client.get("/campaigns/campaigns.csv")):
            assert {"private", "no-store"} <= set(response["Cache-Control"].replace(" ", "").split(","))

    def test_exports_keep_to_the_users_teams(self, team_users, campaign):
        Campaign.objects.create(team=team_users.other_team, name="Rival plan", destination="https://rival.example/")
        assert as_user(team_users.outsider).get(f"/campaigns/{campaign.pk}/placements.csv").status_code == 404
        text = streamed(as_user(team_users.viewer).get("/campaigns/campaigns.csv"))
        assert "Spring Sale" in text and "Rival plan" not in text


def picture_upload() -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (160, 160), (200, 40, 90)).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="logo.png")


SHARED = {"engine": "diffusion", "prompt": "a koi pond at dawn", "negative_prompt": "blurry", "look": "balanced",
          "speed": "fast", "style": "square", "background": "white"}


@pytest.mark.django_db
class TestGenerateAll:
    @pytest.fixture
    def three(self, campaign) -> list[Placement]:
        return [Placement.objects.create(campaign=campaign, name=name) for name in ("C poster", "A flyer", "B screen")]

    def test_it_starts_one_job_per_placement_in_order(self, team_users, campaign, three, enqueued):
        response = as_user(team_users.teammate).post(f"/campaigns/{campaign.pk}/generate/",
                                                     {**SHARED, "placements": [p.pk for p in three]})
        assert response.status_code == 302 and response["Location"] == "/generate/jobs/"
        assert [job.placement.name for job in enqueued] == ["A flyer", "B screen", "C poster"]
        for job in enqueued:
            assert job.content == f"http://TESTSERVER/R/{job.placement.slug}"
            assert job.prompt.text == "a koi pond at dawn"
        assert GenerationJob.objects.count() == 3

    def test_it_warns_when_phones_cannot_open_the_short_links_its_codes_carry(self, team_users, campaign, three,
                                                                              settings):
        client, url = as_user(team_users.teammate), f"/campaigns/{campaign.pk}/generate/"
        settings.SITE_ROOT = "http://127.0.0.1:8140"
        page = client.get(url).content.decode()
        assert "data-unreachable" in page and "127.0.0.1" in page
        settings.SITE_ROOT = "https://qart.example"
        assert "data-unreachable" not in client.get(url).content.decode()

    def test_each_field_names_the_engine_it_is_for(self, team_users, campaign, three):
        fields = dict((field.name, engine) for field, engine in
                      as_user(team_users.teammate).get(f"/campaigns/{campaign.pk}/generate/").context["fields"])
        assert fields["picture"] == "halftone" and fields["engine"] == ""
        assert {fields[name] for name in ("prompt", "negative_prompt", "look", "speed")} == {"diffusion"}

    def test_it_starts_none_when_the_rate_has_room_for_fewer(self, team_users, campaign, three, enqueued, settings):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "2/hour"}}
        client = as_user(team_users.owner)
        page = client.get(f"/campaigns/{campaign.pk}/generate/")
        assert "2 generations can start now" in page.content.decode()
        # Ticked as it comes: as many as can start (every box ticked was refused as it came)
        assert [p.name for p in page.context["chosen"]["placements"].initial] == ["A flyer", "B screen"]
        response = client.post(f"/campaigns/{campaign.pk}/generate/", {**SHARED, "placements": [p.pk for p in three]})
        assert response.status_code == 429
        assert "Only 2 of the 3 generations can start now" in response.content.decode()
        assert "No generation was started" in response.content.decode()
        assert GenerationJob.objects.count() == 0 and enqueued == []
        two = {**SHARED, "placements": [three[0].pk, three[1].pk]}
        response = client.post(f"/campaigns/{campaign.pk}/generate/", two)
        assert response.status_code == 302 and len(enqueued) == 2

    def test_a_picture_sent_when_the_team_has_no_room_is_said_to_be_dropped(self, team_users, campaign, three,
                                                                            enqueued, settings):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "1/hour"}}
        client, url = as_user(team_users.owner), f"/campaigns/{campaign.pk}/generate/"
        assert client.post(url, {**SHARED, "placements": [three[0].pk]}).status_code == 302
        body = {**SHARED, "engine": "halftone", "prompt": "", "picture": picture_upload(),
                "placements": [three[1].pk]}
        response = client.post(url, body)
        assert response.status_code == 429 and "data-dropped-picture" in response.content.decode()

    def test_a_campaign_of_one_whole_import_can_be_sent(self, team_users, campaign, enqueued):
        # Every placement is one field: Django's default 1,000 fields refused the page it drew (TooManyFieldsSent).
        from campaigns import bulk

        Placement.objects.bulk_create(Placement(campaign=campaign, name=f"P{i:04d}", slug=f"bulk{i:04d}x")
                                      for i in range(bulk.MAX_ROWS))
        response = as_user(team_users.owner).post(f"/campaigns/{campaign.pk}/generate/", {
            **SHARED, "placements": list(campaign.placements.values_list("pk", flat=True))})
        assert response.status_code == 429 and "Only 30 of the 1000 generations" in response.content.decode()

    def test_it_shares_one_uploaded_picture_for_the_halftone_engine(self, team_users, campaign, three, enqueued):
        body = {**SHARED, "engine": "halftone", "prompt": "", "picture": picture_upload(),
                "placements": [three[0].pk, three[2].pk]}
        response = as_user(team_users.owner).post(f"/campaigns/{campaign.pk}/generate/", body)
        assert response.status_code == 302
        names = [job.init_image.name for job in enqueued]
        assert len(names) == 2 and all(names) and names[0] != names[1]

    def test_a_picture_sent_with_a_refused_form_is_kept_for_the_next_try(self, team_users, campaign, three, enqueued):
        # A browser cannot refill a file input: the picture is kept as on the generation page, not lost.
        client, url = as_user(team_users.owner), f"/campaigns/{campaign.pk}/generate/"
        body = {**SHARED, "engine": "halftone", "prompt": "", "picture": picture_upload(), "placements": []}
        response = client.post(url, body)
        assert response.status_code == 400 and enqueued == []
        html = response.content.decode()
        assert "data-kept-picture" in html
        token = response.context["form"].kept["picture"][0]
        response = client.post(url, {**SHARED, "engine": "halftone", "prompt": "", "kept_picture": token,
                                     "placements": [three[0].pk]})
        assert response.status_code == 302 and len(enqueued) == 1 and enqueued[0].init_image.name
        # Someone else cannot use that token.
        response = as_user(team_users.teammate).post(url, {**SHARED, "engine": "halftone", "prompt": "",
                                                           "kept_picture": token, "placements": [three[1].pk]})
        assert response.status_code == 400 and len(enqueued) == 1

    def test_a_refusal_that_cannot_keep_the_picture_says_to_choose_it_again(self, team_users, campaign, three,
                                                                            enqueued, monkeypatch):
        # The cache away: the picture could not be kept for the next try, and it vanished without a word (only a
        # team without room was told). The page says so beside the field, as the generation page does.
        monkeypatch.setattr(uploads.cache, "set", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("gone")))
        client, url = as_user(team_users.owner), f"/campaigns/{campaign.pk}/generate/"
        body = {**SHARED, "engine": "halftone", "prompt": "", "picture": picture_upload(), "placements": []}
        response = client.post(url, body)
        html = response.content.decode()
        assert response.status_code == 400 and enqueued == []
        assert "Your picture was not kept: choose it again" in html and 'name="kept_picture"' not in html
        # Kept, it is not called lost.
        monkeypatch.undo()
        kept = client.post(url, {**body, "picture": picture_upload()}).content.decode()
        assert "data-kept-picture" in kept and "was not kept" not in kept

    def test_a_picture_carrying_a_code_is_refused_even_the_first_placements(self, team_users, campaign, three,
                                                                            enqueued):
        first = min(three, key=lambda p: p.name)
        body = {**SHARED, "engine": "halftone", "prompt": "", "placements": [p.pk for p in three],
                "picture": ContentFile(qr_png(f"http://testserver/r/{first.slug}"), name="code.png")}
        response = as_user(team_users.owner).post(f"/campaigns/{campaign.pk}/generate/", body)
        assert response.status_code == 400 and "code.png already carries a QR code" in response.content.decode()
        assert enqueued == []

    def test_a_halftone_run_without_a_picture_asks_for_an_upload(self, team_users, campaign, three, enqueued):
        # This page offers no earlier candidate, so it does not suggest picking one, nor takes one sent anyway.
        client, url = as_user(team_users.owner), f"/campaigns/{campaign.pk}/generate/"
        body = {**SHARED, "engine": "halftone", "prompt": "", "placements": [three[0].pk]}
        response = client.post(url, body)
        assert response.status_code == 400
        assert response.context["form"].errors["picture"] == [uploads.NEEDS_UPLOAD]
        assert "earlier candidate" not in response.content.decode()
        top = response.content.decode().split("data-field-errors>")[1].split("</ul>")[0]  # said at the top too
        assert uploads.NEEDS_UPLOAD in top and 'href="#id_picture"' in top
        response = client.post(url, {**body, "earlier_candidate": "1"})
        assert response.context["form"].errors["picture"] == [uploads.NEEDS_UPLOAD]
        assert enqueued == [] and GenerationJob.objects.count() == 0

    def test_it_shows_the_form_errors_and_starts_nothing(self, team_users, campaign, three, enqueued):
        response = as_user(team_users.owner).post(f"/campaigns/{campaign.pk}/generate/",
                                                  {**SHARED, "prompt": "", "placements": [three[0].pk]})
        assert response.status_code == 400 and "Describe the picture" in response.content.decode()
        response = as_user(team_users.owner).post(f"/campaigns/{campaign.pk}/generate/", SHARED)
        assert response.status_code == 400 and "Choose at least one placement" in response.content.decode()
        assert enqueued == [] and GenerationJob.objects.count() == 0

    def test_it_starts_nothing_for_an_archived_campaign(self, team_users, campaign, three, enqueued):
        campaign.archived = True
        campaign.save()
        url, client = f"/campaigns/{campaign.pk}/generate/", as_user(team_users.owner)
        assert client.get(url).status_code == 200
        response = client.post(url, {**SHARED, "placements": [three[0].pk]})
        assert response.status_code == 409 and "This campaign is archived" in response.content.decode()
        assert enqueued == [] and GenerationJob.objects.count() == 0

    def test_it_refuses_viewers_outsiders_and_other_campaigns_placements(self, team_users, campaign, three, enqueued):
        url = f"/campaigns/{campaign.pk}/generate/"
        assert as_user(team_users.viewer).post(url, {**SHARED, "placements": [three[0].pk]}).status_code == 403
        assert as_user(team_users.outsider).post(url, {**SHARED, "placements": [three[0].pk]}).status_code == 404
        other = Campaign.objects.create(team=team_users.team, name="Autumn", destination="https://shop.example.com/")
        elsewhere = Placement.objects.create(campaign=other, name="Elsewhere")
        assert as_user(team_users.owner).post(url, {**SHARED, "placements": [elsewhere.pk]}).status_code == 400
        assert enqueued == []
