"""`Idempotency-Key` on the API's creates: a client that retries a POST after a timeout gets the first answer again,
not a second generation (GPU time, and the team's rate) or a second campaign.

The first request with a key runs; its 2xx answer is kept for `KEEP_SECONDS` under the user, the path and the key.
The same key again: the same query and body replay that answer (header `Idempotent-Replayed: true`); another is a 422;
while the first still runs, a 409. An answer that carries a secret shown once (a share's link, a webhook's secret)
is not kept: its retry is a 409 naming the object. An answer that is not 2xx is not kept, so a corrected request
can use the key.
Kept in Django's cache (CACHE_URL: shared in production); when the cache cannot be reached the request runs as if it
had no key.
"""

from __future__ import annotations

import hashlib
import json
import logging

from django.core.cache import cache
from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.utils import OpenApiParameter
from redis.exceptions import RedisError
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
KEEP_SECONDS = 24 * 3600
# A request holds its key this long at most while it runs; a process that died holding it frees the key then.
RUNNING_SECONDS = 120
RUNNING = "running"
# Headers of the first answer that its replay repeats (Location is added again by `api.CreatedLocation`).
KEPT_HEADERS = ("Cache-Control", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def fingerprint(request: Request) -> str:
    """A hash of what the request asks: its query (`?dry_run=1` asks something else), its content type and its
    parsed body (files by name, size and content)."""

    def plain(value):
        if isinstance(value, UploadedFile):
            digest = hashlib.sha256()
            for chunk in value.chunks():
                digest.update(chunk)
            value.seek(0)
            return ["file", value.name, value.size, digest.hexdigest()]
        return value

    data = request.data
    body = sorted((k, [plain(v) for v in data.getlist(k)]) for k in data) if hasattr(data, "getlist") else data
    query = sorted(request.query_params.lists())
    text = json.dumps([query, request.content_type.split(";")[0], body], cls=JSONEncoder, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def once(handler, request: Request, key: str, keep_body: bool = True):
    """`handler` (the view's bound `post`) run at most once for `key`, as the module says. `keep_body` False: the
    first answer carries a secret shown once (a share's link, a webhook's signing secret), which is not kept; a
    retry is answered 409 with the object's id and address instead."""
    # The path without its trailing slash: every API path answers with or without it.
    where = request.path.rstrip("/")
    name = "qart:idempotency:" + hashlib.sha256(f"{request.user.pk}\0{where}\0{key}".encode()).hexdigest()
    asked = fingerprint(request)

    def run(request: Request, *args, **kwargs) -> Response:
        try:
            kept = cache.get(name)
            if kept is None and not cache.add(name, {"state": RUNNING, "fingerprint": asked}, RUNNING_SECONDS):
                kept = cache.get(name) or {"state": RUNNING, "fingerprint": asked}
        except RedisError as exc:  # one line, not a traceback per request while the cache is away
            log.warning("Idempotency-Key not checked: the cache cannot be reached (%s)", exc)
            return handler(request, *args, **kwargs)
        if kept is not None:
            if kept["fingerprint"] != asked:
                return Response({"detail": f"This {HEADER} was used for another request (its query or body): send a "
                                           "new key for a new request."}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
            if kept["state"] == RUNNING:
                return Response({"detail": f"The first request with this {HEADER} is still running: ask again in "
                                           "a moment."}, status=status.HTTP_409_CONFLICT, headers={"Retry-After": "2"})
            headers = {**kept.get("headers", {}), REPLAYED: "true"}
            if "data" not in kept:
                return Response({"detail": "This request was carried out already; what it made is at its address "
                                           "(its secret was shown in the first answer only).", "id": kept.get("id")},
                                status=status.HTTP_409_CONFLICT, headers=headers)
            return Response(kept["data"], status=kept["status"], headers=headers)
        response = None
        try:
            response = handler(request, *args, **kwargs)
        finally:
            try:
                if response is not None and 200 <= response.status_code < 300:
                    answer = {"state": "done", "fingerprint": asked, "status": response.status_code,
                              "headers": {h: response[h] for h in KEPT_HEADERS if response.has_header(h)}}
                    data = json.loads(json.dumps(response.data, cls=JSONEncoder))
                    if keep_body:
                        answer["data"] = data
                    else:
                        answer["id"] = data.get("id") if isinstance(data, dict) else None
                    cache.set(name, answer, KEEP_SECONDS)
                else:
                    cache.delete(name)  # refused or failed: the key may be used again
            except RedisError as exc:
                log.warning("Idempotency-Key answer not kept: the cache cannot be reached (%s)", exc)
        return response

    return run


class IdempotentCreate:
    """A view set mixin: `create`, and the actions named in `idempotent_actions`, honour an `Idempotency-Key`
    header (see the module)."""

    idempotent_actions = ("create",)
    # False where the create answer carries a secret shown once: a retry gets a 409 naming the object instead.
    idempotent_keeps_body = True

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)  # authenticated and permitted first: the key is per user
        key = request.headers.get(HEADER)
        if key is None or getattr(self, "action", None) not in self.idempotent_actions:
            return
        if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            raise ParseError(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters.")
        self.post = once(self.post, request, key, keep_body=self.idempotent_keeps_body)


DESCRIPTION = (f"Retry safely: the same key, query and body answer the first answer again for {KEEP_SECONDS // 3600} "
               "hours (header Idempotent-Replayed: true); another query or body is a 422, a request still running "
               "with the key a 409.")
# For an action in `idempotent_actions` (extend_schema(parameters=[PARAMETER])); creates get it from the hook below.
PARAMETER = OpenApiParameter(HEADER, str, OpenApiParameter.HEADER, required=False, description=DESCRIPTION)


# The key's 409s. While the first request runs: `detail`, and Retry-After. A create whose answer carried a secret shown
# once (`keep_body` False), retried once it is done: `detail`, the `id` of what it made, its address in Location
# (`api.CreatedLocation`), and Idempotent-Replayed. Listed as headers and a body a client generated from the schema
# reads them by; in the description alone they were nothing to it.
RUNNING_CONFLICT = "The first request with this key is still running: ask again after Retry-After."
CONFLICT = (f"{RUNNING_CONFLICT} Or, where the first answer carried a secret shown once (a share's link, a webhook's "
            "signing secret), it was carried out already: `id` names what it made and Location its address.")
RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds to wait before asking again (the first request "
                                                              "still runs)."}
REPLAYED = "Idempotent-Replayed"
# On the key's 409 for a secret shown once, and on every 2xx of an operation that takes the key: the answer replayed
# for a retry (`once`) sends it, which a client reads to know nothing was done again.
REPLAYED_HEADER = {"schema": {"type": "string", "enum": ["true"]},
                   "description": "Sent when the first request with this key was carried out already: nothing was "
                                  "done again."}
DONE_HEADERS = {
    "Location": {"schema": {"type": "string", "format": "uri"},
                 "description": "The address of what the first request made (it was carried out already)."},
    REPLAYED: REPLAYED_HEADER,
}
DONE_BODY = {"type": "object", "required": ["detail"], "properties": {
    "detail": {"type": "string"},
    "id": {"type": "integer", "description": "What the first request made (it was carried out already)."}}}


def shown_once_creates(generator) -> set[str]:
    """The paths whose create answers a secret shown once (`IdempotentCreate.idempotent_keeps_body` False), from
    drf-spectacular's endpoints; none without a generator."""
    return {path for path, _, method, callback in getattr(generator, "endpoints", None) or ()
            if method == "POST" and getattr(callback, "actions", {}).get("post") == "create"
            and not getattr(getattr(callback, "cls", None), "idempotent_keeps_body", True)}


def document_idempotency_key(result: dict, generator, request, public) -> dict:
    """drf-spectacular's postprocessing hook: the header on every create (a POST to a collection; actions' POSTs,
    whose paths name an object, are named `..._create` too), and on every operation that takes it (those actions
    name `PARAMETER` themselves) the 409 as it is sent (its headers, and the body of a retried secret) and the
    Idempotent-Replayed header of a 2xx answered again."""
    parameter = {"in": "header", "name": HEADER, "required": False,
                 "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH}, "description": DESCRIPTION}
    shown_once = shown_once_creates(generator)
    for path, item in result.get("paths", {}).items():
        operation = item.get("post")
        if not operation:
            continue
        if "{" not in path and operation.get("operationId", "").endswith("_create"):
            operation.setdefault("parameters", []).append(parameter)
            operation["responses"].setdefault("409", {"description": CONFLICT if path in shown_once
                                                      else RUNNING_CONFLICT})
            operation["responses"].setdefault("422", {"description": "This key was used for another body."})
        if not any(p.get("in") == "header" and p.get("name") == HEADER for p in operation.get("parameters", [])):
            continue
        for code, answer in operation["responses"].items():
            if code.startswith("2"):
                answer.setdefault("headers", {})[REPLAYED] = REPLAYED_HEADER
        conflict = operation["responses"].setdefault("409", {"description": RUNNING_CONFLICT})
        headers = conflict.setdefault("headers", {})
        headers.setdefault("Retry-After", RETRY_AFTER)
        if path in shown_once:
            headers.update(DONE_HEADERS)
            conflict["content"] = {"application/json": {"schema": DONE_BODY}}
    return result
