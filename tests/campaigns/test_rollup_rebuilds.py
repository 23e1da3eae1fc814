"""Daily rollups rebuilt from the stored scans (`campaigns.rollup_rebuilds`): the same rows the drainer counted,
days recounted in a team's new time zone, and the days whose scans retention deleted kept."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from campaigns import maintenance, retention, rollup_rebuilds, team_rollups
from campaigns.drainer import store_events
from campaigns.models import Placement, ScanEvent, ScanRollup
from qartsite.models import Team
from tests.campaigns.concurrently import catching, on_postgresql
from tests.campaigns.rollup_data import (
    added_up,
    all_rows,
    campaign_rows,
    event,
    placement_rows,
    team_added_up,
    team_rows,
)


@pytest.mark.django_db
class TestRebuild:
    def test_it_rebuilds_exactly_what_the_drainer_counted(self, campaign, placement):
        flyer = Placement.objects.create(campaign=campaign, name="Flyer")
        start = datetime(2026, 3, 1, 8, tzinfo=UTC)
        for batch in range(4):
            store_events([event(place, start + timedelta(hours=7 * n + batch), visitor=f"{n % 5:032d}",
                                country=("FR", "DE")[n % 2], is_bot=n % 7 == 0,
                                rule=("", "ab:0", "ab:1", "ios", "after_end")[(n + batch) % 5])
                          for n in range(12) for place in (placement, flyer)])
        counted = all_rows()
        assert {row[2] for row in counted} >= {"rule"}  # the rules were counted, so their rebuild is compared

        done = rollup_rebuilds.rebuild(Placement.objects.all())

        assert all_rows() == counted
        assert (done.placements, done.scans) == (2, ScanEvent.objects.filter(is_bot=False).count())
        assert campaign_rows() == added_up()

    def test_it_recounts_days_in_a_new_time_zone(self, placement, team_users):
        store_events([event(placement, datetime(2026, 3, 11, 3, 30, tzinfo=UTC))])
        assert placement_rows(placement) == {(date(2026, 3, 11), ""): (1, 1)}
        team_users.team.time_zone = "America/New_York"
        team_users.team.save()
        rollup_rebuilds.rebuild(Placement.objects.all())  # a repair keeps the zone the figures count in
        assert placement_rows(placement) == {(date(2026, 3, 11), ""): (1, 1)}

        rollup_rebuilds.recount_team(team_users.team.pk, "America/New_York")

        assert placement_rows(placement) == {(date(2026, 3, 10), ""): (1, 1)}
        assert Team.objects.get(pk=team_users.team.pk).counted_time_zone == "America/New_York"

    def test_it_keeps_the_days_whose_scans_are_gone(self, placement):
        store_events([event(placement, datetime(2026, 3, day, hour, tzinfo=UTC), visitor=f"{hour:032d}")
                      for day, hour in ((1, 12), (2, 10), (2, 16), (5, 12))])
        ScanEvent.objects.filter(time__lt=datetime(2026, 3, 2, 13, tzinfo=UTC)).delete()  # retention, mid-day
        ScanRollup.objects.filter(day=date(2026, 3, 5)).update(scans=99)  # wrong: to be recounted

        rollup_rebuilds.rebuild(Placement.objects.all())

        assert placement_rows(placement) == {(date(2026, 3, 1), ""): (1, 1), (date(2026, 3, 2), ""): (2, 2),
                                (date(2026, 3, 5), ""): (1, 1)}

    def test_it_keeps_every_row_when_no_scan_is_left(self, placement):
        store_events([event(placement, datetime(2026, 3, 1, 12, tzinfo=UTC))])
        ScanEvent.objects.all().delete()

        rollup_rebuilds.rebuild(Placement.objects.all())

        assert placement_rows(placement) == {(date(2026, 3, 1), ""): (1, 1)}


@pytest.mark.django_db
class TestRebuildAfterRetentionInAnotherZone:
    """Retention deleted a placement's early scans, then its team changed time zone: the kept rows count days of
    the old zone, the recount days of the new one, and no scan may be counted twice or lost at the seam."""

    START = datetime(2026, 11, 2, tzinfo=UTC)

    def scan_every_50_minutes(self, placement: Placement, days: int) -> int:
        """Scans from START on, one bot in five; returns how many were by people."""
        moments = [self.START + timedelta(minutes=50 * n) for n in range(days * 24 * 60 // 50)]
        store_events([event(placement, when, visitor=f"{n % 7:032d}", is_bot=n % 5 == 0,
                            device_class="bot" if n % 5 == 0 else "mobile") for n, when in enumerate(moments)])
        return sum(1 for n in range(len(moments)) if n % 5)

    def purge_before(self, team, cut: datetime) -> None:
        Team.objects.filter(pk=team.pk).update(scan_retention_days=30)  # update(): the zones stay as they are
        assert retention.purge(now=cut + timedelta(days=30)).total > 0

    def total_after_moving_to(self, team, zone: str) -> int:
        Team.objects.filter(pk=team.pk).update(time_zone=zone)
        assert maintenance.recount_changed_zones() == [team.name]
        return sum(ScanRollup.objects.filter(dimension="").values_list("scans", flat=True))

    def test_it_counts_every_scan_once_whatever_the_zone_moves(self, team_users, placement):
        team = team_users.team
        Team.objects.filter(pk=team.pk).update(time_zone="America/New_York", counted_time_zone="America/New_York")
        people = self.scan_every_50_minutes(placement, days=6)
        self.purge_before(team, datetime(2026, 11, 4, 4, 10, tzinfo=UTC))  # 23:10 in New York, 05:10 in Berlin
        moves = ["Europe/Berlin", "America/Los_Angeles", "Pacific/Kiritimati", "Pacific/Pago_Pago"]
        totals = {zone: self.total_after_moving_to(team, zone) for zone in moves}
        # Retention again, now that the early days are a patchwork of zones, then the big jump back.
        self.purge_before(team, datetime(2026, 11, 5, 10, 40, tzinfo=UTC))
        totals |= {f"{zone} again": self.total_after_moving_to(team, zone)
                   for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "America/New_York")}

        assert totals == dict.fromkeys(totals, people)
        devices = ScanRollup.objects.filter(dimension="device").values_list("scans", flat=True)
        assert sum(devices) == people  # every dimension's rows moved with the totals
        assert campaign_rows() == added_up()  # and the campaign's with them

    def test_it_keeps_a_deleted_scan_whose_old_day_starts_after_the_new_zones_cut(self, team_users, placement):
        Team.objects.filter(pk=team_users.team.pk).update(time_zone="Europe/Berlin", counted_time_zone="Europe/Berlin")
        # 00:10 and 00:30 on 5 November in Berlin, 15:10 and 15:30 on the 4th in Los Angeles.
        store_events([event(placement, datetime(2026, 11, 4, 23, 10, tzinfo=UTC)),
                      event(placement, datetime(2026, 11, 4, 23, 30, tzinfo=UTC))])
        ScanEvent.objects.filter(time__lt=datetime(2026, 11, 4, 23, 20, tzinfo=UTC)).delete()  # retention

        self.total_after_moving_to(team_users.team, "America/Los_Angeles")

        assert placement_rows(placement) == {(date(2026, 11, 5), ""): (2, 1)}  # the kept Berlin day, the whole of it


@pytest.mark.django_db
class TestTeamSaved:
    def test_a_fixtures_team_keeps_the_zone_its_rows_were_counted_in(self, team_users, placement, tmp_path):
        # loaddata saves the team before its placements and rows: the receiver found nothing counted and switched a
        # team whose rows count UTC days to Tokyo's, and the maintenance never recounted them.
        store_events([event(placement, datetime(2026, 3, 10, 23, 30, tzinfo=UTC))])  # 3-10 in UTC, 3-11 in Tokyo
        Team.objects.filter(pk=team_users.team.pk).update(time_zone="Asia/Tokyo")  # changed, not yet recounted
        dump = tmp_path / "teams.json"
        call_command("dumpdata", "qartsite.team", "campaigns.campaign", "campaigns.placement",
                     "campaigns.scanrollup", output=str(dump), verbosity=0)
        Team.objects.filter(pk=team_users.team.pk).delete()

        call_command("loaddata", str(dump), verbosity=0)

        assert Team.objects.get(pk=team_users.team.pk).counted_time_zone == "UTC"
        assert placement_rows(placement) == {(date(2026, 3, 10), ""): (1, 1)}


@on_postgresql
@pytest.mark.django_db(transaction=True)
class TestTeamRecountConcurrently:
    """A team's recount held open, its rows rebuilt, before its commit (`hold_recount`), and what else comes."""

    def hold_recount(self, team: Team, monkeypatch, at: tuple = (team_rollups, "refresh_teams"),
                     ) -> tuple[threading.Thread, threading.Event, list]:
        """Start the recount of `team` in Tokyo's zone in a thread, paused as it calls `at` (module, function name;
        by default once its rows are rebuilt, before its commit) until the event is set; answers the thread, the
        event and the errors of every thread run through `catching`."""
        rebuilt, go, errors = threading.Event(), threading.Event(), []
        module, name = at
        called = getattr(module, name)

        def pausing(*args):
            if threading.current_thread().name == "recount":
                rebuilt.set()
                go.wait(10)
            return called(*args)

        monkeypatch.setattr(module, name, pausing)
        recount = threading.Thread(target=catching, name="recount", args=(
            errors, rollup_rebuilds.recount_team, team.pk, "Asia/Tokyo"))
        recount.start()
        assert rebuilt.wait(10)
        return recount, go, errors

    def scanned_and_moved(self, team: Team, placement: Placement) -> None:
        store_events([event(placement, datetime(2026, 3, 10, 23, 30, tzinfo=UTC))])  # 3-10 in UTC, 3-11 in Tokyo
        Team.objects.filter(pk=team.pk).update(time_zone="Asia/Tokyo")

    def test_a_save_neither_waits_for_the_recount_nor_deadlocks_with_it(self, team_users, placement, monkeypatch):
        # The receiver waited for the placements the recount holds (minutes for a big team): a settings save hung
        # until it committed, and the admin's, whose transaction holds the team's row that the recount switches at
        # its end, deadlocked with it ("deadlock detected", one of the two lost).
        self.scanned_and_moved(team_users.team, placement)

        def save_as_the_admin_does() -> None:
            with transaction.atomic():
                team = Team.objects.get(pk=team_users.team.pk)
                team.name = "Renamed"
                team.save()

        recount, go, errors = self.hold_recount(team_users.team, monkeypatch)
        saving = threading.Thread(target=catching, args=(errors, save_as_the_admin_does))
        saving.start()
        saving.join(5)
        saved_meanwhile = not saving.is_alive()
        go.set()
        recount.join()
        saving.join()

        assert saved_meanwhile and errors == []
        team = Team.objects.get(pk=team_users.team.pk)
        assert (team.name, team.counted_time_zone) == ("Renamed", "Asia/Tokyo")
        assert placement_rows(placement) == {(date(2026, 3, 11), ""): (1, 1)}

    def test_a_second_workers_recount_leaves_the_team_to_the_first(self, team_users, placement, monkeypatch):
        # Every worker's maintenance found the team still to recount: the second waited for the first's locks, then
        # recounted the whole team again, holding the drainer and the team's placement edits as long once more.
        self.scanned_and_moved(team_users.team, placement)
        answers = []

        recount, go, errors = self.hold_recount(team_users.team, monkeypatch)
        second = threading.Thread(target=catching, args=(errors, lambda: answers.append(
            rollup_rebuilds.recount_team(team_users.team.pk, "Asia/Tokyo"))))
        second.start()
        second.join(5)
        left_at_once = not second.is_alive()
        go.set()
        recount.join()
        second.join()

        assert left_at_once and answers == [None] and errors == []
        assert Team.objects.get(pk=team_users.team.pk).counted_time_zone == "Asia/Tokyo"
        assert placement_rows(placement) == {(date(2026, 3, 11), ""): (1, 1)}

    def test_a_batch_and_a_placement_edit_go_on_while_the_recount_counts(self, team_users, placement, monkeypatch):
        # The recount held the team's placements while it counted every scan (minutes for a million): each drainer
        # batch with one of the team's scans waited, and the team's placement edits past the web's statement timeout.
        self.scanned_and_moved(team_users.team, placement)
        late = [event(placement, datetime(2026, 3, 11, 1, tzinfo=UTC)),  # 3-11 in Tokyo, the same visitor
                event(placement, datetime(2026, 3, 11, 2, tzinfo=UTC), visitor="b" * 32),  # 3-11, another
                event(placement, datetime(2026, 3, 11, 16, tzinfo=UTC))]  # 3-12 in Tokyo

        def rename() -> None:
            with transaction.atomic():
                edited = Placement.objects.get(pk=placement.pk)
                edited.name = "Renamed"
                edited.save()

        recount, go, errors = self.hold_recount(team_users.team, monkeypatch, at=(rollup_rebuilds, "count_all"))
        others = [threading.Thread(target=catching, args=(errors, store_events, late)),
                  threading.Thread(target=catching, args=(errors, rename))]
        for other in others:
            other.start()
        for other in others:
            other.join(5)
        went_on = [not other.is_alive() for other in others]
        go.set()
        recount.join()
        for other in others:
            other.join()

        assert went_on == [True, True] and errors == []
        assert Placement.objects.get(pk=placement.pk).name == "Renamed"
        assert Team.objects.get(pk=team_users.team.pk).counted_time_zone == "Asia/Tokyo"
        assert placement_rows(placement) == {(date(2026, 3, 11), ""): (3, 2), (date(2026, 3, 12), ""): (1, 1)}
        recounted = all_rows()
        rollup_rebuilds.rebuild(Placement.objects.all())  # all of them, in the zone now counted
        assert all_rows() == recounted
        assert campaign_rows() == added_up() and team_rows() == team_added_up()

    def test_a_placement_made_while_the_recount_counts_is_recounted_too(self, team_users, placement, monkeypatch):
        self.scanned_and_moved(team_users.team, placement)
        recount, go, errors = self.hold_recount(team_users.team, monkeypatch, at=(rollup_rebuilds, "count_all"))
        flyer = Placement.objects.create(campaign=placement.campaign, name="Flyer")
        store_events([event(flyer, datetime(2026, 3, 11, 16, tzinfo=UTC))])  # 3-11 in UTC, counted so; 3-12 in Tokyo
        go.set()
        recount.join()

        assert errors == []
        assert placement_rows(flyer) == {(date(2026, 3, 12), ""): (1, 1)}
        assert campaign_rows() == added_up() and team_rows() == team_added_up()

    def test_retention_leaves_a_team_alone_while_its_recount_reads_its_scans(self, team_users, placement,
                                                                            monkeypatch):
        # Retention deleted a scan between the recount's finding it the earliest stored (so no row was kept for it)
        # and its reading the scans to count: the scan was counted nowhere, its day's figure lost for good.
        now = timezone.now()
        store_events([event(placement, now - timedelta(days=30, hours=-1)),
                      event(placement, now - timedelta(days=29), visitor="b" * 32)])
        Team.objects.filter(pk=team_users.team.pk).update(time_zone="Asia/Tokyo", scan_retention_days=30)

        recount, go, errors = self.hold_recount(team_users.team, monkeypatch, at=(rollup_rebuilds, "kept_rows"))
        purged = retention.purge(now=now + timedelta(hours=2))  # the first scan is past the retention by then
        go.set()
        recount.join()

        assert errors == []
        assert sum(ScanRollup.objects.filter(dimension="").values_list("scans", flat=True)) == 2
        assert purged.put_off == [team_users.team.name]  # deleted at the next daily pass
        assert str(purged) == "Nothing deleted. Put off while their days are recounted in a new time zone: Acme."
