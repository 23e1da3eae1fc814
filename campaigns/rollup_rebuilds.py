"""Daily scan rollups rebuilt from the stored scans (`manage.py qart_rollups`, and after a team changes its time
zone): `rebuild` recounts placements' rows (`ScanRollup`) by the drainer's own `rollups.tally`, so both paths
agree, then their campaigns' rows and their teams' from them (`rollups.refresh_campaigns`,
`team_rollups.refresh_teams`).

A change of a team's time zone is recounted without holding the team's placements, then caught up in one short
transaction that also switches the zone its figures count in (`recount_team`); until it commits every figure keeps
to the old zone's days (`Team.counted_time_zone`), and a team with nothing counted switches at once (`team_saved`).

Days whose scans retention has deleted keep their rows, in the zone they were counted in (`kept_rows`).
One difference from the drainer: where one visitor's scans of a day reach the drainer out of time order, the drainer
counts the visitor under the values of the first scan it stored, the rebuild under the earliest; totals agree either
way, and only values that change within a visitor's day (a destination rule, as a schedule ends) can differ.

The migrations that made the rollups count the scans stored before them with the same replay (`count_all`,
`new_rows`), on plain rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Min, QuerySet

from campaigns import rollup_staging, team_rollups
from campaigns.models import Placement, ScanEvent, ScanRollup
from campaigns.rollups import (
    UPSERT_BATCH,
    Dimension,
    Key,
    Scan,
    Tally,
    day_bounds,
    lock_placements,
    refresh_campaigns,
    tally,
    write,
)
from qartsite.models import Team, zone_named
from qartsite.plurals import counted
from qartsite.sql import copy_rows

REPLAY_CHUNK = 5000
RECOUNT_LOCKS = team_rollups.TEAM_LOCKS + 1  # the advisory locks' first key for a team's recount (`recount_held_off`)
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
    recount (`recount_team`), which also switches that zone.

    A placement whose earliest counted scans are gone or may be (retention deleted them, or will: they are older
    than its team's retention) keeps the rows that count them, and any that share their time (`kept_rows`): those
    days stay days of the zone they were counted in. Only the stored scans after the last one those rows count are
    recounted, so totals are exact whatever the zone was and is; a recounted day that is also a kept day (the zone
    moved west) is added to the kept rows. On that one seam day a visitor with scans on both sides of the cut counts
    twice among unique visitors. One transaction per placement, which holds the drainer off that placement
    meanwhile; each campaign's rows are recounted from its placements' once they are
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
    """Recount a team's rollups in `zone` (its new time zone) and make it the zone its figures count in: the pages,
    the API, the exports and the drainer read the old zone's days over the old rows until the switch commits, the
    new zone's over the new rows after, never a mix. None (and nothing changed) when the team's zone is no longer
    `zone` by the end, or when another recount of the team is running (`recount_held_off`, which also holds
    retention off the team's scans throughout).

    Counted in two phases, so that the team's placements are locked for a moment rather than for the whole count (a
    million scans take minutes, bench/RESULTS.md: every drainer batch with one of the team's scans waited, other
    teams' scans in it too, and the team's placement edits past the web's statement timeout):

    1. The placements are locked just long enough to read the highest stored scan id (`last_id`): every batch that
       held them has committed, and every later one draws its scans' ids as it inserts them, holding the placements,
       so after that read and above it. Then the team's scans up to it are counted in `zone` without any lock
       (`planned`), into a temporary table (`rollup_staging`).
    2. One short transaction (`caught_up`) locks the placements again, recounts the days the scans stored since fall
       on (few), puts the staged rows in place of the team's, recounts its campaigns' and its own rows from them
       and switches `counted_time_zone` as it commits.
    """
    with recount_held_off(team_id) as claimed:
        if not claimed:
            return None
        with rollup_staging.staged_table():
            return recounted(team_id, zone)


def recounted(team_id: int, zone: str) -> Rebuilt | None:
    """`recount_team`'s two phases, the team's recount held and the staging table made."""
    new_zone = zone_named(zone)
    # 1. Counted without holding the placements.
    with transaction.atomic():
        locked = lock_placements(Placement.objects.filter(campaign__team_id=team_id).values_list("pk", flat=True))
        last_id = ScanEvent.objects.aggregate(last=Max("pk"))["last"] or 0
    counted = {}
    for pk in sorted(locked.zones):
        plan = planned(pk, new_zone, locked.kept_from[pk], last_id)
        rollup_staging.stage(plan.tallies)
        counted[pk] = Staged(plan.kept, plan.scans, len(plan.tallies))
    rollup_staging.index_staged()
    # 2. The scans stored meanwhile, and the switch, in one short transaction.
    with transaction.atomic():
        rebuilt = caught_up(team_id, zone, counted, last_id)
        if not Team.objects.filter(pk=team_id, time_zone=zone).update(counted_time_zone=zone):
            transaction.set_rollback(True)
            return None
    return rebuilt


def caught_up(team_id: int, zone: str, counted: Mapping[int, Staged], last_id: int) -> Rebuilt:
    """Phase 2 of `recount_team`, in its transaction: lock the team's placements, bring what phase 1 staged (counted
    up to `last_id`) up to date and put it in place, then recount the team's campaigns' rows and its own.

    A day (of `zone`) that a scan stored after `last_id` falls on is recounted whole, its visitors with it. A
    placement whose kept rows changed meanwhile (a late scan older than its earliest stored one), or made meanwhile,
    is recounted whole; one deleted meanwhile took its rows with it.
    """
    new_zone = zone_named(zone)
    placements = Placement.objects.filter(campaign__team_id=team_id)
    done = set(placements.values_list("pk", flat=True))
    locked = lock_placements(done)
    later: dict[int, list[datetime]] = {}
    for placement_id, when in ScanEvent.objects.filter(
            pk__gt=last_id, placement_id__in=list(locked.zones), is_bot=False).values_list("placement_id", "time"):
        later.setdefault(placement_id, []).append(when)
    rebuilt, ready = Rebuilt(), {}
    for pk in sorted(locked.zones):
        before = counted.get(pk)
        if before is not None and before.kept == planned(pk, new_zone, locked.kept_from[pk], count=False).kept:
            ready[pk] = before.updated(pk, new_zone, later.get(pk, []))
        else:
            rebuilt += store(pk, planned(pk, new_zone, locked.kept_from[pk]))
    ready = {pk: staged for pk, staged in ready.items() if not staged.kept.everything}
    for pk, staged in ready.items():
        clear(pk, staged.kept)
    rollup_staging.put_in_place(list(ready), keeping=[pk for pk, staged in ready.items() if staged.kept.days])
    rebuilt += sum((Rebuilt(1, staged.scans, staged.rows) for staged in ready.values()), Rebuilt())
    refresh_campaigns(placements.values_list("campaign_id", flat=True).distinct())
    team_rollups.refresh_teams({team_id})
    # A placement made meanwhile was not locked, and a batch may have counted its first scans in the old zone:
    # recounted too, until none is left.
    while todo := set(placements.exclude(pk__in=done).values_list("pk", flat=True)):
        lock_placements(todo)
        rebuilt += rebuild(Placement.objects.filter(pk__in=todo), zone)
        done |= todo
    return rebuilt


@contextmanager
def recount_held_off(team_id: int) -> Iterator[bool]:
    """Take the team's recount while the block runs, without waiting: yields False (and holds nothing) while another
    session has it (a PostgreSQL advisory lock; SQLite runs one writer at a time anyway). A session's lock, so the
    block's statements may each commit: retention deletes in batches, `recount_team` counts outside its switch's
    transaction.

    Retention deleting a team's scans while its recount reads them (each of its queries sees what has committed)
    took scans the recount had found still stored out of both the kept rows and the recount: lost from the daily
    counts, which retention must keep. And every worker's maintenance, a minute apart, finds a team still to
    recount until the recount running commits: each one recounted the whole team again."""
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
        return store(placement_id, planned(placement_id, zone_named(zone) if zone else locked.zones[placement_id],
                                           locked.kept_from[placement_id]))


@dataclass(frozen=True)
class Kept:
    """A placement's rows a rebuild keeps (`kept_rows`): their days, the time of the last scan they count, and
    whether they are all that is left (every counted scan gone)."""

    days: frozenset[date]
    counted_until: datetime | None
    everything: bool


@dataclass
class Planned:
    """What a placement's rebuild stores: the rows it keeps and the tallies of the stored scans after them."""

    kept: Kept
    tallies: dict[Key, Tally]
    scans: int


