"""The team's webhook page: owners add endpoints, rotate secrets (shown once), send a test, switch a disabled endpoint
back on, delete, and read recent deliveries. Everyone else gets 403 (members) or 404 (other teams)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from redis.exceptions import RedisError

from campaigns import webhook_pings, webhooks
from campaigns.forms import WebhookEndpointForm
from campaigns.models import WebhookDelivery, WebhookEndpoint, WebhookOutbox
from qartsite.access import get_for_user_or_404
from qartsite.models import Membership, Team

RECENT_DELIVERIES = 20
PING_REFRESH_SECONDS = 2
OWNERS_ONLY = "Only a team owner can manage webhooks: they send the team's data elsewhere."


def owned_team(request: HttpRequest, team_id: int) -> Team:
    team = get_for_user_or_404(Team.for_user(request.user), pk=team_id)
    if Membership.role_of(request.user, team) != Membership.Role.OWNER:
        raise PermissionDenied(OWNERS_ONLY)
    return team


def page(request: HttpRequest, team: Team, form: WebhookEndpointForm | None = None, shown_secret: str = "",
         shown_for: WebhookEndpoint | None = None, pending: webhook_pings.PendingPing | None = None,
         status: int = 200) -> HttpResponse:
    endpoints = list(WebhookEndpoint.objects.filter(team=team))
    # Events whose queuing failed (Redis away): the drainer queues them once it can (`webhooks.flush_outbox`).
    waiting = set(WebhookOutbox.objects.filter(endpoint__in=endpoints, next_try__lte=timezone.now())
                  .values_list("endpoint_id", flat=True).distinct())
    for endpoint in endpoints:
        endpoint.waiting = endpoint.pk in waiting
        endpoint.recent = list(WebhookDelivery.objects.filter(endpoint=endpoint)[:RECENT_DELIVERIES])
        # Only this team's endpoint shows a queued test: an id of another team's test shows nothing.
        endpoint.pending = pending if pending is not None and pending.endpoint_id == endpoint.pk else None
    response = render(request, "campaigns/webhooks.html", {
        "team": team, "endpoints": endpoints, "form": form or WebhookEndpointForm(),
        "shown_secret": shown_secret, "shown_for": shown_for,
    }, status=status)
    if shown_secret:
        response["Cache-Control"] = "no-store"  # the secret is shown once: no copy in a cache
    if any(endpoint.pending and endpoint.pending.state == "waiting" for endpoint in endpoints):
        response["Refresh"] = str(PING_REFRESH_SECONDS)  # reload until the test's result is on the list
    return response


def shown_secret_key(team: Team) -> str:
    return f"webhook-secret-{team.pk}"


def show_secret_next(request: HttpRequest, team: Team, endpoint: WebhookEndpoint) -> HttpResponse:
    """Redirect to the list, which shows `endpoint`'s new secret once (kept in the session until then): the page
    answering the POST itself was sent again by a reload, adding a second endpoint or rotating the secret again."""
    request.session[shown_secret_key(team)] = [endpoint.pk, endpoint.secret]
    # No #endpoint-N: a browser ignores autofocus on a page opened at a fragment, and the focus belongs on the secret
    # (which names its endpoint), not on the endpoint's card further down.
    return redirect("campaigns:webhooks", team_id=team.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def webhook_list(request: HttpRequest, team_id: int) -> HttpResponse:
    team = owned_team(request, team_id)
    if request.method != "POST":
        shown_pk, secret = request.session.pop(shown_secret_key(team), None) or (None, "")
        shown_for = WebhookEndpoint.objects.filter(team=team, pk=shown_pk, secret=secret).first()
        return page(request, team, pending=webhook_pings.pending_ping(request.GET.get("test", "")),
                    shown_secret=secret if shown_for else "", shown_for=shown_for)
    form = WebhookEndpointForm(request.POST)
    if form.is_valid() and webhooks.sent_there_already(team.pk, form.cleaned_data["url"]):
        form.add_error("url", webhooks.SENT_THERE_ALREADY)
    if not form.is_valid():
        return page(request, team, form=form, status=400)
    endpoint = form.save(commit=False)
    endpoint.team, endpoint.secret = team, webhooks.new_secret()
    endpoint.save()
    return show_secret_next(request, team, endpoint)


def owned_endpoint(request: HttpRequest, team_id: int, endpoint_id: int) -> tuple[Team, WebhookEndpoint]:
    team = owned_team(request, team_id)
    return team, get_for_user_or_404(WebhookEndpoint.objects.filter(team=team), pk=endpoint_id)


@login_required
@require_POST
def webhook_rotate(request: HttpRequest, team_id: int, endpoint_id: int) -> HttpResponse:
    team, endpoint = owned_endpoint(request, team_id, endpoint_id)
    endpoint.secret = webhooks.new_secret()
    endpoint.save(update_fields=["secret"])
    return show_secret_next(request, team, endpoint)


@login_required
@require_POST
def webhook_test(request: HttpRequest, team_id: int, endpoint_id: int) -> HttpResponse:
    """Queue a test message (`webhook_pings.queue_ping`): the page shows it waiting, then its result among the
    deliveries."""
    team, endpoint = owned_endpoint(request, team_id, endpoint_id)
    try:
        message_id = webhook_pings.queue_ping(endpoint)
    except webhook_pings.PingPending as pending:
        message_id = pending.message_id
        messages.info(request, f"A test is already queued for {endpoint.url}: its result appears under Recent "
                               "deliveries; send another once it is there.")
    except RedisError as exc:
        said = webhook_pings.password_refused(exc, request.user.is_superuser) or webhook_pings.QUEUE_AWAY
        messages.error(request, said)
        return redirect("campaigns:webhooks", team_id=team.pk)
    else:
        messages.success(request, f"Test queued for {endpoint.url}: its result appears under Recent deliveries in a "
                                  "few seconds.")
    return redirect(f"{reverse('campaigns:webhooks', args=[team.pk])}?test={message_id}#endpoint-{endpoint.pk}")


@login_required
@require_POST
def webhook_enable(request: HttpRequest, team_id: int, endpoint_id: int) -> HttpResponse:
    team, endpoint = owned_endpoint(request, team_id, endpoint_id)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True, failing_since=None, disabled_reason="")
    messages.success(request, f"{endpoint.url} receives events again.")
    return redirect("campaigns:webhooks", team_id=team.pk)


@login_required
@require_POST
def webhook_delete(request: HttpRequest, team_id: int, endpoint_id: int) -> HttpResponse:
    team, endpoint = owned_endpoint(request, team_id, endpoint_id)
    webhooks.delete_endpoint(endpoint)
    messages.success(request, f"{endpoint.url} removed; it receives nothing more.")
    return redirect("campaigns:webhooks", team_id=team.pk)
