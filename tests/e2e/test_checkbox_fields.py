"""A form's check box in a real browser, at phone and desktop width: beside its label, its help under both."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def middle(rect: dict) -> float:
    return rect["y"] + rect["height"] / 2


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_check_box_sits_beside_its_label(new_page, team_users, viewport):
    from tests.generator.factories import placement_of

    placement = placement_of(team_users.team)
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner", next_url=f"/campaigns/placements/{placement.pk}/edit/")
    label = page.locator('label[for="id_active"]').bounding_box()
    box = page.locator("#id_active").bounding_box()
    help_text = page.locator("#id_active_helptext").bounding_box()
    # Django writes label, help, box: the box stood alone on a line under two or three lines of help.
    assert abs(middle(box) - middle(label)) < 4 and box["x"] > label["x"] + label["width"], (label, box)
    assert help_text["y"] >= max(label["y"] + label["height"], box["y"] + box["height"]) - 1, (box, help_text)
    assert not failures, failures


@pytest.mark.browser
def test_a_check_box_beside_a_label_longer_than_a_phones_line_stays_in_its_card(new_page, team_users):
    # The label's `auto` column took "Codes' links start HTTPS:// in capitals:" whole: the box, in a column of 0 px,
    # was drawn past the card's edge on the team's page.
    page, failures = new_page(viewport=PHONE, has_touch=True)
    sign_in(page, "owner", next_url=f"/accounts/team/{team_users.team.pk}/")
    box = page.locator("#id_capital_scheme").bounding_box()
    label = page.locator('label[for="id_capital_scheme"]').bounding_box()
    field = page.locator("div:has(> #id_capital_scheme)").bounding_box()
    assert box["x"] + box["width"] <= field["x"] + field["width"], (box, field)
    assert box["x"] > label["x"] + label["width"] and abs(middle(box) - middle(label)) < 4, (label, box)
    assert not failures, failures
