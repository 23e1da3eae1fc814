"""qartsite/workers.py: the site's RQ workers wait out a Redis (and a database) that is away, end in one line when
Redis refuses their password, and put back a job that a stop of theirs interrupted."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.scheduler import RQScheduler
from rq.worker_registration import unregister

from qartsite import queues, workers
from tests.conftest import live_queue


def test_a_worker_registers_again_when_redis_lost_its_registration():
    # Redis restarted without its data: the worker took jobs but counted for no one (its heartbeat made a record in no
    # worker set), so large print files were made in the web request until the worker was restarted (a fault drill).
    queue = Queue("queues-register-again", connection=live_queue("default").connection)
    worker = workers.PatientWorker([queue], connection=queue.connection, name="queues-register-again")
    worker.register_birth()
    try:
        unregister(worker)
        queue.connection.delete(worker.key)

        worker.heartbeat()

        assert queues.workers_on(queue) == 1
        assert queue.connection.hget(worker.key, "queues") == b"queues-register-again"
    finally:
        worker.register_death()


def test_a_worker_waits_out_a_redis_that_stops_answering(monkeypatch):
    # RQ's own loop quits on a timeout, with exit status 0: the worker was gone after a stall of a minute or two.
    from redis.exceptions import TimeoutError as RedisTimeoutError

    queue = Queue("queues-patience-test", connection=live_queue("default").connection)
    worker = workers.PatientWorker([queue], connection=queue.connection, name="queues-patience")
    answers = [RedisTimeoutError("Timeout reading from socket"), RedisTimeoutError("again"), "a job"]
    waits = []

    def dequeue(self, timeout, max_idle_time=None):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(Worker, "dequeue_job_and_maintain_ttl", dequeue)
    monkeypatch.setattr(workers.time, "sleep", waits.append)
    assert worker.dequeue_job_and_maintain_ttl(5) == "a job"
    assert waits == [1.0, 2.0]


# A Redis that stalls (a timeout), one restarted (refused connections), one full (maxmemory, noeviction: reads work,
# writes are refused) and a replica after a failover: RQ's loop quit on each outside its dequeue
AWAY = [RedisTimeoutError("Timeout reading from socket"),
        RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        ReadOnlyError("You can't write against a read only replica.")]
AWAY_IDS = ["stalled", "refused", "full", "read-only"]


@pytest.mark.parametrize("error", AWAY, ids=AWAY_IDS)
def test_a_worker_waits_out_a_redis_that_refuses_to_record_it_idle(monkeypatch, error):
    # The dequeue records the worker idle before RQ's own wait for a refused connection: a job that ended while Redis
    # was away (a fault drill stopped Redis mid-job) was followed by "found an unhandled exception, quitting".
    queue = Queue("queues-idle-test", connection=live_queue("default").connection)
    worker = workers.PatientWorker([queue], connection=queue.connection, name="queues-idle")
    failures, waits = [error], []
    set_state = Worker.set_state

    def idle_once_refused(self, state, pipeline=None):
        if failures:
            raise failures.pop()
        return set_state(self, state, pipeline)

    monkeypatch.setattr(Worker, "set_state", idle_once_refused)
    monkeypatch.setattr(Queue, "dequeue_any", lambda *args, **kwargs: None)  # Redis answers again: nothing queued
    monkeypatch.setattr(workers.time, "sleep", waits.append)
    try:
        assert worker.dequeue_job_and_maintain_ttl(5) is None
    finally:
        queue.connection.delete(worker.key)
    assert waits == [1.0]


@pytest.mark.parametrize("error", AWAY, ids=AWAY_IDS)
def test_a_heartbeat_redis_did_not_answer_does_not_stop_the_worker(monkeypatch, error):
    def stalled(self, timeout=None, pipeline=None):
        raise error

    monkeypatch.setattr(Worker, "heartbeat", stalled)
    worker = workers.PatientWorker(["queues-patience-test"], connection=live_queue("default").connection,
                                   name="queues-heartbeat")
    worker.heartbeat()  # logged, not raised


class Clock:
    """`workers.time` whose sleeps pass at once, and count."""

    def __init__(self) -> None:
        self.now, self.waits = 0.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def answers_in_turn(*answers, before=None):
    """A call to Redis that raises or returns each of `answers` in turn, calling `before()` first each time."""
    left = list(answers)

    def call():
        if before is not None:
            before()
        answer = left.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return call


def test_a_call_a_worker_cannot_go_on_without_waits_for_redis_as_long_as_it_is_told(monkeypatch, caplog):
    # A job's end raised on the first call Redis did not answer: a frozen Redis failed the run in RQ's eyes
    worker = workers.PatientWorker(["queues-patience-test"], connection=live_queue("default").connection,
                                   name="queues-ask-patiently")
    clock = Clock()
    monkeypatch.setattr(workers, "time", clock)
    frozen_at_first = answers_in_turn(RedisTimeoutError("Timeout reading from 127.0.0.1:6379"),
                                      RedisConnectionError("Connection reset"), "the answer")

    assert worker.ask_patiently("record the end of a job", frozen_at_first, patience=10) == "the answer"
    assert clock.waits == [1.0, 2.0]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and all("tries to record the end of a job again" in line for line in said), said

    def frozen():
        raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379")

    clock.waits.clear()
    with pytest.raises(RedisTimeoutError):
        worker.ask_patiently("record the end of a job", frozen, patience=12)
    assert clock.waits == [1.0, 2.0, 4.0, 5.0]  # then its error, rather than a wait past the patience

    clock.waits.clear()
    worker._stop_requested = True  # SIGTERM: a service manager's stop is held up by Redis for stop_patience at most
    with pytest.raises(RedisTimeoutError):
        worker.ask_patiently("record the end of a job", frozen, patience=12)
    assert clock.waits == [1.0, 2.0] and sum(clock.waits) <= worker.stop_patience


def test_a_warm_stop_still_waits_a_moment_for_redis_to_record_a_jobs_end(monkeypatch, caplog):
    # A worker asked to stop while it waited to record a finished job's end gave up at once: the job stayed "started"
    # in Redis, and was run again.
    worker = workers.PatientWorker(["queues-patience-test"], connection=live_queue("default").connection,
                                   name="queues-ask-while-stopping")
    clock = Clock()
    monkeypatch.setattr(workers, "time", clock)

    def warm_stop():  # RQ's (the first SIGTERM), in the middle of the wait
        worker._stop_requested = True

    stopped_while_redis_restarts = answers_in_turn(
        RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
        RedisTimeoutError("Timeout reading from 127.0.0.1:6379"), "recorded", before=warm_stop)
    assert worker.ask_patiently("record the end of a job", stopped_while_redis_restarts, patience=60) == "recorded"
    assert clock.waits == [1.0, 2.0]
    assert "tries to record the end of a job again in 2 s before it stops" in caplog.text


def test_a_warm_stop_makes_no_try_that_would_end_past_its_patience(monkeypatch):
    # Against a frozen Redis each try waits the connection's timeout (20 s for a generation worker): a try after the
    # stop ran past stop_patience, and past the kill that docker and supervisord send 10 s after their stop.
    worker = workers.PatientWorker(["queues-patience-test"], connection=live_queue("default").connection,
                                   name="queues-ask-while-stopping-frozen")
    clock = Clock()
    monkeypatch.setattr(workers, "time", clock)
    tries = []

    def frozen():
        tries.append(clock.now)
        clock.now += 20.0  # the connection's read timeout
        worker._stop_requested = True
        raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379")

    with pytest.raises(RedisTimeoutError):
        worker.ask_patiently("record the end of a job", frozen, patience=60)
    assert tries == [0.0] and clock.waits == []


@pytest.fixture
def stop_handlers():
    """SIGINT's and SIGTERM's handlers put back after the test: RQ's warm stop installs its cold stop's."""
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in previous.items():
        signal.signal(number, handler)


def test_a_warm_stop_while_redis_does_not_answer_raises_nothing_into_the_job(silent_server, stop_handlers, caplog):
    # RQ's warm stop records its date in Redis from its signal handler: with Redis frozen, the handler raised a
    # TimeoutError into whatever ran, a job's code or the wait to record its end.
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from rq.worker import WorkerStatus

    port, _ = silent_server
    worker = workers.PatientWorker(["queues-stop-test"], connection=live_queue("default").connection,
                                   name="queues-stop-frozen")
    # Frozen since the worker started (RQ names its connection at the start)
    worker.connection = Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
    worker._state = WorkerStatus.BUSY  # in the middle of a job: RQ's stop waits for its end
    worker.request_stop(signal.SIGTERM, None)
    assert worker._stop_requested
    assert "could not record that it was asked to stop (not answering: Timeout" in caplog.text


def test_rqworker_uses_the_patient_worker_unless_told_otherwise(settings):
    from django_rq.workers import get_worker_class

    assert get_worker_class() is workers.PatientWorker
    from generator.worker import GenerationWorker

    assert issubclass(GenerationWorker, workers.RedisPatience)


@pytest.mark.parametrize("error", AWAY, ids=AWAY_IDS)
def test_a_maintenance_or_suspension_check_redis_did_not_answer_does_not_stop_the_worker(monkeypatch, error):
    def stalled(*args, **kwargs):
        raise error

    monkeypatch.setattr(Worker, "check_for_suspension", stalled)
    monkeypatch.setattr(Worker, "run_maintenance_tasks", stalled)
    worker = workers.PatientWorker(["queues-patience-test"], connection=live_queue("default").connection,
                                   name="queues-maintenance")
    worker.check_for_suspension(burst=False)  # logged, not raised
    worker.run_maintenance_tasks()


@pytest.mark.parametrize("error", AWAY, ids=AWAY_IDS)
def test_a_job_whose_end_redis_cannot_record_does_not_stop_the_worker(monkeypatch, caplog, error):
    # A Redis restarted while a job ran: RQ's record of its end raised out of the loop, and the worker quit
    def gone(self, job, queue):
        raise error

    monkeypatch.setattr(Worker, "execute_job", gone)
    worker = workers.PatientWorker(["queues-patience-test"], connection=live_queue("default").connection,
                                   name="queues-job-end")
    job = Queue("queues-patience-test", connection=worker.connection).enqueue(len, "x", job_id="queues-job-end-probe")
    worker.execute_job(job, None)  # logged, not raised
    assert any("Redis went away while queues-job-end-probe ended" in r.getMessage() for r in caplog.records)


@pytest.fixture
def default_sigterm():
    """The scheduler's process is forked from this one and gets a SIGTERM it cannot ignore only once it installs its
    handlers: an earlier test's worker may have left a handler here that the child would run instead of stopping."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, previous)


