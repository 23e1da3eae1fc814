"""The drainer: moves buffered scans (`campaigns.scan_buffer`) into the database, exactly once.

`manage.py qart_drain_scans` runs `Drainer.run` for good; tests and the outage drill call `drain_once`. Being the
process that runs wherever the site does, it also queues the webhooks Redis missed (`webhooks.flush_outbox`, every
FLUSH_EVERY and as soon as Redis is back).

Exactly once: every event carries the id its request made (`ScanEvent.event_id`, unique), the insert skips ids
already stored, and an event leaves the buffer (XACK and XDEL on the stream, deleting a spool file) only after the
transaction that stored it has committed. A drainer that dies in between leaves the event pending; whoever reads it
again (this consumer on its next pass, or another one through XAUTOCLAIM once it has been idle CLAIM_IDLE_MS) stores
nothing twice. When the database is away (OperationalError, InterfaceError), nothing is acknowledged and the next pass
starts over, with backoff (`Drainer.run`).

One bad scan does not hold up the others: when the database refuses a batch (a DataError, a value it cannot store;
an IntegrityError), `store_accepted` splits it in halves, each stored in its own transaction, down to the scans it
refuses alone; those are set aside (`campaigns.refused_scans`: a Redis hash, or a file beside the spool while Redis
is away) before the batch's entries are acknowledged or its spool file deleted, and `manage.py qart_refused_scans`
lists, retries or discards them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from time import monotonic
from typing import Any

from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, connection, transaction
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from campaigns import refused_scans, repeats, rollups, scan_backlog, scan_buffer, webhooks
from campaigns.models import ScanEvent
from qartsite.plurals import counted
from qartsite.queues import PASSWORD_FIX, password_refused, why_refused
from qartsite.sql import NOT_MIGRATED, copy_rows, not_migrated, one_of

log = logging.getLogger(__name__)

GROUP = "drainers"  # the stream's consumer group; each drainer process is one consumer in it
BATCH = 500
CLAIM_IDLE_MS = 60_000  # a pending entry nobody touched for this long belongs to a drainer that died
BLOCK_MS = 1000  # how long a running drainer waits on the stream before looking at the spool again
FORGET_IDLE_MS = 3_600_000  # a consumer with nothing pending that has not read for this long is forgotten
FORGET_EVERY = 60.0  # seconds between two looks for such consumers in a running drainer
FLUSH_EVERY = 30.0  # seconds between two flushes of the webhooks' outbox in a running drainer
# Delete a consumer only if it holds nothing pending, in one step: an entry it read in between would otherwise leave
# the group's pending list unacknowledged and never be delivered again.
FORGET_IF_IDLE = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
"""
MAX_RETRY_DELAY = 30.0

DATABASE_ERRORS = (DatabaseError, InterfaceError)
# The database refuses what it was given, not its connection: retrying the same batch cannot help, splitting it can.
# A str the driver cannot encode (a lone surrogate, which only JSON written by hand into the buffer carries) is
# refused before it reaches the database, by the driver itself.
REFUSALS = (DataError, IntegrityError, UnicodeEncodeError)


@dataclass
class Drained:
    """What one pass did: events taken from the buffer, rows new to the database, and events it refused (set aside)."""

    read: int = 0
    stored: int = 0
    refused: int = 0
    redis_away: str = ""  # why the stream was not drained (`queues.why_refused`), when it was not
    # Redis refused the password (`queues.password_refused`: where, and its words): only a password put right mends it
    password_refusal: str = ""

    def add(self, read: int, stored: int, refused: int = 0) -> None:
        self.read += read
        self.stored += stored
        self.refused += refused


