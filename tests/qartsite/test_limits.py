"""The request-size cap, file parts included (qartsite.limits): 413 before a body over the cap is read, and an
upload whose files pass the cap stopped while it streams. The cap is set to 1,000 bytes to keep test data small."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.test.client import BOUNDARY, encode_multipart

from campaigns.models import Campaign
from qartsite.limits import FIELDS_SLACK, RequestTooLarge, UploadLimitHandler
from tests.clients import logged_in
from tests.qartsite.server_calls import asgi_call, wsgi_call

CAP = 1000


@pytest.fixture(autouse=True)
def _small_cap(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = CAP


def picture(size: int) -> SimpleUploadedFile:
    return SimpleUploadedFile("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (size - 8), content_type="image/png")


@pytest.fixture
def view_calls(monkeypatch) -> list[str]:
    """Calls that reached the generation page's and the API's create, recorded instead of run."""
    calls: list[str] = []
    monkeypatch.setattr("generator.views.GenerationForm", lambda *args, **kwargs: calls.append("page"))
    monkeypatch.setattr("generator.api.GenerationViewSet.create",
                        lambda *args, **kwargs: calls.append("api") or HttpResponse(status=204))
    return calls


@pytest.mark.django_db
class TestRequestSizeMiddleware:
    def test_it_answers_413_to_a_body_over_the_cap_before_the_page_reads_it(self, team_users, view_calls):
        response = logged_in(team_users.owner).post("/generate/", {"content": "x", "picture": picture(100 * 1024)})
        assert response.status_code == 413 and view_calls == []
        assert response["Content-Type"].startswith("text/plain")
        assert response.content.decode() == ("What you sent is 100 KB; up to 1 KB is accepted (its files count "
                                             "together, a picture and a logo alike). Send a smaller file, or less at "
                                             "once, and try again.")

    def test_it_answers_the_api_in_json(self, team_users, view_calls):
        response = logged_in(team_users.owner).post("/api/generations/", {"content": "x",
                                                                          "picture": picture(100 * 1024)})
        assert response.status_code == 413 and view_calls == []
        assert response.json() == {"detail": "What you sent is 100 KB; up to 1 KB is accepted (its files count "
                                             "together, a picture and a logo alike). Send a smaller file, or less at "
                                             "once, and try again."}

    @pytest.mark.parametrize("path", ["/api", "/api.json", "/api%0A"])
    def test_it_answers_any_address_of_the_apis_in_json(self, team_users, path):
        # Outside /api/, these were answered in plain text, where the API's 404 that follows is JSON.
        response = logged_in(team_users.owner).post(path, {"picture": picture(100 * 1024)})
        assert response.status_code == 413 and response.json()["detail"].startswith("What you sent is 100 KB;")

    def test_it_answers_415_to_a_compressed_body_before_any_parser_reads_it(self, team_users, view_calls):
        # Nothing decodes a content coding: a gzipped JSON body was "JSON parse error - the body is not UTF-8 text".
        client = logged_in(team_users.owner)
        body = gzip.compress(json.dumps({"content": "x"}).encode())
        response = client.post("/api/generations/", body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 415 and response["Accept-Encoding"] == "identity" and view_calls == []
        assert response.json() == {"detail": "The body is sent with Content-Encoding “gzip”: send it uncompressed, "
                                             "without Content-Encoding."}
        response = client.post("/generate/", "content=x", content_type="application/x-www-form-urlencoded",
                               HTTP_CONTENT_ENCODING="br")
        assert response.status_code == 415 and view_calls == []
        # identity is no coding, and a body-less request is not refused for the header
        assert client.post("/api/generations/", {"content": "x"}, content_type="application/json",
                           HTTP_CONTENT_ENCODING="identity").status_code == 204
        assert client.get("/api/generations/", HTTP_CONTENT_ENCODING="gzip").status_code == 200

    def test_it_quotes_the_coding_as_every_message_quotes_a_value(self, team_users, view_calls):
        # Cut at 40 characters of its own, with no "…" to say so, and a tab sent raw
        response = logged_in(team_users.owner).post("/api/generations/", b"{}", content_type="application/json",
                                                    HTTP_CONTENT_ENCODING="x-" + "z" * 100 + "\t")
        assert response.status_code == 415
        assert response.json()["detail"].startswith(f"The body is sent with Content-Encoding “x-{'z' * 58}…”:")
        response = logged_in(team_users.owner).post("/api/generations/", b"{}", content_type="application/json",
                                                    HTTP_CONTENT_ENCODING="gz\tip")
        assert response.json()["detail"].startswith("The body is sent with Content-Encoding “gz\\u0009ip”:")

    def test_its_json_is_written_as_the_apis_views_write_theirs(self, team_users, view_calls):
        # json.dumps escaped every character past ASCII ("\\u201cgzip\\u201d") where DRF's answers are UTF-8.
        from rest_framework.renderers import JSONRenderer

        response = logged_in(team_users.owner).post("/api/generations/", gzip.compress(b"{}"),
                                                    content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 415 and response["Content-Type"] == "application/json"
        assert response.content == JSONRenderer().render(response.json())
        assert "Content-Encoding “gzip”:".encode() in response.content

    def test_it_refuses_anonymous_bodies_too_without_reading_them(self, view_calls):
        assert Client().post("/generate/", {"picture": picture(100 * 1024)}).status_code == 413

    def test_it_answers_a_browsers_form_with_the_sites_page_and_a_link_back(self, team_users, view_calls, enqueued):
        # With JavaScript off the picture was sent, and the answer was the plain text above: no page, no way back
        browser = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
        for size in (100 * 1024, 10 * 1024):  # past the cap and its room for fields (the middleware), then within it
            response = logged_in(team_users.owner).post("/generate/?placement=7", {
                "content": "x", "picture": picture(size)}, **browser)
            html = response.content.decode()
            assert response.status_code == 413 and response["Content-Type"] == "text/html; charset=utf-8"
            assert ('<p data-too-large>What you sent is over 1 KB (its files count together, a picture and a logo '
                    'alike); choose a smaller file.</p>') in html
            assert '<a href="/generate/?placement=7">Back to the form</a>' in html and "<title>" in html
        assert view_calls == [] and enqueued == []
        # The API and the pages' scripts (which do not ask for HTML) keep their messages
        assert logged_in(team_users.owner).post("/api/generations/", {"picture": picture(100 * 1024)},
                                                **browser)["Content-Type"] == "application/json"

    def test_its_page_carries_the_sites_headers(self, team_users):
        # Answered before the middleware that sets them, the page went out without any: it could be framed
        response = logged_in(team_users.owner).post("/generate/", {"picture": picture(100 * 1024)},
                                                    HTTP_ACCEPT="text/html")
        assert response.status_code == 413 and response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff" and "Referrer-Policy" in response
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]

    def test_its_page_links_back_to_no_other_site(self, rf):
        from qartsite.limits import too_large

        request = rf.post("/generate/", HTTP_ACCEPT="text/html")
        request.path = "//evil.example/generate/"  # as a server hands on a request for that path
        response = too_large(request, CAP + FIELDS_SLACK + 1)
        assert response.status_code == 413 and '<a href="/">Back to the form</a>' in response.content.decode()

    def test_the_default_cap_reads_as_a_whole_number(self, rf, settings):
        # Every 413 said "10.0 MB": to the API, to scripts and on the page
        from qartsite.limits import too_large

        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 2**20  # the default (QART_MAX_UPLOAD_BYTES)
        api = too_large(rf.post("/api/generations/"), 12_900_000)
        assert json.loads(api.content)["detail"].startswith("What you sent is 12.3 MB; up to 10 MB is accepted")
        page = too_large(rf.post("/generate/", {"picture": picture(100)}, HTTP_ACCEPT="text/html"), None)
        assert "<p data-too-large>What you sent is over 10 MB (" in page.content.decode()

    def test_it_says_a_picture_and_a_logo_count_together(self, team_users, enqueued):
        # Each file within the cap, the two together over it: every 413 said "The file is over 1 KB", of neither file
        def files() -> dict:  # anew for each request: a file sent once is read to its end
            return {"content": "x", "picture": picture(600), "logo": picture(600)}

        together = "(its files count together, a picture and a logo alike)"
        page = logged_in(team_users.owner).post("/generate/", files(), HTTP_ACCEPT="text/html")
        assert page.status_code == 413
        assert f"<p data-too-large>What you sent is over 1 KB {together}; choose a smaller file.</p>" in (
            page.content.decode())
        for path in ("/generate/", "/api/generations/"):  # plain text, JSON
            response = logged_in(team_users.owner).post(path, files())
            assert response.status_code == 413 and f"What you sent is over 1 KB {together}." in (
                response.content.decode()), path
        assert enqueued == []


    def test_it_lets_a_request_within_the_cap_through(self, team_users, view_calls):
        response = logged_in(team_users.owner).post("/api/generations/", {"content": "x", "picture": picture(900)})
        assert response.status_code == 204 and view_calls == ["api"]

    def test_it_answers_413_when_the_files_pass_the_cap_in_a_body_within_the_limit(self, team_users, enqueued):
        # 10 KB: under the cap plus FIELDS_SLACK, so only the upload handler can stop it.
        assert 10 * 1024 < CAP + FIELDS_SLACK
        for path in ("/generate/", "/api/generations/"):
            response = logged_in(team_users.owner).post(path, {"content": "x", "picture": picture(10 * 1024)})
            assert response.status_code == 413, path
            assert "What you sent is over 1 KB (its files count together" in response.content.decode()
        assert enqueued == []


class TestUploadLimitHandler:
    def test_it_stops_reading_a_body_longer_than_it_declared(self, rf):
        # Under ASGI the parser reads until the body ends, whatever Content-Length said.
        body = encode_multipart(BOUNDARY, {"picture": picture(300 * 1024)})
        request = rf.post("/generate/", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
        stream = io.BytesIO(body)
        parser = MultiPartParser({**request.META, "CONTENT_LENGTH": "500"}, stream,
                                 [UploadLimitHandler(request), MemoryFileUploadHandler(request)])
        with pytest.raises(RequestTooLarge):
            parser.parse()
        assert request.upload_too_large and stream.tell() < len(body) / 2


@pytest.fixture
def api_campaign(team_users) -> tuple[Campaign, str]:
    """(a campaign named "Spring", an API token of its team's owner)."""
    from qartsite import tokens

    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://example.com/")
    return campaign, tokens.make_token(team_users.owner, "wsgi")[1]


@pytest.fixture
def patch_campaign(api_campaign):
    """`patch(application, body, headers, **wsgi_call options)`: a PATCH of a campaign through `application` with an
    owner's token; (status, body, the campaign as stored after it)."""
    campaign, token = api_campaign

    def patch(application, body: bytes, headers: dict, **options) -> tuple[str, bytes, Campaign]:
        status, _, content = wsgi_call(application, "PATCH", f"/api/campaigns/{campaign.pk}/", body, {
            "HTTP_AUTHORIZATION": f"Token {token}", "CONTENT_TYPE": "application/json", "HTTP_HOST": "testserver",
            **headers}, **options)
        campaign.refresh_from_db()
        return status, content, campaign

    return patch


@pytest.mark.django_db
class TestChunkedBodies:
    @pytest.fixture
    def patch_name(self, patch_campaign):
        from django.core.handlers.wsgi import WSGIHandler

        from qartsite.limits import ChunkedBodies

        def patch(body: bytes, terminated: bool = True, wrapped: bool = True):
            application = ChunkedBodies(WSGIHandler()) if wrapped else WSGIHandler()
            return patch_campaign(application, body, {}, chunked=True, terminated=terminated)

        return patch

    def test_it_reads_a_body_sent_in_chunks_where_the_server_marks_its_end(self, patch_name):
        status, _, campaign = patch_name(b'{"name": "Renamed"}')
        assert status.startswith("200") and campaign.name == "Renamed"

    def test_it_answers_411_where_the_server_cannot_say_where_the_body_ends(self, patch_name):
        status, content, campaign = patch_name(b'{"name": "Renamed"}', terminated=False)
        assert status.startswith("411") and b"Content-Length" in content and campaign.name == "Spring"

    def test_it_answers_413_past_the_cap_reading_no_more_than_one_byte_over(self, patch_name):
        status, content, campaign = patch_name(b'{"name": "' + b"x" * (CAP + FIELDS_SLACK) + b'"}')
        # Its size is unknown past what was read: not "What you sent is 66 KB"
        assert status.startswith("413") and b"What you sent is over 1 KB (" in content and campaign.name == "Spring"


@pytest.mark.django_db
class TestWholeBodies:
    @pytest.fixture
    def patch(self, patch_campaign):
        from django.core.handlers.wsgi import WSGIHandler

        from qartsite.limits import WholeBodies

        def patch(body: bytes, declared: int, kind: str = "application/json"):
            return patch_campaign(WholeBodies(WSGIHandler()), body, {"CONTENT_TYPE": kind,
                                                                     "CONTENT_LENGTH": str(declared)})

        return patch

    def test_a_body_cut_short_changes_nothing(self, patch):
        # The client went away after 52 of its 76 bytes: Django read the 52, and the destination became "…/spr".
        body = b"destination=https%3A%2F%2Fexample.com%2Fspring-sale%2Flanding-page"
        status, content, campaign = patch(body[:52], len(body), "application/x-www-form-urlencoded")
        assert status.startswith("400") and b"cut short" in content
        assert campaign.destination == "https://example.com/"

    def test_a_whole_body_is_read(self, patch):
        body = b'{"name": "Renamed"}'
        status, _, campaign = patch(body, len(body))
        assert status.startswith("200") and campaign.name == "Renamed"


@pytest.mark.django_db
def test_head_answers_carry_no_body(team_users):
    # gunicorn sends whatever the application returns, after the headers: on a kept-alive connection the next answer
    # was read from the middle of this one's body.
    from django.core.handlers.wsgi import WSGIHandler

    from qartsite import tokens
    from qartsite.heads import HeadWithoutBody

    _, token = tokens.make_token(team_users.owner, "head")
    application = HeadWithoutBody(WSGIHandler())
    headers = {"HTTP_AUTHORIZATION": f"Token {token}", "HTTP_HOST": "testserver"}
    got = wsgi_call(application, "GET", "/api/teams/", b"", headers)
    head = wsgi_call(application, "HEAD", "/api/teams/", b"", headers)
    assert got[0].startswith("200") and got[2]
    assert head[0].startswith("200") and head[2] == b"" and head[1]["Content-Length"] == str(len(got[2]))


def chunks(size: int, part: int = 64 * 1024) -> Iterator[bytes]:
    """`size` bytes of a JSON string's inside, in parts as a server hands them on; made only as they are read."""
    for start in range(0, size, part):
        yield b"x" * min(part, size - start)


@pytest.mark.django_db
class TestASGIBodies:
    """Under ASGI, Django reads a whole body before the first middleware: the wrapper stands in front of it."""

    @pytest.fixture
    def patch(self, api_campaign):
        """`patch(parts, headers, **asgi_call options)`: a PATCH of the campaign through the wrapped ASGI handler;
        (the `Answer`, the campaign as stored after it)."""
        campaign, token = api_campaign
        application = self.application()

        def patch(parts: Iterable[bytes], headers: dict, **options):
            answer = asgi_call(application, "PATCH", f"/api/campaigns/{campaign.pk}/", parts, {
                "Host": "testserver", "Authorization": f"Token {token}", "Content-Type": "application/json",
                **headers}, **options)
            campaign.refresh_from_db()
            return answer, campaign

        return patch

    @pytest.mark.parametrize(("path", "accept", "kind"), [
        ("/api/generations/", "*/*", "application/json"),
        ("/generate/", "*/*", "text/plain"),
        ("/generate/", "text/html", "text/html"),
    ])
    def test_it_answers_413_to_a_declared_length_over_the_cap_reading_none_of_it(self, path, accept, kind):
        # Django's handler wrote all 20 MB to a temporary file, then the middleware answered 413.
        size = 20 * 1024 * 1024
        answer = asgi_call(self.application(), "POST", path, chunks(size), {
            "Host": "testserver", "Accept": accept, "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(size)})
        assert answer.status == 413 and answer.read == 0
        assert answer.headers["content-type"].startswith(kind) and answer.headers["connection"] == "close"
        assert ("over 1 KB" if kind == "text/html" else "What you sent is 20 MB; up to 1 KB") in answer.body.decode()

    def test_its_413_over_http2_carries_no_connection_header(self, patch):
        # HTTP/2 forbids connection-specific headers (RFC 9113, 8.2.2): an HTTP/2 server fails the stream that sends
        # one, so the client got a reset instead of the 413. The server ends that stream, not the connection.
        answer, campaign = patch(chunks(20 * 1024 * 1024), {"Content-Length": str(20 * 1024 * 1024)},
                                 http_version="2")
        assert answer.status == 413 and answer.read == 0 and campaign.name == "Spring"
        assert "connection" not in answer.headers

    def test_it_reads_a_body_sent_in_chunks(self, patch):
        # The middleware answered 411 to every body sent in chunks (no Content-Length), as to a WSGI server's.
        answer, campaign = patch([b'{"name": ', b'"Renamed"}'], {"Transfer-Encoding": "chunked"})
        assert answer.status == 200 and campaign.name == "Renamed"

    def test_it_answers_413_past_the_cap_reading_no_more_than_a_part_over(self, patch):
        # Django's handler read all 20 MB sent in chunks, to answer 411.
        answer, campaign = patch(chunks(20 * 1024 * 1024), {"Transfer-Encoding": "chunked"})
        assert answer.status == 413 and b"What you sent is over 1 KB (" in answer.body and campaign.name == "Spring"
        assert answer.read <= CAP + FIELDS_SLACK + 64 * 1024 and answer.headers["connection"] == "close"

    @pytest.mark.parametrize("lengths", [{"Content-Length": "abc"}, {"Content-Length": "-1"},
                                         {"Content-Length": "60", "content-length": str(20 * 1024 * 1024)}],
                             ids=["junk", "negative", "two"])
    def test_it_reads_no_more_than_a_part_over_the_cap_of_a_length_that_says_none(self, patch, lengths):
        # Such a length passed as within the cap, and Django's handler read the body to its end, however long (it
        # reads to the last part whatever the length says): 20 MB, to answer 400.
        answer, campaign = patch(chunks(20 * 1024 * 1024), lengths)
        assert answer.status == 413 and b"What you sent is over 1 KB (" in answer.body and campaign.name == "Spring"
        assert answer.read <= CAP + FIELDS_SLACK + 64 * 1024

    def test_it_reads_a_body_whose_length_says_none_with_the_length_it_has(self, patch):
        answer, campaign = patch([b'{"name": "Renamed"}'], {"Content-Length": "+19"})
        assert answer.status == 200 and campaign.name == "Renamed"

    @pytest.mark.parametrize("headers", [{"Transfer-Encoding": "chunked"}, {"Content-Length": "60"}])
    def test_a_client_that_goes_away_mid_body_changes_nothing(self, patch, headers):
        # What `WholeBodies` does under gunicorn, Django does under ASGI (the server tells it of the disconnect).
        answer, campaign = patch([b'{"name": "Ren'], headers, disconnect=True)
        assert answer.status is None and campaign.name == "Spring"

    @staticmethod
    def application():
        from django.core.handlers.asgi import ASGIHandler

        from qartsite.limits import ASGIBodies

        return ASGIBodies(ASGIHandler())
