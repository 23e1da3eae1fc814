"""A job that a generation worker took off the queue (RQ's first step) and has not started (its second): put back when
its worker will not start it, and started by one worker at most. Against the real Redis the suite runs on, with
GenerationWorkers in this process (no engine is loaded)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from rq import Callback, Queue, Retry, get_current_job
from rq.job import Job
from rq.worker_registration import unregister

from generator import claims, job_files, leases, processes, warm_engines
from generator.core.engines.parameters import ModelSpec
from generator.worker import GenerationWorker

RUNS = "test:claims:runs"


def counts_a_run() -> None:
    """A job that counts its runs in Redis."""
    get_current_job().connection.incr(RUNS)


@pytest.fixture
def workers(gpu_queue, db):  # a job's run first makes sure the database answers (`workers.wait_for_database`)
    """workers(): a GenerationWorker registered as RQ's work() registers one, taking no jobs by itself."""
    started = []

    def start() -> GenerationWorker:
        worker = GenerationWorker([gpu_queue], connection=gpu_queue.connection)
        worker.register_birth()
        started.append(worker)
        return worker

    gpu_queue.connection.delete(RUNS, FAILURES)
    yield start
    for worker in started:
        unregister(worker)
        gpu_queue.connection.delete(worker.key)
    gpu_queue.connection.delete(RUNS, FAILURES)


def taken(gpu_queue) -> Job:
    """The queue's next job, moved into RQ's intermediate list by a worker (RQ 2.6's first step), not started."""
    rq_job, _ = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    assert rq_job.id in gpu_queue.intermediate_queue.get_job_ids()
    return rq_job


def runs(gpu_queue) -> int:
    return int(gpu_queue.connection.get(RUNS) or 0)


TAKER = "the-worker-that-takes-the-retry"
FAILURES = "test:claims:failures"


def counts_a_failure(job, connection, exc_type, exc_value, tb) -> None:
    """A failure callback that counts its calls in Redis."""
    connection.incr(FAILURES)


def taken_over_while_it_runs(ends: str) -> str:
    """A job whose worker is cut off from Redis past its heartbeats' time to live while it runs: RQ's cleanup, in
    another worker's look, retries it into the queue, and the worker that takes the retry leases it; then the job's
    code ends (`ends`: "returns" or "raises")."""
    from generator import reconcile

    job = get_current_job()
    job.connection.incr(RUNS)
    registry = job.started_job_registry
    expired = {key: 0 for key in job.connection.zrange(registry.key, 0, -1) if key.decode().startswith(job.id + ":")}
    job.connection.zadd(registry.key, expired, xx=True)  # no heartbeat for 70 s
    assert reconcile.retry_abandoned(Queue(job.origin, connection=job.connection)) == [job.id]
    leases.hold(job.connection, job.id, TAKER, process="another-boot ns 1 2")
    if ends == "raises":
        raise OSError("the image storage refused the write")
    return "made while cut off"


def lease_after_a_renewal() -> str:
    """A job whose lease another worker takes (its own worker paused meanwhile), returning who holds it after its own
    worker's next renewal (a second later)."""
    job = get_current_job()
    leases.hold(job.connection, job.id, TAKER, process="another-boot ns 1 2")

    def heartbeat() -> float:  # the worker's heartbeats' thread renews the lease, then sends them
        return max(score for key, score in job.connection.zrange(job.started_job_registry.key, 0, -1, withscores=True)
                   if key.decode().startswith(job.id + ":"))

    first, deadline = heartbeat(), time.monotonic() + 30
    while heartbeat() == first and time.monotonic() < deadline:
        time.sleep(0.05)
    return job.connection.get(leases.LEASE_PREFIX + job.id).decode()


