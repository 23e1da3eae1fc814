"""Django's Redis cache through the queues' breaker (`qartsite.redis_cache`): the backend settings.CACHES names when
CACHE_URL is set."""

from __future__ import annotations

import time

import pytest
from django.core.cache import caches
from redis.exceptions import RedisError

from qartsite import queues
from tests.conftest import live_queue


def redis_cache(settings, url: str) -> None:
    """Django's cache, as settings.py makes it from CACHE_URL=`url`, in a web process (`WEB_REDIS_TIMEOUTS`)."""
    settings.CACHES = {"default": {"BACKEND": "qartsite.redis_cache.RedisCache", "LOCATION": url,
                                   "OPTIONS": settings.WEB_REDIS_TIMEOUTS}}


def test_a_stalled_cache_is_waited_for_once_then_skipped_at_once(settings, silent_server):
    # Each caller goes on without a cache it cannot reach, but a stalled Redis made each call wait the web timeout
    # first: a create asks the cache four to six times (its rate, under a lock; an Idempotency-Key).
    port, taken = silent_server
    redis_cache(settings, f"redis://127.0.0.1:{port}/1")
    cache = caches["default"]
    started = time.monotonic()
    with pytest.raises(RedisError):
        cache.get("rate")
    first = time.monotonic() - started
    started = time.monotonic()
    for call in (lambda: cache.add("lock", "token", 5), lambda: cache.set("rate", [1]), lambda: cache.get("rate"),
                 lambda: cache.delete("lock"), lambda: cache.incr("count")):
        with pytest.raises(queues.RedisSkipped):
            call()
    others = time.monotonic() - started
    assert first < 1.5 and others < 0.1, (first, others)
    assert len(taken) == 1


def test_the_queues_breaker_skips_the_cache_of_the_same_server(settings, silent_server):
    # One server, two databases (CACHE_URL=redis://host:6379/1, the queues' /0): a stall holds both
    from redis import Redis

    port, taken = silent_server
    queue = Redis(host="127.0.0.1", port=port, db=0, socket_timeout=0.5)
    with pytest.raises(RedisError), queues.breaker(queue):
        queue.get("queue")
    redis_cache(settings, f"redis://127.0.0.1:{port}/1")
    with pytest.raises(queues.RedisSkipped):
        caches["default"].get("rate")
    assert len(taken) == 1


def test_a_cache_that_answers_works_through_the_breaker(settings):
    live_queue("default")  # skipped without the Redis the suite runs against
    redis_cache(settings, settings.REDIS_URL)
    cache = caches["default"]
    key = f"qart-test-cache-{time.monotonic_ns()}"
    try:
        assert cache.add(key, {"state": "running"}, 30) and not cache.add(key, {"state": "other"}, 30)
        assert cache.get(key) == {"state": "running"}
        assert cache.get_many([key, "missing"]) == {key: {"state": "running"}}
        cache.set(key, 1, 30)
        assert cache.incr(key) == 2
    finally:
        cache.delete(key)
    assert cache.get(key) is None
