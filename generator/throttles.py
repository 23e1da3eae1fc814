"""The team's generation rate: one budget per team, shared by the generation page and the API.

Both ask twice: `has_room()` before anything costly is done with the request (a picture is decoded only for a team
with room left), and `allow_request()` once the job is accepted, which counts it. A job refused for a bad
parameter is never counted. Several jobs at once (`campaigns.bulk_generation`) are counted together by `take(n)`.

Counting is a read-modify-write of one cache entry, so it runs under a lock in the same cache (`cache.add`: SET NX on
Redis, atomic within the process on the local-memory cache of development): without it concurrent requests
overwrote each other's history, and 8 threads started 160 jobs at a rate of 50 an hour.
"""

from __future__ import annotations

import logging
import math

from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import RedisError
from rest_framework import exceptions, throttling
from rest_framework.settings import api_settings

from qartsite import rates
from qartsite.models import Team
from qartsite.rates import counting_lock, retry_in

log = logging.getLogger(__name__)

PERIODS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
BUSY = "The team's generation rate could not be checked just now. Try again shortly."


def refused(wait: float | None, message: str) -> exceptions.Throttled:
    """The API's 429 for `message`, which says in words when to try again: DRF's `Throttled` would add "Expected
    available in N seconds." after it, a second time. The wait still goes out as Retry-After."""
    throttled = exceptions.Throttled(detail=message)
    throttled.wait = math.ceil(wait) if wait is not None else None
    return throttled


