"""Small HTTP answers shared by every app's views."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.middleware.gzip import GZipMiddleware
from django.utils.cache import add_never_cache_headers
from django.utils.text import slugify


def is_api_path(path: str) -> bool:
    """Whether an address is the API's, whose every answer, a refusal or a 404 included, is JSON.

    Args:
        path: the request's path (`request.path`).

    Returns:
        True for /api and anything after it: "/api/...", but also "/api%0A", "/api.json" or "/apiv2/...", which an
        integrator's client sent and read the site's HTML 404 from, and these in any case ("/API/campaigns/"). No
        page of the site has an address so begun.
    """
    return path[:4].lower() == "/api"


def json_detail(message: str) -> bytes:
    """`{"detail": message}` as the API's views write it (DRF's JSONRenderer: UTF-8, compact), for an answer made
    before any view. `json.dumps` wrote every character past ASCII escaped ("\\u201cgzip\\u201d").

    Args:
        message: what the answer says.

    Returns:
        The JSON body's bytes.
    """
    # Imported here: this module is imported while the settings are still being read (the entry points' check of a
    # bad setting), and DRF's renderer reads them as its class is defined.
    from rest_framework.renderers import JSONRenderer

    return JSONRenderer().render({"detail": message})


def detail_response(message: str, status: int) -> HttpResponse:
    """A `{"detail": message}` answer written by `json_detail`, for the API's answers made outside its views (the
    error handlers, the outage middleware) and the refusals of the JSON the pages' scripts ask for (the placement
    search): Django's `JsonResponse` wrote them ASCII-escaped and with spaced separators, unlike every answer of the
    API's views.

    Args:
        message: what the answer says.
        status: the HTTP status.

    Returns:
        The response, `application/json`.
    """
    return HttpResponse(json_detail(message), content_type="application/json", status=status)


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


def download_disposition(name: str, rest: str) -> str:
    """The Content-Disposition of a download named after `name` (a campaign's, in any script): "<name>-<rest>".

    The name is slugified (no quote, `;`, `\\` or line break can reach the header) to its first 60 characters. A name
    in other letters than ASCII's gets RFC 6266's `filename*` (UTF-8) beside an ASCII `filename`, which clients that
    do not read `filename*` use (section 4.3); a name with nothing left of it gives `rest` alone.
    """
    ascii_name, unicode_name = (slugify(name, allow_unicode=wide)[:60].strip("-") for wide in (False, True))
    header = f'attachment; filename="{ascii_name}-{rest}"' if ascii_name else f'attachment; filename="{rest}"'
    if unicode_name != ascii_name:
        header += f"; filename*=utf-8''{quote(f'{unicode_name}-{rest}')}"
    return header


def csv_download(request: HttpRequest, lines: Iterable[str], name: str, rest: str) -> StreamingHttpResponse:
    """A CSV export, streamed as its lines are made (a campaign's million scans are never held in memory).

    Args:
        request: the request (whether the client takes gzip).
        lines: the file's lines.
        name, rest: the file's name (`download_disposition`).

    Returns:
        The response, gzipped for a client that takes it (a CSV shrinks several times over), that no cache keeps:
        its rows change from one request to the next and belong to one team.
    """
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = download_disposition(name, rest)
    add_never_cache_headers(response)
    # Django's own compression, chunk by chunk as the rows come. A CSV holds no secret of the site's (no CSRF token)
    # for BREACH to guess at, and the middleware pads its output against that length oracle anyway.
    return GZipMiddleware(lambda _: response)(request)
