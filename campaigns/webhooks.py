"""Webhooks: a team's HTTPS endpoints receive `scan.created`, `generation.finished`, `placement.artwork_changed` and
`placement.alert` events, signed the Standard Webhooks way so receivers can check them with any Standard Webhooks
library (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256 under the endpoint's `whsec_` secret).

Events are queued after the transaction that made them commits (`emit`), one RQ job per endpoint and batch on the
light `webhooks` queue, never on the short link's path: scans are emitted by the drainer once it has stored them.
Each message's id is stable across retries (a scan's is its event id), so receivers dedupe.

What is to be queued is kept in the database first (`WebhookOutbox`, a transactional outbox), written in the
transaction that made the events: after the commit the rows are queued and deleted at once. Rows whose queuing
failed (Redis away) or whose process died before it stay; the drainer, which runs wherever the site does, queues them
in created order once Redis answers again (`flush_outbox`). A queued batch delivered twice (a flush that queued but
could not delete) costs nothing: `deliver` skips what was delivered.

A job sends its messages in order and stops at the first failure; RQ retries it with exponential back-off
(`RETRY_INTERVALS`, about 5 days in all, which needs a worker started `--with-scheduler`), skipping the messages
already delivered. Every attempt is a `WebhookDelivery` row. An endpoint failing for `DISABLE_AFTER` is switched off
and its team's owners are told (the webhook page shows why, and an e-mail goes out).

Addresses are checked when a delivery is made, not only when the endpoint is saved: the host is resolved, every
address must be public (not private, loopback, link-local, multicast or reserved) unless
`QART_WEBHOOKS_ALLOW_PRIVATE` (tests, local development), and the connection goes to the checked address itself, so
a DNS answer that changes in between (rebinding) cannot point the request inside. Redirects are not followed.

A test message (the owner's "Send a test") is one more delivery: its job, `ping`, is here; queuing one, one per
endpoint at a time, and how a queued one stands are `campaigns.webhook_pings`.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import django_rq
import urllib3
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Retry
from standardwebhooks import Webhook

from campaigns.models import ScanEvent, WebhookDelivery, WebhookEndpoint, WebhookOutbox
from campaigns.rollups import LockedPlacements
from qartsite.models import Membership
from qartsite.queues import breaker
from qartsite.sql import lock_rows

log = logging.getLogger(__name__)

QUEUE = "webhooks"
DISABLE_AFTER = timedelta(days=5)
# Exponential back-off, 1 min doubling-ish up to a day: 10 retries span about 4.9 days, so a message still failing
# near the end of them meets DISABLE_AFTER on its last attempts.
RETRY_INTERVALS = [60, 300, 1800, 7200, 21600, 43200, 86400, 86400, 86400, 86400]
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
ATTEMPT_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT  # one attempt in all, however the receiver trickles its answer
JOB_TIMEOUT = 300
RESPONSE_BYTES = 1024  # read no more of a receiver's answer than this
# How long after a commit the outbox's flush leaves its rows to the process queuing them (a failed try frees them at
# once): a try takes a few seconds at most (QART_REDIS_CONNECT_TIMEOUT and QART_REDIS_TIMEOUT).
OUTBOX_GRACE = timedelta(minutes=1)
FLUSH_BATCH = 100  # outbox rows locked and queued per transaction


class DeliveryError(Exception):
    """One attempt failed: the message is what the delivery log shows."""


class EndpointGone(Exception):
    """The endpoint was deleted (nothing to log the message against) or switched off while messages to it were on
    their way."""


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form (`whsec_` + base64 of 32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def allow_private() -> bool:
    return bool(getattr(settings, "QART_WEBHOOKS_ALLOW_PRIVATE", False))


def validate_url(url: str) -> None:
    """Raise ValidationError unless `url` is an https URL with a host (http too where private addresses are
    allowed, for a local receiver). Whether the host is public is checked at each delivery (`public_address`)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # a port that is not a number raises here, not at each delivery
    except ValueError:  # a broken IPv6 host ("https://[::1"): the page answered 500
        raise ValidationError("Enter an https:// address with a host name.") from None
    if port == 0:
        raise ValidationError("Port 0 is no port to send to: leave the port out, or give the receiver's.")
    schemes = ("https", "http") if allow_private() else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValidationError("Enter an https:// address with a host name.")
    if parts.username or parts.password:
        raise ValidationError("Leave the user name and password out of the address; the signature proves the sender.")
    if not allow_private():
        host = parts.hostname.rstrip(".")
        if host == "localhost" or host.endswith(".localhost"):  # this machine by name (RFC 6761), whatever DNS says
            raise ValidationError("Deliveries go to public addresses only; this one is not.")
        try:  # an address written as one: said now, not at the first delivery (names are checked at each one)
            literal = ipaddress.ip_address(host)
        except ValueError:
            return
        if not is_public(literal):
            raise ValidationError("Deliveries go to public addresses only; this one is not.")


