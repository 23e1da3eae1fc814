"""Drill: Redis restarted without its data while generation jobs wait in the queue.

Real processes: a redis-server of the drill's own (no persistence) restarted with jobs queued and no worker running,
then the reconciler (`generator.reconcile`), then a burst RQ worker on the tiny model. The queued jobs are queued again
and finish; a job whose worker died with the restart on its last attempt fails with the reason; a cancel, while Redis
is away or after it came back empty, ends its job at once.
"""

from __future__ import annotations

from pathlib import Path

import django_rq
import pytest
from django.contrib.auth import get_user_model

from generator import jobs, reconcile
from generator.models import GenerationJob, Prompt

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the worker process reads committed rows


def make_job() -> GenerationJob:
    user, _ = get_user_model().objects.get_or_create(username="maker")
    job = GenerationJob.objects.create(owner=user, prompt=Prompt.remember(user, "a harbour at night", ""),
                                       content="https://qart.example/r/AbC123", steps=2, size=256,
                                       candidates_per_batch=2, max_batches=1, seed=7)
    jobs.enqueue_generation(job)  # outside a transaction block on_commit runs at once
    job.refresh_from_db()
    return job


@pytest.mark.worker
def test_jobs_redis_lost_are_queued_again_and_finish_and_cancels_end_at_once(redis_server, start_worker,
                                                                              monkeypatch):
    # This process's `gpu` queue is the drill's Redis (django-rq reads the URL on every get_queue).
    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", redis_server.url)
    queue = django_rq.get_queue(jobs.QUEUE)

    # 1. Jobs in the queue, one on the last attempt of a worker that dies with Redis; then Redis goes away.
    waiting = [make_job(), make_job()]
    on_last_attempt, cancelled_while_away, cancelled_after = make_job(), make_job(), make_job()
    GenerationJob.objects.filter(pk=on_last_attempt.pk).update(status="running", stage="generating", attempts=2)
    assert queue.count == 5
    redis_server.stop()
    jobs.request_cancel(cancelled_while_away)

    # 2. Redis is back, empty; a cancel and the reconciler.
    redis_server.start()
    assert queue.count == 0
    jobs.request_cancel(cancelled_after)
    done = reconcile.reconcile_jobs(grace=0)
    assert done.requeued == [job.pk for job in waiting] and done.failed == [on_last_attempt.pk]
    assert queue.count == 2

    # 3. A worker finishes the jobs queued again.
    worker = start_worker(burst=True, REDIS_URL=redis_server.url)
    assert worker.wait(timeout=300) == 0, Path(worker.log_path).read_text()[-3000:]
    for job in waiting:
        job.refresh_from_db()
        assert job.status == "done" and job.attempts == 1, job.error
        assert job.candidates.count() == 2
    on_last_attempt.refresh_from_db()
    assert on_last_attempt.status == "failed" and "on its last attempt" in on_last_attempt.error
    for job in (cancelled_while_away, cancelled_after):
        job.refresh_from_db()
        assert job.status == "cancelled" and job.finished is not None and job.candidates.count() == 0
