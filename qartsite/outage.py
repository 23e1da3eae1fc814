"""What a page answers while the database is away: a 503 that says so, never a "something went wrong" 500.

The short link answers from its copies of the links instead (campaigns.redirects). Every other page needs the
database; when it refuses connections or does not answer within the connect timeout (settings: 2 s on PostgreSQL),
`DatabaseUnavailableMiddleware` ends the request with a 503 and Retry-After, so a person knows to try again in a
minute and a script knows when. The page is a template of its own that needs nothing from the database.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
MESSAGE = "The database is not answering right now, so this page cannot be shown. Please try again in a minute."


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        # OperationalError: refused, timed out, shutting down, a statement cancelled; InterfaceError: a connection the
        # database closed. Anything else is a bug and stays a 500.
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.warning("The database is away (%s): %s %s answered with 503", exception, request.method, request.path)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"detail": MESSAGE}, status=503)
        else:
            response = HttpResponse(render_to_string("503.html", {"message": MESSAGE}), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        return response
