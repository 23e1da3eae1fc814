"""Drill: the generation worker SIGKILLed in the middle of a job (the tiny model), or between taking it off the queue
and leasing it, with a worker beside it or a fresh one started after it, all on this host.

Real processes: a redis-server of the drill's own and RQ workers on the tiny model. The first worker is killed while
it draws the candidates. Its lease names its process (`processes.process_token`), which every process of this host can
see is gone: the reconciler's pass, a worker beside it (idle: within `reconcile.RECLAIM_EVERY` seconds), or a worker
started after it (at its start) marks the job abandoned at once, and RQ's cleanup retries it, or fails it on its last
attempt. Before, the job waited for its lease and RQ's heartbeat of it to expire (about 95 s) and for the next pass
(up to 60 s more): two and a half minutes of "generating". A worker that is alive, however slow, keeps its job. The job
is finished once, its candidates made once. A killed worker leaves the generation page's "1 CPU worker ready" at once
for a reader on its host (its report names its process), within seconds (`engine_status.REPORT_TTL`) for one elsewhere.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import django_rq
import pytest
from django.test import Client
from rq.job import Job
from rq.worker import Worker

from generator import claims, engine_status, jobs, reconcile
from generator.models import Candidate, GenerationJob, Prompt
from tests.drills.worker_jobs import wait_for

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the worker process reads committed rows

CANDIDATES = 2
# Seconds from the kill to the job's retry (or failure) with a worker of this host idle or starting: it looks every
# RECLAIM_EVERY seconds, or at its start; the rest is slack for a loaded CI machine. It took 60 to 150 s before.
RETRIED_WITHIN = 4 * reconcile.RECLAIM_EVERY


def make_job(owner, team, attempts: int = 0, steps: int = 12) -> GenerationJob:
    """A job of `steps` steps (12: a few seconds on the tiny model) that has run `attempts` times, queued with the RQ
    retries left to it (as the reconciler queues a job again)."""
    job = GenerationJob.objects.create(owner=owner, team=team, prompt=Prompt.remember(owner, "a harbour at night", ""),
                                       content="https://qart.example/r/AbC123", steps=steps, size=256,
                                       candidates_per_batch=CANDIDATES, max_batches=1, seed=7, attempts=attempts)
    # outside a transaction block on_commit runs at once
    jobs.enqueue_generation(job, retries=reconcile.MAX_ATTEMPTS - 1 - attempts)
    return job


def killed_mid_job(job: GenerationJob, worker: subprocess.Popen) -> None:
    """Kill (SIGKILL) `worker` once it draws the job's candidates."""
    wait_for(job, lambda row: row.stage == "generating" and row.progress > 0, worker)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    job.refresh_from_db()
    assert job.status == "running" and job.candidates.count() == 0


def idle(workers: list[subprocess.Popen], seconds: float = 120) -> None:
    """Wait until every one of `workers` waits on the queue (its engine loaded)."""
    queue, deadline, states = django_rq.get_queue(jobs.QUEUE), time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        states = [worker.get_state() for worker in Worker.all(queue=queue)]
        if states == ["idle"] * len(workers):
            return
        for worker in workers:
            assert worker.poll() is None, Path(worker.log_path).read_text()[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"workers not idle after {seconds} s: {states}")


def running(job: GenerationJob, workers: list[subprocess.Popen]) -> tuple[subprocess.Popen, subprocess.Popen]:
    """(the one of two `workers` that runs `job`, the other), by the pid RQ records of the worker it names."""
    wait_for(job, lambda row: row.status == "running", workers[0])
    connection = django_rq.get_queue(jobs.QUEUE).connection
    name = Job.fetch(job.rq_job_id, connection=connection).worker_name
    pid = int(connection.hget(Worker.redis_worker_namespace_prefix + name, "pid"))
    [holder] = [worker for worker in workers if worker.pid == pid]
    return holder, next(worker for worker in workers if worker is not holder)


def finished_once(job: GenerationJob, attempts: int) -> None:
    job.refresh_from_db()
    assert job.status == "done" and job.attempts == attempts, job.error
    made = list(Candidate.objects.filter(job=job).values_list("batch", "index"))
    assert len(made) == len(set(made)) == CANDIDATES


@pytest.fixture
def drill_queue(redis_server, monkeypatch):
    # This process's `gpu` queue is the drill's Redis (django-rq reads the URL on every get_queue).
    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", redis_server.url)
    return redis_server.url


@pytest.mark.worker
def test_a_job_whose_worker_was_killed_is_retried_at_the_next_pass_and_finished_once(drill_queue, start_worker,
                                                                                      team_users):
    job = make_job(team_users.owner, team_users.team)

    # 1. The worker dies mid-job; the reconciler's next pass on this host (its default grace) has RQ retry it at once,
    # and the page says so. Its lease had kept it "running" for a minute and a half.
    killed_mid_job(job, start_worker(REDIS_URL=drill_queue))
    assert reconcile.reconcile_jobs().requeued == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and job.stage == "retrying" and job.attempts == 1
    client = Client()
    client.force_login(team_users.owner)
    state = client.get(f"/generate/jobs/{job.pk}/status.json").json()
    assert state["stage_label"] == "Retrying after the worker stopped", state

    # 2. A fresh worker finishes it, once.
    fresh = start_worker(burst=True, REDIS_URL=drill_queue)
    assert fresh.wait(timeout=300) == 0, Path(fresh.log_path).read_text()[-3000:]
    finished_once(job, attempts=2)


