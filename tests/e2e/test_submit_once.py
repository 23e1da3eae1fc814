"""A double click on a page's form sends it once (static/qart/submit-once.js): it made two campaigns, two jobs or
two invitations, or answered the second press with "this name is taken" for the campaign it had just made.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
def test_a_double_click_on_create_campaign_sends_the_form_once(new_page, team_users):
    from playwright.sync_api import expect

    from campaigns.models import Campaign

    page, failures = new_page()
    sign_in(page, "owner")
    page.goto("/campaigns/new/")
    page.get_by_label("Name").fill("Summer Sale")
    page.get_by_label("Destination").fill("https://shop.example.com/summer")
    held = []  # the POSTs sent, held back until both presses are made: a slow network, as a person double-clicks

    def hold(route):
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    page.route("**/campaigns/new/", hold)
    # Two presses 150 ms apart, as a person double-clicks (two in one task make one request in any browser)
    page.evaluate("""() => {
        const button = document.querySelector("form.form button[type=submit]");
        button.click();
        setTimeout(() => button.click(), 150);
    }""")
    page.wait_for_timeout(600)  # time for a second request to leave, were one sent
    assert len(held) == 1
    for route in held:
        route.continue_()
    expect(page.locator(".messages")).to_contain_text("Summer Sale")
    assert Campaign.objects.filter(name="Summer Sale").count() == 1
    assert failures == []
