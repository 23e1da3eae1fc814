"""Repeat scans: more than REPEAT_LIMIT scans of one placement by one visitor within REPEAT_WINDOW.

The drainer flags them as it stores each batch (`campaigns.drainer.store_events`), in the batch's transaction, its
placements locked and before the insert: the batch's own rows (`flag_repeats`), then the stored scans that rows of
the batch put past the limit by arriving after them (`flag_later_repeats`: a web process's spool file drained late).
Both count the stored scans in each row's window through `stored_in_window`, bounded per row.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict, deque
from datetime import datetime, timedelta

from django.db import connection

from campaigns.models import ScanEvent
from qartsite.sql import array_literal, one_of

REPEAT_WINDOW = timedelta(minutes=1)
REPEAT_LIMIT = 10  # more scans than this by one visitor of one placement within REPEAT_WINDOW are repeats


def flag_repeats(rows: list[ScanEvent]) -> None:
    """Set `is_repeat` on rows that follow REPEAT_LIMIT or more scans of the same placement by the same visitor
    within REPEAT_WINDOW, counting scans already stored (first at equal times) and the batch's earlier rows."""
    keyed = [row for row in rows if row.visitor_key]
    if not keyed:
        return
    stored = stored_in_window(keyed)
    groups: dict[tuple[int, str], list[tuple[datetime, int, ScanEvent]]] = defaultdict(list)
    for order, row in enumerate(keyed):
        groups[(row.placement_id, row.visitor_key)].append((row.time, order, row))
    for scans in groups.values():
        scans.sort(key=lambda scan: scan[:2])
        window: deque[datetime] = deque()  # the group's batch rows within REPEAT_WINDOW of the current one
        for time, order, row in scans:
            while window and window[0] <= time - REPEAT_WINDOW:
                window.popleft()
            row.is_repeat = stored[order] + len(window) >= REPEAT_LIMIT
            window.append(time)


def flag_later_repeats(rows: list[ScanEvent]) -> None:
    """Flag stored scans that these rows, arriving after them, put past REPEAT_LIMIT: a row of this batch may be
    earlier than scans already stored (several web processes spool apart, and their files drain as separate batches),
    and then it counts in the minute before those later scans. A stored scan that is already a repeat stays one
    (more earlier scans only add to its count); webhooks already sent for it keep what they said.

    Three queries at most, whatever the batch: the stored scans that are not repeats in the minute after a row of
    their visitor (few: a visitor's scans that are not repeats are at most about REPEAT_LIMIT a minute), their stored
    counts (`stored_in_window`), and one update."""
    keyed = [row for row in rows if row.visitor_key]
    if not keyed:
        return
    arrived: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for row in keyed:
        arrived[(row.placement_id, row.visitor_key)].append(row.time)
    for times in arrived.values():
        times.sort()
    candidates = [
        later for later in ScanEvent.objects.filter(
            one_of(ScanEvent, "visitor_key", {key for _, key in arrived}),
            placement_id__in={placement for placement, _ in arrived}, is_repeat=False,
            time__gt=min(row.time for row in keyed), time__lt=max(row.time for row in keyed) + REPEAT_WINDOW,
        ).only("pk", "placement_id", "visitor_key", "time")
        if _arrived_before(arrived.get((later.placement_id, later.visitor_key), []), later.time)
    ]
    if not candidates:
        return
    repeats = []
    for later, stored in zip(candidates, stored_in_window(candidates), strict=True):
        # `stored` counts the row itself (and stored scans at its very time), up to REPEAT_LIMIT
        if stored - 1 + _arrived_before(arrived[(later.placement_id, later.visitor_key)], later.time) >= REPEAT_LIMIT:
            repeats.append(later.pk)
    if repeats:
        ScanEvent.objects.filter(pk__in=repeats).update(is_repeat=True)


def _arrived_before(times: list[datetime], time: datetime) -> int:
    """How many of the sorted `times` fall in the REPEAT_WINDOW before `time` (at its very time: after it)."""
    return bisect_left(times, time) - bisect_right(times, time - REPEAT_WINDOW)


def stored_in_window(rows: list[ScanEvent]) -> list[int]:
    """For each row, how many stored scans of its placement by its visitor fall in (time - REPEAT_WINDOW, time],
    counted up to REPEAT_LIMIT: all a repeat needs. Bounded per row, so a visitor with thousands of stored scans
    (one client hammering a link) costs no more than one with a few. On PostgreSQL one query counts for the whole
    batch through the (placement, visitor key, time) index; elsewhere the window's stored scans are fetched."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(ScanEvent._meta.db_table)
        sql = (
            f"SELECT (SELECT count(*) FROM (SELECT 1 FROM {table} s WHERE s.placement_id = b.placement "
            f"AND s.visitor_key = b.visitor AND s.time > b.at - %s::interval AND s.time <= b.at LIMIT {REPEAT_LIMIT}) "
            "AS n) FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) WITH ORDINALITY AS b(placement, visitor, "
            "at, i) ORDER BY b.i"
        )
        params = [f"{REPEAT_WINDOW.total_seconds()} seconds", array_literal(row.placement_id for row in rows),
                  array_literal(row.visitor_key for row in rows), array_literal(row.time for row in rows)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [count for (count,) in cursor.fetchall()]
    times: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for placement_id, visitor_key, time in ScanEvent.objects.filter(
        one_of(ScanEvent, "visitor_key", {row.visitor_key for row in rows}),
        placement_id__in={row.placement_id for row in rows},
        time__gt=min(row.time for row in rows) - REPEAT_WINDOW, time__lte=max(row.time for row in rows),
    ).values_list("placement_id", "visitor_key", "time"):
        times[(placement_id, visitor_key)].append(time)
    for group in times.values():
        group.sort()
    counts = []
    for row in rows:
        group = times.get((row.placement_id, row.visitor_key), [])
        counts.append(min(REPEAT_LIMIT, bisect_right(group, row.time) - bisect_right(group, row.time - REPEAT_WINDOW)))
    return counts
