"""GenerationWorker's own parts of RQ's loop: the reconciler in its maintenance, the heartbeats and lease of a running
job. Against the real Redis the suite runs on, in this process (no engine is loaded)."""

from __future__ import annotations

import subprocess
import time
from types import SimpleNamespace

import pytest
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, Retry, SimpleWorker, get_current_job
from rq.job import Job
from rq.worker_registration import unregister

from campaigns import maintenance as dashboards
from generator import claims, job_files, jobs, leases, processes, reconcile, warm_engines
from generator.core.engines.parameters import ModelSpec
from generator.models import GenerationJob, Prompt
from generator.worker import GenerationWorker
from qartsite import workers


@pytest.fixture
def worker(gpu_queue, db):  # a job's run first makes sure the database answers (`workers.wait_for_database`)
    worker = GenerationWorker([gpu_queue], connection=gpu_queue.connection)
    worker.register_birth()
    yield worker
    unregister(worker)
    gpu_queue.connection.delete(worker.key)


def lease_and_heartbeat() -> list:
    """A job that reports who holds its lease, and when RQ will take it for abandoned: at its start and after one
    heartbeat of its worker."""
    job = get_current_job()

    def expires() -> float:
        return max(score for key, score in job.connection.zrange(job.started_job_registry.key, 0, -1, withscores=True)
                   if key.decode().startswith(job.id + ":"))

    first, deadline = expires(), time.monotonic() + 30
    while expires() == first and time.monotonic() < deadline:  # the first heartbeat comes after 1 s
        time.sleep(0.1)
    return [job.connection.get(leases.LEASE_PREFIX + job.id).decode(), first - time.time(), expires() - first]


def stopped_mid_job() -> None:
    """What the worker's cold shut down does to the job it interrupts: its signal handler raises in it
    (`GenerationWorker.request_force_stop`)."""
    raise jobs.WorkerStopped()


def exits_by_itself() -> None:
    """A job whose own code calls sys.exit (a library's command line, say)."""
    raise SystemExit("bad option --foo")


@pytest.fixture
def generation(worker, django_user_model, django_capture_on_commit_callbacks) -> GenerationJob:
    """A generation row, queued."""
    user = django_user_model.objects.create(username="maker")
    job = GenerationJob.objects.create(owner=user, prompt=Prompt.remember(user, "a lighthouse", ""),
                                       content="https://qart.example/r/AbC123", steps=2, size=256)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_generation(job)
    return job


def run_next(worker, gpu_queue) -> Job:
    rq_job, queue = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    worker.execute_job(rq_job, queue)
    rq_job.refresh()
    return rq_job


def test_it_opens_the_media_storages_connections_before_its_first_job(worker, monkeypatch):
    # Opened by the first job's store, nine connections to a bucket (one a store thread) took ~1 s of its tail.
    steps = []
    monkeypatch.setattr(warm_engines, "get_engine",
                        lambda spec: SimpleNamespace(device="cpu", spec=ModelSpec(), warmed=set()))
    monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
    monkeypatch.setattr(job_files, "open_store_connections", lambda: steps.append("connections opened"))
    monkeypatch.setattr(SimpleWorker, "work", lambda self, *args, **kwargs: steps.append("jobs taken") or True)
    worker.work()
    assert steps == ["connections opened", "jobs taken"]


def test_its_maintenance_comes_round_every_interval(worker):
    assert worker.maintenance_interval == reconcile.INTERVAL
    assert worker.dequeue_timeout <= reconcile.INTERVAL  # an idle worker's loop is not stuck on the queue longer


def test_it_looks_for_jobs_whose_worker_here_is_gone_at_its_start_before_its_engine_loads(worker, monkeypatch):
    # Restarted after the out-of-memory killer took it: the job it ran waited for its lease and RQ's heartbeat to
    # expire (about 90 s), then for the next pass, while a large engine loaded in between.
    steps = []
    monkeypatch.setattr(reconcile, "reclaim", lambda queue: steps.append(f"reclaimed on {queue.name}") or [])

    def load(spec):
        steps.append("engine loaded")
        return SimpleNamespace(device="cpu", spec=ModelSpec(), warmed=set())

    monkeypatch.setattr(warm_engines, "get_engine", load)
    monkeypatch.setattr(warm_engines, "cuda_available", lambda: False)
    monkeypatch.setattr(job_files, "open_store_connections", lambda: None)
    monkeypatch.setattr(SimpleWorker, "work", lambda self, *args, **kwargs: True)
    worker.work()
    assert steps == ["reclaimed on gpu", "engine loaded"]