@dataclass(frozen=True)
class Staged:
    """A placement's rebuild staged by `recount_team` (`rollup_staging`): the rows it keeps, how many scans and
    rows it staged."""

    kept: Kept
    scans: int
    rows: int

    def updated(self, placement_id: int, zone: tzinfo, later: Collection[datetime]) -> Staged:
        """This placement's staged rows, counted up to some scan id, with every day of `zone` that a scan stored
        since (`later`, their times) falls on recounted whole from the stored scans, its placement locked."""
        counted_until = self.kept.counted_until
        days = {when.astimezone(zone).date() for when in later if counted_until is None or when > counted_until}
        if self.kept.everything or not days:
            return self
        rows, scans = rollup_staging.unstage(placement_id, days)
        rows, scans = self.rows - rows, self.scans - scans
        people = recountable(placement_id, self.kept)
        for day in sorted(days):
            starts, ends = day_bounds(day, zone)
            stored = people.filter(time__gte=starts, time__lt=ends).order_by("time").values_list(
                *STORED_FIELDS, named=True).iterator(chunk_size=REPLAY_CHUNK)
            tallies, count = count_all(stored, {placement_id: zone})
            rollup_staging.stage(tallies)
            rows, scans = rows + len(tallies), scans + count
        return Staged(self.kept, scans, rows)


