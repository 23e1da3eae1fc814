"""Database calls given a time limit (`qartsite.db_threads`)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import DatabaseError, connection

from qartsite.db_threads import DatabaseThreads, TimedOut
from qartsite.models import Team

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def threads():
    pool = DatabaseThreads(count=1, name="test-db-call")
    yield pool
    pool.stop()


def test_it_answers_the_calls_result_or_its_exception(threads):
    Team.objects.create(name="Harbour")
    assert threads.call(lambda: list(Team.objects.values_list("name", flat=True)), timeout=5) == ["Harbour"]

    def fails():
        raise DatabaseError("relation does not exist")

    with pytest.raises(DatabaseError, match="does not exist"):
        threads.call(fails, timeout=5)


def test_it_keeps_its_threads_connection_between_calls(threads):
    def connection_id():
        Team.objects.exists()
        return id(connection.connection)

    assert threads.call(connection_id, timeout=5) == threads.call(connection_id, timeout=5)


def test_a_call_that_does_not_answer_in_time_times_out_and_a_waiting_one_is_dropped(threads):
    release, ran = threading.Event(), []
    started = time.monotonic()
    with pytest.raises(TimedOut):
        threads.call(release.wait, 10, timeout=0.2)
    assert time.monotonic() - started < 1
    with pytest.raises(TimedOut):
        threads.call(ran.append, "late", timeout=0.2)  # queued behind the stuck one
    release.set()
    assert threads.call(lambda: "next", timeout=5) == "next"
    assert ran == []  # its caller had stopped waiting: never run
