"""The API's scan figures' schema (`campaigns.scan_summaries`): what an integrator reads about each figure."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


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
