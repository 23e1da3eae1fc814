"""The reconciler (generator.reconcile) against the real Redis the suite runs on: each way a job can be orphaned."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from rq import Queue
from rq.job import Job, JobStatus
from rq.utils import now as rq_now
from rq.worker_registration import unregister

from generator import jobs, leases, processes, reconcile
from generator.models import GenerationJob, Prompt
from generator.worker import GenerationWorker

pytestmark = pytest.mark.django_db(transaction=True)  # re-queueing enqueues on commit


@pytest.fixture
def queue(gpu_queue):
    """The `gpu` queue, with no reconciler memory or lock left by an earlier test or worker."""
    keys = (reconcile.ORPHANS_KEY, reconcile.LOCK_KEY)
    gpu_queue.connection.delete(*keys)
    yield gpu_queue
    gpu_queue.connection.delete(*keys)
    for prefix in (leases.LEASE_PREFIX, leases.HOLDER_PREFIX, leases.HEARD_PREFIX):
        for key in gpu_queue.connection.scan_iter(match=prefix + "qart-generation-*"):
            gpu_queue.connection.delete(key)


def make_row(enqueue: bool = False, **fields) -> GenerationJob:
    user, _ = get_user_model().objects.get_or_create(username="maker")
    job = GenerationJob.objects.create(owner=user, prompt=Prompt.remember(user, "a lighthouse", ""),
                                       content="https://qart.example/r/AbC123", steps=2, size=256, **fields)
    if enqueue:
        jobs.enqueue_generation(job)  # outside a transaction block on_commit runs at once
    job.refresh_from_db()
    return job


def lost(queue, **fields) -> GenerationJob:
    """A row whose RQ job Redis no longer holds (as after a restart without persistence)."""
    job = make_row(enqueue=True, **fields)
    forget(queue, job)
    return job


def forget(queue, job: GenerationJob) -> None:
    """Redis restarted without its data: `job`'s RQ job is gone."""
    queue.remove(job.rq_job_id)
    queue.connection.delete(Job.key_for(job.rq_job_id))


@pytest.fixture
def worker(queue):
    """A GenerationWorker registered as RQ's work() registers one, taking no jobs by itself."""
    worker = GenerationWorker([queue], connection=queue.connection)
    worker.register_birth()
    yield worker
    unregister(worker)
    queue.connection.delete(worker.key, queue.started_job_registry.key)


def taken_by(worker, queue) -> GenerationJob:
    """A running row whose RQ job `worker` took, as RQ records it."""
    job = make_row(enqueue=True)
    rq_job, _ = Queue.dequeue_any([queue], timeout=None, connection=queue.connection)
    worker.prepare_execution(rq_job)
    worker.prepare_job_execution(rq_job)
    GenerationJob.objects.filter(pk=job.pk).update(status="running", stage="generating", attempts=1)
    job.refresh_from_db()
    return job


def test_a_queued_job_redis_lost_is_queued_again_once(queue):
    job = lost(queue)
    done = reconcile.reconcile_jobs(grace=0)
    assert done.requeued == [job.pk] and str(done) == f"Jobs re-queued #{job.pk}."
    job.refresh_from_db()
    assert job.status == "queued" and job.stage == reconcile.REQUEUED
    rq_job = queue.fetch_job(job.rq_job_id)
    assert rq_job.get_status() == JobStatus.QUEUED and rq_job.retries_left == 1  # its first run has not happened
    assert queue.count == 1


def test_a_job_redis_loses_again_after_it_was_queued_again_fails_with_the_reason(queue):
    job = lost(queue)
    reconcile.reconcile_jobs(grace=0)
    queue.remove(job.rq_job_id)  # Redis restarted again
    queue.connection.delete(Job.key_for(job.rq_job_id))
    done = reconcile.reconcile_jobs(grace=0)
    assert done.failed == [job.pk] and not done.requeued
    job.refresh_from_db()
    assert job.status == "failed" and job.finished is not None
    assert job.error == ("The job queue lost this job twice (Redis restarted or was emptied); "
                         "it had been re-queued once.")