def test_an_idle_worker_looks_for_them_every_few_seconds(worker, monkeypatch):
    looks = []
    monkeypatch.setattr(reconcile, "reclaim", lambda queue: looks.append(queue.name) or [])
    assert worker.dequeue_timeout <= reconcile.RECLAIM_EVERY  # its loop's heartbeat comes round this often
    worker.heartbeat()
    assert looks == ["gpu"]
    with worker.connection.pipeline() as pipeline:  # a job's heartbeats: its own thread looks (below)
        worker.heartbeat(pipeline=pipeline)
    assert looks == ["gpu"]


def started_by_a_gone_process(worker, generation, gpu_queue) -> Job:
    """`generation`'s RQ job, started by `worker` as RQ records it, its lease naming a process that is gone: the job's
    worker killed (its RQ record says `worker`, for the test)."""
    rq_job, _ = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    worker.prepare_execution(rq_job)
    worker.prepare_job_execution(rq_job)
    GenerationJob.objects.filter(pk=generation.pk).update(status="running", stage="generating", attempts=1)
    gone = subprocess.Popen(["sleep", "60"])
    token = processes.process_token(gone.pid)
    gone.kill()
    gone.wait()
    leases.hold(gpu_queue.connection, rq_job.id, "killed-worker", process=token)
    return rq_job


def test_an_idle_worker_retries_at_once_a_job_whose_workers_process_here_is_gone(worker, generation, gpu_queue):
    started_by_a_gone_process(worker, generation, gpu_queue)
    worker.heartbeat()  # its idle loop's, RECLAIM_EVERY seconds at most after the kill
    generation.refresh_from_db()
    assert (generation.status, generation.stage) == ("queued", "retrying")
    assert gpu_queue.count == 1 and not gpu_queue.started_job_registry.get_job_ids(cleanup=False)


@pytest.mark.parametrize("look", ["idle heartbeat", "maintenance"])
def test_a_worker_retries_though_another_was_killed_while_it_cleaned(worker, generation, gpu_queue,
                                                                    killed_while_cleaning, look):
    # RQ's maintenance lock outlived the worker killed while it held it by 15 minutes, and with it every retry.
    started_by_a_gone_process(worker, generation, gpu_queue)
    killed_while_cleaning(gpu_queue)
    if look == "maintenance":  # RQ's registry cleaning: expired executions only (the mark of `reconcile.reclaim`)
        reconcile.reclaim(gpu_queue)
        worker.clean_registries()
    else:
        worker.heartbeat()
    generation.refresh_from_db()
    assert (generation.status, generation.stage) == ("queued", "retrying")
    assert gpu_queue.count == 1 and not gpu_queue.started_job_registry.get_job_ids(cleanup=False)


def taken_not_started(gpu_queue, holder: str, process: str) -> Job:
    """The queue's next job as a worker leaves it when it dies between taking it and starting it: moved out of the
    queue into RQ's intermediate list (RQ 2.6's first step), not in the started registry (its second), its lease taken
    by `holder`, the process `process` (`processes.process_token`)."""
    rq_job, _ = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    leases.hold(gpu_queue.connection, rq_job.id, holder, process=process)
    assert gpu_queue.intermediate_queue.get_job_ids() == [rq_job.id] and gpu_queue.count == 0
    return rq_job


@pytest.mark.parametrize("gone", ["its process here", "its registration"])
def test_an_idle_worker_puts_back_at_once_a_job_that_a_killed_worker_took_and_never_started(
        worker, generation, gpu_queue, gone_process, gone):
    # Found by RQ's maintenance only, a minute or two later, and then failed ("stuck in intermediate queue"), spending
    # an attempt of a job that never ran.
    boot_id, namespace, pid, started = gone_process.split(" ")
    holder, process = ((worker.name, gone_process) if gone == "its process here"  # RQ still counts it
                       else ("expired-worker", f"another-boot {namespace} {pid} {started}"))  # elsewhere, unregistered
    taken = taken_not_started(gpu_queue, holder, process)
    queued_since = gpu_queue.enqueue(naps, job_id="queued-since")
    worker.heartbeat()  # its idle loop's, RECLAIM_EVERY seconds at most after the kill
    assert gpu_queue.job_ids == [taken.id, queued_since.id]  # back at the front, where it was
    assert not gpu_queue.intermediate_queue.get_job_ids()
    assert not gpu_queue.connection.exists(leases.LEASE_PREFIX + taken.id, leases.HEARD_PREFIX + taken.id)
    taken.refresh()
    generation.refresh_from_db()
    assert (taken.get_status(), taken.retries_left) == ("queued", 1)  # not a failure: its retry is still there
    assert (generation.status, generation.attempts) == ("queued", 0)


