from __future__ import annotations

import csv
import gzip
import io
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from campaigns import bulk, rollup_rebuilds
from campaigns.models import Campaign, Placement, ScanEvent
from generator.models import GenerationJob
from generator.throttles import TeamGenerationThrottle
from tests.clients import signed_in
from tests.generator.factories import qr_png

HEADER = "name,kind,location,printed_quantity,printed_width_cm,scan_distance_m,destination_override\n"
ONE_BAD = HEADER + "Gate poster,poster,Gate,200,30,,\nTram screen,screen,,lots,,,\n"
GOOD = ONE_BAD.replace("lots", "12")


@pytest.fixture(autouse=True)
def _fresh_generation_rate(fresh_cache):
    """The team's generation rate starts unused."""


def upload(text: str) -> dict:
    return {"file": ContentFile(text.encode(), name="placements.csv")}


def streamed(response) -> str:
    return b"".join(response.streaming_content).decode()


@pytest.mark.django_db
class TestImport:
    def test_a_dry_run_answers_every_row_error_and_stores_nothing(self, team_users, campaign):
        url = f"/api/campaigns/{campaign.pk}/import-placements/?dry_run=1"
        response = signed_in(team_users.owner).post(url, upload(ONE_BAD), format="multipart")
        assert response.status_code == 400
        body = response.json()
        assert body["dry_run"] is True and body["rows"] == 2 and body["placements"] == []
        assert body["errors"] == [{"row": 3, "column": "printed_quantity", "message": "Enter a whole number."}]
        ok = signed_in(team_users.owner).post(url, upload(GOOD), format="multipart")
        assert ok.status_code == 200 and [p["name"] for p in ok.json()["placements"]] == ["Gate poster", "Tram screen"]
        assert ok.json()["placements"][0]["id"] is None
        assert Placement.objects.count() == 0

    def test_an_import_stores_all_rows_or_none(self, team_users, campaign):
        url = f"/api/campaigns/{campaign.pk}/import-placements/"
        client = signed_in(team_users.teammate)
        assert client.post(url, upload(ONE_BAD), format="multipart").status_code == 400
        assert Placement.objects.count() == 0
        response = client.post(url, {"text": GOOD}, format="multipart")
        assert response.status_code == 201
        created = response.json()["placements"]
        gate = Placement.objects.get(name="Gate poster")
        assert created[0]["id"] == gate.pk and created[0]["short_url"] == f"http://TESTSERVER/R/{gate.slug}"
        assert campaign.placements.count() == 2

    def test_a_retried_import_with_its_key_answers_the_first_answer_and_a_dry_runs_key_imports_nothing(
            self, team_users, campaign):
        # Without the key a retry after a timeout answered 400, every row's name "taken" by the first import
        url = f"/api/campaigns/{campaign.pk}/import-placements/"
        client = signed_in(team_users.owner)
        dry = client.post(f"{url}?dry_run=1", upload(GOOD), format="multipart", HTTP_IDEMPOTENCY_KEY="import-1")
        assert dry.status_code == 200 and Placement.objects.count() == 0
        again = client.post(url, upload(GOOD), format="multipart", HTTP_IDEMPOTENCY_KEY="import-1")
        assert again.status_code == 422 and Placement.objects.count() == 0  # not the dry run's answer replayed
        first = client.post(url, upload(GOOD), format="multipart", HTTP_IDEMPOTENCY_KEY="import-2")
        retried = client.post(url, upload(GOOD), format="multipart", HTTP_IDEMPOTENCY_KEY="import-2")
        assert first.status_code == retried.status_code == 201 and retried["Idempotent-Replayed"] == "true"
        assert retried.json() == first.json() and campaign.placements.count() == 2

    @pytest.mark.parametrize(("body", "message"), [
        ({"file": ContentFile(b"\x89PNG\r\n\x1a\n\x00\x00", name="a.png")}, "This is not a CSV file"),
        # The same shape as a file's fault, in words about the text: it is no spreadsheet file to save again
        ({"text": "name\r\nGate\x00poster\n"}, "Line 2 of the text has a NUL character (\\u0000), which no CSV has: "
                                                "“Gate\\u0000poster”. Remove it and send the rows again."),
        ({}, "Send the CSV as `file`"),
        # DRF's field error ({"file": ["The submitted file is empty."]}), not the import's answer
        ({"file": ContentFile(b"", name="empty.csv")}, "The file is empty. The first row names the columns"),
        ({"text": "colour\nred\n"}, "Unknown column"),
        ({"text": HEADER}, "The text has a header but no rows."),
        ({"file": ContentFile(HEADER.encode(), name="a.csv")}, "The file has a header but no rows."),
        ({"text": 'name\n"Gate poster\n'}, "The text cannot be read as CSV: a quoted cell is never closed"),
    ])
    def test_it_refuses_a_file_with_one_message(self, team_users, campaign, body, message):
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/import-placements/", body,
                                                    format="multipart")
        assert response.status_code == 400
        [error] = response.json()["errors"]
        assert error["row"] is None and message in error["message"]

    def test_it_refuses_two_files_with_one_message_and_stores_nothing(self, team_users, campaign):
        # The second `file` part replaced the first without a word: half the placements meant were imported.
        files = [ContentFile(GOOD.encode(), name="first.csv"), ContentFile(b"name\nTram screen\n", name="second.csv")]
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/import-placements/",
                                                    {"file": files}, format="multipart")
        assert response.status_code == 400 and not campaign.placements.exists()
        assert response.json() == {"file": ["Send one file: the body has 2 parts named file."]}

    def test_it_refuses_a_file_and_text_together_and_stores_nothing(self, team_users, campaign):
        # The file was imported and the text dropped without a word: placements the client meant were missing.
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/import-placements/",
                                                    {**upload(GOOD), "text": "name\nTram screen\n"}, format="multipart")
        assert response.status_code == 400 and not campaign.placements.exists()
        assert response.json() == {"text": ["Send the CSV once: as `file` or as `text`, not both."]}
        # Blank text beside a file (an empty box of a form) is no second CSV.
        taken = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/import-placements/",
                                                 {**upload(GOOD), "text": " \n"}, format="multipart")
        assert taken.status_code == 201 and campaign.placements.count() == 2

    def test_it_stores_nothing_when_another_import_took_a_name_meanwhile(self, team_users, campaign, monkeypatch):
        store = bulk.store

        def racing(checked: bulk.CheckedFile):
            Placement.objects.create(campaign=campaign, name="Tram screen")  # another import, between check and store
            return store(checked)

        monkeypatch.setattr(bulk, "store", racing)
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/import-placements/", upload(GOOD),
                                                    format="multipart")
        assert response.status_code == 409
        assert response.json()["errors"] == [{"row": 3, "column": "name", "message": "The campaign already has a "
                                                                                     "placement with this name."}]
        assert list(campaign.placements.values_list("name", flat=True)) == ["Tram screen"]

    def test_a_dry_run_asked_for_in_the_form_body_stores_nothing_either(self, team_users, campaign):
        url = f"/api/campaigns/{campaign.pk}/import-placements/"
        response = signed_in(team_users.owner).post(url, {**upload(GOOD), "dry_run": "true"}, format="multipart")
        assert response.status_code == 200 and response.json()["dry_run"] is True
        assert Placement.objects.count() == 0

    def test_it_refuses_a_bad_dry_run_value(self, team_users, campaign):
        client = signed_in(team_users.owner)
        response = client.post(f"/api/campaigns/{campaign.pk}/import-placements/?dry_run=maybe", upload(GOOD),
                               format="multipart")
        assert response.status_code == 400 and "dry_run" in response.json()
        assert Placement.objects.count() == 0
        # A refusal of the query, not the rows' result: the schema said a 400 was always the latter (`rows`,
        # `errors` required), and a client validating against it refused this one.
        documented = client.get("/api/schema/?format=json").json()["paths"][
            "/api/campaigns/{id}/import-placements/"]["post"]["responses"]["400"]["content"]["application/json"]
        assert "rows" not in response.json() and {"$ref": "#/components/schemas/FieldErrors"} in documented[
            "schema"]["anyOf"]

    @pytest.mark.parametrize("query, body", [("", {"dryrun": "true"}), ("", {"dry-run": "1"}), ("?dryrun=1", {})])
    def test_a_misspelt_dry_run_is_refused_not_taken_for_an_import(self, team_users, campaign, query, body):
        # The body's or the query's unknown name was ignored: 201, and the file stored for real
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/import-placements/{query}",
                                                    {**upload(GOOD), **body}, format="multipart")
        assert response.status_code == 400
        (name, messages), = response.json().items()
        assert name in ("dryrun", "dry-run") and ("Unknown field" in messages[0] or "only dry_run" in messages[0])
        assert Placement.objects.count() == 0

    @pytest.mark.parametrize("query", ["?dry_run=1&dry_run=0", "?dry_run=0&dry_run=1", "?dry_run=1&dry_run=1"])
    def test_a_dry_run_sent_twice_is_refused_and_imports_nothing(self, team_users, campaign, query):
        # The query's last value was taken without a word: `?dry_run=1&dry_run=0` imported for real (201).
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/import-placements/{query}",
                                                    upload(GOOD), format="multipart")
        assert response.status_code == 400
        assert response.json() == {"dry_run": ["Sent 2 times in the query: send it once."]}
        assert Placement.objects.count() == 0

    def test_the_import_takes_the_format_query_as_every_endpoint_does(self, team_users, campaign):
        response = signed_in(team_users.owner).post(
            f"/api/campaigns/{campaign.pk}/import-placements/?dry_run=1&format=json", upload(GOOD), format="multipart")
        assert response.status_code == 200 and response.json()["rows"] == 2

    def test_it_refuses_viewers_and_outsiders(self, team_users, campaign):
        url = f"/api/campaigns/{campaign.pk}/import-placements/"
        assert signed_in(team_users.viewer).post(url, upload(GOOD), format="multipart").status_code == 403
        assert signed_in(team_users.outsider).post(url, upload(GOOD), format="multipart").status_code == 404
        assert APIClient().post(url, upload(GOOD), format="multipart").status_code == 401
        assert Placement.objects.count() == 0