SENT_THERE_ALREADY = "The team already sends to this address: every event would arrive twice. Edit that endpoint."


def sent_there_already(team_id: int, url: str, endpoint_id: int | None = None) -> bool:
    """Whether another of the team's endpoints has `url` (an endpoint being edited, `endpoint_id`, aside)."""
    return WebhookEndpoint.objects.filter(team_id=team_id, url=url).exclude(pk=endpoint_id).exists()


# IPv6 prefixes that carry an IPv4 address in their last 32 bits for a translator to reach (NAT64: RFC 6052's
# well-known prefix and RFC 8215's local one); Python calls the first global, whatever the IPv4 address inside.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether deliveries may go to `ip`: global, not multicast, and, for an IPv6 address that carries an IPv4 one
    (mapped, 6to4, NAT64: `[64:ff9b::7f00:1]` is 127.0.0.1 behind a translator), that one public too."""
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inside = ip.ipv4_mapped or ip.sixtofour
        if inside is None and any(ip in network for network in NAT64):
            inside = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inside is not None:
            return is_public(inside)
    return True


def public_address(host: str, port: int) -> str:
    """The address to connect to for `host`: its first resolved address, after checking that all are public.

    Raises DeliveryError when the host does not resolve or any of its addresses is not public (unless allowed).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryError(f"Could not resolve {host}: {exc}") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise DeliveryError(f"Could not resolve {host}.")
    if not allow_private():
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%")[0])):
                # The address stays in the server's log: the delivery log is read by the team, and would tell any
                # owner how this server resolves internal names.
                log.warning("Webhook delivery to %s refused: it resolves to %s", host, address)
                raise DeliveryError(f"{host} resolves to an address that is not public: deliveries go to public "
                                    "addresses only.")
    return addresses[0]


def signed_headers(secret: str, message_id: str, sent: datetime, body: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, sent, body),
        "content-type": "application/json",
        "user-agent": "qart-webhooks",
    }


