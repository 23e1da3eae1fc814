"""A generation worker's claim on a job it took off the queue: the job is started by one worker at most, and a job
whose worker never started it goes back to the front of the queue, its attempt not spent.

RQ 2.6 takes a job in two steps: the worker moves its id out of the queue into the queue's intermediate list (BLMOVE,
`Queue.dequeue_any`), then starts it (`Worker.prepare_execution`: an execution in the started registry). A
GenerationWorker takes the job's lease between the two (`leases.hold`, milliseconds after the first step) and may then
wait minutes for its database (`workers.wait_for_database`), renewing it. A worker killed between the steps left the job
in neither the queue nor the started registry until RQ's maintenance took it for a failure ("stuck in intermediate
queue", a minute or two later, a retry spent; RQ's cleanup now only drops ids whose record is gone:
`cleaning.drop_recordless`). `put_back_taken` puts it back once
- the lease's holder is certainly gone (`leases.certainly_gone`: its process on this host, or its RQ registration);
- or no lease was seen for TAKE_GRACE seconds: its worker was killed between the first step and the lease, which
  nothing noticed before; or its lease lapsed, not renewed for LEASE_TTL seconds (its host is gone, or it hangs). A job
  of a worker on a host that died waited until RQ's registration of that worker expired (420 s), or until RQ's cleanup
  failed it, its retry spent.

Never twice. Each enqueue puts one copy of the job's id in Redis, which a worker moves from the queue into the
intermediate list (the first step); from there it leaves either back to the queue (`put_back_taken`: its script takes
it out of the list and pushes it in one step) or for good (`start`: the worker's second step takes it out of the list
in the transaction that starts the job, under WATCH, which fails and is tried again if the list changed since it was
read). Two workers cannot take one copy, so at most one starts the job per enqueue: a slow worker whose job was put
back meanwhile finds no copy (and drops the job: `TakenBack`), or the copy of the worker that took the job again (which
then finds none, and drops it). So a put-back need not be sure that the worker is dead: a live but slow one only loses
the job to the next. The leases say when to put a job back, not whether that is safe. (A job that Redis lost
altogether, restarted without its data while the worker waited, has no copy and no record: it runs as before, `start`.)

A job that RQ has started (in the started registry) is RQ's cleanup's: it retries the job, or fails it on its last try,
once its execution's heartbeats expire (70 s: `GenerationWorker.get_heartbeat_ttl`), or sooner (`reconcile.reclaim`).
A live worker cut off from Redis (or paused) that long loses the job so, and may run on meanwhile: its run is fenced on
both sides. In the database, the cleanup's failure callback hands the row back to the queue or ends it before the
execution leaves the registry, and a run writes its progress, candidates and verdict only while the row is still its
attempt's (`job_files.this_attempt`): the stale run stops at its next progress step and writes nothing. The database
is the fence because the outcome is written there, in one conditional write: a check in Redis first ("is my execution
still there?") could be passed a moment before the cleanup takes the job, and the write would follow regardless. In
Redis, the worker asks once the job's code has returned (`still_started`), and a job taken over is left as the
cleanup left it (`TakenOver`): RQ's ending of the run (the job marked finished while the retry waits or runs, a
failure callback and a retry from the stale run's stale count of retries: a third run, which took the row from the
second) is skipped.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import WatchError
from rq import Queue
from rq.executions import Execution
from rq.job import Job
from rq.utils import get_version
from rq.worker import BaseWorker, WorkerStatus

from generator import leases
from generator.leases import HEARD_PREFIX, HOLDER_PREFIX, LEASE_PREFIX

log = logging.getLogger(__name__)

# Seconds a job in the intermediate list may go without a lease before it is put back: a live worker takes it
# milliseconds after the first step, and an idle worker looks every `reconcile.RECLAIM_EVERY` seconds (so it goes back
# 10 to 20 s after its worker was killed, or its lease lapsed). A live worker slower than that loses the job, never
# runs it twice.
TAKE_GRACE = 10
UNLEASED_PREFIX = "qart:unleased:"  # <queue name> -> {RQ job id: "<enqueued at> <first seen>"}: jobs seen unleased
UNLEASED_TTL = 3600  # the marks of jobs that left the list since (started) go with the next look, or with this

# A job taken and not started, back at the front of the queue, while RQ's intermediate list still has it (its copy:
# see the module's docstring) and its lease's last renewal is still the one looked at ("" for none); the lease, its
# holder, its renewal, RQ's first sight of it in the list and our own (the mark) dropped.
PUT_BACK_TAKEN = ("if (redis.call('GET', KEYS[3]) or '') ~= ARGV[2] or redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 "
                  "then return 0 end redis.call('LPUSH', KEYS[2], ARGV[1]) "
                  "redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6]) redis.call('HDEL', KEYS[7], ARGV[1]) return 1")


class TakenBack(Exception):
    """The job a worker took was put back in the queue (or taken by another worker) before this worker started it."""


class TakenOver(Exception):
    """The job a worker ran was retried or failed by RQ's cleanup of started jobs while it ran (its heartbeats did not
    reach Redis): its run's ending is not recorded in RQ (`still_started`)."""


