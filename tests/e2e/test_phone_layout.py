"""The campaign pages on a phone, in a real browser: a placement's figures come before its print files (in the HTML
too, so Tab and screen readers meet them in the order shown), the campaign page's actions stay a short block (the
rest under "More actions", opened from the keyboard), date fields, the date range's buttons and every other
control of the main pages are targets a finger can hit, and a figure tile holds a count of millions.

Headless Chromium (Debian's) against pytest-django's live server; scans are stored the way the drainer stores them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import staff
from tests.e2e.conftest import DESKTOP, PHONE, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

TAP = 44  # CSS px, WCAG 2.5.5's smallest target
# The visible headings of the page's main part in the HTML's order, each with where it is drawn.
HEADINGS = """() => [...document.querySelectorAll("main h2")].filter(h => h.getClientRects().length).map(h => {
    const box = h.getBoundingClientRect();
    return {text: h.textContent.trim(), top: box.top + window.scrollY, left: box.left};
})"""


@pytest.fixture
def poster(team_users):
    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event

    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/")
    poster = Placement.objects.create(campaign=campaign, name="Poster at the gate")
    store_events([scan_event(poster.pk, timezone.now() - timedelta(days=days), visitor_key=f"{days:032d}")
                  for days in (0, 1, 5)])
    return poster


def top(page, selector: str) -> float:
    return page.locator(selector).first.bounding_box()["y"]


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_placements_figures_come_before_its_print_files_as_shown_and_in_the_html(new_page, team_users, poster,
                                                                                   viewport):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=viewport)
    sign_in(page, "viewer", next_url=f"/campaigns/placements/{poster.pk}/")
    expect(page.locator(".tiles")).to_be_visible()
    figures = top(page, ".tiles")
    assert all(figures < top(page, selector) for selector in ("h2:text-is('Short link')", "#print"))
    # Drawn in the HTML's order (a CSS `order` drew a phone's figures first while Tab went to the code first): each
    # heading below the one before, or beside it to its right in a row of cards.
    headings = page.evaluate(HEADINGS)
    assert [h["text"] for h in headings].index("Scans per day") < [h["text"] for h in headings].index("Print files")
    for before, after in zip(headings, headings[1:], strict=False):
        beside = abs(after["top"] - before["top"]) <= 1 and after["left"] > before["left"]
        assert after["top"] > before["top"] + 1 or beside, (before, after)
    assert failures == []


@pytest.mark.browser
def test_a_phone_shows_an_editor_a_short_block_of_campaign_actions(new_page, team_users, poster):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=PHONE)
    sign_in(page, "teammate", next_url=f"/campaigns/{poster.campaign_id}/")
    actions = page.locator(".page-head > .actions")
    expect(page.get_by_role("link", name="Edit campaign")).to_be_visible()
    expect(page.get_by_role("link", name="Import placements (CSV)")).to_be_hidden()
    # Seven full-width buttons stood about 300 px high: two rows now.
    assert actions.bounding_box()["height"] < 2 * TAP + 20, actions.bounding_box()

    # The keyboard opens the rest: Enter on "More actions", which says it is open.
    more = page.locator("[data-more-actions] > summary")
    more.focus()
    page.keyboard.press("Enter")
    expect(page.locator("[data-more-actions]")).to_have_attribute("open", "")
    for name in ("Download scans (CSV, bots marked)", "Import placements (CSV)", "Generate for every placement"):
        expect(page.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_role("button", name="Archive campaign")).to_be_visible()
    assert failures == []


@pytest.mark.browser
def test_date_fields_are_at_least_44_px_on_a_phone(new_page, team_users, poster):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=PHONE)
    sign_in(page, "teammate", next_url=f"/campaigns/{poster.campaign_id}/")
    # The campaign page: the range picker's from and to, and the new placement's day it went up.
    for url, count in ((f"/campaigns/{poster.campaign_id}/", 3),
                       (f"/campaigns/{poster.campaign_id}/edit/", 2),  # the campaign's first and last day
                       (f"/campaigns/placements/{poster.pk}/edit/", 1)):  # the day it went up
        page.goto(url)
        fields = page.locator('input[type="date"]')
        expect(fields).to_have_count(count)
        for field in fields.all():
            box = field.bounding_box()
            assert box["width"] >= TAP and box["height"] >= TAP, (url, field.get_attribute("name"), box)
    assert failures == []


@pytest.mark.browser
def test_the_date_ranges_buttons_are_at_least_44_px_on_a_touch_screen(new_page, team_users, poster):
    from playwright.sync_api import expect

    page, failures = new_page(viewport=PHONE, has_touch=True)  # a touch screen: `pointer: coarse`
    sign_in(page, "viewer", next_url="/campaigns/")
    # Each page with a range picker: the campaigns' dashboard, a campaign, a placement (its picker above its scans).
    for url in ("/campaigns/", f"/campaigns/{poster.campaign_id}/", f"/campaigns/placements/{poster.pk}/"):
        page.goto(url)
        buttons = page.locator(".range-presets a, .range-custom button")
        expect(buttons.first).to_be_visible()
        assert buttons.count() > 1, url
        for button in buttons.all():
            box = button.bounding_box()
            assert box["width"] >= TAP and box["height"] >= TAP, (url, button.inner_text(), box)
    assert failures == []


# Every control a finger taps on the page, with its box: buttons, selects, expanders, the menu's links, breadcrumbs,
# sliders, and each check box or radio button with its labels (a label takes the tap too). Links inside running text
# are left out (WCAG 2.5.5's inline exception).
TARGETS = """() => [...document.querySelectorAll(
        ".button, button, select, summary, .topbar nav a, .crumbs a, input[type=range], " +
        "input[type=checkbox], input[type=radio]")]
    .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== "hidden")
    .filter(el => { const box = el.getBoundingClientRect(); return box.width > 2 && box.height > 2; })
    .map(el => { const boxes = [el, ...(el.matches("input[type=checkbox], input[type=radio]") ? el.labels : [])]
                     .map(target => target.getBoundingClientRect().height);
                 return {what: (el.innerText || el.getAttribute("name") || el.tagName).trim().slice(0, 40),
                         tag: el.tagName, height: Math.max(...boxes)}; })"""


@pytest.mark.browser
def test_every_control_of_the_main_pages_is_at_least_44_px_tall_on_a_touch_screen(new_page, team_users, poster):
    from playwright.sync_api import expect

    from tests.campaigns.conftest import make_art

    art = make_art(team_users.team, team_users.owner, f"https://qart.example/r/{poster.slug}")
    poster.artwork, poster.printed_width_cm = art, 20
    poster.save()
    staff(team_users.owner)
    page, failures = new_page(viewport=PHONE, has_touch=True)  # a touch screen: `pointer: coarse`
    sign_in(page, "owner", next_url="/campaigns/")
    small = []
    for url in ("/campaigns/", f"/campaigns/{poster.campaign_id}/", f"/campaigns/{poster.campaign_id}/edit/",
                f"/campaigns/placements/{poster.pk}/", f"/campaigns/placements/{poster.pk}/edit/", "/generate/",
                f"/generate/jobs/{art.job_id}/", f"/accounts/team/{team_users.team.pk}/", "/accounts/",
                "/evals/labeling/", "/evals/alignment/", "/evals/runs/"):
        page.goto(url)
        expect(page.locator("main")).to_be_visible()
        menu = page.locator(".nav-button")
        if menu.is_visible():
            menu.click()  # the menu's links, open
        small += [(url, target) for target in page.evaluate(TARGETS) if target["height"] < TAP - 0.5]
    assert small == [], small
    assert failures == []


@pytest.mark.browser
def test_the_members_table_keeps_an_e_mail_address_on_one_line(new_page, team_users):
    # "ed@example.co" and "m" stood on two lines on a desktop: the address cell wrapped anywhere, so the table
    # squeezed its column first.
    from django.contrib.auth import get_user_model

    User = get_user_model()
    User.objects.filter(pk=team_users.teammate.pk).update(email="edward.longname@marketing.example.com")
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto(f"/accounts/team/{team_users.team.pk}/")
    lines = page.evaluate("""() => {
        const cell = [...document.querySelectorAll('td[data-label="E-mail"]')]
            .find(td => td.textContent.includes("edward.longname"));
        const range = document.createRange();
        range.selectNodeContents(cell);
        return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    }""")
    assert lines == 1 and not failures, (lines, failures)


@pytest.mark.browser
def test_a_placements_tiles_hold_counts_of_millions_on_a_phone(new_page, team_users, poster):
    # "343399967" ran over its tile's edge on a 390 px phone, and a million, written "1,234,566", did too.
    from campaigns import rollups
    from campaigns.models import ScanRollup

    ScanRollup.objects.filter(placement=poster, dimension="").update(scans=411_522)  # 3 days: 1,234,566
    rollups.refresh_campaigns([poster.campaign_id])
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "viewer", next_url=f"/campaigns/placements/{poster.pk}/")
    tiles = page.evaluate("""() => [...document.querySelectorAll(".tile")].map(tile => {
        const number = tile.querySelector(".tile-num"), range = document.createRange();
        range.selectNodeContents(number);
        return {text: number.textContent, lines: new Set([...range.getClientRects()].map(r => Math.round(r.top))).size,
                inside: number.getBoundingClientRect().right <= tile.getBoundingClientRect().right
                        && number.scrollWidth <= number.clientWidth};
    })""")
    assert tiles[0] == {"text": "1,234,566", "lines": 1, "inside": True}, tiles
    assert all(tile["lines"] == 1 and tile["inside"] for tile in tiles) and failures == [], tiles


@pytest.mark.browser
def test_a_check_boxs_label_stays_beside_it_on_a_phone(live_server, team_users, new_page):
    # The webhooks form's "placement.artwork_changed", bold and unbreakable, did not fit beside its box: the box
    # stood alone on a line, its name under it, as if the two were separate.
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "owner", next_url=f"/campaigns/teams/{team_users.team.pk}/webhooks/")
    labels = page.locator(".form label:has(> input[type=checkbox])")
    assert labels.count() >= 4
    placed = labels.evaluate_all("""labels => labels.map(label => {
        const box = label.querySelector("input").getBoundingClientRect(), range = document.createRange();
        range.selectNodeContents(label);
        range.setStartAfter(label.querySelector("input"));
        const text = range.getClientRects()[0];
        return {name: label.textContent.trim(), beside: text.left >= box.right && text.top < box.bottom,
                inside: label.getBoundingClientRect().right <= document.documentElement.clientWidth};
    })""")
    assert all(label["beside"] and label["inside"] for label in placed), placed
    assert not failures


@pytest.mark.browser
def test_the_webhooks_header_names_stay_whole_on_a_phone(live_server, team_users, new_page):
    # "webhook-" at the end of one line and "id" at the start of the next: a reader copied half a header name.
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "owner", next_url=f"/campaigns/teams/{team_users.team.pk}/webhooks/")
    names = page.locator(".page-head code").evaluate_all("""codes => codes.map(code => [code.textContent,
        new Set([...code.getClientRects()].map(box => Math.round(box.top))).size])""")
    assert [name for name, _ in names] == ["webhook-id", "webhook-timestamp", "webhook-signature"]
    assert all(lines == 1 for _, lines in names), names
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # and nothing scrolls sideways
    assert not failures


@pytest.mark.browser
@pytest.mark.parametrize("query", ["", "?from=2026-03-01&to=2026-03-31"], ids=["last-30-days", "chosen-range"])
def test_the_scans_charts_head_says_what_it_counts_in_two_lines_at_most(new_page, team_users, poster, query):
    # "people only (link previews, bots and pages that embed the link left out; repeat scans counted)" made three
    # lines of small print between the heading and the chart on a phone.
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "viewer")
    for url in (f"/campaigns/placements/{poster.pk}/{query}", f"/campaigns/{poster.campaign_id}/{query}"):
        page.goto(url)
        lines = page.locator(".card-head > span:has([data-scans-counted])").evaluate(
            "span => Math.round(span.getBoundingClientRect().height / parseFloat(getComputedStyle(span).lineHeight))")
        assert lines <= 2, url
    assert failures == []
