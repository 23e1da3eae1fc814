"""Rates for pages anyone can open without signing in (a shared report, the password reset form), counted per client
network in Django's cache.

History lives in Django's cache: every web process must share one (CACHE_URL) for a rate to hold across processes;
with the per-process default each process allows the full rate. When the cache cannot be reached the page is served
unthrottled rather than failing everyone.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.settings import api_settings

from qartsite.site import client_address

log = logging.getLogger(__name__)

# Counting is one cache read and one write (milliseconds), under a lock in the same cache (`counting_lock`): a lock
# older than LOCK_TIMEOUT was left by a process that died holding it, and expires. A request waits at most LOCK_WAIT
# for it, then is refused.
LOCK_TIMEOUT = 5
LOCK_WAIT = 10.0


@contextmanager
def counting_lock(cache, key: str) -> Iterator[bool]:
    """Hold the lock `key` in `cache` (`cache.add`: SET NX on Redis, atomic within the process on the local-memory
    cache of development); yields False when it could not be had within LOCK_WAIT. A rate's count is a read and a
    write of one entry: without the lock, requests at once overwrote each other's count and all got through.

    Raises:
        redis.exceptions.RedisError: the cache cannot be reached.
    """
    token, deadline = uuid.uuid4().hex, time.monotonic() + LOCK_WAIT
    while not cache.add(key, token, LOCK_TIMEOUT):
        if time.monotonic() > deadline:
            yield False
            return
        time.sleep(0.002)
    try:
        yield True
    finally:
        if cache.get(key) == token:  # not another's, should ours have expired
            cache.delete(key)


def client_network(request: HttpRequest) -> str:
    """Whom a page's rate is counted for: the client's IPv4 address, or its IPv6 /64 (one host is given a whole
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


def retry_in(seconds: float) -> str:
    """"about 12 minutes", "40 seconds": when to retry, as a person would say it."""
    if seconds < 90:
        count = max(1, round(seconds))
        return f"{count} second{'s' if count > 1 else ''}"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} minutes"
    return f"about {round(seconds / 3600)} hours"


class ClientRateThrottle(throttling.SimpleRateThrottle):
    """A page's rate per client network (`client_network`): REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope], else
    `default_rate`. Subclasses set `scope` and `default_rate`, and may count something else by `ident`."""

    default_rate = "60/minute"

    def get_rate(self) -> str | None:
        # Read at call time, not at import like DRF's class attribute, so a changed setting takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope, self.default_rate)

    def ident(self, request: HttpRequest) -> str:
        return client_network(request)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.ident(request)}

    def allow_request(self, request, view) -> bool:
        """Count the request if there is room, under the rate's lock (`counting_lock`); refused when the lock could
        not be had."""
        try:
            with counting_lock(self.cache, f"{self.get_cache_key(request, view)}:lock") as locked:
                self.busy = not locked
                if not locked:
                    self.history, self.now = [], self.timer()
                    return False
                return super().allow_request(request, view)
        except RedisError as exc:  # one line, not a traceback per request while the cache is away
            log.warning("%s served without a rate check: the cache cannot be reached (%s)", self.scope, exc)
            self.history = []
            return True

    busy = False  # the last count could not have the rate's lock in time: nothing was counted, try again shortly

    def retry_after(self) -> int:
        """Whole seconds until the next request is allowed, at least 1 (for Retry-After); a busy lock frees within
        LOCK_TIMEOUT (its history was not read: `wait()` would say the whole rate was used)."""
        return LOCK_TIMEOUT if self.busy else max(1, math.ceil(self.wait() or 1))

    def has_room(self, request) -> bool:
        """Whether one more request is allowed now, without counting it (`allow_request` counts)."""
        if self.rate is None:
            return True
        try:
            self.key, self.now = self.get_cache_key(request, None), self.timer()
            self.history = [t for t in self.cache.get(self.key, []) if t > self.now - self.duration]
        except RedisError:
            self.history = []
            return True
        return len(self.history) < self.num_requests


def refused_by(request: HttpRequest, throttles: Sequence[ClientRateThrottle]) -> ClientRateThrottle | None:
    """The first of `throttles` without room for `request` (its `retry_after()` says how long), else None after
    counting the request in every one: a request one rate refuses is not counted by the others."""
    for throttle in throttles:
        if not throttle.has_room(request):
            return throttle
    for throttle in throttles:
        if not throttle.allow_request(request, None):  # filled meanwhile by another request
            return throttle
    return None


class PasswordResetThrottle(ClientRateThrottle):
    """Password reset e-mails asked for from one client network."""

    scope = "password_resets"
    default_rate = "5/hour"


class AddressThrottle(ClientRateThrottle):
    """E-mails to one address (the form's `email`), from anywhere, counted by the address's hash: a mailbox is not
    flooded from many networks. Subclasses set `scope` and `default_rate`."""

    def ident(self, request: HttpRequest) -> str:
        address = request.POST.get("email", "").strip().lower()
        return hashlib.sha256(address.encode()).hexdigest()


class PasswordResetAddressThrottle(AddressThrottle):
    """Password reset e-mails asked for one address. Counted whether or not an account has the address, so the
    answer tells nothing about accounts."""

    scope = "password_reset_addresses"
    default_rate = "3/hour"


class InvitationAddressThrottle(AddressThrottle):
    """Invitation e-mails sent to one address, by any team: an owner re-sending, or several teams."""

    scope = "invitation_addresses"
    default_rate = "3/hour"


class InvitationTeamThrottle(ClientRateThrottle):
    """Invitation e-mails one team sends: this site's mail is not a way to write to many strangers."""

    scope = "invitation_teams"
    default_rate = "30/hour"

    def __init__(self, team_id: int) -> None:
        super().__init__()
        self.team_id = team_id

    def ident(self, request: HttpRequest) -> str:
        return f"team-{self.team_id}"
