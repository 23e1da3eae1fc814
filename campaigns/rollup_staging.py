"""The temporary table a team's time-zone recount counts into (`rollup_rebuilds.recount_team`): its first phase,
which holds no lock, stages every recounted placement row there; its second, short one puts them in place in one
statement. Staged in the database rather than in memory: a million scans make about two million rows, and the
switch then sends none of them from Python while it holds the team's placements.

A temporary table is its connection's own and lives across that connection's transactions, which the two phases
are; `staged_table` drops it at the end either way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import date

from django.db import DatabaseError, connection

from campaigns.models import ScanRollup
from campaigns.rollups import Dimension, Key, Tally
from qartsite.sql import copy_rows

STAGED = "rollup_recount_staged"
COLUMNS = ("placement_id", "day", "dimension", "value", "scans", "visitors", "first_scan", "last_scan")


@contextmanager
def staged_table() -> Iterator[None]:
    """An empty staging table (columns as `ScanRollup`'s, less the id) for the block, dropped after it."""
    columns = ", ".join(COLUMNS)
    empty = "WITH NO DATA" if connection.vendor == "postgresql" else "WHERE 0"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {STAGED}")
        cursor.execute(f"CREATE TEMPORARY TABLE {STAGED} AS SELECT {columns} FROM {ScanRollup._meta.db_table} {empty}")
    try:
        yield
    finally:
        # A connection the database dropped took its temporary table with it.
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {STAGED}")


def index_staged() -> None:
    """Index the staged rows by placement and day, for `unstage`'s few deletes among millions (made once the bulk
    is staged: cheaper than keeping an index up to date row by row)."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX {STAGED}_placement_day ON {STAGED} (placement_id, day)")


def stage(tallies: Mapping[Key, Tally]) -> None:
    """Add `tallies` (no row of theirs staged yet) to the staging table: COPY on PostgreSQL, inserts elsewhere."""
    rows = ((placement_id, day, dimension, value, row.scans, row.visitors, row.first_scan, row.last_scan)
            for (placement_id, day, dimension, value), row in tallies.items())
    if connection.vendor == "postgresql":
        copy_rows(STAGED, COLUMNS, rows)
        return
    ops = connection.ops
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {STAGED} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})",
            [(placement_id, ops.adapt_datefield_value(day), dimension, value, scans, visitors,
              ops.adapt_datetimefield_value(first), ops.adapt_datetimefield_value(last))
             for placement_id, day, dimension, value, scans, visitors, first, last in rows])


def unstage(placement_id: int, days: Collection[date]) -> tuple[int, int]:
    """Delete a placement's staged rows of `days`.

    Returns:
        How many rows were deleted, and how many scans their totals counted.
    """
    where = f"placement_id = %s AND day IN ({', '.join(['%s'] * len(days))})"
    params = [placement_id, *(connection.ops.adapt_datefield_value(day) for day in days)]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), SUM(CASE WHEN dimension = %s THEN scans ELSE 0 END) FROM {STAGED} "
                       f"WHERE {where}", [Dimension.TOTAL, *params])
        rows, scans = cursor.fetchone()
        cursor.execute(f"DELETE FROM {STAGED} WHERE {where}", params)
    return rows, scans or 0


def put_in_place(placement_ids: Collection[int], keeping: Collection[int] = ()) -> None:
    """Add the staged rows of `placement_ids` to the placements' rows, one statement for all: new rows (the caller
    deleted what they replace), except that those of the placements in `keeping` add to a row of a day the rebuild
    keeps (`rollup_rebuilds.kept_rows`) where there is one. A plain insert for the others: ON CONFLICT's check of
    each row cost a third of the time the team's placements are held (bench/RESULTS.md)."""
    table = ScanRollup._meta.db_table
    least, greatest = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    columns = ", ".join(COLUMNS)
    adding = (f"ON CONFLICT (placement_id, dimension, day, value) DO UPDATE SET "
              f"scans = {table}.scans + excluded.scans, visitors = {table}.visitors + excluded.visitors, "
              f"first_scan = {least}({table}.first_scan, excluded.first_scan), "
              f"last_scan = {greatest}({table}.last_scan, excluded.last_scan)")
    keeping = set(keeping) & set(placement_ids)
    for ids, conflict in ((set(placement_ids) - keeping, ""), (keeping, adding)):
        if ids:
            with connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {STAGED} "
                               f"WHERE placement_id IN ({', '.join(['%s'] * len(ids))}) {conflict}", sorted(ids))