def test_after_a_deliberate_stop_a_waiting_job_is_queued_again_however_often_it_was_lost(queue):
    # make run's Redis keeps nothing: a job waiting behind another was failed at the second Ctrl-C ("The job queue lost
    # this job twice") though it never ran.
    job = lost(queue)
    for _ in range(3):
        assert reconcile.reconcile_jobs(grace=0, after_stop=True).requeued == [job.pk]
        forget(queue, job)
    job.refresh_from_db()
    assert (job.status, job.stage, job.attempts) == ("queued", reconcile.REQUEUED, 0)
    # A row left running still spends its attempt (its worker may have been killed, not stopped), once nothing has
    # held it for the grace period (`test_after_a_deliberate_stop_a_job_a_worker_elsewhere_runs_is_left_to_it`)
    running = lost(queue, status="running", stage="generating", attempts=2)
    assert reconcile.reconcile_jobs(grace=0, after_stop=True).orphaned == [running.pk]
    queue.connection.hset(reconcile.ORPHANS_KEY, running.pk, time.time() - reconcile.GRACE - 1)
    assert reconcile.reconcile_jobs().failed == [running.pk]  # the workers' reconciler, the grace period later


def test_after_a_deliberate_stop_a_job_a_worker_elsewhere_runs_is_left_to_it(queue):
    # Two hosts, one database: `make run` on the web host started its Redis anew (run.sh's --requeue) while the GPU
    # host's worker ran a job. The job was queued again at once and ran twice (or, on its last attempt, failed while
    # it ran): its lease had been in the Redis that was gone.
    running = lost(queue, status="running", stage="generating", attempts=1)
    last_try = lost(queue, status="scoring", stage="scoring", attempts=2)
    done = reconcile.reconcile_jobs(grace=0, after_stop=True)
    assert done.orphaned == [running.pk, last_try.pk] and not done.requeued and not done.failed
    assert queue.count == 0
    for job in (running, last_try):  # the worker's next renewal, within RENEWAL seconds of Redis coming back
        leases.hold(queue.connection, job.rq_job_id, "gpu-host-worker")
    queue.connection.hset(reconcile.ORPHANS_KEY, mapping=dict.fromkeys((running.pk, last_try.pk),
                                                                       time.time() - reconcile.GRACE - 1))
    assert not reconcile.reconcile_jobs()  # the workers' reconciler, the grace period later: held, left alone
    assert [(job.status, job.attempts) for job in GenerationJob.objects.order_by("pk")] == [("running", 1),
                                                                                          ("scoring", 2)]


def test_a_job_make_runs_stop_interrupts_twice_keeps_its_attempts(queue, worker, cold_stops):
    # make run's Ctrl-C: the worker's cold shut down interrupts the job, then its Redis (which keeps nothing) stops,
    # and the next start queues again what the stop lost (`scripts/run_prepare.py --requeue`). Stopped twice during
    # one job, the job failed: "The worker was stopped while it ran this job, on its last try".
    job = make_row(enqueue=True)
    for stops in (1, 2):
        rq_job, rq_queue = Queue.dequeue_any([queue], timeout=None, connection=queue.connection)
        worker.execute_job(rq_job, rq_queue)
        forget(queue, job)
        assert reconcile.reconcile_jobs(grace=0, after_stop=True).requeued == [job.pk]
        job.refresh_from_db()
        assert (job.status, job.attempts, job.worker_stops) == ("queued", 0, stops)
        assert queue.fetch_job(job.rq_job_id).retries_left == 1  # both of its attempts left


def test_a_running_job_redis_lost_with_its_worker_is_queued_again_with_its_last_attempt(queue):
    job = lost(queue, status="running", stage="generating", attempts=1, progress=0.5)
    done = reconcile.reconcile_jobs(grace=0)
    assert done.requeued == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and job.stage == reconcile.REQUEUED and job.progress == 0.0
    assert not queue.fetch_job(job.rq_job_id).retries_left  # the retry RQ would give it is spent


