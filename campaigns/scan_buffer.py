"""The durable buffer between the short link and the database: scans wait here for the drainer.

The redirect must not wait for the database, nor lose a scan when the database is away, so each scan becomes one
event written to one of two durable places, never kept in memory, and `manage.py qart_drain_scans`
(`campaigns.drainer`) stores both in the database:

- this process's spool file: JSON lines in `QART["SPOOL_DIR"]`, one append per event (about 10 µs);
- the Redis stream `<QART["REDIS_PREFIX"]>scans` (XADD: a round trip to another process, several times the CPU of
  the rest of the request on a busy two-core host; bench/RESULTS.md).

`QART["SCAN_BUFFER"]` says which comes first: "spool" (the default; the stream only when the file cannot be
written) needs a drainer on every web host and a disk that outlives the process; "stream" (the spool only while
Redis is away) suits web hosts whose disk does not. When neither takes an event, the short link stores it in the
database itself (`campaigns.redirects.store_unbuffered`).

An event is a dict of plain values (see `scan_event`), made in the request: its own id, the request's time and
what was worked out from the address (country, visitor key), never the address itself.

Spool files and the drainer share them through a rename, a lock and a mark: the drainer renames a file, takes its
lock (which waits for a writer still appending) and clears the file's owner-write bit before reading it; a writer
holds the lock while it appends and appends only to a file without that mark, so nothing is written to a file being
drained.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import stat
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from time import monotonic
from typing import Any

from django.conf import settings
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

log = logging.getLogger(__name__)

EVENT_VERSION = 1
SPOOL_SUFFIX = ".jsonl"
CLAIMED_SUFFIX = ".draining"
SPOOL_MODE = 0o600  # owner read and write: a file writers append to
CLAIMED_MODE = 0o400  # owner-write cleared: the drainer has claimed the file (see SpoolFile)
# The redirect's own Redis calls: fail in well under a second, never retry (the spool is the fallback).
REQUEST_CONNECT_TIMEOUT = 0.25
REQUEST_TIMEOUT = 0.5
# After a refusal, skip Redis for this long: a stopped Redis costs a try nothing, so scans go back to it soon.
REDIS_RETRY_AFTER = 1.0
# After a call that timed out (a frozen Redis takes connections and never answers), skip it this long: each try costs
# a scan the whole REQUEST_TIMEOUT, and with a second's pause a third of each web worker's time went on waiting, the
# scans queued behind it up to 1.5 s (a fault drill).
REDIS_SILENT_RETRY_AFTER = 5.0


class Outage:
    """Remembers for a moment that a service failed, so the next requests go straight to the fallback.

    Args:
        pause (`float`): seconds to skip the service after a failure.
        silent_pause (`float`, *optional*, defaults to `pause`): seconds to skip it after a timeout, which cost the
            caller the whole wait, where a refusal costs nothing.
    """

    def __init__(self, pause: float, silent_pause: float | None = None) -> None:
        self.pause = pause
        self.silent_pause = pause if silent_pause is None else silent_pause
        self.until = 0.0
        # The pause now in force and what began it, for a skip's message: which pause depends on the failure.
        self.pause_in_force = 0.0
        self.failure: BaseException | None = None
        self.told = False  # its warning was logged, and nothing has answered since (see `add_to_stream`)

    def known(self) -> bool:
        return monotonic() < self.until

    def begin(self, failure: BaseException | None = None) -> None:
        """Skip the service from now: `silent_pause` when `failure` is a timeout, else `pause`."""
        silent = isinstance(failure, TimeoutError | RedisTimeoutError)
        self.pause_in_force, self.failure = (self.silent_pause if silent else self.pause), failure
        self.until = monotonic() + self.pause_in_force

    def end(self) -> None:
        self.until = 0.0
        self.failure = None
        self.told = False


redis_outage = Outage(REDIS_RETRY_AFTER, REDIS_SILENT_RETRY_AFTER)
# After the spool could not be written (a full or read-only disk), scans go to the stream for this long without
# trying it: each try cost a failed write, and a warning per scan (600 lines in a fault drill).
SPOOL_RETRY_AFTER = 5.0
spool_outage = Outage(SPOOL_RETRY_AFTER)


def stream_key() -> str:
    return f"{settings.QART['REDIS_PREFIX']}scans"


def links_key() -> str:
    return f"{settings.QART['REDIS_PREFIX']}links"


@lru_cache(maxsize=8)
def _client(url: str, connect_timeout: float, timeout: float) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_timeout=timeout,
                          retry=Retry(NoBackoff(), 0), health_check_interval=30)


def redis_client(connect_timeout: float = REQUEST_CONNECT_TIMEOUT, timeout: float = REQUEST_TIMEOUT) -> Redis:
    """The client (and its connection pool) for REDIS_URL with these timeouts, one per process. Same Redis as the
    job queues; its own client because the redirect needs short timeouts and no retries."""
    return _client(settings.REDIS_URL, connect_timeout, timeout)


def command_client(block_seconds: float = 0.0) -> Redis:
    """The client of the drainer and the commands (`qart_drain_scans`, `qart_refused_scans`): the workers' and
    commands' timeouts (settings.REDIS_TIMEOUTS), no retries.

    A frozen Redis costs each call the whole read timeout: the drainer's 6 s (its blocking read's) on every call held
    `qart_drain_scans --once` 16 s (a fault drill). Only a blocking read waits longer.

    Args:
        block_seconds (`float`, *optional*): how long the calls made through it ask Redis to block (XREADGROUP's
            BLOCK), added to the read timeout.
    """
    timeouts = settings.REDIS_TIMEOUTS
    return redis_client(timeouts["socket_connect_timeout"], timeouts["socket_timeout"] + block_seconds)


def scan_event(placement_id: int, time: datetime, **fields: Any) -> dict[str, Any]:
    """One scan as the buffer holds it: a fresh id, the placement, the request's time (UTC) and `fields`
    (browser, os, device_class, referer, accept_language, country, is_bot, visitor_key, and the destination rule
    that fired, `rule`: `campaigns.rules`)."""
    # 128 random bits as 32 hex digits (what `uuid.UUID` reads), without building a UUID object: this runs per scan.
    return {"v": EVENT_VERSION, "id": os.urandom(16).hex(), "placement": placement_id, "time": time.isoformat(),
            **fields}


_to_json = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: json.dumps with options builds one per call


def push(event: dict[str, Any]) -> str:
    """Buffer one event: in the place `QART["SCAN_BUFFER"]` names first, else in the other. Returns where it went
    ("stream" or "spool"); raises OSError only when both failed."""
    line = _to_json(event)
    if settings.QART["SCAN_BUFFER"] == "spool" and not spool_outage.known():
        try:
            append_to_spool(line)
            return "spool"
        except OSError as exc:
            spool_outage.begin()
            log.warning("Could not append to the spool in %s (%s): scans go to the stream for the next %g s",
                        settings.QART["SPOOL_DIR"], exc, SPOOL_RETRY_AFTER)
            if not add_to_stream(line):
                raise
            return "stream"
    if add_to_stream(line):
        return "stream"
    append_to_spool(line)  # the stream is away: the spool after all (raises OSError when it fails too)
    return "spool"


def add_to_stream(line: str) -> bool:
    """XADD one event's JSON to the stream; False when Redis is away (then it is skipped for REDIS_RETRY_AFTER, or
    REDIS_SILENT_RETRY_AFTER after a call that timed out: `redis_outage`)."""
    if redis_outage.known():
        return False
    try:
        redis_client().xadd(stream_key(), {"event": line})
    except RedisError as exc:
        redis_outage.begin(exc)
        # Said once an outage: tried again every REDIS_RETRY_AFTER, it was a line a second per web process (16 in an
        # 8 s drill of Redis stopped, with two workers).
        if not redis_outage.told:
            log.warning("Redis is away (%s): scans go to the spool in %s", exc, settings.QART["SPOOL_DIR"])
            redis_outage.told = True
        return False
    if redis_outage.told:
        log.warning("Redis takes scans again")
        redis_outage.told = False
    return True


def spool_path() -> Path:
    """This process's spool file (host and process id in the name, so no two processes share one)."""
    return _spool_path(settings.QART["SPOOL_DIR"], os.getpid())


