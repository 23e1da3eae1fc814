"""Every road to a campaign's figures agrees with the stored scans: the pages (campaign list and its overview, a
campaign's, a placement's, the shared report), the API's scan summaries and the CSV exports, on the hand-worked
fixture of `tests.campaigns.figure_data` (its docstring derives each expected number from the raw scans)."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import maintenance, retention, rollup_rebuilds, shares
from campaigns.drainer import store_events
from campaigns.models import Placement, ScanEvent, ScanRollup
from qartsite.models import Team
from tests.campaigns.conftest import body
from tests.campaigns.figure_data import RETENTION_RAN, WHILE_RECOUNTING, figure_data, late, utc
from tests.campaigns.rollup_data import all_rows, campaign_rows, event, team_added_up, team_rows
from tests.clients import api_as, logged_in
from tests.conftest import make_staff

DST_RANGE = "from=2026-10-24&to=2026-10-26"  # the 24 h day before, the 25 h day, the day after
ONE_DAY = "from=2026-10-25&to=2026-10-25"


@pytest.fixture
def data(team_users):
    return figure_data(team_users.team)


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body(response))))


@pytest.mark.django_db
class TestFigures:
    def test_the_drainers_batches_equal_a_qart_rollups_rebuild(self, data):
        stored = (all_rows(), campaign_rows(), team_rows())
        call_command("qart_rollups", stdout=io.StringIO())
        assert (all_rows(), campaign_rows(), team_rows()) == stored
        assert team_rows() == team_added_up()
        # Both are a count over the raw scans: people's scans and distinct visitor keys per placement and local day
        zone, total = data.autumn.team.zone, ScanRollup.Dimension.TOTAL
        raw: dict = {}
        for scan in ScanEvent.objects.filter(is_bot=False):
            raw.setdefault((scan.placement_id, scan.time.astimezone(zone).date()), []).append(scan.visitor_key)
        assert {row[:6] for row in all_rows() if row[2] == total} == {
            (placement, day, total, "", len(keys), len(set(keys))) for (placement, day), keys in raw.items()}
        # and per campaign, as `qart_rollups --campaign` recounts one
        call_command("qart_rollups", campaign=data.autumn.pk, stdout=io.StringIO())
        assert (all_rows(), campaign_rows(), team_rows()) == stored

    def test_the_campaign_page_counts_each_local_day_of_a_dst_range(self, team_users, data):
        page = logged_in(team_users.viewer).get(f"/campaigns/{data.autumn.pk}/?{DST_RANGE}").context
        assert page["daily"] == [(date(2026, 10, 24), 1, 1), (date(2026, 10, 25), 17, 5), (date(2026, 10, 26), 1, 1)]
        assert (page["range_scans"], page["range_visitors"]) == (19, 7)
        assert page["chart"]["datasets"][0]["data"] == [1, 17, 1]
        # a: 23, b: 00, c and d: 02 (twice that night), flyer: 11 (CET by then), the burst: 13, e: 23, f: 00
        hours = page["hours_chart"]["datasets"][0]["data"]
        assert {hour: count for hour, count in enumerate(hours) if count} == {0: 2, 2: 2, 11: 1, 13: 12, 23: 2}
        # Sat 24, Sun 25, Mon 26
        assert page["weekdays_chart"]["datasets"][0]["data"] == [1, 0, 0, 0, 0, 1, 17]
        assert [(row["label"], row["count"]) for row in page["devices"]] == [("Mobile", 17), ("Desktop", 2)]
        figures = {row.placement.name: (row.figures.scans, row.figures.visitors, row.figures.trend)
                   for row in page["rows"]}
        assert figures == {"Poster": (18, 6, [1, 16, 1]), "Flyer": (1, 1, [0, 1, 0])}

    def test_a_one_day_range_is_that_local_day_only(self, team_users, data):
        page = logged_in(team_users.viewer).get(f"/campaigns/{data.autumn.pk}/?{ONE_DAY}").context
        assert (page["range_scans"], page["range_visitors"]) == (17, 5)
        placement = logged_in(team_users.viewer).get(f"/campaigns/placements/{data.poster.pk}/?{ONE_DAY}").context
        assert (placement["range_scans"], placement["range_visitors"]) == (16, 4)

    def test_the_api_says_what_the_pages_say(self, team_users, data):
        campaign = api_as(team_users.viewer).get(f"/api/campaigns/{data.autumn.pk}/scans/?{DST_RANGE}").json()
        assert (campaign["total"], campaign["unique"]) == (19, 7)
        assert [(day["day"], day["count"], day["unique"]) for day in campaign["by_day"]] == [
            ("2026-10-24", 1, 1), ("2026-10-25", 17, 5), ("2026-10-26", 1, 1)]
        assert sum(campaign["by_hour"]) == sum(campaign["by_weekday"]) == 19
        assert {row["name"]: (row["scans"], row["unique"]) for row in campaign["placements"]} == {
            "Poster": (18, 6), "Flyer": (1, 1)}
        poster = api_as(team_users.viewer).get(f"/api/placements/{data.poster.pk}/scans/?{DST_RANGE}").json()
        assert (poster["total"], poster["unique"]) == (18, 6)

    def test_the_scans_export_holds_the_rows_the_pages_count(self, team_users, data):
        rows = csv_rows(logged_in(team_users.viewer).get(f"/campaigns/{data.autumn.pk}/scans.csv?{DST_RANGE}"))
        people = [row for row in rows if row["is_bot"] == "false"]
        per_day: dict[str, int] = {}
        for row in people:
            per_day[row["local_time"][:10]] = per_day.get(row["local_time"][:10], 0) + 1
        assert per_day == {"2026-10-24": 1, "2026-10-25": 17, "2026-10-26": 1}
        assert len(rows) - len(people) == 2  # the link preview and the embedding page, marked
        assert sum(row["is_repeat"] == "true" for row in rows) == 2  # counted among the scans, marked

    def test_the_campaign_list_and_its_overview_add_up(self, team_users, data):
        client = logged_in(team_users.viewer)
        active = client.get(f"/campaigns/?{DST_RANGE}").context
        assert {campaign.name: (figures.scans, figures.visitors) for campaign, figures in active["campaigns"]} == {
            "Autumn": (19, 7)}
        assert (active["range_scans"], active["range_visitors"]) == (19, 7)
        archived = client.get(f"/campaigns/?archived=1&{DST_RANGE}").context
        assert {campaign.name: (figures.scans, figures.visitors) for campaign, figures in archived["campaigns"]} == {
            "Archived": (3, 2)}
        assert (archived["range_scans"], archived["range_visitors"]) == (3, 2)
        # A scan of the archived campaign's code stored now (they still redirect) counts in the archived set: E again
        # on day 26, one more scan and no new visitor
        store_events([event(data.banner, utc(2026, 10, 26, 12), "e" * 32)])
        archived = client.get(f"/campaigns/?archived=1&{DST_RANGE}").context
        assert (archived["range_scans"], archived["range_visitors"]) == (4, 2)
        assert [(figures.scans, figures.visitors) for _, figures in archived["campaigns"]] == [(4, 2)]
        assert team_rows() == team_added_up()

    def test_the_shared_report_says_what_the_campaign_page_says(self, team_users, data):
        _, token = shares.create(data.autumn, team_users.owner)
        report = logged_in(team_users.outsider).get(f"/campaigns/shared/{token}/?{DST_RANGE}").context
        assert report["daily"] == [(date(2026, 10, 24), 1, 1), (date(2026, 10, 25), 17, 5),
                                   (date(2026, 10, 26), 1, 1)]
        assert {placement.name: (figures.scans, figures.visitors) for placement, figures in report["rows"]} == {
            "Poster": (18, 6), "Flyer": (1, 1)}

    def test_the_campaigns_and_placements_exports_count_ever_as_the_pages_do(self, team_users, data):
        rows = csv_rows(logged_in(team_users.viewer).get("/campaigns/campaigns.csv"))
        assert {row["name"]: (row["scans"], row["daily_unique_visitors"]) for row in rows} == {
            "Autumn": ("19", "7"), "Archived": ("3", "2")}
        placements = csv_rows(logged_in(team_users.viewer).get(f"/campaigns/{data.autumn.pk}/placements.csv"))
        assert {row["name"]: row["scans"] for row in placements} == {"Poster": "18", "Flyer": "1"}

    def test_the_stored_scans_are_what_the_fixture_says(self, data):
        assert ScanEvent.objects.filter(is_bot=False, placement=data.poster).count() == 18
        assert ScanEvent.objects.filter(is_repeat=True).count() == 2

    def test_a_placement_moved_into_the_archived_campaign_counts_there_everywhere(self, team_users, data):
        make_staff(team_users.owner)
        admin = logged_in(team_users.owner)
        moved = admin.post(f"/admin/campaigns/placement/{data.flyer.pk}/change/",
                           {"campaign": data.archived.pk, "name": "Flyer", "kind": "flyer", "active": "on"})
        assert moved.status_code == 302
        client = logged_in(team_users.viewer)
        active, archived = (client.get(f"/campaigns/?{query}{DST_RANGE}").context for query in ("", "archived=1&"))
        # Autumn less the flyer's scan of day 25 (visitor A counted there once); Archived plus it
        assert (active["range_scans"], active["range_visitors"]) == (18, 6)
        assert (archived["range_scans"], archived["range_visitors"]) == (4, 3)
        assert [figures.scans for _, figures in archived["campaigns"]] == [4]
        stored = (campaign_rows(), team_rows())
        rollup_rebuilds.rebuild(Placement.objects.all())
        assert (campaign_rows(), team_rows()) == stored


    def test_a_deleted_campaign_leaves_the_overview_and_the_team_rows(self, team_users, data):
        data.archived.delete()  # a superuser's delete in the admin, the only one there is
        archived = logged_in(team_users.viewer).get(f"/campaigns/?archived=1&{DST_RANGE}").context
        assert (archived["range_scans"], archived["range_visitors"]) == (0, 0)
        assert team_rows() == team_added_up()

    def test_after_a_time_zone_change_the_recount_puts_every_figure_in_the_new_days(self, team_users, data):
        team = data.autumn.team
        team.time_zone = "America/Los_Angeles"  # PDT, UTC-7, until 11-01
        team.save()
        assert maintenance.recount_changed_zones() == [team.name]
        # In Los Angeles: a, b (10-24 15:00), c (10-24 17:30), d (18:30), the flyer (03:00 on 10-25), the burst (05:00
        # on 10-25), e (15:59:59), f (16:00): 10-24: a, b, c, d = 4 scans by A, B; 10-25: 12 + e + f + flyer = 15
        # scans by D, C (e and f: one visitor now) and A on the flyer
        page = logged_in(team_users.viewer).get(f"/campaigns/{data.autumn.pk}/?{DST_RANGE}").context
        assert page["daily"] == [(date(2026, 10, 24), 4, 2), (date(2026, 10, 25), 15, 3), (date(2026, 10, 26), 0, 0)]
        rows = csv_rows(logged_in(team_users.viewer).get(f"/campaigns/{data.autumn.pk}/scans.csv?{DST_RANGE}"))
        assert [row["local_time"][:10] for row in rows if row["is_bot"] == "false"].count("2026-10-24") == 4

@pytest.mark.django_db
class TestTimeZoneChange:
    """A team changes its time zone: until the recount commits every road keeps the old zone's days (and says so),
    the new zone's after it, never one's days over the other's counts (`FigureData`, "Moved to Los Angeles")."""

    BERLIN = [(date(2026, 10, 24), 1, 1), (date(2026, 10, 25), 17, 5), (date(2026, 10, 26), 2, 1)]
    LOS_ANGELES = [(date(2026, 10, 24), 4, 2), (date(2026, 10, 25), 16, 3), (date(2026, 10, 26), 0, 0)]

    def roads(self, team_users, data) -> dict:
        """The campaign's days as the page, the API, the CSV export and the shared report give them."""
        client = logged_in(team_users.viewer)
        page = client.get(f"/campaigns/{data.autumn.pk}/?{DST_RANGE}")
        api = api_as(team_users.viewer).get(f"/api/campaigns/{data.autumn.pk}/scans/?{DST_RANGE}").json()
        rows = csv_rows(client.get(f"/campaigns/{data.autumn.pk}/scans.csv?{DST_RANGE}"))
        per_day: dict[date, int] = {}
        for row in rows:
            if row["is_bot"] == "false":
                day = date.fromisoformat(row["local_time"][:10])
                per_day[day] = per_day.get(day, 0) + 1
        _, token = shares.create(data.autumn, team_users.owner)
        return {
            "page": page.context["daily"],
            "api": [(date.fromisoformat(day["day"]), day["count"], day["unique"]) for day in api["by_day"]],
            "csv": [(day, per_day.get(day, 0)) for day, _, _ in page.context["daily"]],
            "shared": logged_in(team_users.outsider).get(f"/campaigns/shared/{token}/?{DST_RANGE}").context["daily"],
            "zones": {page.context["time_zone"], api["range"]["time_zone"]},
            "note": page.context["recount_note"],
        }

    def test_every_road_keeps_the_old_days_until_the_recount_commits(self, team_users, data):
        saved = logged_in(team_users.owner).post(f"/accounts/team/{team_users.team.pk}/settings/", {
            "name": team_users.team.name, "time_zone": "America/Los_Angeles", "scan_retention_days": ""}, follow=True)
        said = saved.content.decode()
        assert "until then every page, export and API answer keeps the days of Europe/Berlin" in said
        assert "data-recount" in said  # the settings form says the recount runs
        store_events([event(data.poster, WHILE_RECOUNTING, "c" * 32)])  # drained meanwhile: a Berlin day

        before = self.roads(team_users, data)
        assert before["page"] == before["api"] == before["shared"] == self.BERLIN
        assert before["csv"] == [(day, scans) for day, scans, _ in self.BERLIN]
        assert before["zones"] == {"Europe/Berlin"}
        assert "being recounted in America/Los_Angeles" in before["note"]

        assert maintenance.recount_changed_zones() == [team_users.team.name]

        after = self.roads(team_users, data)
        assert after["page"] == after["api"] == after["shared"] == self.LOS_ANGELES
        assert after["csv"] == [(day, scans) for day, scans, _ in self.LOS_ANGELES]
        assert after["zones"] == {"America/Los_Angeles"} and after["note"] == ""
        stored = (all_rows(), campaign_rows(), team_rows())
        call_command("qart_rollups", stdout=io.StringIO())  # the drainer's scan and the recount agree
        assert (all_rows(), campaign_rows(), team_rows()) == stored

    def test_a_team_saved_after_its_recount_keeps_the_recounted_zone(self, team_users, data):
        Team.objects.filter(pk=team_users.team.pk).update(counted_time_zone="Europe/Berlin")  # as the fixture left it
        team = Team.objects.get(pk=team_users.team.pk)
        team.time_zone = "America/Los_Angeles"
        team.save()
        assert Team.objects.get(pk=team.pk).counted_time_zone == "Europe/Berlin"  # counted days: recounted later
        assert maintenance.recount_changed_zones() == [team.name]
        team.scan_retention_days = 90  # a form that read the team before the recount committed
        team.save()
        assert Team.objects.get(pk=team.pk).counted_time_zone == "America/Los_Angeles"


