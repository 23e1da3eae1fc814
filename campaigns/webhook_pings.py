"""Test messages of a webhook endpoint (its owner's "Send a test"): `queue_ping` queues one on the `webhooks` queue,
one per endpoint at a time (`PingPending` while one waits), and `pending_ping` tells the page how a queued test whose
attempt is not logged yet stands (`PendingPing`: waiting, stuck or crashed).

The job that sends a test, `ping`, is in `campaigns.webhooks` with the other deliveries: it signs and logs its one
message as they do, and RQ finds the tests already queued by that name.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, timedelta

import django_rq
from django.core.cache import cache
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from campaigns.models import WebhookDelivery, WebhookEndpoint
from campaigns.webhooks import JOB_TIMEOUT, QUEUE, pending_ping_key, ping
from qartsite.queues import breaker, password_refused_on_page

PING_ID = re.compile(r"ping-[0-9a-f]{16}")
PING_PATIENCE = timedelta(minutes=2)  # a test no worker took by then: the page stops waiting and says why
QUEUE_AWAY = "Test not sent: the delivery queue cannot be reached. Try again in a minute."


class PingPending(Exception):
    """A test of this endpoint is already queued: `message_id` is that test's."""

    def __init__(self, message_id: str) -> None:
        super().__init__(message_id)
        self.message_id = message_id


def queue_ping(endpoint: WebhookEndpoint) -> str:
    """Queue a test message to `endpoint` (the owner's "Send a test" button) on the `webhooks` queue, so the page
    never waits on a receiver (up to CONNECT_TIMEOUT + READ_TIMEOUT); returns its message id, which is also the RQ
    job's id and names the logged attempt.

    One test per endpoint waits at a time (until its attempt is logged, or PING_PATIENCE): the queue is shared with
    every team's real deliveries, and a held-down button would otherwise put thousands of tests ahead of them.

    Raises:
        PingPending: a test of this endpoint is still waiting.
        RedisError: the queue (or the cache) cannot be reached; nothing was queued.
    """
    message_id = f"ping-{secrets.token_hex(8)}"
    key = pending_ping_key(endpoint)
    queue = django_rq.get_queue(QUEUE)
    # The mark outside the queue's breaker: the cache has its own, by its server (`qartsite.redis_cache`), and a stalled
    # cache on a server of its own, asked under the queue's, opened the queue's too (creates refused, for nothing).
    if not cache.add(key, message_id, PING_PATIENCE.total_seconds()):
        raise PingPending(cache.get(key) or "")
    try:
        # Through the breaker: while Redis stalled, each test waited out the timeout again before its refusal.
        # One attempt and no retry: the owner is watching for this one, now.
        with breaker(queue.connection):
            queue.enqueue(ping, endpoint.pk, message_id, job_id=message_id, job_timeout=JOB_TIMEOUT, result_ttl=3600,
                          failure_ttl=24 * 3600)
    except BaseException:
        cache.delete(key)
        raise
    return message_id


def password_refused(exc: RedisError, operator: bool = False) -> str | None:
    """Why a test was not sent when `queue_ping` raised `exc` because the delivery queue's Redis refused the site's
    password (`queues.password_refused_on_page`: where it is, to an `operator` only), None for any other failure
    (`QUEUE_AWAY`). It said "cannot be reached. Try again in a minute", and no minute mends a password."""
    connection = django_rq.get_queue(QUEUE).connection
    refused = password_refused_on_page(connection, exc, "the delivery queue", operator)
    return f"Test not sent: {refused}" if refused else None


@dataclass(frozen=True)
class PendingPing:
    """A queued test whose attempt is not logged yet: `state` is "waiting" (for a worker, or being sent),
    "stuck" (no worker took it within PING_PATIENCE) or "crashed" (the job failed before logging an attempt)."""

    endpoint_id: int
    message_id: str
    state: str


def pending_ping(message_id: str) -> PendingPing | None:
    """The queued test `message_id` while its result is not on the deliveries list yet; None once it is, or for an
    unknown id (or when the queue cannot be reached: the page then shows what is logged, as always)."""
    if not PING_ID.fullmatch(message_id) or WebhookDelivery.objects.filter(message_id=message_id).exists():
        return None
    connection = django_rq.get_connection(QUEUE)
    try:
        with breaker(connection):  # the webhook page asks at every render while a test waits
            job = Job.fetch(message_id, connection=connection)
            status = job.get_status()
    except (NoSuchJobError, RedisError):
        return None
    if job.func_name != f"{ping.__module__}.ping" or not job.args:
        return None
    if status == JobStatus.FINISHED:
        # Finished between the two looks: the delivery is logged now.
        return None if WebhookDelivery.objects.filter(message_id=message_id).exists() else PendingPing(
            job.args[0], message_id, "crashed")
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return PendingPing(job.args[0], message_id, "crashed")
    queued_at = job.enqueued_at
    if queued_at is not None and queued_at.tzinfo is None:
        queued_at = queued_at.replace(tzinfo=UTC)  # RQ keeps UTC, naive in some versions
    stuck = status != JobStatus.STARTED and queued_at is not None and timezone.now() - queued_at > PING_PATIENCE
    return PendingPing(job.args[0], message_id, "stuck" if stuck else "waiting")
