"""The reconciler: finds generation jobs that nothing will ever finish, and re-queues or ends them.

The row is the source of truth and RQ carries only its primary key (`generator.jobs`), so when Redis and the database
disagree a row can wait for ever:
- Redis restarted without its data (or was emptied): a queued job's RQ job is gone and no worker will take it;
- the worker running a job died and nothing noticed (RQ notices only in a live worker's maintenance);
- a cancel was asked for a job that nothing runs any more (the page said "Cancelling" for ever).

`reconcile_jobs()` looks at every unfinished row once and returns what it did. Each generation worker runs it in RQ's
periodic maintenance (`GenerationWorker.run_maintenance_tasks`, every INTERVAL seconds, one worker at a time);
`manage.py qart_reconcile` runs one pass. Per row:
1. A worker holds it (its lease, below; or RQ says it started on a registered worker), or it waits in RQ: left alone,
   unless a cancel was asked of a waiting job: cancelled.
2. Otherwise, a cancel was asked: cancelled at once (a live worker that still ran it would stop at its next step).
3. Otherwise it is orphaned, and acted on once it has looked so for `grace` seconds: a row whose enqueue has not reached
   Redis yet, or whose worker is taking its lease again after a Redis restart, looks orphaned for a moment.
   - RQ still has it started on a worker that is gone: RQ's own cleanup takes it, which retries it once or fails it
     (`jobs.generation_failed`), as when a worker's heartbeats stop;
   - gone from Redis (or RQ finished with it but the row never heard): re-queued once, within its attempts (the first
     run and RQ's one retry, MAX_ATTEMPTS), else failed with the reason. After a deliberate stop of everything
     (`after_stop`: `make run`, whose Redis keeps nothing) a waiting row is re-queued however often that happened, and a
     running one only after the grace period, whatever was asked: a worker on another host may hold it (`_grace_for`).

Leases (`generator.leases`): while a `GenerationWorker` runs a job it keeps a lease on it, renewed with RQ's heartbeats,
which it writes again after a Redis restart, when RQ's own records of the job are gone; a leased job is held.

A worker killed on this host (SIGKILL: the out-of-memory killer) is not waited for: the lease names its process too
(`qart:holder:<RQ job id>`, `processes.process_token`), and a worker on the same host that sees that process gone
(`holder_gone`) marks the job abandoned at once (`reclaim`), and RQ's cleanup retries it, or fails it on its last
try, within about RECLAIM_EVERY seconds of the kill instead of the two and a half minutes that the lease, RQ's
heartbeat and the next pass took. Each generation worker looks when it starts (before its engine loads: a worker
restarted after the kill finds its predecessor's job), every RECLAIM_EVERY seconds while idle and every RENEWAL seconds
while it runs a job (marked only: the next idle look of any worker retries it), and the reconciler's pass looks too.
A holder on another host (or in another container: another PID namespace) cannot be seen, and keeps its lease as
before; a live holder, however slow, is never taken from. The same looks put back in the queue, without spending an
attempt, a job that a worker took off the queue and will not start (`claims.put_back_taken`: its worker was killed
before it leased the job, or is gone, or its lease lapsed), which RQ's maintenance failed a minute or two later.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import django_rq
from redis import Redis
from redis.exceptions import LockError, RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.utils import now as rq_now
from rq.worker import Worker

from generator import jobs
from generator.claims import put_back_taken
from generator.cleaning import clean_started, held
from generator.leases import HOLDER_PREFIX, LEASE_PREFIX, LEASE_TTL, RENEWAL, last_heard
from generator.models import GenerationJob
from generator.processes import holder_gone
from qartsite import queues

log = logging.getLogger(__name__)
Status = GenerationJob.Status

GRACE = 120.0  # seconds a job must look orphaned before it is re-queued or failed: more than a lease renewal
INTERVAL = 60  # seconds between two passes in a worker (its RQ maintenance interval)
SILENT_AFTER = 2 * RENEWAL  # a running job's worker not heard from for longer has most likely stopped
ORPHANS_KEY = "qart:reconcile:orphans"  # job pk -> when it first looked orphaned (Unix time)
LOCK_KEY = "qart:reconcile:lock"
RECLAIM_EVERY = 10  # seconds between an idle worker's looks for jobs whose holder on this host is gone (`reclaim`)
MAX_ATTEMPTS = 2  # a job's first run and RQ's one retry (jobs.enqueue_generation)
REQUEUED = "requeued"  # the stage of a row the reconciler put back in the queue
BATCH = 500

# What RQ says about a row's job
HELD, WAITING, ABANDONED, GONE = "held", "waiting", "abandoned", "gone"
RQ_WAITING = {JobStatus.CREATED, JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


@dataclass
class Reconciled:
    """What one pass did, by job primary key."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    orphaned: list[int] = field(default_factory=list)  # looking orphaned for less than the grace period
    skipped: str = ""  # why the pass looked at nothing

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed or self.cancelled or self.orphaned)

    def __str__(self) -> str:
        if self.skipped:
            return f"Nothing reconciled: {self.skipped}."
        parts = [f"{what} {', '.join(f'#{pk}' for pk in pks)}"
                 for what, pks in (("re-queued", self.requeued), ("failed", self.failed),
                                   ("cancelled", self.cancelled), ("orphaned, within the grace period", self.orphaned))
                 if pks]
        return f"Jobs {'; '.join(parts)}." if parts else "No orphaned jobs."


