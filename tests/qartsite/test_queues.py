from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker

from qartsite import queues
from tests.conftest import live_queue


def test_it_counts_the_living_workers_on_a_queue_and_not_a_killed_one():
    queue = Queue("queues-count-test", connection=live_queue("default").connection)
    other = Queue("queues-count-other", connection=queue.connection)
    assert queues.workers_on(queue) == 0
    alive = Worker([queue], connection=queue.connection, name="queues-count-alive")
    killed = Worker([queue], connection=queue.connection, name="queues-count-killed")
    elsewhere = Worker([other], connection=queue.connection, name="queues-count-elsewhere")
    for worker in (alive, killed, elsewhere):
        worker.register_birth()
    queue.connection.delete(killed.key)  # its heartbeat expired: killed without a goodbye
    try:
        assert queues.workers_on(queue) == 1
        assert queues.workers_on(other) == 1
    finally:
        alive.register_death()
        elsewhere.register_death()
    assert queues.workers_on(queue) == 0


@pytest.mark.django_db(transaction=True)
def test_a_web_process_answers_within_a_second_while_redis_stalls_then_at_once(team_users, settings, monkeypatch,
                                                                                silent_server, fresh_cache):
    # A stalled Redis (SIGSTOP, a fault drill) held each create 3 s (QART_REDIS_TIMEOUT, no breaker), and a page that
    # waited 3 s held one of gunicorn's two sync workers: short links queued behind it, up to 2.8 s.
    import time

    import django_rq

    from generator import jobs
    from qartsite import web_process
    from qartsite.settings import with_timeouts
    from tests.clients import api_as, logged_in
    from tests.generator.factories import SHORT_LINK

    port, taken = silent_server
    stalled = f"redis://127.0.0.1:{port}/0"
    # The settings as a process started with REDIS_URL naming the stalled server has them
    settings.REDIS_URL, settings.REDIS_QUEUE_URL = stalled, with_timeouts(stalled)
    settings.WEB_REDIS_QUEUE_URL = with_timeouts(stalled, settings.WEB_REDIS_TIMEOUTS)
    for config in django_rq.settings.QUEUES.values():
        monkeypatch.setitem(config, "URL", with_timeouts(stalled))
    web_process.load(lambda: "the application")
    assert django_rq.settings.QUEUES["default"]["URL"].endswith("socket_connect_timeout=1.0&socket_timeout=1.0")

    api = api_as(team_users.owner)
    asked = []
    for _ in range(2):
        started = time.monotonic()
        response = api.post("/api/generations/", {"prompt": "koi", "content": SHORT_LINK}, format="json")
        asked.append(time.monotonic() - started)
        assert response.status_code == 503 and response.json() == {"detail": jobs.QUEUE_UNAVAILABLE}
    assert asked[0] < 1.5 and asked[1] < 0.3, asked  # one wait of a second, then the breaker answers at once
    started = time.monotonic()
    page = logged_in(team_users.owner).get("/generate/")  # the page's asks share the breaker
    assert "the job queue (Redis) cannot be reached right now" in page.content.decode()
    assert time.monotonic() - started < 0.5 and len(taken) == 1


def test_workers_keep_the_longer_redis_waits(settings):
    # Only web processes (`web_process.load`) shorten them: a worker's job end or heartbeat may wait on a busy Redis
    assert settings.RQ_QUEUES["gpu"]["URL"] == settings.REDIS_QUEUE_URL
    assert settings.REDIS_QUEUE_URL.endswith("socket_connect_timeout=2&socket_timeout=3")


def test_a_web_process_waits_on_a_redis_cache_a_second_too(settings, silent_server):
    # With CACHE_URL the rate limits of a create ask Redis too: a stalled one held the create 3 s more
    import time

    from django.core.cache import caches
    from redis.exceptions import RedisError

    port, _ = silent_server
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{port}/0", "OPTIONS": settings.REDIS_TIMEOUTS}}
    queues.limit_web_redis()
    assert settings.REDIS_TIMEOUTS["socket_timeout"] == 3  # the workers' own, unchanged
    started = time.monotonic()
    with pytest.raises(RedisError):
        caches["default"].get("rate")
    assert time.monotonic() - started < 1.5


