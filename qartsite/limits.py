"""The cap on a request's size, file parts included (Django's DATA_UPLOAD_MAX_MEMORY_SIZE leaves files out).

The upload cap is DATA_UPLOAD_MAX_MEMORY_SIZE (QART_MAX_UPLOAD_BYTES). Three guards:
- `ChunkedBodies`, around the WSGI application, reads a body sent in chunks (no Content-Length) up to the cap and
  hands it on with its length; where the server cannot say where such a body ends, the middleware answers 411.
  `ASGIBodies` does so around the ASGI application (below).
- `RequestSizeMiddleware`, first in MIDDLEWARE, answers 413 to a request whose Content-Length is over the cap plus
  room for the other fields (`request_limit`) before anything reads its body.
- `UploadLimitHandler`, first in FILE_UPLOAD_HANDLERS, counts the file parts as they stream in and stops reading
  once they pass the cap: a body within the limit can still carry files over the cap, and under ASGI the parser
  reads until the body ends, whatever its declared length. The middleware answers that with the same 413.
Each 413 is one message: JSON under /api/, the site's page (`templates/413.html`) for a form a browser sent, plain
text to the rest.

A body sent compressed (Content-Encoding: gzip, br, ...) is a 415 that says so, from the middleware: nothing here
decodes one, so its bytes reached the parsers as they came ("the body is not UTF-8 text", or a form of garbage
fields).

`WholeBodies`, around the WSGI application too, refuses a body that ends before its Content-Length (the client went
away mid-request): Django reads such a body as it came, so a form cut short changed a destination to its first
letters and answered 200.

Under an ASGI server (uvicorn, daphne: `qartsite.asgi`), Django's handler reads the whole body into a temporary
file before the first middleware runs, so the middleware's 413 came after gigabytes were written, and a body in
chunks was read to its end to be answered 411. `ASGIBodies`, around that handler, reads none of a body declared over
the cap and no more than about the cap of one of no declared length (chunks; HTTP/2), and lets the middleware answer
from the length. A client that goes away mid-body is a disconnect there, which Django answers with nothing: what
`WholeBodies` does under gunicorn, the server does.
"""

from __future__ import annotations

import asyncio
import io

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme

from generator.core.codes.amounts import amount, over_cap
from generator.core.codes.echoes import echo
from qartsite.responses import is_api_path, json_detail

# Room for the fields beside the file (prompt, content, parameters, CSRF token) and the multipart headers; every
# form of the site fits in far less.
FIELDS_SLACK = 64 * 1024
# The cap is on all of a request's files at once (`UploadLimitHandler` counts them together): each 413 says so.
TOGETHER = "its files count together, a picture and a logo alike"


