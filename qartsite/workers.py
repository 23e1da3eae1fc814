"""The site's RQ workers (`PatientWorker`, which `rqworker` uses, and the mixins the generation worker shares): they
wait out a Redis that stalls (and, before a job, a database that is away), end in one line when Redis refuses their
password (`PasswordRefused`), and put back in the queue a job that a stop of their own interrupted
(`put_back_if_stopped`: generations and large print files). What the web process and the commands ask of Redis too
(the breaker, the wording of its failures) is in `qartsite.queues`."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError, connections
from redis.exceptions import AuthenticationError, RedisError
from rq import Queue, Worker
from rq.utils import as_text, now, utcformat

from qartsite.queues import PASSWORD_FIX, REDIS_AWAY, password_refused, why_refused

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    calling sys.exit), which is a crash. A forking worker's stop kills the job's process instead, and tells its failure
    callback with this (`PatientWorker.request_force_stop`)."""


def put_back_if_stopped(rq_job, exc_value: BaseException, put_back: Callable[[], bool] | None = None) -> bool:
    """In a job's RQ failure callback: whether the run ended by a stop of its worker (`WorkerStopped`), and so goes back
    to the front of the queue without spending a retry (`PutsBackStopped.handle_job_failure` reads the mark this
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


class PasswordRefused(SystemExit):
    """Ends a worker whose password Redis refused (redis-py's `AuthenticationError`: a wrong password, none where Redis
    asks for one, or one where it asks for none), with exit status 1 and one line. It does not mend while the worker
    runs, which read REDIS_URL once: waited for as a Redis that is away, the worker said "refused" every few seconds
    for ever, and its supervisor saw it running. Ended, the supervisor's restarts (and their back-off) show it, and
    the start after REDIS_URL or Redis's password is put right takes the queue."""

    @classmethod
    def by(cls, connection, exc: AuthenticationError) -> PasswordRefused:
        return cls(f"qart: {password_refused(connection, exc, 'the worker')}: it stops. Start it again once "
                   f"{PASSWORD_FIX}.")


