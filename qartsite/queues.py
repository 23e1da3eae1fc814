"""What the site asks of RQ's worker registry."""

from __future__ import annotations

from rq import Queue, Worker
from rq.worker_registration import clean_worker_registry


def workers_on(queue: Queue) -> int:
    """How many workers listen on `queue` now.

    A worker killed without a goodbye stays registered until someone cleans the registry up; its heartbeat key has
    expired by then, so cleaning first counts only the living.

    Raises:
        redis.exceptions.RedisError: Redis cannot be reached.
    """
    clean_worker_registry(queue)
    return Worker.count(queue=queue)