def request_limit() -> int:
    """The largest request body accepted, in bytes: the upload cap plus `FIELDS_SLACK`."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + FIELDS_SLACK


class RequestTooLarge(MultiPartParserError):
    """The files passed the cap while they were read. A parse error, so Django and DRF both answer 400 (nothing
    half-read reaches a view); `RequestSizeMiddleware` turns that 400 into its 413."""


def refusal_body(path: str, message: str) -> tuple[str, bytes]:
    """(content type, body) of a refusal made before any view: DRF's `{"detail": ...}` under /api/ (an integrator's
    client reads JSON), plain text elsewhere."""
    if is_api_path(path):
        return "application/json", json_detail(message)
    return "text/plain; charset=utf-8", message.encode()


def refused(request: HttpRequest, message: str, status: int) -> HttpResponse:
    kind, body = refusal_body(request.path, message)
    return HttpResponse(body, status=status, content_type=kind)


def wants_page(request: HttpRequest) -> bool:
    """A form a browser sent, which takes a page: not the API, and HTML accepted (a browser's navigation asks for it;
    the pages' scripts, curl and API clients do not)."""
    return not is_api_path(request.path) and "text/html" in request.META.get("HTTP_ACCEPT", "")


def too_large_page(request: HttpRequest) -> HttpResponse:
    """413 for a browser's form (JavaScript off, or a form without the page's size check): the site's page with one
    message and a link back to the form, where Django's plain text told a person nothing they could do. A page of its
    own, as it answers before the session is read; the link is the form's own address (the forms post to it)."""
    cap = amount(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if request.META.get("CONTENT_TYPE", "").startswith("multipart/form-data"):
        # The cap counts every file of the request: "The file is over 10 MB" was untrue of a 6 MB picture sent with a
        # 6 MB logo.
        message = f"What you sent is over {cap} ({TOGETHER}); choose a smaller file."
    else:
        message = f"The form sends over {cap}; send less at once."
    back = request.get_full_path()
    if not url_has_allowed_host_and_scheme(back, allowed_hosts=None):  # "//elsewhere.example/": not a link to give
        back = "/"
    return with_site_headers(request, HttpResponse(render_to_string("413.html", {"message": message, "back": back}),
                                                   status=413))


def with_site_headers(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """`response` with the headers every page of the site carries (not framed, not sniffed, the referrer policy, the
    content policy), from the middleware that sets them: this answer comes from the first middleware, before them, and
    the 413 page went out without any."""
    # Imported here: qartsite.wsgi imports this module before Django is set up, and django-csp reads the settings.
    from django.middleware.clickjacking import XFrameOptionsMiddleware
    from django.middleware.security import SecurityMiddleware

    from qartsite.content_policy import ContentPolicyMiddleware

    def not_called(_request: HttpRequest) -> HttpResponse:  # each is asked only for its process_response
        raise AssertionError("the response is already made")

    for middleware in (SecurityMiddleware, XFrameOptionsMiddleware, ContentPolicyMiddleware):
        response = middleware(not_called).process_response(request, response)
    return response


def too_large(request: HttpRequest, size: int | None) -> HttpResponse:
    """413 with one message: what was sent (when known) and what is accepted; a browser's form gets a page."""
    if wants_page(request):
        return too_large_page(request)
    cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if size == request_limit() + 1:
        # A body of no declared length, read only as far as this (ChunkedBodies, ASGIBodies): its size is unknown,
        # and "What you sent is 10.1 MB" was untrue of 500 MB.
        size = None
    if size:
        sent, accepted = over_cap(size, cap)
        said = f"What you sent is {sent}; up to {accepted} is accepted"
    else:  # the upload handler stopped the files once they passed the cap
        said = f"What you sent is over {amount(cap)}"
    return refused(request, f"{said} ({TOGETHER}). Send a smaller file, or less at once, and try again.", 413)


class ChunkedBodies:
    """WSGI middleware around the application: a request body sent in chunks (no Content-Length; httpx does so for
    a body given as a generator) is read here, up to the cap, and handed on with its length. Django reads a body
    only as far as its Content-Length, so such a body was taken as empty: a PATCH answered 200 having changed
    nothing. Only a server that decodes the chunks and marks the end of the body (`wsgi.input_terminated`:
    gunicorn) can be read this way; elsewhere `RequestSizeMiddleware` answers 411.
    """

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ: dict, start_response):
        if ("chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not environ.get("CONTENT_LENGTH")
                and environ.get("wsgi.input_terminated")):
            body = environ["wsgi.input"].read(request_limit() + 1)  # one byte over is enough for the 413
            environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.application(environ, start_response)


INCOMPLETE_BODY = ("The request body ended before its Content-Length: it was cut short on the way. Nothing was "
                   "changed; send it again.")


class WholeBodies:
    """WSGI middleware around the application: a body with a Content-Length (within the cap; a larger one is the
    middleware's 413) is read here in full, and one that ends early is answered 400 without reaching Django, which
    would read the part that came (a form cut at `destination=https://exa` saved that).
    """

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ: dict, start_response):
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if 0 < declared <= request_limit():
            stream, parts, received = environ["wsgi.input"], [], 0
            while received < declared:
                part = stream.read(declared - received)
                if not part:
                    break
                parts.append(part)
                received += len(part)
            if received < declared:
                kind, body = refusal_body(environ.get("PATH_INFO", ""), INCOMPLETE_BODY)
                start_response("400 Bad Request", [("Content-Type", kind), ("Content-Length", str(len(body)))])
                return [body]
            environ = {**environ, "wsgi.input": io.BytesIO(b"".join(parts))}
        return self.application(environ, start_response)


class ASGIBodies:
    """ASGI middleware around the application: the WSGI wrappers' guards where Django's ASGI handler leaves them out.

    That handler reads the whole body to a temporary file before any middleware runs, so a body declared over the
    cap filled memory and disk before its 413, and one sent in chunks (or over HTTP/2, without a Content-Length) was
    read to its end, however long, to be answered 411. Here a body declared over the cap is not read at all, and one
    of no declared length (or of a length that says none: `declared_length`) is read up to one byte over the cap
    (`request_limit`) and handed on with its length, as `ChunkedBodies` does; past the cap, no more of it is read.
    Either way the refusal is `RequestSizeMiddleware`'s 413, made from the length alone, and the connection closes
    after it (the rest of the body is never read).
    A body with a Content-Length within the cap goes straight through: the server ends it at its length, and a client
    that goes away before then is a disconnect, which Django answers with nothing.
    """

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return await self.application(scope, receive, send)
        headers = scope.get("headers", [])
        declared = declared_length(headers)
        if declared is not None:
            if declared > request_limit():
                return await self.refuse(scope, send, declared)
            return await self.application(scope, receive, send)
        # 1. No declared length, or none a server could have ended the body at (junk, a sign, two lengths; Django's
        # handler reads on to the body's end whatever its length says): read it here, as far as one byte over the cap.
        messages, received = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-body: as Django, nothing to answer
            messages.append(message)
            received += len(message.get("body", b""))
            if received > request_limit():
                return await self.refuse(scope, send, request_limit() + 1)
            if not message.get("more_body", False):
                break
        # 2. Hand it on with its length, so the middleware reads it instead of answering 411.
        if received or any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers):
            scope = with_length(scope, received)
        replay = iter(messages)

        async def replayed() -> dict:
            # Then the server's own messages: Django listens for the client's disconnect while the view runs.
            return next(replay, None) or await receive()

        await self.application(scope, replayed, send)

    async def refuse(self, scope: dict, send, size: int) -> None:
        """Has the application answer a body of `size` bytes from its length alone: the middleware's 413, with none
        (or no more) of the body read, and `Connection: close` over HTTP/1, as the rest of it is left on the
        connection (HTTP/2 forbids the header: its server ends the stream alone)."""
        http1 = scope.get("http_version", "1.1") in ("1.0", "1.1")

        async def closing(message: dict) -> None:
            if message["type"] == "http.response.start" and http1:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        nothing_more = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def unread() -> dict:
            # Not the server's receive: before the answer is sent it would hand Django the rest of the body, which
            # Django takes for a broken server (an AssertionError). Django stops waiting once the 413 is sent.
            message = next(nothing_more, None)
            if message is None:
                await asyncio.Event().wait()
            return message

        await self.application(with_length(scope, size), unread, closing)


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body's length an ASGI request's `headers` declare: one Content-Length (sent once, or repeated alike) in
    ASCII digits; None for none, or for one that says no length (junk, a sign, two different lengths)."""
    values = {value.strip() for name, value in headers if name.lower() == b"content-length"}
    if len(values) != 1:
        return None
    value = values.pop()
    return int(value) if value.isdigit() else None  # bytes.isdigit: ASCII digits only


def with_length(scope: dict, size: int) -> dict:
    """`scope` with its body's length `size` as the only Content-Length, and no Transfer-Encoding."""
    headers = [(name, value) for name, value in scope.get("headers", [])
               if name.lower() not in (b"content-length", b"transfer-encoding")]
    return {**scope, "headers": [*headers, (b"content-length", str(size).encode())]}


