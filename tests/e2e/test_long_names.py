"""A campaign named in one long word (the underscore style many teams name by): its list row keeps its figures in
view, and its page stays within the screen, on a desktop and on a phone. The name wraps instead, after its
underscores. Every dashboard page keeps a team, campaign, placement, session or sweep named so within a phone's
screen, and a list keeps such a name beside a team's named so.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e.conftest import DESKTOP, PHONE, sign_in
from tests.generator.factories import job_of_clean_codes

pytestmark = pytest.mark.django_db(transaction=True)
NAME = "SS26_DE_BER_OOH_Poster_UBahn_Mitte_Alexanderplatz_Q2_Final_v3_approved"
WITHIN = "(el) => { const box = el.getBoundingClientRect(); return box.width > 0 && box.right <= window.innerWidth; }"


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_long_one_word_name_wraps_and_every_figure_stays_in_view(new_page, team_users, viewport):
    from campaigns.models import Campaign, Placement

    campaign = Campaign.objects.create(team=team_users.team, name=NAME, destination="https://example.com/spring")
    Placement.objects.create(campaign=campaign, name=f"{NAME}_flyer", printed_quantity=100)
    page, failures = new_page(viewport=viewport)
    sign_in(page, "owner")

    page.goto("/campaigns/")
    row = page.locator("tbody tr", has_text=NAME)
    for label in ("Placements", "Scans", "Unique"):
        cell = row.locator(f'td[data-label="{label}"]')
        assert cell.evaluate(WITHIN), label  # was cut off at the card's edge (desktop) or out of view (phone)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.goto(f"/campaigns/{campaign.pk}/")
    assert page.locator("h1").first.evaluate(WITHIN)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # was 1535 px wide
    assert failures == []


# An e-mail address as a username, as long as a team's tool makes them: one unbroken word.
LONG_PERSON = ("marketing.lead.spring.campaign.berlin.office.2026.q2.outdoor.posters.team"
               "@a-very-long-agency-domain-name-for-berlin.example.com")


@pytest.mark.browser
def test_a_long_username_is_clipped_in_the_lists_that_name_people_with_the_whole_in_a_title(new_page, team_users):
    # The labeling sessions' "By" and the eval runs' "Started … by" cells took the name whole: one unbroken word
    # that widened the table past its card at 1280 px (by 79 and 87 px), the row's buttons cut off.
    from generator.models import EvalRun, LabelingSession
    from tests.conftest import make_staff

    person = team_users.owner
    person.username = LONG_PERSON
    person.set_password(f"pw-{LONG_PERSON}-1")  # what sign_in types
    person.save(update_fields=["username", "password"])
    make_staff(person)  # the eval pages are staff's
    LabelingSession.objects.create(name="Office sitting", team=team_users.team, created_by=person)
    EvalRun.objects.create(name="Sweep", team=team_users.team, created_by=person)
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, LONG_PERSON)
    for url in ("/evals/labeling/", "/evals/runs/"):
        page.goto(url)
        table = page.locator("table.table").first
        assert table.evaluate("(el) => el.scrollWidth <= el.parentElement.clientWidth"), url
        assert table.locator("td").last.evaluate(WITHIN), url
        assert table.locator(f'.person[title="{LONG_PERSON}"]').count() == 1, url
    assert failures == []


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_long_username_in_the_header_is_clipped_with_the_whole_in_its_title(new_page, team_users, viewport):
    # The header's account link took a 127-character username whole: one unbroken word that filled the nav's line
    # on a desktop (the links wrapped under it) and ran past a phone's screen in the open menu.
    person = team_users.owner
    person.username = LONG_PERSON
    person.set_password(f"pw-{LONG_PERSON}-1")  # what sign_in types
    person.save(update_fields=["username", "password"])
    page, failures = new_page(viewport=viewport)
    sign_in(page, LONG_PERSON)
    page.goto("/campaigns/")
    if viewport == PHONE:
        page.click("#nav-toggle")
    who = page.locator("a.who")
    assert LONG_PERSON in who.get_attribute("title")
    assert who.evaluate(WITHIN)
    assert who.evaluate("(el) => el.scrollWidth > el.clientWidth")  # clipped, not laid out whole
    if viewport == DESKTOP:
        tops = page.locator("#main-nav > a, #main-nav > form").evaluate_all(
            "(els) => els.map((el) => Math.round(el.getBoundingClientRect().top))")
        assert max(tops) - min(tops) <= 4, tops  # the links, the name and "Sign out" on one line
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert failures == []


TEAM = "Berliner_Verkehrsbetriebe_Marketing_Abteilung_Aussenwerbung_2026"  # 64 characters, one word
PLACEMENT = "summer_launch_flyer_lobby_north_entrance"
CAMPAIGN = NAME.removesuffix("_approved")  # 61 characters
# What is drawn past the screen's right edge: text (a word too long for its line) and boxes (a select as wide as its
# longest choice, a table's cell), except inside what clips on purpose (an address cut with an ellipsis, a clamped
# paragraph, a box that scrolls sideways). A card's `overflow: hidden`, there for its corners, cuts off: it counts.
PAST_THE_SCREEN = """() => {
    const edge = window.innerWidth + 1, past = [];
    const clipped = (el) => { for (let box = el; box && box !== document.body; box = box.parentElement) {
        const style = getComputedStyle(box);
        if (/auto|scroll/.test(style.overflowX) || style.textOverflow === "ellipsis"
            || style.webkitLineClamp !== "none" || box.clientWidth <= 1) return true; } return false; };
    const main = document.querySelector("main");
    for (const el of main.querySelectorAll("*")) {
        if (el.checkVisibility() && el.getBoundingClientRect().right > edge && !clipped(el))
            past.push(`${el.tagName.toLowerCase()} ${(el.textContent || el.value || "").trim().slice(0, 40)}`);
    }
    const texts = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
    for (let text = texts.nextNode(); text; text = texts.nextNode()) {
        const range = document.createRange();
        range.selectNodeContents(text);
        if ([...range.getClientRects()].some((box) => box.right > edge) && text.parentElement.checkVisibility()
            && !clipped(text.parentElement)) past.push(`text ${text.textContent.trim().slice(0, 40)}`);
    }
    return {past, pageWidth: document.documentElement.scrollWidth};
}"""
# The characters a line of `el`'s text ends with, but its last (a <wbr> splits the text into nodes).
LINE_ENDS = """(el) => {
    const ends = [], texts = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    let last = null;
    for (let text = texts.nextNode(); text; text = texts.nextNode()) {
        for (let i = 0; i < text.length; i++) {
            const range = document.createRange();
            range.setStart(text, i);
            range.setEnd(text, i + 1);
            const box = range.getBoundingClientRect();
            if (!box.width) continue;
            if (last && box.top > last.top + 2) ends.push(last.char);
            last = {top: box.top, char: text.textContent[i]};
        }
    }
    return ends;
}"""


@pytest.fixture
def one_word_names(team_users) -> dict[str, str]:
    """A team, a campaign, its placement, a labeling session and a sweep each named in one long word, with scans, a
    finished job and human labels; the owner is staff (the eval pages). Returns the dashboard's pages by name."""
    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event
    from generator.evals import sessions
    from generator.models import EvalRun, HumanScanResult
    from tests.conftest import make_staff

    team = team_users.team
    team.name = TEAM
    team.save(update_fields=["name"])
    make_staff(team_users.owner)
    campaign = Campaign.objects.create(team=team, name=CAMPAIGN, destination="https://example.com/spring")
    placement = Placement.objects.create(campaign=campaign, name=f"{CAMPAIGN}_flyer",
                                         location=f"{CAMPAIGN}_location", printed_quantity=100)
    store_events([scan_event(placement.pk, timezone.now() - timedelta(days=days), visitor_key=f"{days:032d}")
                  for days in (0, 1, 5)])
    job = job_of_clean_codes(team, team_users.owner, [0.9, 0.2])
    job.prompt.text = "A lighthouse at dusk"  # the factory's names it after the team: a prompt is words, not a name
    job.prompt.save(update_fields=["text"])
    session = sessions.create_session(team, team_users.owner, f"Labeling_{NAME}", job.candidates.all(), 300)
    for candidate in job.candidates.all():
        HumanScanResult.objects.create(session=session, candidate=candidate, device="iPhone 15", app="Camera",
                                       scanned=candidate.scan_probability > 0.5)
    Placement.objects.create(campaign=campaign, name=PLACEMENT, printed_quantity=500)
    sweep = EvalRun.objects.create(name=f"Sweep_{NAME}", team=team, created_by=team_users.owner)
    return {"overview": "/campaigns/", "campaign": f"/campaigns/{campaign.pk}/",
            "campaign's edit": f"/campaigns/{campaign.pk}/edit/", "placement": f"/campaigns/placements/{placement.pk}/",
            "placement's edit": f"/campaigns/placements/{placement.pk}/edit/",
            "shares": f"/campaigns/{campaign.pk}/shares/", "import": f"/campaigns/{campaign.pk}/placements/import/",
            "bulk generate": f"/campaigns/{campaign.pk}/generate/", "webhooks": f"/campaigns/teams/{team.pk}/webhooks/",
            "generate": "/generate/", "jobs": "/generate/jobs/", "job": f"/generate/jobs/{job.pk}/",
            "team": f"/accounts/team/{team.pk}/", "account": "/accounts/", "evals": "/evals/",
            "labeling": "/evals/labeling/", "labeling's run": f"/evals/labeling/{session.pk}/run/",
            "labeling's summary": f"/evals/labeling/{session.pk}/done/", "sweeps": "/evals/runs/",
            "sweep": f"/evals/runs/{sweep.pk}/", "alignment": "/evals/alignment/"}


