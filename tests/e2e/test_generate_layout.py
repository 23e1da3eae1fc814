"""The generation page's layout on a desktop-wide window: the halftone engine has no prompt gallery beside the form,
so the form takes the whole width (the picture on the left, where it goes on the right) instead of leaving an empty
column; the diffusion engine keeps its gallery in the right column. On a phone the form is one column either way.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, TIMEOUT_MS, sign_in
from tests.generator.factories import job_with_candidates

pytestmark = pytest.mark.django_db(transaction=True)


def box(page, selector: str) -> dict:
    return page.locator(selector).first.bounding_box()


@pytest.mark.browser
def test_it_uses_the_whole_width_for_the_halftone_form_on_a_desktop(live_server, team_users, browser, tmp_path):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, "owner")
        page.goto("/generate/")
        page.check('input[name="engine"][value="diffusion"]')
        form, gallery = box(page, ".gen-form"), box(page, ".gallery")
        assert gallery["x"] > form["x"] + form["width"]  # the gallery beside the form

        page.check('input[name="engine"][value="halftone"]')
        page.screenshot(path=str(tmp_path / "halftone-desktop.png"), full_page=True)
        form, head = box(page, ".gen-form"), box(page, ".page-head")
        assert form["width"] >= head["width"] - 1  # as wide as the page's heading: no empty column
        picture, destination = box(page, "fieldset.engine"), box(page, 'select[name="placement"]')
        assert destination["x"] > picture["x"] + picture["width"]  # side by side
        assert destination["y"] < picture["y"] + picture["height"]

        page.set_viewport_size(PHONE)
        picture, destination = box(page, "fieldset.engine"), box(page, 'select[name="placement"]')
        assert destination["y"] > picture["y"] + picture["height"]  # one column on a phone
    finally:
        context.close()


@pytest.mark.browser
def test_it_puts_the_error_summary_above_both_columns(live_server, team_users, new_page, tmp_path):
    """A form sent empty with the halftone engine: the summary opens the form, above the picture's column and
    where it goes, and the two columns stay side by side below it (it once landed under the picture's column,
    pushing where it goes and the advanced settings down after it)."""
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto("/generate/")
    page.check('input[name="engine"][value="halftone"]')
    page.get_by_role("button", name="Generate candidates").click()
    page.wait_for_selector("#form-errors")
    page.screenshot(path=str(tmp_path / "halftone-errors-desktop.png"), full_page=True)
    summary, form = box(page, "#form-errors"), box(page, ".gen-form")
    picture, destination = box(page, "fieldset.engine"), box(page, 'select[name="placement"]')
    advanced = box(page, "details.advanced")
    assert summary["y"] + summary["height"] <= picture["y"]  # on top
    assert summary["y"] + summary["height"] <= destination["y"]
    assert summary["width"] >= form["width"] * 0.8  # across both columns
    assert destination["x"] > picture["x"] + picture["width"]  # the columns side by side, as before
    assert destination["y"] < picture["y"] + picture["height"]
    assert advanced["y"] < picture["y"] + picture["height"]

    page.set_viewport_size(PHONE)
    summary, picture = box(page, "#form-errors"), box(page, "fieldset.engine")
    destination = box(page, 'select[name="placement"]')
    assert summary["y"] + summary["height"] <= picture["y"] < destination["y"]  # one column, summary first
    assert not failures


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_it_lines_up_an_earlier_codes_radio_with_its_caption_under_its_picture(live_server, team_users, new_page,
                                                                               viewport):
    # The radio sat above and to the right of its picture, the caption beside the picture's bottom edge.
    from tests.campaigns.conftest import make_art

    art = make_art(team_users.team, team_users.owner, "https://shop.example.com/poster")
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner")
    page.goto("/generate/")
    page.check('input[name="engine"][value="halftone"]')
    card = box(page, "label.earlier")
    image, radio = box(page, "label.earlier img"), box(page, "label.earlier input")
    caption = box(page, "label.earlier .earlier-caption")
    assert page.locator("label.earlier .earlier-caption").inner_text().startswith("shop.example.com/poster · ")
    inside = [card["x"] - 1 <= part["x"] and part["x"] + part["width"] <= card["x"] + card["width"] + 1
              for part in (image, radio, caption)]
    assert all(inside)
    assert radio["y"] >= image["y"] + image["height"] and caption["y"] >= image["y"] + image["height"]
    assert abs((radio["y"] + radio["height"] / 2) - (caption["y"] + caption["height"] / 2)) <= 3  # one line
    assert radio["x"] + radio["width"] <= caption["x"] and abs(radio["x"] - image["x"]) <= 2  # left-aligned
    page.locator("label.earlier .earlier-caption").click()  # the whole card is the label
    assert page.locator(f'input[name="earlier_candidate"][value="{art.pk}"]').is_checked()
    assert not failures


@pytest.mark.browser
def test_an_earlier_code_of_another_link_is_greyed_out_and_the_page_says_why(live_server, team_users, new_page):
    from playwright.sync_api import expect

    from tests.campaigns.conftest import make_art

    art = make_art(team_users.team, team_users.owner, "https://shop.example.com/poster")
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto("/generate/")
    page.check('input[name="engine"][value="halftone"]')
    radio = page.locator(f'input[name="earlier_candidate"][value="{art.pk}"]')
    note = page.locator("[data-earlier-note]")
    page.fill('[name="content"]', "https://shop.example.com/poster")
    expect(radio).to_be_enabled()
    expect(note).to_be_hidden()
    page.fill('[name="content"]', "https://shop.example.com/flyer")
    expect(radio).to_be_disabled()
    expect(note).to_be_visible()
    expect(note).to_contain_text("codes of another link")
    assert not failures


@pytest.mark.browser
def test_a_viewers_form_fills_the_width_with_nothing_to_pick_beside_it(live_server, team_users, new_page, tmp_path):
    # A viewer cannot generate: the team's earlier prompts and codes are not offered, and their column is not left
    # empty either
    from playwright.sync_api import expect

    job_with_candidates(team_users.team, team_users.owner, count=1)
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "viewer")
    page.goto("/generate/")
    for engine in ("diffusion", "halftone"):
        # The radios are disabled for a viewer: chosen as the page's script would see it
        page.evaluate("(engine) => { const radio = document.querySelector(`input[name=engine][value=${engine}]`);"
                      " radio.checked = true; radio.dispatchEvent(new Event('change')); }", engine)
        expect(page.locator(f'.page-head [data-engine-part="{engine}"]')).to_be_visible()
        expect(page.locator(".gallery")).to_have_count(0)
        expect(page.locator('input[name="earlier_candidate"]')).to_have_count(0)
        form, head = box(page, ".gen-form"), box(page, ".page-head")
        assert form["width"] >= head["width"] - 1, engine  # as wide as the page's heading: no empty column
        page.screenshot(path=str(tmp_path / f"viewer-{engine}.png"), full_page=True)
    assert not failures, failures


@pytest.mark.browser
def test_a_queued_jobs_progress_line_leaves_no_hole_for_the_times_it_does_not_know_yet(live_server, team_users,
                                                                                      new_page, monkeypatch):
    # Before a job starts there is no elapsed time or time left: their empty spans still took a flex gap each, so
    # "0%" and "· next in line" stood three gaps apart, as if a word were missing.
    from tests.generator.factories import job_with_ranks

    job = job_with_ranks(team_users.team, team_users.owner, (), status="queued")
    monkeypatch.setattr("generator.jobs.queue_position", lambda job: 1)  # first in a queue no worker takes from
    page, failures = new_page(viewport=DESKTOP)  # wide enough to keep the whole line on one line
    sign_in(page, "owner", next_url=f"/generate/jobs/{job.pk}/")
    page.wait_for_function("() => document.querySelector('[data-queue]').textContent.includes('next in line')")
    assert page.locator("[data-elapsed]").inner_text() == "" and page.locator("[data-eta]").inner_text() == ""
    percent, queue, stage = box(page, "[data-percent]"), box(page, "[data-queue]"), box(page, "[data-stage]")
    gap = percent["x"] - (stage["x"] + stage["width"])  # the one gap the line's flex layout puts between parts
    assert abs(queue["y"] - percent["y"]) < 2  # one line
    assert queue["x"] - (percent["x"] + percent["width"]) <= gap + 1
    assert not failures


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_failing_cards_plain_png_follows_its_buttons(live_server, team_users, new_page, viewport):
    # Beside passing cards, whose print sizes sit at the cards' foot, a failing card's "It fails the scan check" was
    # pushed there too, under a tall empty gap.
    job = job_with_candidates(team_users.team, team_users.owner, count=4, status="done")  # #4 fails
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner", next_url=f"/generate/jobs/{job.pk}/")
    failing = page.locator(".candidate", has=page.locator("[data-no-print]"))
    assert failing.count() == 1
    gap = failing.locator("[data-no-print]").evaluate(
        "(el) => el.getBoundingClientRect().top - el.previousElementSibling.getBoundingClientRect().bottom")
    assert gap <= 16, gap  # the card's own gap and padding (.5rem + .25rem), no more
    assert not failures


@pytest.mark.browser
def test_the_job_pages_settings_name_each_setting_on_one_line_on_a_desktop(live_server, team_users, new_page):
    # "The code's squares" broke over two lines in a 9rem column, with the rest of the card's width to spare.
    job = job_with_candidates(team_users.team, team_users.owner, count=1, status="done")
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", next_url=f"/generate/jobs/{job.pk}/")
    names = page.locator(".facts dt").evaluate_all("""names => names.map(name => {
        const range = document.createRange();
        range.selectNodeContents(name);
        return [name.textContent, new Set([...range.getClientRects()].map(box => Math.round(box.top))).size];
    })""")
    assert ["The code's squares", 1] in names and all(lines == 1 for _, lines in names), names
    assert not failures


@pytest.mark.browser
def test_a_job_cards_link_breaks_only_after_its_slashes_on_a_phone(live_server, team_users, new_page):
    # Two cards a row: "https://qart.exampl" on one line and "e/r/AbC123" on the next.
    job_with_candidates(team_users.team, team_users.owner, count=1, status="done")  # content qart.example/r/AbC123
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "owner", next_url="/generate/jobs/")
    caption = page.locator(".job-card-meta .mono").first
    assert caption.inner_text().replace("\n", "") == "qart.example/r/AbC123"  # no "https://": a caption, not a link
    parts = caption.evaluate("""(el) => {
        const text = el.textContent, found = [];
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const range = document.createRange();
            range.selectNodeContents(node);
            found.push([node.textContent, new Set([...range.getClientRects()].map(box => Math.round(box.top))).size]);
        }
        return found;
    }""")
    assert [part for part, _ in parts] == ["qart.example/", "r/", "AbC123"]
    assert all(lines == 1 for _, lines in parts), parts
    assert not failures