@lru_cache(maxsize=8)
def _spool_path(folder: str, pid: int) -> Path:
    return Path(folder) / f"scans-{socket.gethostname()}-{pid}{SPOOL_SUFFIX}"


class SpoolFile:
    """This process's open spool file. Kept open between scans (an open and close per scan would double the cost);
    reopened once the drainer has claimed it, in a forked child (the path names the process), and when the spool
    folder setting changes.

    The handoff costs a writer four system calls and no path lookup: the drainer marks a file it claims by clearing
    its owner-write bit while it holds the file's lock (`claim_spool_files`), and a writer, holding the same lock,
    appends only to a file whose mode still has that bit. The drainer and the web processes run as one user.
    """

    def __init__(self) -> None:
        self.fd: int | None = None
        self.folder: str | None = None
        self.threads = threading.Lock()  # flock holds other processes off, not this process's other threads

    def append(self, data: bytes) -> None:
        """Append `data` whole, in one write, under the file's lock, to a file the drainer has not claimed. On a failure
        (a full or vanished disk) the file is closed, still under the thread lock, so the next append opens it afresh:
        closed outside it, another thread could be writing to that descriptor number meanwhile, and once the number
        was reused (a client's socket, another file) write a scan there or close it (a fault drill on a full disk)."""
        with self.threads:
            try:
                self._append(data)
            except OSError:
                self.close()
                raise

    def _append(self, data: bytes) -> None:
        for _ in range(5):
            fd = self.fd if self.folder is settings.QART["SPOOL_DIR"] and self.fd is not None else self.open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                status = os.fstat(fd)
                if status.st_mode & stat.S_IWUSR and status.st_nlink:  # not claimed, not deleted
                    written = os.write(fd, data)
                    if written != len(data):
                        # A full disk took part of the line: cut it off, or the next line is glued to it and the
                        # drainer drops both as one unreadable line (this scan goes to the stream instead)
                        os.ftruncate(fd, status.st_size)
                        raise OSError(f"short write to the spool: {written} of {len(data)} bytes")
                    return
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self.close()  # claimed (or deleted): the next open makes a new file under the spool name
        raise OSError("could not append to the spool: the drainer kept claiming the file")

    def open(self) -> int:
        self.close()
        folder = settings.QART["SPOOL_DIR"]
        path = spool_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, SPOOL_MODE)
        self.folder = folder
        return self.fd

    def forked(self) -> None:
        """In a forked child: its own file from its next scan on, and a fresh thread lock (another thread of the
        parent may have held it at the fork)."""
        self.threads = threading.Lock()
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
        self.fd = self.folder = None


