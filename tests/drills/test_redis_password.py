"""Drill: Redis refuses the worker's password, at its start (REDIS_URL's is wrong) or later (Redis restarted with
another `requirepass`).

Real processes: a redis-server of the drill's own that asks for a password, and an RQ worker on the tiny model. A
wrong password does not mend while the worker runs (it read REDIS_URL once): the worker ends with exit status 1 and
one line that names the Redis and the refusal, without the password, so that its supervisor's restarts show it and the
start after the password is put right takes the queue. Waited for as a Redis that is away, it said "refused" every few
seconds, for ever, and looked alive.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.drill, pytest.mark.django_db]


def ended(worker: subprocess.Popen, seconds: float = 60) -> str:
    """The worker's output once it ended by itself, at most `seconds` from now."""
    try:
        worker.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running:\n{Path(worker.log_path).read_text()[-3000:]}") from None
    return Path(worker.log_path).read_text()


def said_refused(log: str, server) -> str:
    """The worker's last line, checked: the refusal in one line, where from, and no password or traceback."""
    assert "Traceback" not in log and server.password not in log and "wrong-password" not in log, log[-3000:]
    last = log.rstrip("\n").rpartition("\n")[2]
    assert last.startswith(f"qart: Redis at 127.0.0.1:{server.port}/0 refused the worker's password ("), log[-3000:]
    return last


@pytest.mark.worker
def test_a_worker_started_with_a_wrong_password_ends_at_once_with_one_line(password_redis, start_worker):
    worker = start_worker(REDIS_URL=password_redis.url_with("wrong-password"))
    log = ended(worker)
    assert worker.returncode == 1
    assert log.strip() == said_refused(log, password_redis)  # its only line


@pytest.mark.worker
def test_a_worker_ends_once_redis_restarted_with_another_password(password_redis, start_worker):
    worker = start_worker(REDIS_URL=password_redis.url)
    deadline = time.monotonic() + 120
    while "Listening on" not in Path(worker.log_path).read_text():  # its engine loaded, it waits for jobs
        assert worker.poll() is None and time.monotonic() < deadline, Path(worker.log_path).read_text()[-3000:]
        time.sleep(0.2)

    password_redis.change_password()

    log = ended(worker)
    assert worker.returncode == 1
    said_refused(log, password_redis)
