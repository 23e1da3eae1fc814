"""Media files (qartsite.media): each answered only to the team that owns it, with safe headers; 404 otherwise.

Every test with stored files runs on the filesystem and on make test's S3 server (the `media_storage` fixture)."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import FileField
from django.test import Client
from django.utils.http import http_date
from knox.models import AuthToken
from rest_framework.test import APIClient

from generator.models import Candidate, GenerationJob, Prompt
from qartsite import media
from tests.clients import assert_not_found
from tests.conftest import S3
from tests.qartsite.conftest import png_bytes

pytestmark = pytest.mark.django_db

ROLES = ("owner", "teammate", "viewer")
KINDS = ("candidate", "control", "picture", "logo", "labeling")


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# A labeling item's code is its editors' alone: test_it_shows_a_labeling_items_code_to_the_teams_editors_only.
MEMBERS_FILES = [(role, kind) for role in ROLES for kind in KINDS if (role, kind) != ("viewer", "labeling")]


@pytest.mark.parametrize(("role", "kind"), MEMBERS_FILES)
def test_it_shows_every_member_their_teams_files(team_users, files, role, kind):
    field = files.fields[kind]
    response = client_as(getattr(team_users, role)).get(field.url)
    assert response.status_code == 200
    with field.open("rb") as stored:
        assert b"".join(response.streaming_content) == stored.read()
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private"
    assert response["Content-Disposition"] == f'inline; filename="{field.name.rsplit("/", 1)[-1]}"'


def test_it_shows_a_labeling_items_code_to_the_teams_editors_only(team_users, files):
    # The item's image is its one-time link drawn as a code (its name, "labeling/<session>-<position>.png", is easily
    # guessed): a viewer who scanned it held the key that records the item's scan, which the labeling pages show
    # editors only.
    url = files.fields["labeling"].url
    assert_not_found(client_as(team_users.viewer).get(url))
    assert [client_as(user).get(url).status_code for user in (team_users.owner, team_users.teammate)] == [200, 200]


@pytest.mark.parametrize("kind", KINDS)
def test_it_answers_404_to_outsiders_and_anonymous_visitors(team_users, files, kind):
    url = files.fields[kind].url
    assert_not_found(client_as(team_users.outsider).get(url))
    assert_not_found(Client().get(url))


@pytest.mark.parametrize("kind", KINDS)
def test_it_shows_superusers_every_teams_files(files, kind):
    admin = get_user_model().objects.create_superuser("root", password="pw-root-1")
    assert client_as(admin).get(files.fields[kind].url).status_code == 200


def test_it_answers_404_for_a_file_that_no_object_names(files):
    assert default_storage.save("generations/stray.png", ContentFile(png_bytes(50))) == "generations/stray.png"
    admin = get_user_model().objects.create_superuser("root", password="pw-root-1")
    assert_not_found(client_as(admin).get("/media/generations/stray.png"))


def test_it_answers_404_when_the_named_file_is_gone(team_users, files):
    files.candidate.image.storage.delete(files.candidate.image.name)
    assert_not_found(client_as(team_users.owner).get(files.candidate.image.url))


@pytest.mark.parametrize("path", [
    "generations/",  # a directory
    "generations",
    "generations/init/",
    "../qartsite/settings.py",
    "generations/../../manage.py",
    "%2e%2e/manage.py",
    "generations/%2e%2e/%2e%2e/manage.py",
    "..%2fmanage.py",
    "%252e%252e/manage.py",  # encoded twice
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "generations\\..\\..\\manage.py",
    "./generations/init/picture-0123456789abcdef.png",  # an owned file, by a path that is not its name
    "generations//init/picture-0123456789abcdef.png",
])
def test_it_answers_404_to_paths_that_are_not_a_files_name(team_users, files, path):
    admin = get_user_model().objects.create_superuser("root", password="pw-root-1")
    assert_not_found(client_as(admin).get(f"/media/{path}"))


@pytest.mark.parametrize("path", ["", "/etc/passwd", "a/../b.png", "./a.png", "a//b.png", "a/", "a\\b.png",
                                  "a\x00.png"])
def test_it_refuses_names_that_are_not_plain_relative_paths(path):
    assert media.clean_name(path) is None


def test_it_keeps_plain_relative_names():
    assert media.clean_name("generations/12/candidate-00-seed123.png") == "generations/12/candidate-00-seed123.png"


@pytest.mark.parametrize("media_storage", ["filesystem"], indirect=True)  # nginx sends files from MEDIA_ROOT only
def test_it_hands_the_sending_to_nginx_when_a_prefix_is_set(team_users, files, settings):
    settings.QART_MEDIA_ACCEL_PREFIX = "/protected-media/"
    name = files.candidate.image.name
    response = client_as(team_users.viewer).get(files.candidate.image.url)
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{name}"
    assert response["Content-Type"] == "image/png" and response["Cache-Control"] == "private"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("inline;")
    assert_not_found(client_as(team_users.outsider).get(files.candidate.image.url))


def test_it_serves_image_urls_the_api_returns_to_token_clients(team_users, files):
    _, token = AuthToken.objects.create(user=team_users.viewer)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = api.get(f"/api/generations/{files.job.pk}/").json()
    for url in (body["candidates"][0]["image"], body["control_image"]):
        response = api.get(urlsplit(url).path)
        assert response.status_code == 200, url
        assert response["Content-Type"] == "image/png"


def test_it_answers_404_to_a_wrong_token_or_another_teams_token(team_users, files):
    _, outsider_token = AuthToken.objects.create(user=team_users.outsider)
    url = files.candidate.image.url
    assert_not_found(Client().get(url, HTTP_AUTHORIZATION="Token not-a-real-key"))
    assert_not_found(Client().get(url, HTTP_AUTHORIZATION="Token \xe9"))  # not UTF-8: still no more than a 404
    assert_not_found(Client().get(url, HTTP_AUTHORIZATION=f"Token {outsider_token}"))


def test_it_answers_not_modified_when_the_browser_has_the_file(team_users, files):
    client = client_as(team_users.owner)
    first = client.get(files.candidate.image.url)
    assert first["Last-Modified"]
    again = client.get(files.candidate.image.url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert again.status_code == 304 and again["Cache-Control"] == "private"
    stale = client.get(files.candidate.image.url, HTTP_IF_MODIFIED_SINCE=http_date(0))
    assert stale.status_code == 200


def test_a_range_past_the_end_is_a_416_that_is_not_named_as_the_file(team_users, files):
    # It carried the image's "inline; filename=…": a browser saving it kept the message under the picture's name.
    response = client_as(team_users.owner).get(files.candidate.image.url, HTTP_RANGE="bytes=99999999-")
    assert response.status_code == 416 and response["Content-Range"].startswith("bytes */")
    assert response["Content-Type"] == "text/plain; charset=utf-8" and not response.has_header("Content-Disposition")
    assert response["Cache-Control"] == "private" and response["X-Content-Type-Options"] == "nosniff"
    part = client_as(team_users.owner).get(files.candidate.image.url, HTTP_RANGE="bytes=0-9")
    assert part.status_code == 206 and part["Content-Disposition"].startswith("inline; filename=")


def test_it_only_reads(team_users, files):
    client = client_as(team_users.owner)
    assert client.head(files.candidate.image.url).status_code == 200
    assert client.post(files.candidate.image.url).status_code == 405


def test_it_knows_the_owner_of_every_file_field(settings):
    # A new FileField whose files nobody may see would answer 404 everywhere: register its team lookup in OWNERS.
    project_fields = {
        (model, field.name)
        for config in apps.get_app_configs() if config.path.startswith(str(settings.BASE_DIR))
        for model in config.get_models()
        for field in model._meta.get_fields() if isinstance(field, FileField)
    }
    assert project_fields == {(owner.model, owner.field) for owner in media.OWNERS}


def test_it_links_every_file_through_the_site_never_into_the_bucket(files):
    for field in files.fields.values():
        assert field.url == f"/media/{field.name}"


@pytest.mark.parametrize("media_storage", [S3], indirect=True)
def test_it_keeps_the_bucket_private(team_users, files):
    # Straight to the S3 server, without the keys: refused. Only the access-checked view hands the bytes out.
    storage = files.candidate.image.storage
    key = f"{storage.location}/{files.candidate.image.name}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{storage.endpoint_url}/{storage.bucket_name}/{key}", timeout=10)
    assert refused.value.code == 403
    assert client_as(team_users.owner).get(files.candidate.image.url).status_code == 200


def test_it_says_the_image_is_unavailable_while_the_storage_is_away(team_users, unreachable_media):
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a misty forest")
    job = GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt,
                                       content="https://qart.example/r/abc")
    candidate = Candidate.objects.create(job=job, index=0, seed=1, scan_probability=0.9, verdict="pass", rank=1,
                                         image=f"generations/{job.pk}/candidate-00-seed1.png")

    response = client_as(team_users.owner).get(candidate.image.url)

    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert response["Content-Type"] == "image/svg+xml" and b"Image unavailable" in response.content
    assert not response.has_header("Content-Disposition")  # the picture that says so is not the candidate's file
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"
    # Access is decided before the storage is asked: nobody else learns more than before, outage or not.
    assert_not_found(client_as(team_users.outsider).get(candidate.image.url))
    assert_not_found(Client().get(candidate.image.url))
    assert_not_found(client_as(team_users.owner).get(f"/media/generations/{job.pk}/candidate-01-seed2.png"))
