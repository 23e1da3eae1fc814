"""Long A/B destinations on a phone: the campaign page's destination rules card, its title block and its history
keep each address to one line (the whole address in the text and the title, in full once focused) instead of
wrapping it over a dozen lines, and the page stays within the screen. On a desktop the card keeps one line a rule.

Headless Chromium (Debian's) against pytest-django's live server; the split is set on the campaign's edit page and
its scans are stored the way the drainer stores them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e.conftest import PHONE, TIMEOUT_MS, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
WIDE_DESKTOP = {"width": 1440, "height": 900}
A = ("https://shop.example.com/landing/spring-fair-2027/variant-a?utm_content=hero-banner-with-the-big-yellow-button"
     "&lang=en-GB&ref=print")
B = ("https://shop.example.com/landing/spring-fair-2027/variant-b?utm_content=hero-banner-with-the-small-green-link"
     "&lang=en-GB&ref=print")
LINES = """(el) => { const style = getComputedStyle(el); const line = parseFloat(style.lineHeight)
                                                         || 1.2 * parseFloat(style.fontSize);
                     return el.getBoundingClientRect().height / line; }"""


@pytest.mark.browser
def test_long_ab_destinations_stay_one_line_on_a_phone(live_server, team_users, browser):
    from playwright.sync_api import expect

    from campaigns import rules
    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event

    expect.set_options(timeout=TIMEOUT_MS)
    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair",
                                       destination="https://shop.example.com/spring-fair")
    poster = Placement.objects.create(campaign=campaign, name="Poster", printed_quantity=200)
    now = timezone.now()
    store_events([scan_event(poster.pk, now - timedelta(minutes=n), device_class="mobile", os="iOS",
                             visitor_key=f"{n:032d}", rule=rules.variant_rule(A if n % 3 else B))
                  for n in range(18)])

    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, "owner")
        page.goto(f"/campaigns/{campaign.pk}/edit/")
        page.get_by_label("A/B split").fill(f"60 {A}\n40 {B}")
        page.get_by_role("button", name="Save").click()
        expect(page).to_have_url(f"{live_server.url}/campaigns/{campaign.pk}/")

        # The rules card: "A/B:" and the address on one line, the address whole in its text and its title.
        addresses = page.locator("#destination-rules .url-clip")
        expect(addresses).to_have_count(2)
        for index, url in enumerate((A, B)):
            address = addresses.nth(index)
            assert address.text_content() == url and address.get_attribute("title") == url
            assert address.evaluate(LINES) < 1.5, url  # was 13 lines at 390 px
        # Focused (a tap, or Tab), it shows the whole address.
        addresses.first.focus()
        assert addresses.first.evaluate(LINES) > 2
        addresses.first.blur()
        # Its figures sit under it, each with its name.
        scans = page.locator("#destination-rules tbody tr").first.locator("td").nth(1)
        expect(scans).to_have_text("12")
        assert scans.evaluate("(cell) => getComputedStyle(cell, '::before').content") == '"Scans"'

        # The title block's rules in words and the history's values: short too.
        assert page.locator("[data-campaign-rules]").evaluate(LINES) < 2.5
        for value in page.locator("#destination-changes .url-clip").all():
            assert value.evaluate(LINES) < 1.5
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # "9.0 · 200 printed" per 100 printed reads as one value, not "9.0" in the middle and the rest at the edge.
        gap = page.locator(f'tr[data-placement="{poster.name}"] [data-col="per100"]').evaluate(
            """(cell) => { const range = document.createRange(); range.selectNodeContents(cell.firstChild);
                           return cell.querySelector("span").getBoundingClientRect().left
                                  - range.getBoundingClientRect().right; }""")
        assert gap < 12, gap

        # A desktop: still one line a rule, and the card no wider than the page.
        page.set_viewport_size(WIDE_DESKTOP)
        for index in range(2):
            assert addresses.nth(index).evaluate(LINES) < 1.5
        card, table = (page.locator(selector).bounding_box()
                       for selector in ("section#destination-rules", "#destination-rules table"))
        assert table["x"] + table["width"] <= card["x"] + card["width"]
    finally:
        context.close()
