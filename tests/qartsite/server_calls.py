"""One request through a WSGI (`wsgi_call`) or ASGI (`asgi_call`) application as a server makes it, for the tests of
the entry points' wrappers (qartsite.limits, qartsite.heads): in pytest, and in the fresh interpreter that loads
`qartsite.asgi` as uvicorn does."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@contextmanager
def kept_connection() -> Iterator[None]:
    """As Django's test client does: the request's start and end must not close the test's database connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def wsgi_call(application, method: str, path: str, body: bytes, headers: dict, *, chunked: bool = False,
              terminated: bool = False) -> tuple[str, dict, bytes]:
    """One request through a WSGI application as a server would make it: (status, headers, body). `headers` as
    given (a CONTENT_LENGTH saying more than `body` holds is a body cut short); `chunked`: the body already
    de-chunked in `wsgi.input`, no CONTENT_LENGTH, and `wsgi.input_terminated` as gunicorn sets it (`terminated`;
    wsgiref does not)."""
    from wsgiref.util import setup_testing_defaults

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body), **headers}
    if chunked:
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        if terminated:
            environ["wsgi.input_terminated"] = True
    setup_testing_defaults(environ)
    if chunked:
        environ.pop("CONTENT_LENGTH", None)
    answer = {}
    with kept_connection():
        chunks = application(environ, lambda status, response_headers, exc_info=None: answer.update(
            status=status, headers=dict(response_headers)))
        content = b"".join(chunks)
        getattr(chunks, "close", lambda: None)()
    return answer["status"], answer["headers"], content


@dataclass
class Answer:
    """What an ASGI application sent back (`status` None: nothing, as to a client that went away) and how many bytes
    of the request body it took from the server."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    read: int = 0


def asgi_call(application, method: str, path: str, chunks: Iterable[bytes], headers: dict[str, str], *,
              disconnect: bool = False, http_version: str = "1.1") -> Answer:
    """One request through an ASGI application, run from the calling thread (a test's database connection is that
    thread's).

    Args:
        application: the ASGI application.
        method: the request's method.
        path: the request's path.
        chunks: the body's parts, in the order the client sends them; each taken only when the application asks for
            more (a generator can stand for gigabytes).
        headers: the request's headers as sent, names in any case (Content-Length, Transfer-Encoding included).
        disconnect: the client goes away after its last part, instead of ending the body there.
        http_version: the scope's "1.0", "1.1" or "2".

    Returns:
        The `Answer`.
    """
    from asgiref.sync import async_to_sync

    answer = Answer()
    parts = iter(chunks)
    pending = next(parts, b"")

    async def receive() -> dict:
        nonlocal pending
        if pending is None:
            if disconnect or answer.status is not None:
                return {"type": "http.disconnect"}
            await asyncio.Event().wait()  # the client is still there; the application stops asking once it answers
        body, pending = pending, next(parts, None)
        answer.read += len(body)
        return {"type": "http.request", "body": body, "more_body": pending is not None or disconnect}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {name.decode().lower(): value.decode() for name, value in message["headers"]}
        else:
            answer.body += message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": http_version, "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
             "client": ("127.0.0.1", 40000), "server": ("testserver", 80)}
    with kept_connection():
        async_to_sync(application)(scope, receive, send)
    return answer
