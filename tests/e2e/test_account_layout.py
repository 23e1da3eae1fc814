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
    label, field = page.locator('label[for="token-name"]').bounding_box(), page.get_by_label("Name").bounding_box()
    # The form was classed as one "that sits in a line of text" (form.inline): 5.6 px in from the card's text.
    assert abs(label["x"] - text["x"]) < 0.5 and abs(field["x"] - text["x"]) < 0.5, (text, label, field)
    assert not failures, failures


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_token_form_stands_apart_from_the_tokens_list(new_page, team_users, viewport):
    from qartsite.models import APIToken

    APIToken.objects.create(team_users.owner)
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner", next_url="/accounts/")
    tokens = page.locator("table", has=page.locator("tr[data-token]")).bounding_box()
    label = page.locator('label[for="token-name"]').bounding_box()
    # The form's "Name" label sat on the table's last row, as if it were one more token.
    assert label["y"] - (tokens["y"] + tokens["height"]) >= 16, (tokens, label)
    assert not failures, failures