def default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def scan_row(event: dict[str, Any]) -> ScanEvent:
    """The database row of a buffered event (ValueError, TypeError or KeyError when it is malformed)."""
    time = datetime.fromisoformat(event["time"])
    if time.tzinfo is None:
        raise ValueError(f"naive time {event['time']!r}")
    return ScanEvent(
        event_id=uuid.UUID(event["id"]), placement_id=int(event["placement"]), time=time,
        browser=_text(event, "browser", 60), os=_text(event, "os", 60), device_class=_text(event, "device_class", 10),
        referer=_text(event, "referer", 500), accept_language=_text(event, "accept_language", 100),
        country=_text(event, "country", 2), is_bot=bool(event.get("is_bot", False)),
        visitor_key=_text(event, "visitor_key", 32), rule=_text(event, "rule", 16),
    )


def _text(event: dict[str, Any], field: str, length: int) -> str:
    """A text field of an event, without NULs and cut to its column's length. A request's header can carry a NUL
    (the development server and other WSGI servers pass one on), and PostgreSQL refuses one in text: the batch
    failed, the drainer stopped, and the spool file holding that one scan held up every scan after it."""
    return str(event.get(field, "")).replace("\x00", "")[:length]


def store_events(events: Iterable[dict[str, Any]]) -> int:
    """Store `events` in one transaction, skipping those already stored; returns how many rows are new.

    Events of placements deleted since the scan are dropped (their scans went with them). Raises the database's
    error when it fails: then nothing of this batch is stored.
    """
    rows: dict[uuid.UUID, ScanEvent] = {}
    for event in events:
        try:
            row = scan_row(event)
        except (ValueError, TypeError, KeyError) as exc:
            # Said without the visitor's key or the referer's query, as a refused scan is (`refused_scans.described`).
            log.error("Dropping a malformed scan event (%s): %s", exc, refused_scans.described(event))
            continue
        rows.setdefault(row.event_id, row)  # the same event twice in one batch counts once
    if not rows:
        return 0
    with transaction.atomic():
        # Locked before anything is read: another drainer's batch of the same placements waits for this one's commit
        # and then finds its scans (rollups, and the stored ids below).
        locked = rollups.lock_placements(row.placement_id for row in rows.values())
        known = set(ScanEvent.objects.filter(one_of(ScanEvent, "event_id", list(rows)))
                    .values_list("event_id", flat=True))
        fresh = [row for row in rows.values() if row.placement_id in locked.zones and row.event_id not in known]
        repeats.flag_repeats(fresh)
        repeats.flag_later_repeats(fresh)
        rollups.add(fresh, locked)  # before the insert: it looks for the visitors' earlier scans
        insert(fresh)
        webhooks.scans_stored(fresh, locked)  # queued after the commit, one job per endpoint for the batch
    return len(fresh)


def store_accepted(events: list[dict[str, Any]], refused: list[tuple[dict[str, Any], str]]) -> int:
    """Store `events` as `store_events` does; when the database refuses the batch (REFUSALS), store each half in its
    own transaction, and so on down to single scans. A scan refused alone is added to `refused` with the reason, and
    the others are stored. Returns how many rows are new; raises the other database errors (an outage: then the
    halves stored so far stay stored, and the next pass skips them).

    A lone scan refused for an IntegrityError is tried once more: a scan another drainer stored meanwhile (a lost
    race on its unique id) is then found stored and skipped, and not set aside."""
    try:
        return store_events(events)
    except REFUSALS as exc:
        if len(events) > 1:
            half = len(events) // 2
            return store_accepted(events[:half], refused) + store_accepted(events[half:], refused)
        if isinstance(exc, IntegrityError):
            try:
                return store_events(events)
            except REFUSALS as again:
                exc = again
        refused.append((events[0], refused_scans.reason_of(exc)))
        return 0


INSERTED = [field for field in ScanEvent._meta.concrete_fields if not field.primary_key]


