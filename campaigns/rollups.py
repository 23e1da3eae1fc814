"""Daily scan rollups (`ScanRollup`): kept up to date as scans are stored, rebuilt from the stored scans on demand.

The drainer calls `add` with each batch of new scans, in the batch's transaction and before the batch is inserted:
what a batch adds to each (placement, day, dimension, value) row is summed in Python and written with one upsert
that adds to the stored counts. A visitor is new on a day when no stored scan of that placement that day has their
visitor key (the index on placement, visitor key and time answers that) and no earlier scan of the batch has it;
a late scan on a day whose rows count scans retention may have deleted never adds a visitor (`unknowable_visitors`).
Days are those of the zone the team's figures are counted in (`Team.counted_time_zone`), the old one until the
recount after a change of zone commits.
Two drainers could both take a visitor for new: `lock_placements` makes a batch wait for another's commit on the
same placements.

The rebuild from the stored scans (`manage.py qart_rollups`, and after a team changes its time zone) is
`campaigns.rollup_rebuilds`: it counts by the same `tally`, so both paths agree.

Each campaign's own rows (`CampaignRollup`, what its placements' rows add up to) are kept beside them: the drainer
adds each batch to both (`add`), and whatever recounts or removes placement rows recounts the campaign's rows from
them afterwards (`refresh_campaigns`, after a rebuild), and a deleted placement's rows are taken out of them
(`placement_deleting`). Whoever writes a campaign's rows holds its lock (`lock_campaigns`). Each team's rows
(`TeamRollup`, its campaigns' rows added up) change with them, in the same transactions (`campaigns.team_rollups`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol

from django.db import connection, models, transaction
from django.utils import timezone

from campaigns import team_rollups
from campaigns.models import CampaignRollup, Placement, ScanEvent, ScanRollup, TeamRollup
from campaigns.team_rollups import lock_campaigns, lock_teams
from qartsite.models import zone_named
from qartsite.sql import array_literal, one_of

UPSERT_BATCH = 500  # rows per INSERT on SQLite (and per bulk_create): 8 parameters each, far below its limit
Dimension = ScanRollup.Dimension
VALUE_MAX = ScanRollup._meta.get_field("value").max_length
Key = tuple[int, date, str, str]  # placement, day, dimension, value
LONGEST_DAY = timedelta(hours=26)  # a local day lasts 25 hours at most (a DST change); a scan's began no earlier


class Scan(Protocol):
    placement_id: int
    time: datetime
    is_bot: bool
    visitor_key: str
    client_hash: str
    device_class: str
    os: str
    browser: str
    country: str
    accept_language: str
    rule: str


@dataclass
class Tally:
    scans: int
    visitors: int
    first_scan: datetime
    last_scan: datetime

    def count(self, when: datetime, new_visitor: bool) -> None:
        self.scans += 1
        self.visitors += new_visitor
        self.first_scan = min(self.first_scan, when)
        self.last_scan = max(self.last_scan, when)


def language_of(accept_language: str) -> str:
    """The first language's primary subtag in lower case ('fr-FR,fr;q=0.9' -> 'fr'); '' for none or '*'."""
    first = accept_language.split(",", 1)[0].split(";", 1)[0].strip()
    primary = first.split("-", 1)[0].split("_", 1)[0].lower()
    # ASCII letters only: str.isalpha takes "éè" (a header of Latin-1 bytes), which the languages card then showed.
    return primary if primary.isascii() and primary.isalpha() and 2 <= len(primary) <= 3 else ""


def dimension_values(scan: Scan, hour: int) -> list[tuple[str, str, bool]]:
    """(dimension, value, counts visitors) for one scan, its total row first. Hours count no visitors (0): one
    visitor's scans spread over several hours, and the figure would read like something it is not. A destination
    rule has a row only when one sent the scan: most scans have none, and their share is the total's less the
    rules'."""
    values = [
        (Dimension.TOTAL, "", True),
        (Dimension.HOUR, f"{hour:02d}", False),
        (Dimension.DEVICE, scan.device_class[:VALUE_MAX], True),
        (Dimension.OS, scan.os[:VALUE_MAX], True),
        (Dimension.BROWSER, scan.browser[:VALUE_MAX], True),
        (Dimension.COUNTRY, scan.country.upper()[:VALUE_MAX], True),
        (Dimension.LANGUAGE, language_of(scan.accept_language), True),
    ]
    if scan.rule:
        values.append((Dimension.RULE, scan.rule[:VALUE_MAX], True))
    return values