def stopped(worker) -> None:
    """Stop the worker's scheduler process for good (a SIGTERM before its handlers are installed may be lost)."""
    process = worker.scheduler._process if worker.scheduler else None
    if process is not None and process.pid and process.is_alive():
        process.kill()
        process.join(5)


@pytest.fixture
def killed_scheduler(default_sigterm):
    """A worker whose scheduler ran and was killed, as a Redis restart kills it: (worker, its queue's lock key, the
    dead process). The scheduler is stopped and its keys deleted afterwards."""
    queue = Queue("queues-scheduler-test", connection=live_queue("default").connection)
    worker = workers.PatientWorker([queue], connection=queue.connection, name="queues-scheduler")
    lock = RQScheduler.get_locking_key(queue.name)
    queue.connection.delete(lock)
    worker._start_scheduler()
    first = worker.scheduler._process
    try:
        assert first is not None and first.is_alive()
        first.kill()
        first.join(5)
        yield worker, lock, first
    finally:
        stopped(worker)
        queue.connection.delete(lock, worker.key)


def test_a_scheduler_that_died_is_started_again_at_the_next_heartbeat(killed_scheduler):
    # RQ starts a dead scheduler again only in its maintenance, every 10 minutes: scheduled webhook retries waited.
    worker, lock, first = killed_scheduler
    worker.connection.delete(lock)  # its lock went with Redis's data
    worker.heartbeat()
    second = worker.scheduler._process
    assert second is not first and second.is_alive()


