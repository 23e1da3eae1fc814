"""Scans the database refused: set aside by the drainer, kept until whoever runs qart retries or discards them.

A buffered scan whose row the database will not take, even alone in its own transaction (a value it cannot store:
a DataError; an IntegrityError that storing it alone again did not clear), used to stop the drainer on its batch
for good: the stream's pending entries are read first on every pass, and a spool file is deleted only once every
line is stored, so every scan after it waited, and the campaigns' figures silently stopped. `campaigns.drainer`
now splits such a batch, stores every scan the database accepts, and hands each one it still refuses to
`set_aside` before it acknowledges the stream entries or deletes the spool file.

One place for both of the drainer's paths, Redis first:

- the Redis hash `<QART["REDIS_PREFIX"]>scans-refused`, event id -> {"event", "reason", "refused_at"} (JSON): shared
  by every host, so `manage.py qart_refused_scans` and `/healthz` see it from anywhere; keyed by the event's id, so
  a drainer that dies between setting a scan aside and acknowledging it sets it aside again without a second copy,
  and a retry or a discard names it;
- when Redis is away (the spool path during an outage), `<QART["SPOOL_DIR"]>/refused/<event id>.json` beside the
  spool, which outlives the process as the spool does; the drainer moves these files into the hash at its next pass
  with Redis (`collect`), and the command collects before it lists.

Nothing here retries by itself: a refused scan waits for a fix (a migration, a cleaned value) and the command.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone
from redis import Redis
from redis.exceptions import RedisError

from qartsite.storage import write_whole

log = logging.getLogger(__name__)

FILE_SUFFIX = ".json"
UNREADABLE_SUFFIX = ".unreadable"  # a file `collect` could not read, renamed so that it is said once, not every pass
# What the log shows of a refused event: neither its visitor key (a pseudonym of the visitor's address) nor more of
# its referer than the site it came from (a page's address can carry a token in its query).
LOGGED_FIELDS = ("id", "placement", "time", "browser", "os", "device_class", "country", "is_bot", "rule")


def refused_key() -> str:
    """A hash: event id (32 hex digits) -> the refused scan as JSON (see `Refused.to_json`)."""
    return f"{settings.QART['REDIS_PREFIX']}scans-refused"


def folder() -> Path:
    """Where refused scans wait on this host while Redis is away."""
    return Path(settings.QART["SPOOL_DIR"]) / "refused"


@dataclass(frozen=True)
class Refused:
    """One refused scan: the buffered event as it was, why the database refused it, and when."""

    event: dict[str, Any]
    reason: str
    refused_at: datetime

    @property
    def event_id(self) -> str:
        return event_id(self.event)

    def to_json(self) -> str:
        return json.dumps({"event": self.event, "reason": self.reason, "refused_at": self.refused_at.isoformat()})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Refused | None:
        """None when `raw` is not one (a file cut short by a full disk)."""
        try:
            data = json.loads(raw)
            refused = cls(data["event"], str(data["reason"]), datetime.fromisoformat(data["refused_at"]))
            event_id(refused.event)  # an event without a readable id cannot be named, retried or discarded
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        return refused


def event_id(event: dict[str, Any]) -> str:
    """The event's id as 32 hex digits (the drainer set aside only events whose id is a UUID)."""
    return uuid.UUID(str(event["id"])).hex


def reason_of(exc: Exception) -> str:
    """The database's own words, first line only: PostgreSQL's CONTEXT line quotes the refused value."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def described(event: dict[str, Any]) -> str:
    """The event for the log, without what it holds of the visitor (see LOGGED_FIELDS)."""
    shown = {field: event[field] for field in LOGGED_FIELDS if field in event}
    if event.get("referer"):
        shown["referer"] = "/".join(str(event["referer"]).split("/")[:3])
    return repr(shown)


def set_aside(event: dict[str, Any], reason: str, client: Redis | None, or_file: bool = True) -> str:
    """Keep a refused event: in the hash, or in this host's folder when `client` is None or Redis fails (unless not
    `or_file`: a stream entry that cannot be acknowledged either stays pending, and is refused again at the next
    pass). Logged at error level when it is new there. Returns where it went ("redis" or "file").

    Raises:
        RedisError: Redis failed and not `or_file`.
        OSError: the file could not be written either. Either way the caller acknowledges nothing.
    """
    refused = Refused(event, reason, timezone.now())
    if client is not None:
        try:
            new = client.hset(refused_key(), refused.event_id, refused.to_json())
        except RedisError as exc:
            if not or_file:
                raise
            log.warning("Redis is away (%s): the refused scan %s waits in %s", exc, refused.event_id, folder())
        else:
            if new:
                _log_refused(refused, "qart_refused_scans lists it")
            return "redis"
    path = folder() / f"{refused.event_id}{FILE_SUFFIX}"
    new = not path.exists()
    _write(path, refused.to_json())
    if new:
        _log_refused(refused, f"kept in {path}")
    return "file"


def _log_refused(refused: Refused, where: str) -> None:
    log.error("The database refused a scan (%s): set aside, %s; the other scans go on. Scan: %s",
              refused.reason, where, described(refused.event))


def _write(path: Path, text: str) -> None:
    """Write whole or not at all: a reader never sees half a file, a failed write leaves nothing behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, text.encode())


def files() -> Iterator[tuple[Path, Refused | None]]:
    """This host's refused scans waiting for Redis, each with its path (None for a file that cannot be read)."""
    try:
        paths = sorted(folder().glob(f"*{FILE_SUFFIX}"))
    except OSError:
        return
    for path in paths:
        try:
            yield path, Refused.from_json(path.read_text())
        except FileNotFoundError:
            continue  # collected by the drainer meanwhile
        except (OSError, UnicodeDecodeError):
            yield path, None


def collect(client: Redis) -> int:
    """Move this host's refused scans from their files into the hash (then delete each file); returns how many.
    Raises RedisError when Redis is away (the files wait)."""
    moved = 0
    for path, refused in files():
        if refused is None:
            kept = path.with_name(path.name + UNREADABLE_SUFFIX)
            log.error("A refused scan's file cannot be read: left for a person as %s", kept)
            path.rename(kept)
            continue
        client.hsetnx(refused_key(), refused.event_id, refused.to_json())  # one set aside again meanwhile: the same
        path.unlink(missing_ok=True)
        moved += 1
    return moved


def listed(client: Redis | None) -> list[Refused]:
    """Every refused scan known here, the earliest refused first: the hash's (None: Redis is away, so none) and this
    host's files not collected yet."""
    found: dict[str, Refused] = {}
    for _, refused in files():
        if refused is not None:
            found[refused.event_id] = refused
    if client is not None:
        for raw in client.hvals(refused_key()):
            refused = Refused.from_json(raw)
            if refused is not None:
                found[refused.event_id] = refused
    return sorted(found.values(), key=lambda refused: refused.refused_at)


def forget(event_ids: list[str], client: Redis | None) -> None:
    """Remove these refused scans, wherever they are kept (after their retry stored them, or to discard them)."""
    if not event_ids:
        return
    if client is not None:
        client.hdel(refused_key(), *event_ids)
    for name in event_ids:
        (folder() / f"{name}{FILE_SUFFIX}").unlink(missing_ok=True)
