"""A generation worker's lease on the job it runs, in Redis: who holds it, from which process, and when it was last
renewed.

While a `GenerationWorker` runs a job (and from the moment it takes it off the queue: it may then wait minutes for its
database, `workers.wait_for_database`) it keeps `qart:lease:<RQ job id>` (its name, LEASE_TTL seconds, renewed with
RQ's heartbeats, every RENEWAL seconds), which it writes again after a Redis restart, when RQ's own records of the job
are gone. The lease names the worker's process too (`qart:holder:<RQ job id>`, `processes.process_token`), so that a
process of the same host can tell a holder that was killed (`processes.holder_gone`). Each renewal also notes when it
was made, and by whom, in `qart:heard:<RQ job id>`, which outlives the lease: the job's page counts the worker's
silence from it (`reconcile.worker_silence`).

Readers: the reconciler (`generator.reconcile`: a leased job is left alone; a gone holder's job is retried) and the
put-back of a job taken off the queue and never started (`generator.claims`: its holder gone, or its lease lapsed).
Here, rather than in either, because the reconciler runs the put-back: one module for both, and no import cycle.
"""

from __future__ import annotations

import time

from redis import Redis
from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.worker import Worker

from generator.processes import holder_gone, process_token

LEASE_PREFIX = "qart:lease:"  # <RQ job id> -> the name of the worker that holds it
LEASE_TTL = 90  # renewed every RENEWAL seconds: one missed renewal does not lose it
RENEWAL = DEFAULT_JOB_MONITORING_INTERVAL  # seconds: a GenerationWorker renews its lease with RQ's heartbeats
HOLDER_PREFIX = "qart:holder:"  # <RQ job id> -> the lease holder's process (`process_token`), kept with the lease
HEARD_PREFIX = "qart:heard:"  # <RQ job id> -> "<Unix time> <worker>" of the lease's last renewal
HEARD_TTL = 3600  # well past the lease's expiry, the reconciler's next pass and its grace


# The lease, its holder and its renewal written in one step; a renewal (ARGV[6] "1") writes them only while the lease is
# `worker`'s or nobody's (lapsed, or lost with a Redis restart). ARGV: worker, process ("" for none), ttl,
# "<Unix time> <worker>", HEARD_TTL, "1" for a renewal or "0" for a take.
HOLD = ("local holder = redis.call('GET', KEYS[1]) "
        "if ARGV[6] == '1' and holder and holder ~= ARGV[1] then return 0 end "
        "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3]) "
        "if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) "
        "else redis.call('DEL', KEYS[2]) end "
        "redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5]) return 1")


def hold(connection: Redis, rq_job_id: str, worker: str, ttl: int = LEASE_TTL, process: str | None = None,
         renewal: bool = False) -> bool:
    """Take or renew `worker`'s lease on a job it runs, and note that it was heard from now.

    A renewal leaves a lease that another worker holds: a worker that was paused (SIGSTOP, a long pause of its own) or
    cut off from Redis past its lease's lapse may have lost the job meanwhile, put back (`claims.put_back_taken`) or
    retried by RQ's cleanup, and taken by another worker. Its renewal, on waking, wrote its name over the other's lease;
    then its release (it does not start, or drops, a job it lost) left the job unleased, and the next look put back
    the job that the other worker was about to start (one needless put-back: that worker lost it too).

    Args:
        connection (`redis.Redis`): the queue's Redis.
        rq_job_id (`str`): the job's RQ id.
        worker (`str`): the name of the worker that runs it.
        ttl (`int`, *optional*, defaults to LEASE_TTL): seconds the lease lasts unless renewed.
        process (`str`, *optional*): the worker's process (`process_token`); this process's by default.
        renewal (`bool`, *optional*, defaults to False): renew only while the lease is `worker`'s or nobody's; False
            takes it whoever held it (the worker has just taken the job off the queue).

    Returns:
        `bool`: whether `worker` holds the lease now (False: another worker's renewal was left alone).
    """
    process = process_token() if process is None else process
    # No holder where it cannot be told (not Linux): such a holder keeps its lease until it expires, and an earlier
    # holder's process is deleted (`put_back_taken` would ask about it).
    keys = [LEASE_PREFIX + rq_job_id, HOLDER_PREFIX + rq_job_id, HEARD_PREFIX + rq_job_id]
    args = [worker, process or "", ttl, f"{time.time():.3f} {worker}", HEARD_TTL, "1" if renewal else "0"]
    return bool(connection.register_script(HOLD)(keys=keys, args=args))


# The lease dropped only while it is still the worker's: one that lost its job to another (`claims.TakenBack`) may have
# taken the lease after that other did, and must not leave it unleased.
RELEASE_OWN = ("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end "
               "return 0")


def release(connection: Redis, rq_job_id: str, worker: str | None = None) -> None:
    """Drop the lease on a job its worker has ended, and what it said about its holder and its last renewal.

    Args:
        connection (`redis.Redis`): the queue's Redis.
        rq_job_id (`str`): the job's RQ id.
        worker (`str`, *optional*): drop it only while this worker holds it; whoever holds it by default.
    """
    keys = [LEASE_PREFIX + rq_job_id, HOLDER_PREFIX + rq_job_id, HEARD_PREFIX + rq_job_id]
    if worker is None:
        connection.delete(*keys)
    else:
        connection.register_script(RELEASE_OWN)(keys=keys, args=[worker])


def last_heard(connection: Redis, rq_job_id: str) -> tuple[float, str] | None:
    """(Unix time, worker) of the last renewal of a lease on the job, which may have expired since; None if none."""
    heard = connection.get(HEARD_PREFIX + rq_job_id)
    if heard is None:
        return None
    at, _, worker = heard.decode().partition(" ")
    return float(at), worker


def certainly_gone(connection: Redis, worker: str, holder: bytes | None) -> bool:
    """Whether a lease's holder is certainly gone: its process, on this host, is gone (`holder_gone`), or RQ no longer
    has `worker` registered. A holder on another host that is still registered is not (its process cannot be seen).

    Args:
        connection (`redis.Redis`): the queue's Redis.
        worker (`str`): the name of the worker that held the lease.
        holder (`bytes`, *optional*): its process as the lease noted it (`HOLDER_PREFIX`); None where none was noted.

    Raises:
        RedisError: Redis cannot be reached.
    """
    return (holder is not None and holder_gone(holder.decode())) or \
        not connection.exists(Worker.redis_worker_namespace_prefix + worker)