class RedisPatience:
    """A worker mixin: a Redis that stops answering (a timeout) is waited for, as RQ already waits for one that
    refuses connections. RQ's own loop quits on a timeout, with exit status 0, so no supervisor restarted the worker
    after a stall of a minute or two, and jobs stayed queued until someone noticed. Outside the dequeue (a job's end,
    the heartbeat after it, the suspension check, the maintenance) a refused connection is waited out too: a Redis
    restarted while a job ran made the worker quit, and quit again while Redis stayed away.

    RQ doubles its wait between tries up to a minute, and keeps the doubled wait after Redis answers again: after an
    outage of a minute or two a worker slept up to 60 s more before it took the queued jobs. Here a wait is at most
    `max_connection_wait_time`.

    A Redis that refuses the worker's password is not waited for: the worker ends (`PasswordRefused`), wherever its
    loop meets the refusal (its start, its registration, a heartbeat, a dequeue, a job's end).
    """

    max_connection_wait_time = 5.0  # seconds between tries while Redis is away: jobs start within 5 s of its return
    # Seconds a worker asked to stop (a warm stop) still waits for Redis to take a call it cannot go on without (a
    # finished job's end): the worker then quits by itself, its goodbye said, before the kill that docker and
    # supervisord send 10 s after their stop, and a Redis that restarts or stalls for a moment takes the end.
    stop_patience = 5.0
    _password_refused = False  # Redis refused this worker's password: it ends without a goodbye (see `teardown`)

    def __init__(self, *args, **kwargs):
        # RQ names the worker's connection (CLIENT SETNAME) as it makes the worker: a wrong password ended rqworker
        # there, with Redis's words alone ("invalid username-password pair or user is disabled.").
        try:
            super().__init__(*args, **kwargs)
        except AuthenticationError as exc:
            self._end_refused(exc)

    def _end_refused(self, exc: RedisError) -> None:
        """End the worker (`PasswordRefused`) when `exc` says Redis refused its password; else return."""
        if isinstance(exc, AuthenticationError):
            self._password_refused = True
            raise PasswordRefused.by(self.connection, exc) from None

    def teardown(self):
        if not self._password_refused:
            super().teardown()
        elif self.scheduler is not None:  # Redis takes no goodbye from this worker; its scheduler process still ends
            self.stop_scheduler()

    def register_birth(self):
        """RQ's registration, waited for at the worker's start while Redis refuses it or is away. A worker started
        while Redis was full (maxmemory, noeviction) exited 1 with a traceback at its registration, and one started
        while Redis was away exited 1 (rqworker's "connection refused"): nothing took the queue until someone started
        it again. A registration again (`register_again`) is not waited for here: its caller goes on without it."""
        if self.birth_date is not None:
            return super().register_birth()
        wait, tried = 1.0, None
        while True:
            try:
                if tried is not None and self._registered_at(tried):
                    self.birth_date = tried
                    return None
                return super().register_birth()
            except REDIS_AWAY as exc:
                self._end_refused(exc)
                # A write that Redis took but did not answer (it stalled, then resumed): the next try finds this
                # worker's own record, which RQ refuses as another live worker's (a ValueError: the worker exited 1).
                tried = self.birth_date or tried
                self.birth_date = None  # RQ sets it before its write: the worker is not registered yet
                log.error("Worker %s: Redis did not take its registration (%s); trying again in %.0f s", self.name,
                          why_refused(exc), wait)
                time.sleep(wait)
                wait = min(wait * self.exponential_backoff_factor, self.max_connection_wait_time)

    def _registered_at(self, birth) -> bool:
        """Whether Redis holds this worker's registration of `birth` (RQ writes it whole, in one transaction)."""
        stored = self.connection.hget(self.key, "birth")
        return stored is not None and as_text(stored) == utcformat(birth)

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        except REDIS_AWAY as exc:
            self._end_refused(exc)
            # RQ records the job's end in Redis. The job's own row (a generation's) says how it ended; the next
            # dequeue waits for Redis.
            log.error("Worker %s: Redis went away while %s ended (%s)", self.name, job.id, exc)

    def ask_patiently(self, what: str, call: Callable[[], T], patience: float) -> T:
        """`call()`, tried again while Redis does not answer (`REDIS_AWAY`), for `patience` seconds at most, and
        `stop_patience` seconds at most once the worker was asked to stop: for a call the worker cannot go on without,
        which may run twice (a frozen Redis may still run a request whose answer timed out, when it wakes).

        RQ's warm stop (the first SIGTERM or Ctrl-C) lets the job end, and its end recorded is part of that: given up at
        the stop, a job whose work was done stayed "started" in Redis, to be run again. A cold stop (the second signal)
        raises out of the wait at once, from its signal handler.

        Args:
            what (`str`): what the call does, for the log ("record the end of qart-generation-7").
            call (`Callable[[], T]`): the call.
            patience (`float`): seconds after which the last try's error is raised.

        Returns:
            `T`: what the call returned.

        Raises:
            redis.exceptions.RedisError: Redis did not answer for `patience` seconds, or refused the call (a wrong
                password at once: `AuthenticationError`).
        """
        deadline, wait, stopping = time.monotonic() + patience, 1.0, False
        while True:
            tried = time.monotonic()
            try:
                return call()
            except REDIS_AWAY as exc:
                if isinstance(exc, AuthenticationError):  # it will not mend: the worker's loop ends it next
                    raise
                now = time.monotonic()
                if self._stop_requested and not stopping:  # counted from the first try that fails after the stop
                    stopping, deadline = True, min(deadline, now + self.stop_patience)
                # Stopping, a try is made only if one as long as the last ends within the stop's patience: against a
                # frozen Redis each waits the connection's timeout (20 s for a generation worker), past the kill.
                if now + wait + (now - tried if stopping else 0.0) > deadline:
                    raise
                log.warning("Worker %s: Redis did not take the call (%s); it tries to %s again in %.0f s%s", self.name,
                            why_refused(exc), what, wait, " before it stops" if stopping else "")
                time.sleep(wait)
                wait = min(wait * self.exponential_backoff_factor, self.max_connection_wait_time)

    def set_shutdown_requested_date(self):
        # Written by RQ's warm stop from its signal handler, in the middle of whatever runs (a job's code, a wait for
        # Redis in `ask_patiently`): the error of a Redis that did not answer was raised there, into the job.
        try:
            super().set_shutdown_requested_date()
        except REDIS_AWAY as exc:
            log.warning("Worker %s: could not record that it was asked to stop (%s)", self.name, why_refused(exc))

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        if timeout is not None and self.scheduler is not None:
            timeout = min(timeout, SCHEDULER_CHECK)  # RQ's loop heartbeats between two waits: see restart_scheduler
        wait = 1.0
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except REDIS_AWAY as exc:
                self._end_refused(exc)
                # RQ waits for a refused connection only around its dequeue proper; the idle state it records first
                # raised out of its loop, and a worker whose job ended while Redis was away quit (a fault drill).
                log.error("Worker %s: Redis did not answer (%s); trying again in %.0f s", self.name, exc, wait)
                time.sleep(wait)
                wait = min(wait * self.exponential_backoff_factor, self.max_connection_wait_time)

    def check_for_suspension(self, burst):
        try:
            super().check_for_suspension(burst)
        except REDIS_AWAY as exc:  # asked again before the next dequeue, which waits for Redis
            self._end_refused(exc)
            log.warning("Worker %s: could not ask whether workers are suspended (%s)", self.name, exc)

    def run_maintenance_tasks(self):
        try:
            super().run_maintenance_tasks()
        except REDIS_AWAY as exc:
            self._end_refused(exc)
            log.warning("Worker %s: maintenance skipped, Redis did not answer (%s)", self.name, exc)

    def heartbeat(self, timeout=None, pipeline=None):
        try:
            super().heartbeat(timeout, pipeline)
        except REDIS_AWAY as exc:  # the next dequeue waits for Redis; the loop must not quit here
            self._end_refused(exc)  # unless Redis refused its password: that does not mend
            log.warning("Worker %s: heartbeat not sent, Redis did not answer (%s)", self.name, exc)
            return
        if pipeline is None:  # a job's heartbeats go in a pipeline, which cannot be asked; the next idle one asks
            self.register_again()
        self.restart_scheduler()

    def register_again(self) -> None:
        """Register this worker again if Redis lost its registration (restarted without its data, or emptied). RQ
        registers a worker only at its birth, and its heartbeat then made a record without the worker's queues or
        birth, in none of the worker sets: the worker took jobs but counted for no one (`workers_on` said 0), so large
        print files were made in the web request, past gunicorn's timeout, until the worker was restarted."""
        if self.birth_date is None:  # never registered (not started by work()): nothing to register again
            return
        try:
            if self.connection.hexists(self.key, "birth"):
                return
            self.connection.delete(self.key)  # the heartbeat's partial record: register_birth refuses a live one
            self.register_birth()
            self.set_state(self.get_state())
        except REDIS_AWAY as exc:
            log.warning("Worker %s: could not register again (%s)", self.name, exc)
            return
        log.warning("Worker %s: Redis had lost this worker's registration (restarted without its data?); "
                    "registered it again", self.name)

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