# The lease and its holder deleted only while the holder is still the one found gone: a live worker that took the job
# since (RQ retried it) keeps its own.
RELEASE_GONE = ("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1], KEYS[2]) end "
                "return 0")


def reclaim(queue: Queue) -> list[str]:
    """Mark as abandoned every job that RQ has started and whose lease holder is a process of this host that is gone
    (`holder_gone`: killed by the out-of-memory killer, say), and drop its lease. RQ's registry cleanup, which the
    caller runs next, then retries it or fails it on its last try (`jobs.generation_failed`), as it does once a dead
    worker's heartbeats have expired: the mark is that expiry (its score in RQ's started registry), which came up to
    90 s later by itself.

    Args:
        queue (`rq.Queue`): the `gpu` queue.

    Returns:
        `list[str]`: the RQ ids of the jobs marked.

    Raises:
        RedisError: Redis cannot be reached.
    """
    connection, registry = queue.connection, queue.started_job_registry
    executions = registry.get_job_and_execution_ids(cleanup=False)
    ids = sorted({job_id for job_id, _ in executions})
    holders = connection.mget([HOLDER_PREFIX + job_id for job_id in ids]) if ids else []
    gone = {job_id: holder for job_id, holder in zip(ids, holders, strict=True)
            if holder is not None and holder_gone(holder.decode())}
    if not gone:
        return []
    # Only these executions, and only while they are there (xx): one that RQ retried since is another.
    connection.zadd(registry.key, {f"{job_id}:{execution}": 0 for job_id, execution in executions if job_id in gone},
                    xx=True)
    release_gone = connection.register_script(RELEASE_GONE)
    for job_id, holder in gone.items():
        release_gone(keys=[HOLDER_PREFIX + job_id, LEASE_PREFIX + job_id], args=[holder])
    log.warning("Jobs %s: their worker's process on this host is gone; RQ's cleanup retries or fails them",
                ", ".join(gone))
    return list(gone)


def retry_abandoned(queue: Queue, exception_handlers: list | None = None) -> list[str]:
    """Mark the jobs whose holder here is gone (`reclaim`), then have RQ's cleanup of started jobs retry, or fail on
    their last try, every job abandoned now (those marked, and those whose worker's heartbeats expired), and put back
    in the queue the jobs a worker took and will not start (`claims.put_back_taken`), under the cleaning lock
    (`cleaning.held`): a worker's look and the reconciler's pass.

    Args:
        queue (`rq.Queue`): the `gpu` queue.
        exception_handlers (`list`, *optional*): a worker's handlers for a failure callback's error.

    Returns:
        `list[str]`: the RQ ids of the jobs handed to the cleanup; none while another process holds the lock (it is
        cleaning them now).

    Raises:
        RedisError: Redis cannot be reached.
    """
    reclaim(queue)
    expired = queue.started_job_registry.get_expired_job_ids()
    if not expired and not queue.connection.llen(queue.intermediate_queue_key):
        return []  # most looks: nothing to clean, no lock taken
    with held(queue) as cleaning:
        if cleaning:
            if expired:
                queue.started_job_registry.cleanup(exception_handlers=exception_handlers)
            put_back_taken(queue)
    return expired if cleaning else []