# The execution renewed (its registry entry's score, ARGV[2]) while it is still in the started registry (KEYS[1]), as
# RQ's heartbeat renews it (ZADD XX); 1 too when the job's record (KEYS[2]) is gone or partial ('origin' is written at
# each enqueue, with the push): Redis lost it, restarted without its data, and nothing can have taken it over.
STILL_STARTED = ("if redis.call('ZSCORE', KEYS[1], ARGV[1]) then redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1]) "
                 "return 1 end if redis.call('HEXISTS', KEYS[2], 'origin') == 0 then return 1 end return 0")


def still_started(worker: BaseWorker, job: Job) -> bool:
    """Whether `job`, whose code `worker` has just run, is still the worker's execution in RQ's started registry (its
    entry renewed, in the same step, for the worker's heartbeat time to live: the cleanup cannot take it while the
    worker records the run's end). False once RQ's cleanup took it (its heartbeats expired: the worker was cut off from
    Redis, or paused): retried into the queue or failed; an execution, once taken out, is never put back (RQ's
    heartbeat renews with XX).

    Args:
        worker (`rq.worker.BaseWorker`): the worker that ran `job`.
        job (`rq.job.Job`): the job.

    Returns:
        `bool`: False when the job was taken over; True otherwise (Redis lost the job altogether included).

    Raises:
        RedisError: Redis cannot be reached.
    """
    execution = worker.execution
    if execution is None:
        return True
    registry = job.started_job_registry
    score = time.time() + worker.get_heartbeat_ttl(job)
    script = worker.connection.register_script(STILL_STARTED)
    return bool(script(keys=[registry.key, job.key], args=[execution.composite_key, score]))


def fenced(worker: BaseWorker) -> bool:
    """Whether `worker` takes its jobs through the intermediate list, where `start` fences them: RQ's rule
    (`Queue.dequeue_any`: one queue and Redis 6.2 or later; otherwise a job is popped in one step, and no put-back
    looks for it)."""
    return len(worker.queues) == 1 and get_version(worker.connection) >= (6, 2, 0)


def start(worker: BaseWorker, job: Job) -> Execution | None:
    """RQ's second step of taking `job` (`Worker.prepare_execution`: its execution in the started registry, the worker
    busy), done only while the job's id is still in the queue's intermediate list, out of which the same transaction
    takes it: a put-back (`put_back_taken`) meanwhile, or another worker's start, leaves none, and the job is not run
    (unless Redis lost the job altogether: see below).

    Args:
        worker (`rq.worker.BaseWorker`): the worker that took `job` off its one queue (`fenced`).
        job (`rq.job.Job`): the job.

    Returns:
        `Execution` or `None`: the execution started; None when the job is no longer this worker's to start.

    Raises:
        RedisError: Redis cannot be reached.
    """
    key = worker.queues[0].intermediate_queue_key
    with worker.connection.pipeline() as pipeline:
        while True:
            try:
                pipeline.watch(key, job.key)
                # A job whose record is gone too was lost by Redis (restarted without its data while the worker waited
                # for its database), not put back (which keeps the record): the worker runs it, as before, and its
                # lease, written again by its renewals, keeps the reconciler from queueing it again.
                if pipeline.lpos(key, job.id) is None and pipeline.exists(job.key):
                    return None
                pipeline.multi()
                execution = Execution.create(job, worker.get_heartbeat_ttl(job), pipeline=pipeline)
                worker.set_state(WorkerStatus.BUSY, pipeline=pipeline)
                pipeline.lrem(key, 1, job.id)
                pipeline.execute()
                return execution
            except WatchError:
                continue  # another worker took a job, or one went back, since the list was read: read it again


