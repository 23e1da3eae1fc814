"""Dismissing a placement alert (`campaigns.alerts`): editors and owners of its team, by POST."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from campaigns.models import PlacementAlert
from qartsite.access import get_for_user_or_404, require_editor


@login_required
@require_POST
def alert_dismiss(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = get_for_user_or_404(PlacementAlert.objects.for_user(request.user)
                                .select_related("placement__campaign__team"), pk=alert_id)
    require_editor(request.user, alert.placement.campaign.team)
    # Only an open alert: dismissing twice keeps the first dismissal's who and when.
    PlacementAlert.objects.filter(pk=alert.pk, dismissed_at__isnull=True).update(
        dismissed_at=timezone.now(), dismissed_by=request.user)
    messages.success(request, f"Alert on {alert.placement.name} dismissed.")
    return redirect("campaigns:detail", campaign_id=alert.placement.campaign_id)
