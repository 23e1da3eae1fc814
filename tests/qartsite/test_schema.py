from __future__ import annotations

import io
import re
from datetime import date

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.cache import cache
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.validation import validate_schema
from knox.models import AuthToken
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error

from campaigns import shares
from campaigns.models import Campaign, Placement, PlacementAlert, ScanEvent, WebhookDelivery, WebhookEndpoint
from campaigns.webhooks import new_secret
from tests.generator.factories import job_with_ranks

OPERATIONS = {
    ("get", "/api/campaigns/"), ("post", "/api/campaigns/"), ("get", "/api/campaigns/{id}/"),
    ("put", "/api/campaigns/{id}/"), ("patch", "/api/campaigns/{id}/"), ("delete", "/api/campaigns/{id}/"),
    ("get", "/api/campaigns/{id}/scans/"),
    ("post", "/api/campaigns/{id}/import-placements/"), ("post", "/api/campaigns/{id}/generate/"),
    ("get", "/api/campaigns/export/"), ("get", "/api/campaigns/{id}/placements/export/"),
    ("get", "/api/campaigns/{id}/scans/export/"),
    ("get", "/api/placements/"), ("post", "/api/placements/"), ("get", "/api/placements/{id}/"),
    ("put", "/api/placements/{id}/"), ("patch", "/api/placements/{id}/"), ("delete", "/api/placements/{id}/"),
    ("get", "/api/placements/{id}/scans/"),
    ("get", "/api/placements/{id}/print/"), ("get", "/api/placements/{id}/preflight/"),
    ("get", "/api/campaigns/{id}/destination-changes/"), ("get", "/api/placements/{id}/destination-changes/"),
    ("get", "/api/generations/"), ("post", "/api/generations/"), ("get", "/api/generations/{id}/"),
    ("delete", "/api/generations/{id}/"), ("post", "/api/generations/{id}/cancel/"),
    ("get", "/api/alerts/"), ("get", "/api/alerts/{id}/"), ("post", "/api/alerts/{id}/dismiss/"),
    ("get", "/api/webhooks/"), ("post", "/api/webhooks/"), ("get", "/api/webhooks/{id}/"),
    ("put", "/api/webhooks/{id}/"), ("patch", "/api/webhooks/{id}/"), ("delete", "/api/webhooks/{id}/"),
    ("post", "/api/webhooks/{id}/rotate-secret/"), ("post", "/api/webhooks/{id}/send-test/"),
    ("get", "/api/webhook-deliveries/"), ("get", "/api/webhook-deliveries/{id}/"),
    ("get", "/api/shares/"), ("post", "/api/shares/"), ("get", "/api/shares/{id}/"),
    ("post", "/api/shares/{id}/revoke/"),
    ("get", "/api/teams/"), ("get", "/api/teams/{id}/"), ("put", "/api/teams/{id}/"), ("patch", "/api/teams/{id}/"),
}


@pytest.mark.django_db
class TestSchema:
    def test_it_serves_a_valid_openapi_3_schema_of_every_operation(self):
        response = APIClient().get("/api/schema/?format=json")
        assert response.status_code == 200
        schema = response.json()
        validate_schema(schema)  # drf-spectacular's check against the OpenAPI 3.0 JSON Schema; raises if invalid
        assert schema["openapi"].startswith("3.")
        served = {(method, path) for path, item in schema["paths"].items() for method in item}
        assert served == OPERATIONS
        assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}
        assert schema["paths"]["/api/generations/"]["post"]["responses"].keys() >= {"201", "400", "429"}

    def test_it_generates_without_warnings(self, tmp_path):
        # --fail-on-warn turns every drf-spectacular warning (an unannotated field or view) into an error.
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"),
                     stderr=io.StringIO())
        assert "/api/placements/{id}/scans/" in (tmp_path / "schema.yaml").read_text()

    def test_the_docs_page_loads_swagger_ui_from_our_static_files_only(self):
        response = APIClient().get("/api/docs/")
        assert response.status_code == 200
        html = response.content.decode()
        assets = re.findall(r'<(?:script|link)[^>]*\s(?:src|href)="([^"]+)"', html)  # what it loads, not links
        assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
        assert all(a.startswith("/static/") for a in assets), assets
        # Whole words only: the page carries a random CSRF token, which can spell "Cdn".
        assert not re.search(r"https?://|\b(?:cdn|unpkg|jsdelivr)\b", html, re.IGNORECASE)
        for asset in assets:
            assert finders.find(asset.removeprefix("/static/")), f"{asset} is not among the static files"


