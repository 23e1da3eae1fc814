"""Downloads answered as a file server answers them (qartsite.file_responses): validators and 304, single byte
ranges (206, 416, If-Range) and HEAD, through the media view, on the filesystem and on make test's S3 server.
The print files and candidate downloads that use the same module are tested with their views."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils.http import http_date

from tests.clients import assert_not_found, logged_in
from tests.conftest import ON_S3_ONLY

pytestmark = pytest.mark.django_db


def stored_bytes(field) -> bytes:
    with field.open("rb") as stored:
        return stored.read()


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def image(team_users, files):
    """The candidate's image: its URL, its bytes, and the owner's client."""
    field = files.candidate.image
    return field.url, stored_bytes(field), logged_in(team_users.owner)


def test_it_answers_not_modified_to_the_files_etag(image):
    url, data, client = image
    first = client.get(url)
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and first["Accept-Ranges"] == "bytes"  # strong, quoted
    assert client.get(url)["ETag"] == etag  # stable from one request to the next

    for sent in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        again = client.get(url, HTTP_IF_NONE_MATCH=sent)
        assert again.status_code == 304 and again.content == b"", sent
        assert again["ETag"] == etag and again["Cache-Control"] == "private"
        assert again["Last-Modified"] == first["Last-Modified"]


def test_it_sends_the_file_to_an_etag_that_is_not_its(image):
    url, data, client = image
    changed = client.get(url, HTTP_IF_NONE_MATCH='"0123456789abcdef0123456789abcdef"')
    assert changed.status_code == 200 and body(changed) == data and changed["ETag"]
    # If-None-Match wins over a date that alone would say "not modified" (RFC 9110 13.2.2)
    newer = client.get(url, HTTP_IF_NONE_MATCH='"changed"', HTTP_IF_MODIFIED_SINCE=http_date(2**31))
    assert newer.status_code == 200 and body(newer) == data


def test_its_etag_changes_when_the_name_holds_other_bytes(team_users, files):
    # A name deleted and stored again (a print file made again after its day) is another file.
    field = files.candidate.image
    client = logged_in(team_users.owner)
    before = client.get(field.url)["ETag"]
    storage, name = field.storage, field.name
    storage.delete(name)
    from django.core.files.base import ContentFile

    from tests.qartsite.conftest import png_bytes

    assert storage.save(name, ContentFile(png_bytes(99) + b"\0" * 7)) == name
    after = client.get(field.url, HTTP_IF_NONE_MATCH=before)
    assert after.status_code == 200 and after["ETag"] != before


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-9", 0, 9),
    ("bytes=10-", 10, None),
    ("bytes=-7", -7, None),
    ("bytes=3-100000", 3, None),  # past the end: up to the end
    ("bytes=-100000", 0, None),  # more than the file: the whole file, as a range
    ("bytes=0-0", 0, 0),
    ("Bytes=2-4", 2, 4),  # the unit is case-insensitive
    (" bytes=2-4 ", 2, 4),
])
def test_it_sends_one_range_of_each_form(image, header, first, last):
    url, data, client = image
    wanted = data[first:] if last is None else data[first:last + 1]
    start = len(data) + first if first < 0 else first
    response = client.get(url, HTTP_RANGE=header)
    assert response.status_code == 206
    assert body(response) == wanted
    assert response["Content-Range"] == f"bytes {start}-{start + len(wanted) - 1}/{len(data)}"
    assert response["Content-Length"] == str(len(wanted))
    assert response["Content-Type"] == "image/png" and response["Cache-Control"] == "private"
    assert response["ETag"] and response["Last-Modified"]


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{more}", "bytes=-0", "bytes=999999999999-"])
def test_it_answers_416_to_a_range_past_the_end(image, header):
    url, data, client = image
    response = client.get(url, HTTP_RANGE=header.format(size=len(data), more=len(data) + 10))
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(data)}"
    assert "not in it" in response.content.decode()


@pytest.mark.parametrize("header", [
    "bytes=0-1,3-4",  # several ranges: allowed to be ignored (RFC 9110 14.2)
    "bytes=5-2",  # last before first: invalid
    "items=0-1",
    "bytes=abc",
    "bytes=",
    "bytes=-",
    "bytes=0-1-2",
    "bytes=٣-٤",  # digits, but not ASCII ones
    pytest.param("bytes=" + "9" * 5000 + "-", id="5000-digits"),  # more than Python reads as a number
])
def test_it_sends_the_whole_file_for_several_or_malformed_ranges(image, header):
    url, data, client = image
    response = client.get(url, HTTP_RANGE=header)
    assert response.status_code == 200 and body(response) == data
    assert response["Accept-Ranges"] == "bytes" and "Content-Range" not in response


def test_it_sends_the_range_only_while_if_range_names_the_file(image):
    url, data, client = image
    first = client.get(url)
    etag, modified = first["ETag"], first["Last-Modified"]
    for current in (etag, modified):
        resumed = client.get(url, HTTP_RANGE="bytes=4-", HTTP_IF_RANGE=current)
        assert resumed.status_code == 206 and body(resumed) == data[4:], current
    # A validator of another version: the whole file, so a resumed download never joins two versions' bytes.
    for stale in ('"0123456789abcdef0123456789abcdef"', f"W/{etag}", http_date(0), "not a date"):
        whole = client.get(url, HTTP_RANGE="bytes=4-", HTTP_IF_RANGE=stale)
        assert whole.status_code == 200 and body(whole) == data, stale


def test_it_answers_head_with_the_gets_headers_and_no_body(image):
    url, data, client = image
    got = client.get(url)
    for head in (client.head(url), client.head(url, HTTP_RANGE="bytes=0-3")):  # ranges are for GET only
        assert head.status_code == 200 and head.content == b""
        for header in ("ETag", "Last-Modified", "Accept-Ranges", "Content-Type", "Cache-Control",
                       "Content-Disposition"):
            assert head[header] == got[header], header
        assert head["Content-Length"] == str(len(data))
    assert client.head(url, HTTP_IF_NONE_MATCH=got["ETag"]).status_code == 304


def test_outsiders_get_the_same_404_whatever_they_send(team_users, files, image):
    url, data, client = image
    got = client.get(url)
    conditions = [{}, {"HTTP_IF_NONE_MATCH": got["ETag"]}, {"HTTP_IF_NONE_MATCH": "*"},
                  {"HTTP_IF_MODIFIED_SINCE": got["Last-Modified"]}, {"HTTP_RANGE": "bytes=0-3"},
                  {"HTTP_RANGE": "bytes=99999-"}, {"HTTP_IF_MATCH": '"nope"'}]
    for headers in conditions:
        assert_not_found(logged_in(team_users.outsider).get(url, **headers))
        assert_not_found(Client().get(url, **headers))
    assert logged_in(team_users.outsider).head(url, HTTP_IF_NONE_MATCH=got["ETag"]).status_code == 404


def test_a_failed_if_match_is_412_saying_why(image):
    url, data, client = image
    failed = client.get(url, HTTP_IF_MATCH='"other"')
    # Django's was empty and called itself HTML.
    assert failed.status_code == 412 and failed["Content-Type"] == "text/plain; charset=utf-8"
    assert "If-Match" in failed.content.decode() and "Content-Disposition" not in failed
    assert client.get(url, HTTP_IF_MATCH=client.get(url)["ETag"]).status_code == 200


def test_if_unmodified_since_holds_a_stored_file_to_its_date(image):
    url, data, client = image
    modified = client.get(url)["Last-Modified"]
    assert client.get(url, HTTP_IF_UNMODIFIED_SINCE=modified).status_code == 200
    assert client.get(url, HTTP_IF_UNMODIFIED_SINCE="Sat, 01 Jan 2000 00:00:00 GMT").status_code == 412


@ON_S3_ONLY
def test_it_asks_the_bucket_for_the_range_only_and_for_nothing_to_answer_head(image, monkeypatch):
    # A resumed download of a large file in a bucket: the web process fetches what is missing, not the whole object
    # (`_open` downloads all of it), and a HEAD fetches nothing.
    from qartsite.storage import S3MediaStorage

    url, data, client = image

    def whole_object(self, name, mode="rb"):
        raise AssertionError(f"{name} downloaded whole")

    monkeypatch.setattr(S3MediaStorage, "_open", whole_object)
    response = client.get(url, HTTP_RANGE="bytes=-5")
    assert response.status_code == 206 and body(response) == data[-5:]
    head = client.head(url)
    assert head.status_code == 200 and head["Content-Length"] == str(len(data))


@ON_S3_ONLY
def test_it_asks_the_bucket_twice_for_a_whole_file_a_look_up_and_one_read(image, monkeypatch):
    # django-storages' file looks the object up twice more before its read: four requests an image, where the look-up
    # already told the size. A web process's look-up is the brief one (`storage.WEB_LOOK_UP_TIMEOUT`).
    from django.core.files.storage import default_storage

    url, data, client = image
    asked = []
    clients = {id(made): made for made in (default_storage.connection.meta.client, default_storage.look_up_client)}
    for client_of in clients.values():  # one client, outside a web process
        client_of.meta.events.register("before-call.s3", lambda model, **kwargs: asked.append(model.name))
    response = client.get(url)
    assert response.status_code == 200 and body(response) == data
    assert asked == ["HeadObject", "GetObject"]
