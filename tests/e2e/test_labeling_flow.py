"""Human scan labeling in a real browser: the labeling page shows a code, a phone opens its one-time link (a
separate HTTP request, as a phone would make), and the page records it and moves on by itself.

Headless Chromium (Debian's) against pytest-django's live server, so the database is transactional.
"""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from generator.evals import sessions
from generator.models import HumanScanResult, LabelingSession
from tests.clients import IPHONE
from tests.conftest import staff
from tests.e2e.conftest import DESKTOP, sign_in
from tests.generator.factories import job_of_clean_codes

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.django_db(transaction=True)
SHOWN = re.compile(r"/items/\d+/shown$")  # the page says it shows a code: what its phone link records against


@dataclass
class Sitting:
    session: LabelingSession
    page: Page
    run: str  # the path of the session's run page
    failures: list[str]  # what `watched_page` collects, and the page's script errors
    labels: list[str]  # the labels the page sent (POST .../label), as it sent them


@pytest.fixture
def sitting(team_users, new_page) -> Sitting:
    """The owner (staff) at the run page of a new session of two codes (one likely to scan, one not), on a desktop,
    once the page has said it shows the first."""
    owner = staff(team_users.owner)
    job = job_of_clean_codes(team_users.team, owner, (0.9, 0.3))
    session = sessions.create_session(team_users.team, owner, "Browser sitting", job.candidates.all(), 320)
    page, failures = new_page(viewport=DESKTOP)
    page.on("pageerror", lambda error: failures.append(f"JS error: {error}"))
    labels: list[str] = []
    page.on("request", lambda r: labels.append(r.url) if r.method == "POST" and r.url.endswith("/label") else None)
    run = f"/evals/labeling/{session.pk}/run/"
    with page.expect_response(SHOWN) as shown:
        sign_in(page, "owner", next_url=run)
    assert shown.value.ok
    return Sitting(session, page, run, failures, labels)


@pytest.mark.browser
def test_a_phone_hit_advances_the_labeling_page(live_server, sitting):
    from playwright.sync_api import expect

    session, page, base = sitting.session, sitting.page, live_server.url
    expect(page.locator("#progress")).to_contain_text("1 of 2")
    # The live server is on localhost, which no real phone reaches: the page asks for the buttons, yet still moves
    # on when its link is opened (here from this machine).
    expect(page.locator("#state")).to_have_text("Waiting for the buttons…")
    link = page.locator("figcaption code").inner_text()
    assert link.startswith(f"{base}/l/"), link

    # The phone: no cookies, a phone's user agent, straight to the one-time link.
    request = urllib.request.Request(link, headers={"User-Agent": IPHONE})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert "Scanned — recorded" in response.read().decode()

    expect(page.locator("#state")).to_contain_text("Scanned on iPhone")
    expect(page).to_have_url(re.compile(rf"{sitting.run}\?after=0$"))
    expect(page.locator("#progress")).to_contain_text("2 of 2")
    result = HumanScanResult.objects.get()
    assert result.scanned and result.device == "iPhone" and result.session_id == session.pk

    # The second code: the labeler could not scan it, and says so with the keyboard.
    page.keyboard.press("f")
    expect(page).to_have_url(re.compile(rf"/evals/labeling/{session.pk}/done/$"))
    expect(page.locator("#done-title")).to_have_text("Done: Browser sitting")
    assert HumanScanResult.objects.filter(scanned=False).count() == 1

    # A new session's form shows only the fields of the chosen source.
    page.goto("/evals/labeling/")
    expect(page.locator("#id_jobs")).to_be_visible()
    expect(page.locator("#id_sweep")).to_be_hidden()
    expect(page.locator("#id_count")).to_be_hidden()
    page.get_by_label("By sweep").check()
    expect(page.locator("#id_sweep")).to_be_visible()
    expect(page.locator("#id_jobs")).to_be_hidden()
    assert sitting.failures == []


@pytest.mark.browser
def test_the_single_key_shortcuts_can_be_turned_off_and_stay_off(sitting):
    from playwright.sync_api import expect

    page, run, labels = sitting.page, sitting.run, sitting.labels
    toggle = page.get_by_label("Keyboard shortcuts")
    expect(toggle).to_be_checked()  # on for the labelers who rely on them
    toggle.uncheck()
    expect(page.locator("#scanned kbd")).to_be_hidden()  # the buttons stop offering dead keys
    with page.expect_response(SHOWN):
        page.reload()
    expect(toggle).not_to_be_checked()  # remembered in this browser

    for key in ("f", "s", "u", "ArrowRight"):
        page.keyboard.press(key)
    expect(page.locator("#vote-up")).to_have_attribute("aria-pressed", "false")
    # Turned back on, the same key records: had the keys above sent anything, it would have been sent first.
    toggle.check()
    page.locator("#state").click()  # focus off the switch: keys pressed on it are its own
    page.keyboard.press("f")
    expect(page).to_have_url(re.compile(rf"{run}\?after=0$"))
    assert len(labels) == 1 and HumanScanResult.objects.filter(scanned=False).count() == 1
    assert HumanScanResult.objects.count() == 1
    assert sitting.failures == []


@pytest.mark.browser
def test_keys_pressed_on_a_form_control_are_the_controls_not_shortcuts(sitting):
    from playwright.sync_api import expect

    page, run, labels = sitting.page, sitting.run, sitting.labels
    vote_up = page.locator("#vote-up")

    # 1. On the shortcuts switch, with shortcuts on: Space is the switch's, and so is every other key.
    toggle = page.get_by_label("Keyboard shortcuts")
    toggle.focus()
    for key in ("f", "s", "u", "ArrowRight"):
        page.keyboard.press(key)
    page.keyboard.press(" ")
    expect(toggle).not_to_be_checked()
    page.keyboard.press(" ")
    expect(toggle).to_be_checked()
    expect(vote_up).to_have_attribute("aria-pressed", "false")

    # 2. In the notes, the letters are typed.
    notes = page.get_by_label("Notes")
    notes.focus()
    page.keyboard.type("sfud")
    expect(notes).to_have_value("sfud")
    expect(vote_up).to_have_attribute("aria-pressed", "false")
    assert labels == [] and page.url.endswith(run) and HumanScanResult.objects.count() == 0

    # 3. A button keeps them: Space presses "Looks good", S then records the code as scanned, with the notes.
    vote_up.focus()
    page.keyboard.press(" ")
    expect(vote_up).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("s")
    expect(page).to_have_url(re.compile(rf"{run}\?after=0$"))
    result = HumanScanResult.objects.get()
    assert result.scanned and result.aesthetic_vote == 1 and result.notes == "sfud" and len(labels) == 1
    assert sitting.failures == []