def visitor_of(scan: Scan) -> str:
    """The key that tells visitors apart on one day. Scans from before visitor keys carry a keyed hash of the
    address instead; a scan with neither counts as its own visitor."""
    return scan.visitor_key or scan.client_hash


def tally(scans: Iterable[Scan], zones: Mapping[int, tzinfo], seen: set[tuple[int, date, str]]) -> dict[Key, Tally]:
    """What `scans` add to the rollups, bots left out.

    Args:
        scans: scans of the placements in `zones`, in any order.
        zones: placement id -> its team's time zone, which decides each scan's day and hour.
        seen: (placement, day, visitor) already counted that day; updated with the visitors of `scans`.

    Returns:
        (placement, day, dimension, value) -> what to add there.
    """
    tallies: dict[Key, Tally] = {}
    for scan in scans:
        if scan.is_bot:
            continue
        local = scan.time.astimezone(zones[scan.placement_id])
        day = local.date()
        visitor = visitor_of(scan)
        new_visitor = not visitor or (scan.placement_id, day, visitor) not in seen
        if visitor:
            seen.add((scan.placement_id, day, visitor))
        for dimension, value, counts_visitors in dimension_values(scan, local.hour):
            key = (scan.placement_id, day, dimension, value)
            row = tallies.get(key)
            if row is None:
                row = tallies[key] = Tally(0, 0, scan.time, scan.time)
            row.count(scan.time, new_visitor and counts_visitors)
    return tallies


# As scans are stored (the drainer) ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LockedPlacements:
    """The placements `lock_placements` locked: the zone their team's figures count days in, their campaign, team,
    slug and the time before which their raw scans may be gone (`kept_from`, None while a team keeps them all). The
    drainer's rollups read the zones, campaigns and `kept_from`, its `scan.created` webhooks the rest."""

    zones: dict[int, tzinfo]
    campaign_of: dict[int, int]
    team_of: dict[int, int]
    slug_of: dict[int, str]
    kept_from: dict[int, datetime | None] = dataclasses.field(default_factory=dict)