def insert(rows: list[ScanEvent]) -> None:
    """Insert new scan rows: COPY on PostgreSQL (a tenth of bulk_create's CPU per row, bench/RESULTS.md), else
    bulk_create. COPY has no ON CONFLICT and needs none: `store_events` left out the ids already stored while it
    holds the batch's placements, and every insert of scans holds them; should a duplicate slip in anyway, the
    unique event id fails the batch, which the next pass stores without it."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        ScanEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=BATCH)
        return
    copy_rows(ScanEvent, [field.column for field in INSERTED],
              ([getattr(row, field.attname) for field in INSERTED] for row in rows))


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def unreadable_entry(fields: dict[bytes, bytes]) -> str:
    """A stream entry that is no scan, for the log: what `refused_scans.described` shows of it when it is an object,
    else only its size. Its raw fields could carry the visitor key and a referer's query (a token)."""
    try:
        data = json.loads(fields.get(b"event", b""))
    except ValueError:
        data = None
    if isinstance(data, dict):
        return refused_scans.described(data)
    return f"{counted(sum(len(key) + len(value) for key, value in fields.items()), 'byte')}, not a scan"


class Drainer:
    """One consumer of the scan stream, and a reader of the spool.

    Args:
        consumer (`str`, *optional*, defaults to host and process id): the name in the consumer group.
        claim_idle_ms (`int`, *optional*, defaults to CLAIM_IDLE_MS): take over other consumers' entries pending
            this long. Longer than a pass can take, or a live drainer's entries are stored twice (harmlessly).
        log_outages (`bool`, *optional*, defaults to `True`): log when Redis goes away and comes back, as a running
            drainer does; `qart_drain_scans --once` says it in its one line instead (`Drained.redis_away`).
    """

    def __init__(self, consumer: str | None = None, claim_idle_ms: int = CLAIM_IDLE_MS,
                 log_outages: bool = True) -> None:
        self.consumer = consumer or default_consumer()
        self.claim_idle_ms = claim_idle_ms
        self.log_outages = log_outages
        self.stream = scan_buffer.stream_key()
        self.redis_away = False
        self.spool_blocked = False  # the spool folder could not be claimed or read at the last pass
        self.refused_blocked = False  # the refused scans' files could not be moved into Redis at the last pass
        self.forgot_at: float | None = None  # when this drainer last looked for consumers to forget
        self.flushed_at: float | None = None  # when this drainer last flushed the webhooks' outbox

    def client(self) -> Redis:
        return scan_buffer.command_client()

    def drain_once(self, block_ms: int | None = None) -> Drained:
        """Store what the stream and the spool hold now. Raises the database's error (nothing acknowledged).

        Args:
            block_ms (`int`, *optional*): wait this long for new stream entries when there are none.
        """
        drained = Drained()
        try:
            self.drain_stream(drained, block_ms)
        except RedisError as exc:
            drained.redis_away = why_refused(exc)  # not answering, or refused (a wrong password): which
            drained.password_refusal = password_refused(self.client(), exc) or ""
            if not self.redis_away and self.log_outages:
                self.say_redis_away(exc)
            self.redis_away = True
        else:
            if self.redis_away:
                if self.log_outages:
                    log.warning("Redis is back: draining the stream again")
                self.flushed_at = None  # and queuing the webhooks it missed
            self.redis_away = False
            self.collect_refused()
        try:
            self.drain_spool(drained)
        except OSError as exc:
            # A folder that cannot be renamed in or read (permissions, a read-only disk): the drainer crashed here,
            # restarted, and crashed again, a traceback a pass. Its scans wait in their files (pages say scans are
            # waiting) while the stream is still drained.
            if not self.spool_blocked:
                log.error("The spool cannot be drained (%s): its scans wait there; draining the stream only", exc)
            self.spool_blocked = True
        else:
            if self.spool_blocked:
                log.warning("The spool can be drained again")
            self.spool_blocked = False
        self.flush_webhooks()
        self.record_pass()
        return drained

    def say_redis_away(self, exc: RedisError) -> None:
        """Log, once per outage, that the stream cannot be read and the spool alone is drained.

        A refused password is not an outage: waiting does not mend it, so it is said as an error, with where Redis is.
        The drainer goes on all the same, unlike a worker (`workers.PasswordRefused`): the spool's scans need no Redis,
        and a drainer that ended (and its restarts) would store none of them until the password is put right."""
        refusal = password_refused(self.client(), exc, "the drainer")
        if refusal:
            log.error("%s: draining the spool only, until %s", refusal, PASSWORD_FIX)
        else:
            log.warning("Redis is away (%s): draining the spool only", exc)

    def collect_refused(self) -> None:
        """Move the scans set aside in files while Redis was away into its hash (`refused_scans.collect`)."""
        try:
            refused_scans.collect(self.client())
        except (RedisError, OSError) as exc:
            # Said once, as the spool is (`spool_blocked`): an unreadable folder said it on every pass, once a second.
            if not self.refused_blocked:
                log.warning("Refused scans wait in %s (%s)", refused_scans.folder(), exc)
            self.refused_blocked = True
        else:
            if self.refused_blocked:
                log.warning("Refused scans are moved from %s again", refused_scans.folder())
            self.refused_blocked = False

    def flush_webhooks(self) -> None:
        """Now and then, while Redis answers: queue the webhooks whose queuing failed (`webhooks.flush_outbox`)."""
        if self.redis_away or (self.flushed_at is not None and monotonic() - self.flushed_at < FLUSH_EVERY):
            return
        self.flushed_at = monotonic()
        webhooks.flush_outbox()

    def record_pass(self) -> None:
        """Tell the pages and /healthz this host's drainer is running (`campaigns.scan_backlog`): in the spool folder,
        which this host's pages read while Redis is away, and in Redis, for the other hosts."""
        scan_backlog.record_pass_here(Path(settings.QART["SPOOL_DIR"]))
        if self.redis_away:
            return
        try:
            scan_backlog.record_pass(self.client())
        except RedisError:
            pass  # noticed at the next pass's stream read

    # 1. The stream
    def drain_stream(self, drained: Drained, block_ms: int | None) -> None:
        client = self.client()
        try:
            client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        # a. what this consumer read before and did not finish (the database failed, or we were stopped)
        while entries := self.read(client, "0"):
            self.store_entries(client, entries, drained)
        # b. what dead drainers left pending
        cursor = "0-0"
        while True:
            reply = client.xautoclaim(self.stream, GROUP, self.consumer, self.claim_idle_ms, cursor, count=BATCH)
            cursor, entries = reply[0], reply[1]
            if entries:
                self.store_entries(client, entries, drained)
            if cursor in (b"0-0", "0-0"):
                break
        # c. new entries: a blocking read through a client whose read timeout covers the block, for that read alone
        reader = scan_buffer.command_client(block_ms / 1000) if block_ms else client
        while entries := self.read(reader, ">", block_ms):
            self.store_entries(client, entries, drained)
            block_ms = None
        # d. now and then: drainers that stopped, once b. has taken what they left
        if self.forgot_at is None or monotonic() - self.forgot_at >= FORGET_EVERY:
            self.forgot_at = monotonic()
            self.forget_stopped(client)

    def forget_stopped(self, client: Redis) -> list[str]:
        """Remove the group's consumers that hold nothing pending and have not read for FORGET_IDLE_MS: each drainer
        process joins under its own name, so every restart used to leave one listed for good. A live drainer that
        is forgotten on a quiet stream joins again at its next read. Returns the names removed."""
        forgotten = []
        for info in client.xinfo_consumers(self.stream, GROUP):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if name == self.consumer or info["pending"] or info["idle"] < FORGET_IDLE_MS:
                continue
            if client.eval(FORGET_IF_IDLE, 1, self.stream, GROUP, name) != -1:
                forgotten.append(name)
        if forgotten:
            log.info("Forgot %d stopped drainers of %s: %s", len(forgotten), self.stream, ", ".join(forgotten))
        return forgotten

    def read(self, client: Redis, start: str, block_ms: int | None = None) -> list[tuple[bytes, dict]]:
        reply = client.xreadgroup(GROUP, self.consumer, {self.stream: start}, count=BATCH, block=block_ms)
        return reply[0][1] if reply else []

    def store_entries(self, client: Redis, entries: list[tuple[bytes, dict]], drained: Drained) -> None:
        events = []
        for entry_id, fields in entries:
            event = scan_buffer.parse_event(fields.get(b"event", b"")) if fields else None
            if event is None and fields:  # no fields: deleted from the stream while pending
                log.error("Dropping unreadable stream entry %s: %s", entry_id.decode(errors="replace"),
                          unreadable_entry(fields))
            elif event is not None:
                events.append(event)
        self.store(events, client, drained, or_file=False)
        self.acknowledge(client, [entry_id for entry_id, _ in entries])

    def store(self, events: list[dict[str, Any]], client: Redis | None, drained: Drained, or_file: bool = True) -> None:
        """Store what the database accepts of `events` (`store_accepted`) and set aside what it refuses
        (`refused_scans.set_aside`), before the caller acknowledges them (`client`: None while Redis is away)."""
        refused: list[tuple[dict[str, Any], str]] = []
        stored = store_accepted(events, refused)
        for event, reason in refused:
            refused_scans.set_aside(event, reason, client, or_file)
        drained.add(len(events), stored, len(refused))

    def acknowledge(self, client: Redis, entry_ids: list[bytes]) -> None:
        """Only after the commit: the entries leave the group's pending list and the stream."""
        pipeline = client.pipeline(transaction=False)
        pipeline.xack(self.stream, GROUP, *entry_ids)
        pipeline.xdel(self.stream, *entry_ids)
        pipeline.execute()

    # 2. The spool
    def drain_spool(self, drained: Drained) -> None:
        """Store each claimed spool file, then delete it. A file that cannot be marked claimed or read (its
        permissions, a disk error) waits for the next pass without holding up the others; the first such error is
        raised once every file was tried."""
        trouble: list[OSError] = []
        for path in scan_buffer.claim_spool_files(Path(settings.QART["SPOOL_DIR"]), trouble):
            try:
                for events in batches(scan_buffer.spool_events(path), BATCH):
                    self.store(events, None if self.redis_away else self.client(), drained)
                self.remove(path)
            except FileNotFoundError:
                continue  # another drainer claimed it too, stored it and deleted it meanwhile: nothing is lost
            except OSError as exc:
                trouble.append(exc)
        if trouble:
            raise trouble[0]

    def remove(self, path: Path) -> None:
        """Only after every batch of the file has committed."""
        path.unlink(missing_ok=True)

    # 3. For good
    def run(self, stop: threading.Event) -> None:
        """Drain until `stop` is set; while the database is away, wait and retry (1 s, doubling up to 30 s)."""
        delay = 1.0
        log.info("Draining scans as consumer %s of %s", self.consumer, self.stream)
        while not stop.is_set():
            started = monotonic()
            try:
                drained = self.drain_once(block_ms=BLOCK_MS)
            except DATABASE_ERRORS as exc:
                if not_migrated(exc):
                    log.warning("%s Nothing acknowledged; retrying in %.0f s", NOT_MIGRATED, delay)
                elif isinstance(exc, DataError):
                    # Not an outage, and not a scan's value (`store_accepted` sets those scans aside): something else
                    # the drainer writes (the webhooks' outbox) was refused. Said so, not "away".
                    log.error("The database refused the drainer's work (%s): nothing acknowledged, retrying in %.0f s. "
                              "Not a scan (those it refuses are set aside): tell whoever runs qart", exc, delay)
                else:
                    log.warning("The database is away (%s): nothing acknowledged, retrying in %.0f s", exc, delay)
                connection.close()  # a broken connection is opened afresh on the next pass
                stop.wait(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            delay = 1.0
            if drained.stored:
                log.info("Stored %s", counted(drained.stored, "scan"))
            if not drained.read and monotonic() - started < BLOCK_MS / 2000:
                stop.wait(BLOCK_MS / 1000)  # Redis is away: the stream did not wait for us


def drain_once(consumer: str | None = None, claim_idle_ms: int = CLAIM_IDLE_MS) -> Drained:
    """Store everything buffered now, stream and spool (for tests, the outage drill and `--once`)."""
    return Drainer(consumer, claim_idle_ms).drain_once()
