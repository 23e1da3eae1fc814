"""A campaign named in one long word (the underscore style many teams name by): its list row keeps its figures in
view, and its page stays within the screen, on a desktop and on a phone. The name wraps instead.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
NAME = "SS26_DE_BER_OOH_Poster_UBahn_Mitte_Alexanderplatz_Q2_Final_v3_approved"
WITHIN = "(el) => { const box = el.getBoundingClientRect(); return box.width > 0 && box.right <= window.innerWidth; }"


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_long_one_word_name_wraps_and_every_figure_stays_in_view(new_page, team_users, viewport):
    from campaigns.models import Campaign, Placement

    campaign = Campaign.objects.create(team=team_users.team, name=NAME, destination="https://example.com/spring")
    Placement.objects.create(campaign=campaign, name=f"{NAME}_flyer", printed_quantity=100)
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner")

    page.goto("/campaigns/")
    row = page.locator("tbody tr", has_text=NAME)
    for label in ("Placements", "Scans", "Unique"):
        cell = row.locator(f'td[data-label="{label}"]')
        assert cell.evaluate(WITHIN), label  # was cut off at the card's edge (desktop) or out of view (phone)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.goto(f"/campaigns/{campaign.pk}/")
    assert page.locator("h1").first.evaluate(WITHIN)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # was 1535 px wide
    assert failures == []