def test_a_dead_scheduler_is_not_started_again_beside_the_one_holding_the_lock(killed_scheduler):
    worker, lock, first = killed_scheduler
    worker.connection.set(lock, "another-workers-scheduler")  # it took the lock while this one was dead
    worker.heartbeat()
    assert worker.scheduler._process is first and worker.connection.get(lock) == b"another-workers-scheduler"


def test_jobs_run_on_a_forking_worker_with_a_scheduler(default_sigterm):
    # The job's forked process sends heartbeats too: it must not look at (or start) the parent's scheduler.
    queue = Queue("queues-scheduler-jobs", connection=live_queue("default").connection)
    queue.connection.delete(RQScheduler.get_locking_key(queue.name))
    job = queue.enqueue("os.getpid")
    worker = workers.PatientWorker([queue], connection=queue.connection, name="queues-scheduler-jobs")
    try:
        worker.work(burst=False, max_jobs=1, with_scheduler=True, logging_level="WARNING")
        job.refresh()
        assert job.get_status() == "finished", job.latest_result().exc_string
    finally:
        stopped(worker)
        queue.connection.delete(RQScheduler.get_locking_key(queue.name), worker.key)
        queue.empty()


def test_an_idle_worker_with_a_scheduler_comes_round_at_least_every_scheduler_check(monkeypatch):
    queue = Queue("queues-scheduler-test", connection=live_queue("default").connection)
    worker = workers.PatientWorker([queue], connection=queue.connection, name="queues-scheduler-wait")
    waited = []
    monkeypatch.setattr(Worker, "dequeue_job_and_maintain_ttl",
                        lambda self, timeout, max_idle_time=None: waited.append(timeout))
    worker.dequeue_job_and_maintain_ttl(405)
    worker.scheduler = RQScheduler([queue], connection=queue.connection)
    worker.dequeue_job_and_maintain_ttl(405)
    worker.dequeue_job_and_maintain_ttl(None)  # burst: no wait to shorten
    assert waited == [405, workers.SCHEDULER_CHECK, None]


