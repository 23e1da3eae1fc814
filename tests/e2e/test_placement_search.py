"""The placement search in a real browser: on the generation page a team past the select's limit types part of a
name, chooses a match with the keyboard, and the job is made for that placement with its short link; on a job's page
a card's search finds a placement of the job's team and the candidate becomes its artwork.

Headless Chromium (Debian's) against pytest-django's live server; the job is not enqueued.
"""

from __future__ import annotations

import pytest

from campaigns import links
from campaigns.models import Placement
from generator import placement_picker, views
from generator.models import GenerationJob
from tests.campaigns.conftest import make_art
from tests.e2e.conftest import DESKTOP, sign_in
from tests.generator.factories import many_placements

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.browser
def test_a_placement_is_chosen_by_typing_and_the_arrow_keys(live_server, team_users, new_page, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: True)
    monkeypatch.setattr(views.jobs, "enqueue_generation", lambda job: None)
    monkeypatch.setattr(views.jobs, "queue_refusal", lambda operator=False: None)
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
    expect(page.locator("#id_content")).to_have_value(links.code_link(f"{live_server.url}/r/{gate.slug}"))

    page.get_by_label("Drawn from a prompt (GPU)").check()
    page.fill("#id_prompt", "a harbour at dusk")
    page.get_by_role("button", name="Generate candidates").click()
    page.wait_for_url(f"{live_server.url}/generate/jobs/*/")
    job = GenerationJob.objects.get()
    assert (job.placement, job.content) == (gate, links.code_link(f"{live_server.url}/r/{gate.slug}"))
    assert failures == []


@pytest.mark.browser
@pytest.mark.parametrize("moved_on", ["team", "focus", "typing"])
def test_an_answer_that_comes_after_the_box_moved_on_is_not_listed(live_server, team_users, new_page, moved_on):
    # Answers are held back until the person has moved on: to another team (the old team's placements were listed,
    # and choosing one switched the form back to it), to the next field (the list stayed open over it), or to more
    # text (the old text's matches were listed, ready for Enter, until the new answer came).
    from playwright.sync_api import expect

    from qartsite.models import Membership

    Membership.objects.create(team=team_users.other_team, user=team_users.owner, role="editor")
    many_placements(team_users.team, placement_picker.SELECT_MAX + 1)
    many_placements(team_users.other_team, 3, campaign="Rival spring")
    page, failures = new_page(viewport=DESKTOP)
    page.clock.install()  # the search's pause in typing runs when the test says
    held = []
    page.route("**/generate/placements.json?*", lambda route: held.append(route))
    sign_in(page, "owner", f"/generate/?team={team_users.team.pk}")
    box = page.get_by_role("combobox", name="Placement")
    with page.expect_request("**/generate/placements.json?*"):
        box.press_sequentially("poster")
        page.clock.run_for(1000)
    if moved_on == "team":
        page.select_option("#id_team", str(team_users.other_team.pk))
    elif moved_on == "focus":
        box.press("Tab")
    else:
        box.press_sequentially(" 1")  # its own search waits for the pause
    with page.expect_response("**/generate/placements.json?*"):
        held.pop().continue_()
    page.evaluate("() => new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve, 0)))")
    page.clock.run_for(50)
    expect(page.get_by_role("listbox", name="Matching placements", include_hidden=True)).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    assert page.locator("#id_team").input_value() == str(
        team_users.other_team.pk if moved_on == "team" else team_users.team.pk)
    assert failures == []


@pytest.mark.browser
def test_a_press_on_the_list_between_matches_leaves_it_open(live_server, team_users, new_page):
    # A press on the list that is on no match (its edge; its scrollbar, where the system draws one) took the focus
    # from the box, whose blur closed the list under the pointer: twenty matches overflow it.
    from playwright.sync_api import expect

    many_placements(team_users.team, placement_picker.SELECT_MAX + 1)
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", "/generate/")
    box = page.get_by_role("combobox", name="Placement")
    box.press_sequentially("poster")
    matches = page.get_by_role("listbox", name="Matching placements")
    expect(matches.get_by_role("option")).to_have_count(placement_picker.MATCHES)
    edge = matches.bounding_box()
    page.mouse.click(edge["x"] + 20, edge["y"] + 2)  # the list's padding, above its first match
    expect(matches).to_be_visible()
    expect(box).to_be_focused()
    matches.get_by_role("option").nth(3).click()
    expect(box).to_have_value("Spring / Poster 100")  # by name: Poster 0, 1, 10, 100
    expect(page.locator('input[name="placement"]')).not_to_have_value("")
    assert failures == []


@pytest.mark.browser
def test_a_job_pages_card_finds_a_placement_and_uses_the_candidate(live_server, team_users, new_page):
    # Past the select's limit each card had a text box and a datalist of every placement (263 KB at 5,000): it
    # searches now, the job's team only, though the owner edits another team whose placement matches too.
    from playwright.sync_api import expect

    from qartsite.models import Membership

    Membership.objects.create(team=team_users.other_team, user=team_users.owner, role="editor")
    many_placements(team_users.team, placement_picker.SELECT_MAX)
    summer = many_placements(team_users.team, 1, campaign="Summer")
    gate = Placement.objects.create(campaign=summer, name="Harbour gate")
    Placement.objects.create(campaign=summer, name="Harbour bus shelter")
    Placement.objects.create(campaign=many_placements(team_users.other_team, 0, campaign="Rival"), name="Harbour")
    art = make_art(team_users.team, team_users.owner, f"{live_server.url}/r/{gate.slug}")

    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", f"/generate/jobs/{art.job_id}/")
    card = page.locator(f"#candidate-{art.pk}")
    box = card.get_by_role("combobox", name="Placement")
    box.press_sequentially("harbour")
    matches = card.get_by_role("listbox", name="Matching placements")
    expect(matches.get_by_role("option")).to_have_count(2)  # not the other team's "Harbour"
    matches.get_by_role("option", name="Harbour gate").click()
    expect(matches).to_be_hidden()
    expect(box).to_have_value("Summer / Harbour gate")
    expect(card.locator('input[name="placement"]')).to_have_value(str(gate.pk))
    card.get_by_role("button", name="Use this one").click()
    expect(page).to_have_url(f"{live_server.url}/generate/jobs/{art.job_id}/#candidate-{art.pk}")
    expect(page.get_by_text(f"Candidate #1 is now the artwork of {gate}.")).to_be_visible()
    gate.refresh_from_db()
    assert gate.artwork_id == art.pk
    assert failures == []
