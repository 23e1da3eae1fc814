"""What the API's schema says beyond what drf-spectacular reads from the views: its postprocessing hooks
(SPECTACULAR_SETTINGS). The 4xx answers every operation documents and the JSON body of each refusal
(`document_error_answers`), and blank-or-URL fields that validators can read (`blank_or_formatted_as_any_of`); and
the schema class that marks every field of a model's answer as always there and lists the headers clients act on,
Location on a created object's 201 and Retry-After on every 429 and 503 (`AnswerSchema`); an Idempotency-Key's 409
is its own hook's (`qartsite.idempotency.document_idempotency_key`).
The answers themselves come from `qartsite.api` (`exception_handler`) and `qartsite.limits` (411, 413)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from qartsite.api import CreatedLocation

# The 4xx answers the schema documents for every operation, in one place rather than on each view. Their bodies are
# DRF's: `{"detail": "..."}`, or each field's messages under its name for a 400. No default 429: no view has a
# general rate; the generation rate's views document their own 429, as views document any answer of their own
# (which these never replace).
ERROR_COMPONENTS = {
    "ErrorDetail": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]},
    "FieldErrors": {"type": "object", "additionalProperties": {}, "description": (
        "Each field's messages (a list of strings) under its name, `non_field_errors` for the request as a whole, "
        "or `detail` for a body that cannot be read")},
}
ERROR_ANSWERS = {  # status code: (the response component's name, its body's schema, its description)
    "400": ("BadRequest", "FieldErrors", "The body or the query cannot be used; nothing was changed."),
    "401": ("Unauthenticated", "ErrorDetail", "No credentials, or a token that is invalid or expired (`detail` says "
                                              "which: an expired token is said to be, once)."),
    "403": ("Forbidden", "ErrorDetail", "Signed in but not allowed, and `detail` says why: a viewer changing "
                                        "something, a member without the role this needs, or a browser session's "
                                        "write without its CSRF token."),
    "404": ("NotFound", "ErrorDetail", "No such object, or another team's (the same answer), or a page past the "
                                       "last."),
    "406": ("NotAcceptable", "ErrorDetail", "`Accept` or `?format=` asks for a format this answer is not made in "
                                            "(`detail` says so, naming the formats there are for `?format=`)."),
    "411": ("LengthRequired", "ErrorDetail", "The body came in chunks (no Content-Length), which this server cannot "
                                             "read (the development server; gunicorn and uvicorn can): send its "
                                             "length; nothing was changed."),
    "413": ("ContentTooLarge", "ErrorDetail", "The body is over the upload cap (QART_MAX_UPLOAD_BYTES, files "
                                              "included; `detail` says both sizes); nothing was read or changed."),
    "415": ("UnsupportedMediaType", "ErrorDetail", "The body's Content-Type is not one this operation reads, or it has "
                                                   "none (`detail` names those it reads); nothing was changed."),
}
ANY_OBJECT = {"type": "object", "additionalProperties": {}}  # drf-spectacular's OpenApiTypes.OBJECT
# A bad `page` is a 404 ("Invalid page “9”: …"); an unknown `ordering` is a 400 (qartsite.filters).
QUERY_NEVER_400 = {"page"}


# The answers' headers that clients act on, documented where they are sent (`AnswerSchema.get_override_parameters`):
# in the descriptions alone, a client generated from the schema had no field to read them by.
LOCATION = OpenApiParameter("Location", OpenApiTypes.URI, OpenApiParameter.HEADER, response=[201], required=True,
                            description="The new object's address (its URL): GET it there.")
RETRY_AFTER_ANSWERS = [429, 503]  # every view's that documents one sends it (a 429 without a known wait excepted)


def retry_after(*codes: int) -> OpenApiParameter:
    """The Retry-After header of the answers `codes` (whole seconds): every 429 and 503 has it (`AnswerSchema`); a
    view whose other answers send it too documents them with this.

    Args:
        codes (`int`): the answers' status codes.

    Returns:
        `OpenApiParameter`: the header, for `extend_schema(parameters=...)`.
    """
    return OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=list(codes),
                            description="Seconds to wait before asking again.")


def component(name: str) -> dict:
    """A reference to the schema component `name` (ERROR_COMPONENTS' or a serializer's)."""
    return {"$ref": f"#/components/schemas/{name}"}


def either(*names: str) -> dict:
    """A body's schema that is one of these components (`anyOf`: an object may fit more than one)."""
    return {"anyOf": [component(name) for name in names]}