def post(url: str, headers: dict[str, str], body: str) -> int:
    """POST `body` to `url` through the checked address; returns the status code. Follows no redirect."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = public_address(parts.hostname or "", port)
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if parts.scheme == "https":
        # Connect to the pinned address but check the certificate (and send SNI) for the host name.
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, server_hostname=parts.hostname,
            assert_hostname=parts.hostname, cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    # The timeouts bound each read, not the answer: a receiver sending a header line every few seconds held the one
    # worker every team's deliveries share for minutes. At the deadline the connection's socket is shut down.
    opened: list[socket.socket] = []
    pool.ConnectionCls = _recording(pool.ConnectionCls, opened)
    late = threading.Event()
    deadline = threading.Timer(ATTEMPT_SECONDS, _shut, (opened, late))
    deadline.start()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        response = pool.urlopen("POST", path, body=body.encode(), headers={**headers, "host": host_header},
                                redirect=False, retries=False, preload_content=False)
        response.read(RESPONSE_BYTES)
        response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if late.is_set():
            raise DeliveryError(f"{parts.hostname} did not answer within {ATTEMPT_SECONDS:g} s.") from None
        raise DeliveryError(f"Could not reach {parts.hostname}: {type(exc).__name__}") from None
    finally:
        deadline.cancel()
        pool.close()
    if late.is_set():  # cut off mid-answer, which can read as a short but complete one
        raise DeliveryError(f"{parts.hostname} did not answer within {ATTEMPT_SECONDS:g} s.")
    return response.status


def _recording(connection_class: type, opened: list) -> type:
    """`connection_class` that adds each socket it connects to `opened`."""
    class Recording(connection_class):
        def connect(self) -> None:
            super().connect()
            opened.append(self.sock)

    return Recording


def _shut(opened: list, late: threading.Event) -> None:
    late.set()
    for sock in opened:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already


def message_body(event: str, data: dict[str, Any], sent: datetime) -> str:
    return json.dumps({"type": event, "timestamp": sent.isoformat(), "data": data}, separators=(",", ":"))


def emit(team_id: int, event: str, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Queue `messages` ((message id, data) pairs) of `event` for each of the team's active endpoints that take it,
    once the current transaction commits (right away outside one). They are kept in the outbox with that
    transaction, so a commit whose queuing fails loses none (`flush_outbox` queues them later)."""
    if not messages:
        return
    endpoints = [endpoint.pk for endpoint in WebhookEndpoint.objects.filter(team_id=team_id, active=True)
                 if event in endpoint.events]
    if not endpoints:
        return
    now = timezone.now()
    kept = WebhookOutbox.objects.bulk_create([
        WebhookOutbox(endpoint_id=endpoint_id, event=event, messages=messages, created=now, next_try=now + OUTBOX_GRACE)
        for endpoint_id in endpoints])
    transaction.on_commit(lambda: send_kept(kept, event, messages))