_spool = SpoolFile()
os.register_at_fork(after_in_child=_spool.forked)  # a forked worker writes its own file, not its parent's


def append_to_spool(line: str) -> None:
    """Append one JSON line to this process's spool file, whole, in one write, under the file's lock (a failure
    closes the file: the next append opens it afresh)."""
    _spool.append((line + "\n").encode())


def claim_spool_files(folder: Path, trouble: list[OSError] | None = None) -> list[Path]:
    """Rename every spool file in `folder` for draining, mark each claimed, and return the claimed files that are
    marked (older claims too: a drainer that stopped before deleting one leaves it here). Each writer then starts a
    new file.

    A renamed file is drained only once marked: until then a web process may still append to it (its descriptor is
    open), and lines written after the drainer's last read would go with the file. One that cannot be marked (its
    owner is another user, a disk error) waits, and is tried again at the next call; its error is added to `trouble`.

    Raises:
        OSError: a file could not be renamed (the folder's trouble: a read-only disk, its permissions).
    """
    if not folder.is_dir():
        return []
    for path in folder.glob(f"scans-*{SPOOL_SUFFIX}"):
        claimed = path.with_name(f"{path.name}.{uuid.uuid4().hex[:12]}{CLAIMED_SUFFIX}")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            continue
    marked = []
    for claimed in sorted(folder.glob(f"scans-*{CLAIMED_SUFFIX}")):
        try:
            _mark_claimed(claimed)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if trouble is not None:
                trouble.append(exc)
            continue
        marked.append(claimed)
    return marked


def _mark_claimed(path: Path) -> None:
    """Wait for a writer that locked the file before its rename, then mark it claimed: writers after this see the
    mark under the same lock and open a new file."""
    if stat.S_IMODE(path.stat().st_mode) == CLAIMED_MODE:
        return
    with open(path, "rb") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        os.fchmod(file.fileno(), CLAIMED_MODE)


def spool_events(path: Path) -> Iterator[dict[str, Any]]:
    """The events of a claimed spool file, line by line; a torn last line (a process killed mid-write) is logged
    and skipped."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            event = parse_event(raw)
            if event is None:
                log.error("Skipping unreadable line %d of %s: %r", number, path, raw[:200])
            else:
                yield event


def parse_event(raw: bytes | str) -> dict[str, Any] | None:
    """An event from its JSON text, or None when it is not one."""
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(event, dict) or not {"id", "placement", "time"} <= event.keys():
        return None
    return event