def lock_placements(placement_ids: Iterable[int], skip_locked: bool = False) -> LockedPlacements:
    """Lock the placements that exist among `placement_ids` for this transaction; answer what `LockedPlacements`
    holds of each, so the drainer's `add` and webhooks need not ask again.

    The lock (FOR NO KEY UPDATE on PostgreSQL; SQLite locks the whole database for a writer anyway) keeps two
    drainers from counting one visitor as new twice: the second waits for the first's commit, then sees its scans.
    Ordered by id, so two batches never wait on each other. The rest is read by a second query, once the locks are
    held: a batch that waited for a team's recount (`rollup_rebuilds.recount_team`, which holds the team's
    placements) must see the zone that recount committed, and the locking query's joined team row is the one of
    its own start (PostgreSQL re-reads only the locked rows). `skip_locked`: answer only those no other
    transaction holds, without waiting for any (`rollup_rebuilds.team_saved`).
    """
    ids = list(Placement.objects.filter(pk__in=set(placement_ids)).order_by("pk")
               .select_for_update(no_key=True, of=("self",), skip_locked=skip_locked).values_list("pk", flat=True))
    rows = Placement.objects.filter(pk__in=ids).values_list(
        "pk", "campaign_id", "campaign__team__counted_time_zone", "campaign__team_id", "slug",
        "campaign__team__scan_retention_days")
    now = timezone.now()
    locked = LockedPlacements({}, {}, {}, {})
    for pk, campaign_id, name, team_id, slug, retention_days in rows:
        locked.zones[pk], locked.campaign_of[pk] = zone_named(name), campaign_id
        locked.team_of[pk], locked.slug_of[pk] = team_id, slug
        locked.kept_from[pk] = now - timedelta(days=retention_days) if retention_days else None
    return locked


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The first moment of `day` in `zone` and of the next day (DST days are 23 or 25 hours long)."""
    return (datetime.combine(day, time.min, tzinfo=zone),
            datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone))


def stored_visitors(scans: list[Scan], zones: Mapping[int, tzinfo]) -> set[tuple[int, date, str]]:
    """(placement, day, visitor) of stored human scans that share a placement and visitor key with `scans`, on the
    days `scans` fall on."""
    wanted: dict[tuple[int, date, str, str], tuple[datetime, datetime]] = {}  # (placement, day, field, key): bounds
    for scan in scans:
        if key := visitor_of(scan):
            zone = zones[scan.placement_id]
            day = scan.time.astimezone(zone).date()
            field = "visitor_key" if scan.visitor_key else "client_hash"
            wanted.setdefault((scan.placement_id, day, field, key), day_bounds(day, zone))
    if not wanted:
        return set()
    if connection.vendor == "postgresql":
        return stored_visitors_postgresql(wanted)
    starts, ends = zip(*wanted.values(), strict=True)
    stored = ScanEvent.objects.filter(
        placement_id__in={placement_id for placement_id, _, _, _ in wanted}, is_bot=False,
        time__gte=min(starts), time__lt=max(ends),
    )
    seen: set[tuple[int, date, str]] = set()
    for field in ("visitor_key", "client_hash"):
        if keys := {key for _, _, name, key in wanted if name == field}:
            for placement_id, key, when in stored.filter(one_of(ScanEvent, field, keys)).values_list(
                    "placement_id", field, "time"):
                seen.add((placement_id, when.astimezone(zones[placement_id]).date(), key))
    return seen


def stored_visitors_postgresql(wanted: Mapping[tuple[int, date, str, str], tuple[datetime, datetime]],
                               ) -> set[tuple[int, date, str]]:
    """`stored_visitors` in one query per key field: does a stored human scan exist for each (placement, day, key)?
    EXISTS stops at the first through the (placement, visitor key, time) index, so a visitor with thousands of scans
    that day (one client hammering a link) costs what one with a single scan does."""
    table = connection.ops.quote_name(ScanEvent._meta.db_table)
    seen: set[tuple[int, date, str]] = set()
    for field in ("visitor_key", "client_hash"):
        items = [(placement_id, day, key, *bounds) for (placement_id, day, name, key), bounds in wanted.items()
                 if name == field]
        if not items:
            continue
        column = connection.ops.quote_name(ScanEvent._meta.get_field(field).column)
        sql = (
            f"SELECT b.placement, b.day, b.visitor FROM unnest(%s::bigint[], %s::date[], %s::text[], "
            f"%s::timestamptz[], %s::timestamptz[]) AS b(placement, day, visitor, starts, ends) WHERE EXISTS ("
            f"SELECT 1 FROM {table} s WHERE s.placement_id = b.placement AND s.{column} = b.visitor "
            f"AND NOT s.is_bot AND s.time >= b.starts AND s.time < b.ends)"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [array_literal(values) for values in zip(*items, strict=True)])
            seen.update((placement_id, day, key) for placement_id, day, key in cursor.fetchall())
    return seen


def unknowable_visitors(scans: list[Scan], locked: LockedPlacements) -> set[tuple[int, date, str]]:
    """(placement, day, visitor) of late `scans` whose day's unique visitors can no longer be told: the day's
    rollup already counts a scan from before the placement's `kept_from`, whose raw row retention may have deleted,
    so a visitor missing from the stored scans may still be among those counted. `tally` takes them as seen: such a
    late scan adds a scan and never a visitor (an unknown visitor is under-counted rather than anyone counted
    twice). A day whose rows count only scans still kept, or that has none, is counted exactly, as ever.

    No query unless a scan is within a day of its placement's `kept_from` (one then, for all of them): the drainer
    stores scans seconds old, and a retention is at least 30 days.
    """
    late: dict[tuple[int, date], list[str]] = {}
    for scan in scans:
        kept_from = locked.kept_from.get(scan.placement_id)
        if kept_from is None or scan.time >= kept_from + LONGEST_DAY or not (visitor := visitor_of(scan)):
            continue  # its day began after kept_from (its scans are all stored), or it is its own visitor
        late.setdefault((scan.placement_id, scan.time.astimezone(locked.zones[scan.placement_id]).date()),
                        []).append(visitor)
    if not late:
        return set()
    rows = ScanRollup.objects.filter(placement_id__in={placement_id for placement_id, _ in late},
                                     day__in={day for _, day in late}, dimension=Dimension.TOTAL)
    unknowable = {(placement_id, day) for placement_id, day, first_scan in rows.values_list(
        "placement_id", "day", "first_scan") if first_scan < locked.kept_from[placement_id]}
    return {(placement_id, day, visitor) for (placement_id, day), visitors in late.items()
            if (placement_id, day) in unknowable for visitor in visitors}


def add(scans: list[Scan], locked: LockedPlacements) -> None:
    """Add new scans to the rollups, the placements' and their campaigns': call in the transaction that stores them,
    before they are inserted, with their placements locked (`locked`, what `lock_placements` answered)."""
    people = [scan for scan in scans if not scan.is_bot]
    if people:
        seen = stored_visitors(people, locked.zones) | unknowable_visitors(people, locked)
        tallies = tally(people, locked.zones, seen)
        write(tallies)
        write_campaigns(tallies, locked.campaign_of)


def write(tallies: Mapping[Key, Tally]) -> None:
    """Add `tallies` to the placements' stored rows (`upsert`)."""
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    ops = connection.ops
    table = ScanRollup._meta.db_table
    rows = [[placement_id, ops.adapt_datefield_value(day), dimension, value, row.scans, row.visitors,
             ops.adapt_datetimefield_value(row.first_scan), ops.adapt_datetimefield_value(row.last_scan)]
            for (placement_id, day, dimension, value), row in tallies.items()]
    upsert(ScanRollup, ("placement_id", "day", "dimension", "value", "scans", "visitors", "first_scan", "last_scan"),
           "placement_id", rows, f", first_scan = {least}({table}.first_scan, excluded.first_scan), "
           f"last_scan = {greatest}({table}.last_scan, excluded.last_scan)")


