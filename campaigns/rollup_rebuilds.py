"""Daily scan rollups rebuilt from the stored scans (`manage.py qart_rollups`, and after a team changes its time
zone): `rebuild` recounts placements' rows (`ScanRollup`) by the drainer's own `rollups.tally`, so both paths
agree, then their campaigns' rows and their teams' from them (`rollups.refresh_campaigns`,
`team_rollups.refresh_teams`).

A change of a team's time zone is recounted in one transaction that also switches the zone its figures count in
(`recount_team`); until it commits every figure keeps to the old zone's days (`Team.counted_time_zone`), and a team
with nothing counted switches at once (`team_saved`).

Days whose scans retention has deleted keep their rows, in the zone they were counted in (`kept_rows`).
One difference from the drainer: where one visitor's scans of a day reach the drainer out of time order, the drainer
counts the visitor under the values of the first scan it stored, the rebuild under the earliest; totals agree either
way, and only values that change within a visitor's day (a destination rule, as a schedule ends) can differ.

The migrations that made the rollups count the scans stored before them with the same replay (`count_all`,
`new_rows`), on plain rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from django.db import DatabaseError, connection, transaction
from django.db.models import Min, QuerySet

from campaigns import team_rollups
from campaigns.models import Placement, ScanEvent, ScanRollup
from campaigns.rollups import (
    UPSERT_BATCH,
    Dimension,
    Key,
    Scan,
    Tally,
    lock_placements,
    refresh_campaigns,
    tally,
    write,
)
from qartsite.models import Team, zone_named
from qartsite.plurals import counted
from qartsite.sql import copy_rows

REPLAY_CHUNK = 5000
RECOUNT_LOCKS = team_rollups.TEAM_LOCKS + 1  # the advisory locks' first key for a team's recount (`recount_claimed`)
# The columns `tally` reads, fetched with values_list(named=True) when replaying (far cheaper than model instances).
STORED_FIELDS = ("placement_id", "time", "is_bot", "visitor_key", "client_hash", "device_class", "os", "browser",
                 "country", "accept_language", "rule")


@dataclass(frozen=True)
class Rebuilt:
    placements: int = 0
    scans: int = 0
    rows: int = 0

    def __add__(self, other: Rebuilt) -> Rebuilt:
        return Rebuilt(self.placements + other.placements, self.scans + other.scans, self.rows + other.rows)

    def __str__(self) -> str:
        return (f"Recounted {counted(self.scans, 'scan')} of {counted(self.placements, 'placement')} into "
                f"{counted(self.rows, 'rollup row')}.")


def rebuild(placements: QuerySet[Placement], zone: str | None = None) -> Rebuilt:
    """Recount the rollups of `placements` from their stored scans in the zone `zone` names, or (None, a repair)
    each in the zone its team's figures are counted in (`Team.counted_time_zone`). A change of zone is a team's
    recount in one transaction (`recount_team`), which also switches that zone.

    A placement whose earliest counted scans are gone or may be (retention deleted them, or will: they are older
    than its team's retention) keeps the rows that count them, and any that share their time (`kept_rows`): those
    days stay days of the zone they were counted in. Only the stored scans after the last one those rows count are
    recounted, so totals are exact whatever the zone was and is; a recounted day that is also a kept day (the zone
    moved west) is added to the kept rows. On that one seam day a visitor with scans on both sides of the cut counts
    twice among unique visitors. One transaction per placement (savepoints inside `recount_team`'s), which holds
    the drainer off that placement meanwhile; each campaign's rows are recounted from its placements' once they are
    done, and their teams' rows from their campaigns' at the end (a repair recounts everything).
    """
    done = Rebuilt()
    by_campaign: dict[int, list[int]] = {}
    teams: set[int] = set()
    for pk, campaign_id, team_id in placements.order_by("campaign_id", "pk").values_list(
            "pk", "campaign_id", "campaign__team_id"):
        by_campaign.setdefault(campaign_id, []).append(pk)
        teams.add(team_id)
    try:
        for campaign_id, pks in by_campaign.items():
            try:
                for pk in pks:
                    done += rebuild_placement(pk, zone)
            finally:  # also when one fails: the campaign's rows add up to whatever its placements' rows now are
                refresh_campaigns([campaign_id])
    finally:
        team_rollups.refresh_teams(teams)
    return done


def recount_team(team_id: int, zone: str) -> Rebuilt | None:
    """Recount a team's rollups in `zone` (its new time zone) and make it the zone its figures count in, in one
    transaction: the pages, the API, the exports and the drainer read the old zone's days over the old rows until
    it commits, the new zone's over the new rows after, never a mix. None (and nothing changed) when the team's
    zone is no longer `zone` by the end, or when another recount of the team is running (`recount_claimed`).

    The team's placements are locked first, in the drainer's order (by id): its batches of them wait for the commit
    (their scans wait in the buffer; redirects do not) and then count in the new zone. A big team holds them a
    while (a million scans took about four minutes to rebuild, bench/RESULTS.md), which a change of zone, rare
    and asked for, is worth; the team page says meanwhile that the recount runs.
    """
    with transaction.atomic():
        if not recount_claimed(team_id):
            return None
        placements = Placement.objects.filter(campaign__team_id=team_id)
        rebuilt, done = Rebuilt(), set()
        # A placement made meanwhile was not locked, and a batch may have counted its first scans in the old zone:
        # recounted too, until none is left.
        while todo := set(placements.exclude(pk__in=done).values_list("pk", flat=True)):
            lock_placements(todo)
            rebuilt += rebuild(Placement.objects.filter(pk__in=todo), zone)
            done |= todo
        if not Team.objects.filter(pk=team_id, time_zone=zone).update(counted_time_zone=zone):
            transaction.set_rollback(True)
            return None
    return rebuilt


def recount_claimed(team_id: int) -> bool:
    """Take the team's recount for this transaction, without waiting: False while another transaction has it (a
    PostgreSQL advisory lock; SQLite runs one writer at a time anyway).

    Every worker's maintenance, a minute apart, finds a team still to recount until the recount running commits:
    each one waited for its placements' locks, then recounted the whole team again, holding the drainer and the
    team's placement edits as long once more, one worker after another."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [RECOUNT_LOCKS, team_id])
        return cursor.fetchone()[0]


@contextmanager
def recount_held_off(team_id: int) -> Iterator[bool]:
    """Keep the team's recount from starting while the block runs, without waiting for one that runs: yields
    False (and holds nothing) while one does. A session's lock, so the block's statements may each commit (retention
    deletes in batches); SQLite runs one writer at a time anyway.

    Retention deleting a team's scans while its recount reads them (each of its queries sees what has committed)
    took scans the recount had found still stored out of both the kept rows and the recount: lost from the daily
    counts, which retention must keep."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [RECOUNT_LOCKS, team_id])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            # A connection the database dropped released its locks with it.
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [RECOUNT_LOCKS, team_id])


def team_saved(sender: type, instance: Team, raw: bool = False, **kwargs) -> None:
    """Signal receiver (post_save of a team): a team whose figures count no scan yet takes a new time zone at once,
    there being nothing to recount; one with counted days keeps the old zone's until `recount_team` commits.

    Its placements are locked while it looks, as the drainer's batches lock theirs: a batch that counted first scans
    in the old zone committed before (and the team then waits for its recount), or one waits and counts in the new.
    It never waits for those locks: where a recount or a batch holds any, the maintenance's recount switches the
    zone instead. Waiting, a save during a team's recount (minutes) hung until it committed, and one in a
    transaction (the admin's), which holds the team's row the recount switches at its end, deadlocked with it.
    A fixture's team (`raw`, loaddata) is left as it came: its placements and rows are loaded after it.
    """
    if raw or instance.counted_time_zone == instance.time_zone:
        return
    with transaction.atomic():
        placements = Placement.objects.filter(campaign__team_id=instance.pk)
        ids = set(placements.values_list("pk", flat=True))
        if len(lock_placements(ids, skip_locked=True).zones) < len(ids):
            return  # held by a recount or a batch (or deleted meanwhile): the maintenance recounts it
        if ScanRollup.objects.filter(placement__in=placements).exists():
            return
        if Team.objects.filter(pk=instance.pk, time_zone=instance.time_zone).update(
                counted_time_zone=instance.time_zone):
            instance.counted_time_zone = instance.time_zone


def rebuild_placement(placement_id: int, zone: str | None = None) -> Rebuilt:
    """Recount one placement's rollups (see `rebuild`) in one transaction, its placement locked."""
    with transaction.atomic():
        locked = lock_placements([placement_id])
        if not locked.zones:
            return Rebuilt()  # deleted meanwhile
        zones = {placement_id: zone_named(zone)} if zone else locked.zones
        people = ScanEvent.objects.filter(placement_id=placement_id, is_bot=False)
        rows = ScanRollup.objects.filter(placement_id=placement_id)
        # Scans older than the retention are as good as gone (the next daily pass deletes them): a late one the
        # drainer stored after its day's other scans were deleted is no proof that the day's rows count it alone.
        kept_from = locked.kept_from[placement_id]
        earliest_stored = (people.filter(time__gte=kept_from) if kept_from else people).aggregate(
            first=Min("time"))["first"]
        kept_days, counted_until = kept_rows(rows, earliest_stored)
        if earliest_stored is None and kept_days:
            return Rebuilt()  # every counted scan is gone: the rows are all that is left
        if kept_days:
            # Every scan at or before counted_until is in a kept row, none after: recount the rest.
            rows = rows.filter(day__in=rows.filter(dimension=Dimension.TOTAL, first_scan__gt=counted_until)
                               .values("day"))
            people = people.filter(time__gt=counted_until)
        rows.delete()
        stored = people.order_by("time").values_list(*STORED_FIELDS, named=True).iterator(chunk_size=REPLAY_CHUNK)
        tallies, count = count_all(stored, zones)
        # A kept day of the old zone can also be a day of the new one (moving west): add to its rows.
        write({key: row for key, row in tallies.items() if key[1] in kept_days})
        insert_rows({key: row for key, row in tallies.items() if key[1] not in kept_days})
    return Rebuilt(1, count, len(tallies))


def insert_rows(tallies: Mapping[Key, Tally]) -> None:
    """Store `tallies` as new placement rows (none of them stored yet): COPY on PostgreSQL (a rebuild of 1 M scans
    writes ~2 M rows, and bulk_create spent three quarters of the rebuild's time on them), bulk_create elsewhere."""
    if connection.vendor != "postgresql":
        ScanRollup.objects.bulk_create(new_rows(tallies, ScanRollup), batch_size=UPSERT_BATCH)
        return
    copy_rows(ScanRollup, ("placement_id", "day", "dimension", "value", "scans", "visitors", "first_scan", "last_scan"),
              ((placement_id, day, dimension, value, row.scans, row.visitors, row.first_scan, row.last_scan)
               for (placement_id, day, dimension, value), row in tallies.items()))


def kept_rows(rows: QuerySet[ScanRollup], earliest_stored: datetime | None) -> tuple[set[date], datetime | None]:
    """The days whose rows a rebuild keeps, and the time of the last scan they count (None when none is kept).

    A day's rows are kept when they count a scan older than the earliest stored one (retention deleted it, so it
    cannot be recounted; `earliest_stored` is the earliest within the retention), and then every day whose first
    scan is no later than the last scan kept so far: the kept rows hold exactly the scans up to that time, whatever
    zones their days were counted in, and the recount takes the stored scans after it.
    """
    kept: set[date] = set()
    counted_until: datetime | None = None
    for day, first_scan, last_scan in rows.filter(dimension=Dimension.TOTAL).order_by("first_scan").values_list(
            "day", "first_scan", "last_scan"):
        older = earliest_stored is None or first_scan < earliest_stored
        if not (older or counted_until is not None and first_scan <= counted_until):
            break
        kept.add(day)
        counted_until = last_scan if counted_until is None else max(counted_until, last_scan)
    return kept, counted_until


def count_all(scans: Iterable[Scan], zones: Mapping[int, tzinfo]) -> tuple[dict[Key, Tally], int]:
    """What stored scans, given oldest first, add up to (in chunks, forgetting the visitors of finished days, so
    memory holds one day's visitors); and how many scans there were. Plain rows in, plain tallies out: the
    migration that made the rollups counts the scans stored before them with it too."""
    tallies: dict[Key, Tally] = {}
    seen: set[tuple[int, date, str]] = set()
    count = 0
    chunk: list[Scan] = []
    for scan in scans:
        chunk.append(scan)
        if len(chunk) == REPLAY_CHUNK:
            count += replay(chunk, zones, seen, tallies)
            chunk = []
    count += replay(chunk, zones, seen, tallies)
    return tallies, count


def new_rows(tallies: Mapping[Key, Tally], model: type) -> list:
    """`model` (ScanRollup, or the migration's historical one) rows holding `tallies`."""
    return [model(placement_id=placement_id, day=day, dimension=dimension, value=value, scans=row.scans,
                  visitors=row.visitors, first_scan=row.first_scan, last_scan=row.last_scan)
            for (placement_id, day, dimension, value), row in tallies.items()]


def replay(chunk: list[Scan], zones: Mapping[int, tzinfo], seen: set[tuple[int, date, str]],
           tallies: dict[Key, Tally]) -> int:
    """Add a chunk of stored scans, oldest first, to `tallies`; forget visitors of days before the chunk's last
    (scans come in time order, so those days are done). Returns the chunk's length."""
    if not chunk:
        return 0
    for key, row in tally(chunk, zones, seen).items():
        mine = tallies.get(key)
        if mine is None:
            tallies[key] = row
        else:
            mine.scans += row.scans
            mine.visitors += row.visitors
            mine.first_scan = min(mine.first_scan, row.first_scan)
            mine.last_scan = max(mine.last_scan, row.last_scan)
    last = chunk[-1]
    current = last.time.astimezone(zones[last.placement_id]).date()
    stale = {key for key in seen if key[1] < current}
    seen.difference_update(stale)
    return len(chunk)