@pytest.mark.django_db
class TestGenerate:
    @pytest.fixture
    def placements(self, campaign) -> list[Placement]:
        made = [Placement.objects.create(campaign=campaign, name=name) for name in ("B", "A", "C")]
        Placement.objects.create(campaign=campaign, name="Off", active=False)
        return made

    def test_it_starts_a_job_per_active_placement_in_order(self, team_users, campaign, placements, enqueued):
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/",
                                                    {"prompt": "a koi pond", "engine": "diffusion"}, format="json")
        assert response.status_code == 201, response.json()
        assert response.json()["started"] == 3
        assert [job.placement.name for job in enqueued] == ["A", "B", "C"]
        assert [g["id"] for g in response.json()["generations"]] == [job.pk for job in enqueued]
        assert all(job.content == f"http://TESTSERVER/R/{job.placement.slug}" for job in enqueued)

    def test_it_refuses_an_archived_campaign_with_one_message(self, team_users, campaign, placements, enqueued):
        campaign.archived = True
        campaign.save(update_fields=["archived"])
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/",
                                                    {"prompt": "a koi pond", "engine": "diffusion"}, format="json")
        assert response.status_code == 400
        assert response.json() == {"non_field_errors": ["The campaign is archived: bring it back first."]}
        assert enqueued == []

    def test_it_starts_only_the_chosen_placements(self, team_users, campaign, placements, enqueued):
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/", {
            "prompt": "p", "engine": "diffusion", "placements": [placements[2].pk, placements[0].pk]}, format="json")
        assert response.status_code == 201 and [job.placement.name for job in enqueued] == ["B", "C"]

    def test_it_answers_429_and_starts_none_without_room_for_all(self, team_users, campaign, placements, enqueued,
                                                                  settings):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "3/hour"}}
        assert TeamGenerationThrottle(campaign.team).allow_request(None, None)
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/",
                                                    {"prompt": "p", "engine": "diffusion"}, format="json")
        assert response.status_code == 429
        assert response.json()["detail"].startswith("Only 2 of the 3 generations can start now")
        assert "Expected available" not in response.json()["detail"]  # its own words say when, once
        # Room for all three once the one counted just now expires: an hour, not when the next slot frees.
        assert 3500 < int(response["Retry-After"]) <= 3600
        assert GenerationJob.objects.count() == 0 and enqueued == []

    def test_it_answers_503_and_starts_none_while_the_queue_does_not_answer(self, team_users, campaign, placements,
                                                                            queue_away):
        # It answered 201, "started": 3, for three jobs made and failed at once, each counted against the team's rate.
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/",
                                                    {"prompt": "p", "engine": "diffusion"}, format="json")
        assert response.status_code == 503 and response["Retry-After"] == "60"
        assert response.json()["detail"].startswith("The job queue is unavailable right now")
        assert GenerationJob.objects.count() == 0
        assert TeamGenerationThrottle(campaign.team).room() == TeamGenerationThrottle(campaign.team).num_requests

    def test_it_answers_503_with_no_retry_while_the_queue_refuses_the_password(self, team_users, campaign, placements,
                                                                               queue_refuses_password):
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/",
                                                    {"prompt": "p", "engine": "diffusion"}, format="json")
        assert response.status_code == 503 and "Retry-After" not in response
        assert response.json()["detail"] == ("The job queue refuses the site's password. Waiting will not mend it: "
                                             "whoever runs the site must put it right. No generation was started.")
        assert GenerationJob.objects.count() == 0

    def test_it_offers_no_retry_for_more_placements_than_the_rate(self, team_users, campaign, placements, enqueued,
                                                                  settings):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "2/hour"}}
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/",
                                                    {"prompt": "p", "engine": "diffusion"}, format="json")
        assert response.status_code == 429 and "Retry-After" not in response
        assert "choose at most 2 placements." in response.json()["detail"]

    def test_it_refuses_more_placements_than_an_import_holds(self, team_users, campaign, placements, enqueued):
        ids = [placements[0].pk] * (bulk.MAX_ROWS + 1)
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/",
                                                    {"prompt": "p", "engine": "diffusion", "placements": ids},
                                                    format="json")
        assert response.status_code == 400
        assert response.json()["placements"] == [f"Ensure this field has no more than {bulk.MAX_ROWS} elements."]
        assert enqueued == []

    @pytest.mark.parametrize("form", ["multipart", None])
    def test_an_id_no_database_holds_is_a_400_in_a_form_body_too(self, team_users, campaign, placements, enqueued,
                                                                 form):
        # A JSON body's parser refuses it; a form body's 99999999999999999999999 reached SQLite (OverflowError: 500)
        client = signed_in(team_users.owner)
        url = f"/api/campaigns/{campaign.pk}/generate/"
        data = {"prompt": "p", "engine": "diffusion", "placements": "99999999999999999999999"}
        response = client.post(url, data, format=form) if form else client.post(
            url, "prompt=p&engine=diffusion&placements=99999999999999999999999",
            content_type="application/x-www-form-urlencoded")
        assert response.status_code == 400
        assert response.json()["placements"] == [
            "Item 1: Ensure this value is less than or equal to 9223372036854775807."]
        assert enqueued == []

    def test_it_refuses_placements_of_other_campaigns_and_bad_parameters(self, team_users, campaign, placements,
                                                                        enqueued):
        other = Campaign.objects.create(team=team_users.other_team, name="Rival", destination="https://r.example/")
        theirs = Placement.objects.create(campaign=other, name="Theirs")
        client = signed_in(team_users.owner)
        url = f"/api/campaigns/{campaign.pk}/generate/"
        response = client.post(url, {"prompt": "p", "engine": "diffusion", "placements": [theirs.pk]}, format="json")
        assert response.status_code == 400 and "placements" in response.json()
        response = client.post(url, {"prompt": "p", "engine": "diffusion", "steps": 0}, format="json")
        assert response.status_code == 400
        assert enqueued == [] and GenerationJob.objects.count() == 0

    def test_it_shares_one_uploaded_picture_for_the_halftone_engine(self, team_users, campaign, placements,
                                                                    enqueued):
        buffer = io.BytesIO()
        Image.new("RGB", (160, 160), (200, 40, 90)).save(buffer, format="PNG")
        body = {"engine": "halftone", "picture": ContentFile(buffer.getvalue(), name="logo.png"),
                "placements": [placements[0].pk, placements[1].pk]}
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/", body, format="multipart")
        assert response.status_code == 201, response.json()
        assert [job.placement.name for job in enqueued] == ["A", "B"]
        assert all(job.engine == "halftone" and job.init_image.name for job in enqueued)
        assert enqueued[0].init_image.name != enqueued[1].init_image.name

    def test_a_picture_carrying_a_code_is_refused_even_the_first_placements(self, team_users, campaign, placements,
                                                                            enqueued):
        # Checked against the first placement's link only, a picture of A's code was drawn for B and C as well.

        first = placements[1]  # "A": the first by name
        picture = ContentFile(qr_png(f"http://testserver/r/{first.slug}"), name="code.png")
        body = {"engine": "halftone", "picture": picture, "placements": [first.pk, placements[0].pk]}
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/generate/", body, format="multipart")
        assert response.status_code == 400 and "already carries a QR code" in response.json()["picture"][0]
        assert enqueued == []

    def test_it_refuses_viewers(self, team_users, campaign, placements, enqueued):
        response = signed_in(team_users.viewer).post(f"/api/campaigns/{campaign.pk}/generate/",
                                                     {"prompt": "p", "engine": "diffusion"}, format="json")
        assert response.status_code == 403 and enqueued == []


