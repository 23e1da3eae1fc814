"""Small HTTP answers shared by every app's views."""

from __future__ import annotations

from django.http import HttpResponseBadRequest


def plain_400(message: str) -> HttpResponseBadRequest:
    """A 400 whose body is `message` as plain text: for requests made by the pages' scripts, which show it."""
    return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