def error_answers(operation: dict, method: str = "get") -> list[str]:
    """The status codes of `ERROR_ANSWERS` that `operation` (a schema's operation object, for `method`) can
    answer. A POST with no body documented refuses one (`no_body`)."""
    codes = []
    query = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
    if "requestBody" in operation or method == "post" or query - QUERY_NEVER_400:
        codes.append("400")
    if {} not in operation.get("security", [{}]):  # drf-spectacular adds {} where anonymous requests are let in
        codes += ["401", "403"]
    if any(p.get("in") == "path" for p in operation.get("parameters", [])) or "page" in query:
        codes.append("404")
    # Every answer is negotiated (`qartsite.negotiation`) but a file's (CSV exports, print files): those views take
    # their one format whatever is asked, and document it as their success answer's content.
    made = {kind for code, answer in operation.get("responses", {}).items() if code.startswith("2")
            for kind in answer.get("content", {})}
    if made <= {"application/json"}:
        codes.append("406")
    if "requestBody" in operation or method in ("post", "put", "patch"):  # a body it cannot read (`no_body` too)
        codes += ["411", "413", "415"]  # `qartsite.limits`, before the view
    return codes


def document_error_answers(result: dict, generator, request, public) -> dict:
    """drf-spectacular's postprocessing hook (SPECTACULAR_SETTINGS): add the common 4xx answers to each operation,
    as references to shared response components, keeping any answer the view documents itself."""
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, shape in ERROR_COMPONENTS.items():
        if schemas.setdefault(name, shape) != shape:  # a serializer of that name: say so, replace nothing
            raise ImproperlyConfigured(f"Two schema components are named {name}: rename the serializer.")
    components.setdefault("responses", {}).update({
        name: {"description": description,
               "content": {"application/json": {"schema": component(schema)}}}
        for name, schema, description in ERROR_ANSWERS.values()})
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            for code in error_answers(operation, method):
                operation["responses"].setdefault(code, {"$ref": f"#/components/responses/{ERROR_ANSWERS[code][0]}"})
            # The refusals a view (or the Idempotency-Key) documents in words alone, or as any object, are answered
            # in the same JSON: without a body's schema, a client generated from the schema read `detail` as nothing.
            for code, answer in operation["responses"].items():
                if code[0] not in "45" or "$ref" in answer:
                    continue
                body = component("FieldErrors" if code == "400" else "ErrorDetail")
                content = answer.setdefault("content", {"application/json": {"schema": body}})
                if content.get("application/json", {}).get("schema") == ANY_OBJECT:
                    content["application/json"]["schema"] = body
    return result


def blank_or_formatted_as_any_of(result: dict, generator, request, public) -> dict:
    """drf-spectacular's postprocessing hook: a field that is blank or a URL (`fallback_url`,
    `destination_override`) as `anyOf`, where drf-spectacular writes `oneOf: [{format: uri, ...}, {maxLength: 0}]`.

    A `format` is an annotation to JSON Schema and to most OpenAPI 3.0 validators, so "" matched both branches and
    `oneOf` (exactly one) refused it: every campaign and placement we answer failed its own schema there."""

    def visit(node) -> None:
        if isinstance(node, dict):
            branches = node.get("oneOf")
            if isinstance(branches, list) and {"type": "string", "maxLength": 0} in branches:
                node["anyOf"] = node.pop("oneOf")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result.get("components", {}))
    return result


class AnswerSchema(AutoSchema):
    """drf-spectacular's schema of a view (DEFAULT_SCHEMA_CLASS), where every field of a model serializer's answer is
    required: it writes each one out, null or blank when there is nothing.

    With COMPONENT_SPLIT_REQUEST drf-spectacular marks an answer's field required only when a request must send it
    or it is read-only: a campaign's `team`, optional when one is created (it defaults to the user's one team), was
    optional in every campaign answered too, so clients generated from the schema typed it `team?: number` and made
    their callers test for a field that is never missing. Plain serializers keep their own say: they describe answers
    built by hand, where a field they call optional may be left out (a refused webhook test's `message_id`)."""

    def get_override_parameters(self) -> list:
        """drf-spectacular's parameters of the operation, with the response headers every view sends alike: Location
        on a created object's 201 (`CreatedLocation`), Retry-After on each 429 and 503. A view's own
        (`extend_schema(parameters=...)`) come after, and win."""
        headers = [retry_after(*RETRY_AFTER_ANSWERS)]
        if isinstance(self.view, CreatedLocation) and getattr(self.view, "action", None) == "create":
            headers.append(LOCATION)
        return [*headers, *super().get_override_parameters()]

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "response" and isinstance(serializer, serializers.ModelSerializer) and \
                schema.get("properties"):
            schema["required"] = sorted(schema["properties"])
        return schema
