"""The page that offers to restamp a picture made for another link (generator.action_views.use_candidate), in a
real browser at phone and desktop width: its buttons are a row like every other action page's."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_restamp_offers_buttons_are_spaced_like_other_button_rows(new_page, team_users, viewport):
    from playwright.sync_api import expect

    from tests.generator.factories import job_with_candidates, placement_of

    job = job_with_candidates(team_users.team, team_users.owner, count=1, status="done")
    placement = placement_of(team_users.team, name="Harbour gate")
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner", next_url=f"/generate/jobs/{job.pk}/")
    form = page.locator("form.use-form").first
    form.locator("select").select_option(str(placement.pk))
    form.get_by_role("button").click()

    restamp = page.get_by_role("button", name="Restamp it for Harbour gate")
    expect(restamp).to_be_visible()
    first, second = restamp.bounding_box(), page.get_by_role("link", name="Cancel").bounding_box()
    beside = abs(first["y"] - second["y"]) < 1
    gap = second["x"] - (first["x"] + first["width"]) if beside else second["y"] - (first["y"] + first["height"])
    # Bare inline buttons: 4 px of a space apart on a desktop, touching when they wrapped on a phone.
    assert gap >= 8, (viewport, first, second)
    assert beside or viewport == PHONE  # a desktop has room for both on one line
    assert not failures, failures
