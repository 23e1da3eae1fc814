"""Every operation of the API's schema, walked as a sloppy integrator and an attacker walk it: bodies of the wrong
type, shape, encoding or media type, ids and query parameters that are no such thing or sent twice, another team's
ids, missing, wrong and expired credentials, a session without its CSRF token, and conditional and range headers. Each
answer is the API's JSON refusal (`{"detail": "..."}` or each field's messages), never a 500, a page or an empty body,
and a refusal changes nothing. The operations come from the schema itself, so an endpoint added later is walked too
(the schema's fuzzing with generated values: test_schema.py; each refusal's own words: the apps' tests)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from knox.models import AuthToken

from campaigns import shares
from campaigns.models import Campaign, Placement, PlacementAlert, ScanEvent, WebhookDelivery, WebhookEndpoint
from campaigns.webhooks import new_secret
from tests.generator.factories import job_with_ranks

pytestmark = pytest.mark.django_db


def schema_operations() -> tuple[dict, list[tuple[str, str]]]:
    """The schema as drf-spectacular writes it for /api/schema/, and its (method, path) operations."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema, sorted((method, path) for path, item in schema["paths"].items() for method in item)


SCHEMA, OPERATIONS = schema_operations()
WRITES = [(method, path) for method, path in OPERATIONS if method in ("post", "put", "patch", "delete")]
BODIES = [(method, path) for method, path in WRITES if "requestBody" in SCHEMA["paths"][path][method]]
WITH_ID = [(method, path) for method, path in OPERATIONS if "{id}" in path]
WITH_QUERY = [(method, path, parameter["name"]) for method, path in OPERATIONS
              for parameter in SCHEMA["paths"][path][method].get("parameters", []) if parameter["in"] == "query"]


def ids(operation) -> str:
    return " ".join(operation).upper().replace("/API", "") if isinstance(operation, tuple) else str(operation)


def team_objects(team, owner) -> dict[str, int]:
    """One object of each of the API's kinds in `team`, by the path's first part."""
    campaign = Campaign.objects.create(team=team, name="Spring", destination="https://shop.example.com/")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    ScanEvent.objects.create(placement=placement, os="iOS", device_class="mobile")
    endpoint = WebhookEndpoint.objects.create(team=team, url="https://hooks.example.com/", events=["scan.created"],
                                              secret=new_secret())
    return {"campaigns": campaign.pk, "placements": placement.pk, "teams": team.pk, "webhooks": endpoint.pk,
            "generations": job_with_ranks(team, owner, ranks=(1,)).pk,
            "alerts": PlacementAlert.objects.create(placement=placement, kind="stopped", day=date(2026, 5, 1),
                                                    message="No scans.").pk,
            "webhook-deliveries": WebhookDelivery.objects.create(endpoint=endpoint, message_id="m1",
                                                                 event="scan.created", ok=True).pk,
            "shares": shares.create(campaign, owner)[0].pk}


@pytest.fixture
def walk(team_users, enqueued, fresh_cache):
    """The owner's token client, the ids of their team's objects and of the other team's, and what to compare."""
    ours = team_objects(team_users.team, team_users.owner)
    theirs = team_objects(team_users.other_team, team_users.outsider)
    token = AuthToken.objects.create(user=team_users.owner)[1]
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {token}")
    return client, ours, theirs


def address(path: str, objects: dict[str, int], pk: str | None = None) -> str:
    return path.replace("{id}", pk if pk is not None else str(objects[path.split("/")[2]]))


def send(client: Client, method: str, url: str, body: bytes | str | None = None,
         content_type: str = "application/json", **headers):
    if body is None and method in ("get", "head", "options", "delete"):
        return client.generic(method.upper(), url, **headers)
    return client.generic(method.upper(), url, body or b"", content_type=content_type, **headers)


