"""Drill: Redis full (maxmemory below its use, noeviction): it answers reads and PING and refuses every write.

Real processes: a redis-server of the drill's own and an RQ worker on the tiny model. Redis fills up while a job
runs: the job ends (its row says done) though RQ cannot record that, the worker waits instead of quitting, a
generation asked meanwhile is refused with nothing made, and once Redis has room the worker takes the queued job.
"""

from __future__ import annotations

import time
from pathlib import Path

import django_rq
import pytest
from django.contrib.auth import get_user_model

from generator import jobs
from generator.models import GenerationJob, Prompt

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the worker process reads committed rows


def make_job(steps: int) -> GenerationJob:
    user, _ = get_user_model().objects.get_or_create(username="maker")
    job = GenerationJob.objects.create(owner=user, prompt=Prompt.remember(user, "a harbour at night", ""),
                                       content="https://qart.example/r/AbC123", steps=steps, size=256,
                                       candidates_per_batch=2, max_batches=1, seed=7)
    jobs.enqueue_generation(job)  # outside a transaction block on_commit runs at once
    return job


def wait_for(job: GenerationJob, statuses: set[str], worker, seconds: float = 120) -> GenerationJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in statuses:
            return job
        assert worker.poll() is None, Path(worker.log_path).read_text()[-3000:]
        time.sleep(0.2)
    log = Path(worker.log_path).read_text()[-3000:]
    raise AssertionError(f"job {job.pk} still {job.status} after {seconds} s:\n{log}")


@pytest.mark.worker
def test_a_worker_waits_out_a_full_redis_and_nothing_is_made_meanwhile(redis_server, start_worker, monkeypatch):
    # This process's `gpu` queue is the drill's Redis (django-rq reads the URL on every get_queue).
    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", redis_server.url)
    connection = django_rq.get_queue(jobs.QUEUE).connection
    running, waiting = make_job(steps=16), make_job(steps=2)
    worker = start_worker(REDIS_URL=redis_server.url)

    # 1. Redis fills up while the first job runs; the job ends meanwhile.
    wait_for(running, {"running", "scoring"}, worker)
    connection.config_set("maxmemory-policy", "noeviction")
    connection.config_set("maxmemory", "1")  # below any use: every write is refused
    assert jobs.queue_refusal() == jobs.QUEUE_UNAVAILABLE  # a PING would have answered
    assert wait_for(running, {"done", "failed"}, worker).status == "done"
    time.sleep(2)  # the worker meets the full Redis at the job's end and in its wait for the next
    assert worker.poll() is None, Path(worker.log_path).read_text()[-3000:]

    # 2. Room again: the worker takes the queued job.
    connection.config_set("maxmemory", "0")
    assert wait_for(waiting, {"done", "failed"}, worker).status == "done"
    log = Path(worker.log_path).read_text()
    assert "maxmemory" in log and "quitting" not in log and "Traceback" not in log


@pytest.mark.worker
def test_a_worker_started_while_redis_is_full_waits_to_register_then_takes_the_queued_job(redis_server, start_worker,
                                                                                           monkeypatch):
    # Started while Redis was full, a worker exited 1 at its registration (an OutOfMemoryError traceback): nothing
    # took the queue until someone started it again.
    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", redis_server.url)
    connection = django_rq.get_queue(jobs.QUEUE).connection
    waiting = make_job(steps=2)
    connection.config_set("maxmemory-policy", "noeviction")
    connection.config_set("maxmemory", "1")
    worker = start_worker(REDIS_URL=redis_server.url)

    # 1. It loads its engine, then waits for Redis to take its registration, saying why.
    deadline = time.monotonic() + 120
    while "Redis did not take its registration" not in Path(worker.log_path).read_text():
        assert worker.poll() is None and time.monotonic() < deadline, Path(worker.log_path).read_text()[-3000:]
        time.sleep(0.2)
    time.sleep(3)
    assert worker.poll() is None, Path(worker.log_path).read_text()[-3000:]

    # 2. Room again: it registers and takes the queued job.
    connection.config_set("maxmemory", "0")
    assert wait_for(waiting, {"done", "failed"}, worker).status == "done"
    log = Path(worker.log_path).read_text()
    assert "full, refuses writes" in log and "Traceback" not in log