def test_a_worker_looks_for_a_redis_that_refuses_connections_at_least_every_five_seconds(monkeypatch):
    # RQ doubled its wait to a minute: a worker slept up to 60 s after Redis came back before it took the queued jobs.
    import rq.worker

    queue = Queue("queues-backoff-test", connection=live_queue("default").connection)
    worker = workers.PatientWorker([queue], connection=queue.connection, name="queues-backoff")
    refusals = [RedisConnectionError("Error 111 connecting. Connection refused.")] * 9
    waits = []

    def dequeue_any(*args, **kwargs):
        if refusals:
            raise refusals.pop()
        return None  # Redis answers again: nothing queued

    monkeypatch.setattr(Queue, "dequeue_any", dequeue_any)
    monkeypatch.setattr(rq.worker.time, "sleep", waits.append)
    assert worker.dequeue_job_and_maintain_ttl(5) is None
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]


@pytest.mark.django_db(transaction=True)
def test_drop_dead_connections_lets_a_worker_query_again_after_the_database_restarted():
    # A fault drill: PostgreSQL restarted while the generation worker was idle; its next job failed at its first query
    # ("the connection is closed"), so did its immediate retry and RQ's failure callback, and the row waited minutes
    # for the reconciler. Here the server ends this process's connection as a restart does.
    import psycopg
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL ends a connection from another")
    connection.ensure_connection()
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])

    try:
        workers.drop_dead_connections()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
    finally:
        connection.close()  # failing, the dead connection must not outlive the test


@pytest.mark.django_db
def test_drop_dead_connections_keeps_a_working_connection():
    from django.db import connection

    connection.ensure_connection()
    kept = connection.connection
    workers.drop_dead_connections()
    assert connection.connection is kept


def stops_its_worker() -> None:
    """A job (in the forking worker's horse) during which the operator stops the worker twice: a warm stop, then,
    more than a second later (RQ ignores a second signal within one), a cold one."""
    import os
    import time

    os.kill(os.getppid(), signal.SIGTERM)
    time.sleep(1.5)
    os.kill(os.getppid(), signal.SIGTERM)
    time.sleep(60)  # killed by the cold stop long before