@pytest.mark.django_db
class TestExports:
    def test_the_placements_export_imports_again(self, team_users, campaign):
        Placement.objects.create(campaign=campaign, name="Gate", kind="screen", scan_distance_m=3)
        response = signed_in(team_users.viewer).get(f"/api/campaigns/{campaign.pk}/placements/export/",
                                                    HTTP_ACCEPT="text/csv")
        assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
        text = streamed(response)
        other = Campaign.objects.create(team=team_users.team, name="Autumn", destination="https://shop.example.com/")
        imported = signed_in(team_users.owner).post(f"/api/campaigns/{other.pk}/import-placements/", upload(text),
                                                    format="multipart")
        assert imported.status_code == 201
        assert other.placements.get().scan_distance_m == 3 and other.placements.get().kind == "screen"

    def test_the_campaigns_export_keeps_to_the_users_teams_and_filters(self, team_users, campaign):
        Campaign.objects.create(team=team_users.team, name="Old", destination="https://a.example/", archived=True)
        Campaign.objects.create(team=team_users.other_team, name="Rival plan", destination="https://r.example/")
        rows = list(csv.DictReader(io.StringIO(streamed(signed_in(team_users.viewer).get("/api/campaigns/export/")))))
        assert sorted(row["name"] for row in rows) == ["Old", "Spring Sale"]
        active = streamed(signed_in(team_users.viewer).get("/api/campaigns/export/?archived=false"))
        assert "Spring Sale" in active and "Old" not in active
        assert signed_in(team_users.viewer).get("/api/campaigns/export/?team=abc").status_code == 400

    def test_exports_are_gzipped_when_asked_and_no_cache_keeps_them(self, team_users, campaign):
        client = signed_in(team_users.viewer)
        for url in ("/api/campaigns/export/", f"/api/campaigns/{campaign.pk}/placements/export/",
                    f"/api/campaigns/{campaign.pk}/scans/export/"):
            plain = client.get(url)
            zipped = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
            assert zipped.status_code == 200 and zipped["Content-Encoding"] == "gzip", url
            assert gzip.decompress(b"".join(zipped.streaming_content)).decode() == streamed(plain)
            for response in (plain, zipped):
                assert {"private", "no-store"} <= set(response["Cache-Control"].replace(" ", "").split(","))

    def test_the_scans_export_streams_the_range(self, team_users, campaign):
        placement = Placement.objects.create(campaign=campaign, name="Gate")
        ScanEvent.objects.create(placement=placement, os="iOS")
        old = ScanEvent.objects.create(placement=placement, os="Android")
        ScanEvent.objects.filter(pk=old.pk).update(time=timezone.now() - timedelta(days=40))
        rollup_rebuilds.rebuild(Placement.objects.all())  # what the drainer keeps; "lifetime" starts at the first scan
        client = signed_in(team_users.viewer)
        everything = streamed(client.get(f"/api/campaigns/{campaign.pk}/scans/export/"))
        assert "iOS" in everything and "Android" in everything
        recent = streamed(client.get(f"/api/campaigns/{campaign.pk}/scans/export/?range=7d"))
        assert "iOS" in recent and "Android" not in recent
        refused = client.get(f"/api/campaigns/{campaign.pk}/scans/export/?range=never")
        assert refused.status_code == 400 and refused.json()["range"][0].startswith("range must be one of")
        assert signed_in(team_users.outsider).get(f"/api/campaigns/{campaign.pk}/scans/export/").status_code == 404

    def test_the_schema_says_the_scans_export_defaults_to_every_stored_scan(self, team_users):
        # It said "Default 30d", the dashboard's default, while the export without a range has every stored scan.
        paths = signed_in(team_users.owner).get("/api/schema/?format=json").json()["paths"]

        def range_help(path: str) -> str:
            [parameter] = [p for p in paths[path]["get"]["parameters"] if p["name"] == "range"]
            return parameter["description"]

        assert "Default lifetime: every stored scan;" in range_help("/api/campaigns/{id}/scans/export/")
        assert "Default 30d;" in range_help("/api/campaigns/{id}/scans/")
        assert {p["name"] for p in paths["/api/campaigns/{id}/scans/export/"]["get"]["parameters"]} >= {"from", "to"}

    def test_the_scans_export_carries_repeats_local_times_and_the_retention_note(self, team_users, campaign):
        placement = Placement.objects.create(campaign=campaign, name="Gate")
        ScanEvent.objects.create(placement=placement, os="iOS", is_repeat=True)
        old = ScanEvent.objects.create(placement=placement, os="Android")
        ScanEvent.objects.filter(pk=old.pk).update(time=timezone.now() - timedelta(days=40))
        rollup_rebuilds.rebuild(Placement.objects.all())
        client = signed_in(team_users.viewer)
        response = client.get(f"/api/campaigns/{campaign.pk}/scans/export/?range=90d")
        rows = list(csv.DictReader(io.StringIO(streamed(response))))
        assert [row["is_repeat"] for row in rows] == ["false", "true"] and rows[1]["local_time"]
        assert "X-Qart-Export-Note" not in response
        ScanEvent.objects.filter(pk=old.pk).delete()  # retention: the rollups keep counting it
        response = client.get(f"/api/campaigns/{campaign.pk}/scans/export/?range=90d")
        assert "are no longer kept" in response["X-Qart-Export-Note"] and len(streamed(response).splitlines()) == 2
