"""A campaign's share link in a real browser: an editor makes one, a fresh logged-out browser opens it and reads the
report (with a date range of its own) and no personal data, the editor revokes it, and the link opens nothing.

Headless Chromium (Debian's) against pytest-django's live server; scans are stored the way the drainer stores them.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.e2e.conftest import PHONE, TIMEOUT_MS, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

VISITOR_KEY = "4f1c0ffee4f1c0ffee4f1c0ffee4f1c0"


@pytest.mark.browser
def test_a_share_link_opens_the_report_logged_out_until_revoked(live_server, team_users, browser, tmp_path):
    from playwright.sync_api import expect

    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event

    cache.clear()  # the shared page's rate is counted per address in the cache
    team_users.teammate.email = "teammate@example.com"
    team_users.teammate.save()
    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/")
    gate = Placement.objects.create(campaign=campaign, name="Poster at the gate", location="Quay 4")
    flyer = Placement.objects.create(campaign=campaign, name="Flyer")
    now = timezone.now()
    store_events([scan_event(gate.pk, now - timedelta(days=days, minutes=n), device_class="mobile", os="iOS",
                             visitor_key=VISITOR_KEY if n == 0 else f"{days:016d}{n:016d}", country="FR")
                  for days in (0, 1, 20) for n in range(2)]
                 + [scan_event(flyer.pk, now - timedelta(days=2), device_class="desktop", visitor_key="f" * 32)])

    expect.set_options(timeout=TIMEOUT_MS)
    editor = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 1000})
    stranger = browser.new_context(base_url=live_server.url, viewport=PHONE)
    for context in (editor, stranger):
        context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    shots = tmp_path / "screenshots"
    shots.mkdir()

    try:
        # 1. The editor makes a link for the agency from the campaign page.
        page = editor.new_page()
        sign_in(page, "teammate")
        page.get_by_role("link", name="Harbour festival").click()
        page.get_by_role("link", name="Share report").click()
        page.fill("#id_label", "Agency Blue")
        page.fill("#id_days", "7")
        page.get_by_role("button", name="Make link").click()
        link = page.get_by_label("Share link").input_value()
        assert re.fullmatch(rf"{re.escape(live_server.url)}/campaigns/shared/[\w-]{{40,}}/", link), link
        expect(page.locator("#links")).to_contain_text("Agency Blue")
        expect(page.locator("#links")).to_contain_text("live")

        # 2. A stranger's browser, never signed in, opens it.
        shared = stranger.new_page()
        shared.on("pageerror", lambda error: errors.append(str(error)))
        response = shared.goto(link)
        assert response.status == 200 and response.headers["cache-control"] == "no-store"
        expect(shared.get_by_role("heading", name="Harbour festival")).to_be_visible()
        expect(shared.locator('[data-tile="scans"]')).to_have_text("7")  # the last 30 days
        expect(shared.locator('tr[data-placement="Poster at the gate"] [data-col="scans"]')).to_have_text("6")
        expect(shared.locator('tr[data-placement="Flyer"] [data-col="scans"]')).to_have_text("1")
        drawn = shared.evaluate("() => [...document.querySelectorAll('canvas[data-chart]')]"
                                ".map(c => Boolean(window.Chart && window.Chart.getChart(c)))")
        assert drawn and all(drawn), drawn
        html = shared.content()
        for private in (VISITOR_KEY, "f" * 32, "teammate", "Acme", "Agency Blue", gate.slug, flyer.slug,
                        "/r/", "Sign out", "/campaigns/" + str(campaign.pk)):
            assert private not in html, f"the shared report shows {private!r}"
        shared.screenshot(path=shots / "1-shared.png", full_page=True)

        # Its own date range: the preset keeps the stranger on the shared link.
        shared.get_by_role("link", name="7 days").click()
        expect(shared).to_have_url(re.compile(re.escape(link) + r"\?range=7d$"))
        expect(shared.locator('[data-tile="scans"]')).to_have_text("5")
        expect(shared.locator('tr[data-placement="Poster at the gate"] [data-col="scans"]')).to_have_text("4")

        # 3. The editor revokes it; the stranger's next load shows no report and names no campaign.
        page.once("dialog", lambda dialog: dialog.accept())  # "Revoke this link? …"
        page.get_by_role("button", name="Revoke").click()
        expect(page.locator("#links")).to_contain_text("revoked")
        response = shared.reload()
        assert response.status == 410
        expect(shared.get_by_role("heading", name="This link does not open a report")).to_be_visible()
        assert "Harbour festival" not in shared.content()
        shared.screenshot(path=shots / "2-revoked.png", full_page=True)

        # The link's pages keep other sites out of the Referer without breaking their forms: the signed-in editor
        # signs out from one (CSRF refuses a form sent with "Origin: null", as no-referrer would make it).
        page.goto(link)
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("link", name="Sign in").first).to_be_visible()
        assert "CSRF" not in page.content()
        assert not errors, errors
    finally:
        editor.close()
        stranger.close()
        cache.clear()


@pytest.mark.browser
def test_a_report_never_scanned_says_so_in_one_line_instead_of_empty_charts(live_server, team_users, new_page,
                                                                            tmp_path):
    from playwright.sync_api import expect

    from campaigns import shares
    from campaigns.models import Campaign, Placement

    cache.clear()  # the shared page's rate is counted per address in the cache
    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/")
    Placement.objects.create(campaign=campaign, name="Poster at the gate")
    _, token = shares.create(campaign, team_users.teammate)
    page, failures = new_page(viewport=PHONE)  # a stranger, never signed in
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(f"/campaigns/shared/{token}/")
        note = page.locator("[data-no-scans-yet]")
        expect(note).to_have_text(re.compile(r"^\s*No scans yet\. Once people scan this campaign's codes"))
        assert note.get_by_role("link").count() == 0  # nothing its reader could do
        expect(page.locator('[data-tile="scans"]')).to_have_text("0")
        expect(page.locator('tr[data-placement="Poster at the gate"]')).to_be_visible()  # the table stays
        assert page.locator("canvas").count() == 0 and not any("chart.umd" in url for url in requested), requested
        page.screenshot(path=tmp_path / "shared-never-scanned.png", full_page=True)
        assert not errors and not failures, (errors, failures)
    finally:
        cache.clear()
