"""Dates in the house formats ("6 Dec 2026", "6 Dec 2026 14:05") in a real browser: a date in a card's line of
details is never broken over two lines, on a phone or a desktop."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
# Each date shown in the page's main part, with the number of lines it is drawn on.
DATE_LINES = r"""() => {
    const date = /\d{1,2} [A-Z][a-z]{2} \d{4}( \d\d:\d\d)?/g;
    const walker = document.createTreeWalker(document.querySelector("main"), NodeFilter.SHOW_TEXT);
    const found = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const match of node.textContent.matchAll(date)) {
            const range = document.createRange();
            range.setStart(node, match.index);
            range.setEnd(node, match.index + match[0].length);
            const tops = new Set([...range.getClientRects()].map(box => Math.round(box.top)));
            if (tops.size) found.push([match[0], tops.size]);
        }
    }
    return found;
}"""


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_jobs_date_stays_on_one_line(new_page, team_users, viewport):
    from tests.generator.factories import job_with_candidates

    for _ in range(2):
        job_with_candidates(team_users.team, team_users.owner, count=1, status="done")
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner", next_url="/generate/jobs/")
    for path in ("/generate/jobs/", "/generate/"):  # the job cards; the generation page's earlier codes
        page.goto(path)
        shown = page.evaluate(DATE_LINES)
        # "Job 1 · 3 candidates · 6 / Dec 2026 18:27", "qart.example/r/AbC123 · 6 / Dec 2026"
        assert shown and all(lines == 1 for _, lines in shown), (path, shown)
    assert not failures, failures
