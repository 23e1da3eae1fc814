"""RQ's cleaning of a queue's registries, one process at a time, under a lock that names its holder.

RQ cleans a queue's registries (a started job whose worker is gone is retried, or failed on its last try) under the
queue's maintenance lock, so that two cleanings cannot both retry one job (its id twice in the queue, two workers
running it). RQ's lock (`Queue.acquire_maintenance_lock`) is "1" for 899 seconds, and deleted after the cleaning: a
process killed while it cleans (SIGKILL: the out-of-memory killer, which a generation worker is the first to meet) left
it for 15 minutes, and for those 15 minutes no job of a killed worker was retried, by the workers' looks
(`GenerationWorker._reclaim`, every `reconcile.RECLAIM_EVERY` seconds), the reconciler's pass or RQ's own maintenance.

Here the lock is the same key (RQ's cleaning by any other worker class still excludes ours, and ours its), but it names
its holder's process (`processes.process_token`): a holder on this host that is gone is taken over at once
(`processes.holder_gone`), and the lock lives CLEANING_TTL seconds, for a holder elsewhere that cannot be told gone. A
cleaning takes milliseconds (one Redis pipeline, and a row written per job retried); a live holder, however slow, on
this host keeps its lock for CLEANING_TTL seconds.

RQ's cleanup of its intermediate list (RQ 2.6 takes a job in two steps: off the queue into that list, then into the
started registry) fails, or retries, a job seen there for more than a minute ("stuck in intermediate queue"): a retry
spent on a job that never ran, and, for an instant, two copies of one enqueue (the retry's in the queue, before the old
one leaves the list), which the claims' fence (`claims.start`: one copy per enqueue, one start) does not allow. Every
job there that has its record is `claims.put_back_taken`'s (every 10 s on an idle worker, and at each reconciler pass):
back at the front of the queue, its retry kept, once its worker will not start it. RQ's cleanup is left only the ids
whose record is gone (the job deleted, or expired): `drop_recordless` drops them from the list (a worker that took
such a job before its record went starts it with or without its copy: `claims.start`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from rq import Queue, worker_registration
from rq.registry import clean_registries as rq_clean_registries

from generator.processes import holder_gone, process_token

CLEANING_TTL = 60  # seconds: a cleaning takes milliseconds; a holder on another host found dead waits this long

# Taken over only while it still names the holder found gone: two processes that found it so, one takes it.
TAKE_OVER = ("if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) "
             "return 1 end return 0")
# Released only while it is still this holder's: one that expired, and that another process took since, is left to it.
RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# Every copy of an id dropped from the intermediate list, in the step that finds its record gone: a new enqueue of the
# same id (a generation's RQ id is its row's, `jobs.rq_job_id`) writes the record first, and its copy is left.
DROP_RECORDLESS = ("if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end "
                   "return redis.call('LREM', KEYS[1], 0, ARGV[1])")


def acquire(queue: Queue) -> str | None:
    """Take `queue`'s cleaning lock (RQ's maintenance lock), or take it over from a holder of this host that is gone.

    Args:
        queue (`rq.Queue`): the queue.

    Returns:
        `str` or `None`: this holder's token, for `release`; None while another live (or unknown) holder has it.

    Raises:
        RedisError: Redis cannot be reached.
    """
    connection, key = queue.connection, queue.registry_cleaning_key
    # A random part: two cleanings of one process (a test's), or a process where /proc does not say, are told apart.
    token = f"{process_token()}#{uuid.uuid4().hex}"
    if connection.set(key, token, nx=True, ex=CLEANING_TTL):
        return token
    holder = connection.get(key)
    if holder is None:
        return None  # released a moment ago: the next look takes it
    if not holder_gone(holder.decode(errors="replace").partition("#")[0]):
        return None
    take_over = connection.register_script(TAKE_OVER)
    return token if take_over(keys=[key], args=[holder, token, CLEANING_TTL]) else None


def release(queue: Queue, token: str) -> None:
    """Release `queue`'s cleaning lock taken by `acquire` (its `token`), if it is still this holder's."""
    queue.connection.register_script(RELEASE)(keys=[queue.registry_cleaning_key], args=[token])


@contextmanager
def held(queue: Queue) -> Iterator[bool]:
    """`queue`'s cleaning lock for the block (`acquire`, then `release`); the block is told whether it holds it.

    Args:
        queue (`rq.Queue`): the queue.

    Yields:
        `bool`: True while this process holds the lock; False while another does (the block cleans nothing).
    """
    token = acquire(queue)
    try:
        yield token is not None
    finally:
        if token is not None:
            release(queue, token)


def clean_started(queue: Queue, exception_handlers: list | None = None) -> bool:
    """RQ's cleanup of `queue`'s started jobs (those whose executions expired are retried, or failed on their last
    try), under the cleaning lock.

    Args:
        queue (`rq.Queue`): the queue.
        exception_handlers (`list`, *optional*): a worker's handlers for a failure callback's error.

    Returns:
        `bool`: False when another process holds the lock (it is cleaning now), True once cleaned.

    Raises:
        RedisError: Redis cannot be reached.
    """
    with held(queue) as cleaning:
        if cleaning:
            queue.started_job_registry.cleanup(exception_handlers=exception_handlers)
    return cleaning


def clean_registries(queue: Queue, worker) -> bool:
    """RQ's whole registry cleaning of `queue`, as a worker's maintenance runs it (`Worker.clean_registries`), under
    the cleaning lock.

    Args:
        queue (`rq.Queue`): the queue.
        worker (`rq.Worker`): the worker that cleans.

    Returns:
        `bool`: False when another process holds the lock, True once cleaned.

    Raises:
        RedisError: Redis cannot be reached.
    """
    with held(queue) as cleaning:
        if cleaning:
            worker.log.info("Worker %s: cleaning registries for queue: %s", worker.name, queue.name)
            rq_clean_registries(queue, worker._exc_handlers)
            worker_registration.clean_worker_registry(queue)
            drop_recordless(queue)
    return cleaning


def drop_recordless(queue: Queue) -> list[str]:
    """RQ's cleanup of `queue`'s intermediate list (`IntermediateQueue.cleanup`), less what it did to jobs that have
    their record: the ids whose record is gone are dropped from the list; every other job there is left to
    `claims.put_back_taken` (see the module's docstring). The caller holds the cleaning lock.

    Args:
        queue (`rq.Queue`): the queue.

    Returns:
        `list[str]`: the ids dropped.

    Raises:
        RedisError: Redis cannot be reached.
    """
    connection = queue.connection
    script = connection.register_script(DROP_RECORDLESS)
    return [job_id for job_id in dict.fromkeys(queue.intermediate_queue.get_job_ids())
            if script(keys=[queue.intermediate_queue_key, queue.job_class.key_for(job_id)], args=[job_id])]
