"""The site's header in a real browser: one line on a phone with the links under a Menu button, staff tools apart,
and no page wider than the screen."""

from __future__ import annotations

import pytest

from tests.conftest import staff
from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
def test_the_header_is_one_line_on_a_phone_and_opens_a_menu(new_page, team_users):
    from playwright.sync_api import expect

    staff(team_users.owner)
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "owner")

    header = page.locator("header.topbar")
    assert header.bounding_box()["height"] < 70  # was ~270 px: three wrapped lines of links
    expect(page.get_by_role("link", name="Generate")).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(page.get_by_role("link", name="Generate")).to_be_visible()
    expect(page.get_by_role("link", name="Admin")).to_be_hidden()  # staff tools stay folded in their own menu
    page.locator(".nav-staff summary").click()
    expect(page.get_by_role("link", name="Admin")).to_be_visible()
    for path in ("/campaigns/", "/generate/", "/account/"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    assert failures == []


@pytest.mark.browser
def test_without_script_a_phone_shows_the_links_and_no_menu_button(new_page, team_users):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=PHONE, java_script_enabled=False)
    sign_in(page, "owner")
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()  # it would open nothing
    for name in ("Campaigns", "Generate", "owner"):
        expect(page.locator("header").get_by_role("link", name=name, exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert failures == []


@pytest.mark.browser
def test_the_links_sit_in_one_row_on_a_desktop(new_page, team_users):
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    assert page.get_by_role("link", name="Generate").is_visible()
    assert not page.locator(".nav-button").is_visible()
    assert page.locator("header.topbar").bounding_box()["height"] < 80
    assert failures == []
