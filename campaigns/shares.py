"""Read-only share links of a campaign's report (`ReportShare`): for people without an account, revocable, expiring.

The link carries a random token (32 bytes, URL-safe); only its SHA-256 is stored, so a copy of the database opens
no report. The shared page shows the campaign's aggregate figures only: no visitor keys, scans, artwork files,
short links or team members.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from campaigns.models import Campaign, ReportShare

MAX_DAYS = 90
DEFAULT_DAYS = 30


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


def open_share(token: str) -> ReportShare | None:
    """The live share the token opens (not revoked, not expired), else None."""
    if not token or len(token) > 100:
        return None
    return (ReportShare.objects.filter(token_hash=token_hash(token), revoked_at__isnull=True,
                                       expires__gt=timezone.now()).select_related("campaign__team").first())


def revoke(share: ReportShare) -> None:
    ReportShare.objects.filter(pk=share.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