def put_back_when_stopped(rq_job, connection, exc_type, exc_value, tb) -> None:
    workers.put_back_if_stopped(rq_job, exc_value)


def test_a_forking_workers_stop_puts_back_a_job_whose_callback_says_so(default_sigterm):
    # `rqworker default` (large print files) killed the job's process on a cold stop and quit: the job stayed
    # "started" until a worker's registry cleanup failed it as abandoned, minutes later, and the person had to ask
    # for their file again.
    from rq import Callback

    queue = Queue("queues-stop-test", connection=live_queue("default").connection)
    queue.empty()
    job = queue.enqueue(stops_its_worker, on_failure=Callback(put_back_when_stopped), job_timeout=120)
    queue.enqueue("os.getpid", job_id="queued-meanwhile")
    worker = workers.PatientWorker([queue], connection=queue.connection, name="queues-stop")
    try:
        with pytest.raises(SystemExit):
            worker.work(burst=True, max_jobs=1, logging_level="WARNING")
        job.refresh()
        assert job.get_status() == "queued" and queue.job_ids == [job.id, "queued-meanwhile"]
        assert job.meta[workers.WORKER_STOPS] == 1 and workers.PUT_BACK not in job.meta
        assert job.id not in queue.started_job_registry.get_job_ids()
    finally:
        queue.empty()
        queue.connection.delete(worker.key, queue.started_job_registry.key)


@pytest.mark.parametrize("error", AWAY, ids=AWAY_IDS)
def test_a_worker_started_while_redis_refuses_its_registration_waits_for_it(monkeypatch, caplog, error):
    # Started while Redis was full (maxmemory, noeviction), a worker exited 1 with a traceback at its registration
    # (rqworker catches only refused connections, and exits 1 on those too): nothing took the queue until restarted.
    failures, waits, registered = [error, error], [], []

    def register_birth(self):
        self.birth_date = "set before RQ's write"
        if failures:
            raise failures.pop()
        registered.append(self.name)

    monkeypatch.setattr(Worker, "register_birth", register_birth)
    monkeypatch.setattr(workers.time, "sleep", waits.append)
    worker = workers.PatientWorker(["queues-birth-test"], connection=live_queue("default").connection,
                                   name="queues-birth")
    worker.register_birth()
    assert registered == ["queues-birth"] and waits == [1.0, 2.0]
    assert caplog.text.count("Redis did not take its registration") == 2
    assert queues.why_refused(error) in caplog.text  # why: full, read-only, not answering

    failures.append(error)  # registered once: a registration again (`register_again`) is its caller's to skip
    with pytest.raises(type(error)):
        worker.register_birth()


def test_a_worker_whose_registration_landed_unanswered_is_registered_at_the_next_try(monkeypatch, caplog):
    # A Redis that stalled (SIGSTOP) during a worker's registration takes the write once it resumes, after the worker
    # gave up waiting for the answer: the next try found the worker's own record, RQ refused it ("There exists an
    # active worker named ...", a ValueError) and the worker exited 1 with a traceback.
    import uuid

    from redis.client import Pipeline

    connection = live_queue("default").connection
    execute, unanswered = Pipeline.execute, [RedisTimeoutError("Timeout reading from socket")]

    def execute_unanswered(self, *args, **kwargs):
        answer = execute(self, *args, **kwargs)
        if unanswered:
            raise unanswered.pop()
        return answer

    monkeypatch.setattr(Pipeline, "execute", execute_unanswered)
    monkeypatch.setattr(workers.time, "sleep", lambda seconds: None)
    worker = workers.PatientWorker(["queues-birth-test"], connection=connection,
                                   name=f"queues-birth-{uuid.uuid4().hex[:8]}")
    try:
        worker.register_birth()
        assert worker.birth_date is not None and connection.hexists(worker.key, "birth")
        assert worker.name in {known.name for known in Worker.all(connection=connection)}
        assert caplog.text.count("Redis did not take its registration") == 1
    finally:
        unregister(worker)
        connection.delete(worker.key)