def worker_silence(job: GenerationJob) -> float | None:
    """Seconds since the worker running `job` was last heard from: its lease's renewal (a GenerationWorker, every
    RENEWAL seconds; once the lease expired, its last renewal, `last_heard`), or RQ's heartbeat of the job (any worker,
    every RENEWAL seconds; it stays in Redis once the worker is gone), whichever is later. None for a job that is not
    running (generating, scoring or repairing), or when none says (Redis restarted, or cannot tell)."""
    if job.status not in (Status.RUNNING, Status.SCORING) or job.is_finished:
        return None
    rq_id = job.rq_job_id or jobs.rq_job_id(job.pk)
    connection, silences = django_rq.get_connection(jobs.QUEUE), []
    try:
        with queues.breaker(connection):  # the job pages and the API's job ask at every look
            left = connection.pttl(LEASE_PREFIX + rq_id)
            if left > 0:
                return max(0.0, LEASE_TTL - left / 1000)
            # A fault drill: Redis restarted mid-job (RQ's record of it gone; the worker took its lease again), then
            # the worker was killed. Once the lease expired nothing said so, and the page showed "Running", its
            # progress frozen, for the two minutes until the reconciler re-queued the job.
            heard = last_heard(connection, rq_id)
            silences = [time.time() - heard[0]] if heard else []
            rq_job = Job.fetch(rq_id, connection=connection)
            if rq_job.last_heartbeat is not None and rq_job.get_status(refresh=False) == JobStatus.STARTED:
                silences.append((rq_now() - rq_job.last_heartbeat).total_seconds())
    except NoSuchJobError:
        pass
    except RedisError:
        return None
    return max(0.0, min(silences)) if silences else None


def job_worker(job: GenerationJob) -> str | None:
    """The name of the worker that runs `job`: its lease's holder, else the worker RQ says started it, else the last
    to renew a lease on it (`last_heard`); None when none says (Redis restarted, or cannot be reached)."""
    rq_id = job.rq_job_id or jobs.rq_job_id(job.pk)
    connection = django_rq.get_connection(jobs.QUEUE)
    try:
        with queues.breaker(connection):
            holder = connection.get(LEASE_PREFIX + rq_id)
            if holder is not None:
                return holder.decode()
            try:
                started_by = Job.fetch(rq_id, connection=connection).worker_name
            except NoSuchJobError:
                started_by = None
            heard = last_heard(connection, rq_id)
            return started_by or (heard[1] if heard else None)
    except RedisError:
        return None


def reconcile_jobs(grace: float = GRACE, queue: Queue | None = None, after_stop: bool = False) -> Reconciled:
    """One pass over every unfinished generation job (see the module docstring); one pass at a time.

    Args:
        grace (`float`, *optional*, defaults to GRACE): seconds a job must look orphaned before it is re-queued or
            failed; 0 acts at once (tests, drills, an operator who knows that no worker is starting a job).
        queue (`rq.Queue`, *optional*): the `gpu` queue; django-rq's by default.
        after_stop (`bool`, *optional*, defaults to False): Redis is new and empty because everything stopped
            (`make run`'s own Redis, asked before any worker starts): a waiting row it lost is queued again even when
            it had been before (no "lost twice"): it did not run, and each such loss takes a person starting `make run`
            again, so it cannot repeat by itself. A row left running is acted on only after GRACE, whatever `grace`
            says (a worker on another host may still run it: `_grace_for`), and then spends its attempt: its worker
            may have been killed (out of memory, or by the stop when the job did not yield), which is not told
            apart.

    Returns:
        `Reconciled`: what the pass did.

    Raises:
        RedisError: Redis cannot be reached (then nothing can be told apart; cancelling a queued job still ends it).
        DatabaseError: the database cannot be reached.
    """
    queue = queue or django_rq.get_queue(jobs.QUEUE)
    lock = queue.connection.lock(LOCK_KEY, timeout=300)
    if not lock.acquire(blocking=False):
        return Reconciled(skipped="another reconciler is running")
    try:
        return _reconcile(queue, grace, after_stop)
    finally:
        try:
            lock.release()
        except LockError:
            pass  # it expired: the pass took longer than its timeout


