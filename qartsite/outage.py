"""What a page answers while the database is away: a 503 that says so, never a "something went wrong" 500.

The short link answers from its copies of the links instead (campaigns.redirects). Every other page needs the
database; when it refuses connections or does not answer within the connect timeout (settings: 2 s on PostgreSQL),
`DatabaseUnavailableMiddleware` ends the request with a 503 and Retry-After, so a person knows to try again in a
minute and a script knows when. The page is a template of its own that needs nothing from the database. A write
that lost a race with another (a deadlock, a lock waited on too long) is a 503 too, saying so: send it again.

A database that answers but where a query waits behind a lock (a long migration, VACUUM FULL, an operator's LOCK
TABLE) held the page until gunicorn killed its worker at 30 s: the person got a dropped connection (a fault drill,
with the scans' table locked). Web processes (`qartsite.wsgi`, `qartsite.asgi`) end a statement after
STATEMENT_TIMEOUT_MS (`limit_statements`), and the 503 says the database is not answering. Workers, the drainer and
commands are not limited: migrations and rebuilds take the time they take.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from qartsite.responses import detail_response, is_api_path

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
MESSAGE = "The database is not answering right now, so this page cannot be shown. Please try again in a minute."
# A write that lost a race with another at the same moment: PostgreSQL's deadlock, serialization failure and lock
# not available (SQLSTATE), SQLite's lock held past its timeout. The database is there; sending again works.
CONTENTION_STATES = {"40P01", "40001", "55P03"}
CONTENTION = ("Another change to the same thing was being saved at the same moment, so nothing was saved. Please "
              "send it again.")
CONTENTION_RETRY_SECONDS = 2
STATEMENT_TIMEOUT_MS = 20_000  # under gunicorn's 30 s worker timeout, with time left to answer


def limit_statements(sender, connection, **kwargs) -> None:
    """`connection_created` receiver of web processes: PostgreSQL cancels any statement of the connection after
    STATEMENT_TIMEOUT_MS (the short link's lookups set a shorter one of their own: campaigns.redirects)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS:d}")


def limit_web_statements() -> None:
    """Limit every connection this process opens (`limit_statements`): called as a web process loads the application
    (`qartsite.web_process`, for `qartsite.wsgi` and `qartsite.asgi`), never by workers or commands."""
    connection_created.connect(limit_statements, dispatch_uid="qartsite.outage.limit_statements")


def contention(exception: Exception) -> bool:
    """Whether `exception` (an OperationalError) is a write that lost a race, not a database that is away."""
    state = getattr(exception.__cause__, "sqlstate", None)
    return state in CONTENTION_STATES or "database is locked" in str(exception)


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
        raced = isinstance(exception, OperationalError) and contention(exception)
        message, retry = (CONTENTION, CONTENTION_RETRY_SECONDS) if raced else (MESSAGE, RETRY_AFTER_SECONDS)
        log.warning("%s (%s): %s %s answered with 503", "A write lost a race" if raced else "The database is away",
                    exception, request.method, request.path)
        if is_api_path(request.path):
            response = detail_response(message, 503)
        else:
            response = HttpResponse(render_to_string("503.html", {"message": message}), status=503)
        response["Retry-After"] = str(retry)
        response["Cache-Control"] = "no-store"
        return response
