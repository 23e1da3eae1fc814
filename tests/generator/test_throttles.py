from __future__ import annotations

import logging
import threading

import pytest
from django.core.cache import cache

from generator import throttles
from generator.throttles import TeamGenerationThrottle
from qartsite import rates
from tests.conftest import SlowCache


@pytest.fixture(autouse=True)
def _fresh_generation_rate(settings, fresh_cache):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"generations": "50/hour"}}


def concurrently(count: int, action) -> list:
    """Run `action` in `count` threads released together; their results."""
    barrier, results = threading.Barrier(count), []

    def run() -> None:
        barrier.wait()
        results.append(action())

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db
class TestTeamGenerationThrottle:
    def test_it_counts_several_at_once_or_none(self, team_users):
        throttle = TeamGenerationThrottle(team_users.team)
        assert throttle.take(30) and throttle.room() == 20
        assert not throttle.take(21) and throttle.room() == 20
        assert throttle.take(20) and throttle.room() == 0

    def test_it_allows_no_more_than_the_rate_to_concurrent_requests(self, team_users, monkeypatch):
        monkeypatch.setattr(TeamGenerationThrottle, "cache", SlowCache(cache))

        def twenty_singles() -> int:
            return sum(TeamGenerationThrottle(team_users.team).allow_request(None, None) for _ in range(20))

        assert sum(concurrently(8, twenty_singles)) == 50
        assert TeamGenerationThrottle(team_users.team).room() == 0

    def test_it_takes_for_all_of_a_batch_or_none_under_concurrency(self, team_users, monkeypatch):
        monkeypatch.setattr(TeamGenerationThrottle, "cache", SlowCache(cache))
        taken = concurrently(8, lambda: TeamGenerationThrottle(team_users.team).take(20))
        assert sorted(taken) == [False] * 6 + [True] * 2
        assert TeamGenerationThrottle(team_users.team).room() == 10

    def test_it_gives_back_only_its_own_take(self, team_users):
        first, second = TeamGenerationThrottle(team_users.team), TeamGenerationThrottle(team_users.team)
        assert first.take(5) and second.take(7)
        first.give_back()
        first.give_back()  # once only
        assert TeamGenerationThrottle(team_users.team).room() == 43

    def test_it_says_when_a_batch_would_fit(self, team_users, monkeypatch):
        clock = [1000.0]
        monkeypatch.setattr(TeamGenerationThrottle, "timer", lambda self: clock[0])
        for now in (1000.0, 1100.0, 1200.0):
            clock[0] = now
            assert TeamGenerationThrottle(team_users.team).take(16)
        clock[0] = 1300.0
        throttle = TeamGenerationThrottle(team_users.team)
        assert not throttle.take(5)
        assert throttle.wait_for(2) == 0 and throttle.wait_for(3) == 3300.0  # the 16 of 1000 free first
        assert throttle.wait_for(19) == 3400.0 and throttle.wait_for(51) is None

    def test_it_waits_for_a_lock_another_request_holds(self, team_users):
        throttle = TeamGenerationThrottle(team_users.team)
        lock = f"{throttle.get_cache_key(None, None)}:lock"
        assert cache.add(lock, "someone else", 1)  # expires: a lock left behind stops no one for long
        assert throttle.take(1) and throttle.room() == 49
        assert cache.get(lock) is None

    def test_a_lock_that_stays_busy_counts_nothing_and_says_so(self, team_users, monkeypatch):
        monkeypatch.setattr(rates, "LOCK_WAIT", 0.05)
        throttle = TeamGenerationThrottle(team_users.team)
        lock = f"{throttle.get_cache_key(None, None)}:lock"
        assert cache.add(lock, "someone else", 60)
        assert not throttle.take(1) and throttle.busy
        # Not "used up": the budget is untouched, and a retry after the lock's lifetime is advised.
        assert throttle.refusal() == throttles.BUSY and throttle.retry_after() == rates.LOCK_TIMEOUT
        assert throttle.room() == 50
        cache.delete(lock)
        assert throttle.take(1) and not throttle.busy and throttle.room() == 49



@pytest.mark.django_db
class TestCacheAway:
    def test_generations_start_uncounted_rather_than_failing(self, team_users, enqueued, cache_away):
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_authenticate(team_users.owner)
        with cache_away():
            response = client.post("/api/generations/", {"prompt": "koi", "content": "https://a.example/"},
                                   format="json")
        assert response.status_code == 201, response.content  # a 500 before
        assert len(enqueued) == 1

    def test_it_says_so_in_one_line_without_a_traceback(self, team_users, cache_away, caplog):
        # While the cache's Redis hung, each create logged a traceback for a cache it copes without (a fault drill).
        with cache_away(), caplog.at_level(logging.WARNING, logger="generator.throttles"):
            throttle = TeamGenerationThrottle(team_users.team)
            assert throttle.has_room() and throttle.take(1)
        said = [record for record in caplog.records if record.name == "generator.throttles"]
        assert [record.exc_info for record in said] == [None, None]  # not checked, then not counted
        assert all("cannot be reached (" in record.getMessage() for record in said)

    def test_the_throttle_allows_and_gives_back_without_raising(self, team_users, cache_away):
        with cache_away():
            throttle = TeamGenerationThrottle(team_users.team)
            assert throttle.has_room() and throttle.take(3) and not throttle.busy
            throttle.give_back()


@pytest.mark.django_db
def test_a_count_that_could_not_be_read_is_not_overwritten(team_users, monkeypatch):
    # A read that timed out and a write that worked would have replaced the team's history by this one job.
    from redis.exceptions import TimeoutError as RedisTimeoutError

    throttle = TeamGenerationThrottle(team_users.team)
    assert throttle.take(2)
    written = []
    monkeypatch.setattr(type(throttle.cache), "get", lambda self, *a, **k: (_ for _ in ()).throw(
        RedisTimeoutError("Timeout reading from socket")), raising=False)
    monkeypatch.setattr(type(throttle.cache), "set", lambda self, *a, **k: written.append(a), raising=False)
    assert TeamGenerationThrottle(team_users.team).take(1)  # started uncounted
    assert written == []