def test_it_puts_back_a_job_whose_worker_was_killed_before_it_leased_it(workers, gpu_queue, monkeypatch):
    # Nothing of ours put it back: RQ's maintenance failed it a minute or two later ("stuck in intermediate queue"),
    # spending the retry of a job that never ran.
    idle = workers()
    gpu_queue.enqueue(counts_a_run, job_id="killed-before-its-lease", retry=Retry(max=1))
    killed = taken(gpu_queue)
    queued_since = gpu_queue.enqueue(counts_a_run, job_id="queued-since")
    idle.heartbeat()  # its worker may be between the two steps, for a moment
    assert gpu_queue.intermediate_queue.get_job_ids() == [killed.id] and gpu_queue.job_ids == [queued_since.id]
    monkeypatch.setattr(claims, "TAKE_GRACE", 0.2)
    time.sleep(0.3)
    idle.heartbeat()  # the next look, TAKE_GRACE later
    assert gpu_queue.job_ids == [killed.id, queued_since.id]  # back at the front, where it was
    assert not gpu_queue.intermediate_queue.get_job_ids()
    killed.refresh()
    assert (killed.get_status(), killed.retries_left) == ("queued", 1)  # not a failure: its retry is still there


@pytest.mark.parametrize("why", ["it never leased it", "its registration expired"])
def test_a_slow_worker_does_not_run_a_job_put_back_meanwhile(workers, gpu_queue, monkeypatch, why):
    # A worker alive but slow (paused, or cut off from Redis) past the put-back went on to start the job it had taken,
    # which was back in the queue: the next worker ran it too.
    slow, other = workers(), workers()
    gpu_queue.enqueue(counts_a_run, job_id="taken-by-a-slow-worker", retry=Retry(max=1))
    rq_job = taken(gpu_queue)
    if why == "it never leased it":
        monkeypatch.setattr(claims, "TAKE_GRACE", 0)
    else:  # its lease says a worker that RQ no longer has registered, on another host
        leases.hold(gpu_queue.connection, rq_job.id, "expired-worker", process="another-boot ns 1 2")
    other.heartbeat()  # a look: put back
    assert gpu_queue.job_ids == [rq_job.id]
    slow.execute_job(rq_job, gpu_queue)  # it wakes up
    assert runs(gpu_queue) == 0 and gpu_queue.job_ids == [rq_job.id]
    assert not gpu_queue.connection.exists(leases.LEASE_PREFIX + rq_job.id)
    assert not gpu_queue.started_job_registry.get_job_ids(cleanup=False)
    rq_job.refresh()
    assert (rq_job.get_status(), rq_job.retries_left) == ("queued", 1)
    again, queue = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    other.execute_job(again, queue)
    again.refresh()
    assert runs(gpu_queue) == 1 and again.get_status() == "finished"


def test_of_two_workers_that_took_one_job_one_runs_it(workers, gpu_queue, monkeypatch):
    # The slow worker wakes after the job went back and another worker took it again, before that one started it:
    # the slow one starts it (it takes the job's one copy out of the list), and the other finds none.
    slow, other = workers(), workers()
    gpu_queue.enqueue(counts_a_run, job_id="taken-twice")
    first = taken(gpu_queue)
    monkeypatch.setattr(claims, "TAKE_GRACE", 0)
    other.heartbeat()  # put back
    second = taken(gpu_queue)
    slow.execute_job(first, gpu_queue)
    other.execute_job(second, gpu_queue)
    first.refresh()
    assert runs(gpu_queue) == 1 and first.get_status() == "finished"
    assert not gpu_queue.intermediate_queue.get_job_ids() and not gpu_queue.job_ids