@pytest.mark.browser
def test_every_dashboard_page_keeps_one_word_names_within_a_phones_screen(new_page, team_users, one_word_names):
    # The line under a title (the team's name: the overview 579 px wide, a job 579), the crumbs (a campaign's name:
    # 514), the evals' lists (702), the alignment page's select of sessions (691) and the sweeps' rows, whose
    # figures the card cut off, ran past a 390 px screen.
    page, failures = new_page(viewport=PHONE, has_touch=True)  # a finger: the crumbs are 44 px boxes
    sign_in(page, "owner")
    past = {}
    for name, url in one_word_names.items():
        page.goto(url)
        found = page.evaluate(PAST_THE_SCREEN)
        if found["past"] or found["pageWidth"] > PHONE["width"]:
            past[name] = found
    assert past == {}, past
    assert failures == []


@pytest.mark.browser
def test_a_one_word_name_wraps_after_its_underscores_in_the_lists_of_campaigns_and_placements(new_page, team_users,
                                                                                                one_word_names):
    # `overflow-wrap: anywhere` cut a name at its column's edge ("SS26_DE_BER_OOH_Poster_UBa" / "hn_Mitte_..."),
    # in three lines beside figures' columns three times as wide as "0".
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    name = page.locator("[data-campaign-rows] tbody a", has_text="SS26")
    ends = name.evaluate(LINE_ENDS)
    assert ends and set(ends) == {"_"}, ends
    assert len(ends) <= 1, ends  # two lines at most
    page.goto(one_word_names["campaign"])
    for selector in ("main h1", "[data-comparison] tbody a.strong", "[data-comparison] [data-location]"):
        ends = page.locator(selector).first.evaluate(LINE_ENDS)
        assert set(ends) <= {"_"}, (selector, ends)
    assert failures == []


