"""Every dashboard page's head (`.page-head`: the title block and its actions) on a phone: the title on the whole
width, the actions in rows of compact buttons under it, each label on one line, and no page wider than the screen.

Laid out as a desktop's wrapping row, the heads read as a jumble at 390 px: the team and account pages' buttons sat
beside a short title, the overview's three buttons stood one a row (its download's label broken inside its pill, the
button 59 px tall), and a placement's five took four rows.

Headless Chromium (Debian's) against pytest-django's live server; scans are stored the way the drainer stores them.
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e.conftest import PHONE, sign_in
from tests.generator.factories import job_with_candidates

pytestmark = pytest.mark.django_db(transaction=True)

TAP = 44  # CSS px: a finger's button (`pointer: coarse`), one line of label
# The head's title block and its visible top-level actions (a job's state too), each with its box, and how wide the
# page is. Buttons inside "More actions" are left out: they show only once it is opened.
HEAD = """() => {
    const head = document.querySelector("main .page-head"), title = head.firstElementChild.getBoundingClientRect();
    const actions = [...head.querySelectorAll(
            ":scope > :not(:first-child):is(.button, .pill), :scope > .actions > .button, " +
            ":scope > .actions > form .button, :scope > .actions > details > summary")]
        .filter(el => el.checkVisibility())
        .map(el => { const box = el.getBoundingClientRect();
                     return {name: el.textContent.trim(), top: Math.round(box.top), height: box.height}; });
    return {titleBottom: title.bottom, actions, pageWidth: document.documentElement.scrollWidth};
}"""


@pytest.fixture
def pages(team_users) -> dict[str, str]:
    """The dashboard's pages with a head, by name: a scanned campaign's and placement's, its shares, bulk pages,
    the team's webhooks, the generation pages with a finished job, the team and the account."""
    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event

    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/harbour")
    poster = Placement.objects.create(campaign=campaign, name="Poster at the gate", location="Harbour")
    store_events([scan_event(poster.pk, timezone.now() - timedelta(days=days), visitor_key=f"{days:032d}")
                  for days in (0, 1, 5)])
    job = job_with_candidates(team_users.team, team_users.owner, count=2, status="done")
    team = team_users.team.pk
    return {"overview": "/campaigns/", "campaign": f"/campaigns/{campaign.pk}/",
            "placement": f"/campaigns/placements/{poster.pk}/", "shares": f"/campaigns/{campaign.pk}/shares/",
            "import": f"/campaigns/{campaign.pk}/placements/import/",
            "bulk generate": f"/campaigns/{campaign.pk}/generate/", "webhooks": f"/campaigns/teams/{team}/webhooks/",
            "generate": "/generate/", "jobs": "/generate/jobs/", "job": f"/generate/jobs/{job.pk}/",
            "team": f"/accounts/team/{team}/", "account": "/accounts/"}


@pytest.mark.browser
def test_every_pages_head_puts_its_title_first_and_its_actions_in_rows_under_it_on_a_phone(new_page, team_users,
                                                                                          pages):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=PHONE, has_touch=True)  # a finger: 44 px buttons, as on a phone
    sign_in(page, "owner")  # an owner: every action a head can hold
    jumbled = []
    for name, url in pages.items():
        page.goto(url)
        expect(page.locator("main .page-head h1")).to_be_visible()
        head = page.evaluate(HEAD)
        actions = head["actions"]
        if head["pageWidth"] > PHONE["width"]:
            jumbled.append((name, "wider than the screen", head["pageWidth"]))
        # Under the title block, never beside it (the team page's two buttons sat beside "Acme").
        jumbled += [(name, "beside the title", action) for action in actions if action["top"] < head["titleBottom"]]
        # One line of label each: two made the overview's download button 59 px tall.
        jumbled += [(name, "label on two lines", action) for action in actions if action["height"] > TAP + 0.5]
        # Rows of buttons, not one a row: at most one row for every two (the placement's five took four rows).
        rows = len({action["top"] for action in actions})
        if rows > math.ceil(len(actions) / 2):
            jumbled.append((name, f"{len(actions)} buttons in {rows} rows", actions))
    assert jumbled == [], jumbled
    assert failures == []