@pytest.mark.django_db
class TestLateScans:
    """Scans that reach the drainer after retention deleted their days' scans (`FigureData`, "Late scans")."""

    def test_a_late_scan_past_retention_never_counts_a_visitor_twice_and_every_road_agrees(
            self, team_users, data, monkeypatch):
        Team.objects.filter(pk=team_users.team.pk).update(scan_retention_days=30)
        monkeypatch.setattr(timezone, "now", lambda: RETENTION_RAN)
        assert retention.purge().total > 0 and not ScanEvent.objects.filter(is_bot=False).exists()

        store_events(late(data))

        client = logged_in(team_users.viewer)
        page = client.get(f"/campaigns/{data.autumn.pk}/?{DST_RANGE}").context
        days = [(date(2026, 10, 24), 2, 1), (date(2026, 10, 25), 18, 5), (date(2026, 10, 26), 2, 2)]
        assert page["daily"] == days
        assert (page["range_scans"], page["range_visitors"]) == (22, 8)
        api = api_as(team_users.viewer).get(f"/api/campaigns/{data.autumn.pk}/scans/?{DST_RANGE}").json()
        assert [(date.fromisoformat(day["day"]), day["count"], day["unique"]) for day in api["by_day"]] == days
        assert {row["name"]: (row["scans"], row["unique"]) for row in api["placements"]} == {
            "Poster": (20, 6), "Flyer": (2, 2)}
        _, token = shares.create(data.autumn, team_users.owner)
        assert logged_in(team_users.outsider).get(f"/campaigns/shared/{token}/?{DST_RANGE}").context["daily"] == days
        export = client.get(f"/campaigns/{data.autumn.pk}/scans.csv?{DST_RANGE}")
        assert len(csv_rows(export)) == 3 and "no longer kept" in export["X-Qart-Export-Note"]
        # A rebuild keeps the days retention emptied as they were counted, the late scans with them
        stored = (all_rows(), campaign_rows(), team_rows())
        call_command("qart_rollups", stdout=io.StringIO())
        assert (all_rows(), campaign_rows(), team_rows()) == stored


