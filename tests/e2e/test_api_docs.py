"""The API docs page (`/api/docs/`) in a real browser, once Swagger UI has drawn the schema into it."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DESKTOP, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
def test_it_has_one_title(new_page, team_users):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", next_url="/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible()  # Swagger UI has drawn the schema
    headings = page.locator("h1:visible, h2:visible").all_inner_texts()
    # Swagger UI's "qart API 1.0.0 OAS 3.0" sat two lines under the page's own "REST API".
    assert [text for text in headings if "API" in text] == ["REST API"], headings
    expect(page.get_by_role("link", name="/api/schema/")).to_be_visible()  # the schema's link stays
    assert not failures, failures


@pytest.mark.browser
def test_it_says_how_to_send_a_token_once(new_page, team_users):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", next_url="/api/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
    # The page's intro said it, and the schema's description right under it said it again.
    assert page.locator("#content").inner_text().count("Authorization: Token <token>") == 1
    assert not failures, failures
