"""Copy buttons when the browser refuses the clipboard (no permission, a frame whose policy forbids it): the button
used to say nothing at all; now it selects the text field beside it (and copies it where the browser lets the page),
and says so.

Headless Chromium (Debian's) against pytest-django's live server; its clipboard is made to refuse, as such a
browser's does.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import PHONE, TIMEOUT_MS, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
REFUSING_CLIPBOARD = """Object.defineProperty(navigator, "clipboard", {value: {writeText: () =>
    Promise.reject(new DOMException("Write permission denied.", "NotAllowedError"))}});"""


@pytest.mark.browser
def test_a_refused_clipboard_still_gets_the_link_selected(live_server, team_users, browser):
    from playwright.sync_api import expect

    from campaigns.models import Campaign, Placement

    expect.set_options(timeout=TIMEOUT_MS)
    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair",
                                       destination="https://shop.example.com/fair")
    placement = Placement.objects.create(campaign=campaign, name="Poster at the gate")
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(REFUSING_CLIPBOARD)
    page = context.new_page()
    try:
        sign_in(page, "owner")
        page.goto(f"/campaigns/placements/{placement.pk}/")
        button = page.locator("button[data-copy]")
        button.click()
        expect(button).to_have_text(re.compile(r"^(Copied|Selected: copy it)$"))
        selected = page.evaluate("""() => { const field = document.activeElement;
            return field.tagName === "INPUT" ? field.value.slice(field.selectionStart, field.selectionEnd) : ""; }""")
        assert selected == button.get_attribute("data-copy")
        expect(button).to_have_text("Copy")  # and back to its label
    finally:
        context.close()