def content(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_refused_in_json(response, sent: str) -> dict:
    """A 4xx in the API's shape: `{"detail": "..."}` (with more keys at most), or each field's messages, or an
    import's report, whose `errors` name the row and column of each."""
    assert 400 <= response.status_code < 500, (sent, response.status_code, content(response)[:300])
    assert response["Content-Type"] == "application/json", (sent, response["Content-Type"])
    body = json.loads(content(response))
    assert isinstance(body, dict) and body, (sent, body)
    if "detail" in body:
        assert isinstance(body["detail"], str) and body["detail"], (sent, body)
    elif "rows" in body:
        assert body["errors"] and all(isinstance(error["message"], str) for error in body["errors"]), (sent, body)
    else:
        for messages in body.values():
            assert isinstance(messages, list) and all(isinstance(m, str) and m for m in messages), (sent, body)
    return body


def assert_answered(response, sent: str) -> None:
    """Taken (2xx, 3xx) or refused in the API's shape; never a server error."""
    if response.status_code >= 400:
        assert_refused_in_json(response, sent)


# Bodies no endpoint reads: each a 4xx in JSON (an endpoint that reads no body may take one it ignores).
RAW_BODIES = [
    (b"", "application/json"), (b"null", "application/json"), (b"[]", "application/json"), (b"123", "application/json"),
    (b'"text"', "application/json"), (b"{", "application/json"), (b'{"name": "\xff"}', "application/json"),
    (b"\xef\xbb\xbf{}", "application/json"), (b'{"a": NaN}', "application/json"), (b'{"a": 1e309}', "application/json"),
    (b'{"a": ' + b"9" * 5000 + b"}", "application/json"), (b'{"a": "\\ud800"}', "application/json"),
    (b'{"a": 1, "a": 2}', "application/json"), (b"[" * 2000 + b"]" * 2000, "application/json"),
    (b'{"name": "x"}', ""), (b'{"name": "x"}', "text/plain"), (b'{"name": "x"}', "application/xml"),
    (b"name=%FF", "application/x-www-form-urlencoded"), (b"--x\r\n", "multipart/form-data"),
    (b"garbage", "multipart/form-data; boundary=x"),
]
# A field's value of every JSON type but its own, and numbers JSON writes but no field holds.
WRONG_VALUES = ['"text"', "[]", "[1, 2]", '{"a": 1}', "null", "true", "-1", "0", "1.5", str(2 ** 70), "1e309",
                "NaN", "-Infinity", '""', '"' + "x" * 20000 + '"', '"\\u0000"']


@pytest.mark.parametrize("operation", BODIES, ids=ids)
def test_a_body_of_the_wrong_form_is_answered_in_json(walk, operation):
    client, ours, _ = walk
    method, path = operation
    for raw, content_type in RAW_BODIES:
        response = send(client, method, address(path, ours), raw, content_type)
        assert_answered(response, f"{raw[:40]!r} as {content_type}")


@pytest.mark.parametrize("operation", BODIES, ids=ids)
def test_every_field_of_the_wrong_type_is_answered_in_json(walk, operation):
    client, ours, _ = walk
    method, path = operation
    body = SCHEMA["paths"][path][method]["requestBody"]["content"]
    reference = next(iter(body.values()))["schema"]["$ref"].rsplit("/", 1)[1]
    fields = [name for name, field in SCHEMA["components"]["schemas"][reference]["properties"].items()
              if not field.get("readOnly")]
    assert fields
    for name in fields:
        for value in WRONG_VALUES:
            sent = f'{{"{name}": {value}}}'
            assert_answered(send(client, method, address(path, ours), sent), sent[:80])


@pytest.mark.parametrize("operation", [operation for operation in BODIES if "application/x-www-form-urlencoded"
                                       in SCHEMA["paths"][operation[1]][operation[0]]["requestBody"]["content"]],
                         ids=ids)
def test_a_field_a_form_names_twice_is_refused(walk, operation):
    # A JSON key twice is refused by the parser; a form's field twice was the last value, the others dropped.
    client, ours, _ = walk
    method, path = operation
    body = SCHEMA["paths"][path][method]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    reference = body["schema"]["$ref"].rsplit("/", 1)[1]
    # Lists take every value; a file twice has its own message (`OneFileField`).
    single = [name for name, field in SCHEMA["components"]["schemas"][reference]["properties"].items()
              if not field.get("readOnly") and field.get("type") != "array" and field.get("format") != "binary"]
    assert single
    for name in single:
        response = send(client, method, address(path, ours), f"{name}=1&{name}=2",
                        "application/x-www-form-urlencoded")
        assert assert_refused_in_json(response, name).get(name) == ["Sent 2 times in the form: send it once."], name


@pytest.mark.parametrize("operation", WITH_ID, ids=ids)
def test_an_id_that_is_no_id_or_another_teams_is_a_404_in_json(walk, operation):
    client, ours, theirs = walk
    method, path = operation
    missing = send(client, method, address(path, ours, "999999"))
    assert missing.status_code == 404
    assert assert_refused_in_json(missing, "999999") == {"detail": "Not found."}
    # Another team's object answers as one that does not exist: the same status and words, never a 403.
    rival = send(client, method, address(path, theirs))
    assert (rival.status_code, content(rival)) == (404, content(missing))
    for pk in ("0", "-1", "abc", "1e3", "01", "1.0", "%C2%B9", "%EF%BC%91", "%20" + str(ours[path.split("/")[2]]),
               "9" * 40):
        response = send(client, method, address(path, ours, pk))
        assert response.status_code == 404, pk
        assert_refused_in_json(response, pk)


@pytest.mark.parametrize(("method", "path", "name"), WITH_QUERY, ids=lambda part: part.upper())
def test_a_query_parameter_that_cannot_be_read_is_answered_in_json(walk, method, path, name):
    client, ours, theirs = walk
    rival_ids = sorted(set(theirs.values()) - set(ours.values())) or [999999]
    for value in ("abc", "-1", "0", "1.5", "1e309", "NaN", "99999999999999999999", "%EF%BC%91", "", "[]",
                  "2026-02-30", "9999-12-31", "-id", "password", "team__name", "a" * 3000, str(rival_ids[0])):
        url = f"{address(path, ours)}?{name}={value}"
        assert_answered(send(client, method, url, b"" if method == "post" else None), url[:120])


# What an operation needs beside the parameter sent twice, so that the repeat is what a refusal is about.
NEEDED_BESIDE = {"/api/placements/{id}/print/": {"width": "20cm"}}


@pytest.mark.parametrize(("method", "path", "name"), WITH_QUERY, ids=lambda part: part.upper())
def test_a_query_parameter_sent_twice_is_refused(walk, method, path, name):
    # Each takes one value: the last was taken without a word, and `?dry_run=1&dry_run=0` imported for real.
    client, ours, _ = walk
    before = {model: list(model.objects.values()) for model in (Campaign, Placement, WebhookEndpoint)}
    beside = "".join(f"{other}={value}&" for other, value in NEEDED_BESIDE.get(path, {}).items() if other != name)
    for repeated, count in ((f"{name}=1&{name}=2", 2), (f"{name}=&{name}=1", 2), (f"{name}=1&{name}=1&{name}=1", 3)):
        url = f"{address(path, ours)}?{beside}{repeated}"
        response = send(client, method, url, b"" if method == "post" else None)
        assert assert_refused_in_json(response, url) == {name: [f"Sent {count} times in the query: send it once."]}
    assert {model: list(model.objects.values()) for model in before} == before


@pytest.mark.parametrize("operation", OPERATIONS, ids=ids)
def test_no_wrong_or_expired_credentials_pass(walk, team_users, operation):
    _, ours, _ = walk
    method, path = operation
    if path in ("/api/schema/", "/api/docs/"):
        pytest.skip("open to anyone")
    expired = AuthToken.objects.create(user=team_users.owner, expiry=timedelta(seconds=-1))[1]
    for authorization in (None, "Token", "Token nope", f"Token {expired}", "Basic b3duZXI6cHctb3duZXItMQ==",
                          "Token \u00e9t\u00e9"):
        client = Client(raise_request_exception=False) if authorization is None else Client(
            raise_request_exception=False, HTTP_AUTHORIZATION=authorization)
        response = send(client, method, address(path, ours), b"{}" if method in ("post", "put", "patch") else None)
        assert response.status_code == 401, authorization
        assert response["WWW-Authenticate"] == "Token"
        assert_refused_in_json(response, str(authorization))


@pytest.mark.parametrize("operation", WRITES, ids=ids)
def test_a_session_without_its_csrf_token_changes_nothing(walk, team_users, operation):
    _, ours, _ = walk
    method, path = operation
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(team_users.owner)
    before = {model: list(model.objects.values()) for model in (Campaign, Placement, WebhookEndpoint)}
    response = send(client, method, address(path, ours), b'{"name": "Taken over"}')
    assert response.status_code == 403
    assert assert_refused_in_json(response, "no CSRF token")["detail"].startswith("CSRF Failed")
    assert {model: list(model.objects.values()) for model in before} == before


@pytest.mark.parametrize("operation", [(method, path) for method, path in OPERATIONS if method == "get"], ids=ids)
def test_conditional_and_range_headers_are_answered_in_json(walk, operation):
    # The print file answers them as a file server does (qartsite.file_responses); every other GET ignores them.
    client, ours, _ = walk
    _, path = operation
    for headers in ({"HTTP_IF_MATCH": '"other"'}, {"HTTP_IF_UNMODIFIED_SINCE": "Mon, 01 Jan 1990 00:00:00 GMT"},
                    {"HTTP_RANGE": "bytes=999999999-"}, {"HTTP_RANGE": "bytes=-0"}, {"HTTP_IF_NONE_MATCH": "*"},
                    {"HTTP_IF_MODIFIED_SINCE": "not a date"}):
        url = address(path, ours) + ("?width=20cm" if "{id}" in path else "")
        assert_answered(client.get(url, **headers), f"{url} {headers}")