def write_campaigns(tallies: Mapping[Key, Tally], campaign_of: Mapping[int, int]) -> None:
    """Add `tallies` (of placements) to their campaigns' rows and their teams'; `campaign_of` maps each placement to
    its campaign."""
    sums: dict[tuple[int, date, str, str], list[int]] = {}
    for (placement_id, day, dimension, value), row in tallies.items():
        one = sums.setdefault((campaign_of[placement_id], day, dimension, value), [0, 0])
        one[0] += row.scans
        one[1] += row.visitors
    # In one order (campaign, dimension, day, value), after the campaigns' locks: two drainers whose batches share
    # campaigns wait for each other rather than deadlock on their rows.
    lock_campaigns({campaign_id for campaign_id, _, _, _ in sums})
    rows = [[campaign_id, connection.ops.adapt_datefield_value(day), dimension, value, scans, visitors]
            for (campaign_id, day, dimension, value), (scans, visitors) in sorted(
                sums.items(), key=lambda item: (item[0][0], item[0][2], item[0][1], item[0][3]))]
    upsert(CampaignRollup, ("campaign_id", "day", "dimension", "value", "scans", "visitors"),
           "campaign_id", rows)
    teams = team_rollups.team_sums(sums)
    upsert(TeamRollup, team_rollups.COLUMNS, team_rollups.OWNER, team_rollups.rows(teams))


