"""Read-only share links of a campaign's report (`ReportShare`): for people without an account, revocable, expiring.

The link carries a random token (32 bytes, URL-safe); only its SHA-256 is stored, so a copy of the database opens
no report. The shared page shows the campaign's aggregate figures only: no visitor keys, scans, artwork files,
short links or team members.

Nobody signs in to open one, so `SharedReportThrottle` limits the page per client address instead: no rate makes a
256-bit token guessable, but the page sums a campaign's rollups on every request and should not be a cheap way to
load the database.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
from datetime import timedelta

from django.http import HttpRequest
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

from campaigns.models import Campaign, ReportShare
from qartsite.site import client_address

log = logging.getLogger(__name__)

MAX_DAYS = 90
DEFAULT_DAYS = 30
# Opens of shared reports per client address, unless REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["shared_reports"]
# says otherwise: a person changing the date range now and then stays far below it.
VIEW_RATE = "60/minute"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(campaign: Campaign, user, days: int = DEFAULT_DAYS, label: str = "") -> tuple[ReportShare, str]:
    """A new share of `campaign` valid for `days` (1 to MAX_DAYS); returns it and its token (shown once)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"A share link lasts 1 to {MAX_DAYS} days.")
    token = secrets.token_urlsafe(32)
    share = ReportShare.objects.create(campaign=campaign, token_hash=token_hash(token), label=label.strip()[:100],
                                       expires=timezone.now() + timedelta(days=days), created_by=user)
    return share, token


def find(token: str) -> ReportShare | None:
    """The share the token names, live or not (`is_live` says which); None for a token that names none."""
    if not token or len(token) > 100:
        return None
    return ReportShare.objects.filter(token_hash=token_hash(token)).select_related("campaign__team").first()


def is_live(share: ReportShare) -> bool:
    """Whether the share still opens its report: not revoked and not expired."""
    return share.revoked_at is None and share.expires > timezone.now()


def revoke(share: ReportShare) -> None:
    ReportShare.objects.filter(pk=share.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def client_network(request: HttpRequest) -> str:
    """Whom the page's rate is counted for: the client's IPv4 address, or its IPv6 /64 (one host is given a whole
    /64 and can pick any address in it)."""
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


class SharedReportThrottle(throttling.SimpleRateThrottle):
    """Opens of the shared report page per client network (`client_network`), good tokens and bad alike.

    History lives in Django's cache: every web process must share one (CACHE_URL) for the rate to hold across
    processes; with the per-process default each process allows the full rate.
    """

    scope = "shared_reports"

    def get_rate(self) -> str | None:
        # Read at call time, not at import like DRF's class attribute, so a changed setting takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope, VIEW_RATE)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_network(request)}

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except RedisError:
            # The cache (CACHE_URL) is away: serve the report unthrottled rather than fail everyone who has a link.
            log.warning("Shared report opened without a rate check: the cache cannot be reached", exc_info=True)
            self.history = []
            return True