@pytest.mark.django_db
class TestDays:
    def test_today_is_the_teams_day_east_of_utc(self, team_users, placement, monkeypatch):
        team = team_users.team
        team.time_zone = "Pacific/Auckland"  # NZDT, UTC+13, from 2026-09-27
        team.save()
        # 10-25 11:00 UTC is 10-26 00:00 in Auckland: one scan on each side of its midnight
        store_events([event(placement, utc(2026, 10, 25, 10, 59, 59), "a" * 32),
                      event(placement, utc(2026, 10, 25, 11, 0, 0), "b" * 32)])
        monkeypatch.setattr(timezone, "now", lambda: utc(2026, 10, 25, 11, 30))  # 00:30 in Auckland, 10-26
        page = logged_in(team_users.viewer).get(f"/campaigns/placements/{placement.pk}/?range=7d").context
        assert page["daily"][-2:] == [(date(2026, 10, 25), 1, 1), (date(2026, 10, 26), 1, 1)]
        assert page["chart"]["partial_last"]
        summary = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/scans/?range=7d").json()
        assert (summary["range"]["end"], summary["total"], summary["last_7_days"]) == ("2026-10-26", 2, 2)
        one_day = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/scans/?from=2026-10-26&to=2026-10-26")
        assert one_day.json()["total"] == 1
        export = logged_in(team_users.viewer).get(f"/campaigns/placements/{placement.pk}/scans.csv?range=lifetime")
        rows = csv_rows(export)
        assert [row["local_time"][:10] for row in rows] == ["2026-10-25", "2026-10-26"]

    def test_a_range_ending_on_the_short_spring_day_ends_at_its_midnight(self, team_users, placement):
        team = team_users.team
        team.time_zone = "Europe/Berlin"  # 2026-03-29 is 23 hours long: 03-28 23:00 to 03-29 22:00 UTC
        team.save()
        store_events([event(placement, utc(2026, 3, 28, 22, 59, 59), "a" * 32),  # 03-28 23:59:59 CET
                      event(placement, utc(2026, 3, 28, 23, 0, 0), "a" * 32),  # 03-29 00:00 CET
                      event(placement, utc(2026, 3, 29, 1, 0, 0), "b" * 32),  # 03-29 03:00 CEST (02:00 never was)
                      event(placement, utc(2026, 3, 29, 21, 59, 59), "b" * 32),  # 03-29 23:59:59 CEST
                      event(placement, utc(2026, 3, 29, 22, 0, 0), "b" * 32)])  # 03-30 00:00 CEST
        query = "from=2026-03-29&to=2026-03-29"
        summary = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/scans/?{query}").json()
        assert (summary["total"], summary["unique"]) == (3, 2)
        assert {hour: count for hour, count in enumerate(summary["by_hour"]) if count} == {0: 1, 3: 1, 23: 1}
        rows = csv_rows(logged_in(team_users.viewer).get(f"/campaigns/placements/{placement.pk}/scans.csv?{query}"))
        assert [row["local_time"] for row in rows] == ["2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00",
                                                       "2026-03-29T23:59:59+02:00"]


