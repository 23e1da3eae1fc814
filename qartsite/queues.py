"""What the site asks of RQ's Redis: how many workers listen on a queue (`workers_on`), the breaker that skips a Redis
that did not answer a moment ago (`breaker`), whether it takes a job now (`probe_write`), and its failures in words
(`why_refused`; a refused password: `password_refused`, on a page `password_refused_on_page`), for /healthz, the
pages, the commands, the drainer and the workers. The workers themselves (their patience, their end on a refused
password, a job put back after their stop) are in `qartsite.workers`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from redis.exceptions import AuthenticationError, OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.job import Job
from rq.worker_registration import clean_worker_registry

from campaigns.scan_buffer import Outage
from generator.core.codes.echoes import echo

log = logging.getLogger(__name__)

def delete_job(rq_job: Job) -> None:
    """Delete RQ's record of a job.

    rq 2.6: a job's list of executions outlives their records by a minute, and its delete() fails on the missing ones
    with a ValueError (a large print file asked for again after its worker was killed answered 500: a fault drill).
    """
    try:
        rq_job.delete()
    except ValueError:
        rq_job.connection.delete(rq_job.execution_registry.key)
        rq_job.delete()


def workers_on(queue: Queue) -> int:
    """How many workers listen on `queue` now.

    A worker killed without a goodbye stays registered until someone cleans the registry up; its heartbeat key has
    expired by then, so cleaning first counts only the living.

    Raises:
        redis.exceptions.RedisError: Redis cannot be reached.
    """
    clean_worker_registry(queue)
    return Worker.count(queue=queue)


# What a Redis that stalled or went away raises: RQ's loop quits on either outside its dequeue. And what one that
# answers but refuses writes raises, until someone frees memory or its failover ends: full (maxmemory with noeviction)
# or a replica (READONLY). RQ's record of a job's end failed on a full Redis, and the worker quit for good, its queue
# left waiting (a fault drill); its goodbye failed too, with a traceback.
REDIS_AWAY = (RedisTimeoutError, RedisConnectionError, OutOfMemoryError, ReadOnlyError)
WRITE_PROBE_KEY = "qart:queue-answers"  # written by `probe_write`, kept a minute
# After the queues' Redis did not answer, this process does not ask it again for this long (`redis_outage`): a stalled
# Redis made every render of the generation page (four asks) and every create wait out the timeout.
REDIS_AWAY_FOR = 5.0
_redis_outages: dict[tuple, Outage] = {}


def redis_outage(connection) -> Outage:
    """This process's breaker for the Redis that `connection` (a redis-py client) talks to, one per address: callers
    skip Redis while `known()`, and `begin()` it when a call did not answer (`did_not_answer`); `breaker` does both.
    django-rq makes a client per `get_queue`, so the breaker is kept by address, not on the client."""
    kwargs = connection.connection_pool.connection_kwargs
    # Not by database: the cache's (CACHE_URL, often another database of the same server) stalls with the queues'.
    address = tuple(sorted((k, str(v)) for k, v in kwargs.items() if k in ("host", "port", "path")))
    return _redis_outages.setdefault(address, Outage(REDIS_AWAY_FOR))


class RedisSkipped(RedisConnectionError):
    """Raised by `breaker` instead of asking a Redis that failed a moment ago. A connection error, so that every
    `except RedisError` that copes with an away Redis copes with this one, and `did_not_answer` says yes.

    `failure` is the error that opened the breaker (None where unknown): a skip by the short links' breaker
    (`scan_buffer.redis_outage`) may follow a refusal, a full Redis's, as well as a call that was not answered."""

    failure: RedisError | None = None

    @classmethod
    def for_outage(cls, outage: Outage) -> RedisSkipped:
        """The skip while `outage` is known: its words give the pause in force (the short links' breaker pauses less
        after a refusal than after a timeout) and the failure that began it (`why_refused`)."""
        failure = outage.failure if isinstance(outage.failure, RedisError) else None
        why = f" ({why_refused(failure)})" if failure is not None else ""
        skip = cls(f"not asked: it is skipped for {outage.pause_in_force:g} s after a call failed{why}")
        skip.failure = failure
        return skip


@contextmanager
def breaker(connection, outage: Outage | None = None) -> Iterator[None]:
    """Around calls to the Redis behind `connection` whose caller copes without them (a web request's, the drainer's
    queuing of webhooks): while it did not answer a moment ago (`redis_outage`) the block does not run and
    `RedisSkipped` is raised at once; a block whose call did not answer opens the breaker, for REDIS_AWAY_FOR (the
    short links' breaker for the pause its failure calls for: `scan_buffer.Outage.begin`). A stalled Redis held each
    cancel, large print file and webhook's queuing the web timeout (a second) again, and a page asking several times,
    several seconds.

    Args:
        connection (`redis.Redis`): the client the block's calls go through (a queue's `connection`).
        outage (`Outage`, *optional*): the breaker to use instead of its server's (`redis_outage`): the short links'
            own (`scan_buffer.redis_outage`), for a call that shares what they know.

    Raises:
        RedisSkipped: the breaker is open; nothing was asked.
        redis.exceptions.RedisError: what the block raised (a full or read-only Redis answers, and one that refuses the
            password: the breaker stays shut).
    """
    outage = outage or redis_outage(connection)
    if outage.known():
        raise RedisSkipped.for_outage(outage)
    try:
        yield
    except RedisError as exc:
        # Another Redis's skip (a cache on a server of its own, asked inside this block) says nothing of this one
        if did_not_answer(exc) and not isinstance(exc, RedisSkipped):
            outage.begin(exc)
        raise


