"""The request-size cap, file parts included (qartsite.limits): 413 before a body over the cap is read, and an
upload whose files pass the cap stopped while it streams. The cap is set to 1,000 bytes to keep test data small."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParser
from django.test import Client
from django.test.client import BOUNDARY, encode_multipart

from qartsite.limits import FIELDS_SLACK, RequestTooLarge, UploadLimitHandler

CAP = 1000


@pytest.fixture(autouse=True)
def _small_cap(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = CAP


def picture(size: int) -> SimpleUploadedFile:
    return SimpleUploadedFile("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (size - 8), content_type="image/png")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


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
        assert response.content.decode() == ("The request is 100 KB; requests up to 1 KB are accepted. "
                                             "Send a smaller file, or less at once, and try again.")

    def test_it_answers_the_api_in_json(self, team_users, view_calls):
        response = logged_in(team_users.owner).post("/api/generations/", {"content": "x",
                                                                          "picture": picture(100 * 1024)})
        assert response.status_code == 413 and view_calls == []
        assert response.json() == {"detail": "The request is 100 KB; requests up to 1 KB are accepted. "
                                             "Send a smaller file, or less at once, and try again."}

    def test_it_refuses_anonymous_bodies_too_without_reading_them(self, view_calls):
        assert Client().post("/generate/", {"picture": picture(100 * 1024)}).status_code == 413

    def test_it_lets_a_request_within_the_cap_through(self, team_users, view_calls):
        response = logged_in(team_users.owner).post("/api/generations/", {"content": "x", "picture": picture(900)})
        assert response.status_code == 204 and view_calls == ["api"]

    def test_it_answers_413_when_the_files_pass_the_cap_in_a_body_within_the_limit(self, team_users, enqueued):
        # 10 KB: under the cap plus FIELDS_SLACK, so only the upload handler can stop it.
        assert 10 * 1024 < CAP + FIELDS_SLACK
        for path in ("/generate/", "/api/generations/"):
            response = logged_in(team_users.owner).post(path, {"content": "x", "picture": picture(10 * 1024)})
            assert response.status_code == 413, path
            assert "requests up to 1 KB are accepted" in response.content.decode()
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
