"""The API schema's postprocessing hooks (`qartsite.api_schema`): the 4xx answers the schema documents for every
operation and their JSON bodies, and blank-or-URL fields a validator reads; checked against what the API answers."""

from __future__ import annotations

import jsonschema
import pytest
from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.validation import validate_schema
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from campaigns import webhook_pings
from campaigns.models import WebhookEndpoint
from qartsite.api_schema import document_error_answers, error_answers
from tests.clients import api_as, signed_in

SIGNED_IN = [{"tokenAuth": []}, {"cookieAuth": []}]


def answers(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][path][method]["responses"]


class TestErrorAnswers:
    @pytest.mark.parametrize("operation, codes", [
        ({"security": SIGNED_IN, "requestBody": {}}, ["400", "401", "403", "406", "411", "413", "415"]),
        ({"security": SIGNED_IN, "parameters": [{"name": "id", "in": "path"}]}, ["401", "403", "404", "406"]),
        # A bad page is a 404 ("Invalid page “9”: …"); an unknown ordering and a filter's bad value are a 400.
        ({"security": SIGNED_IN, "parameters": [{"name": "page", "in": "query"}]}, ["401", "403", "404", "406"]),
        ({"security": SIGNED_IN, "parameters": [{"name": "page", "in": "query"}, {"name": "ordering", "in": "query"}]},
         ["400", "401", "403", "404", "406"]),
        ({"security": SIGNED_IN, "parameters": [{"name": "team", "in": "query"}]}, ["400", "401", "403", "406"]),
        ({"security": [*SIGNED_IN, {}]}, ["406"]),  # anonymous requests let in: no 401 or 403
        ({}, ["406"]),
        # A file in one format whatever is asked (a CSV export, a print file): never a 406.
        ({"responses": {"200": {"content": {"text/csv": {}}}}}, []),
        ({"responses": {"200": {"content": {"application/json": {}}}, "204": {}}}, ["406"]),
    ])
    def test_it_picks_the_answers_an_operation_can_give(self, operation, codes):
        assert error_answers(operation) == codes

    def test_a_post_with_no_body_documented_can_answer_400_for_one_sent(self, schema):
        operation = {"security": SIGNED_IN, "parameters": [{"name": "id", "in": "path"}]}
        assert error_answers(operation, "post") == ["400", "401", "403", "404", "406", "411", "413", "415"]
        assert "requestBody" not in schema["paths"]["/api/alerts/{id}/dismiss/"]["post"]
        assert answers(schema, "post", "/api/alerts/{id}/dismiss/")["400"] == {
            "$ref": "#/components/responses/BadRequest"}

    def test_it_documents_them_on_every_operation_through_shared_components(self, schema):
        validate_schema(schema)
        responses = schema["components"]["responses"]
        assert set(responses) == {"BadRequest", "Unauthenticated", "Forbidden", "NotFound", "NotAcceptable",
                                  "LengthRequired", "ContentTooLarge", "UnsupportedMediaType"}
        assert answers(schema, "patch", "/api/webhooks/{id}/").keys() >= {"200", "400", "401", "403", "404"}
        assert answers(schema, "patch", "/api/webhooks/{id}/")["404"] == {"$ref": "#/components/responses/NotFound"}
        for item in schema["paths"].values():
            for operation in item.values():
                assert operation["responses"]["401"] == {"$ref": "#/components/responses/Unauthenticated"}
                for answer in operation["responses"].values():
                    if "$ref" in answer:
                        assert answer["$ref"].removeprefix("#/components/responses/") in responses

    def test_it_keeps_the_answers_a_view_documents_itself(self, schema):
        refused = answers(schema, "post", "/api/webhooks/{id}/send-test/")["403"]
        assert refused["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TestRefused"}
        assert "$ref" not in answers(schema, "post", "/api/generations/")["429"]

    def test_it_leaves_out_answers_an_operation_cannot_give(self, schema):
        assert "404" not in answers(schema, "post", "/api/campaigns/")  # no id, no page
        assert "400" not in answers(schema, "get", "/api/campaigns/{id}/")  # no body, no query
        assert "429" not in answers(schema, "get", "/api/campaigns/")  # no rate but the generations'
        assert "406" not in answers(schema, "get", "/api/campaigns/export/")  # text/csv whatever is asked
        assert "406" not in answers(schema, "get", "/api/placements/{id}/print/")
        assert answers(schema, "get", "/api/campaigns/{id}/")["406"] == {"$ref": "#/components/responses/NotAcceptable"}
        assert "415" not in answers(schema, "get", "/api/campaigns/") and "415" not in answers(
            schema, "delete", "/api/campaigns/{id}/")  # no body read

    def test_it_documents_415_wherever_a_body_is_read(self, schema):
        # A body in a type the operation does not read (text/plain, none at all) answered 415, which no operation
        # documented.
        unsupported = {"$ref": "#/components/responses/UnsupportedMediaType"}
        for method, path in (("post", "/api/campaigns/"), ("patch", "/api/placements/{id}/"),
                             ("put", "/api/teams/{id}/"), ("post", "/api/generations/{id}/cancel/"),
                             ("post", "/api/campaigns/{id}/import-placements/")):
            assert answers(schema, method, path)["415"] == unsupported, (method, path)

    def test_every_refusal_documents_its_json_body(self, schema):
        # The views' own 409s, 429s and 503s and the Idempotency-Key's 409 and 422 were words alone: a client built
        # from the schema read their `detail` as nothing.
        shared = schema["components"]["responses"]
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                for code, answer in operation["responses"].items():
                    answer = shared[answer["$ref"].rsplit("/", 1)[1]] if "$ref" in answer else answer
                    if code[0] in "45":
                        assert "application/json" in answer.get("content", {}), (method, path, code)
        created = answers(schema, "post", "/api/generations/")
        assert created["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorDetail"}
        assert created["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorDetail"}
        assert created["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/FieldErrors"}

    def test_every_body_it_reads_may_be_refused_for_its_size_or_chunks(self, team_users, schema, settings):
        # `qartsite.limits` answers 413 and 411 before any view, and no operation but the generations' said so.
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        refused = signed_in(team_users.owner).post("/api/campaigns/", {"name": "x" * 70_000}, format="json")
        assert refused.status_code == 413 and set(refused.json()) == {"detail"}
        for method, path in (("post", "/api/campaigns/"), ("patch", "/api/placements/{id}/"),
                             ("post", "/api/campaigns/{id}/import-placements/")):
            assert answers(schema, method, path)["413"] == {"$ref": "#/components/responses/ContentTooLarge"}
            assert answers(schema, method, path)["411"] == {"$ref": "#/components/responses/LengthRequired"}
        assert "413" not in answers(schema, "get", "/api/campaigns/")
        assert "ErrorDetail" in str(answers(schema, "post", "/api/generations/")["413"])  # its own words, our body

    def test_a_refusal_documented_as_any_object_is_the_apis_shape(self, schema):
        print_answers = answers(schema, "get", "/api/placements/{id}/print/")
        assert print_answers["409"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorDetail"}
        assert print_answers["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/FieldErrors"}

    def test_a_blank_or_url_field_takes_the_blank_we_answer(self, team_users, schema):
        # drf-spectacular's `oneOf: [{format: uri}, {maxLength: 0}]`: a format is an annotation to JSON Schema, so
        # "" matched both, and every campaign and placement answered failed its own schema.
        campaign = api_as(team_users.owner).post("/api/campaigns/", {"name": "Spring", "destination": "https://a.example/"},
                                                 format="json").json()
        fields = schema["components"]["schemas"]["Campaign"]["properties"]
        assert campaign["fallback_url"] == ""
        jsonschema.validate(campaign["fallback_url"], fields["fallback_url"])
        jsonschema.validate("https://b.example/", fields["fallback_url"])
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate("x" * 2001, fields["fallback_url"])
        blank_or_url = {f"{name}.{field}": spec for name, component in schema["components"]["schemas"].items()
                        for field, spec in component.get("properties", {}).items()
                        if {"type": "string", "maxLength": 0} in spec.get("anyOf", []) + spec.get("oneOf", [])}
        assert blank_or_url.keys() >= {"Placement.destination_override", "PatchedCampaignRequest.fallback_url"}
        for spec in blank_or_url.values():
            jsonschema.validate("", spec)  # raises for a oneOf of both

    def test_it_refuses_to_replace_a_component_of_the_same_name(self):
        result = {"paths": {}, "components": {"schemas": {"ErrorDetail": {"type": "string"}}}}
        with pytest.raises(ImproperlyConfigured, match="ErrorDetail"):
            document_error_answers(result, None, None, True)

    def test_the_documented_body_is_the_one_answered(self, team_users, schema):
        detail = schema["components"]["schemas"]["ErrorDetail"]
        body = APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION="Token nope").json()
        assert set(body) == set(detail["properties"]) == set(detail["required"]) == {"detail"}


