"""What the site asks of RQ: how many workers listen on a queue, workers that wait out a Redis that stalls (and,
before a job, a database that is away), and a job that a stop of its worker interrupted put back in the queue
(`put_back_if_stopped`: generations and large print files)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import DatabaseError, connections
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.worker_registration import clean_worker_registry

log = logging.getLogger(__name__)

SCHEDULER_CHECK = 30  # seconds: how often an idle worker with a scheduler makes sure the scheduler still runs
DATABASE_PATIENCE = 120.0  # seconds a worker waits for its database before it runs a job anyway (to fail it)


# A job whose run a stop of its worker interrupted goes back in the queue without spending an attempt this many times;
# after that a stop counts as any end of its worker (a generation is retried once, then failed; a print file fails). An
# operator's restart does not stop the same job five times, but a job that outlives every worker (a service manager or
# deploy that restarts the workers more often than the job takes) would otherwise come back for ever, holding a GPU or
# a gigabyte or two each time.
MAX_WORKER_STOPS = 5
PUT_BACK = "qart_put_back"  # a failure callback's word to the worker, in the RQ job's meta: spend no retry on this run
WORKER_STOPS = "qart_worker_stops"  # in the RQ job's meta: its runs stopped so far, for a job with no row to count them


class WorkerStopped(SystemExit):
    """The SystemExit a worker's cold shut down raises in the job it interrupts (`GenerationWorker.request_force_stop`:
    `make run`'s Ctrl-C, a service manager's stop), told apart from a SystemExit the job's own code raised (a library
    calling sys.exit), which is a crash."""


def put_back_if_stopped(rq_job, exc_value: BaseException, put_back: Callable[[], bool] | None = None) -> bool:
    """In a job's RQ failure callback: whether the run ended by a stop of its worker (`WorkerStopped`), and so goes back
    to the front of the queue without spending a retry (`GenerationWorker.handle_job_failure` reads the mark this
    leaves in its meta). At most MAX_WORKER_STOPS times: then False, and the job fails as by any end of its worker.

    Args:
        rq_job (`rq.job.Job`): the job whose run failed.
        exc_value (`BaseException`): what ended the run.
        put_back (`Callable[[], bool]`, *optional*): puts the job's own record back (a generation's row:
            `jobs.put_back`, which counts its stops there) and says whether it did; without it the stops are counted in
            the RQ job's meta, which goes back in the queue with it.
    """
    if not isinstance(exc_value, WorkerStopped):
        return False
    if put_back is None:
        stops = rq_job.meta.get(WORKER_STOPS, 0)
        if stops >= MAX_WORKER_STOPS:
            return False
        rq_job.meta[WORKER_STOPS] = stops + 1
    elif not put_back():
        return False
    rq_job.meta[PUT_BACK] = True
    return True


def workers_on(queue: Queue) -> int:
    """How many workers listen on `queue` now.

    A worker killed without a goodbye stays registered until someone cleans the registry up; its heartbeat key has
    expired by then, so cleaning first counts only the living.

    Raises:
        redis.exceptions.RedisError: Redis cannot be reached.
    """
    clean_worker_registry(queue)
    return Worker.count(queue=queue)


# What a Redis that stalled or went away raises: RQ's loop quits on either outside its dequeue.
REDIS_AWAY = (RedisTimeoutError, RedisConnectionError)


class RedisPatience:
    """A worker mixin: a Redis that stops answering (a timeout) is waited for, as RQ already waits for one that
    refuses connections. RQ's own loop quits on a timeout, with exit status 0, so no supervisor restarted the worker
    after a stall of a minute or two, and jobs stayed queued until someone noticed. Outside the dequeue (a job's end,
    the heartbeat after it, the suspension check, the maintenance) a refused connection is waited out too: a Redis
    restarted while a job ran made the worker quit, and quit again while Redis stayed away.

    RQ doubles its wait between tries up to a minute, and keeps the doubled wait after Redis answers again: after an
    outage of a minute or two a worker slept up to 60 s more before it took the queued jobs. Here a wait is at most
    `max_connection_wait_time`.
    """

    max_connection_wait_time = 5.0  # seconds between tries while Redis is away: jobs start within 5 s of its return

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        except REDIS_AWAY as exc:
            # RQ records the job's end in Redis. The job's own row (a generation's) says how it ended; the next
            # dequeue waits for Redis.
            log.error("Worker %s: Redis went away while %s ended (%s)", self.name, job.id, exc)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if timeout is not None and self.scheduler is not None:
            timeout = min(timeout, SCHEDULER_CHECK)  # RQ's loop heartbeats between two waits: see restart_scheduler
        wait = 1.0
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except REDIS_AWAY as exc:
                # RQ waits for a refused connection only around its dequeue proper; the idle state it records first
                # raised out of its loop, and a worker whose job ended while Redis was away quit (a fault drill).
                log.error("Worker %s: Redis did not answer (%s); trying again in %.0f s", self.name, exc, wait)
                time.sleep(wait)
                wait = min(wait * self.exponential_backoff_factor, self.max_connection_wait_time)

    def check_for_suspension(self, burst):
        try:
            super().check_for_suspension(burst)
        except REDIS_AWAY as exc:  # asked again before the next dequeue, which waits for Redis
            log.warning("Worker %s: could not ask whether workers are suspended (%s)", self.name, exc)

    def run_maintenance_tasks(self):
        try:
            super().run_maintenance_tasks()
        except REDIS_AWAY as exc:
            log.warning("Worker %s: maintenance skipped, Redis did not answer (%s)", self.name, exc)

    def heartbeat(self, timeout=None, pipeline=None):
        try:
            super().heartbeat(timeout, pipeline)
        except REDIS_AWAY as exc:  # the next dequeue waits for Redis; the loop must not quit here
            log.warning("Worker %s: heartbeat not sent, Redis did not answer (%s)", self.name, exc)
            return
        self.restart_scheduler()

    def restart_scheduler(self) -> None:
        """Start this worker's scheduler process again if it died, as it does when Redis goes away, and the scheduler
        lock is free. RQ looks only in its maintenance, every 10 minutes, so scheduled jobs (webhook retries) waited
        that long after a Redis restart; here it is at every heartbeat: at least every SCHEDULER_CHECK seconds while
        idle (see the dequeue). A worker whose scheduler never started (another worker's holds the lock, or a burst)
        is left to RQ's maintenance, as is the process that runs a job (a forked copy of the worker)."""
        scheduler = self.scheduler
        if scheduler is None or self.is_horse or scheduler._process is None or scheduler._process.is_alive():
            return
        try:
            # Only a lock taken now: RQ keeps the dead process's locks in the set, and would start a second scheduler
            # beside another worker's that took the lock meanwhile.
            scheduler._acquired_locks = set()
            if scheduler.acquire_locks():
                scheduler.start()
                log.warning("Worker %s: the scheduler had stopped; started it again", self.name)
        except RedisError as exc:
            log.warning("Worker %s: could not start the scheduler again yet (%s)", self.name, exc)


class PatientWorker(RedisPatience, Worker):
    """RQ's worker with `RedisPatience`: the class `rqworker` uses unless told otherwise (settings.RQ)."""


def drop_dead_connections() -> None:
    """Close this process's database connections that no longer work, so that the next query opens a new one.

    Django checks its connections around each web request; a worker runs its jobs in one process for days. After a
    PostgreSQL restart (a fault drill) the next job failed at its first query with "the connection is closed", its
    retry at once the same way, and so did RQ's failure callback (`jobs.generation_failed`): the row said "queued"
    until the reconciler re-queued it minutes later. `close_old_connections` does not notice: a connection that has
    not failed yet is not asked."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
            connection.close()


def wait_for_database(patience: float = DATABASE_PATIENCE) -> bool:
    """Wait until the default database takes a connection again, at most `patience` seconds; whether it did.

    RQ runs a crashed job's retry at once: a PostgreSQL restarted mid-job (a fault drill, 13 s away) failed the job,
    then its retry within the same second, and both failure callbacks; the row said "running" for 3 minutes, until
    the reconciler queued it again. Waited for here, the retry runs once the database is back.
    """
    connection = connections["default"]
    deadline, wait = time.monotonic() + patience, 1.0
    while True:
        try:
            connection.ensure_connection()
            return True
        except DatabaseError as exc:
            connection.close()
            if time.monotonic() + wait > deadline:
                log.error("The database has not answered for %.0f s (%s): the job runs anyway", patience, exc)
                return False
            log.warning("The database does not answer (%s); the next job waits for it, %.0f s more", exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, RedisPatience.max_connection_wait_time)  # as long as a wait for Redis, at most
