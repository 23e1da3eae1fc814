"""Scans not counted yet: what waits in the durable buffer (`campaigns.scan_buffer`) and when the drainer
(`campaigns.drainer`) last stored it, for the one line the campaign and placement pages show and for `/healthz`.

Figures come from the daily rollups the drainer keeps, so a stopped drainer looked exactly like nobody scanning.
Only what this host can know is said: its own spool folder (each web host spools to its own disk, and another host's
files cannot be seen from here), the shared Redis stream, and the drainers' last passes. Reading it costs one Redis
round trip with the short link's own timeouts and skips Redis during a known outage; when Redis is away the stream is
said to be unknown and the page still renders.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from django.conf import settings
from django.utils import formats, timezone
from redis.exceptions import RedisError

from campaigns import refused_scans, scan_buffer

# A running drainer stores a scan within about a second (drainer.BLOCK_MS); one waiting longer than this, or a
# drainer that has not finished a pass for this long, is worth saying. A lag this small never fails the health check.
LAG = timedelta(minutes=1)
SPOOL_FILES_READ = 20  # the oldest waiting scan is looked for in this many spool files at most (one line each)
# In the spool folder: this host's drainer's last finished pass (the file's modification time), which the pages read
# while Redis is away. Its record in Redis alone made every page say "Some scans are still being counted" during a
# Redis outage, while the drainer stored this host's spool on time (fault drills).
PASS_FILE = ".drained"


@dataclass(frozen=True)
class Backlog:
    """What waits to be counted, as far as this host knows.

    spool_files: this host's spool files not drained yet (written or claimed); other hosts' are not seen.
    stream_entries: entries in the Redis stream, None when Redis could not be asked.
    oldest: when the oldest waiting scan that was looked at was made (None: none found).
    drained_at: this host's drainer's last finished pass (in its spool folder, and in Redis), else the latest of any
        host's (None: none recorded).
    refused: scans the database refused, set aside for whoever runs qart (`campaigns.refused_scans`): never counted
        until retried, so not "waiting"; /healthz reports them for a monitor. None when Redis could not be asked.
    """

    spool_files: int
    stream_entries: int | None
    oldest: datetime | None
    drained_at: datetime | None
    now: datetime
    refused: int | None = 0

    @property
    def waiting(self) -> bool:
        return bool(self.spool_files or self.stream_entries)

    @property
    def stalled(self) -> bool:
        return self.drained_at is not None and self.now - self.drained_at > LAG

    @property
    def behind(self) -> bool:
        """Scans wait longer than LAG, or wait with no drainer ever recorded, or the drainer stopped passing."""
        if self.stalled:
            return True
        if not self.waiting:
            return False
        return self.drained_at is None or self.oldest is None or self.now - self.oldest > LAG

    def note(self, zone: tzinfo) -> str:
        """The pages' one line ("" when the counts are up to date), times in `zone`."""
        if not self.behind:
            return ""
        ran = f" The scan counter last ran on {local_time(self.drained_at, zone)}." if self.stalled else ""
        if self.waiting and self.oldest is not None:
            return (f"Some scans are still being counted: the oldest waiting was made on "
                    f"{local_time(self.oldest, zone)}; the figures on this page do not include them yet.{ran}")
        if self.waiting:
            return f"Some scans are still being counted: the figures on this page do not include them yet.{ran}"
        return (f"Scans made after {local_time(self.drained_at, zone)} may not be counted yet: the scan counter "
                "has not run since.")

    def to_dict(self) -> dict:
        """For `/healthz`: `behind` is what a monitor alerts on; the site stays healthy (scans are kept meanwhile)."""
        return {
            "behind": self.behind,
            "spool_files_here": self.spool_files,
            "stream_entries": self.stream_entries,
            "oldest_waiting": self.oldest.isoformat() if self.oldest else None,
            "last_drained": self.drained_at.isoformat() if self.drained_at else None,
            "refused_scans": self.refused,
        }


def local_time(moment: datetime, zone: tzinfo) -> str:
    """`moment` in `zone`, in the house date-time format ("6 Dec 2026 14:03"): "14:03 on 6 Dec" had no year and was
    the only time on the pages written that way.

    Args:
        moment: an aware datetime.
        zone: the team's time zone.

    Returns:
        The date and time as every page writes them.
    """
    return formats.date_format(moment.astimezone(zone), "DATETIME_FORMAT")


