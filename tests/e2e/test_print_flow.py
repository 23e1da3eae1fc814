"""The print flow in a real browser: pick artwork with the thumbnail picker (refused, then printed anyway with a
reason), see the red state with print downloads off, pick passing art, and download a PDF at its physical size.

Headless Chromium (Debian's) against pytest-django's live server; no worker is needed (the art is made in the test).
"""

from __future__ import annotations

import re
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from campaigns.models import Campaign, Placement
from tests.campaigns.conftest import make_art
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)
TALL_DESKTOP = {"width": 1280, "height": 1000}


@pytest.mark.browser
def test_pick_refuse_print_anyway_then_print_a_pdf_at_size(live_server, team_users, new_page):
    from playwright.sync_api import expect

    base = live_server.url
    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair", destination=f"{base}/healthz")
    placement = Placement.objects.create(campaign=campaign, name="Poster at the gate", printed_width_cm=20)
    link = f"{base}/r/{placement.slug}"
    failing = make_art(team_users.team, team_users.owner, link, verdict="fail", probability=0.0)
    passing = make_art(team_users.team, team_users.owner, link)

    page, failures = new_page(viewport=TALL_DESKTOP, accept_downloads=True)
    sign_in(page, "owner")

    # The picker: thumbnails, the passing one first; the failing one is refused without a reason.
    page.goto(f"/campaigns/placements/{placement.pk}/edit/")
    cards = page.locator(".picker label[data-candidate]")
    expect(cards).to_have_count(2)
    expect(cards.first).to_have_attribute("data-candidate", str(passing.pk))
    cards.nth(1).locator("input").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".errorlist")).to_contain_text("does not pass the scan check")

    page.locator(f'.picker label[data-candidate="{failing.pk}"] input').check()
    page.get_by_label("Print anyway").check()
    page.get_by_label("Why print it anyway").fill("proof for the client")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(f"{base}/campaigns/placements/{placement.pk}/")
    expect(page.locator("[data-will-not-scan]")).to_contain_text("Will not scan — do not print")
    expect(page.locator("#print")).to_contain_text("Print downloads are off")
    expect(page.locator("#print a")).to_have_count(0)

    # Passing art: the red state goes, and a PDF of the chosen width downloads with its TrimBox at 20 cm.
    page.goto(f"/campaigns/placements/{placement.pk}/edit/")
    page.locator(f'.picker label[data-candidate="{passing.pk}"] input').check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-will-not-scan]")).to_have_count(0)
    expect(page.locator("[data-preflight-summary]")).to_contain_text(re.compile(r"Scans from .* at 20 cm wide"))
    # The test art is small (upscaled 9x at 20 cm): the page says so before the file, which is one click away.
    page.get_by_role("link", name="PDF · 20 cm (7.87 in)").click()
    expect(page.locator("#print-cautions")).to_contain_text("edges will look soft up close")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download it anyway").click()
    data = Path(info.value.path()).read_bytes()
    trim = pdfium.PdfDocument(data)[0].get_trimbox()
    assert (trim[2] - trim[0]) / 72 * 25.4 == pytest.approx(200, abs=0.01)
    assert not failures, failures


@pytest.mark.browser
def test_a_large_print_file_downloads_by_itself_once_a_worker_made_it(live_server, team_users, new_page, print_queue):
    # The live server runs in this process: the test plays the worker, running the queued job itself.
    from playwright.sync_api import expect

    from campaigns import print_builds

    base = live_server.url
    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair", destination=f"{base}/healthz")
    placement = Placement.objects.create(campaign=campaign, name="Banner", printed_width_cm=20)
    placement.artwork = make_art(team_users.team, team_users.owner, f"{base}/r/{placement.slug}")
    placement.save()

    page, failures = new_page(viewport={"width": 1280, "height": 600}, accept_downloads=True)
    sign_in(page, "owner")
    page.goto(f"/campaigns/placements/{placement.pk}/")
    page.get_by_role("link", name="PDF · 20 cm (7.87 in)").click()
    expect(page.locator("#print-making")).to_contain_text("being made in the background")
    # Where the person is looking: the page is drawn again at its top, and the note sat far below
    expect(page.locator("#print-making")).to_be_in_viewport()
    assert page.url.startswith(f"{base}/campaigns/placements/{placement.pk}/print?")
    (job,) = print_queue.jobs
    assert print_builds.build(*job.args).startswith("made ")  # the page asks again within 5 s
    # Ready, with something to read first (the test art is small): the page says it, the file one click away.
    expect(page.locator("#print-cautions")).to_contain_text("edges will look soft up close")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download it anyway").click()
    assert print_queue.count == 1  # the job this test ran itself: the script's questions (HEAD) queued no other
    trim = pdfium.PdfDocument(Path(info.value.path()).read_bytes())[0].get_trimbox()
    assert (trim[2] - trim[0]) / 72 * 25.4 == pytest.approx(200, abs=0.01)
    assert not failures, failures