def redis_address(connection) -> str:
    """Where the Redis behind `connection` (a redis-py client) is, for a message: its host and port (or socket path)
    and database, with the user name it signs in as, if any; never its password."""
    kwargs = connection.connection_pool.connection_kwargs
    where = kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    user = f"{echo(kwargs['username'])}@" if kwargs.get("username") else ""
    return f"{user}{where}/{kwargs.get('db', 0)}"


# What mends a refused password, for the line that says it: waiting does not (Redis refuses it until one is changed).
PASSWORD_FIX = "REDIS_URL carries the password Redis asks for"


def password_refused(connection, exc: RedisError, who: str = "") -> str | None:
    """The one line for a password that the Redis behind `connection` refused, for a command, a log or a worker's end:
    "Redis at HOST:PORT/DB refused the password (Redis's words)", where it is (`redis_address`) and never the password
    itself; None when `exc` is not that refusal. Said as a Redis that is away ("run again once it answers"), a
    command sent its operator to wait for something no wait mends.

    Args:
        connection (`redis.Redis`): the client whose call `exc` ended.
        exc (`redis.exceptions.RedisError`): what the call raised.
        who (`str`, *optional*): whose password it was ("the worker": "refused the worker's password").

    Returns:
        `str | None`: the line, without a full stop, or None.
    """
    if not isinstance(exc, AuthenticationError):
        return None
    whose = f"{who}'s" if who else "the"
    return f"Redis at {redis_address(connection)} refused {whose} password ({exc})"


def password_refused_on_page(connection, exc: RedisError, what: str, operator: bool = False) -> str | None:
    """The sentence a page (or the API) says for a password that the Redis behind `connection` refused, and the full
    line (`password_refused`) in the log; None when `exc` is not that refusal. A page said "cannot be reached right
    now" or "try again in a minute", and a marketer waited for what only whoever runs the site mends. Where Redis is
    and its words are said only to whoever runs the site (a superuser; a team's staff are its own people, not the
    site's): everyone else reads that the site's password is refused.

    Args:
        connection (`redis.Redis`): the client whose call `exc` ended.
        exc (`redis.exceptions.RedisError`): what the call raised.
        what (`str`): what refused, as the page names it ("the job queue (Redis)"), the sentence's start.
        operator (`bool`, *optional*): the reader runs the site (`User.is_superuser`).

    Returns:
        `str | None`: the sentence, with its full stop, or None.
    """
    refusal = password_refused(connection, exc)
    if refusal is None:
        return None
    log.error("%s: nothing works through it until %s", refusal, PASSWORD_FIX)
    said = f"{what} refuses the site's password."
    if operator:
        return f"{said} {refusal}: it works again once {PASSWORD_FIX}."
    return f"{said} Waiting will not mend it: whoever runs the site must put it right."


def did_not_answer(exc: RedisError) -> bool:
    """Whether a Redis error says it did not answer or could not be reached (not that it refused: full, read-only, or
    a wrong password: redis-py's AuthenticationError is a ConnectionError, but Redis answered it, in a round trip)."""
    return isinstance(exc, RedisTimeoutError | RedisConnectionError) and not isinstance(exc, AuthenticationError)


# The Redis cache backends whose waits `limit_web_redis` shortens: settings' own (through the breaker) and Django's.
REDIS_CACHES = ("qartsite.redis_cache.RedisCache", "django.core.cache.backends.redis.RedisCache")


def limit_web_redis() -> None:
    """Called as a web process loads the application (`qartsite.web_process`), never by workers or commands: the
    queues' and the cache's Redis clients this process makes from now on wait `settings.WEB_REDIS_TIMEOUTS`, unless
    REDIS_URL (or CACHE_URL) sets its own. django-rq and Django's cache read these settings each time they make one.

    The settings are changed in place because that is where every client is made from: django-rq makes a new one from
    RQ_QUEUES at each `get_queue` or `get_connection` (a dozen calls, in modules the workers run too) and Django's cache
    a backend per thread from CACHES. There is no one instance to mark, as the media storage's
    (`storage.limit_web_requests`); a flag read at each call would need a wrapper around each of them instead."""
    for config in settings.RQ_QUEUES.values():
        if config.get("URL") == settings.REDIS_QUEUE_URL:
            config["URL"] = settings.WEB_REDIS_QUEUE_URL
    cache = settings.CACHES["default"]
    if cache["BACKEND"] in REDIS_CACHES and cache.get("OPTIONS") == settings.REDIS_TIMEOUTS:
        cache["OPTIONS"] = dict(settings.WEB_REDIS_TIMEOUTS)


def probe_write(connection) -> None:
    """Write a small key that expires in a minute to the Redis behind `connection`: whether it takes a job now.

    A write, not a PING: a full Redis (maxmemory with noeviction) or a read-only replica answers PING and refuses
    every job (a fault drill: eleven failed jobs in 30 s, and /healthz said ok).

    Raises:
        redis.exceptions.RedisError: Redis refused the write (`OutOfMemoryError`, `ReadOnlyError`) or did not answer
            within the connection's timeouts.
    """
    connection.set(WRITE_PROBE_KEY, "1", ex=60)


def why_refused(exc: RedisError) -> str:
    """A Redis error as a monitor's one line: what kind of trouble, then Redis's own words."""
    if isinstance(exc, OutOfMemoryError):
        return f"full, refuses writes: {exc}"
    if isinstance(exc, ReadOnlyError):
        return f"read-only (a replica), refuses writes: {exc}"
    if isinstance(exc, AuthenticationError):  # a ConnectionError, but Redis answered: waiting will not mend it
        return f"refused the password: {exc}"
    if did_not_answer(exc):
        return f"not answering: {exc}"
    return f"refused: {exc}"