class TestAnswerSchema:
    def test_every_field_of_a_models_answer_is_required(self, team_users, schema):
        # drf-spectacular marked `team`, `fallback_url`, `archived`... optional in every campaign answered, as they
        # are in a create's body: clients generated from the schema typed them `team?: number`.
        components = schema["components"]["schemas"]
        campaign = api_as(team_users.owner).post("/api/campaigns/", {"name": "Spring", "destination": "https://a.example/"},
                                                 format="json").json()
        assert set(components["Campaign"]["required"]) == set(components["Campaign"]["properties"]) == set(campaign)
        assert "team" not in components["CampaignRequest"]["required"]  # a create may leave it to its default
        page = api_as(team_users.owner).get("/api/campaigns/").json()
        assert set(components["PaginatedCampaignList"]["required"]) == set(page) == {"count", "next", "previous",
                                                                                     "results"}
        for name in ("Placement", "Generation", "Team", "WebhookEndpoint", "ReportShare"):
            assert set(components[name]["required"]) == set(components[name]["properties"]), name

    def test_an_answer_described_by_hand_keeps_its_optional_fields(self, schema):
        # A plain serializer describes a body built by hand: a refused webhook test names the waiting one (409) only.
        refused = schema["components"]["schemas"]["TestRefused"]
        assert refused["required"] == ["detail"] and "message_id" in refused["properties"]


