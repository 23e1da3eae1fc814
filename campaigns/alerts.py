"""Alerts: once a day, each active placement's scans are compared with its own recent baseline, and placements
whose scans stopped or fell sharply are flagged (`PlacementAlert`), e-mailed to the team's owners and editors, sent
to webhooks (`placement.alert`) and shown on the dashboard until an editor dismisses them.

The rule (`verdict`), for a check at time T in the team's time zone, with D = T's local day:
- baseline: the scans of the 28 whole days D-35 … D-8 (daily rollups, bots excluded). A placement made less than
  35 days ago, whose campaign is archived or past its last day, or which is switched off, is not checked.
- "stopped": no scan in the 24 hours before T, and a baseline so large that this is implausible under steady
  traffic. Under the null (steady Poisson traffic at one rate) the 24 h count given the 24 h + baseline total n
  is Binomial(n, 1/29), so P(0) = (28/29)^n; flagged when that is <= ALPHA. Conditioning on the total makes the
  test exact whatever the rate, so the baseline's own noise costs no false alarms. With ALPHA = 1e-4 this needs
  n >= 263 (about 9.4 scans a day): a placement averaging >= 20 a day that stops at time s is flagged by the
  first daily check after s + 24 h, so within 48 h.
- "dropped": the 7 whole days D-7 … D-1 hold less than a quarter of what the baseline's rate predicts (a sharp
  fall, not merely a significant one), and P(X <= count) <= ALPHA for X ~ Binomial(n, 7/35), n the 7 days'
  and the baseline's scans together.
False alarms: each daily check has at most ALPHA per rule under steady traffic, so at most 2 x 365 x ALPHA
(about 0.07) flagged days a year by the union bound, however the overlapping windows correlate; a placement with an
open alert of a kind gets no second one, nor one dismissed within 35 days (a dismissed "stopped" comes back only
after people scanned again: `already_said`). Not modelled: strong weekly or seasonal patterns (a code scanned only on
weekdays, busy enough, is flagged "stopped" on a quiet Sunday): the rule assumes steady traffic.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from redis import Redis

from campaigns import stats, webhooks
from campaigns.models import Placement, PlacementAlert, ScanEvent, ScanRollup, WebhookEndpoint
from qartsite.models import Membership
from qartsite.plurals import counted

log = logging.getLogger(__name__)

BASELINE_DAYS = 28
RECENT_DAYS = 7
ALPHA = 1e-4
DROP_RATIO = 0.25  # "fell sharply": the last week at under a quarter of the baseline's rate
# Seconds between checks: 23 h, not 24, so that with the worker's minute-long maintenance loop two checks are never
# more than 24 h apart, and a stop (24 h without a scan) is always flagged within 48 h of it.
CHECK_EVERY = 23 * 3600


@dataclass(frozen=True)
class Counts:
    baseline: int  # scans in the BASELINE_DAYS whole days before the recent week
    last_week: int  # scans in the RECENT_DAYS whole days before today
    last_day: int  # scans in the 24 hours before the check


def binomial_cdf(x: int, n: int, p: float) -> float:
    """P(X <= x) for X ~ Binomial(n, p), summed in log space (n may be large enough for p^n to underflow)."""
    if x < 0:
        return 0.0
    if x >= n:
        return 1.0
    log_ratio = math.log(p) - math.log1p(-p)
    log_pmf = n * math.log1p(-p)
    terms = [log_pmf]
    for k in range(x):
        log_pmf += math.log((n - k) / (k + 1)) + log_ratio
        terms.append(log_pmf)
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(term - top) for term in terms))


def verdict(counts: Counts) -> str | None:
    """The alert kind the counts call for (`PlacementAlert.Kind`), or None: the rule in the module docstring."""
    if counts.last_day == 0 and (BASELINE_DAYS / (BASELINE_DAYS + 1)) ** counts.baseline <= ALPHA:
        return PlacementAlert.Kind.STOPPED
    expected_week = counts.baseline * RECENT_DAYS / BASELINE_DAYS
    if counts.last_week < DROP_RATIO * expected_week:
        share = RECENT_DAYS / (RECENT_DAYS + BASELINE_DAYS)
        if binomial_cdf(counts.last_week, counts.baseline + counts.last_week, share) <= ALPHA:
            return PlacementAlert.Kind.DROPPED
    return None


def counts_of(placement: Placement, now: datetime) -> Counts:
    today = stats.local_today(placement.campaign.team, now)
    recent_start = today - timedelta(days=RECENT_DAYS)
    baseline_start = recent_start - timedelta(days=BASELINE_DAYS)
    totals = ScanRollup.objects.filter(placement=placement, dimension=ScanRollup.Dimension.TOTAL)

    def scans(first, last) -> int:
        return totals.filter(day__gte=first, day__lt=last).aggregate(total=Sum("scans"))["total"] or 0

    return Counts(
        baseline=scans(baseline_start, recent_start),
        last_week=scans(recent_start, today),
        # Raw scans (kept >= 30 days): the 24 h before now, not whole days, so a stop is seen within 48 h.
        last_day=ScanEvent.objects.filter(placement=placement, is_bot=False, time__gte=now - timedelta(hours=24),
                                          time__lt=now).count(),
    )


def message_of(kind: str, counts: Counts) -> str:
    per_day = counts.baseline / BASELINE_DAYS
    if kind == PlacementAlert.Kind.STOPPED:
        return f"No scans in the last 24 hours; it averaged {per_day:.1f} a day over the 4 weeks before last week."
    return (f"{counted(counts.last_week, 'scan')} in the last 7 days, against {per_day * RECENT_DAYS:.0f} expected "
            f"from its average of {per_day:.1f} a day over the 4 weeks before.")


def checked_placements(now: datetime):
    # Only placements old enough to have a whole baseline; a day's margin for time zones. Not those of a campaign
    # past its last day: scans stopping then is the plan, not news (archived or not).
    return (Placement.objects.filter(active=True, campaign__archived=False,
                                     created__lte=now - timedelta(days=BASELINE_DAYS + RECENT_DAYS + 1))
            .exclude(campaign__ends_on__lt=(now - timedelta(days=1)).date())
            .select_related("campaign__team"))


def already_said(placement: Placement, kind: str, now: datetime) -> bool:
    """Whether an alert of `kind` for `placement` stands, or was dismissed recently enough to keep quiet: a dismissed
    "stopped" until a person scans again (then it may stop again), a dismissed "fell" until its baseline no longer
    holds the weeks before the dismissal. Without this a dismissed alert was raised again the next day, and every
    day for weeks (the baseline still held the scans from before the stop), e-mailing the team each time."""
    alerts = PlacementAlert.objects.filter(placement=placement, kind=kind)
    if alerts.filter(dismissed_at__isnull=True).exists():
        return True
    dismissed = alerts.filter(dismissed_at__gt=now - timedelta(days=BASELINE_DAYS + RECENT_DAYS)).order_by(
        "-dismissed_at").values_list("dismissed_at", flat=True).first()
    if dismissed is None:
        return False
    if kind == PlacementAlert.Kind.STOPPED:
        return not ScanEvent.objects.filter(placement=placement, is_bot=False, time__gt=dismissed).exists()
    return True


def check_all(now: datetime | None = None) -> list[PlacementAlert]:
    """Check every active placement; returns the alerts raised (each also e-mailed and sent to webhooks)."""
    now = now or timezone.now()
    raised = []
    for placement in checked_placements(now):
        counts = counts_of(placement, now)
        kind = verdict(counts)
        if kind is None or already_said(placement, kind, now):
            continue
        with transaction.atomic():  # the alert and its webhook (kept in the outbox) commit together, or neither
            alert = PlacementAlert.objects.create(placement=placement, kind=kind, message=message_of(kind, counts),
                                                  day=stats.local_today(placement.campaign.team, now))
            webhooks.emit(placement.campaign.team_id, WebhookEndpoint.Event.ALERT_RAISED, [(f"alert-{alert.pk}", {
                "alert": alert.pk, "kind": kind, "placement": placement.pk, "campaign": placement.campaign_id,
                "message": alert.message,
            })])
        raised.append(alert)
    notify(raised)
    return raised


def notify(raised: list[PlacementAlert]) -> None:
    """One e-mail per team to its owners and editors, listing its new alerts."""
    by_team: dict[int, list[PlacementAlert]] = {}
    for alert in raised:
        by_team.setdefault(alert.placement.campaign.team_id, []).append(alert)
    for team_id, alerts in by_team.items():
        recipients = list(Membership.objects.filter(
            team_id=team_id, role__in=(Membership.Role.OWNER, Membership.Role.EDITOR))
            .exclude(user__email="").values_list("user__email", flat=True))
        if not recipients:
            continue
        lines = [f"- {a.placement.campaign.name} / {a.placement.name}: {a.get_kind_display()}. {a.message}"
                 for a in alerts]
        send_mail(subject=f"qart: {len(alerts)} placement{'s' if len(alerts) > 1 else ''} need a look",
                  message="\n".join(lines) + "\n\nDismiss them on the campaign's dashboard.",
                  from_email=None, recipient_list=recipients, fail_silently=True)


def check_key() -> str:
    return f"{settings.QART['REDIS_PREFIX']}alerts:ran"


def check_daily(connection: Redis) -> list[PlacementAlert] | None:
    """Run the check if no worker did in the last day; None when it was not this worker's turn."""
    if not connection.set(check_key(), "1", nx=True, ex=CHECK_EVERY):
        return None
    raised = check_all()
    log.info("Placement alerts: %d raised", len(raised))
    return raised
