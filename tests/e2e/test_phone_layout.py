"""The campaign pages on a phone, in a real browser: a placement's figures come before its print files, the campaign
page's actions stay a short block (the rest under "More actions", opened from the keyboard), and date fields are
targets a finger can hit.

Headless Chromium (Debian's) against pytest-django's live server; scans are stored the way the drainer stores them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e.conftest import PHONE, sign_in, watched_page

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_MS = 15_000
DESKTOP = {"width": 1280, "height": 900}
TAP = 44  # CSS px, WCAG 2.5.5's smallest target


@pytest.fixture
def poster(team_users):
    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event

    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/")
    poster = Placement.objects.create(campaign=campaign, name="Poster at the gate")
    store_events([scan_event(poster.pk, timezone.now() - timedelta(days=days), visitor_key=f"{days:032d}")
                  for days in (0, 1, 5)])
    return poster


def top(page, selector: str) -> float:
    return page.locator(selector).first.bounding_box()["y"]


@pytest.mark.browser
@pytest.mark.parametrize(("viewport", "figures_first"), [(PHONE, True), (DESKTOP, False)])
def test_a_phone_shows_a_placements_figures_before_its_print_files(live_server, team_users, browser, poster,
                                                                   viewport, figures_first):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context, page, failures = watched_page(browser, live_server.url, TIMEOUT_MS, viewport=viewport)
    try:
        sign_in(page, "viewer", next_url=f"/campaigns/placements/{poster.pk}/")
        expect(page.locator(".tiles")).to_be_visible()
        figures = top(page, ".tiles")
        files = [top(page, "h2:text-is('Short link')"), top(page, "#print")]
        # On a wide screen the code and its print files keep their place above the figures.
        assert all((figures < y) == figures_first for y in files), (figures, files)
        assert failures == []
    finally:
        context.close()


@pytest.mark.browser
def test_a_phone_shows_an_editor_a_short_block_of_campaign_actions(live_server, team_users, browser, poster):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context, page, failures = watched_page(browser, live_server.url, TIMEOUT_MS, viewport=PHONE)
    try:
        sign_in(page, "teammate", next_url=f"/campaigns/{poster.campaign_id}/")
        actions = page.locator(".page-head > .actions")
        expect(page.get_by_role("link", name="Edit campaign")).to_be_visible()
        expect(page.get_by_role("link", name="Import placements (CSV)")).to_be_hidden()
        # Seven full-width buttons stood about 300 px high: two rows now.
        assert actions.bounding_box()["height"] < 2 * TAP + 20, actions.bounding_box()

        # The keyboard opens the rest: Enter on "More actions", which says it is open.
        more = page.locator("[data-more-actions] > summary")
        more.focus()
        page.keyboard.press("Enter")
        expect(page.locator("[data-more-actions]")).to_have_attribute("open", "")
        for name in ("Download scans (CSV, bots marked)", "Import placements (CSV)", "Generate for every placement"):
            expect(page.get_by_role("link", name=name)).to_be_visible()
        expect(page.get_by_role("button", name="Archive campaign")).to_be_visible()
        assert failures == []
    finally:
        context.close()


@pytest.mark.browser
def test_date_fields_are_at_least_44_px_on_a_phone(live_server, team_users, browser, poster):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context, page, failures = watched_page(browser, live_server.url, TIMEOUT_MS, viewport=PHONE)
    try:
        sign_in(page, "teammate", next_url=f"/campaigns/{poster.campaign_id}/")
        # The campaign page: the range picker's from and to, and the new placement's day it went up.
        for url, count in ((f"/campaigns/{poster.campaign_id}/", 3),
                           (f"/campaigns/{poster.campaign_id}/edit/", 2),  # the campaign's first and last day
                           (f"/campaigns/placements/{poster.pk}/edit/", 1)):  # the day it went up
            page.goto(url)
            fields = page.locator('input[type="date"]')
            expect(fields).to_have_count(count)
            for field in fields.all():
                box = field.bounding_box()
                assert box["width"] >= TAP and box["height"] >= TAP, (url, field.get_attribute("name"), box)
        assert failures == []
    finally:
        context.close()
