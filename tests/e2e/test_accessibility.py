"""The pages a marketing team uses (signed out, signed in, and the labeling page and admin staff use), checked by
axe-core (the engine behind Lighthouse's and most audits' accessibility checks) at a desktop's and a phone's size: no
violation of impact "serious" or "critical", nor a key's letter too faint to read.

Headless Chromium (Debian's) against pytest-django's live server; axe.min.js comes with axe-playwright-python.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.conftest import make_staff
from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

BLOCKING = {"serious", "critical"}  # axe's two worst impacts: what a screen reader or low vision cannot get past
# (rule id, CSS selector axe reports) that we leave, each with why; none so far.
ACCEPTED: set[tuple[str, str]] = set()


@pytest.fixture
def cast(team_users):
    """A staff owner (the labeling page and the admin need one) and every page of the list below filled in: a
    campaign with scans, a placement with verified artwork, a finished job, a labeling session and a share link."""
    from campaigns import shares
    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event
    from generator.evals import sessions
    from tests.campaigns.conftest import make_art
    from tests.generator.factories import job_of_clean_codes

    cache.clear()  # the shared page's rate is counted per address in the cache
    make_staff(team_users.owner)
    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/")
    poster = Placement.objects.create(campaign=campaign, name="Poster at the gate", location="Quay 4")
    flyer = Placement.objects.create(campaign=campaign, name="Flyer")
    now = timezone.now()
    store_events([scan_event(placement.pk, now - timedelta(days=days), device_class=device, os=system,
                             visitor_key=f"{placement.pk:016d}{days:016d}", country="FR")
                  for placement, device, system in ((poster, "mobile", "iOS"), (flyer, "desktop", "Windows"))
                  for days in (0, 1, 3, 6)])
    art = make_art(team_users.team, team_users.owner, f"https://qart.example/r/{poster.slug}")
    poster.artwork, poster.printed_width_cm = art, 20
    poster.save()
    job = job_of_clean_codes(team_users.team, team_users.owner, (0.9, 0.6, 0.3))
    session = sessions.create_session(team_users.team, team_users.owner, "Sitting", job.candidates.all(), 320)
    _, token = shares.create(campaign, team_users.owner, label="Agency")
    return {"campaign": campaign.pk, "placement": poster.pk, "job": job.pk, "session": session.pk, "token": token}


def blocking(page, where: str) -> list[str]:
    """The serious and critical violations axe finds on the page, one line each: where, rule, impact, how many
    elements, the first three of their selectors and axe's help text."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations", "incomplete"]}).response
    # axe leaves text of a character or two (a key's letter, an arrow) to a person to judge, with the contrast it
    # measured: judged here by that figure. The labeling page's keys were 3.2:1 and passed as "incomplete".
    for check in results["incomplete"]:
        if check["id"] == "color-contrast":
            nodes = [node for node in check["nodes"] if any(
                (item.get("data") or {}).get("messageKey") == "shortTextContent"
                and item["data"]["contrastRatio"] < float(item["data"]["expectedContrastRatio"].split(":")[0])
                for item in node["any"])]
            if nodes:
                results["violations"].append({**check, "nodes": nodes})
    found = []
    for violation in results["violations"]:
        if violation["impact"] not in BLOCKING:
            continue
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
        targets = [target for target in targets if (violation["id"], target) not in ACCEPTED]
        if targets:
            found.append(f"{where}: {violation['id']} ({violation['impact']}) x{len(targets)} at "
                         f"{targets[:3]}: {violation['help']}")
    return found


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_it_finds_no_serious_violation_on_the_main_pages(new_page, cast, viewport):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=viewport)
    found = []
    # Signed out first: the sign-in page and a share link as the agency opens it.
    for url in ("/accounts/login/", f"/campaigns/shared/{cast['token']}/"):
        page.goto(url)
        expect(page.locator("main")).to_be_visible()
        found += blocking(page, url)
    sign_in(page, "owner")
    placement = f"/campaigns/placements/{cast['placement']}/"
    for url in ("/", "/campaigns/", f"/campaigns/{cast['campaign']}/", placement,
                f"{placement}print?width=20",  # the print form, answering a width without its unit
                "/generate/", f"/generate/jobs/{cast['job']}/", "/accounts/", f"/evals/labeling/{cast['session']}/run/",
                # a change list, and a change page with a tabular inline (the campaign's placements)
                "/admin/campaigns/placement/", f"/admin/campaigns/campaign/{cast['campaign']}/change/"):
        page.goto(url)
        expect(page.locator("main, #content").first).to_be_visible()
        found += blocking(page, url)
    # The API's docs: Swagger UI (drf-spectacular-sidecar's) draws its operations after the page has loaded, and
    # one opened shows its parameters, responses and buttons.
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    found += blocking(page, "/api/docs/")
    page.locator(".swagger-ui .opblock-summary-control").first.click()
    expect(page.locator(".swagger-ui .opblock-body").first).to_be_visible()
    found += blocking(page, "/api/docs/, an operation opened")
    # Where a reader goes next (qart/api-docs.css and .js mend what axe found there): the Authorize dialog, "Try it
    # out" on a list with parameters, its request sent with the session and answered, every schema opened.
    page.get_by_role("button", name="Authorize").first.click()
    expect(page.locator(".swagger-ui .modal-ux")).to_be_visible()
    found += blocking(page, "/api/docs/, the Authorize dialog")
    page.locator(".swagger-ui .modal-ux .close-modal").click()
    campaigns = page.locator(".swagger-ui .opblock-get").filter(
        has=page.locator('.opblock-summary-path[data-path="/api/campaigns/"]'))
    campaigns.locator(".opblock-summary-control").click()
    campaigns.get_by_role("button", name="Try it out").click()
    expect(campaigns.get_by_role("button", name="Execute")).to_be_visible()
    found += blocking(page, "/api/docs/, Try it out")
    campaigns.get_by_role("button", name="Execute").click()
    answer = campaigns.locator(".live-responses-table .response")
    expect(answer.locator(".response-col_status")).to_have_text("200")
    expect(answer.locator(".response-col_description")).to_contain_text("Harbour festival")
    found += blocking(page, "/api/docs/, a request answered")
    expect(page.locator(".swagger-ui .models-control")).to_have_attribute("aria-expanded", "true")  # "Schemas"
    for schema in page.locator(".swagger-ui .models .model-container").all():
        schema.locator(".model-box-control").first.click()
    expect(page.locator(".swagger-ui .models .inner-object").first).to_be_visible()
    # and one schema's properties opened (a list of ids, choices): each then has an arrow for a button.
    closed = page.locator('#model-BulkGenerationRequest .inner-object .model-box-control[aria-expanded="false"]')
    expect(closed.first).to_be_visible()
    while closed.count():
        closed.first.click()
    found += blocking(page, "/api/docs/, every schema and one's properties opened")
    # The labeling page with a vote chosen: a pressed button is drawn in the accent.
    page.goto(f"/evals/labeling/{cast['session']}/run/")
    page.get_by_role("button", name="Looks good").click()
    expect(page.get_by_role("button", name="Looks good")).to_have_attribute("aria-pressed", "true")
    found += blocking(page, "the labeling page, voted")
    assert found == [], "\n".join(found)
    assert failures == []


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_it_finds_no_serious_violation_in_the_placement_search(new_page, team_users, viewport):
    # A team past the select's limit gets the search box: each of its states is read by a screen reader too.
    from playwright.sync_api import expect

    from generator import placement_picker
    from tests.generator.factories import many_placements

    cache.clear()  # the generation rate is counted in the cache
    many_placements(team_users.team, placement_picker.SELECT_MAX + 1)
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner", "/generate/")
    box = page.get_by_role("combobox", name="Placement")
    found = blocking(page, "/generate/, the placement search")
    box.press_sequentially("poster 1")
    expect(page.get_by_role("listbox", name="Matching placements").get_by_role("option").first).to_be_visible()
    box.press("ArrowDown")
    found += blocking(page, "/generate/, the placement search's matches, one active")
    box.press("Enter")
    expect(page.locator('input[name="placement"]')).not_to_have_value("")
    found += blocking(page, "/generate/, a placement chosen")
    box.fill("")
    box.press_sequentially("no such poster")
    expect(page.locator("[data-placement-status]")).to_contain_text("No placement of this team matches")
    found += blocking(page, "/generate/, no placement matches")
    page.get_by_role("button", name="Generate candidates").click()  # the text, looked for on the server: none
    expect(page.locator(".placement-search .errorlist")).to_contain_text("No placement of Acme is")
    found += blocking(page, "/generate/, a placement typed that is none")
    assert found == [], "\n".join(found)
    assert failures == []
