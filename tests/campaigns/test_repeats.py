"""Repeat scans (`campaigns.repeats`): more than ten a minute by one visitor of one placement are flagged as the
drainer stores them, scans that arrive late included."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import drainer, repeats, scan_buffer
from campaigns.drainer import drain_once
from campaigns.models import Placement, ScanEvent, ScanRollup
from tests.campaigns.buffered import scan_ago, to_spool


@pytest.mark.django_db
class TestRepeats:
    def test_it_flags_scans_after_ten_a_minute_by_one_visitor_on_one_placement(self, placement, campaign):
        other_placement = Placement.objects.create(campaign=campaign, name="Flyer")
        to_spool(*[scan_ago(placement, seconds_ago=50 - i) for i in range(6)])
        drain_once()  # six stored before the batch that follows
        batch = [scan_ago(placement, seconds_ago=40 - i) for i in range(6)]
        others = [scan_ago(placement, seconds_ago=30, visitor_key="w" * 32), scan_ago(other_placement, seconds_ago=30)]
        later = scan_ago(placement, seconds_ago=-61)  # more than a minute after all the others
        to_spool(*batch, *others, later)
        drain_once()
        repeat_ids = {row.hex for row in ScanEvent.objects.filter(is_repeat=True).values_list("event_id", flat=True)}
        assert repeat_ids == {uuid.UUID(batch[4]["id"]).hex, uuid.UUID(batch[5]["id"]).hex}  # the 11th and 12th

    def test_it_does_not_flag_ten_scans_a_minute(self, placement):
        to_spool(*[scan_ago(placement, seconds_ago=59 - i) for i in range(10)])
        drain_once()
        assert ScanEvent.objects.filter(is_repeat=True).count() == 0 and ScanEvent.objects.count() == 10

    def test_a_visitor_with_hundreds_of_stored_scans_is_judged_by_the_last_minute_only(self, placement):
        # one client hammering the link: 300 scans stored, all but the last 4 more than a minute before the batch
        to_spool(*[scan_ago(placement, seconds_ago=400 - i) for i in range(296)],
                 *[scan_ago(placement, seconds_ago=50 - i) for i in range(4)])
        drain_once()
        batch = [scan_ago(placement, seconds_ago=40 - i) for i in range(8)]
        to_spool(*batch)
        drain_once()
        flagged = [ScanEvent.objects.get(event_id=made["id"]).is_repeat for made in batch]
        assert flagged == [False] * 6 + [True] * 2  # 4 stored + 6 of the batch in the minute before the 7th
        # and the visitor counted once that day, however many stored scans they have (rollups' new-visitor check)
        days = ScanRollup.objects.filter(dimension=ScanRollup.Dimension.TOTAL)  # two when run just after midnight
        assert sum(day.scans for day in days) == 308 and all(day.visitors == 1 for day in days)


    def test_a_scan_that_arrives_late_makes_the_stored_scans_after_it_repeats(self, placement, campaign):
        # another web process's spool file drains after scans that came later: in time order the 11th of the
        # minute is the stored one at 19 s, and it becomes a repeat; the late one itself is the first of its minute
        stored = [scan_ago(placement, seconds_ago=30 - i) for i in range(10)]  # 30 s ago .. 21 s ago
        to_spool(*stored)
        drain_once()
        assert ScanEvent.objects.filter(is_repeat=True).count() == 0
        late = scan_ago(placement, seconds_ago=35)
        too_early = scan_ago(placement, seconds_ago=95)  # more than a minute before all of them: counts for none
        other_visitor = scan_ago(placement, seconds_ago=36, visitor_key="w" * 32)
        other_placement = scan_ago(Placement.objects.create(campaign=campaign, name="Flyer"), seconds_ago=36)
        to_spool(late, too_early, other_visitor, other_placement)
        drain_once()
        repeat_ids = {row.hex for row in ScanEvent.objects.filter(is_repeat=True).values_list("event_id", flat=True)}
        assert repeat_ids == {uuid.UUID(stored[9]["id"]).hex}

    def test_late_scans_count_only_in_the_minute_before_each_stored_one(self, placement):
        stored = [scan_ago(placement, seconds_ago=100 - 10 * i) for i in range(10)]  # 100 s ago .. 10 s ago
        to_spool(*stored)
        drain_once()
        # two late scans, 105 and 101 s ago: within the minute before the stored scans of 100-50 s ago only, where
        # at most 6 stored scans precede: nothing reaches ten
        to_spool(scan_ago(placement, seconds_ago=105), scan_ago(placement, seconds_ago=101))
        drain_once()
        assert ScanEvent.objects.filter(is_repeat=True).count() == 0
        # nine late ones, 55-47 s ago: the stored scans of 40-10 s ago have 5 stored and all 9 late ones in their
        # minute (14); the one 50 s ago has 7 stored (the two late ones of 105 and 101 s ago among them) and the 5
        # late ones before it, 55-51 s ago (12); the one 60 s ago has 6 stored and none of the late ones (6)
        to_spool(*[scan_ago(placement, seconds_ago=55 - i) for i in range(9)])
        drain_once()
        flagged = [ScanEvent.objects.get(event_id=made["id"]).is_repeat for made in stored]
        assert flagged == [False] * 5 + [True] * 5

    def test_a_late_scan_at_the_same_time_as_a_stored_one_counts_after_it(self, placement):
        now = timezone.now()
        stored = [scan_buffer.scan_event(placement.pk, now - timedelta(seconds=30 - i), visitor_key="v" * 32)
                  for i in range(10)]
        to_spool(*stored)
        drain_once()
        to_spool(scan_buffer.scan_event(placement.pk, now - timedelta(seconds=21), visitor_key="v" * 32))
        drain_once()  # at the same time as the tenth stored scan: that one is still the tenth
        assert ScanEvent.objects.filter(is_repeat=True).count() == 1  # the late one itself: the eleventh
        late_row = ScanEvent.objects.get(is_repeat=True)
        assert late_row.event_id.hex not in {uuid.UUID(made["id"]).hex for made in stored}

    def test_the_late_check_costs_the_same_few_queries_for_a_batch_of_many_visitors(self, placement,
                                                                                    django_assert_max_num_queries):
        # twenty visitors with a stored scan each, the first with ten; then 200 late scans of 200 visitors, the
        # first's making its tenth stored scan a repeat: candidates, their counts and the update, three queries
        to_spool(*[scan_ago(placement, seconds_ago=30 - i, visitor_key=f"{i:032d}") for i in range(20)],
                 *[scan_ago(placement, seconds_ago=29 - i, visitor_key=f"{0:032d}") for i in range(9)])
        drain_once()
        rows = [drainer.scan_row(scan_ago(placement, seconds_ago=40, visitor_key=f"{i:032d}")) for i in range(200)]
        with django_assert_max_num_queries(3):
            repeats.flag_later_repeats(rows)
        assert ScanEvent.objects.filter(is_repeat=True).count() == 1