# The headers clients act on, by the answer that sends them: Location on a created object's 201, Retry-After on every
# 429 and 503 and on a print file still being made (202). A bulk generate's 201, an import's, a webhook test's 202
# send neither.
SENT_HEADERS = {
    **{("post", path, "201"): {"Location"} for path in ("/api/campaigns/", "/api/generations/", "/api/placements/",
                                                         "/api/shares/", "/api/webhooks/")},
    **{("post", "/api/campaigns/{id}/generate/", code): {"Retry-After"} for code in ("429", "503")},
    **{("post", "/api/generations/", code): {"Retry-After"} for code in ("429", "503")},
    ("get", "/api/placements/{id}/preflight/", "503"): {"Retry-After"},
    **{("get", "/api/placements/{id}/print/", code): {"Retry-After"} for code in ("202", "429", "503")},
    ("post", "/api/webhooks/{id}/send-test/", "503"): {"Retry-After"},
    # An Idempotency-Key's 409 while the first request runs (Retry-After); a create whose answer showed a secret,
    # retried once it is done, names its object's address (Location).
    **{("post", path, "409"): {"Retry-After"} for path in ("/api/campaigns/", "/api/generations/", "/api/placements/",
                                                            "/api/campaigns/{id}/generate/",
                                                            "/api/campaigns/{id}/import-placements/")},
    **{("post", path, "409"): {"Retry-After", "Location"} for path in ("/api/shares/", "/api/webhooks/")},
}


def documented_headers(schema: dict, method: str, path: str, code: str) -> set[str]:
    """The headers among Location and Retry-After that the schema lists on one answer."""
    return set(answers(schema, method, path).get(code, {}).get("headers", {})) & {"Location", "Retry-After"}


def sent_headers(response) -> set[str]:
    return {name for name in ("Location", "Retry-After") if response.has_header(name)}