@pytest.mark.parametrize("case", ["not leased yet", "leased by a live worker", "an earlier run's lease"])
def test_a_job_that_a_live_worker_took_and_has_not_started_yet_is_left_to_it(worker, generation, gpu_queue,
                                                                            gone_process, case):
    # RQ 2.6 moves the job out of the queue, then puts it in the started registry; a GenerationWorker takes its lease
    # in between, then may wait minutes for its database. Put back meanwhile, the job would run twice.
    rq_job, _ = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    if case == "leased by a live worker":
        leases.hold(gpu_queue.connection, rq_job.id, worker.name)  # this process: alive
    elif case == "an earlier run's lease":  # its worker killed mid-job; the live one that took the retry not yet
        leases.hold(gpu_queue.connection, rq_job.id, "killed-worker", process=gone_process)
        earlier = rq_job.enqueued_at.timestamp() - 90
        gpu_queue.connection.set(leases.HEARD_PREFIX + rq_job.id, f"{earlier:.3f} killed-worker")
    worker.heartbeat()
    assert reconcile.reconcile_jobs(grace=0).requeued == []
    assert gpu_queue.intermediate_queue.get_job_ids() == [rq_job.id] and gpu_queue.count == 0


def naps() -> None:
    """A job that outlasts two heartbeats a second apart."""
    time.sleep(2.5)


def test_a_busy_worker_marks_them_abandoned_for_the_next_idle_look(worker, generation, gpu_queue, caplog):
    # Every worker of a host may be busy when one of them is killed. Retried from the heartbeats' thread, RQ's failure
    # callback raised there ("signal only works in main thread": its time limit is a SIGALRM) and would have taken
    # the running job's own time limit.
    killed = started_by_a_gone_process(worker, generation, gpu_queue)
    worker.job_monitoring_interval = 1
    gpu_queue.enqueue(naps, job_id="naps", job_timeout=600)
    rq_job, queue = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    worker.execute_job(rq_job, queue)
    assert rq_job.get_status() == "finished" and "Traceback" not in caplog.text, caplog.text
    assert killed.id in gpu_queue.started_job_registry.get_expired_job_ids()  # marked: its heartbeat expired
    assert not gpu_queue.connection.exists(leases.LEASE_PREFIX + killed.id)
    generation.refresh_from_db()
    assert generation.status == "running"  # the row is RQ's failure callback's to change, in a main thread
    worker.heartbeat()  # the next idle look: this worker's after its job, or any other's
    generation.refresh_from_db()
    assert (generation.status, generation.stage) == ("queued", "retrying")


@pytest.mark.parametrize("failure", [RedisConnectionError("Connection refused."),
                                     OperationalError("the database is away"), RuntimeError("a bug")])
def test_a_look_that_fails_does_not_stop_the_worker(worker, monkeypatch, failure):
    def fail(queue):
        raise failure

    monkeypatch.setattr(reconcile, "reclaim", fail)
    worker.heartbeat()  # RQ's loop, or the heartbeats' thread, would stop on an exception from here


def test_its_maintenance_runs_the_reconciler(worker, monkeypatch):
    passes = []
    monkeypatch.setattr(reconcile, "reconcile_jobs", lambda: passes.append(1) or reconcile.Reconciled())
    worker.run_maintenance_tasks()
    assert passes == [1]


def test_a_reconciler_that_fails_does_not_stop_the_worker(worker, monkeypatch, caplog):
    def fail():
        raise RuntimeError("the database is away")

    monkeypatch.setattr(reconcile, "reconcile_jobs", fail)
    worker.run_maintenance_tasks()  # RQ's loop would quit on an exception from here
    assert "The reconciler could not run" in caplog.text and "the database is away" in caplog.text


@pytest.mark.parametrize("outage", [RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
                                    OperationalError("connection to server failed: Connection refused")])