# --- Schema-driven fuzzing ---------------------------------------------------------------------------------------


@pytest.fixture
def fuzz_objects(team_users) -> dict[str, int]:
    """Real objects of the token's team, so some fuzzed requests reach them, not only 404s."""
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example.com/")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    ScanEvent.objects.create(placement=placement, os="iOS", device_class="mobile")
    job = job_with_ranks(team_users.team, team_users.owner, ranks=(1, 2))
    endpoint = WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/",
                                              events=["scan.created"], secret=new_secret())
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, message_id="m1", event="scan.created", ok=True)
    return {"campaigns": campaign.pk, "placements": placement.pk, "generations": job.pk,
            "webhooks": endpoint.pk, "webhook-deliveries": delivery.pk, "alerts": PlacementAlert.objects.create(
                placement=placement, kind="stopped", day=date(2026, 5, 1), message="No scans.").pk,
            "shares": shares.create(campaign, team_users.owner)[0].pk, "teams": team_users.team.pk,
            "campaign": campaign.pk, "placement": placement.pk, "artwork": job.candidates.first().pk}


def aim_at_real_objects(case, objects: dict[str, int]) -> None:
    """Point every other generated id (in the path and in JSON bodies) at a real object of the team, so
    changes to existing rows are fuzzed too. Deletes keep their random ids: the objects must last the run."""
    if case.method.upper() == "DELETE":
        return
    path_id = (case.path_parameters or {}).get("id")
    if isinstance(path_id, int) and path_id % 2 == 0:
        case.path_parameters["id"] = objects[case.path.split("/")[2]]
    if isinstance(case.body, dict):
        for field in ("campaign", "placement", "artwork"):
            if isinstance(case.body.get(field), int) and case.body[field] % 2 == 0:
                case.body[field] = objects[field]


@pytest.fixture
def api_schema(team_users, fuzz_objects, monkeypatch):
    """The live schema, loaded through the WSGI app, with a token of the team's owner on every request."""
    cache.clear()  # a fresh generation rate for this run
    monkeypatch.setattr("generator.jobs.enqueue_generation", lambda job: None)  # no Redis: queueing is tested elsewhere
    # Django's test client keeps requests from closing the test's connection (and so its transaction); a bare
    # WSGI app does not, so stop it the same way for the duration of the run.
    _, token = AuthToken.objects.create(user=team_users.owner)
    config = schemathesis.Config.from_dict({
        "headers": {"Authorization": f"Token {token}"},
        # Few examples, always the same ones: a quick, repeatable run (CLI runs can go wider).
        "generation": {"max-examples": 12, "deterministic": True, "database": "none",
                       "with-security-parameters": False},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    })
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), config=config)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
        cache.clear()


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.django_db
class TestFuzz:
    @schema.parametrize()
    def test_it_never_answers_a_fuzzed_request_with_a_server_error(self, case, fuzz_objects):
        aim_at_real_objects(case, fuzz_objects)
        case.call_and_validate(checks=[not_a_server_error])


def test_no_body_is_described_by_a_mixins_words(schema):
    # Twenty bodies read "A serializer mixin that refuses fields it does not have...": the mixin's docstring.
    described = {name: component.get("description", "") for name, component in schema["components"]["schemas"].items()}
    assert not [name for name, text in described.items() if "mixin" in text.lower()]


def test_the_generation_body_documents_the_ranges_it_enforces(schema):
    fields = schema["components"]["schemas"]["GenerationRequest"]["properties"]
    assert (fields["max_batches"]["minimum"], fields["max_batches"]["maximum"]) == (1, 8)
    assert fields["strength"]["maximum"] == 1 and "above 0" in fields["strength"]["description"]


def test_each_scan_summary_names_its_own_subject(schema):
    # Both documented an optional `placement` and `campaign`, though each sends only its own.
    components = schema["components"]["schemas"]
    placement, campaign = components["ScanSummary"], components["CampaignScanSummary"]
    assert "placement" in placement["required"] and "campaign" not in placement["properties"]
    assert "campaign" in campaign["required"] and "placement" not in campaign["properties"]
