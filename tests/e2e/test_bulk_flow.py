"""Importing placements from CSV in a real browser: a file with one bad row is checked (nothing stored), the row is
fixed on the page, checked again and imported, and the placements are listed on the campaign page.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import TIMEOUT_MS, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

CSV = ("name,kind,location,printed_quantity,printed_width_cm,scan_distance_m,destination_override\n"
       "Gate poster,poster,Main gate,200,30,,\n"
       "Tram screen,screen,Line 4,12,,,javascript:alert(1)\n")


@pytest.mark.browser
def test_a_bad_row_is_shown_fixed_and_then_every_row_imported(live_server, team_users, browser, tmp_path):
    from playwright.sync_api import expect

    from campaigns.models import Campaign, Placement

    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/")
    upload = tmp_path / "placements.csv"
    upload.write_text(CSV)

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, "teammate", f"/campaigns/{campaign.pk}/")
        page.get_by_text("More actions").click()
        page.get_by_role("link", name="Import placements (CSV)").click()

        # The dry run: the bad row, its column and why; nothing stored, no import button.
        page.set_input_files('input[name="file"]', str(upload))
        page.get_by_role("button", name="Check the rows").click()
        bad = page.locator('[data-errors] tr[data-row="3"]')
        expect(bad).to_contain_text("destination_override")
        expect(bad).to_contain_text("must start with http:// or https://")
        expect(page.get_by_role("button", name="Import 2 placements")).to_have_count(0)
        page.screenshot(path=tmp_path / "1-dry-run.png", full_page=True)
        assert Placement.objects.count() == 0

        # Fix the row on the page and check again.
        rows = page.locator('textarea[name="text"]')
        rows.fill(rows.input_value().replace("javascript:alert(1)", "https://shop.example.com/tram"))
        page.get_by_role("button", name="Check the rows").click()
        expect(page.locator("[data-dry-run]")).to_contain_text("All 2 rows can be imported")
        page.screenshot(path=tmp_path / "2-checked.png", full_page=True)
        page.get_by_role("button", name="Import 2 placements").click()

        # Back on the campaign page, both listed.
        expect(page.locator(".messages")).to_contain_text("Imported 2 placements")
        expect(page.locator('tr[data-placement="Gate poster"]')).to_contain_text("Main gate")
        expect(page.locator('tr[data-placement="Tram screen"]')).to_be_visible()
        assert (Placement.objects.get(name="Tram screen").destination_override
                == "https://shop.example.com/tram")
        page.goto(f"/campaigns/{campaign.pk}/generate/")
        expect(page.locator("[data-room]")).to_contain_text("can start now")
        # Only the chosen engine's fields show, as on the generation page.
        page.select_option('select[name="engine"]', "halftone")
        expect(page.locator('input[name="picture"]')).to_be_visible()
        expect(page.locator('textarea[name="prompt"], input[name="prompt"]')).to_be_hidden()
        page.select_option('select[name="engine"]', "diffusion")
        expect(page.locator('input[name="picture"]')).to_be_hidden()
        expect(page.locator('textarea[name="prompt"], input[name="prompt"]')).to_be_visible()
        page.fill('textarea[name="prompt"]', "a koi pond")  # counted as on the generation page
        expect(page.locator(".char-count").first).to_contain_text("10 of 1,000 characters")
        page.screenshot(path=tmp_path / "3-generate.png", full_page=True)
        assert not errors, errors
    finally:
        context.close()