def test_a_running_job_lost_on_its_last_attempt_fails_with_the_reason(queue):
    job = lost(queue, status="scoring", stage="scoring", attempts=2)
    assert reconcile.reconcile_jobs(grace=0).failed == [job.pk]
    job.refresh_from_db()
    assert job.status == "failed" and job.stage == "failed" and queue.count == 0
    assert job.error == "The worker running this job stopped, or the job queue lost it, on its last attempt (2 of 2)."


def test_a_job_rq_failed_without_the_row_hearing_is_queued_again(queue):
    # The failure callback could not write the row (the database was away), and RQ's list of the job's executions
    # names one whose record has expired, which RQ's own delete() trips on.
    job = make_row(enqueue=True, status="running", stage="generating", attempts=1)
    queue.fetch_job(job.rq_job_id).set_status(JobStatus.FAILED)
    queue.connection.zadd(f"rq:executions:{job.rq_job_id}", {"expired-execution": time.time() + 60})
    assert reconcile.reconcile_jobs(grace=0).requeued == [job.pk]
    assert queue.fetch_job(job.rq_job_id).get_status() == JobStatus.QUEUED and queue.count == 1


def test_a_running_job_whose_worker_holds_its_lease_is_left_alone(queue):
    # Redis restarted under a live worker: RQ forgot the job, but the worker renews its lease.
    job = lost(queue, status="running", stage="generating", attempts=1)
    leases.hold(queue.connection, job.rq_job_id, "gpu-worker-1")
    assert not reconcile.reconcile_jobs(grace=0)
    job.refresh_from_db()
    assert job.status == "running" and queue.count == 0


def test_worker_silence_counts_from_the_last_lease_renewal(queue):
    job = lost(queue, status="running", stage="generating", attempts=1)
    assert reconcile.worker_silence(job) is None  # no lease and no RQ job (Redis restarted): nothing to go by
    leases.hold(queue.connection, job.rq_job_id, "gpu-worker-1")
    assert 0 <= reconcile.worker_silence(job) < 2
    leases.hold(queue.connection, job.rq_job_id, "gpu-worker-1", ttl=leases.LEASE_TTL - 75)
    assert 74 < reconcile.worker_silence(job) < 76 and reconcile.worker_silence(job) > reconcile.SILENT_AFTER
    waiting = make_row(enqueue=True)
    assert reconcile.worker_silence(waiting) is None


def test_what_a_job_page_asks_redis_is_skipped_at_once_once_a_stalled_redis_did_not_answer(stalled_queues):
    # A stalled Redis (SIGSTOP, a fault drill) held the API's job and the job page the web timeout at each of these,
    # at every look (the page polls while a job runs).
    running = make_row(status="running", stage="generating", rq_job_id=jobs.rq_job_id(1))
    waiting = make_row(rq_job_id=jobs.rq_job_id(2))
    started = time.monotonic()
    assert reconcile.worker_silence(running) is None
    first = time.monotonic() - started
    started = time.monotonic()
    assert reconcile.job_worker(running) is None and not reconcile.lost(waiting)  # nobody knows: no verdict
    assert reconcile.worker_silence(running) is None
    others = time.monotonic() - started
    assert first < 1.5 and others < 0.1, (first, others)
    assert len(stalled_queues) == 1


def test_worker_silence_is_told_while_the_job_scores_and_repairs(queue):
    # A fault drill: the worker SIGKILLed while the job was scoring (a CPU worker repairs for tens of seconds): the
    # page and the API said nothing of the silent worker, only "Repairing", until the job was re-queued.
    job = lost(queue, status="scoring", stage="repairing", attempts=1)
    leases.hold(queue.connection, job.rq_job_id, "gpu-worker-1", ttl=leases.LEASE_TTL - 75)
    assert 74 < reconcile.worker_silence(job) < 76


def test_worker_silence_without_a_lease_counts_from_rqs_heartbeat_of_the_job(queue, worker):
    # A worker that takes no lease (not a GenerationWorker), or one whose lease expired: RQ's own heartbeat.
    job = taken_by(worker, queue)
    assert 0 <= reconcile.worker_silence(job) < 5
    rq_job = queue.fetch_job(job.rq_job_id)
    rq_job.heartbeat(rq_now() - timedelta(seconds=200), ttl=600)
    assert 199 < reconcile.worker_silence(job) < 205


