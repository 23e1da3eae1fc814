"""Site-wide pages: the home page, a health check and friendly error pages."""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import DisallowedHost, TooManyFieldsSent, TooManyFilesSent
from django.core.files.storage import storages
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

from campaigns import scan_backlog, scan_buffer
from generator.core.codes import qr
from qartsite import parsers, queues
from qartsite.responses import detail_response, is_api_path
from qartsite.sql import not_migrated
from qartsite.storage import S3MediaStorage


@cache
def link_chars(ecc: str, max_version: int) -> int:
    """How long a link QR art holds at the site's limit, in a marketer's terms (not "version 6, level H"). Worked out
    once per setting: the binary search encodes a dozen trial codes (~5 ms), too much for every home page."""
    return qr.capacity("https://" + "x" * 400, ecc, max_version)


@require_safe  # it answered TRACE and OPTIONS with the page (200), unlike every other page
def home(request: HttpRequest) -> HttpResponse:
    ctx = {
        "link_chars": link_chars(settings.QART["DEFAULT_ECC"], settings.QART["MAX_VERSION"]),
        "threshold": settings.QART["SCAN_THRESHOLD"],
    }
    return render(request, "qartsite/home.html", ctx)


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico: the site's icon. Pages name it in a <link>, but browsers (and feed readers, and the admin's
    pop-ups) still ask this address first or anyway, and each ask was a 404 in the log."""
    return HttpResponsePermanentRedirect(static("qart/favicon.svg"))


@csrf_exempt  # read-only: a POST is a 405 (require_safe), not the CSRF failure page
@require_safe  # monitors GET or HEAD it; TRACE and OPTIONS were answered with the status (200)
def healthz(request: HttpRequest) -> JsonResponse:
    # The web tier's health depends only on its database: Redis or the GPU workers being down must not
    # take the site (and later the short-link redirect) with them. Scans waiting to be counted ("scans", this
    # host's view: campaigns.scan_backlog) never fail it either: they are kept meanwhile, and a web host taken out
    # of the balancer would only stop taking scans; a monitor alerts on scans.behind instead, and on "redis",
    # "spool" and "media" that are not "ok": generations are refused while Redis or media is away, scans lose their
    # first buffer while the spool is, but short links keep working.
    scans = scan_backlog.backlog().to_dict()
    others = {"scans": scans, "redis": redis_health(), "spool": spool_health(), "media": media_health()}
    try:
        with connection.cursor() as cursor:
            # A table, not SELECT 1: SQLite answers that from the empty file it makes where its file went missing,
            # while every page answered 503 (a fault drill)
            cursor.execute("SELECT 1 FROM django_migrations LIMIT 1")
        return JsonResponse({"status": "ok", **others})
    except Exception as exc:  # the page answers plainly whatever the database raises
        database = ("no tables: run manage.py migrate (or restore the database)" if not_migrated(exc)
                    else type(exc).__name__)
        return JsonResponse({"status": "error", "database": database, **others}, status=503)


def redis_health() -> str:
    """"ok" when Redis takes a write (`queues.probe_write`, as a generation is refused without one), else why not.

    A full Redis (maxmemory with noeviction) answers reads and PING and refuses every job: /healthz said ok while it
    did (a fault drill). Asked with the short link's client (0.5 s, no retry) and skipped while it knows Redis is
    away, so a stalled Redis costs the check half a second at most, once a second."""
    client = scan_buffer.redis_client()
    try:
        with queues.breaker(client, scan_buffer.redis_outage):
            queues.probe_write(client)
    except queues.RedisSkipped as skip:
        # The failure that opened the breaker, which need not be a silence: a scan's refused by a full Redis opens it
        why = queues.why_refused(skip.failure) if skip.failure is not None else "not answering"
        return f"{why} (a moment ago)"
    except RedisError as exc:
        return queues.why_refused(exc)
    return "ok"


SPOOL_ELSEWHERE = "scans it does not take go to Redis, or to the database while Redis is away"


def spool_health() -> str:
    """"ok" when this host's spool folder takes a new file (a probe made and deleted), else why not.

    A spool that cannot be written (a full or read-only disk, its permissions) sent every scan to the Redis stream,
    or while Redis was away too to the database's own thread, and /healthz said nothing of it (a fault drill): the
    monitor learnt of it only when Redis went too. A process that failed to append a moment ago says so at once.

    Returns:
        "ok", or what is wrong and where the scans go meanwhile.
    """
    folder = Path(settings.QART["SPOOL_DIR"])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)  # no scans-* name: no drainer reads it
        os.close(descriptor)
        os.unlink(probe)
    except OSError as exc:
        # A process's open spool file may still take scans (a folder made read-only leaves it writable), but no new
        # file can be made nor claimed by the drainer: where a scan cannot be spooled it goes elsewhere, said here.
        return f"cannot be written ({exc.strerror or exc}): {SPOOL_ELSEWHERE}"
    if scan_buffer.spool_outage.known():
        return f"refused a scan a moment ago: {SPOOL_ELSEWHERE}"
    return "ok"


def media_health() -> str | None:
    """"ok" when the media bucket's server answers (`S3MediaStorage.answers`: at most HEALTH_TIMEOUT, and not asked
    again while known away), else why not; None for media on this host's filesystem (not checked)."""
    storage = storages["default"]
    if not isinstance(storage, S3MediaStorage):
        return None
    return storage.answers() or "ok"


def bad_request_message(exception: Exception | None) -> str:
    """What was wrong with a request Django refused before any view (its own messages name settings)."""
    if isinstance(exception, DisallowedHost):
        return "The request's Host header names no site served here."
    if parsers.file_name_too_long(exception):
        return parsers.FILE_NAME_TOO_LONG
    if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        return (f"The request sends too many fields; the most is {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields "
                f"and {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files.")
    return "The request is malformed: check its headers and body."


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400 for what Django refuses before a view runs (a bad Host header, too many fields): JSON under /api/."""
    message = bad_request_message(exception)
    if is_api_path(request.path):
        return detail_response(message, 400)
    return HttpResponse(render_to_string("400.html", {"message": message}), status=400)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return detail_response(str(exception or "") or "You do not have permission to do this.", 403)
    return render(request, "403.html", {"exception": str(exception or "")}, status=403)


CSRF_REFUSED = ("This form could not be sent: its security token is missing or out of date (the page was opened before "
                "a sign-in or sign-out, in another tab perhaps, or the form came from another site). Go back, reload "
                "the page and send it again.")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a refused form gets the site's page and a reason a person can act on, where Django's own
    page spoke of DEBUG=True (a fault drill). DRF's views answer their own CSRF refusals in JSON."""
    if is_api_path(request.path):
        return detail_response(f"CSRF Failed: {reason}", 403)
    return render(request, "403.html", {"exception": CSRF_REFUSED, "title": "Form not sent"}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: the site's page, or at the API's addresses (`is_api_path`) DRF's JSON answer (an unknown API address is
    an integrator's)."""
    if is_api_path(request.path):
        if not request.path.startswith("/api"):  # "/API/campaigns/": paths are read as written, in one case
            return detail_response(API_IN_LOWER_CASE, 404)
        return detail_response("Not found.", 404)
    return render(request, "404.html", status=404)


API_IN_LOWER_CASE = "Not found: the API's addresses are in lower case (/api/campaigns/)."


def api_address_not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any address of the API's that no route takes (the last of `api_urls`, and /api, in any case, followed by
    anything but a slash in `qartsite.urls`): the API's JSON 404."""
    return not_found(request)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_path(request.path):
        return detail_response("Server error: something went wrong on our side. Try again later.", 500)
    return render(request, "500.html", status=500)