def planned(placement_id: int, zone: tzinfo, kept_from: datetime | None, last_id: int | None = None,
            count: bool = True) -> Planned:
    """What a rebuild of one placement in `zone` stores (see `rebuild`), read without locking anything.

    Args:
        placement_id: the placement.
        zone: the zone whose days the scans are counted in.
        kept_from: the time before which its raw scans may be gone (`LockedPlacements.kept_from`).
        last_id: count only the scans stored up to this id (None: all of them).
        count: False to find only the rows it keeps (`Planned.kept`), counting nothing.

    Returns:
        The rows kept and the tallies of the scans after them.
    """
    people = ScanEvent.objects.filter(placement_id=placement_id, is_bot=False)
    # Scans older than the retention are as good as gone (the next daily pass deletes them): a late one the
    # drainer stored after its day's other scans were deleted is no proof that the day's rows count it alone.
    earliest_stored = (people.filter(time__gte=kept_from) if kept_from else people).aggregate(
        first=Min("time"))["first"]
    days, counted_until = kept_rows(ScanRollup.objects.filter(placement_id=placement_id), earliest_stored)
    kept = Kept(frozenset(days), counted_until, earliest_stored is None and bool(days))
    if kept.everything or not count:
        return Planned(kept, {}, 0)
    people = recountable(placement_id, kept)
    if last_id is not None:
        people = people.filter(pk__lte=last_id)
    stored = people.order_by("time").values_list(*STORED_FIELDS, named=True).iterator(chunk_size=REPLAY_CHUNK)
    tallies, scans = count_all(stored, {placement_id: zone})
    return Planned(kept, tallies, scans)


def recountable(placement_id: int, kept: Kept) -> QuerySet[ScanEvent]:
    """A placement's stored human scans that its kept rows do not count: every one after the last they count."""
    people = ScanEvent.objects.filter(placement_id=placement_id, is_bot=False)
    # Every scan at or before counted_until is in a kept row, none after.
    return people.filter(time__gt=kept.counted_until) if kept.days else people


def store(placement_id: int, plan: Planned) -> Rebuilt:
    """Replace the rows of a placement (locked by the caller) that `plan` recounts with its tallies."""
    if plan.kept.everything:
        return Rebuilt()  # every counted scan is gone: the rows are all that is left
    clear(placement_id, plan.kept)
    # A kept day of the old zone can also be a day of the new one (moving west): add to its rows.
    write({key: row for key, row in plan.tallies.items() if key[1] in plan.kept.days})
    insert_rows({key: row for key, row in plan.tallies.items() if key[1] not in plan.kept.days})
    return Rebuilt(1, plan.scans, len(plan.tallies))


def clear(placement_id: int, kept: Kept) -> None:
    """Delete the rows of a placement (locked by the caller) that a rebuild recounts: all but `kept`'s, if any."""
    if kept.everything:
        return
    rows = ScanRollup.objects.filter(placement_id=placement_id)
    if kept.days:
        rows = rows.filter(day__in=rows.filter(dimension=Dimension.TOTAL, first_scan__gt=kept.counted_until)
                           .values("day"))
    rows.delete()


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
