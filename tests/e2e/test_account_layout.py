"""The account page in a real browser, at phone and desktop width."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_token_form_lines_up_with_the_rest_of_its_card(new_page, team_users, viewport):
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner", next_url="/accounts/")
    card = page.locator("section", has=page.get_by_role("heading", name="API tokens"))
    text = card.locator("p").first.bounding_box()
    label, field = page.get_by_text("Name", exact=True).bounding_box(), page.get_by_label("Name").bounding_box()
    # The form was classed as one "that sits in a line of text" (form.inline): 5.6 px in from the card's text.
    assert abs(label["x"] - text["x"]) < 0.5 and abs(field["x"] - text["x"]) < 0.5, (text, label, field)
    assert not failures, failures