@pytest.mark.django_db
def test_every_scan_figure_says_what_it_counts_in_the_same_words(team_users, data):
    # The pages said "people only (link previews and bots left out)" and nothing of the repeat scans they count
    # (the burst's 11th and 12th scans are among the 19), while the export marks them: a reader took them for left out.
    said = "people only, repeat scans counted"
    client = logged_in(team_users.viewer)
    _, token = shares.create(data.autumn, team_users.owner)
    for url in (f"/campaigns/?{DST_RANGE}", f"/campaigns/{data.autumn.pk}/?{DST_RANGE}",
                f"/campaigns/placements/{data.poster.pk}/?{DST_RANGE}", f"/campaigns/shared/{token}/?{DST_RANGE}"):
        page = client.get(url).content.decode()
        assert f"data-scans-counted>{said}</span>" in page, url
        assert "more than 10 in a minute by one person of one code" in page, url
        assert "Link previews, bots and pages that load the link as an image or frame are left out" in page, url
    schema = APIClient().get("/api/schema/?format=json").json()["components"]["schemas"]
    assert said in schema["ScanSummary"]["properties"]["total"]["description"]


@pytest.mark.django_db
def test_the_scans_export_says_how_its_visitor_keys_make_the_unique_visitors(team_users, data):
    # The pages' 7 unique visitors of 24-26 Oct are not the export's 4 distinct keys (A scanned on two days and two
    # placements, C on two days); the API's description said nothing of how the one comes from the other.
    rows = csv_rows(logged_in(team_users.viewer).get(f"/campaigns/{data.autumn.pk}/scans.csv?{DST_RANGE}"))
    people = [row for row in rows if row["is_bot"] == "false"]
    assert len({row["visitor"] for row in people}) == 4
    assert len({(row["placement"], row["local_time"][:10], row["visitor"]) for row in people}) == 7
    paths = APIClient().get("/api/schema/?format=json").json()["paths"]
    described = paths["/api/campaigns/{id}/scans/export/"]["get"]["description"]
    assert "unique visitors are its distinct keys per placement and local day, added up" in " ".join(described.split())
