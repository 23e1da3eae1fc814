"""The API's shared plumbing (`qartsite.api`): here, the 4xx answers the schema documents for every operation."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from qartsite.api import document_error_answers, error_answers

SIGNED_IN = [{"tokenAuth": []}, {"cookieAuth": []}]


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return APIClient().get("/api/schema/?format=json").json()


def answers(schema: dict, method: str, path: str) -> dict:
    return schema["paths"][path][method]["responses"]


class TestErrorAnswers:
    @pytest.mark.parametrize("operation, codes", [
        ({"security": SIGNED_IN, "requestBody": {}}, ["400", "401", "403"]),
        ({"security": SIGNED_IN, "parameters": [{"name": "id", "in": "path"}]}, ["401", "403", "404"]),
        # A bad page is "Invalid page." (404); an unknown ordering is ignored; a filter's bad value is a 400.
        ({"security": SIGNED_IN, "parameters": [{"name": "page", "in": "query"},
                                                {"name": "ordering", "in": "query"}]}, ["401", "403", "404"]),
        ({"security": SIGNED_IN, "parameters": [{"name": "team", "in": "query"}]}, ["400", "401", "403"]),
        ({"security": [*SIGNED_IN, {}]}, []),  # anonymous requests let in: no 401 or 403
        ({}, []),
    ])
    def test_it_picks_the_answers_an_operation_can_give(self, operation, codes):
        assert error_answers(operation) == codes

    def test_it_documents_them_on_every_operation_through_shared_components(self, schema):
        validate_schema(schema)
        responses = schema["components"]["responses"]
        assert set(responses) == {"BadRequest", "Unauthenticated", "Forbidden", "NotFound"}
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

    def test_it_refuses_to_replace_a_component_of_the_same_name(self):
        result = {"paths": {}, "components": {"schemas": {"ErrorDetail": {"type": "string"}}}}
        with pytest.raises(ImproperlyConfigured, match="ErrorDetail"):
            document_error_answers(result, None, None, True)

    def test_the_documented_body_is_the_one_answered(self, team_users, schema):
        detail = schema["components"]["schemas"]["ErrorDetail"]
        body = APIClient().get("/api/campaigns/", HTTP_AUTHORIZATION="Token nope").json()
        assert set(body) == set(detail["properties"]) == set(detail["required"]) == {"detail"}
