"""The main flow in a real browser: sign in, create a campaign and a placement, generate art for it with a real
worker on the tiny model, pick a candidate, download it, scan the short link and see the scan counted.

Headless Chromium (Debian's) against pytest-django's live server; the worker is a real `rqworker gpu` process,
so the database is transactional: it must see the rows the live server commits.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import TIMEOUT_MS

pytestmark = pytest.mark.django_db(transaction=True)

# A phone scanning the printed code: a person, not a bot, and nobody's session.
PHONE_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/126.0.0.0 Mobile Safari/537.36")
PRINT_SIZE = 1024  # the first download size offered (generator.core.codes.downloads.PRINT_SIZES)
GENERATION_TIMEOUT_MS = 90_000


def tile(page, label: str):
    """The number of a dashboard tile, by its label."""
    return page.locator(".tile").filter(has=page.locator(".tile-label", has_text=re.compile(f"^{label}$")))\
        .locator(".tile-num")


@pytest.mark.worker
@pytest.mark.browser
def test_sign_in_generate_pick_download_and_count_a_scan(live_server, team_users, gpu_queue, start_worker,
                                                         browser, tmp_path):
    from playwright.sync_api import expect

    from campaigns.drainer import drain_once  # the short link only buffers scans, in this test's own keys

    expect.set_options(timeout=TIMEOUT_MS)
    worker = start_worker()
    base = live_server.url
    shots = tmp_path / "screenshots"
    shots.mkdir()

    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    # Every static file, page and image must load (images through qartsite.media's access check).
    failures: list[str] = []
    static_loaded: set[str] = set()

    def on_response(response) -> None:
        path = response.url.removeprefix(base)
        if path.startswith("/static/") and response.ok:
            static_loaded.add(path.split("?")[0])
        if response.status >= 400:
            failures.append(f"{response.status} {response.url}")

    page.on("response", on_response)
    page.on("pageerror", lambda error: failures.append(f"JS error: {error}"))

    def worker_log() -> str:
        return Path(worker.log_path).read_text()[-3000:]

    try:
        # Sign in through the login form.
        page.goto("/campaigns/")
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/campaigns/$"))
        page.fill("#id_username", "owner")
        page.fill("#id_password", "pw-owner-1")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{base}/campaigns/")
        # Through a locator, which waits for the new page's body: the URL changes before the document is parsed.
        font = page.locator("body").evaluate("(body) => getComputedStyle(body).fontFamily")
        assert font != "", "site.css did not apply"
        page.screenshot(path=shots / "1-campaigns.png", full_page=True)

        # Create a campaign whose destination stays on the live server, so the browser never leaves loopback.
        form = page.locator("#new-campaign form")
        form.locator("#id_name").fill("Spring fair")
        form.locator("#id_destination").fill(f"{base}/healthz")
        form.get_by_role("button", name="Create campaign").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Spring fair")
        expect(page.locator(".messages")).to_contain_text("created")

        # Add a placement from the campaign page.
        placement_form = page.locator("form", has=page.get_by_role("button", name="Add placement"))
        placement_form.locator("#id_name").fill("Poster at the gate")
        placement_form.get_by_role("button", name="Add placement").click()
        expect(page).to_have_url(re.compile(r"/campaigns/placements/\d+/$"))
        expect(page.get_by_role("heading", level=1)).to_contain_text("Poster at the gate")
        placement_url = page.url
        short_url = page.get_by_label("Short link").input_value()
        scheme, _, host = base.partition("://")  # the link as codes carry it: host and path in capitals
        assert re.fullmatch(rf"{scheme}://{re.escape(host.upper())}/R/[A-Z0-9]+", short_url), short_url
        expect(tile(page, "scans in all")).to_have_text("0")
        page.screenshot(path=shots / "2-placement.png", full_page=True)

        # Generate art for it, with fast parameters in the advanced settings.
        page.get_by_role("link", name="Generate art for this placement").click()
        expect(page).to_have_url(re.compile(r"/generate/\?placement=\d+$"))
        expect(page.locator("#id_content")).to_have_value(short_url)
        # Without weights the page starts on the halftone engine (a picture upload); this flow draws from a prompt.
        page.get_by_label("Drawn from a prompt (GPU)").check()
        page.fill("#id_prompt", "a lighthouse on a cliff at dusk")
        page.locator("details.advanced summary").click()
        page.fill("#id_steps", "2")
        page.fill("#id_size", "256")
        page.fill("#id_candidates_per_batch", "4")
        page.screenshot(path=shots / "3-generate.png", full_page=True)
        page.get_by_role("button", name="Generate candidates").click()
        expect(page).to_have_url(re.compile(r"/generate/jobs/\d+/$"))
        page.screenshot(path=shots / "4-job-running.png", full_page=True)

        # The job page polls status.json and reloads itself once the worker is done.
        first = page.locator("article.candidate").first
        try:
            expect(first).to_be_visible(timeout=GENERATION_TIMEOUT_MS)
        except AssertionError:
            page.screenshot(path=shots / "4-job-stuck.png", full_page=True)
            raise AssertionError(f"no candidates appeared; worker log:\n{worker_log()}") from None
        expect(page.locator("[data-status]")).to_have_text("Done")
        assert page.locator("article.candidate").count() == 4
        page.screenshot(path=shots / "5-job-done.png", full_page=True)

        # Make the first candidate the placement's artwork.
        first.get_by_role("button", name="Use this one").click()
        expect(page.locator(".messages")).to_contain_text("is now the artwork of")
        chosen = page.locator("article.candidate", has=page.locator(".in-use"))
        expect(chosen).to_have_count(1)
        expect(chosen.locator(".in-use")).to_have_text("✓ Artwork of Poster at the gate")

        # Download it for print.
        with page.expect_download() as info:
            chosen.locator(".downloads a", has_text=f"{PRINT_SIZE} px").click()
        download = info.value
        assert download.suggested_filename.endswith(f"-{PRINT_SIZE}px.png"), download.suggested_filename
        data = Path(download.path()).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG" and image.size == (PRINT_SIZE, PRINT_SIZE)

        # A phone scans the printed code: the short link redirects to the campaign's destination.
        phone = browser.new_context(user_agent=PHONE_AGENT)
        try:
            scan = phone.new_page()
            response = scan.goto(short_url)
            assert response is not None and response.ok
            assert scan.url.startswith(f"{base}/healthz?") and "utm_content=poster-at-the-gate" in scan.url, scan.url
            assert '"status": "ok"' in scan.content()
        finally:
            phone.close()
        assert drain_once().stored == 1  # what `manage.py qart_drain_scans` does beside the web server

        # Back on the dashboard, the scan is counted and the artwork is shown.
        page.goto(placement_url)
        expect(tile(page, "scans in all")).to_have_text("1")
        artwork = page.get_by_alt_text("Chosen QR artwork for Poster at the gate")
        expect(artwork).to_have_count(1)
        expect(artwork).to_have_js_property("naturalWidth", 256)  # the image itself loaded, through qartsite.media
        page.screenshot(path=shots / "6-placement-scanned.png", full_page=True)
        page.get_by_role("link", name="Spring fair").first.click()
        expect(tile(page, "scans")).to_have_text("1")  # the campaign page: scans in its range (30 days)
        page.screenshot(path=shots / "7-campaign.png", full_page=True)

        assert {"/static/qart/site.css", "/static/qart/generate.css", "/static/qart/generate.js"} <= static_loaded, \
            static_loaded
        assert not failures, failures
    finally:
        context.close()
