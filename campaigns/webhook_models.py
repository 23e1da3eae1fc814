"""What is stored of webhooks: a team's endpoints (`WebhookEndpoint`), each attempt to deliver an event
(`WebhookDelivery`) and the messages still to be queued (`WebhookOutbox`); sending them is `campaigns.webhooks`.

Models of the campaigns app, kept apart from campaigns and placements by subject: other modules import them from
`campaigns.models`, which is where Django loads the app's models from.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from qartsite.models import Team, TeamOwnedQuerySet


class WebhookEndpoint(models.Model):
    """A team's HTTPS address that receives events, signed the Standard Webhooks way (`campaigns.webhooks`).

    `secret` is the `whsec_…` signing key: shown to the owner once (when made or rotated) and kept in the database
    because every delivery signs with it (an HMAC key cannot be stored as a hash).
    """

    team_paths = ('team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    class Event(models.TextChoices):
        SCAN_CREATED = "scan.created"
        GENERATION_FINISHED = "generation.finished"
        ARTWORK_CHANGED = "placement.artwork_changed"
        ALERT_RAISED = "placement.alert"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, help_text="The event types it receives (WebhookEndpoint.Event)")
    secret = models.CharField(max_length=100, editable=False)
    active = models.BooleanField(default=True)
    # Set by the first failed attempt after a success, cleared by the next success: failing for
    # webhooks.DISABLE_AFTER switches the endpoint off (webhooks.record_attempt).
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one endpoint: what the team's webhook page lists."""

    team_paths = ('endpoint__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=64, db_index=True, help_text="The webhook-id header: receivers dedupe")
    event = models.CharField(max_length=40)
    attempt = models.PositiveSmallIntegerField(default=1)
    ok = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    time = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-time", "-pk"]
        indexes = [models.Index(fields=["endpoint", "-time"])]
        verbose_name_plural = "webhook deliveries"  # not Django's "deliverys"

    def __str__(self) -> str:
        return f"{self.event} {self.message_id} #{self.attempt}: {self.status_code or self.error}"


class WebhookOutbox(models.Model):
    """Messages of one event for one endpoint that must still be put on the `webhooks` queue (`campaigns.webhooks`):
    written in the transaction that made the event, deleted once queued. A row that stays is one whose queuing failed
    (Redis away) or whose process died before trying: the drainer's flush queues it later."""

    team_paths = ('endpoint__team',)  # see TeamOwnedQuerySet
    objects = TeamOwnedQuerySet.as_manager()

    # No constraint in the database: a row written while its endpoint is being deleted would fail the transaction that
    # stored the scans or ended the job (at its commit) rather than be dropped. The endpoint's delete takes the rows it
    # finds; the flush drops any left over.
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    event = models.CharField(max_length=40)
    messages = models.JSONField(help_text="[[message id, data], ...], in the order they are sent")
    created = models.DateTimeField(default=timezone.now)
    # The flush takes the row from then on: a moment after `created`, so it leaves alone the rows their own process is
    # queuing right after the commit; at once once that failed.
    next_try = models.DateTimeField()

    class Meta:
        ordering = ["created", "pk"]
        verbose_name = "webhook waiting for the queue"
        verbose_name_plural = "webhooks waiting for the queue"

    def __str__(self) -> str:
        return f"{self.event} to endpoint {self.endpoint_id}: {len(self.messages)} messages"
