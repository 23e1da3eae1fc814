"""Drill: the generation worker SIGKILLed in the middle of a job (the tiny model), then a fresh worker.

Real processes: a redis-server of the drill's own and RQ workers on the tiny model. The first worker is killed while
it draws the candidates: its lease (LEASE_TTL) and RQ's heartbeat of the job (about 95 s) then keep the job looking
held until they expire, which the drill fast-forwards (it expires both in Redis, as time would) instead of waiting
minutes. The reconciler's pass has RQ's cleanup retry the job; the job's page says so; a fresh worker finishes it once,
with its candidates made once. A job killed on its last attempt is failed, its page saying why in plain words.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import django_rq
import pytest
from django.test import Client

from generator import jobs, reconcile
from generator.models import Candidate, GenerationJob, Prompt

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the worker process reads committed rows

CANDIDATES = 2


def make_job(owner, team, attempts: int = 0) -> GenerationJob:
    """A job of 12 steps (a few seconds on the tiny model) that has run `attempts` times, queued with the RQ retries
    left to it (as the reconciler queues a job again)."""
    job = GenerationJob.objects.create(owner=owner, team=team, prompt=Prompt.remember(owner, "a harbour at night", ""),
                                       content="https://qart.example/r/AbC123", steps=12, size=256,
                                       candidates_per_batch=CANDIDATES, max_batches=1, seed=7, attempts=attempts)
    # outside a transaction block on_commit runs at once
    jobs.enqueue_generation(job, retries=reconcile.MAX_ATTEMPTS - 1 - attempts)
    return job


def wait_for(job: GenerationJob, done, worker, seconds: float = 120) -> GenerationJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if done(job):
            return job
        assert worker.poll() is None, Path(worker.log_path).read_text()[-3000:]
        time.sleep(0.05)
    raise AssertionError(f"job {job.pk} still {job.status} {job.stage} after {seconds} s:\n"
                         f"{Path(worker.log_path).read_text()[-3000:]}")


def killed_mid_job(job: GenerationJob, start_worker, redis_url: str) -> None:
    """Start a worker, kill it (SIGKILL) once it draws the job's candidates, and let the time it leaves behind pass."""
    worker = start_worker(REDIS_URL=redis_url)
    wait_for(job, lambda row: row.stage == "generating" and row.progress > 0, worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    job.refresh_from_db()
    assert job.status == "running" and job.candidates.count() == 0
    # What LEASE_TTL and RQ's heartbeat TTL do by themselves within about 95 s: the lease and the job's entry in RQ's
    # started registry expire.
    queue = django_rq.get_queue(jobs.QUEUE)
    queue.connection.delete(reconcile.LEASE_PREFIX + job.rq_job_id)
    registry = queue.started_job_registry
    entries = [f"{job_id}:{execution}" for job_id, execution in registry.get_job_and_execution_ids(cleanup=False)
               if job_id == job.rq_job_id]
    assert entries, "RQ has no record of the killed worker's run"
    queue.connection.zadd(registry.key, dict.fromkeys(entries, 0), xx=True)


@pytest.mark.worker
def test_a_job_whose_worker_was_killed_is_retried_and_finished_once_by_a_fresh_worker(redis_server, start_worker,
                                                                                        team_users, monkeypatch):
    # This process's `gpu` queue is the drill's Redis (django-rq reads the URL on every get_queue).
    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", redis_server.url)
    job = make_job(team_users.owner, team_users.team)

    # 1. The worker dies mid-job; the reconciler's pass has RQ retry it, and the page says so.
    killed_mid_job(job, start_worker, redis_server.url)
    reconcile.reconcile_jobs(grace=0)
    job.refresh_from_db()
    assert job.status == "queued" and job.stage == "retrying" and job.attempts == 1
    client = Client()
    client.force_login(team_users.owner)
    state = client.get(f"/generate/jobs/{job.pk}/status.json").json()
    assert state["stage_label"] == "Retrying after the worker stopped", state

    # 2. A fresh worker finishes it, once.
    fresh = start_worker(burst=True, REDIS_URL=redis_server.url)
    assert fresh.wait(timeout=300) == 0, Path(fresh.log_path).read_text()[-3000:]
    job.refresh_from_db()
    assert job.status == "done" and job.attempts == 2, job.error
    made = list(Candidate.objects.filter(job=job).values_list("batch", "index"))
    assert len(made) == len(set(made)) == CANDIDATES


@pytest.mark.worker
def test_a_job_whose_worker_was_killed_on_its_last_attempt_fails_saying_so(redis_server, start_worker, team_users,
                                                                           monkeypatch):
    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", redis_server.url)
    job = make_job(team_users.owner, team_users.team, attempts=reconcile.MAX_ATTEMPTS - 1)  # no retry left
    killed_mid_job(job, start_worker, redis_server.url)
    reconcile.reconcile_jobs(grace=0)
    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == reconcile.MAX_ATTEMPTS and job.candidates.count() == 0
    assert job.error.startswith("The worker running this job stopped unexpectedly"), job.error
    client = Client()
    client.force_login(team_users.owner)
    page = client.get(f"/generate/jobs/{job.pk}/").content.decode()
    assert job.error in page and "Traceback" not in page
