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
import secrets
from datetime import timedelta

from django.utils import timezone

from campaigns.models import Campaign, ReportShare
from qartsite.rates import ClientRateThrottle

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


class SharedReportThrottle(ClientRateThrottle):
    """Opens of the shared report page per client network, good tokens and bad alike."""

    scope = "shared_reports"
    default_rate = VIEW_RATE