def test_worker_silence_goes_on_from_the_last_renewal_once_the_lease_expired(queue, monkeypatch):
    # A fault drill: Redis restarted mid-job (RQ's record of it gone, the worker took its lease again), then the worker
    # was SIGKILLed. When its lease expired the page and the API went back to "Running" (`worker_silent` null), the
    # progress frozen, for the two minutes until the reconciler re-queued the job.
    job = lost(queue, status="running", stage="generating", attempts=1)
    leases.hold(queue.connection, job.rq_job_id, "gpu-worker-1")
    queue.connection.delete(leases.LEASE_PREFIX + job.rq_job_id)  # expired: no renewal for LEASE_TTL seconds
    later = time.time() + leases.LEASE_TTL + 30
    monkeypatch.setattr(reconcile.time, "time", lambda: later)
    assert leases.LEASE_TTL + 29 < reconcile.worker_silence(job) < leases.LEASE_TTL + 32
    assert reconcile.job_worker(job) == "gpu-worker-1"  # the page knows whether another worker could re-queue it
    leases.release(queue.connection, job.rq_job_id)  # a worker that ends its job leaves nothing to count from
    assert reconcile.worker_silence(job) is None


def test_the_worker_of_a_job_is_its_leases_holder_else_the_one_rq_says_started_it(queue, worker):
    # The job page leaves that worker out of those that could re-queue the job once it went quiet.
    job = taken_by(worker, queue)
    assert reconcile.job_worker(job) == worker.name  # no lease (expired): RQ's record
    leases.hold(queue.connection, job.rq_job_id, "gpu-worker-1")
    assert reconcile.job_worker(job) == "gpu-worker-1"
    assert reconcile.job_worker(lost(queue, status="running", stage="generating", attempts=1)) is None


def test_a_waiting_job_is_lost_when_redis_has_nothing_of_it(queue):
    job = make_row(enqueue=True)
    assert not reconcile.lost(job)
    forget(queue, job)
    assert reconcile.lost(job)
    leases.hold(queue.connection, job.rq_job_id, "gpu-worker-1")  # a worker took it again after Redis restarted
    assert not reconcile.lost(job)
    assert not reconcile.lost(lost(queue, status="running", stage="generating", attempts=1))  # silence says that