def refused_for_good(exit_: pytest.ExceptionInfo, server) -> None:
    """`exit_` is the worker's end for a refused password: exit status 1, one line naming Redis, without a password."""
    said = str(exit_.value.code)  # a message as SystemExit's code: Python prints it and exits with status 1
    assert said.startswith(f"qart: Redis at 127.0.0.1:{server.port}/0 refused the worker's password ("), said
    assert "\n" not in said and server.password not in said and "wrong-password" not in said


@pytest.fixture
def no_long_waits(monkeypatch) -> Iterator[list[float]]:
    """time.sleep, RQ's and the worker's, recorded instead of slept; a fifth wait fails the test: a worker waiting
    for a Redis that refuses its password waited for ever."""
    waits = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 4:
            raise AssertionError(f"the worker kept waiting: {waits}")

    with monkeypatch.context() as patched:  # undone before the server's stop, which sleeps while it waits
        patched.setattr(workers.time, "sleep", wait)
        yield waits


@pytest.mark.parametrize("password", ["wrong-password", ""], ids=["wrong", "none"])
def test_a_worker_redis_refuses_the_password_of_ends_at_its_start_with_one_line(password_redis, password):
    # rqworker said only Redis's words ("invalid username-password pair or user is disabled."): neither which Redis
    # nor that the worker stopped for good.
    from redis import Redis

    with pytest.raises(SystemExit) as ended:
        workers.PatientWorker(["queues-password"], connection=Redis.from_url(password_redis.url_with(password)))
    refused_for_good(ended, password_redis)


def test_a_worker_whose_registration_redis_refuses_the_password_of_is_not_waited_for(password_redis, no_long_waits):
    # Waited for as a Redis that is away: "refused" every few seconds, for ever, and the supervisor saw it running.
    from redis import Redis

    worker = workers.PatientWorker(["queues-password"], connection=Redis.from_url(password_redis.url),
                                   name="queues-password-birth")
    password_redis.change_password()
    with pytest.raises(SystemExit) as ended:
        worker.register_birth()
    refused_for_good(ended, password_redis)
    assert no_long_waits == []


def test_a_listening_worker_ends_once_redis_refuses_its_password(password_redis, no_long_waits):
    # A Redis restarted with another password: the worker's dequeue said "could not connect" every few seconds for
    # ever (a password read once from REDIS_URL does not mend), while the worker looked alive to its supervisor.
    from redis import Redis

    worker = workers.PatientWorker(["queues-password"], connection=Redis.from_url(password_redis.url),
                                   name="queues-password-listening")
    worker.register_birth()
    password_redis.change_password()
    with pytest.raises(SystemExit) as ended:
        worker.dequeue_job_and_maintain_ttl(1)
    refused_for_good(ended, password_redis)
    assert len(no_long_waits) <= 1  # RQ's own wait, at most, before the heartbeat that ends it

    worker.teardown()  # no goodbye to a Redis that refuses it: nothing raised, nothing asked


def test_a_call_redis_refuses_the_password_of_is_not_tried_again(password_redis, no_long_waits):
    # A job's end waited its patience (90 s for a generation) trying again a call that will never be taken.
    from redis import Redis
    from redis.exceptions import AuthenticationError

    worker = workers.PatientWorker(["queues-password"], connection=Redis.from_url(password_redis.url),
                                   name="queues-password-call")
    password_redis.change_password()
    with pytest.raises(AuthenticationError):
        worker.ask_patiently("record the end of a job", lambda: worker.connection.set("a", "1"), patience=90)
    assert no_long_waits == []


def test_rqworker_ends_with_one_line_when_redis_refuses_its_password(password_redis, monkeypatch):
    # rqworker catches a connection error and prints it: the refusal must leave it as the worker's own line
    import django_rq
    from django.core.management import call_command

    monkeypatch.setitem(django_rq.settings.QUEUES["webhooks"], "URL", password_redis.url_with("wrong-password"))
    with pytest.raises(SystemExit) as ended:
        call_command("rqworker", "webhooks")
    refused_for_good(ended, password_redis)