def _reconcile(queue: Queue, grace: float, after_stop: bool) -> Reconciled:
    connection, done = queue.connection, Reconciled()
    # 1. RQ's own cleanup first: started jobs whose worker's process here is gone, or whose worker stopped sending
    # heartbeats, are retried or failed.
    expired = retry_abandoned(queue)  # none while another process cleans: it retries them, this pass counts none
    handed = GenerationJob.objects.filter(rq_job_id__in=expired, status__in=[Status.QUEUED, Status.FAILED])
    for pk, status in handed.values_list("pk", "status"):
        (done.requeued if status == Status.QUEUED else done.failed).append(pk)
    first_seen = {int(pk): float(at) for pk, at in connection.hgetall(ORPHANS_KEY).items()}
    orphans: dict[int, float] = {}
    now = time.time()
    rows = list(GenerationJob.objects.exclude(status__in=GenerationJob.FINISHED).only(
        "pk", "status", "stage", "attempts", "cancel_requested", "rq_job_id").order_by("pk"))
    for start in range(0, len(rows), BATCH):
        batch = rows[start:start + BATCH]
        ids = [row.rq_job_id or jobs.rq_job_id(row.pk) for row in batch]
        rq_jobs = Job.fetch_many(ids, connection=connection)
        leases = connection.mget([LEASE_PREFIX + rq_id for rq_id in ids])
        for row, rq_job, lease in zip(batch, rq_jobs, leases, strict=True):
            # 2. Held, waiting, or cancelled
            state = HELD if lease else _state(connection, rq_job)
            if state == HELD or (state == WAITING and not row.cancel_requested):
                continue
            if row.cancel_requested:
                if state == WAITING:
                    rq_job.cancel()
                if jobs._finish(row.pk, Status.CANCELLED, expect={"status": row.status}, stage="cancelled"):
                    done.cancelled.append(row.pk)
                continue
            # 3. Orphaned: after the grace period, RQ's cleanup, or re-queued, or failed
            seen = first_seen.get(row.pk, now)
            if now - seen < _grace_for(row, grace, after_stop):
                orphans[row.pk] = seen
                done.orphaned.append(row.pk)
            elif state == ABANDONED and (abandoned := _abandon(queue, rq_job)) is None:
                orphans[row.pk] = seen  # another process is cleaning RQ's registry: the next pass looks again
                done.orphaned.append(row.pk)
            elif state == ABANDONED and abandoned:
                row.refresh_from_db(fields=["status"])
                (done.requeued if row.status == Status.QUEUED else done.failed).append(row.pk)
            else:
                _requeue_or_fail(row, rq_job, done, after_stop)
    with connection.pipeline() as pipeline:  # forget rows that are no longer orphaned
        pipeline.delete(ORPHANS_KEY)
        if orphans:
            pipeline.hset(ORPHANS_KEY, mapping=orphans)
        pipeline.execute()
    if done:
        log.info("Reconciler: %s", done)
    return done