def put_back_taken(queue: Queue) -> list[str]:
    """Put back at the front of the queue every job that a worker took and will not start (see the module's
    docstring for when), its attempt not spent. The caller holds the cleaning lock (`reconcile.retry_abandoned`):
    one look at a time, and RQ's cleanup of the list waits meanwhile.

    Args:
        queue (`rq.Queue`): the `gpu` queue.

    Returns:
        `list[str]`: the RQ ids of the jobs put back.

    Raises:
        RedisError: Redis cannot be reached.
    """
    connection, started = queue.connection, queue.started_job_registry
    running = {job_id for job_id, _ in started.get_job_and_execution_ids(cleanup=False)}
    ids = [job_id for job_id in dict.fromkeys(queue.intermediate_queue.get_job_ids()) if job_id not in running]
    marks_key = UNLEASED_PREFIX + queue.name
    marks = {job_id.decode(): mark.decode() for job_id, mark in connection.hgetall(marks_key).items()}
    now, unleased, put_back = time.time(), {}, []
    renewals = connection.mget([HEARD_PREFIX + job_id for job_id in ids]) if ids else []
    holders = connection.mget([HOLDER_PREFIX + job_id for job_id in ids]) if ids else []
    held = connection.mget([LEASE_PREFIX + job_id for job_id in ids]) if ids else []
    script = connection.register_script(PUT_BACK_TAKEN)
    for job_id, rq_job, renewal, holder, lease in zip(ids, Job.fetch_many(ids, connection=connection), renewals,
                                                      holders, held, strict=True):
        if rq_job is None or rq_job.enqueued_at is None:
            continue  # gone from Redis: the cleaning drops it from the list (`cleaning.drop_recordless`)
        enqueued = f"{rq_job.enqueued_at.timestamp():.6f}"
        if lease is not None:
            at, _, _ = (renewal or b"0").decode().partition(" ")
            # An earlier run's lease (its worker killed mid-job, the job retried since; renewed before the job was
            # last queued, give or take the renewal's rounding to the millisecond): the worker that took the job now
            # may be between the two steps, and the lease lapses by itself. Otherwise its worker may be alive: it
            # starts the job, or its lease lapses.
            if float(at) + 0.001 < float(enqueued) or not leases.certainly_gone(connection, lease.decode(), holder):
                continue
        else:  # never leased (its worker killed between the two steps, or there for a moment), or its lease lapsed
            seen_enqueued, _, seen = marks.get(job_id, "").partition(" ")
            first_seen = float(seen) if seen_enqueued == enqueued else now  # a mark of an earlier enqueue is stale
            if now - first_seen < TAKE_GRACE:
                unleased[job_id] = f"{enqueued} {first_seen:.3f}"
                continue
        keys = [queue.intermediate_queue_key, queue.key, HEARD_PREFIX + job_id, LEASE_PREFIX + job_id,
                HOLDER_PREFIX + job_id, queue.intermediate_queue.get_first_seen_key(job_id), marks_key]
        if script(keys=keys, args=[job_id, renewal or ""]):
            put_back.append(job_id)
    with connection.pipeline() as pipeline:  # only the jobs unleased now keep their mark
        pipeline.delete(marks_key)
        if unleased:
            pipeline.hset(marks_key, mapping=unleased)
            pipeline.expire(marks_key, UNLEASED_TTL)
        pipeline.execute()
    if put_back:
        log.warning("Jobs %s: their worker is gone, or never leased them, before it started them; back at the front "
                    "of the queue", ", ".join(put_back))
    return put_back
