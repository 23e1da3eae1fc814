"""RQ's registry cleaning lock (generator.cleaning) against the real Redis the suite runs on."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from rq import Queue

from generator import cleaning

LOCKS = ("import sys, time; from redis import Redis; from rq import Queue; from generator import cleaning; "
         "print(cleaning.acquire(Queue(sys.argv[1], connection=Redis.from_url(sys.argv[2]))), flush=True); "
         "time.sleep(60)")


def cleaner(queue) -> subprocess.Popen:
    """A process of this host that holds `queue`'s cleaning lock (as a worker while it cleans)."""
    url = "redis://{host}:{port}/{db}".format(**queue.connection.connection_pool.connection_kwargs)
    process = subprocess.Popen([sys.executable, "-c", LOCKS, queue.name, url], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() not in ("", "None")
    return process


def test_it_takes_over_the_lock_of_a_cleaner_that_was_killed(gpu_queue):
    process = cleaner(gpu_queue)
    assert cleaning.acquire(gpu_queue) is None  # alive (however slow): its lock
    process.send_signal(signal.SIGKILL)
    process.wait()
    token = cleaning.acquire(gpu_queue)  # gone: RQ's lock had stopped every cleaning for 899 s
    assert token and gpu_queue.connection.get(gpu_queue.registry_cleaning_key).decode() == token
    assert 0 < gpu_queue.connection.ttl(gpu_queue.registry_cleaning_key) <= cleaning.CLEANING_TTL
    cleaning.release(gpu_queue, token)
    assert not gpu_queue.connection.exists(gpu_queue.registry_cleaning_key)


def test_it_leaves_a_lock_it_cannot_tell_is_gone(gpu_queue):
    assert gpu_queue.acquire_maintenance_lock()  # RQ's own (another worker class): "1", no holder named
    assert cleaning.acquire(gpu_queue) is None and not cleaning.clean_started(gpu_queue)


def test_it_releases_only_its_own_lock(gpu_queue):
    token = cleaning.acquire(gpu_queue)
    assert token and cleaning.acquire(gpu_queue) is None  # a second cleaning of this process waits too
    gpu_queue.connection.delete(gpu_queue.registry_cleaning_key)  # expired: a slow cleaning, and another took it
    other = cleaning.acquire(gpu_queue)
    cleaning.release(gpu_queue, token)
    assert gpu_queue.connection.get(gpu_queue.registry_cleaning_key).decode() == other


def test_it_drops_from_the_intermediate_list_only_the_ids_whose_record_is_gone(gpu_queue):
    # Every job there that has its record is `claims.put_back_taken`'s; one whose record is gone no look puts back.
    kept, deleted = gpu_queue.enqueue("time.sleep", 0), gpu_queue.enqueue("time.sleep", 0)
    for _ in range(2):  # a worker's first step, each: the job moved out of the queue into the intermediate list
        Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    gpu_queue.connection.delete(deleted.key)
    assert cleaning.drop_recordless(gpu_queue) == [deleted.id]
    assert gpu_queue.intermediate_queue.get_job_ids() == [kept.id] and gpu_queue.count == 0


@pytest.fixture(autouse=True)
def _unlocked(gpu_queue):
    yield
    gpu_queue.connection.delete(gpu_queue.registry_cleaning_key)