def _grace_for(row: GenerationJob, grace: float, after_stop: bool) -> float:
    """How long `row` must look orphaned before it is acted on. After a stop (`after_stop`: Redis new and empty) a
    running row keeps the full GRACE whatever was asked: the stop was of this host's processes, and a worker on another
    host sharing the database (a GPU host beside the web host) may be running it right now. Its lease was in the Redis
    that is gone, and comes back at its next renewal (every RENEWAL seconds, well within GRACE); acted on at once, the
    job was queued again and ran twice, or on its last attempt failed while it ran. A waiting row has no worker: a
    worker starts a job only through Redis (RQ records the start there first), so none can have started it since."""
    if after_stop and row.status != Status.QUEUED:
        return max(grace, GRACE)
    return grace


def _state(connection: Redis, rq_job: Job | None) -> str:
    """What RQ's records say about a job that no worker holds a lease on."""
    if rq_job is None:
        return GONE
    status = rq_job.get_status(refresh=False)
    if status in RQ_WAITING:
        return WAITING
    if status == JobStatus.STARTED:
        worker = rq_job.worker_name
        alive = worker and connection.exists(Worker.redis_worker_namespace_prefix + worker)
        return HELD if alive else ABANDONED
    return GONE  # finished, failed, stopped or cancelled in RQ while the row is unfinished: the row never heard


def _abandon(queue: Queue, rq_job: Job) -> bool | None:
    """Expire a dead worker's executions of `rq_job` now, so RQ's cleanup retries or fails it as it does when a
    worker's heartbeats stop. False when RQ has no execution of it to expire; None when another process holds RQ's
    maintenance lock (`clean_started`): it retries the job, or the next pass does."""
    registry = queue.started_job_registry
    keys = [f"{job_id}:{execution_id}" for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False)
            if job_id == rq_job.id]
    if not keys:
        return False
    queue.connection.zadd(registry.key, dict.fromkeys(keys, 0), xx=True)
    return True if clean_started(queue) else None


def why_not_requeued(row: GenerationJob, after_stop: bool = False) -> str:
    """Why a job Redis lost is failed rather than queued again (the job's error); "" when it is queued again."""
    if row.status == Status.QUEUED and row.stage == REQUEUED and not after_stop:
        return "The job queue lost this job twice (Redis restarted or was emptied); it had been re-queued once."
    if row.attempts >= MAX_ATTEMPTS:
        return (f"The worker running this job stopped, or the job queue lost it, on its last attempt "
                f"({row.attempts} of {MAX_ATTEMPTS}).")
    return ""


def lost(job: GenerationJob) -> bool:
    """Whether a waiting `job` is gone from Redis (restarted without its data, or emptied): nothing of it there, neither
    RQ's record nor a worker's lease. A worker's reconciler queues it again or fails it once it has looked so for GRACE
    seconds. False for a job that is not waiting, or when Redis cannot be reached (then nobody knows)."""
    if job.status != Status.QUEUED or job.is_finished:
        return False
    rq_id = job.rq_job_id or jobs.rq_job_id(job.pk)
    connection = django_rq.get_connection(jobs.QUEUE)
    try:
        with queues.breaker(connection):
            return not connection.exists(Job.key_for(rq_id), LEASE_PREFIX + rq_id)
    except RedisError:
        return False


def _requeue_or_fail(row: GenerationJob, rq_job: Job | None, done: Reconciled, after_stop: bool) -> None:
    """A job Redis lost: back in the queue once (any number of times `after_stop`), within its attempts, else failed
    with the reason."""
    unchanged = {"status": row.status, "attempts": row.attempts, "stage": row.stage}
    reason = why_not_requeued(row, after_stop)
    if not reason:
        if not GenerationJob.objects.filter(pk=row.pk, **unchanged).update(
                status=Status.QUEUED, stage=REQUEUED, progress=0.0):
            return  # a worker moved it meanwhile
        if rq_job is not None:
            queues.delete_job(rq_job)  # RQ's record of it, finished or failed: the new one takes its id
        jobs.enqueue_generation(row, retries=max(0, MAX_ATTEMPTS - 1 - row.attempts))
        done.requeued.append(row.pk)
        return
    if jobs._finish(row.pk, Status.FAILED, expect=unchanged, stage="failed", error=reason):
        done.failed.append(row.pk)
