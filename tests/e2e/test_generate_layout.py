"""The generation page's layout on a desktop-wide window: the halftone engine has no prompt gallery beside the form,
so the form takes the whole width (the picture on the left, where it goes on the right) instead of leaving an empty
column; the diffusion engine keeps its gallery in the right column. On a phone the form is one column either way.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT_MS = 15_000
DESKTOP = {"width": 1280, "height": 900}


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
