"""The short-link redirect: the one page every printed code leads to.

It must stay up and fast whatever else is down: it looks the slug up (cached in the process for a few
seconds), writes one row and redirects. No Redis, no remote calls, no session. It only ever redirects to a
destination stored on the placement.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_safe

from campaigns import links
from campaigns.models import Placement, ScanEvent

log = logging.getLogger(__name__)
# slug -> (expires at, placement id or None for "no active link", redirect URL). Saving any placement or
# campaign clears it in this process; other processes see a change within LINK_TTL seconds.
LINK_TTL = 5.0
_links: dict[str, tuple[float, int | None, str]] = {}


def forget_links(**_kwargs) -> None:
    _links.clear()


def resolve(slug: str) -> tuple[int | None, str]:
    """(placement id, redirect URL) of an active link, or (None, "") when the slug leads nowhere."""
    now = time.monotonic()
    hit = _links.get(slug)
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    placement = (
        Placement.objects.select_related("campaign")
        .filter(slug=slug, active=True, campaign__archived=False)
        .first()
    )
    found = (placement.pk, placement.redirect_url()) if placement else (None, "")
    if len(_links) > 50_000:  # unknown slugs from scanners or scrapers must not grow it without bound
        _links.clear()
    _links[slug] = (now + LINK_TTL, *found)
    return found


def client_address(request: HttpRequest) -> str:
    # Behind a proxy we trust, the first X-Forwarded-For hop is the client; otherwise anyone could forge it.
    if settings.QART["TRUST_PROXY"]:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")


def record_scan(request: HttpRequest, placement_id: int) -> None:
    agent = request.headers.get("User-Agent", "")[:1000]
    browser, os_family, device_class, is_bot = links.describe_agent(agent)
    country_header = settings.QART["COUNTRY_HEADER"]
    country = request.headers.get(country_header, "")[:2].upper() if country_header else ""
    try:
        ScanEvent.objects.create(
            placement_id=placement_id, browser=browser[:60], os=os_family[:60], device_class=device_class,
            referer=request.headers.get("Referer", "")[:500],
            accept_language=request.headers.get("Accept-Language", "")[:100],
            client_hash=links.anonymise_address(client_address(request), settings.SECRET_KEY),
            country=country if country.isalpha() else "", is_bot=is_bot,
        )
    except DatabaseError:
        # Losing one count is better than stranding the person who scanned the code.
        log.exception("Could not record a scan of placement %s", placement_id)


@require_safe
def short_link(request: HttpRequest, slug: str) -> HttpResponse:
    placement_id, url = resolve(slug)
    if placement_id is None:
        return render(request, "campaigns/unknown_link.html", status=404)
    if request.method == "GET":  # HEAD requests are link checkers, not people
        record_scan(request, placement_id)
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"  # every scan must reach us to be counted
    return response