# The job id moved from its queue's list to the front, in one step, and only when it is still in the list.
TO_FRONT = "if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 1 then redis.call('LPUSH', KEYS[1], ARGV[1]) end"


class PutsBackStopped:
    """A worker mixin: a job whose failure callback put it back after a stop of its worker (`put_back_if_stopped`)
    goes back to the front of its queue, no retry spent."""

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string=""):
        put_back = job.meta.pop(PUT_BACK, False)
        if put_back:
            # RQ's failure path re-queues a job only by spending one of its retries, so it is given one to spend (a
            # print file's job, which has none, too).
            job.retries_left = (job.retries_left or 0) + 1
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)
        if put_back:
            self._to_front(job, queue)

    def _to_front(self, job, queue) -> None:
        """Move a job put back after its worker's stop from the back of its queue (where RQ's retry puts it) to the
        front: it had reached the front once, and jobs queued while it ran should not pass it; its person has waited
        longest. A crash's retry stays at the back (a job that keeps crashing must not hold up the queue); a stop is
        none of the job's doing, and MAX_WORKER_STOPS bounds how often it comes first again."""
        try:
            # Only while it is still in the list: another worker may have taken it already, and must not run it twice.
            self.connection.eval(TO_FRONT, 1, queue.key, job.id)
        except RedisError as exc:  # it waits at the back instead
            log.warning("Could not move %s to the front of its queue: %s", job.id, exc)


class PatientWorker(PutsBackStopped, RedisPatience, Worker):
    """RQ's worker with `RedisPatience`, which puts back a job its cold stop interrupted when the job's failure callback
    says so (`put_back_if_stopped`): the class `rqworker` uses unless told otherwise (settings.RQ)."""

    def request_force_stop(self, signum, frame):
        # RQ's cold shut down kills the job's forked process and quits, leaving the job "started" until a worker's
        # registry cleanup fails it as abandoned, minutes later (a large print file's page said "being made", then
        # "could not be made"). The job is ended here as a stop instead, which its failure callback may put back
        # (`put_back_if_stopped`), as a GenerationWorker's stop does in the job itself.
        job = self._job_in_horse()
        try:
            super().request_force_stop(signum, frame)
        except SystemExit:
            if job is not None:
                self._end_stopped(job)
            raise

    def _job_in_horse(self):
        if not self.horse_pid:
            return None
        try:
            return self.get_current_job()
        except RedisError as exc:
            log.warning("Worker %s: could not look up the job it is stopping (%s)", self.name, exc)
            return None

    def _end_stopped(self, job) -> None:
        """The job whose forked process this stop killed: its failure callback told of the stop, and the job put back
        if the callback says so; else left as RQ leaves it (its registry cleanup retries or fails it)."""
        # Inside the signal handler, while RQ waits on the horse under an alarm: that alarm must not fire in here.
        signal.alarm(0)
        stopped = WorkerStopped()
        try:
            if job.failure_callback is not None:
                job.failure_callback(job, self.connection, WorkerStopped, stopped, None)
            if job.meta.get(PUT_BACK):
                self.log.warning("Worker %s: stopped while running %s; it goes back in the queue", self.name, job.id)
                job.ended_at = now()
                self.handle_job_failure(job, Queue(job.origin, connection=self.connection),
                                        exc_string="The worker was stopped while it ran this job.")
        except Exception:  # the worker is quitting either way; RQ's cleanup still ends the job
            log.exception("Worker %s: could not put back %s, which its stop interrupted", self.name, job.id)


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