class TestAnswerHeaders:
    def test_it_lists_location_and_retry_after_on_the_answers_that_send_them(self, schema):
        # Said in descriptions only: a client generated from the schema had no field to read either by.
        listed = {(method, path, code): documented_headers(schema, method, path, code)
                  for path, item in schema["paths"].items() for method, operation in item.items()
                  for code in operation["responses"] if documented_headers(schema, method, path, code)}
        assert listed == SENT_HEADERS
        location = answers(schema, "post", "/api/campaigns/")["201"]["headers"]["Location"]
        assert location["required"] and location["schema"] == {"type": "string", "format": "uri"}
        retry_after = answers(schema, "post", "/api/generations/")["429"]["headers"]["Retry-After"]
        assert retry_after["schema"] == {"type": "integer"} and "required" not in retry_after

    def test_the_answers_send_what_it_lists(self, team_users, schema, settings, enqueued, fresh_cache, monkeypatch):


        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "1/hour"}}
        client, body = api_as(team_users.owner), {"prompt": "p", "content": "https://qart.example/r/AbC12345"}
        created = client.post("/api/campaigns/", {"name": "Spring", "destination": "https://a.example/"},
                              format="json")
        generation, refused = (client.post("/api/generations/", body, format="json") for _ in range(2))
        endpoint = WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/qart",
                                                  events=["scan.created"], secret="s" * 32)

        def queue_away(endpoint):
            raise RedisConnectionError("refused")

        monkeypatch.setattr(webhook_pings, "queue_ping", queue_away)
        unsent = client.post(f"/api/webhooks/{endpoint.pk}/send-test/")
        for response, method, path in ((created, "post", "/api/campaigns/"), (generation, "post", "/api/generations/"),
                                       (refused, "post", "/api/generations/"),
                                       (unsent, "post", "/api/webhooks/{id}/send-test/")):
            assert sent_headers(response) == documented_headers(schema, method, path, str(response.status_code))
        assert [created.status_code, generation.status_code, refused.status_code, unsent.status_code] == [
            201, 201, 429, 503]
        assert client.get(created["Location"]).json()["name"] == "Spring"

    def test_an_answer_replayed_for_its_key_sends_what_it_lists(self, team_users, schema, fresh_cache):
        # A retry's answer said Idempotent-Replayed: true where the schema listed no such header: a client generated
        # from it had nothing to tell a replay from a first answer by. A create, and an action that takes the key.
        from campaigns.models import Campaign

        client = api_as(team_users.owner)
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        sent = (("/api/campaigns/", {"name": "Autumn", "destination": "https://a.example/"}, "json"),
                (f"/api/campaigns/{campaign.pk}/import-placements/?dry_run=1", {"text": "name\nGate\n"}, "multipart"))
        for (path, body, format), documented_path in zip(sent, ("/api/campaigns/",
                                                                "/api/campaigns/{id}/import-placements/"),
                                                         strict=True):
            first, again = (client.post(path, body, format=format, HTTP_IDEMPOTENCY_KEY="k1") for _ in range(2))
            assert again.status_code == first.status_code and again.json() == first.json(), path
            assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed"), path
            header = answers(schema, "post", documented_path)[str(again.status_code)]["headers"]["Idempotent-Replayed"]
            jsonschema.validate(again["Idempotent-Replayed"], header["schema"])
        # Only where the key is taken: an edit has no replay to tell of.
        assert "Idempotent-Replayed" not in answers(schema, "patch", "/api/campaigns/{id}/")["200"].get("headers", {})

    def test_its_409s_send_what_it_lists(self, team_users, schema, fresh_cache, monkeypatch):
        # Every 409 was an ErrorDetail without headers: a retried share's names what it made (`id`, Location,
        # Idempotent-Replayed), a key still running says when to ask again (Retry-After), and a retention that would
        # delete scans counts them (`scans_deleted`).
        from datetime import timedelta

        from django.utils import timezone

        from campaigns.api import CampaignViewSet
        from campaigns.drainer import store_events
        from campaigns.models import Campaign, Placement
        from tests.campaigns.rollup_data import event

        client = api_as(team_users.owner)
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        store_events([event(Placement.objects.create(campaign=campaign, name="Poster"),
                            timezone.now() - timedelta(days=100))])
        retention = client.patch(f"/api/teams/{team_users.team.pk}/", {"scan_retention_days": 30}, format="json")
        share = {"campaign": campaign.pk, "days": 7, "label": "x"}
        client.post("/api/shares/", share, format="json", HTTP_IDEMPOTENCY_KEY="s1")
        retried = client.post("/api/shares/", share, format="json", HTTP_IDEMPOTENCY_KEY="s1")
        running = []

        def post_again_meanwhile(self, serializer):
            running.append(client.post("/api/campaigns/", body, format="json", HTTP_IDEMPOTENCY_KEY="c1"))
            serializer.save(team=team_users.team)

        monkeypatch.setattr(CampaignViewSet, "perform_create", post_again_meanwhile)
        body = {"name": "Autumn", "destination": "https://a.example/"}
        assert client.post("/api/campaigns/", body, format="json", HTTP_IDEMPOTENCY_KEY="c1").status_code == 201
        for response, method, path in ((retention, "patch", "/api/teams/{id}/"), (retried, "post", "/api/shares/"),
                                       (running[0], "post", "/api/campaigns/")):
            assert response.status_code == 409, (path, response.content)
            answer = answers(schema, method, path)["409"]
            documented = answer["content"]["application/json"]["schema"]
            if "$ref" in documented:
                documented = schema["components"]["schemas"][documented["$ref"].rsplit("/", 1)[1]]
            assert set(response.json()) == set(documented["properties"]), path
            jsonschema.validate(response.json(), {**documented, "components": schema["components"]})
            sent = {name for name in ("Location", "Retry-After", "Idempotent-Replayed") if response.has_header(name)}
            assert sent <= set(answer.get("headers", {})), path
        assert retried.has_header("Location") and retried["Idempotent-Replayed"] == "true"
        assert running[0].has_header("Retry-After") and retention.json()["scans_deleted"] == 1