def test_it_puts_back_a_job_whose_lease_lapsed_without_waiting_for_the_registration(workers, gpu_queue, monkeypatch):
    # Its worker's host is gone: no process there to ask. The job waited for RQ's registration of that worker to
    # expire (420 s), or for RQ's cleanup to fail it, spending its retry; the lease's lapse already said so.
    elsewhere, idle = workers(), workers()  # RQ still has `elsewhere` registered
    gpu_queue.enqueue(counts_a_run, job_id="taken-on-a-host-that-died", retry=Retry(max=1))
    rq_job = taken(gpu_queue)
    leases.hold(gpu_queue.connection, rq_job.id, elsewhere.name, process="another-boot ns 1 2")
    idle.heartbeat()
    assert gpu_queue.intermediate_queue.get_job_ids() == [rq_job.id]  # leased: its worker may be waiting
    gpu_queue.connection.delete(leases.LEASE_PREFIX + rq_job.id, leases.HOLDER_PREFIX + rq_job.id)  # LEASE_TTL later
    monkeypatch.setattr(claims, "TAKE_GRACE", 0.2)
    idle.heartbeat()
    assert gpu_queue.intermediate_queue.get_job_ids() == [rq_job.id]  # the first look without its lease
    time.sleep(0.3)
    idle.heartbeat()
    assert gpu_queue.job_ids == [rq_job.id] and not gpu_queue.intermediate_queue.get_job_ids()
    rq_job.refresh()
    assert (rq_job.get_status(), rq_job.retries_left) == ("queued", 1)


def test_a_worker_runs_the_job_it_took_when_redis_lost_it_meanwhile(workers, gpu_queue):
    # Redis restarted without its data while the worker waited for its database: nothing was put back, and the job,
    # which nothing else will run before the reconciler's grace period, runs as before.
    worker = workers()
    gpu_queue.enqueue(counts_a_run, job_id="lost-by-redis")
    rq_job = taken(gpu_queue)
    gpu_queue.connection.delete(rq_job.key, gpu_queue.intermediate_queue_key)
    worker.execute_job(rq_job, gpu_queue)
    assert runs(gpu_queue) == 1


def test_a_worker_that_lost_its_job_leaves_the_lease_of_the_worker_that_has_it(gpu_queue):
    leases.hold(gpu_queue.connection, "taken-twice", "the-worker-that-has-it")
    leases.release(gpu_queue.connection, "taken-twice", worker="the-worker-that-lost-it")
    assert gpu_queue.connection.get(leases.LEASE_PREFIX + "taken-twice") == b"the-worker-that-has-it"
    leases.release(gpu_queue.connection, "taken-twice", worker="the-worker-that-has-it")
    assert not gpu_queue.connection.exists(leases.LEASE_PREFIX + "taken-twice")


def test_a_job_lost_to_another_worker_does_not_count_toward_max_jobs(workers, gpu_queue, monkeypatch):
    # RQ's loop counts every job that `execute_job` returns from: `rqworker --max-jobs 1` quit after a job it lost
    # (`claims.TakenBack`), having run none, and the job waited in the queue for another worker.
    from generator import worker as worker_module

    monkeypatch.setattr(warm_engines, "get_engine",
                        lambda spec: SimpleNamespace(device="cpu", spec=ModelSpec(), warmed=set()))
    monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
    monkeypatch.setattr(job_files, "open_store_connections", lambda: None)
    waits = []

    def slow_database() -> None:  # the first job's wait outlasts its lease: the job goes back meanwhile
        if not waits:
            gpu_queue.connection.delete(leases.LEASE_PREFIX + rq_job.id)
            grace = claims.TAKE_GRACE
            monkeypatch.setattr(claims, "TAKE_GRACE", 0)  # its lease missing that long
            assert claims.put_back_taken(gpu_queue) == [rq_job.id]
            monkeypatch.setattr(claims, "TAKE_GRACE", grace)  # the next take is leased in time
        waits.append(rq_job.id)

    monkeypatch.setattr(worker_module, "wait_for_database", slow_database)
    rq_job = gpu_queue.enqueue(counts_a_run, job_id="lost-then-taken-again")
    worker = GenerationWorker([gpu_queue], connection=gpu_queue.connection)
    monkeypatch.setattr(worker, "run_maintenance_tasks", lambda: None)  # the reconciler: not this test's
    assert worker.work(burst=True, max_jobs=1)
    rq_job.refresh()
    assert waits == [rq_job.id] * 2 and runs(gpu_queue) == 1 and rq_job.get_status() == "finished"
    assert not gpu_queue.job_ids and not gpu_queue.intermediate_queue.get_job_ids()


