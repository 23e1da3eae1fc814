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


# An e-mail address as a username, as long as a team's tool makes them: one unbroken word.
LONG_PERSON = ("marketing.lead.spring.campaign.berlin.office.2026.q2.outdoor.posters.team"
               "@a-very-long-agency-domain-name-for-berlin.example.com")


@pytest.mark.browser
def test_a_long_username_is_clipped_in_the_lists_that_name_people_with_the_whole_in_a_title(new_page, team_users):
    # The labeling sessions' "By" and the eval runs' "Started … by" cells took the name whole: one unbroken word
    # that widened the table past its card at 1280 px (by 79 and 87 px), the row's buttons cut off.
    from generator.models import EvalRun, LabelingSession
    from tests.conftest import make_staff

    person = team_users.owner
    person.username = LONG_PERSON
    person.set_password(f"pw-{LONG_PERSON}-1")  # what sign_in types
    person.save(update_fields=["username", "password"])
    make_staff(person)  # the eval pages are staff's
    LabelingSession.objects.create(name="Office sitting", team=team_users.team, created_by=person)
    EvalRun.objects.create(name="Sweep", team=team_users.team, created_by=person)
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, LONG_PERSON)
    for url in ("/evals/labeling/", "/evals/runs/"):
        page.goto(url)
        table = page.locator("table.table").first
        assert table.evaluate("(el) => el.scrollWidth <= el.parentElement.clientWidth"), url
        assert table.locator("td").last.evaluate(WITHIN), url
        assert table.locator(f'.person[title="{LONG_PERSON}"]').count() == 1, url
    assert failures == []


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_long_username_in_the_header_is_clipped_with_the_whole_in_its_title(new_page, team_users, viewport):
    # The header's account link took a 127-character username whole: one unbroken word that filled the nav's line
    # on a desktop (the links wrapped under it) and ran past a phone's screen in the open menu.
    person = team_users.owner
    person.username = LONG_PERSON
    person.set_password(f"pw-{LONG_PERSON}-1")  # what sign_in types
    person.save(update_fields=["username", "password"])
    page, failures = new_page(viewport=viewport)
    sign_in(page, LONG_PERSON)
    page.goto("/campaigns/")
    if viewport == PHONE:
        page.click("#nav-toggle")
    who = page.locator("a.who")
    assert LONG_PERSON in who.get_attribute("title")
    assert who.evaluate(WITHIN)
    assert who.evaluate("(el) => el.scrollWidth > el.clientWidth")  # clipped, not laid out whole
    if viewport == DESKTOP:
        tops = page.locator("#main-nav > a, #main-nav > form").evaluate_all(
            "(els) => els.map((el) => Math.round(el.getBoundingClientRect().top))")
        assert max(tops) - min(tops) <= 4, tops  # the links, the name and "Sign out" on one line
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert failures == []