def drained_key() -> str:
    """A hash: host name -> the Unix time its drainer last finished a pass (written by `Drainer.drain_once`)."""
    return f"{settings.QART['REDIS_PREFIX']}drained"


def record_pass(client) -> None:
    """Note that this host's drainer finished a pass now (one HSET a pass; a Redis error is the caller's)."""
    client.hset(drained_key(), socket.gethostname(), f"{timezone.now().timestamp():.3f}")


def record_pass_here(folder: Path) -> None:
    """Note in this host's spool folder that its drainer finished a pass now (`PASS_FILE`); a folder that cannot be
    written (the drainer says so itself) is left as it is."""
    try:
        (folder / PASS_FILE).touch()
    except OSError:
        pass


def pass_here(folder: Path) -> datetime | None:
    """When this host's drainer last finished a pass, from its spool folder (None: never, or not readable)."""
    try:
        return from_unix((folder / PASS_FILE).stat().st_mtime)
    except OSError:
        return None


def from_unix(value: bytes | str | float) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def spool_waiting(folder: Path) -> tuple[int, datetime | None]:
    """This host's spool files waiting (written or claimed) and the time of the oldest first scan among them."""
    paths = []
    try:
        for path in folder.glob(f"scans-*{scan_buffer.SPOOL_SUFFIX}*"):
            try:
                if path.stat().st_size:
                    paths.append(path)
            except OSError:
                continue  # drained while we looked
    except OSError:  # no folder yet, or one that cannot be read
        return 0, None
    oldest = None
    for path in paths[:SPOOL_FILES_READ]:
        try:
            with open(path, "rb") as file:
                event = scan_buffer.parse_event(file.readline())
            made = datetime.fromisoformat(event["time"]) if event else None
        except (OSError, ValueError, TypeError):
            continue  # drained meanwhile, or a torn line: the count still says it waits
        if made is not None and made.tzinfo is not None and (oldest is None or made < oldest):
            oldest = made
    return len(paths), oldest


def stream_waiting() -> tuple[int | None, datetime | None, dict, int | None]:
    """Entries in the stream, the time the oldest was added, the drainers' last passes and the refused scans kept in
    Redis; (None, None, {}, None) when Redis is away (it is then skipped for a moment, as the short link does)."""
    if scan_buffer.redis_outage.known():
        return None, None, {}, None
    pipeline = scan_buffer.redis_client().pipeline(transaction=False)
    pipeline.xlen(scan_buffer.stream_key())
    pipeline.xrange(scan_buffer.stream_key(), count=1)
    pipeline.hgetall(drained_key())
    pipeline.hlen(refused_scans.refused_key())
    try:
        length, first, passes, refused = pipeline.execute()
    except RedisError as exc:
        scan_buffer.redis_outage.begin(exc)
        return None, None, {}, None
    # A stream entry's id starts with the millisecond it was added.
    added = from_unix(int(first[0][0].split(b"-")[0]) / 1000) if first else None
    return length, added, {(host.decode() if isinstance(host, bytes) else host): from_unix(at)
                           for host, at in passes.items()}, refused


def backlog() -> Backlog:
    """What waits now (see `Backlog`)."""
    folder = Path(settings.QART["SPOOL_DIR"])
    spool_files, spool_oldest = spool_waiting(folder)
    stream_entries, stream_oldest, passes, refused = stream_waiting()
    # This host's drainer drains this host's spool (its passes are known here even while Redis is away); in the
    # stream-first setup the drainer may run elsewhere.
    here = [moment for moment in (pass_here(folder), passes.get(socket.gethostname())) if moment is not None]
    drained_at = max(here) if here else max(passes.values(), default=None)
    oldest = min((t for t in (spool_oldest, stream_oldest) if t is not None), default=None)
    if refused is not None:  # and those set aside on this host while Redis was away, not moved there yet
        refused += sum(1 for _ in refused_scans.files())
    return Backlog(spool_files, stream_entries, oldest, drained_at, timezone.now(), refused)