def upsert(model: type[models.Model], columns: tuple[str, ...], owner: str, rows: list[list], also: str = "") -> None:
    """Add `rows` (values of `columns`, which start with `owner` and end with scans and visitors) to `model`'s rows
    of the same (owner, dimension, day, value), in `rows`' order: on PostgreSQL one INSERT ... SELECT FROM unnest
    ... ON CONFLICT DO UPDATE for them all, elsewhere one INSERT ... VALUES ... ON CONFLICT per UPSERT_BATCH rows.
    `also` sets more columns on a conflict.

    On PostgreSQL each column goes as one array parameter: a VALUES list of 500 rows is a statement of 4,000
    placeholders, too long for psycopg's cache of converted queries, and converting it again for every execute was
    half the drainer's CPU (bench/RESULTS.md, "The team's own rows")."""
    if not rows:
        return
    table = model._meta.db_table
    conflict = (f"ON CONFLICT ({owner}, dimension, day, value) DO UPDATE SET "
                f"scans = {table}.scans + excluded.scans, visitors = {table}.visitors + excluded.visitors{also}")
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{model._meta.get_field(column).db_type(connection)}[]" for column in columns)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) {conflict}",
                           [array_literal(values) for values in zip(*rows, strict=True)])
        return
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    for start in range(0, len(rows), UPSERT_BATCH):
        batch = rows[start:start + UPSERT_BATCH]
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * len(batch))} "
                           f"{conflict}", [value for row in batch for value in row])


def refresh_campaigns(campaign_ids: Iterable[int]) -> None:
    """Recount each campaign's rows from its placements' rows, and its team's by the difference, one transaction
    per campaign holding its lock (`lock_campaigns`) and its team's: a drainer's batch that stored placement rows
    before the recount read them has added them to the campaign's rows already, one after it waits and adds to the
    recount. For what changes placement rows other than the drainer: a rebuild, a placement moved. Reads every row
    of the campaign's placements: seconds for a campaign of thousands of placements and years of scans."""
    for campaign_id in sorted(set(campaign_ids)):
        with transaction.atomic():
            lock_campaigns([campaign_id])
            owner = team_rollups.owner(campaign_id)
            if owner:
                lock_teams([owner[0]])
                team_rollups.take_out(campaign_id, *owner)
            CampaignRollup.objects.filter(campaign_id=campaign_id).delete()
            add_up_campaign(campaign_id)
            if owner:
                team_rollups.put_in(campaign_id, *owner)


def add_up_campaign(campaign_id: int) -> None:
    """Store a campaign's rows as the sums of its placements' rows (it has none stored): summed where the rows are,
    in one INSERT ... SELECT, so nothing travels to Python and back."""
    theirs, mine, placements = (CampaignRollup._meta.db_table, ScanRollup._meta.db_table, Placement._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {theirs} (campaign_id, day, dimension, value, scans, visitors) "
            f"SELECT %s, r.day, r.dimension, r.value, SUM(r.scans), SUM(r.visitors) FROM {mine} AS r "
            f"JOIN {placements} AS p ON p.id = r.placement_id WHERE p.campaign_id = %s "
            f"GROUP BY r.day, r.dimension, r.value", [campaign_id, campaign_id])


def placement_deleting(sender: type, instance: Placement, **kwargs) -> None:
    """Signal receiver (pre_delete of a placement, in the deleting transaction, while its rows still exist): take
    its rows out of its campaign's and its team's, the placement locked first so no batch of the drainer adds to them
    meanwhile. Costs that placement's rows, not the campaign's (a bulk delete of many placements of a large
    campaign)."""
    campaign_id = instance.campaign_id
    lock_placements([instance.pk])
    lock_campaigns([campaign_id])
    if owner := team_rollups.owner(campaign_id):
        lock_teams([owner[0]])
        team_rollups.take_out_placement(instance.pk, *owner)
    theirs, mine = CampaignRollup._meta.db_table, ScanRollup._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {theirs} AS c SET scans = c.scans - r.scans, visitors = c.visitors - r.visitors FROM {mine} AS r "
            f"WHERE r.placement_id = %s AND c.campaign_id = %s AND c.dimension = r.dimension AND c.day = r.day "
            f"AND c.value = r.value", [instance.pk, campaign_id])
    CampaignRollup.objects.filter(campaign_id=campaign_id, scans=0).delete()  # a row counts at least one scan