@pytest.mark.browser
def test_a_one_word_team_name_leaves_a_sweeps_name_its_room_and_the_table_its_card(new_page, team_users,
                                                                                  one_word_names):
    # The team kept whole: the sweep's name squeezed to 32 px, 22 lines of a syllable, and "Started" cut off at the
    # card's edge.
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", next_url="/evals/runs/")
    table = page.locator("table.table")
    assert table.evaluate("(el) => el.scrollWidth <= el.parentElement.clientWidth")
    assert table.locator("td").last.evaluate(WITHIN)
    run = table.locator("td").first.bounding_box()
    team = table.locator('td[data-label="Team"]').bounding_box()
    assert run["width"] >= team["width"] / 2, (run, team)
    for cell in (table.locator("td a").first, table.locator('td[data-label="Team"]')):
        assert set(cell.evaluate(LINE_ENDS)) <= {"_"}  # wrapped after its underscores
    assert failures == []


# Where a line of the page's main part breaks between two letters or digits of one word (outside code, fields, web
# addresses and what is read out only), and what is clipped with an ellipsis without its whole text in a title.
INSIDE_WORDS = r"""() => {
    const main = document.querySelector("main"), inside = [], untitled = [];
    for (const el of main.querySelectorAll("*")) {
        const whole = el.textContent.trim();
        if (el.checkVisibility() && getComputedStyle(el).textOverflow === "ellipsis" && el.scrollWidth > el.clientWidth
            && el.closest("[title]")?.title !== whole) untitled.push(whole.slice(0, 40));
    }
    const texts = document.createTreeWalker(main, NodeFilter.SHOW_TEXT), letter = /[\p{L}\p{N}]/u;
    let last = null;
    for (let text = texts.nextNode(); text; text = texts.nextNode()) {
        const parent = text.parentElement;
        if (!parent.checkVisibility() || parent.closest(".visually-hidden, code, select, textarea, .url-clip"))
            continue;
        for (let i = 0; i < text.length; i++) {
            const range = document.createRange();
            range.setStart(text, i);
            range.setEnd(text, i + 1);
            const box = range.getBoundingClientRect(), char = text.data[i];
            if (!box.width) {  // a space a line ends with is drawn nowhere: it still ends the word
                if (last) last.char = char;
                continue;
            }
            // A <wbr> splits a name into text nodes of one parent: a line may end at one, after an underscore.
            if (last && last.parent === parent && box.top > last.top + 2 && letter.test(last.char) && letter.test(char))
                inside.push(`${parent.tagName.toLowerCase()} ${text.data.slice(Math.max(0, i - 12), i)}|`
                            + text.data.slice(i, i + 12));
            last = {parent, top: box.top, char};
        }
    }
    return {inside, untitled};
}"""


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_no_dashboard_page_breaks_a_one_word_name_inside_a_word(new_page, team_users, one_word_names, viewport):
    # `overflow-wrap: anywhere` broke names where their box ended: the crumbs ("..._Alexand" / "erplatz_..."), the
    # team's name under a campaign's title, a team's page title, the labeling sessions' and the sweeps' names and a
    # sweep's team. A name wraps after its underscores, or stands on one line clipped, the whole in its title.
    page, failures = new_page(viewport=viewport, has_touch=viewport == PHONE)
    sign_in(page, "owner")
    broken = {}
    for name, url in one_word_names.items():
        page.goto(url)
        found = page.evaluate(INSIDE_WORDS)
        if found["inside"] or found["untitled"]:
            broken[name] = found
    assert broken == {}, broken
    assert failures == []