def test_worker_silence_is_unknown_without_redis(queue, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    job = lost(queue, status="running", stage="generating", attempts=1)

    class Away:
        connection_pool = SimpleNamespace(connection_kwargs={"host": "away", "port": 6379})  # its breaker's

        def pttl(self, key):
            raise RedisConnectionError("gone")

    monkeypatch.setattr(reconcile.django_rq, "get_connection", lambda name: Away())
    assert reconcile.worker_silence(job) is None


def test_the_lease_is_renewed_at_the_interval_the_silence_assumes(queue):
    assert GenerationWorker([queue], connection=queue.connection).job_monitoring_interval == reconcile.RENEWAL
    assert reconcile.RENEWAL < reconcile.SILENT_AFTER < leases.LEASE_TTL


def test_a_job_started_on_a_registered_worker_is_left_alone(queue, worker):
    job = taken_by(worker, queue)
    assert not reconcile.reconcile_jobs(grace=0)
    job.refresh_from_db()
    assert job.status == "running"


def test_a_job_whose_worker_is_gone_is_retried_by_rqs_own_cleanup(queue, worker):
    job = taken_by(worker, queue)
    queue.connection.delete(worker.key)  # killed: its key expired
    assert reconcile.reconcile_jobs(grace=0).requeued == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and job.stage == "retrying"  # jobs.generation_failed, as for any abandoned job
    assert queue.count == 1 and not queue.started_job_registry.get_job_ids(cleanup=False)


def held_by(worker, queue, process: str) -> GenerationJob:
    """A running row that `worker` took, its lease naming `process` (`processes.process_token`)."""
    job = taken_by(worker, queue)
    leases.hold(queue.connection, job.rq_job_id, worker.name, process=process)
    return job


def test_a_job_whose_workers_process_here_is_gone_is_retried_at_once(queue, worker, gone_process):
    # SIGKILLed mid-job: its lease and RQ's record of its heartbeats looked alive for up to 90 s more, and the job's
    # page said "generating" for up to two and a half minutes before the next pass after that.
    job = held_by(worker, queue, gone_process)
    assert reconcile.reconcile_jobs(grace=0).requeued == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and job.stage == "retrying"  # jobs.generation_failed, as for any abandoned job
    assert queue.fetch_job(job.rq_job_id).get_status() == JobStatus.QUEUED and queue.count == 1
    assert not queue.started_job_registry.get_job_ids(cleanup=False)
    assert not queue.connection.exists(leases.LEASE_PREFIX + job.rq_job_id,
                                       leases.HOLDER_PREFIX + job.rq_job_id)


@pytest.mark.parametrize("how", ["its process gone", "its worker gone"])
def test_a_pass_retries_only_under_rqs_maintenance_lock_so_no_job_is_retried_twice(queue, worker, gone_process, how):
    # Every idle worker now runs RQ's cleanup of started jobs under the queue's maintenance lock every few seconds
    # (GenerationWorker._reclaim), as RQ's own registry cleaning does; the pass ran it without the lock, and the two
    # could both retry one job: its id twice in the queue, two workers running it at once.
    job = held_by(worker, queue, gone_process)
    if how == "its worker gone":
        queue.connection.delete(leases.HOLDER_PREFIX + job.rq_job_id, leases.LEASE_PREFIX + job.rq_job_id,
                                worker.key)
    assert queue.acquire_maintenance_lock()  # another worker is cleaning right now
    try:
        done = reconcile.reconcile_jobs(grace=0)
        job.refresh_from_db()
        assert job.status == "running" and queue.count == 0 and not done.requeued and not done.failed
    finally:
        queue.release_maintenance_lock()
    assert reconcile.reconcile_jobs(grace=0).requeued == [job.pk]  # the next pass, the lock free
    job.refresh_from_db()
    assert job.status == "queued" and queue.count == 1


def test_a_pass_retries_at_once_though_a_worker_was_killed_while_it_cleaned(queue, worker, gone_process,
                                                                          killed_while_cleaning):
    # RQ's maintenance lock, left by a worker killed while it cleaned, stopped every retry for 15 minutes (it lives
    # 899 s): the lock names its holder now, and one of this host that is gone is taken over.
    job = held_by(worker, queue, gone_process)
    killed_while_cleaning(queue)
    assert reconcile.reconcile_jobs(grace=0).requeued == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and queue.count == 1
    assert not queue.connection.exists(queue.registry_cleaning_key)  # released after its cleaning


def test_a_job_whose_workers_process_here_is_gone_on_its_last_try_fails_saying_so(queue, worker, gone_process):
    job = held_by(worker, queue, gone_process)
    rq_job = queue.fetch_job(job.rq_job_id)
    rq_job.retries_left = 0
    rq_job.save()
    assert reconcile.reconcile_jobs(grace=0).failed == [job.pk]
    job.refresh_from_db()
    assert job.status == "failed" and queue.count == 0
    assert job.error == "The worker running this job stopped unexpectedly on its last try (it had been retried once)."


@pytest.mark.parametrize("where", ["this process", "a process stopped (SIGSTOP)"])
def test_a_job_whose_workers_process_is_alive_is_left_to_it_however_slow(queue, worker, where):
    # A 25-step job on a loaded GPU, a long first model load: alive, and never taken from it.
    process = subprocess.Popen(["sleep", "60"]) if where != "this process" else None
    try:
        if process is not None:
            process.send_signal(signal.SIGSTOP)
        job = held_by(worker, queue, processes.process_token(process.pid if process else "self"))
        assert reconcile.reclaim(queue) == [] and not reconcile.reconcile_jobs(grace=0)
    finally:
        if process is not None:
            process.kill()
            process.wait()
    job.refresh_from_db()
    assert job.status == "running" and queue.connection.exists(leases.LEASE_PREFIX + job.rq_job_id)


def test_a_job_whose_worker_runs_elsewhere_keeps_its_lease(queue, worker, gone_process):
    # Another host, or another container of this host (another PID namespace): its pids mean nothing here, so only
    # the lease's expiry tells, as before.
    boot_id, namespace, pid, started = gone_process.split(" ")
    for elsewhere in (f"another-boot {namespace} {pid} {started}", f"{boot_id} pid:[1] {pid} {started}"):
        assert not reconcile.holder_gone(elsewhere)
    job = held_by(worker, queue, f"another-boot {namespace} {pid} {started}")
    assert not reconcile.reconcile_jobs(grace=0)
    job.refresh_from_db()
    assert job.status == "running"


def test_a_lease_whose_holders_process_cannot_be_told_drops_an_earlier_holders_process(queue, gone_process):
    # Left, the earlier holder's (a worker killed mid-job) would pass for the new holder's, which `put_back_taken`
    # would have taken for gone while it ran.
    leases.hold(queue.connection, "qart-generation-held", "killed-worker", process=gone_process)
    leases.hold(queue.connection, "qart-generation-held", "worker-without-proc", process="")
    assert not queue.connection.exists(leases.HOLDER_PREFIX + "qart-generation-held")
    assert queue.connection.get(leases.LEASE_PREFIX + "qart-generation-held") == b"worker-without-proc"


def test_an_orphan_is_left_for_the_grace_period_then_acted_on(queue):
    job = lost(queue)
    done = reconcile.reconcile_jobs(grace=60)
    assert done.orphaned == [job.pk] and not done.requeued
    assert str(done) == f"Jobs orphaned, within the grace period #{job.pk}."
    assert reconcile.reconcile_jobs(grace=60).orphaned == [job.pk]  # still waiting: first seen is kept
    queue.connection.hset(reconcile.ORPHANS_KEY, job.pk, time.time() - 61)
    assert reconcile.reconcile_jobs(grace=60).requeued == [job.pk]
    assert not queue.connection.exists(reconcile.ORPHANS_KEY)  # no longer orphaned: forgotten


def test_a_job_that_is_queued_again_by_someone_else_is_forgotten(queue):
    job = lost(queue)
    reconcile.reconcile_jobs(grace=60)
    jobs.enqueue_generation(job)  # e.g. a sweep re-sent it
    assert not reconcile.reconcile_jobs(grace=60)
    assert not queue.connection.exists(reconcile.ORPHANS_KEY)


def test_a_cancel_of_a_job_nothing_runs_ends_it_at_once(queue):
    job = lost(queue, status="running", stage="generating", attempts=1, cancel_requested=True)
    assert reconcile.reconcile_jobs().cancelled == [job.pk]  # no grace period: a live worker would stop it anyway
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished is not None


def test_a_cancel_of_a_waiting_job_cancels_its_rq_job(queue):
    job = make_row(enqueue=True, cancel_requested=True)
    assert reconcile.reconcile_jobs().cancelled == [job.pk]
    assert queue.fetch_job(job.rq_job_id).get_status() == JobStatus.CANCELED and queue.count == 0


def test_waiting_and_finished_jobs_are_left_alone(queue):
    waiting = make_row(enqueue=True)
    finished = make_row(status="done")
    assert not reconcile.reconcile_jobs(grace=0)
    assert queue.count == 1
    assert GenerationJob.objects.get(pk=waiting.pk).status == "queued"
    assert GenerationJob.objects.get(pk=finished.pk).status == "done"


def test_one_pass_at_a_time(queue):
    lost(queue)
    lock = queue.connection.lock(reconcile.LOCK_KEY, timeout=60)
    assert lock.acquire(blocking=False)
    try:
        done = reconcile.reconcile_jobs(grace=0)
    finally:
        lock.release()
    assert not done and str(done) == "Nothing reconciled: another reconciler is running."