def test_a_reconciler_that_cannot_reach_redis_or_the_database_says_so_in_one_line(worker, monkeypatch, caplog, outage):
    # Its 40-line traceback came at every maintenance of the outage, as the dashboards' did before (a fault drill).
    def away():
        raise outage

    monkeypatch.setattr(reconcile, "reconcile_jobs", away)
    worker.run_maintenance_tasks()
    said = [r for r in caplog.records if "reconciler could not run" in r.getMessage()]
    assert len(said) == 1 and "Connection refused" in said[0].getMessage() and said[0].exc_info is None


def test_its_maintenance_keeps_the_dashboards_and_survives_their_failure(db, worker, monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(dashboards, "run", lambda connection: calls.append(connection))
    worker.run_maintenance_tasks()
    assert calls == [worker.connection]

    def fail(connection):
        raise RuntimeError("the database is away")

    monkeypatch.setattr(dashboards, "run", fail)
    worker.run_maintenance_tasks()
    assert "The dashboards' maintenance could not run" in caplog.text


@pytest.mark.parametrize("outage", [RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
                                    OperationalError("connection to server failed: Connection refused")])
def test_its_dashboards_maintenance_says_an_outage_in_one_line(db, worker, monkeypatch, caplog, outage):
    # With the database away its traceback came every minute; a Redis outage was said in one line (a fault drill).
    def away(connection):
        raise outage

    monkeypatch.setattr(dashboards, "run", away)
    worker.run_maintenance_tasks()
    said = [r for r in caplog.records if "dashboards' maintenance could not run" in r.getMessage()]
    assert len(said) == 1 and "Connection refused" in said[0].getMessage() and said[0].exc_info is None


def test_a_running_job_keeps_its_lease_and_short_heartbeats_then_releases_the_lease(worker, gpu_queue):
    worker.job_monitoring_interval = 1  # a heartbeat every second
    gpu_queue.enqueue(lease_and_heartbeat, job_id="lease-probe", job_timeout=600)
    rq_job, queue = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    worker.execute_job(rq_job, queue)
    rq_job.refresh()
    holder, lives_for, renewed_by = rq_job.return_value()
    assert holder == worker.name
    # RQ's forking worker's heartbeat, not SimpleWorker's job time limit (600 + 60 s): a killed worker's job is
    # noticed within a minute and a half, and a live one's is renewed.
    assert 0 < lives_for <= worker.job_monitoring_interval + 60
    assert renewed_by > 0
    assert not gpu_queue.connection.exists(leases.LEASE_PREFIX + rq_job.id)


def test_a_redis_gone_when_a_job_ends_does_not_stop_the_worker(worker, gpu_queue, monkeypatch, caplog):
    # RQ records a job's end in Redis: restarted meanwhile, that raised ConnectionError out of the worker's loop, and
    # the worker quit (and quit again while Redis stayed away)
    from redis.exceptions import ConnectionError as RedisConnectionError
    from rq.worker import SimpleWorker

    def ends_without_redis(self, job, queue):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(SimpleWorker, "execute_job", ends_without_redis)
    gpu_queue.enqueue(time.time, job_id="redis-gone-probe")
    rq_job, queue = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    worker.execute_job(rq_job, queue)  # returns: the loop goes on to its next dequeue, which waits for Redis
    assert any("Redis went away while redis-gone-probe ended" in r.getMessage() for r in caplog.records)
    assert not gpu_queue.connection.exists(leases.LEASE_PREFIX + rq_job.id)


def test_a_jobs_end_waits_for_a_redis_that_did_not_answer(worker, gpu_queue, monkeypatch, caplog):
    # A Redis frozen past the worker's timeout (20 s) as the job's code returned failed the run in RQ's eyes: a
    # traceback, the failure callback, and the job run again (a fault drill)
    from redis.exceptions import TimeoutError as RedisTimeoutError

    asked, still_started = [], claims.still_started

    def frozen_at_first(worker, job):
        asked.append(job.id)
        if len(asked) == 1:
            raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379")
        return still_started(worker, job)

    monkeypatch.setattr(claims, "still_started", frozen_at_first)
    monkeypatch.setattr(workers.time, "sleep", lambda seconds: None)  # the wait before it asks again
    gpu_queue.enqueue(time.time, job_id="frozen-end-probe", retry=Retry(max=1))
    rq_job = run_next(worker, gpu_queue)
    assert rq_job.get_status() == "finished" and rq_job.retries_left == 1
    assert asked == ["frozen-end-probe"] * 2 and not gpu_queue.started_job_registry.get_job_ids()
    said = [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert len(said) == 1 and "tries to record the end of frozen-end-probe again" in said[0], said


def test_a_job_waits_for_a_database_that_is_away_before_it_runs(worker, gpu_queue, monkeypatch):
    # RQ runs a crashed job's retry at once: with PostgreSQL restarting, the retry failed within the same second, and
    # the row waited 3 minutes for the reconciler (a fault drill).
    from django.db import OperationalError, connections

    database = type(connections["default"])
    refusals, waits, ensure = [OperationalError("connection refused")] * 2, [], database.ensure_connection

    def refused_twice(self):
        if refusals:
            raise refusals.pop()
        return ensure(self)

    monkeypatch.setattr(database, "ensure_connection", refused_twice)
    monkeypatch.setattr(workers.time, "sleep", waits.append)
    gpu_queue.enqueue(time.time, job_id="database-away-probe")
    rq_job, queue = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    worker.execute_job(rq_job, queue)
    assert waits == [1.0, 2.0] and rq_job.get_status() == "finished"


def test_a_job_stopped_by_a_cold_shut_down_is_said_in_one_line_and_retried(worker, gpu_queue, caplog):
    # Every Ctrl-C of `make run` during a generation printed the job's traceback as a crash (70 lines of torch frames).
    handled = []
    worker.push_exc_handler(lambda job, exc_type, exc_value, tb: handled.append(exc_type))
    gpu_queue.enqueue(stopped_mid_job, job_id="cold-stop-probe", retry=Retry(max=1))
    rq_job = run_next(worker, gpu_queue)
    said = [r.getMessage() for r in caplog.records if "cold-stop-probe" in r.getMessage()]
    assert any("stopped while running cold-stop-probe" in message for message in said)
    assert not any("Traceback" in message for message in said)
    assert handled == [jobs.WorkerStopped]  # exception handlers still hear of it
    # Not a generation (a print file's job): no row to put back, so retried as before
    assert rq_job.get_status() == "queued" and rq_job.retries_left == 0


def test_a_generation_stopped_by_a_cold_shut_down_goes_back_without_spending_an_attempt(
        worker, gpu_queue, generation, cold_stops, monkeypatch, caplog):
    # Stopping `make run` twice during the same job failed it: "The worker was stopped while it ran this job, on its
    # last try". The operator restarting their server did nothing wrong with the job.
    from campaigns import webhooks

    sent = []
    monkeypatch.setattr(webhooks, "generation_finished", lambda job: sent.append(job.pk))
    for stops in (1, 2, 3):
        rq_job = run_next(worker, gpu_queue)
        generation.refresh_from_db()
        assert (generation.status, generation.stage, generation.attempts) == ("queued", "interrupted", 0)
        assert rq_job.get_status() == "queued" and rq_job.retries_left == 1  # RQ's retry not spent either
        assert generation.worker_stops == stops and gpu_queue.count == 1
    assert not sent  # not ended, so not announced
    said = [r for r in caplog.records if rq_job.id in r.getMessage()]
    assert any("goes back in the queue, its attempt not spent" in r.getMessage() for r in said)
    assert not any("Traceback" in r.getMessage() or r.exc_info for r in said)


def test_a_generation_put_back_after_a_stop_runs_before_the_jobs_queued_while_it_ran(worker, gpu_queue, generation,
                                                                                      cold_stops):
    # It went to the back of the queue, behind jobs queued after it had reached the front: the person who had waited
    # longest waited again for all of them.
    rq_job, queue = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    gpu_queue.enqueue(time.time, job_id="queued-meanwhile")
    worker.execute_job(rq_job, queue)
    generation.refresh_from_db()
    assert gpu_queue.job_ids == [rq_job.id, "queued-meanwhile"] and jobs.queue_position(generation) == 1


def test_a_generation_stopped_too_often_spends_its_attempts_again(worker, gpu_queue, generation, cold_stops):
    # The bound on free stops (jobs.MAX_WORKER_STOPS): a job no worker lets finish does not come back for ever.
    GenerationJob.objects.filter(pk=generation.pk).update(worker_stops=jobs.MAX_WORKER_STOPS - 1)
    run_next(worker, gpu_queue)
    rq_job = run_next(worker, gpu_queue)
    generation.refresh_from_db()
    assert (generation.status, generation.stage, generation.attempts) == ("queued", "retrying", 1)
    assert rq_job.retries_left == 0 and generation.worker_stops == jobs.MAX_WORKER_STOPS
    run_next(worker, gpu_queue)
    generation.refresh_from_db()
    assert generation.status == "failed" and "worker was stopped" in generation.error


def test_a_systemexit_of_the_jobs_own_code_is_a_crash(worker, gpu_queue, caplog):
    # Any SystemExit in a job was taken for the worker's stop, said in one line without its traceback.
    handled = []
    worker.push_exc_handler(lambda job, exc_type, exc_value, tb: handled.append(exc_type))
    gpu_queue.enqueue(exits_by_itself, job_id="exit-probe", retry=Retry(max=1))
    rq_job = run_next(worker, gpu_queue)
    said = [r.getMessage() for r in caplog.records if "exit-probe" in r.getMessage()]
    assert any("Traceback" in message and "bad option --foo" in message for message in said)
    assert not any("stopped while running" in message for message in said)
    assert handled == [SystemExit] and rq_job.retries_left == 0  # an attempt spent, as by any crash


def sat_in_the_intermediate_list(gpu_queue, rq_job: Job, seconds: float) -> None:
    """RQ's maintenance first saw `rq_job` in its intermediate list `seconds` ago (`IntermediateQueue.set_first_seen`):
    past a minute, its cleanup takes the job for stuck."""
    gpu_queue.connection.set(gpu_queue.intermediate_queue.get_first_seen_key(rq_job.id), time.time() - seconds)


@pytest.mark.parametrize("case", ["leased by a live worker", "leased by a worker on another host"])
def test_rqs_cleanup_leaves_a_job_whose_worker_waits_for_its_database(worker, generation, gpu_queue, case):
    # A GenerationWorker takes the job's lease, then waits up to two minutes for its database before RQ starts the job
    # (`workers.wait_for_database`). A minute in, RQ's cleanup took it for stuck and retried it into the queue: another
    # worker took it there, and both ran it (two GPU batches, the first attempt's candidates dropped as superseded).
    rq_job, _ = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    if case == "leased by a live worker":
        leases.hold(gpu_queue.connection, rq_job.id, worker.name)  # this process: alive
    else:  # its process cannot be seen from here; its RQ registration is alive
        leases.hold(gpu_queue.connection, rq_job.id, worker.name, process="another-boot ns 1 2")
    sat_in_the_intermediate_list(gpu_queue, rq_job, 90)
    worker.clean_registries()  # RQ's maintenance, a minute or more after it took the job
    rq_job.refresh()
    assert gpu_queue.intermediate_queue.get_job_ids() == [rq_job.id] and gpu_queue.count == 0
    assert (rq_job.get_status(), rq_job.retries_left) == ("queued", 1)  # not retried: its worker starts it


@pytest.mark.parametrize("case", ["not leased", "its holder's process here is gone", "its holder unregistered"])
def test_rqs_cleanup_leaves_a_stuck_job_that_no_live_worker_leases_to_the_put_back(worker, generation, gpu_queue,
                                                                                   gone_process, case, monkeypatch):
    # RQ's cleanup failed it ("stuck in intermediate queue", a retry spent on a job that never ran) and queued the retry
    # before it dropped the old copy from the list: two copies of one enqueue, which `claims.start` does not allow.
    rq_job, _ = Queue.dequeue_any([gpu_queue], timeout=None, connection=gpu_queue.connection)
    if case == "its holder's process here is gone":
        leases.hold(gpu_queue.connection, rq_job.id, worker.name, process=gone_process)
    elif case == "its holder unregistered":
        leases.hold(gpu_queue.connection, rq_job.id, "expired-worker", process="another-boot ns 1 2")
    sat_in_the_intermediate_list(gpu_queue, rq_job, 90)
    worker.clean_registries()
    rq_job.refresh()
    assert gpu_queue.intermediate_queue.get_job_ids() == [rq_job.id] and gpu_queue.count == 0
    assert (rq_job.get_status(), rq_job.retries_left) == ("queued", 1)
    monkeypatch.setattr(claims, "TAKE_GRACE", 0)  # a job never leased: its first look without one, 10 s ago
    worker.heartbeat()  # an idle look: `claims.put_back_taken`
    rq_job.refresh()
    assert not gpu_queue.intermediate_queue.get_job_ids() and gpu_queue.job_ids == [rq_job.id]
    assert (rq_job.get_status(), rq_job.retries_left) == ("queued", 1)  # its retry kept