def send_kept(rows: list[WebhookOutbox], event: str, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """After the commit: queue the outbox rows `emit` just wrote and delete them; those whose queuing failed are left
    to `flush_outbox`, from now on rather than after OUTBOX_GRACE."""
    queued = enqueue([row.endpoint_id for row in rows], event, messages)
    WebhookOutbox.objects.filter(pk__in=[row.pk for row in rows if row.endpoint_id in queued]).delete()
    if len(queued) < len(rows):
        WebhookOutbox.objects.filter(pk__in=[row.pk for row in rows if row.endpoint_id not in queued]).update(
            next_try=timezone.now())


def enqueue(endpoint_ids: Iterable[int], event: str, messages: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """One `deliver` job per endpoint; returns the endpoints queued. Stops at the first that cannot be (Redis away,
    or skipped by its breaker while it does not answer: `queues.breaker`); the caller keeps the rest."""
    queued = []
    for endpoint_id in endpoint_ids:
        queue = django_rq.get_queue(QUEUE)
        try:
            # Through the breaker: while Redis stalled, each commit that made events (a cancel, a generation's end)
            # waited out the timeout again before its rows were left to the flush.
            with breaker(queue.connection):
                queue.enqueue(
                    deliver, endpoint_id, event, messages, job_timeout=JOB_TIMEOUT,
                    retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
                    result_ttl=3600, failure_ttl=7 * 24 * 3600,
                )
        except RedisError as exc:
            # Kept in the outbox: the drainer's flush queues them once Redis is back. The events are stored already,
            # and failing the drainer's batch or the job's end for it would help nobody.
            log.warning("Could not queue %s webhooks for endpoint %s (%s): kept for later", event, endpoint_id, exc)
            break
        queued.append(endpoint_id)
    return queued


def flush_outbox() -> int:
    """Queue what the outbox kept (its queuing failed at the commit, or its process died first), oldest first, and
    delete it; returns how many batches were queued. Rows of endpoints deleted or switched off meanwhile are dropped.
    Stops at the first that cannot be queued (Redis still away): the rest wait for the next flush.

    Each batch of rows is locked, skipping rows another flush holds (PostgreSQL), so that two hosts flushing at once
    queue each row once. Rows are taken only from their `next_try`: OUTBOX_GRACE after they were written unless their
    own queuing failed, so a flush leaves alone those their process is queuing right after its commit (a transaction
    longer than that may see its batch queued twice, which receivers dedupe)."""
    queued = dropped = 0
    stopped = False
    while not stopped:
        with transaction.atomic():
            rows = list(WebhookOutbox.objects.select_for_update(skip_locked=True)
                        .filter(next_try__lte=timezone.now()).order_by("created", "pk")[:FLUSH_BATCH])
            if not rows:
                break
            active = set(WebhookEndpoint.objects.filter(pk__in={row.endpoint_id for row in rows}, active=True)
                         .values_list("pk", flat=True))
            done = []
            for row in rows:
                if row.endpoint_id not in active:
                    dropped += 1
                elif enqueue([row.endpoint_id], row.event, [tuple(message) for message in row.messages]):
                    queued += 1
                else:
                    stopped = True
                    break
                done.append(row.pk)
            WebhookOutbox.objects.filter(pk__in=done).delete()
        stopped = stopped or len(rows) < FLUSH_BATCH
    if queued or dropped:
        log.info("Queued %d webhook batches the outbox kept; dropped %d of endpoints deleted or switched off",
                 queued, dropped)
    return queued


def scans_stored(rows: list[ScanEvent], locked: LockedPlacements) -> None:
    """`scan.created` for scans the drainer is storing (called inside its transaction; sent after the commit), with
    their placements' teams, campaigns and slugs as the drainer's locking query read them (`locked`)."""
    if not rows:
        return
    # Messages only for teams with an endpoint that takes them: most teams have none, and the drainer runs this for
    # every batch.
    subscribed = {endpoint.team_id for endpoint in WebhookEndpoint.objects.filter(
        team_id__in={locked.team_of[row.placement_id] for row in rows if row.placement_id in locked.team_of},
        active=True).only("team_id", "events")
        if WebhookEndpoint.Event.SCAN_CREATED in endpoint.events}
    by_team: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for row in rows:
        team = locked.team_of.get(row.placement_id)
        if row.is_bot or team not in subscribed:
            continue
        campaign, slug = locked.campaign_of[row.placement_id], locked.slug_of[row.placement_id]
        # No visitor key, address or language: nothing that follows a person leaves the site. The rule is the
        # placement's ("ab:<digest>": a split destination, `rules.variant_rule`), chosen from the daily key but not
        # revealing it.
        by_team.setdefault(team, []).append((str(row.event_id), {
            "scan": str(row.event_id), "time": row.time.isoformat(), "campaign": campaign,
            "placement": row.placement_id, "slug": slug, "country": row.country, "device_class": row.device_class,
            "repeat": row.is_repeat, "rule": row.rule,
        }))
    for team, messages in by_team.items():
        emit(team, WebhookEndpoint.Event.SCAN_CREATED, messages)


def generation_finished(job) -> None:
    """`generation.finished` for a job that has just ended (done, failed or cancelled)."""
    if job.team_id is None:
        return
    emit(job.team_id, WebhookEndpoint.Event.GENERATION_FINISHED, [(f"generation-{job.pk}-{job.status}", {
        "generation": job.pk, "status": job.status, "placement": job.placement_id,
    })])


def artwork_changed(placement, candidate_id: int | None) -> None:
    """`placement.artwork_changed` when a placement's artwork becomes `candidate_id` (None: removed)."""
    emit(placement.campaign.team_id, WebhookEndpoint.Event.ARTWORK_CHANGED, [
        (f"artwork-{placement.pk}-{secrets.token_hex(8)}", {
            "placement": placement.pk, "campaign": placement.campaign_id, "candidate": candidate_id,
        })])


def deliver(endpoint_id: int, event: str, messages: list[tuple[str, dict[str, Any]]]) -> str:
    """The RQ job: send the messages not yet delivered, in order; raise DeliveryError at the first failure so RQ
    retries the job later. Each message goes to the endpoint as it is when it is sent: one switched off or deleted
    meanwhile gets nothing more, one whose secret was rotated or URL changed gets the rest signed with the new secret
    at the new URL (a batch of scans can take minutes)."""
    done = set(WebhookDelivery.objects.filter(endpoint_id=endpoint_id, ok=True,
                                              message_id__in=[m for m, _ in messages])
               .values_list("message_id", flat=True))
    sent = 0
    for message_id, data in messages:
        if message_id in done:
            continue
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        try:
            if endpoint is None or not endpoint.active:
                raise EndpointGone
            attempt_one(endpoint, event, message_id, data)  # raises on failure: the retry takes it from here
        except EndpointGone:
            return f"sent {sent}; the endpoint is gone or switched off"
        sent += 1
    return f"sent {sent}"


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint and its delivery log, its row held first: a delivery logged at that moment waits and then
    finds it gone (`EndpointGone`) instead of failing the delete (on PostgreSQL, a 500)."""
    with transaction.atomic():
        if lock_rows(WebhookEndpoint, [endpoint.pk], deleting=True):
            endpoint.delete()


def attempt_one(endpoint: WebhookEndpoint, event: str, message_id: str, data: dict[str, Any]) -> None:
    """Send one message and log the attempt; raise DeliveryError when it failed."""
    now = timezone.now()
    body = message_body(event, data, now)
    status_code, error = None, ""
    try:
        status_code = post(endpoint.url, signed_headers(endpoint.secret, message_id, now, body), body)
        if not 200 <= status_code < 300:
            error = f"The receiver answered {status_code}" + (" (a redirect: not followed)"
                                                                if 300 <= status_code < 400 else "")
    except DeliveryError as exc:
        error = str(exc)[:300]
    attempts = WebhookDelivery.objects.filter(endpoint=endpoint, message_id=message_id).count()
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(endpoint=endpoint, message_id=message_id, event=event,
                                           attempt=attempts + 1, ok=not error, status_code=status_code,
                                           error=error, time=now)
    except IntegrityError:  # the endpoint was deleted during the post
        raise EndpointGone() from None
    record_outcome(endpoint, ok=not error, now=now)
    if error:
        raise DeliveryError(error)


def record_outcome(endpoint: WebhookEndpoint, ok: bool, now: datetime) -> None:
    """Keep `failing_since`; switch the endpoint off once it has failed for DISABLE_AFTER, and tell the owners."""
    if ok:
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since=None).update(failing_since=now)
        return
    if now - endpoint.failing_since >= DISABLE_AFTER and endpoint.active:
        disable(endpoint, f"Switched off on {now:%Y-%m-%d}: every delivery failed since "
                          f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC.")


def disable(endpoint: WebhookEndpoint, reason: str) -> None:
    # The conditional update makes one worker, not each that notices, send the e-mail.
    if not WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(active=False, disabled_reason=reason):
        return
    endpoint.active, endpoint.disabled_reason = False, reason
    owners = list(Membership.objects.filter(team_id=endpoint.team_id, role=Membership.Role.OWNER)
                  .exclude(user__email="").values_list("user__email", flat=True))
    if owners:
        send_mail(
            subject=f"qart: webhook {endpoint.url} switched off",
            message=f"{reason}\n\nFix the receiver, then switch the endpoint back on from your team's webhook page.",
            from_email=None, recipient_list=owners, fail_silently=True,
        )


PING_EVENT = "webhook.ping"  # a test message's event: logged as a delivery beside the endpoint's own events


def pending_ping_key(endpoint: WebhookEndpoint) -> str:
    return f"qart:webhook-ping:{endpoint.pk}"


# The test message's job is here, under the name RQ queues it by (`campaigns.webhooks.ping`), so that a test
# queued before a deploy still runs after it; queuing one and watching it wait are `campaigns.webhook_pings`.
def ping(endpoint_id: int, message_id: str) -> str:
    """The RQ job of a test message: one signed `webhook.ping`, logged as a delivery (sent to a switched-off
    endpoint too: its owner may be checking a fix before switching it on)."""
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return "endpoint gone"
    try:
        attempt_one(endpoint, PING_EVENT, message_id, {"endpoint": endpoint.pk})
    except DeliveryError as exc:
        return f"failed: {exc}"
    except EndpointGone:
        return "endpoint gone"
    finally:
        # Logged (or crashed): the owner may send the next test. Only this test's mark, not a newer one's; a cache
        # that cannot be reached keeps it until it expires, and the job still says how the delivery went.
        try:
            if cache.get(pending_ping_key(endpoint)) == message_id:
                cache.delete(pending_ping_key(endpoint))
        except RedisError as exc:
            log.warning("webhook test %s: its mark is left to expire, the cache did not answer (%s)", message_id, exc)
    return "delivered"
