"""The scans' CSV exports (`campaigns.scan_export_views`)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.drainer import drain_once, store_events
from campaigns.models import Campaign, Placement, ScanEvent
from campaigns.scan_buffer import scan_event
from tests.campaigns.conftest import body


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station Poster", location="Platform 2")


@pytest.mark.django_db
class TestCsvExport:
    def test_a_long_name_gives_a_file_name_of_a_sensible_length(self, client, team_users, campaign):
        # 200-character names made file names of ~220 characters.
        Campaign.objects.filter(pk=campaign.pk).update(name="Spring " * 28)
        client.force_login(team_users.viewer)
        for url in (f"/campaigns/{campaign.pk}/scans.csv", f"/campaigns/{campaign.pk}/placements.csv"):
            name = re.search(r'filename="([^"]+)"', client.get(url)["Content-Disposition"]).group(1)
            assert name.startswith("spring-spring-") and len(name) <= 100 and "--" not in name, name

    def test_a_name_in_any_script_names_the_file_and_no_cache_keeps_it(self, client, team_users, campaign,
                                                                          placement):
        # The ASCII slug dropped "東京": the file was "cafe-scans-….csv", and a shared cache could keep a team's scans.
        Campaign.objects.filter(pk=campaign.pk).update(name='東京 Café "Nord"; x')
        client.force_login(team_users.viewer)
        for url in (f"/campaigns/{campaign.pk}/scans.csv", f"/campaigns/placements/{placement.pk}/scans.csv"):
            response = client.get(url)
            assert re.fullmatch(r'attachment; filename="cafe-nord-x-.*scans-[-0-9to]+\.csv"; '
                                r"filename\*=utf-8''%E6%9D%B1%E4%BA%AC-caf%C3%A9-nord-x-.*scans-[-0-9to]+\.csv",
                                response["Content-Disposition"]), response["Content-Disposition"]
            assert {"private", "no-store"} <= set(response["Cache-Control"].replace(" ", "").split(","))

    def test_it_streams_every_scan_with_its_placement(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.viewer)
        response = client.get(f"/campaigns/{campaign.pk}/scans.csv")
        assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
        assert re.search(r'filename="spring-sale-scans-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d.csv"',
                         response["Content-Disposition"])
        rows = list(csv.DictReader(io.StringIO(body(response))))
        assert list(rows[0]) == ["time", "placement", "slug", "device_class", "os", "browser", "country", "language",
                                 "visitor", "is_bot", "referer", "rule", "is_repeat", "local_time"]
        assert len(rows) == 3  # bots too, flagged, so the export is complete
        assert rows[0]["os"] == "Windows"  # oldest first
        phone = next(row for row in rows if row["os"] == "iOS")
        assert phone == {"time": phone["time"], "placement": "Station Poster", "slug": placement.slug,
                         "device_class": "mobile", "os": "iOS", "browser": "Mobile Safari", "country": "DE",
                         "language": "de-DE", "visitor": "", "is_bot": "false", "referer": "https://t.co/x",
                         "rule": "ios", "is_repeat": "false", "local_time": phone["local_time"]}
        assert [row["is_bot"] for row in rows].count("true") == 1

    def test_every_stored_scan_is_exported_bots_before_the_first_person_too(self, client, team_users, campaign,
                                                                              placement):
        # Lifetime started at the first day people scanned (the rollups' first day, which count no bot): a link
        # preview the day before, and every scan of a placement only bots had fetched, were left out of the export
        # that promises every stored scan.
        quiet = Placement.objects.create(campaign=campaign, name="Quiet")
        now = timezone.now()
        store_events([scan_event(placement.pk, now - timedelta(days=3), is_bot=True, device_class="bot"),
                      scan_event(placement.pk, now - timedelta(days=1), visitor_key="0" * 32),
                      scan_event(quiet.pk, now - timedelta(days=5), is_bot=True, device_class="bot")])
        client.force_login(team_users.viewer)
        for url, expected in ((f"/campaigns/{campaign.pk}/scans.csv", 3),
                              (f"/campaigns/{campaign.pk}/scans.csv?range=lifetime", 3),
                              (f"/api/campaigns/{campaign.pk}/scans/export/", 3),
                              (f"/campaigns/placements/{placement.pk}/scans.csv", 2),
                              (f"/campaigns/placements/{quiet.pk}/scans.csv?range=lifetime", 1)):
            response = client.get(url)
            first = (now - timedelta(days=5 if expected != 2 else 3)).astimezone(team_users.team.zone).date()
            assert len(list(csv.DictReader(io.StringIO(body(response))))) == expected, url
            assert f"scans-{first}-to-" in response["Content-Disposition"], url

    def test_it_never_exports_client_addresses_or_their_old_hashes(self, client, team_users, campaign, placement):
        client.force_login(team_users.owner)
        client.get(f"/r/{placement.slug}", REMOTE_ADDR="198.51.100.23", HTTP_ACCEPT_LANGUAGE="fr-FR")
        drain_once()
        ScanEvent.objects.update(client_hash="c0ffee0123456789")
        event = ScanEvent.objects.get()
        for url in [f"/campaigns/{campaign.pk}/scans.csv", f"/campaigns/placements/{placement.pk}/scans.csv"]:
            text = body(client.get(url))
            assert "198.51.100.23" not in text and "c0ffee0123456789" not in text
            # The day's visitor key and the language leave: they follow nobody from one day to the next.
            assert event.visitor_key in text and "fr-FR" in text
            assert len(text.strip().splitlines()) == 2

    def test_it_exports_the_asked_range_in_the_teams_days(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.owner)
        week = list(csv.DictReader(io.StringIO(body(client.get(f"/campaigns/{campaign.pk}/scans.csv?range=7d")))))
        assert {row["os"] for row in week} == {"iOS", "Other"}  # the Windows scan was 10 days ago
        today = timezone.now().date()
        custom = client.get(f"/campaigns/placements/{placement.pk}/scans.csv?from={today - timedelta(days=12)}"
                            f"&to={today - timedelta(days=8)}")
        assert [row["os"] for row in csv.DictReader(io.StringIO(body(custom)))] == ["Windows"]

    def test_it_answers_a_bad_range_with_one_plain_message(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/{campaign.pk}/scans.csv?from=2026-13-01&to=2026-01-01")
        assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
        assert body(response) == "The start date, from=“2026-13-01”, is not a date like 2026-03-01."

    def test_it_defuses_spreadsheet_formulas(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.owner)
        rows = list(csv.DictReader(io.StringIO(body(client.get(f"/campaigns/{campaign.pk}/scans.csv")))))
        assert rows[0]["referer"] == "'=HYPERLINK(\"https://evil.example\")"

    def test_it_marks_repeats_and_gives_the_time_in_the_teams_zone_last(self, client, team_users, campaign,
                                                                         placement):
        team_users.team.time_zone = "America/New_York"
        team_users.team.save()
        late = datetime(2026, 6, 2, 3, 59, 59, tzinfo=UTC)  # still 1 June in New York, the page's day
        ScanEvent.objects.create(placement=placement, time=late, is_repeat=True, os="iOS")
        ScanEvent.objects.create(placement=placement, time=late - timedelta(hours=1), os="Android")
        client.force_login(team_users.owner)
        for url in (f"/campaigns/{campaign.pk}/scans.csv", f"/campaigns/placements/{placement.pk}/scans.csv"):
            rows = list(csv.reader(io.StringIO(body(client.get(f"{url}?from=2026-06-01&to=2026-06-01")))))
            assert rows[0][-2:] == ["is_repeat", "local_time"] and len(rows) == 3
            assert [row[-2:] for row in rows[1:]] == [["false", "2026-06-01T22:59:59-04:00"],
                                                      ["true", "2026-06-01T23:59:59-04:00"]]
            assert rows[2][0] == "2026-06-02T03:59:59+00:00"  # the UTC column stays first, as it was

    def test_it_says_when_the_range_reaches_before_the_raw_scans_kept(self, client, team_users, campaign, placement,
                                                                      scans):
        team_users.team.scan_retention_days = 7
        team_users.team.save()
        ScanEvent.objects.filter(time__lt=timezone.now() - timedelta(days=7)).delete()  # what retention does
        client.force_login(team_users.owner)
        kept = f"Raw scans before {timezone.now().date():%Y-%m-%d} are no longer kept (this team keeps them 7 days)"
        for url in (f"/campaigns/{campaign.pk}/", f"/campaigns/placements/{placement.pk}/"):
            month, week = body(client.get(f"{url}?range=30d")), body(client.get(f"{url}?range=7d"))
            assert "data-export-note" in month and kept in month  # the page still counts the deleted day
            assert "data-export-note" not in week
            export = client.get(f"{url}scans.csv?range=30d")
            assert export["X-Qart-Export-Note"].startswith(kept)
            assert not body(export).startswith("#")  # no comment line: CSV readers would take it for a row
            assert "X-Qart-Export-Note" not in client.get(f"{url}scans.csv?range=7d")

    def test_it_exports_only_the_placements_own_scans(self, client, team_users, campaign, placement, scans):
        other = Placement.objects.create(campaign=campaign, name="Flyer")
        ScanEvent.objects.create(placement=other, os="Android")
        client.force_login(team_users.owner)
        rows = list(csv.DictReader(io.StringIO(body(client.get(f"/campaigns/placements/{placement.pk}/scans.csv")))))
        assert {row["slug"] for row in rows} == {placement.slug} and len(rows) == 3
        campaign_rows = body(client.get(f"/campaigns/{campaign.pk}/scans.csv")).strip().splitlines()
        assert len(campaign_rows) == 5
