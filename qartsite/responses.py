"""Small HTTP answers shared by every app's views."""

from __future__ import annotations

from django.http import Http404, HttpResponse, HttpResponseBadRequest


def plain_400(message: str) -> HttpResponseBadRequest:
    """A 400 whose body is `message` as plain text: for requests made by the pages' scripts, which show it."""
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


def plain_503(message: str, retry_after: int = 60) -> HttpResponse:
    """A 503 whose body is `message` as plain text, with when to try again: a service the answer needs is away."""
    response = HttpResponse(message, content_type="text/plain; charset=utf-8", status=503)
    response["Retry-After"] = str(retry_after)
    return response


def not_found():
    """A 404 for what was deleted while the request was on its way (an edit's row gone when it came to lock it)."""
    raise Http404("It was deleted a moment ago.")