class TeamGenerationThrottle(throttling.SimpleRateThrottle):
    """Generation creates per team, counted only when a job is accepted: the team shares one budget whoever
    clicks, on the page or through the API. Rate: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["generations"]
    (e.g. "30/hour").

    History lives in Django's cache, so every web process must share one cache (Redis or Memcached) in
    production; with a per-process cache each process would allow the full rate.
    """

    scope = "generations"

    def __init__(self, team: Team) -> None:
        self.team = team
        self.taken: tuple[float, int] | None = None  # the last `take`: its timestamp and count, for `give_back`
        self.busy = False  # the last `take` could not have the counting lock within LOCK_WAIT (nothing counted)
        super().__init__()

    def get_rate(self) -> str | None:
        # Read at call time, not at import like DRF's class attribute, so a changed setting takes effect.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f'Set REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["{self.scope}"].') from None

    def get_cache_key(self, request, view) -> str:
        # The team alone names the budget: the request and the view (page or API) do not matter.
        return self.cache_format % {"scope": self.scope, "ident": f"team-{self.team.pk}"}

    def has_room(self) -> bool:
        """Whether one more job would be allowed now, without counting it (`allow_request` counts). After a
        False, `wait()` says how many seconds until there is room."""
        if self.rate is None:
            return True
        try:
            return self._room_left()
        except RedisError as exc:
            self.history = []
            # One line, not a traceback: while the cache's Redis hung every create logged one (a fault drill).
            log.warning("The generation rate was not checked: the cache cannot be reached (%s)", exc)
            return True

    def _room_left(self) -> bool:
        """`has_room`, raising RedisError: `take` must not write a history it could not read (a read that timed
        out, then a write that worked, would wipe the team's count)."""
        self.key = self.get_cache_key(None, None)
        self.now = self.timer()
        self.history = self.cache.get(self.key, [])
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) < self.num_requests

    def allow_request(self, request, view) -> bool:
        """Count one job if there is room (DRF's interface: the generation page and the API count through it)."""
        return self.take(1)

    def take(self, count: int) -> bool:
        """Count `count` jobs at once if the team has room for all of them, atomically.

        Args:
            count (`int`): how many jobs are about to start.

        Returns:
            True when all were counted (or no rate is set); False when there is room for fewer, or the lock could not
            be had within `LOCK_WAIT`: nothing was counted. Either way `history`, `now` and so `wait()`, `wait_for()`
            describe the budget as read.
        """
        if self.rate is None:
            return True
        try:
            with self._locked() as locked:
                self.busy = not locked
                if not self._room_left() or not locked or self.num_requests - len(self.history) < count:
                    return False
                self.history[:0] = [self.now] * count
                self.cache.set(self.key, self.history, self.duration)
        except RedisError as exc:
            # The cache (CACHE_URL) is away: the jobs start uncounted rather than the page failing (a 500 before).
            log.warning("%d generation(s) started without counting: the cache cannot be reached (%s)", count, exc)
            self.history, self.now, self.busy = [], self.timer(), False
            return True
        self.taken = (self.now, count)
        return True

    def give_back(self) -> None:
        """Uncount the jobs of this throttle's last successful `take` (they were not started after all)."""
        if self.rate is None or self.taken is None:
            return
        stamp, count = self.taken
        self.taken = None
        try:
            with self._locked():  # undone even without the lock (after LOCK_WAIT): unstarted jobs must not hold it
                history = self.cache.get(self.key, [])
                for _ in range(count):
                    if stamp in history:
                        history.remove(stamp)
                self.cache.set(self.key, history, self.duration)
        except RedisError:
            log.warning("%d unstarted generation(s) still counted: the cache cannot be reached", count)

    def _locked(self):
        """The team's counting lock (`qartsite.rates.counting_lock`): yields False when it could not be had."""
        return counting_lock(self.cache, f"{self.get_cache_key(None, None)}:lock")

    def rate_headers(self) -> dict[str, str]:
        """The budget as last read, as the IETF RateLimit header fields say it (the API sends them with a created
        generation): the rate, what is left of it, and whole seconds until a slot frees. Empty without a rate or
        when the budget could not be read."""
        if self.rate is None or not hasattr(self, "now"):
            return {}
        left = max(0, self.num_requests - len(self.history))
        reset = math.ceil(self.duration - (self.now - self.history[-1])) if self.history else 0
        return {"RateLimit-Limit": str(self.num_requests), "RateLimit-Remaining": str(left),
                "RateLimit-Reset": str(max(0, reset))}

    def wait_for(self, count: int) -> float | None:
        """Seconds until `count` jobs would be allowed, from the history last read (0: now); None when never (more
        than the rate allows in one period)."""
        if self.rate is None:
            return 0.0
        if count > self.num_requests:
            return None
        missing = count - (self.num_requests - len(self.history))
        if missing <= 0:
            return 0.0
        # The history is newest first: its oldest entries free their slots first.
        return max(0.0, self.history[-missing] + self.duration - self.now)

    def room(self) -> int | None:
        """How many more jobs would be allowed now, without counting any; None when no rate is set. For actions
        that start several jobs at once (`campaigns.bulk_generation`)."""
        if self.rate is None:
            return None
        self.has_room()
        return max(0, self.num_requests - len(self.history))

    def retry_after(self) -> float | None:
        """Seconds a refused request should wait (Retry-After): a busy lock frees within LOCK_TIMEOUT."""
        return float(rates.LOCK_TIMEOUT) if self.busy else self.wait()

    def refusal(self, retry: bool = True) -> str:
        """Why the last `take` counted nothing, for a person: the budget is used up (`used_up`), or the counting lock
        stayed busy, which says nothing about the budget."""
        if self.busy:
            return BUSY
        return self.used_up(retry)

    def used_up(self, retry: bool = True) -> str:
        """The message for a person: whose budget, how large, and (with `retry`) when to try again."""
        period = PERIODS.get(self.duration, f"{self.duration} seconds")
        jobs = f"{self.num_requests} generation{'s' if self.num_requests != 1 else ''}"
        message = f"The team {self.team.name} has used its {jobs} per {period}."
        if retry:
            wait = self.wait()
            message += f" Try again in {retry_in(wait)}." if wait else " Try again shortly."
        return message
