"""The generation page's placement search in a real browser: a team past the select's limit types part of a name,
chooses a match with the keyboard, and the job is made for that placement with its short link.

Headless Chromium (Debian's) against pytest-django's live server; the job is not enqueued.
"""

from __future__ import annotations

import pytest

from campaigns.models import Placement
from generator import placement_picker, views
from generator.models import GenerationJob
from tests.e2e.conftest import DESKTOP, sign_in
from tests.generator.factories import many_placements

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
def test_a_placement_is_chosen_by_typing_and_the_arrow_keys(live_server, team_users, new_page, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: True)
    monkeypatch.setattr(views.jobs, "enqueue_generation", lambda job: None)
    monkeypatch.setattr(views.jobs, "queue_answers", lambda: True)
    many_placements(team_users.team, placement_picker.SELECT_MAX)
    summer = many_placements(team_users.team, 3, campaign="Summer")
    gate = Placement.objects.create(campaign=summer, name="Harbour gate")
    Placement.objects.create(campaign=summer, name="Harbour bus shelter")

    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", "/generate/")
    box = page.get_by_role("combobox", name="Placement")
    box.press_sequentially("harbour")
    matches = page.get_by_role("listbox", name="Matching placements")
    expect(matches.get_by_role("option")).to_have_count(2)
    expect(page.locator("[data-placement-status]")).to_have_text(
        "2 placements match. Up and down arrows to move, Enter to choose.")
    expect(box).to_have_attribute("aria-expanded", "true")
    box.press("ArrowDown")
    box.press("ArrowDown")  # "Harbour bus shelter" first, by name
    expect(matches.get_by_role("option", name="Harbour gate")).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", f"placement-match-{gate.pk}")
    box.press("Enter")  # chooses; does not send the form
    expect(matches).to_be_hidden()
    expect(box).to_have_value("Summer / Harbour gate")
    expect(page.locator('input[name="placement"]')).to_have_value(str(gate.pk))
    expect(page.locator("#id_content")).to_have_value(f"{live_server.url}/r/{gate.slug}")

    page.get_by_label("Drawn from a prompt (GPU)").check()
    page.fill("#id_prompt", "a harbour at dusk")
    page.get_by_role("button", name="Generate candidates").click()
    page.wait_for_url(f"{live_server.url}/generate/jobs/*/")
    job = GenerationJob.objects.get()
    assert (job.placement, job.content) == (gate, f"{live_server.url}/r/{gate.slug}")
    assert failures == []
