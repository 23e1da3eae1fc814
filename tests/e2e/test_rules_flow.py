"""Destination rules in a real browser: an editor sets an iOS destination, a schedule and an A/B split on a
placement's edit page, sees them in words on the placement page, the short link sends an iPhone to the App Store,
and one click in the destination history takes the rules back.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, Placement
from tests.clients import IPHONE
from tests.e2e.conftest import TIMEOUT_MS, sign_in, watched_page

pytestmark = pytest.mark.django_db(transaction=True)
APP_STORE = "https://apps.apple.com/app/id123"


@pytest.mark.browser
def test_set_rules_follow_them_and_revert(live_server, team_users, browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    base = live_server.url
    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair",
                                       destination="https://shop.example.com/fair")
    placement = Placement.objects.create(campaign=campaign, name="Poster at the gate")

    context, page, failures = watched_page(browser, base, TIMEOUT_MS, viewport={"width": 1280, "height": 1000})
    try:
        sign_in(page, "owner")

        # 1. The rules, on the placement's edit page.
        page.goto(f"/campaigns/placements/{placement.pk}/edit/")
        rules = page.locator("#destination-rules")
        rules.get_by_label("iOS destination").fill(APP_STORE)
        rules.get_by_label("Leads there from").fill("2026-01-01T09:00")
        rules.get_by_label("A/B split").fill("3 https://shop.example.com/a\n1 https://shop.example.com/b")
        page.get_by_role("button", name="Save").click()
        expect(page).to_have_url(f"{base}/campaigns/placements/{placement.pk}/")
        expect(page.locator("dl.facts")).to_contain_text(f"iOS → {APP_STORE}; from 1 Jan 2026 09:00 (UTC); "
                                                         "split 75% https://shop.example.com/a, "
                                                         "25% https://shop.example.com/b")

        # 2. The short link follows them: an iPhone goes to the App Store.
        response = context.request.get(f"/r/{placement.slug}", headers={"User-Agent": IPHONE}, max_redirects=0)
        assert response.status == 302 and response.headers["location"].startswith(f"{APP_STORE}?utm_source=qr")

        # 3. One click in the history takes them back.
        history = page.locator("#destination-changes")
        expect(history).to_contain_text("set of destination rules")
        history.get_by_role("button", name="Revert").click()
        expect(page.locator("body")).to_contain_text("Reverted: the set of destination rules is empty again.")
        expect(page.locator("dl.facts")).not_to_contain_text("iOS →")
        response = context.request.get(f"/r/{placement.slug}", headers={"User-Agent": IPHONE}, max_redirects=0)
        assert response.headers["location"].startswith("https://shop.example.com/fair?")
        assert not failures, failures
    finally:
        context.close()
