"""Daily rollups (`campaigns.rollups`): kept by the drainer as scans are stored, placements' and their campaigns'.
Rebuilt from the stored scans: test_rollup_rebuilds.py."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import rollup_rebuilds, rollups, team_rollups
from campaigns.drainer import scan_row, store_events
from campaigns.models import Campaign, CampaignRollup, Placement, ScanRollup, TeamRollup
from qartsite.models import Team
from tests.campaigns.concurrently import catching, on_postgresql
from tests.campaigns.rollup_data import added_up, campaign_rows, event, placement_rows, team_added_up, team_rows

UTC = UTC


@pytest.fixture
def poster(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Poster")


@pytest.mark.django_db
class TestAdd:
    def test_it_counts_scans_and_each_visitor_once_a_day_across_batches(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        store_events([event(poster, noon), event(poster, noon + timedelta(minutes=5)),
                      event(poster, noon, visitor="b" * 32)])
        store_events([event(poster, noon + timedelta(hours=2)),  # a visitor of an earlier batch
                      event(poster, noon + timedelta(days=1))])  # the same key the next day: a new visitor

        assert placement_rows(poster) == {(date(2026, 3, 10), ""): (4, 2), (date(2026, 3, 11), ""): (1, 1)}
        total = ScanRollup.objects.get(placement=poster, dimension="", day=date(2026, 3, 10))
        assert (total.first_scan, total.last_scan) == (noon, noon + timedelta(hours=2))

    def test_it_leaves_out_bots_and_counts_a_stored_event_once(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        again = event(poster, noon)
        store_events([again, event(poster, noon, visitor="c" * 32, is_bot=True, device_class="bot")])
        store_events([again])  # delivered twice

        assert placement_rows(poster) == {(date(2026, 3, 10), ""): (1, 1)}
        assert placement_rows(poster, "device") == {(date(2026, 3, 10), "mobile"): (1, 1)}

    def test_it_counts_days_and_hours_in_the_team_time_zone(self, poster, team_users):
        team_users.team.time_zone = "America/New_York"
        team_users.team.save()
        late = datetime(2026, 3, 11, 3, 30, tzinfo=UTC)  # 23:30 on the 10th in New York

        store_events([event(poster, late)])

        assert placement_rows(poster) == {(date(2026, 3, 10), ""): (1, 1)}
        assert placement_rows(poster, "hour") == {(date(2026, 3, 10), "23"): (1, 0)}

    def test_it_counts_each_dimension_with_its_visitors(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        store_events([event(poster, noon), event(poster, noon, visitor="d" * 32, device_class="desktop", os="Windows",
                                                 browser="Firefox", country="", accept_language="de-DE")])

        day = date(2026, 3, 10)
        assert placement_rows(poster, "device") == {(day, "mobile"): (1, 1), (day, "desktop"): (1, 1)}
        assert placement_rows(poster, "country") == {(day, "FR"): (1, 1), (day, ""): (1, 1)}
        assert placement_rows(poster, "language") == {(day, "fr"): (1, 1), (day, "de"): (1, 1)}
        assert placement_rows(poster, "os") == {(day, "iOS"): (1, 1), (day, "Windows"): (1, 1)}

    def test_it_counts_the_rules_that_sent_scans_with_their_visitors(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        store_events([event(poster, noon, rule="ab:0"), event(poster, noon, visitor="b" * 32, rule="ab:1"),
                      event(poster, noon, visitor="c" * 32, rule="ios"), event(poster, noon, visitor="d" * 32),
                      event(poster, noon, visitor="e" * 32, rule="ab:1", is_bot=True)])
        # Later batches: a visitor of variant A again (not new), and one whose first scan of the day had no rule.
        store_events([event(poster, noon + timedelta(hours=1), rule="ab:0"),
                      event(poster, noon + timedelta(hours=1), visitor="d" * 32, rule="after_end")])

        day = date(2026, 3, 10)
        assert placement_rows(poster, "rule") == {(day, "ab:0"): (2, 1), (day, "ab:1"): (1, 1), (day, "ios"): (1, 1),
                                                  (day, "after_end"): (1, 0)}
        assert placement_rows(poster) == {(day, ""): (6, 4)}  # no row for "": the main destination is the rest

    def test_it_counts_a_scan_without_a_visitor_key_as_its_own_visitor(self, poster):
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        store_events([event(poster, noon, visitor=""), event(poster, noon, visitor="")])

        assert placement_rows(poster) == {(date(2026, 3, 10), ""): (2, 2)}


@pytest.mark.django_db
class TestCampaignRows:
    """Each campaign's rows are its placements' rows added up, whichever way those change."""

    def test_the_drainer_adds_each_batch_to_the_campaigns_rows(self, campaign, poster, team_users):
        other = Campaign.objects.create(team=team_users.team, name="Autumn", destination="https://shop.example.com/")
        flyer = Placement.objects.create(campaign=campaign, name="Flyer")
        banner = Placement.objects.create(campaign=other, name="Banner")
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        for batch in range(3):
            store_events([event(place, noon + timedelta(hours=5 * n + batch), visitor=f"{n % 3:032d}",
                                country=("FR", "DE")[n % 2], is_bot=n % 4 == 0, rule=("", "ios")[n % 2])
                          for n in range(8) for place in (poster, flyer, banner)])

        day = campaign_rows()
        assert day == added_up()
        assert day[(campaign.pk, date(2026, 3, 10), "", "")][0] == sum(
            placement_rows(place)[(date(2026, 3, 10), "")][0] for place in (poster, flyer))
        assert {key[0] for key in day} == {campaign.pk, other.pk}

    def test_the_drainer_reads_each_placements_campaign_with_its_lock(self, campaign, poster):
        # `lock_placements` reads the campaigns with the time zones: `add` used to ask for them again, every batch.
        flyer = Placement.objects.create(campaign=campaign, name="Flyer")
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        scans = [scan_row(event(poster, noon)), scan_row(event(flyer, noon, visitor="b" * 32))]

        with transaction.atomic():
            locked = rollups.lock_placements([poster.pk, flyer.pk])
            with CaptureQueriesContext(connection) as done:
                rollups.add(scans, locked)

        assert locked.campaign_of == {poster.pk: campaign.pk, flyer.pk: campaign.pk}
        assert not [query for query in done.captured_queries if Placement._meta.db_table in query["sql"]]
        assert campaign_rows() == added_up()
        assert campaign_rows()[(campaign.pk, date(2026, 3, 10), "", "")] == (2, 2)

    def test_fresh_scans_of_a_team_that_keeps_them_a_while_ask_no_more_of_the_rows(self, campaign, poster):
        # Only a scan within a day of its retention's cut-off looks at its day's rows (`unknowable_visitors`).
        Team.objects.filter(pk=campaign.team_id).update(scan_retention_days=30)
        now = timezone.now()
        scans = [scan_row(event(poster, now - timedelta(minutes=n), visitor=f"{n:032d}")) for n in range(50)]

        with transaction.atomic():
            locked = rollups.lock_placements([poster.pk])
            with CaptureQueriesContext(connection) as done:
                rollups.add(scans, locked)

        assert not [query for query in done.captured_queries if query["sql"].startswith("SELECT")
                    and f'FROM "{ScanRollup._meta.db_table}"' in query["sql"]]
        assert placement_rows(poster)[(now.date(), "")][0] == sum(scan.time.date() == now.date() for scan in scans)

    def test_a_rebuild_recounts_them(self, campaign, poster):
        store_events([event(poster, datetime(2026, 3, 10, 12, tzinfo=UTC))])
        CampaignRollup.objects.update(scans=99)  # wrong: to be recounted
        CampaignRollup.objects.create(campaign=campaign, day=date(2026, 1, 1), scans=5)  # a day with no scans

        rollup_rebuilds.rebuild(Placement.objects.filter(pk=poster.pk))

        assert campaign_rows() == added_up()
        assert campaign_rows()[(campaign.pk, date(2026, 3, 10), "", "")] == (1, 1)
        assert team_rows() == team_added_up()  # and the team's, from them
        assert not CampaignRollup.objects.filter(day=date(2026, 1, 1)).exists()

    def test_deleting_a_placement_takes_its_scans_out_of_its_campaigns_rows(self, campaign, poster):
        flyer = Placement.objects.create(campaign=campaign, name="Flyer")
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        store_events([event(poster, noon), event(flyer, noon, visitor="b" * 32), event(flyer, noon + timedelta(1))])

        flyer.delete()

        assert campaign_rows() == added_up()
        assert campaign_rows()[(campaign.pk, date(2026, 3, 10), "", "")] == (1, 1)
        assert not CampaignRollup.objects.filter(day=date(2026, 3, 11)).exists()

    def test_deleting_placements_takes_out_their_own_rows_without_recounting_the_campaign(self, campaign, poster):
        others = [Placement.objects.create(campaign=campaign, name=f"P{n}") for n in range(5)]
        store_events([event(place, datetime(2026, 3, 10, 12 + n, tzinfo=UTC), visitor=f"{n:032d}")
                      for n, place in enumerate([poster, *others])])

        with CaptureQueriesContext(connection) as done:
            Placement.objects.filter(pk__in=[place.pk for place in others]).delete()

        assert campaign_rows() == added_up()
        assert campaign_rows()[(campaign.pk, date(2026, 3, 10), "", "")] == (1, 1)
        assert not any("sum(" in query["sql"].lower() for query in done.captured_queries)  # no recount

    def test_a_rebuild_that_fails_midway_still_leaves_the_campaigns_rows_adding_up(self, campaign, team_users,
                                                                                    monkeypatch):
        first, second = (Placement.objects.create(campaign=campaign, name=name) for name in ("A", "B"))
        late = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
        store_events([event(first, late), event(second, late)])
        Team.objects.filter(pk=team_users.team.pk).update(time_zone="Asia/Tokyo")  # its days move
        rebuild_placement = rollup_rebuilds.rebuild_placement
        monkeypatch.setattr(rollup_rebuilds, "rebuild_placement", lambda pk, zone: rebuild_placement(pk, zone)
                            if pk != second.pk else (_ for _ in ()).throw(DatabaseError("the database went away")))

        with pytest.raises(DatabaseError):
            rollup_rebuilds.rebuild(Placement.objects.filter(campaign=campaign), "Asia/Tokyo")

        assert campaign_rows() == added_up()

    def test_deleting_a_campaign_deletes_its_rows(self, campaign, poster):
        store_events([event(poster, datetime(2026, 3, 10, 12, tzinfo=UTC))])
        assert CampaignRollup.objects.exists()

        campaign.delete()

        assert not CampaignRollup.objects.exists()


@on_postgresql
@pytest.mark.django_db
class TestUpsert:
    def test_it_writes_a_batchs_rows_in_one_statement_per_table(self, campaign, poster):
        # Each column as one array: 500 rows of VALUES were 4,000 placeholders a statement, which psycopg converted
        # anew for every execute (half the drainer's CPU). Odd values must come through the arrays' quoting.
        noon = datetime(2026, 3, 10, 12, tzinfo=UTC)
        odd = 'Odd "one", {braces} \\ NULL'
        events = [event(poster, noon - timedelta(days=n), visitor=f"{n:032d}", browser=odd if n % 2 else "Safari")
                  for n in range(100)]
        tables = [model._meta.db_table for model in (ScanRollup, CampaignRollup, TeamRollup)]

        with CaptureQueriesContext(connection) as done:
            store_events(events)
        store_events([{**one, "id": uuid.uuid4().hex} for one in events])  # the same scans again: on conflict

        assert ScanRollup.objects.count() > rollups.UPSERT_BATCH
        writes = [query["sql"].split(" (")[0] for query in done.captured_queries if query["sql"].startswith("INSERT")]
        assert sorted(write for write in writes if write.split()[-1] in tables) == sorted(
            f"INSERT INTO {table}" for table in tables)
        assert ScanRollup.objects.filter(dimension="browser", value=odd).count() == 50
        assert placement_rows(poster)[(date(2026, 3, 10), "")] == (2, 1)
        assert campaign_rows() == added_up()
        assert team_rows() == team_added_up()


@on_postgresql
@pytest.mark.django_db(transaction=True)
class TestCampaignRowsConcurrently:
    def test_two_drainers_sharing_campaigns_wait_for_each_other_rather_than_deadlock(self, team_users):
        # Their batches met the campaigns in opposite orders: 9-14 of 60 batches failed with "deadlock detected".
        one, two = (Campaign.objects.create(team=team_users.team, name=name, destination="https://shop.example.com/")
                    for name in ("One", "Two"))
        a1, b1 = (Placement.objects.create(campaign=one, name=name) for name in "ab")
        a2, b2 = (Placement.objects.create(campaign=two, name=name) for name in "ab")
        noon, errors, rounds = datetime(2026, 3, 10, 12, tzinfo=UTC), [], 12
        together = threading.Barrier(2)

        def drain(first: Placement, second: Placement) -> None:
            for n in range(rounds):
                batch = [event(place, noon + timedelta(minutes=n), visitor=f"{k:032d}", country=f"C{k % 30}",
                               browser=f"Browser {k}") for place in (first, second) for k in range(120)]
                together.wait()
                catching(errors, store_events, batch)

        threads = [threading.Thread(target=drain, args=pair) for pair in ((a1, a2), (b2, b1))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert campaign_rows() == added_up()

    def test_a_recount_and_a_new_placements_first_batch_both_count(self, team_users, monkeypatch):
        # The recount locked the placements there were; a new one's batch wrote campaign rows the recount then
        # inserted again: a unique-key violation.
        campaign = Campaign.objects.create(team=team_users.team, name="S", destination="https://shop.example.com/")
        store_events([event(Placement.objects.create(campaign=campaign, name="Old"),
                            datetime(2026, 3, 10, 12, tzinfo=UTC))])
        deleted, go, errors = threading.Event(), threading.Event(), []
        add_up = rollups.add_up_campaign

        def pausing(campaign_id):  # the recount, right after it deleted the campaign's rows
            if threading.current_thread().name == "recount":
                deleted.set()
                go.wait(10)
            add_up(campaign_id)

        monkeypatch.setattr(rollups, "add_up_campaign", pausing)
        recount = threading.Thread(target=catching, args=(errors, rollups.refresh_campaigns, [campaign.pk]),
                                   name="recount")
        recount.start()
        assert deleted.wait(10)
        new = Placement.objects.create(campaign=campaign, name="New")
        drain = threading.Thread(target=catching, args=(errors, store_events, [
            event(new, datetime(2026, 3, 11, 12, tzinfo=UTC))]))
        drain.start()
        time.sleep(0.5)  # the batch now waits for the recount
        go.set()
        recount.join()
        drain.join()

        assert errors == []
        assert campaign_rows() == added_up()
        assert ScanRollup.objects.filter(placement=new).exists()

    def test_a_batch_that_waited_for_its_teams_recount_counts_in_the_new_zone(self, team_users, campaign,
                                                                               monkeypatch):
        # The batch's locking query read the team's zone as of its own start, before the recount committed: its
        # scan went into a day of the old zone among rows of the new one.
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        store_events([event(poster, datetime(2026, 3, 10, 23, 30, tzinfo=UTC))])  # 3-10 in UTC, 3-11 in Tokyo
        Team.objects.filter(pk=team_users.team.pk).update(time_zone="Asia/Tokyo")
        rebuilt, go, errors = threading.Event(), threading.Event(), []
        refresh_teams = team_rollups.refresh_teams

        def pausing(teams):  # the recount, its rows rebuilt, before its commit
            if threading.current_thread().name == "recount":
                rebuilt.set()
                go.wait(10)
            refresh_teams(teams)

        monkeypatch.setattr(team_rollups, "refresh_teams", pausing)
        recount = threading.Thread(target=catching, name="recount", args=(
            errors, rollup_rebuilds.recount_team, team_users.team.pk, "Asia/Tokyo"))
        recount.start()
        assert rebuilt.wait(10)
        drain = threading.Thread(target=catching, args=(errors, store_events, [
            event(poster, datetime(2026, 3, 11, 16, tzinfo=UTC), visitor="b" * 32)]))  # 3-11 UTC, 3-12 Tokyo
        drain.start()
        time.sleep(0.5)  # the batch now waits for the recount
        go.set()
        recount.join()
        drain.join()

        assert errors == []
        assert placement_rows(poster) == {(date(2026, 3, 11), ""): (1, 1), (date(2026, 3, 12), ""): (1, 1)}
        assert campaign_rows() == added_up() and team_rows() == team_added_up()


@pytest.mark.parametrize(("header", "language"), [
    ("fr-FR,fr;q=0.9,en;q=0.8", "fr"), ("EN_us", "en"), ("de", "de"), ("*", ""), ("", ""), ("i-klingon", ""),
    (" pt-BR ; q=1", "pt"), ("haw", "haw"), ("12-34", ""), ("\xe9\xe8;q=\xff, en", ""),
])
def test_it_reads_the_first_language(header, language):
    assert rollups.language_of(header) == language