@pytest.mark.parametrize("ends", ["returns", "raises"])
def test_a_job_taken_over_while_its_worker_was_cut_off_is_left_as_rqs_cleanup_left_it(workers, gpu_queue, ends):
    # A live worker cut off from Redis for over a minute while it ran a job: RQ's cleanup retried the job, and the
    # worker, back, recorded its own end over it: "finished" while the retry waited in the queue, or, from its failure,
    # the failure callback again and a retry from its stale count (two copies queued: a third run, which took the row
    # from the second), and it released the lease of the worker that took the retry.
    cut_off = workers()
    gpu_queue.enqueue(taken_over_while_it_runs, ends, job_id="taken-over", retry=Retry(max=1),
                      on_failure=Callback(counts_a_failure))
    rq_job, queue = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    cut_off.execute_job(rq_job, queue)
    rq_job.refresh()
    assert runs(gpu_queue) == 1 and gpu_queue.job_ids == [rq_job.id]  # one copy: the cleanup's retry
    assert (rq_job.get_status(), rq_job.retries_left) == ("queued", 0)
    assert int(gpu_queue.connection.get(FAILURES) or 0) == 1  # the cleanup's "abandoned", not the stale run's
    assert gpu_queue.connection.get(leases.LEASE_PREFIX + rq_job.id) == TAKER.encode()
    assert not gpu_queue.started_job_registry.get_job_ids(cleanup=False)
    assert cut_off.get_state() == "idle" and cut_off.get_current_job_id() is None


def test_a_renewal_leaves_the_lease_of_another_worker(gpu_queue):
    # A worker paused (SIGSTOP, a long pause) past its lease's lapse, whose job went back and was taken by another
    # worker: its renewal on waking wrote its name over the other's lease, and its release then left the job unleased
    # (one needless put-back: the other worker lost the job too, and a third one ran it).
    connection = gpu_queue.connection
    leases.hold(connection, "paused", "the-worker-that-took-it-again", process="another-boot ns 1 2")
    assert not leases.hold(connection, "paused", "the-paused-worker", renewal=True)
    assert connection.get(leases.LEASE_PREFIX + "paused") == b"the-worker-that-took-it-again"
    assert connection.get(leases.HOLDER_PREFIX + "paused") == b"another-boot ns 1 2"
    connection.delete(leases.LEASE_PREFIX + "paused")  # lapsed, or lost with a Redis restart: taken again
    assert leases.hold(connection, "paused", "the-paused-worker", renewal=True)
    assert connection.get(leases.LEASE_PREFIX + "paused") == b"the-paused-worker"
    assert connection.get(leases.HOLDER_PREFIX + "paused") == processes.process_token().encode()


def test_a_running_jobs_renewals_leave_the_lease_another_worker_took(workers, gpu_queue):
    worker = workers()
    worker.job_monitoring_interval = 1  # a renewal every second
    gpu_queue.enqueue(lease_after_a_renewal, job_id="lease-taken-meanwhile", job_timeout=600)
    rq_job, queue = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    worker.execute_job(rq_job, queue)
    rq_job.refresh()
    assert rq_job.return_value() == TAKER
    assert gpu_queue.connection.get(leases.LEASE_PREFIX + rq_job.id) == TAKER.encode()  # not released either


def test_a_take_holds_the_lease_whoever_held_it(gpu_queue):
    # The worker has just taken the job off the queue: an earlier holder's lease (a worker that lost it) is replaced,
    # with its process, and the renewal noted; a holder that cannot be told (no process) leaves no earlier one's.
    connection = gpu_queue.connection
    leases.hold(connection, "taken", "the-worker-that-lost-it", process="another-boot ns 1 2")
    assert leases.hold(connection, "taken", "the-worker-that-took-it", process="")
    assert connection.get(leases.LEASE_PREFIX + "taken") == b"the-worker-that-took-it"
    assert connection.get(leases.HOLDER_PREFIX + "taken") is None
    assert leases.last_heard(connection, "taken")[1] == "the-worker-that-took-it"
    assert 0 < connection.ttl(leases.LEASE_PREFIX + "taken") <= leases.LEASE_TTL