@pytest.mark.worker
def test_a_job_whose_worker_was_killed_is_retried_within_seconds_by_the_idle_worker_beside_it(drill_queue,
                                                                                             start_worker, team_users):
    workers = [start_worker(REDIS_URL=drill_queue) for _ in range(2)]
    idle(workers)
    job = make_job(team_users.owner, team_users.team)
    killed, beside = running(job, workers)
    killed_mid_job(job, killed)
    wait_for(job, lambda row: row.attempts == 2 or row.status != "running", beside, seconds=RETRIED_WITHIN)
    wait_for(job, lambda row: row.status == "done", beside)
    finished_once(job, attempts=2)


@pytest.mark.worker
def test_a_job_whose_worker_is_alive_but_silent_is_left_to_it(drill_queue, start_worker, team_users):
    # A long first model load, a loaded GPU: here the worker frozen (SIGSTOP) for longer than the worker beside it
    # takes to look twice. Its process is there: the job is not taken from it, and it finishes it itself.
    workers = [start_worker(REDIS_URL=drill_queue) for _ in range(2)]
    idle(workers)
    job = make_job(team_users.owner, team_users.team, steps=60)  # still running when it is frozen
    holder, beside = running(job, workers)
    holder.send_signal(signal.SIGSTOP)
    try:
        time.sleep(2.5 * reconcile.RECLAIM_EVERY)
        job.refresh_from_db()
        assert job.status == "running" and job.attempts == 1 and beside.poll() is None
    finally:
        holder.send_signal(signal.SIGCONT)
    wait_for(job, lambda row: row.status == "done", holder)
    finished_once(job, attempts=1)


@pytest.mark.worker
def test_a_job_whose_worker_was_killed_on_its_last_attempt_fails_saying_so_once_a_worker_starts_again(
        drill_queue, start_worker, team_users):
    job = make_job(team_users.owner, team_users.team, attempts=reconcile.MAX_ATTEMPTS - 1)  # no retry left
    killed_mid_job(job, start_worker(REDIS_URL=drill_queue))
    # Its service manager starts it again: at its start, before its engine loads, it finds the job its predecessor ran.
    wait_for(job, lambda row: row.status == "failed", start_worker(REDIS_URL=drill_queue), seconds=RETRIED_WITHIN)
    job.refresh_from_db()
    assert job.attempts == reconcile.MAX_ATTEMPTS and job.candidates.count() == 0
    assert job.error.startswith("The worker running this job stopped unexpectedly"), job.error
    client = Client()
    client.force_login(team_users.owner)
    page = client.get(f"/generate/jobs/{job.pk}/").content.decode()
    assert job.error in page and "Traceback" not in page


@pytest.mark.worker
def test_a_killed_worker_leaves_the_generation_page_at_once_here_and_within_seconds_elsewhere(
        drill_queue, start_worker, team_users, monkeypatch):
    # Its report said "1 GPU worker ready" for 60 to 90 s after a SIGKILL (it lived 90 s), and marketers submitted to
    # a worker that was gone.
    killed = start_worker(REDIS_URL=drill_queue)
    idle([killed])
    client = Client()
    client.force_login(team_users.owner)
    assert "1 CPU worker ready" in client.get("/generate/").content.decode()
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert engine_status.live_workers() == []  # this host sees its process gone
    assert "No generation worker is running" in client.get("/generate/").content.decode()
    # A web process on another host (or container) cannot see its process: its report lapses within REPORT_TTL.
    monkeypatch.setattr(engine_status, "holder_gone", lambda token: False)
    assert [report.state for report in engine_status.live_workers()] == ["ready"]
    deadline = time.monotonic() + 20  # REPORT_TTL and slack for a loaded CI machine
    while engine_status.live_workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert engine_status.live_workers() == []



@pytest.mark.worker
def test_a_job_whose_worker_was_killed_before_it_leased_it_runs_within_seconds_its_attempt_not_spent(
        drill_queue, start_worker, team_users):
    # RQ takes a job in two steps; a worker killed between the first (the job out of the queue) and its lease left the
    # job to RQ's maintenance, which failed it a minute or two later, spending its retry. Here the worker waits on the
    # queue, frozen: Redis hands it the job (its first step, done by Redis for a waiting worker) and it is killed
    # before it can read it. A fresh worker, started after it, runs the job.
    killed = start_worker(REDIS_URL=drill_queue)
    idle([killed])
    killed.send_signal(signal.SIGSTOP)
    job = make_job(team_users.owner, team_users.team)
    queue = django_rq.get_queue(jobs.QUEUE)
    deadline = time.monotonic() + 10
    while queue.intermediate_queue.get_job_ids() != [jobs.rq_job_id(job.pk)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queue.intermediate_queue.get_job_ids() == [jobs.rq_job_id(job.pk)] and queue.count == 0
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    killed_at = time.monotonic()
    fresh = start_worker(REDIS_URL=drill_queue)
    wait_for(job, lambda row: row.status != "queued", fresh, seconds=claims.TAKE_GRACE + RETRIED_WITHIN)
    print(f"started again {time.monotonic() - killed_at:.1f} s after its worker was killed")
    wait_for(job, lambda row: row.status == "done", fresh)
    finished_once(job, attempts=1)
