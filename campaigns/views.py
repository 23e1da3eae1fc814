"""The short-link redirect: the one page every printed code leads to.

It must stay up and fast whatever else is down: it reads one row, writes one row and redirects. No Redis,
no remote calls, no session. It only ever redirects to a destination stored on the placement.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_safe

from campaigns import links
from campaigns.models import Placement, ScanEvent

log = logging.getLogger(__name__)


def client_address(request: HttpRequest) -> str:
    # Behind a proxy we trust, the first X-Forwarded-For hop is the client; otherwise anyone could forge it.
    if settings.QART["TRUST_PROXY"]:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")


def record_scan(request: HttpRequest, placement: Placement) -> None:
    agent = request.headers.get("User-Agent", "")[:1000]
    browser, os_family, device_class, is_bot = links.describe_agent(agent)
    country_header = settings.QART["COUNTRY_HEADER"]
    country = request.headers.get(country_header, "")[:2].upper() if country_header else ""
    try:
        ScanEvent.objects.create(
            placement=placement, browser=browser[:60], os=os_family[:60], device_class=device_class,
            referer=request.headers.get("Referer", "")[:500],
            accept_language=request.headers.get("Accept-Language", "")[:100],
            client_hash=links.anonymise_address(client_address(request), settings.SECRET_KEY),
            country=country if country.isalpha() else "", is_bot=is_bot,
        )
    except DatabaseError:
        # Losing one count is better than stranding the person who scanned the code.
        log.exception("Could not record a scan of %s", placement.slug)


@require_safe
def short_link(request: HttpRequest, slug: str) -> HttpResponse:
    placement = (
        Placement.objects.select_related("campaign")
        .filter(slug=slug, active=True, campaign__archived=False)
        .first()
    )
    if placement is None:
        return render(request, "campaigns/unknown_link.html", status=404)
    if request.method == "GET":  # HEAD requests are link checkers, not people
        record_scan(request, placement)
    response = HttpResponseRedirect(placement.redirect_url())
    response["Cache-Control"] = "no-store"  # every scan must reach us to be counted
    return response
