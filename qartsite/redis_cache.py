"""Django's Redis cache (CACHE_URL), each call through the breaker of its Redis (`queues.breaker`).

The cache counts rate limits (every create, password reset and invitation), keeps Idempotency-Key answers, a form's
picture for its next try, print preflights and a webhook test's mark. Each caller copes with a cache that cannot be
reached (it goes on without it), but while Redis stalled each call first waited out the timeout: a create asked the
cache four to six times. Through the breaker, once a call did not answer, the next calls raise at once
(`queues.RedisSkipped`, a RedisError like the one each caller copes with) for `queues.REDIS_AWAY_FOR` seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache.backends import redis as django_redis
from django.utils.functional import cached_property

from qartsite import queues


class RedisCache(django_redis.RedisCache):
    """`django.core.cache.backends.redis.RedisCache` whose calls go through the breaker (settings.CACHES)."""

    @cached_property
    def _cache(self) -> ThroughBreaker:
        return ThroughBreaker(self._class(self._servers, **self._options))


class ThroughBreaker:
    """A `RedisCacheClient` whose every call (get, set, add, delete, incr, ...) runs inside `queues.breaker`."""

    def __init__(self, client: django_redis.RedisCacheClient) -> None:
        self.client = client
        # Its first server (the one written to) names the breaker; this makes no connection.
        self.connection = client.get_client(write=True)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        call = getattr(self.client, name)

        def through_breaker(*args: Any, **kwargs: Any) -> Any:
            with queues.breaker(self.connection):
                return call(*args, **kwargs)

        return through_breaker
