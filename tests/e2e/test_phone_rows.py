"""The campaign page and the campaigns' overview on a phone: a placement or a campaign is two lines (its name over
its figures), so the charts a marketer opens the page for come after one page of placements in about two screens,
not nine (25 placement cards ran 7,300 px, 37 campaign cards 5,000 px). A desktop keeps its table as it was.

Headless Chromium (Debian's) against pytest-django's live server; scans are stored the way the drainer stores them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

LINES_2 = 80  # CSS px: two lines of a row (about 65 px); a placement's card was about 290 px, a campaign's 135 px


@pytest.fixture
def campaigns(team_users):
    """A campaign of 25 placements (one page of them), each with a location, a printed quantity and a scan, beside
    11 campaigns of one placement each."""
    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event

    now = timezone.now()
    big = Campaign.objects.create(team=team_users.team, name="Winter sale", destination="https://shop.example.com/")
    placements = [Placement(campaign=big, name=f"Flyer {n}", location=f"Shop window {n}, Main Street",
                            printed_quantity=500) for n in range(25)]
    for n in range(11):
        small = Campaign.objects.create(team=team_users.team, name=f"Campaign {n}",
                                        destination="https://shop.example.com/")
        placements.append(Placement(campaign=small, name="Poster"))
    for placement in placements:
        placement.save()
    store_events([scan_event(placement.pk, now - timedelta(days=n % 9), visitor_key=f"{n:032d}")
                  for n, placement in enumerate(placements)])
    return big


def row_heights(page, selector: str) -> list[float]:
    return [row.bounding_box()["height"] for row in page.locator(selector).all()]


@pytest.mark.browser
def test_a_phone_shows_a_placement_and_a_campaign_in_two_lines_before_the_charts(new_page, team_users, campaigns):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=PHONE)
    sign_in(page, "viewer", next_url=f"/campaigns/{campaigns.pk}/")
    rows = page.locator("[data-comparison] tbody tr")
    expect(rows).to_have_count(25)
    heights = row_heights(page, "[data-comparison] tbody tr")
    assert max(heights) < LINES_2, heights
    # Its name, and under it its scans and unique visitors, labelled; the rest is on the placement's own page.
    first = rows.first
    expect(first.locator("td[data-col=scans]")).to_be_visible()
    expect(first.locator("td[data-col=unique]")).to_be_visible()
    expect(first.locator("td[data-col=per100]")).to_be_hidden()
    chart = page.locator("h2", has_text="Scans per day").bounding_box()["y"]
    assert chart < 3 * PHONE["height"], chart  # it was about 9 screens down

    page.goto("/campaigns/")
    heights = row_heights(page, "[data-campaign-rows] tbody tr")
    assert len(heights) == 12 and max(heights) < LINES_2, heights
    assert failures == []


@pytest.mark.browser
def test_a_desktop_keeps_every_column_of_the_placements(new_page, team_users, campaigns):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "viewer", next_url=f"/campaigns/{campaigns.pk}/")
    first = page.locator("[data-comparison] tbody tr").first
    for column in ("per100", "first", "last", "trend"):
        expect(first.locator(f"td[data-col={column}]")).to_be_visible()
    expect(first.locator("[data-location]")).to_be_visible()
    expect(page.locator("[data-comparison] thead")).to_be_visible()
    assert failures == []