def test_the_breaker_skips_a_redis_that_did_not_answer_and_not_one_that_refused_a_write(silent_server):
    import time

    from redis import Redis
    from redis.exceptions import RedisError

    port, taken = silent_server
    stalled = Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    with pytest.raises(RedisTimeoutError), queues.breaker(stalled):
        stalled.get("a")
    started = time.monotonic()
    with pytest.raises(queues.RedisSkipped), queues.breaker(stalled):  # any client of that server
        pytest.fail("the block ran")
    assert time.monotonic() - started < 0.1 and len(taken) == 1
    assert issubclass(queues.RedisSkipped, RedisError) and queues.did_not_answer(queues.RedisSkipped())

    full = live_queue("default").connection  # a full Redis answers at once: the next call asks again
    with pytest.raises(OutOfMemoryError), queues.breaker(full):
        raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    with queues.breaker(full):
        assert full.ping()


def test_a_wrong_password_leaves_the_breaker_shut():
    # redis-py's AuthenticationError is a ConnectionError, but Redis answered it in a round trip (1.7 ms here): the
    # breaker skipped a Redis that refuses the password for REDIS_AWAY_FOR, its skip saying it "did not answer".
    from redis.exceptions import AuthenticationError

    wrong = AuthenticationError("invalid username-password pair or user is disabled.")
    refusing = live_queue("default").connection
    with pytest.raises(AuthenticationError), queues.breaker(refusing):
        raise wrong
    assert not queues.redis_outage(refusing).known()
    with queues.breaker(refusing):
        assert refusing.ping()
    assert not queues.did_not_answer(wrong) and queues.why_refused(wrong) == f"refused the password: {wrong}"


def test_a_skip_says_the_pause_in_force_and_what_began_it():
    # The short links' breaker pauses 1 s after a refusal and 5 s after a timeout; the skip said "5 s" after either.
    from campaigns.scan_buffer import REDIS_RETRY_AFTER, REDIS_SILENT_RETRY_AFTER, Outage

    connection = live_queue("default").connection
    for failure, pause, why in [
            (RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), REDIS_RETRY_AFTER,
             "not answering: Error 111"),
            (OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), REDIS_RETRY_AFTER,
             "full, refuses writes: command not allowed"),
            (RedisTimeoutError("Timeout reading from socket"), REDIS_SILENT_RETRY_AFTER,
             "not answering: Timeout reading")]:
        outage = Outage(REDIS_RETRY_AFTER, REDIS_SILENT_RETRY_AFTER)
        outage.begin(failure)
        with pytest.raises(queues.RedisSkipped) as skip, queues.breaker(connection, outage):
            pytest.fail("the block ran")
        assert f"skipped for {pause:g} s after a call failed ({why}" in str(skip.value), skip.value
        assert skip.value.failure is failure
    assert REDIS_RETRY_AFTER != REDIS_SILENT_RETRY_AFTER  # else this test tells nothing


def test_a_skip_by_another_redis_breaker_leaves_this_ones_shut(silent_server):
    # A block of one Redis that also asks another (a webhook test: its mark in the cache, CACHE_URL, then the
    # queue): the other's skip (RedisSkipped, a connection error) opened this one's breaker, though it answered.
    from redis import Redis

    port, _ = silent_server
    stalled = Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    with pytest.raises(RedisTimeoutError), queues.breaker(stalled):
        stalled.get("a")
    answering = live_queue("default").connection
    with pytest.raises(queues.RedisSkipped), queues.breaker(answering), queues.breaker(stalled):
        pytest.fail("the stalled Redis was asked")
    assert not queues.redis_outage(answering).known()
    with queues.breaker(answering):
        assert answering.ping()
