"""Answers to HEAD without a body, whatever the view made: a WSGI middleware around the application.

Django leaves that to the server (its development server drops the body; gunicorn does not, and says it is the
application's job), so under gunicorn every HEAD answer carried the GET's body after its headers: on a kept-alive
connection the client read those bytes as the start of its next answer (`requests` failed with BadStatusLine), and
a HEAD of a 1 MB candidate image sent the megabyte. Content-Length stays the GET's, as HTTP asks.
"""

from __future__ import annotations


class HeadWithoutBody:
    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ: dict, start_response):
        chunks = self.application(environ, start_response)
        if environ.get("REQUEST_METHOD", "").upper() != "HEAD":
            return chunks
        # Not iterated: a streamed answer (a CSV export, a file) is not made for nothing. Closed, as the server would
        # close it, so Django's request_finished runs (database connections).
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
        return []