def length_required(request: HttpRequest) -> HttpResponse:
    """411: a body in chunks this server cannot read (see `ChunkedBodies`)."""
    return refused(request, "Send the request body with a Content-Length header: bodies sent in chunks are not read "
                            "here.", 411)


def coded_body(request: HttpRequest) -> HttpResponse:
    """415 for a body with a content coding (RFC 9110, 15.5.16), with the one coding accepted named."""
    coding = echo(request.META["HTTP_CONTENT_ENCODING"])
    response = refused(request, f"The body is sent with Content-Encoding “{coding}”: send it uncompressed, "
                                f"without Content-Encoding.", 415)
    response["Accept-Encoding"] = "identity"
    return response


class RequestSizeMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # META, not request.headers: building the headers' dict cost every request ~25 µs (the short link's too).
        meta = request.META
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get("CONTENT_LENGTH"):
            return length_required(request)
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # Django reads such a body as empty
        if declared > request_limit():
            return too_large(request, declared)
        if declared and meta.get("HTTP_CONTENT_ENCODING", "identity").strip().lower() not in ("identity", ""):
            return coded_body(request)
        response = self.get_response(request)
        if getattr(request, "upload_too_large", False):
            # The handler stopped the upload; whoever was parsing answered 400 for the RequestTooLarge.
            return too_large(request, None)
        return response


class UploadLimitHandler(FileUploadHandler):
    """Counts every file part's bytes and stops reading once a request's files pass the upload cap."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.refuse()
        return raw_data  # for the next handler, which keeps the file

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler makes the file

    def refuse(self) -> None:
        if self.request is not None:
            self.request.upload_too_large = True
        raise RequestTooLarge(f"the files passed the upload cap ({self.limit} bytes)")
