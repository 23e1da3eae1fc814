"""The verifier alignment page on a phone, in a real browser: its "By device and app" table, six columns wide, ran
31 px past a 390 px screen; its rows stack now, as the site's other wide tables do.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PHONE, sign_in
from tests.generator.factories import job_of_clean_codes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def labelled(team_users):
    from generator.evals import sessions
    from generator.models import HumanScanResult
    from tests.conftest import staff

    staff(team_users.viewer)
    probabilities = [0.95, 0.9, 0.85, 0.8, 0.3, 0.2, 0.15, 0.1]
    job = job_of_clean_codes(team_users.team, team_users.owner, probabilities)
    session = sessions.create_session(team_users.team, team_users.owner, "Friday", job.candidates.all(), 300)
    for candidate in job.candidates.all():
        for device in ("iPhone 15 Pro Max", "Samsung Galaxy S24 Ultra"):
            HumanScanResult.objects.create(session=session, candidate=candidate, device=device,
                                           app="Google Lens", scanned=candidate.scan_probability > 0.5)
    return session


@pytest.mark.browser
def test_the_alignment_page_fits_a_phone(live_server, team_users, new_page, labelled):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=PHONE)
    sign_in(page, "viewer", next_url="/evals/alignment/")
    expect(page.locator("#groups")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    table = page.locator("#groups").bounding_box()
    assert table["x"] >= 0 and table["x"] + table["width"] <= PHONE["width"], table
    # Each figure keeps its column's name beside it once the header row is gone.
    expect(page.locator("#groups td[data-label='Scans']").first).to_be_visible()
    assert failures == []
