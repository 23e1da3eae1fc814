"""A refused edit on a phone: the destination rules sit screens below where the page opens again, so the form starts
with a summary that says it was not saved and links to each field at fault; focus starts on it, the link lands on
the field with its message in view, and what was typed is still there.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PHONE, TIMEOUT_MS, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
SPLIT = "60 https://shop.example.com/a\nforty https://shop.example.com/b"


@pytest.mark.browser
def test_a_refused_placement_edit_says_so_at_the_top_and_leads_to_the_field(live_server, team_users, browser):
    from playwright.sync_api import expect

    from campaigns.models import Campaign, Placement

    expect.set_options(timeout=TIMEOUT_MS)
    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair",
                                       destination="https://shop.example.com/fair")
    placement = Placement.objects.create(campaign=campaign, name="Poster at the gate")
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, "teammate")
        page.goto(f"/campaigns/placements/{placement.pk}/edit/")
        page.get_by_label("A/B split").fill(SPLIT)
        page.get_by_role("button", name="Save").click()

        summary = page.locator("#form-errors")
        expect(summary).to_be_focused()
        expect(summary).to_be_in_viewport()
        expect(summary).to_contain_text("Not saved yet")
        expect(page.get_by_label("A/B split")).to_have_value(SPLIT)  # nothing typed is lost

        summary.get_by_role("link", name="A/B split").click()
        expect(page.get_by_label("A/B split")).to_be_in_viewport()
        expect(page.locator("#destination-rules .errorlist", has_text="Line 2")).to_be_in_viewport()
        assert Placement.objects.get(pk=placement.pk).rules == {}
    finally:
        context.close()


@pytest.mark.browser
def test_a_destination_typed_without_https_is_saved_with_it(new_page, team_users):
    # type=url: the browser stopped the form with its own "Please enter a URL.", which said nothing of what to add.
    from playwright.sync_api import expect

    from campaigns.models import Campaign

    campaign = Campaign.objects.create(team=team_users.team, name="Winter sale",
                                       destination="https://shop.example.com/")
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "teammate", next_url=f"/campaigns/{campaign.pk}/edit/")
    page.locator("#id_destination").fill("shop.example.com/winter")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_contain_text("Winter sale")
    expect(page.locator(".page-head")).to_contain_text("https://shop.example.com/winter")
    assert Campaign.objects.get(pk=campaign.pk).destination == "https://shop.example.com/winter"
    assert failures == []
