"""The team's generation rate: one budget per team, shared by the generation page and the API.

Both ask twice: `has_room()` before anything costly is done with the request (a picture is decoded only for a team
with room left), and `allow_request()` once the job is accepted, which counts it. A job refused for a bad
parameter is never counted.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling
from rest_framework.settings import api_settings

from qartsite.models import Team

PERIODS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


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
        self.key = self.get_cache_key(None, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) < self.num_requests

    def room(self) -> int | None:
        """How many more jobs would be allowed now, without counting any; None when no rate is set. For actions
        that start several jobs at once (`campaigns.bulk_generation`)."""
        if self.rate is None:
            return None
        self.has_room()
        return max(0, self.num_requests - len(self.history))

    def used_up(self, retry: bool = True) -> str:
        """The message for a person: whose budget, how large, and (with `retry`) when to try again."""
        period = PERIODS.get(self.duration, f"{self.duration} seconds")
        jobs = f"{self.num_requests} generation{'s' if self.num_requests != 1 else ''}"
        message = f"The team {self.team.name} has used its {jobs} per {period}."
        if retry:
            wait = self.wait()
            message += f" Try again in {retry_in(wait)}." if wait else " Try again shortly."
        return message


def retry_in(seconds: float) -> str:
    """"about 12 minutes", "40 seconds": when to retry, as a person would say it."""
    if seconds < 90:
        count = max(1, round(seconds))
        return f"{count} second{'s' if count > 1 else ''}"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} minutes"
    return f"about {round(seconds / 3600)} hours"
