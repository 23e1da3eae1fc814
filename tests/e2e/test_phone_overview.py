"""The team's overview (the campaign list) on a phone: its figures and its scans chart come first, the campaigns
listed under them, so a marketer sees the team's week without scrolling past every campaign (37 campaigns, two
lines each, put the chart about five screens down at 375x667). A desktop keeps its tiles in a row and every column
of the list, and shows the list beside the figures and chart, in its first screen: under them, the list began about
1,040 px down, past the first screen of a 1280x800 laptop.

Headless Chromium (Debian's) against pytest-django's live server; scans are stored the way the drainer stores them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e.conftest import DESKTOP, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

SMALL_PHONE = {"width": 375, "height": 667}  # an iPhone SE's viewport: the smallest screen the overview is read on
LAPTOP = {"width": 1280, "height": 800}  # a 13-inch laptop's browser window: a desktop's shortest first screen


@pytest.fixture
def campaigns(team_users) -> int:
    """37 campaigns of one placement each, each scanned on a few days of the last three weeks; their number."""
    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event

    now = timezone.now()
    events = []
    for n in range(37):
        campaign = Campaign.objects.create(team=team_users.team, name=f"Spring campaign {n}",
                                           destination="https://shop.example.com/")
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        events += [scan_event(poster.pk, now - timedelta(days=days), visitor_key=f"{n:016d}{days:016d}")
                   for days in range(0, 21, 4)]
    store_events(events)
    return 37


def top(page, selector: str) -> float:
    return page.locator(selector).first.bounding_box()["y"]


@pytest.mark.browser
def test_a_phone_shows_the_teams_figures_and_first_chart_before_its_campaigns(new_page, team_users, campaigns):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=SMALL_PHONE, has_touch=True)  # a finger: 44 px buttons, as on a phone
    sign_in(page, "viewer")
    expect(page.locator("[data-campaign-rows] tbody tr")).to_have_count(campaigns)
    chart = page.locator('canvas[data-chart="scan-chart"]')
    expect(chart).to_be_visible()
    screen = SMALL_PHONE["height"]
    # The tiles were at about 3,000 px and the chart at 3,300 (five screens): now the first screen and the second.
    assert top(page, ".tiles") < screen, top(page, ".tiles")
    assert chart.bounding_box()["y"] < 2 * screen, chart.bounding_box()
    assert top(page, "[data-campaign-rows]") > chart.bounding_box()["y"]  # the list under the chart, as in the HTML
    # When and where people scanned follows the list.
    assert top(page, "h2:text-is('Hour of the day')") > top(page, "[data-campaign-rows]")
    assert failures == []


@pytest.mark.browser
def test_a_desktop_keeps_the_tiles_in_a_row_and_every_column_of_the_campaigns(new_page, team_users, campaigns):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "viewer")
    expect(page.locator("[data-campaign-rows] thead")).to_be_visible()
    expect(page.locator("#campaigns-listed")).to_have_text(f"{campaigns} active campaigns")
    tiles = [tile.bounding_box() for tile in page.locator(".tiles .tile").all()]
    assert len(tiles) == 2 and tiles[0]["y"] == tiles[1]["y"] and tiles[1]["x"] > tiles[0]["x"], tiles
    assert top(page, 'canvas[data-chart="scan-chart"]') < DESKTOP["height"]  # the first screen, as on a phone
    assert failures == []


@pytest.mark.browser
def test_a_desktop_lists_the_campaigns_beside_the_figures_in_its_first_screen(new_page, team_users, campaigns):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=LAPTOP)
    sign_in(page, "viewer")
    rows = page.locator("[data-campaign-rows] tbody tr")
    expect(rows).to_have_count(campaigns)
    chart = page.locator('canvas[data-chart="scan-chart"]').bounding_box()
    listed = page.locator("[data-campaign-rows]").bounding_box()
    # The first campaigns whole within the first screen (the list began at 1,043 px, under the chart).
    first_rows = [rows.nth(n).bounding_box() for n in range(3)]
    assert all(row["y"] + row["height"] <= LAPTOP["height"] for row in first_rows), first_rows
    # Beside the figures and chart, to their right: the HTML's order (figures, then campaigns) read left to right.
    tiles = page.locator(".tiles").bounding_box()
    assert listed["x"] >= max(tiles["x"] + tiles["width"], chart["x"] + chart["width"]), (tiles, chart, listed)
    assert abs(listed["y"] - tiles["y"]) < 40, (tiles, listed)  # side by side, from the same line
    assert chart["y"] + chart["height"] / 2 < LAPTOP["height"]  # the chart still mostly in the first screen, as before
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    assert failures == []
