"""Site-wide error answers (`qartsite.views`): JSON under /api/, the site's pages elsewhere, never Django's."""

from __future__ import annotations

import pytest
from django.contrib.staticfiles import finders
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.test import Client

from qartsite import tokens, views
from tests.database_wrappers import refuse_nul

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(team_users) -> Client:
    _, token = tokens.make_token(team_users.owner, "errors")
    return Client(HTTP_AUTHORIZATION=f"Token {token}")


def test_too_many_form_fields_are_a_json_400_under_the_api(api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
    body = "&".join(f"k{n}=1" for n in range(60))
    response = api.post("/api/campaigns/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The request sends too many fields; the most is 50 fields and 100 files."}


def test_a_bad_host_is_a_400_that_names_no_setting(api, settings):
    settings.ALLOWED_HOSTS = ["qart.example"]
    response = api.get("/api/campaigns/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json() == {"detail": "The request's Host header names no site served here."}
    page = Client().get("/campaigns/", HTTP_HOST="evil.example")
    body = page.content.decode()
    assert page.status_code == 400 and "names no site served here" in body and "ALLOWED_HOSTS" not in body


@pytest.mark.parametrize("name", ["a" * 996 + ".png", "\u00e9" * 500 + ".csv"])
def test_a_file_name_too_long_to_read_is_one_message_on_the_pages(team_users, name):
    # Django refuses a part's headers over 1,024 bytes: the pages said "The request is malformed: check its headers
    # and body." The generation page and the placements' import alike; nothing is stored.
    from django.core.files.base import ContentFile

    from campaigns.models import Campaign, Placement
    from generator.models import GenerationJob
    from qartsite.parsers import FILE_NAME_TOO_LONG

    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
    client = Client()
    client.force_login(team_users.owner)
    for url, field in (("/generate/", "picture"), (f"/campaigns/{campaign.pk}/placements/import/", "file")):
        response = client.post(url, {field: ContentFile(b"name,kind\nGate,poster\n", name=name), "action": "import"})
        page = response.content.decode()
        assert response.status_code == 400 and FILE_NAME_TOO_LONG.replace("'", "&#x27;") in page, url
    assert not GenerationJob.objects.exists() and not Placement.objects.exists()


def test_an_unknown_api_address_is_a_json_404(api):
    response = api.get("/api/nothing-here/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_a_permission_refused_outside_drf_is_json_under_the_api(rf):
    response = views.forbidden(rf.get("/api/anything/"), PermissionDenied("Owners only."))
    assert response.status_code == 403 and response.content == b'{"detail":"Owners only."}'
    page = views.forbidden(rf.get("/campaigns/"), PermissionDenied("Owners only."))
    assert page.status_code == 403 and b"<html" in page.content.lower()


@pytest.mark.parametrize(("handler", "args", "status", "detail"), [
    ("bad_request", (DisallowedHost("évil.example"),), 400, "The request's Host header names no site served here."),
    ("forbidden", (PermissionDenied("Only the team’s owners may do this — ask one."),), 403,
     "Only the team’s owners may do this — ask one."),
    ("csrf_failure", ("Origin “évil.example” does not match",), 403,
     "CSRF Failed: Origin “évil.example” does not match"),
    ("not_found", (None,), 404, "Not found."),
    ("server_error", (), 500, "Server error: something went wrong on our side. Try again later."),
])
def test_the_api_answers_of_the_error_handlers_are_written_as_its_views_write(rf, handler, args, status, detail):
    # Django's JsonResponse wrote "\u2019" and ", " / ": "; the API's views (DRF's renderer) write UTF-8, compact
    response = getattr(views, handler)(rf.get("/api/campaigns/"), *args)
    assert response.status_code == status and response["Content-Type"] == "application/json"
    assert response.content == b'{"detail":"' + detail.encode() + b'"}'


def test_a_form_sent_without_its_csrf_token_gets_the_sites_page_saying_what_to_do(team_users):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(team_users.owner)
    response = client.post("/campaigns/new/", {"name": "Spring", "team": team_users.team.pk})
    assert response.status_code == 403
    page = response.content.decode()
    assert "security token is missing or out of date" in page and "DEBUG" not in page
    assert 'href="/campaigns/"' in page  # the site's page, with its way back


def test_every_page_carries_a_content_security_policy(client, team_users):
    client.force_login(team_users.owner)
    policy = client.get("/campaigns/")["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    script = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script and "'self'" in script


def test_the_api_docs_inline_script_carries_the_pages_nonce(client, team_users):
    import re

    client.force_login(team_users.owner)
    response = client.get("/api/docs/")
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    assert f'<script nonce="{nonce}">' in response.content.decode()


def test_the_api_docs_have_a_heading_and_say_how_to_authenticate(client, team_users):
    # Swagger UI's page had no <h1> (axe: page-has-heading-one) and left where a token comes from unsaid
    client.force_login(team_users.owner)
    page = client.get("/api/docs/").content.decode()
    # (How to send it is the schema's description, which Swagger UI draws under the intro: test_api_docs.py.)
    assert "<h1>REST API</h1>" in page and 'href="/accounts/"' in page
    # A token is its user's, not one team's: a member of two teams sees both and names the team of what they create
    assert "acts as you, in each of your teams" in page and "acts as your team" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("method, path", [("get", "/l/ab%00cd"), ("get", "/accounts/invite/ab%00cd/"),
                                          ("get", "/r/ab%00cdefg"), ("get", "/campaigns/shared/%00/"),
                                          ("post", "/accounts/tokens/ab%00/revoke/")])
def test_a_nul_in_the_path_is_the_sites_404_never_looked_up(client, team_users, method, path):
    # PostgreSQL refuses a NUL in a text parameter (DataError): the labeling, invitation and token links answered 500
    # there, and the short link took it for a database that is away (qartsite.paths).
    from django.db import connection

    client.force_login(team_users.owner)
    with connection.execute_wrapper(refuse_nul):
        response = getattr(client, method)(path)
    assert response.status_code == 404 and "Content-Security-Policy" in response
    assert "We couldn't find that page." in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["HTTP_USER_AGENT", "HTTP_ACCEPT", "HTTP_REFERER"])
def test_a_nul_in_a_header_is_a_400_before_anything_is_recorded(client, team_users, header):
    # django-axes records a failed sign-in's User-Agent and Accept header: on PostgreSQL a NUL there was a 500 (the
    # development server passes such a header on; gunicorn refuses it)
    from axes.models import AccessAttempt
    from django.db import connection

    with connection.execute_wrapper(refuse_nul):
        response = client.post("/accounts/login/", {"username": "owner", "password": "wrong"}, **{header: "x\x00y"})
    assert response.status_code == 400 and "NUL" in response.content.decode()
    assert not AccessAttempt.objects.exists()


@pytest.mark.django_db
def test_a_nul_in_a_header_of_an_api_request_is_a_json_400(client, team_users):
    # An API client reads DRF's {"detail": ...} from every answer, as from the NUL path's 404 below
    response = client.get("/api/campaigns/", HTTP_USER_AGENT="x\x00y")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


@pytest.mark.django_db
def test_a_nul_in_an_api_path_is_a_json_404(client, team_users):
    from django.db import connection

    client.force_login(team_users.owner)
    with connection.execute_wrapper(refuse_nul):
        response = client.get("/api/campaigns/%00/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/media/generations/1/x.png", "/campaigns/shared/abc/"])
def test_read_only_pages_answer_other_methods_405_not_a_csrf_page(path):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(path)
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"



@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/healthz"])
@pytest.mark.parametrize("method", ["trace", "options"])
def test_the_home_page_and_healthz_answer_other_methods_405(path, method):
    # Both answered any method with their 200 (a TRACE with the page).
    response = getattr(Client(), method)(path)
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
def test_healthz_answers_a_post_405_not_a_csrf_page():
    response = Client(enforce_csrf_checks=True).post("/healthz")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


def test_favicon_ico_leads_to_the_sites_icon(client):
    # Browsers ask /favicon.ico whatever the page's <link> says: it was a 404 in the log on every first visit.
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/qart/favicon.svg"
    assert finders.find("qart/favicon.svg")
