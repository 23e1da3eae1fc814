"""The API's scan figures (`campaigns.scan_summaries`): what an integrator reads about each figure in the schema, and
the figures and date ranges of `/api/placements/{id}/scans/` and `/api/campaigns/{id}/scans/`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import rollup_rebuilds
from campaigns.models import Placement, ScanEvent
from tests.clients import api_as


@pytest.mark.django_db
def test_it_says_every_unique_figure_is_counted_once_a_day_per_placement():
    components = APIClient().get("/api/schema/?format=json").json()["components"]["schemas"]
    described = {name: components[name]["properties"]["unique"].get("description", "")
                 for name in ("ScanSummary", "CampaignScanSummary", "Count", "DayCount", "RuleCount",
                              "PlacementFigures")}
    for name, text in described.items():
        assert text.startswith("Unique visitors, counted once a day per placement. Each person is counted once a "
                               "day on each placement they scan"), name
    assert "first scan of the day" in described["RuleCount"]


@pytest.mark.django_db
def test_each_summary_is_described_to_integrators_as_what_it_is():
    # Both inherited their shared base's docstring as their description: a note about the schema's own past
    # ("the schema's examples showed a campaign summary's `placement`..."), in the API's documentation.
    components = APIClient().get("/api/schema/?format=json").json()["components"]["schemas"]
    assert components["ScanSummary"]["description"] == "A placement's scans in the range asked."
    assert components["CampaignScanSummary"]["description"].startswith("A campaign's scans in the range asked")


@pytest.mark.django_db
class TestScans:
    def scan(self, placement: Placement, days_ago: float, os: str, device: str, is_bot: bool = False,
             **fields) -> None:
        event = ScanEvent.objects.create(placement=placement, os=os, device_class=device, is_bot=is_bot, **fields)
        # `time` is auto_now_add: move it back afterwards.
        ScanEvent.objects.filter(pk=event.pk).update(time=timezone.now() - timedelta(days=days_ago))
        rollup_rebuilds.rebuild(Placement.objects.all())  # what the drainer keeps as it stores scans

    def test_it_counts_people_by_day_device_and_os_and_leaves_bots_out(self, team_users, placement):
        self.scan(placement, 0, "iOS", "mobile", visitor_key="a" * 32)
        self.scan(placement, 0, "iOS", "mobile", visitor_key="a" * 32)
        self.scan(placement, 3, "Android", "mobile")
        self.scan(placement, 10, "Windows", "desktop")
        self.scan(placement, 40, "iOS", "tablet")
        self.scan(placement, 20, "", "")
        self.scan(placement, 0, "Other", "bot", is_bot=True)
        body = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/scans/").json()
        assert (body["placement"], body["total"], body["unique"], body["last_7_days"]) == (placement.pk, 5, 4, 3)
        assert body["range"]["key"] == "30d" and body["range"]["time_zone"] == "UTC"
        days = body["by_day"]
        assert len(days) == 30 and days[-1] == {"day": timezone.now().date().isoformat(), "count": 2, "unique": 1}
        assert days[-4]["count"] == days[-21]["count"] == 1 and sum(d["count"] for d in days) == 5
        assert [(d["key"], d["label"], d["count"]) for d in body["by_device"]] == [
            ("mobile", "Mobile", 3), ("desktop", "Desktop", 1), ("Unknown", "Unknown", 1)]
        assert [(d["key"], d["count"]) for d in body["by_os"]] == [("iOS", 2), ("Android", 1), ("Windows", 1),
                                                                    ("Unknown", 1)]
        assert sum(body["by_hour"]) == sum(body["by_weekday"]) == 5
        lifetime = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/scans/?range=lifetime").json()
        assert lifetime["total"] == 6 and lifetime["range"]["key"] == "lifetime"

    def test_a_placement_without_scans_has_zeros(self, team_users, placement):
        body = api_as(team_users.owner).get(f"/api/placements/{placement.pk}/scans/").json()
        assert body["total"] == body["last_7_days"] == 0 and body["by_device"] == body["by_os"] == []
        assert {d["count"] for d in body["by_day"]} == {0}

    def test_it_compares_a_campaigns_placements_in_a_custom_range(self, team_users, campaign, placement):
        flyer = Placement.objects.create(campaign=campaign, name="Flyer", printed_quantity=200)
        self.scan(flyer, 2, "iOS", "mobile", country="FR", accept_language="fr-FR")
        self.scan(flyer, 2, "iOS", "mobile", country="FR", accept_language="fr-FR")
        self.scan(placement, 9, "iOS", "mobile")
        today = timezone.now().date()
        body = api_as(team_users.viewer).get(
            f"/api/campaigns/{campaign.pk}/scans/?from={today - timedelta(days=5)}&to={today}").json()
        assert (body["campaign"], body["total"], body["range"]["key"]) == (campaign.pk, 2, "custom")
        assert [(p["name"], p["scans"], p["unique"], p["scans_per_100_printed"]) for p in body["placements"]] == [
            ("Flyer", 2, 2, 1.0), ("Station poster", 0, 0, None)]
        assert len(body["placements"][0]["trend"]) == 6
        assert body["by_country"] == [{"key": "FR", "label": "FR", "count": 2, "unique": 2}]
        assert body["by_language"] == [{"key": "fr", "label": "French", "count": 2, "unique": 2}]

    def test_it_gives_scans_per_destination_rule_with_the_split_shares(self, team_users, campaign, placement):
        for n, rule in enumerate(["ab:0", "ab:0", "ab:0", "ab:1", "android", "", ""]):
            self.scan(placement, 0, "Android", "mobile", visitor_key=f"{n:032d}", rule=rule)
        self.scan(placement, 0, "Android", "mobile", visitor_key=f"{0:032d}", rule="ab:0")  # variant A's visitor again

        for url in (f"/api/campaigns/{campaign.pk}/scans/", f"/api/placements/{placement.pk}/scans/"):
            body = api_as(team_users.viewer).get(url).json()
            assert body["by_rule"] == [
                {"key": "android", "label": "Android destination", "count": 1, "unique": 1, "split_share": None},
                {"key": "ab:0", "label": "A/B variant A", "count": 4, "unique": 3, "split_share": 80.0},
                {"key": "ab:1", "label": "A/B variant B", "count": 1, "unique": 1, "split_share": 20.0},
                {"key": "", "label": "Main destination (no rule)", "count": 2, "unique": 2, "split_share": None},
            ]

    def test_it_gives_no_rules_where_none_sent_a_scan(self, team_users, placement):
        self.scan(placement, 0, "iOS", "mobile")
        body = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/scans/").json()
        assert body["total"] == 1 and body["by_rule"] == []

    @pytest.mark.parametrize("query", ["range=forever", "from=2026-02-30&to=2026-03-01",
                                       "from=2026-03-02&to=2026-03-01", "range=custom"])
    def test_it_answers_a_bad_range_with_400_and_the_reason(self, team_users, campaign, placement, query):
        for url in (f"/api/campaigns/{campaign.pk}/scans/", f"/api/placements/{placement.pk}/scans/"):
            response = api_as(team_users.owner).get(f"{url}?{query}")
            assert response.status_code == 400
            assert list(response.json()) == ["range"] and len(response.json()["range"]) == 1

    @pytest.mark.parametrize("query", ["range=7d&from=2026-03-01", "range=lifetime&to=2026-03-01",
                                       "range=30d&from=2026-03-01&to=2026-03-02"])
    def test_dates_beside_a_range_that_is_not_custom_are_refused_not_ignored(self, team_users, placement, query):
        response = api_as(team_users.owner).get(f"/api/placements/{placement.pk}/scans/?{query}")
        assert response.status_code == 400
        key = query.split("&")[0].removeprefix("range=")
        assert response.json() == {"range": [
            f"from and to make a custom range: send them alone (or with range=custom), not with range={key}."]}
        custom = api_as(team_users.owner).get(
            f"/api/placements/{placement.pk}/scans/?range=custom&from=2026-03-01&to=2026-03-02")
        assert custom.status_code == 200 and custom.json()["range"]["key"] == "custom"
        # A range there is not, with dates: said as such, and not echoed whole
        unknown = api_as(team_users.owner).get(
            f"/api/placements/{placement.pk}/scans/?range={'x' * 5000}&from=2026-03-01")
        assert unknown.status_code == 400 and unknown.json()["range"][0].startswith("range must be one of")
        assert len(unknown.content) < 300

    def test_a_range_the_wrong_way_round_is_told_in_words_naming_the_query_parameters(self, team_users, placement):
        response = api_as(team_users.owner).get(f"/api/placements/{placement.pk}/scans/?from=2026-03-02&to=2026-03-01")
        assert response.status_code == 400
        assert response.json() == {"range": ["The start date, from=2026-03-02, is after the end date, to=2026-03-01."]}

    def test_outsiders_get_404(self, team_users, campaign, placement):
        for url in (f"/api/campaigns/{campaign.pk}/scans/", f"/api/placements/{placement.pk}/scans/"):
            assert api_as(team_users.outsider).get(url).status_code == 404