@pytest.mark.browser
def test_a_phones_more_actions_stand_two_a_row(new_page, team_users, one_word_names):
    # Each button's label and note were wider than half the screen: five full-width buttons one a line, 260 px.
    page, failures = new_page(viewport=PHONE, has_touch=True)
    sign_in(page, "owner", next_url=one_word_names["campaign"])
    page.locator("[data-more-actions] > summary").click()
    buttons = page.locator("[data-more-actions] .actions .button")
    boxes = [button.bounding_box() for button in buttons.all()]
    assert len(boxes) == 5, boxes
    rows = {round(box["y"]) for box in boxes}
    assert len(rows) == 3, boxes
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] for box in boxes), boxes
    assert all(box["height"] >= 44 for box in boxes), boxes  # still a finger's target
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert failures == []


@pytest.mark.browser
def test_a_desktops_comparison_gives_a_placements_name_its_room(new_page, team_users, one_word_names):
    # Sized by its words, the placement's column was the narrowest of seven (about 170 px of text):
    # summer_launch_flyer_lobby_north_entrance stood three lines, one part a line.
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", next_url=one_word_names["campaign"])
    name = page.locator("[data-comparison] tbody a.strong", has_text=PLACEMENT)
    assert len(name.evaluate(LINE_ENDS)) <= 1  # two lines at most
    assert failures == []
