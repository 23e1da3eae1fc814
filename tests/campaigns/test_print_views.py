"""A placement's code as files (`campaigns.print_views`): the plain code's SVG and PNG, and print files."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.conf import settings
from PIL import Image

from generator.core.codes import decoders, images, qr
from tests.campaigns.conftest import body, own_link


@pytest.mark.django_db
class TestCodeDownloads:
    def test_it_draws_one_svg_square_per_dark_module_of_the_short_link(self, client, team_users, placement):
        client.force_login(team_users.viewer)
        response = client.get(f"/campaigns/placements/{placement.pk}/code.svg?download=1")
        svg = body(response)
        short = f"http://TESTSERVER/R/{placement.slug}"  # the link in capitals: QR's alphanumeric mode
        matrix = qr.encode(short).matrix
        assert response["Content-Type"] == "image/svg+xml" and "attachment" in response["Content-Disposition"]
        assert svg.count("<rect ") == int(matrix.sum())
        side = matrix.shape[0] + 8
        assert f'viewBox="0 0 {side} {side}"' in svg and short in svg
        # The squares sit exactly on the dark modules (offset by the 4-module quiet zone).
        squares = {(int(y) - 4, int(x) - 4) for x, y in re.findall(r'<rect x="(\d+)" y="(\d+)"', svg)}
        assert squares == {(int(r), int(c)) for r, c in zip(*matrix.nonzero(), strict=True)}

    def test_it_serves_a_png_that_decodes_to_the_short_link(self, client, team_users, placement):
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/code.png")
        image = Image.open(io.BytesIO(response.content))
        assert response["Content-Type"] == "image/png" and image.size == (2048, 2048)
        assert decoders.read_zxing(images.to_gray(image)) == [f"http://TESTSERVER/R/{placement.slug}"]


@pytest.mark.django_db
class TestPrintDownloads:
    def test_it_sends_a_verified_pdf_of_the_plain_code_at_its_width(self, client, team_users, placement):
        import pypdfium2 as pdfium

        client.force_login(team_users.viewer)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=20cm&bleed=3mm&crop_marks=1")
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        assert 'filename="qart-' in response["Content-Disposition"]
        trim = pdfium.PdfDocument(response.content)[0].get_trimbox()
        assert (trim[2] - trim[0]) / 72 * 25.4 == pytest.approx(200, abs=0.01)

    def test_a_file_with_cautions_comes_after_the_page_says_them(self, client, team_users, placement):
        # The API sends the preflight's warnings in a header; a person at the print form must read them before the
        # file: a 5 mm code on a poster is too small to scan from anywhere.
        client.force_login(team_users.viewer)
        url = f"/campaigns/placements/{placement.pk}/print?width=5mm&format=pdf"
        page = client.get(url)
        html = body(page)
        assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
        assert "Before you print this file" in html and "does not scan" in html and "print it larger" in html
        assert 'value="5mm"' in html  # the options as typed
        confirm = f'href="/campaigns/placements/{placement.pk}/print?width=5mm&amp;format=pdf&amp;confirm=1"'
        assert confirm in html
        response = client.get(url + "&confirm=1")
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        fine = client.get(f"/campaigns/placements/{placement.pk}/print?width=20cm&format=pdf")
        assert fine["Content-Type"] == "application/pdf"  # nothing to say: the file at once

    def test_a_code_of_an_archived_campaign_is_printed_after_saying_where_it_leads(self, client, team_users,
                                                                                 placement):
        from rest_framework.test import APIClient

        placement.campaign.fallback_url = "https://example.com/ended"
        placement.campaign.set_archived(True)
        placement.campaign.save()
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/print?width=20cm&format=pdf"))
        assert "fallback address https://example.com/ended now, because its campaign is archived" in html
        api = APIClient()
        api.force_authenticate(team_users.viewer)
        answer = api.get(f"/api/placements/{placement.pk}/print/?width=20cm&format=svg")
        assert answer.status_code == 200
        assert any("its campaign is archived" in w for w in json.loads(answer["X-Qart-Print-Report"])["warnings"])
        # Said as it is at each request, never kept with a made file (large ones are kept a day).
        placement.campaign.set_archived(False)
        placement.campaign.save()
        again = api.get(f"/api/placements/{placement.pk}/print/?width=20cm&format=svg")
        assert not any("archived" in w for w in json.loads(again["X-Qart-Print-Report"])["warnings"])

    def test_one_person_has_one_print_file_built_at_a_time(self, client, team_users, placement):
        # A print file is built in the request: a second of the same person's at the same time is refused (429);
        # someone else's is not, and the person's next one after it is.
        from rest_framework.test import APIClient

        from campaigns import printfiles

        redis = printfiles.redis_connection()
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=svg"
        busy = f"{settings.QART['REDIS_PREFIX']}print-building:{team_users.viewer.pk}"
        redis.set(busy, "made here", ex=60)  # as while the viewer's first request builds
        client.force_login(team_users.viewer)
        page = client.get(url)
        assert page.status_code == 429 and printfiles.BUSY in page.content.decode()
        api = APIClient()
        api.force_authenticate(team_users.viewer)
        answer = api.get(f"/api/placements/{placement.pk}/print/?width=5cm&format=svg")
        assert answer.status_code == 429 and answer.json() == {"detail": printfiles.BUSY}
        assert answer["Retry-After"] == "5"
        client.force_login(team_users.owner)
        assert client.get(url).status_code == 200
        redis.delete(busy)
        client.force_login(team_users.viewer)
        assert client.get(url).status_code == 200 and redis.get(busy) is None  # the mark goes with the build

    def test_a_large_print_file_is_made_by_a_worker_then_downloaded_from_storage(self, client, team_users,
                                                                                 media_storage, placement,
                                                                                 print_queue, monkeypatch):
        from django.core.files.storage import default_storage
        from rest_framework.test import APIClient

        from campaigns import print_builds, printfiles
        from tests.campaigns.conftest import make_art

        placement.artwork = make_art(team_users.team, team_users.owner, own_link(placement))
        placement.save()
        # confirm=1: a 5 cm poster does not scan from a poster's distance (the cautions page; tested below)
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1"
        with monkeypatch.context() as small:
            small.setattr(print_builds, "INLINE_PIXELS", 10**8)
            inline = client_file(client, team_users.viewer, url)  # small: made in the request

        asked = client.head(url)
        assert asked.status_code == 409 and print_queue.count == 0  # a HEAD asks, it does not order
        making = client.get(url)
        html = body(making)
        assert making.status_code == 202 and print_builds.MAKING in html
        assert f'<noscript><meta http-equiv="refresh" content="{print_builds.RETRY_SECONDS}"></noscript>' in html
        assert f'data-print-url="{url.replace("&", "&amp;")}"' in html  # asked again with HEAD by the script
        assert client.get(url).status_code == 202 and print_queue.count == 1  # asked again: queued once
        asked = client.head(url)
        assert asked.status_code == 202 and asked.templates == []  # the waiting page's script: no page drawn
        other = client.get(f"/campaigns/placements/{placement.pk}/print?width=6cm&format=png&dpi=100")
        assert other.status_code == 429 and printfiles.BUSY in body(other)  # one of the viewer's at a time

        (job,) = print_queue.jobs
        assert job.func_name == "campaigns.print_builds.build"
        assert print_builds.build(*job.args).startswith("made print-files/")
        assert print_queue.connection.get(printfiles.building_mark(team_users.viewer.pk)) is None
        made = client.get(url)
        assert made.status_code == 200 and made["Content-Type"] == "image/png"
        assert b"".join(made.streaming_content) == inline and 'filename="qart-' in made["Content-Disposition"]
        head = client.head(url)
        assert head.status_code == 200 and int(head["Content-Length"]) == len(inline)
        api = APIClient()
        api.force_authenticate(team_users.viewer)
        answer = api.get(f"/api/placements/{placement.pk}/print/?width=5cm&format=png&dpi=100")
        assert answer.status_code == 200 and b"".join(answer.streaming_content) == inline
        assert json.loads(answer["X-Qart-Print-Report"])["width_mm"] == 50.0

        (stored,) = default_storage.listdir(print_builds.FOLDER)[1]
        default_storage.delete(f"{print_builds.FOLDER}/{stored}")  # gone (the daily upkeep): made again
        assert client.get(url).status_code == 202 and print_queue.count == 1

    def test_a_made_file_is_not_served_once_its_artwork_fails_the_scan_check(self, client, team_users, placement,
                                                                             print_queue):
        from campaigns import print_builds
        from tests.campaigns.conftest import make_art

        placement.artwork = make_art(team_users.team, team_users.owner, own_link(placement))
        placement.save()
        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100"
        assert client.get(url).status_code == 202
        print_builds.build(*print_queue.jobs[0].args)
        assert client.get(url).status_code == 200
        type(placement.artwork).objects.filter(pk=placement.artwork.pk).update(verdict="fail", scan_probability=0.0)
        refused = client.get(url)
        assert refused.status_code == 409 and "Will not scan — do not print" in body(refused)

    @pytest.mark.parametrize(("query", "words"), [("width=" + "9" * 400 + "mm&format=png", "between"),
                                                  ("width=50cm&bleed=" + "9" * 400 + "mm&format=png", "bleed"),
                                                  ("width=99m&format=png", "between"),
                                                  ("width=50cm&dpi=99999&format=tiff", "resolution"),
                                                  ("width=50cm&format=bmp", "formats")])
    def test_options_that_cannot_be_met_are_refused_at_once_not_queued(self, client, team_users, placement,
                                                                       print_queue, query, words):
        client.force_login(team_users.owner)
        for answer in (client.get(f"/campaigns/placements/{placement.pk}/print?{query}"),
                       client.get(f"/api/placements/{placement.pk}/print/?{query}")):
            assert answer.status_code == 400 and words in answer.content.decode()
        assert print_queue.count == 0

    def test_the_api_says_when_to_ask_again_and_a_workers_refusal_is_the_answer(self, team_users, placement,
                                                                                 print_queue, monkeypatch):
        from rest_framework.test import APIClient

        from campaigns import print_builds, printfiles

        api = APIClient()
        api.force_authenticate(team_users.owner)
        url = f"/api/placements/{placement.pk}/print/?width=5cm&format=tiff&dpi=100"
        answer = api.get(url)
        assert answer.status_code == 202 and answer["Retry-After"] == str(print_builds.RETRY_SECONDS)
        assert answer.json() == {"detail": print_builds.MAKING, "retry_after": print_builds.RETRY_SECONDS}

        def does_not_scan(placement, short_url, spec):
            raise printfiles.Refused("The TIFF as written does not scan when read back.", 422)

        monkeypatch.setattr(printfiles, "made_and_checked", does_not_scan)
        (job,) = print_queue.jobs
        assert print_builds.build(*job.args).startswith("refused: ")
        answer = api.get(url)
        assert answer.status_code == 422 and answer.json() == {"detail": "The TIFF as written does not scan when "
                                                                         "read back."}

    def test_a_build_that_failed_or_was_lost_says_so_and_is_tried_again(self, client, team_users, placement,
                                                                         print_queue, monkeypatch):
        from rq.job import Job

        from campaigns import print_builds, printfiles

        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100"
        assert client.get(url).status_code == 202
        (job,) = print_queue.jobs
        Job.fetch(job.id, connection=print_queue.connection).delete()  # its worker was killed, the job lost
        lost = client.get(url)
        assert lost.status_code == 503 and print_builds.COULD_NOT in body(lost)
        # Let go: kept, it refused the person's every other file for BUILD_SECONDS (test_print_builds)
        assert print_queue.connection.get(printfiles.building_mark(team_users.owner.pk)) is None

        print_queue.connection.delete(*print_queue.connection.keys(f"{settings.QART['REDIS_PREFIX']}print-*"))
        assert client.get(url).status_code == 202 and print_queue.count == 1  # half a minute later: queued again

        def storage_away(placement, short_url, spec):
            raise printfiles.Refused(print_builds.STORAGE_AWAY, 503)

        monkeypatch.setattr(printfiles, "made_and_checked", storage_away)
        print_builds.build(*print_queue.jobs[0].args)
        assert client.get(url).status_code == 503
        ttl = print_queue.connection.ttl(f"{settings.QART['REDIS_PREFIX']}print-file:{print_queue.jobs[0].args[0]}")
        assert 0 < ttl <= print_builds.TROUBLE_SECONDS  # a passing trouble is not the answer for long

    def test_the_waiting_pages_question_after_redis_lost_the_build_makes_it_ask_again(self, client, team_users,
                                                                                       placement, print_queue):
        # make run's stop (its Redis keeps nothing) or a Redis restart lost the build and what was known of it: the
        # waiting page's script, which asks with HEAD, got 202 "being made" for ever, and nothing made the file.
        from rest_framework.test import APIClient

        from campaigns import print_builds

        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100"
        assert client.get(url).status_code == 202
        print_queue.empty()  # the job, and what is known of the file and who waits for it
        print_queue.connection.delete(*print_queue.connection.keys(f"{settings.QART['REDIS_PREFIX']}print-*"))
        asked = client.head(url)
        assert asked.status_code not in (200, 202) and print_queue.count == 0  # the script reloads the page
        api = APIClient()
        api.force_authenticate(team_users.owner)
        assert api.head(f"/api/placements/{placement.pk}/print/?width=5cm&format=png&dpi=100").status_code == 409
        again = client.get(url)  # the reload
        assert again.status_code == 202 and print_builds.MAKING in body(again) and print_queue.count == 1

    def test_the_storage_away_when_a_made_file_is_asked_for_is_503_with_the_reason(self, client, team_users,
                                                                                    placement, print_queue,
                                                                                    monkeypatch):
        from django.core.files.storage import default_storage

        from campaigns import print_builds
        from qartsite.storage import MediaUnavailable

        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100"
        client.get(url)
        print_builds.build(*print_queue.jobs[0].args)

        def away(*args, **kwargs):
            raise MediaUnavailable("The media storage could not look up it")

        monkeypatch.setattr(type(default_storage._wrapped), "exists", away)
        answer = client.get(url)
        assert answer.status_code == 503 and print_builds.STORAGE_AWAY in body(answer)

    def test_without_a_worker_on_the_queue_a_large_file_is_made_in_the_request(self, client, team_users, placement,
                                                                                print_queue, monkeypatch):
        from campaigns import print_builds

        monkeypatch.setattr(print_builds, "workers_on", lambda queue: 0)
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1")
        assert response.status_code == 200 and response["Content-Type"] == "image/png" and print_queue.count == 0

    def test_it_sends_artwork_as_tiff_with_its_dpi(self, client, team_users, media_storage, placement):
        from tests.campaigns.conftest import make_art

        placement.artwork = make_art(team_users.team, team_users.owner, own_link(placement))
        placement.save()
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=4cm&format=tiff&dpi=200&cmyk=1"
                              "&confirm=1")
        image = Image.open(io.BytesIO(response.content))
        assert response.status_code == 200 and image.mode == "CMYK" and round(image.info["dpi"][0]) == 200

    @pytest.mark.parametrize(("query", "words"), [("width=20", "a unit"), ("width=20cm&format=gif", "formats"),
                                                  ("width=20cm&dpi=9999", "resolution"), ("", "how wide"),
                                                  ("width=abc", "a unit"), ("width=0cm", "between"),
                                                  ("width=9999cm", "between")])
    def test_it_answers_bad_options_with_the_page_and_one_message(self, client, team_users, placement, query, words):
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?{query}")
        html = body(response)
        assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
        assert '<header class="topbar">' in html and f"<h1>{placement.name} " in html
        summary = re.search(r'id="print-error" role="alert"[^>]*>\s*<p>No print file yet:</p>\s*<ul>\s*<li>(.*?)</li>',
                            html)
        assert words in summary.group(1)
        assert "Traceback" not in html

    def test_it_keeps_every_print_option_as_typed(self, client, team_users, placement):
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=abc&dpi=600&bleed=2mm"
                              f"&format=tiff&crop_marks=1&cmyk=1")
        form = re.search(r'<form method="get" action="[^"]+/print" class="form print-form">(.*?)</form>',
                         body(response), re.S).group(1)
        assert response.status_code == 400
        assert 'name="width" value="abc"' in form and 'name="dpi" value="600"' in form
        assert 'name="bleed" value="2mm"' in form and '<option value="tiff" selected>' in form
        assert 'name="crop_marks" value="1" checked' in form and 'name="cmyk" value="1" checked' in form

    def test_its_refusal_page_ranges_lead_back_to_the_page(self, client, team_users, placement):
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/print?width=abc"))
        page = f"/campaigns/placements/{placement.pk}/"
        assert f'href="{page}?range=7d"' in html and f'class="range-custom" action="{page}"' in html

    def test_outsiders_get_404(self, client, team_users, placement):
        client.force_login(team_users.outsider)
        assert client.get(f"/campaigns/placements/{placement.pk}/print?width=20cm").status_code == 404

    def test_a_print_file_made_in_the_request_answers_304_and_ranges(self, client, team_users, placement):
        # Made again for every request, the same bytes each time: its ETag is their hash, never a promise of bytes
        # that could differ.
        url = f"/campaigns/placements/{placement.pk}/print?width=20cm&format=pdf"
        client.force_login(team_users.viewer)
        first = client.get(url)
        data, etag = first.content, first["ETag"]
        assert first["Accept-Ranges"] == "bytes" and first["Cache-Control"] == "private"
        assert client.get(url)["ETag"] == etag
        assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
        tail = client.get(url, HTTP_RANGE="bytes=-100", HTTP_IF_RANGE=etag)
        assert tail.status_code == 206 and tail.content == data[-100:]
        assert tail["Content-Range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"
        assert client.get(url, HTTP_RANGE=f"bytes={len(data)}-").status_code == 416
        # No modification date: If-Unmodified-Since is ignored (RFC 9110 13.1.4), where Django answered 412.
        assert client.get(url, HTTP_IF_UNMODIFIED_SINCE="Mon, 01 Jan 1990 00:00:00 GMT").content == data
        # Another placement's file, whatever the validators: the same 404 as ever.
        client.force_login(team_users.outsider)
        for headers in ({"HTTP_IF_NONE_MATCH": etag}, {"HTTP_RANGE": "bytes=0-9"}, {"HTTP_IF_NONE_MATCH": "*"}):
            refused = client.get(url, **headers)
            assert refused.status_code == 404 and "404.html" in [t.name for t in refused.templates]

    def test_a_print_file_a_worker_made_resumes_where_its_download_stopped(self, client, team_users, media_storage,
                                                                          placement, print_queue, monkeypatch):
        from rest_framework.test import APIClient

        from campaigns import print_builds

        monkeypatch.setattr(print_builds, "INLINE_PIXELS", 0)  # every raster is made by a worker, kept in storage
        query = "width=5cm&format=png&dpi=100"
        url = f"/campaigns/placements/{placement.pk}/print?{query}&confirm=1"
        client.force_login(team_users.viewer)
        assert client.get(url).status_code == 202
        (job,) = print_queue.jobs
        print_builds.build(*job.args)
        whole = client.get(url)
        data, etag = b"".join(whole.streaming_content), whole["ETag"]
        assert whole.status_code == 200 and whole["Last-Modified"] and whole["Accept-Ranges"] == "bytes"
        half = len(data) // 2
        rest = client.get(url, HTTP_RANGE=f"bytes={half}-", HTTP_IF_RANGE=etag)
        assert rest.status_code == 206 and b"".join(rest.streaming_content) == data[half:]
        assert rest["Content-Range"] == f"bytes {half}-{len(data) - 1}/{len(data)}"
        assert rest["Content-Disposition"] == whole["Content-Disposition"]
        assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
        stale = client.get(url, HTTP_RANGE=f"bytes={half}-", HTTP_IF_RANGE='"an-earlier-file"')
        assert stale.status_code == 200 and b"".join(stale.streaming_content) == data
        head = client.head(url)
        assert head.status_code == 200 and head["ETag"] == etag and head["Content-Length"] == str(len(data))
        api = APIClient()
        api.force_authenticate(team_users.viewer)
        first = api.get(f"/api/placements/{placement.pk}/print/?{query}", HTTP_RANGE="bytes=0-99")
        assert first.status_code == 206 and b"".join(first.streaming_content) == data[:100]
        assert json.loads(first["X-Qart-Print-Report"])["width_mm"] == 50.0
        assert api.get(f"/api/placements/{placement.pk}/print/?{query}", HTTP_IF_NONE_MATCH=etag).status_code == 304

    def test_it_says_the_image_storage_is_unavailable_and_the_page_still_shows(self, client, team_users, placement,
                                                                                request):
        from tests.campaigns.conftest import make_art

        placement.artwork = make_art(team_users.team, team_users.owner, own_link(placement))
        placement.printed_width_cm = 20
        placement.save()
        request.getfixturevalue("unreachable_media")  # the bucket goes away
        client.force_login(team_users.owner)

        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=4cm&format=png")
        assert response.status_code == 503
        assert re.search(r'id="print-error" role="alert"[^>]*>\s*<p>No print file yet:</p>\s*<ul>\s*<li>The image '
                         r'storage is unavailable right now; try the print file again in a minute\.', body(response))
        page = client.get(f"/campaigns/placements/{placement.pk}/")
        assert page.status_code == 200 and "the image storage is unavailable" in page.content.decode()


def client_file(client, user, url: str) -> bytes:
    """The file `user` downloads from `url`, made in the request."""
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, body(response)
    return response.content
