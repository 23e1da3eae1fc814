"""The site with a keyboard alone, and where focus goes: a refused form starts on its summary, the skip link leads
past the menu, the phone's menu button says whether it is open, the menus close as menus do, the crop moves with
the arrow keys, a choice that sends its form waits for Enter, and a link or secret shown once has the focus.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest
from PIL import Image

from campaigns.models import Campaign, Placement
from tests.e2e.conftest import DESKTOP, PHONE, TIMEOUT_MS, sign_in, watched_page
from tests.generator.factories import job_of_clean_codes

pytestmark = pytest.mark.django_db(transaction=True)
ERROR_BORDER = "rgb(180, 35, 24)"  # #b42318


def focused(page) -> str:
    """The focused element's id (or its tag, without one)."""
    return page.evaluate("document.activeElement.id || document.activeElement.tagName.toLowerCase()")


@pytest.mark.browser
def test_a_refused_sign_in_and_print_file_start_on_their_summary(live_server, team_users, new_page):
    from playwright.sync_api import expect

    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair", destination="https://example.com/")
    placement = Placement.objects.create(campaign=campaign, name="Poster at the gate")
    page, failures = new_page(viewport=DESKTOP)
    page.goto("/accounts/login/")
    expect(page.locator("#id_username")).to_be_focused()  # nothing refused yet: straight to typing
    page.fill("#id_username", "owner")
    page.fill("#id_password", "not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#form-errors")).to_be_focused()  # the refusal, not the username, is read first
    expect(page.locator("#form-errors")).to_contain_text("Not signed in")

    sign_in(page, "owner")
    page.goto(f"/campaigns/placements/{placement.pk}/print?width=20")
    expect(page.locator("#print-error")).to_be_focused()
    width = page.locator('input[name="width"]')
    expect(width).to_have_attribute("aria-invalid", "true")
    assert width.evaluate("el => getComputedStyle(el).borderTopColor") == ERROR_BORDER
    assert failures == []


@pytest.mark.browser
def test_the_first_tab_offers_to_skip_to_the_content(live_server, browser):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context, page, _ = watched_page(browser, live_server.url, TIMEOUT_MS, viewport=DESKTOP)
    try:
        page.goto("/")
        skip = page.get_by_role("link", name="Skip to content")
        expect(skip).not_to_be_in_viewport()  # out of sight until Tab reaches it
        page.keyboard.press("Tab")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()
        page.keyboard.press("Enter")
        assert focused(page) == "content"
    finally:
        context.close()


@pytest.mark.browser
def test_the_staff_menu_closes_on_escape_and_when_focus_leaves(live_server, team_users, new_page):
    from playwright.sync_api import expect

    team_users.owner.is_staff = True
    team_users.owner.save()
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    menu, summary = page.locator("details.nav-staff"), page.locator("details.nav-staff summary")
    expect(summary).to_have_accessible_name("Staff")  # not "Staff ▾"
    summary.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Evals")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    expect(summary).to_be_focused()

    page.keyboard.press("Enter")
    for _ in range(5):  # its five links
        page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Admin")).to_be_focused()
    page.keyboard.press("Tab")  # on to the account link: out of the menu
    expect(menu).not_to_have_attribute("open", "")
    assert failures == []


@pytest.mark.browser
def test_the_phone_menu_button_says_whether_it_is_open_and_closes_on_escape(live_server, team_users, new_page):
    from playwright.sync_api import expect

    team_users.owner.is_staff = True
    team_users.owner.save()
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "owner")
    header = page.locator("header.topbar")
    expect(header.get_by_role("checkbox")).to_have_count(0)  # the old toggle was read out as a checkbox
    button, generate = page.get_by_role("button", name="Menu"), page.get_by_role("link", name="Generate")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(generate).to_be_hidden()

    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(generate).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Campaigns", exact=True)).to_be_focused()
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()
    expect(generate).to_be_hidden()

    # The staff menu inside takes the first Escape, the phone menu the next.
    page.keyboard.press("Space")
    expect(button).to_have_attribute("aria-expanded", "true")
    staff_menu = page.locator("details.nav-staff")
    page.locator("details.nav-staff summary").focus()
    page.keyboard.press("Enter")
    expect(staff_menu).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    expect(staff_menu).not_to_have_attribute("open", "")
    expect(button).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()

    button.click()  # and with a finger
    expect(button).to_have_attribute("aria-expanded", "true")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "false")
    assert failures == []  # nav-menu.js ran: nothing the Content-Security-Policy blocked


@pytest.mark.browser
def test_the_arrow_keys_move_the_crop(live_server, team_users, new_page, tmp_path, monkeypatch):
    from playwright.sync_api import expect

    monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: False)  # the page starts on halftone
    Image.new("RGB", (400, 200), (220, 20, 20)).save(tmp_path / "wide.png", format="PNG")
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto("/generate/")
    page.locator("#id_picture").set_input_files(str(tmp_path / "wide.png"))
    frame = page.get_by_role("group", name="Crop")
    expect(frame).to_be_visible()
    crop_x = page.locator("#id_crop_x")
    expect(crop_x).to_have_value("0.5000")

    frame.focus()
    scrolled = page.evaluate("window.scrollY")
    page.keyboard.press("ArrowRight")  # a twentieth of the square (200 px): 10 px of 400
    expect(crop_x).to_have_value("0.5250")
    page.keyboard.press("Shift+ArrowLeft")  # a quarter: 50 px
    expect(crop_x).to_have_value("0.4000")
    for _ in range(10):
        page.keyboard.press("Shift+ArrowLeft")
    expect(crop_x).to_have_value("0.2500")  # the square's edge at the picture's: no further
    expect(page.locator("#id_crop_y")).to_have_value("0.5000")
    assert page.evaluate("window.scrollY") == scrolled  # the arrows moved the crop, not the page
    assert failures == []


@pytest.mark.browser
def test_the_alignment_pages_session_choice_waits_for_enter_from_the_keyboard(live_server, team_users, new_page):
    # Each arrow sent the form: the page came back with focus on nothing, and only the next session could be reached.
    from playwright.sync_api import expect

    from generator.evals import sessions
    from tests.conftest import staff

    staff(team_users.owner)
    job = job_of_clean_codes(team_users.team, team_users.owner)
    made = [sessions.create_session(team_users.team, team_users.owner, name, job.candidates.all(), 300)
            for name in ("Friday", "Saturday", "Sunday")]
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", next_url="/evals/alignment/")
    choice = page.get_by_label("Session")
    choice.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(choice).to_be_focused()
    assert page.url.endswith("/evals/alignment/")
    wanted = choice.input_value()
    assert wanted == str(made[1].pk)  # newest first: past Sunday to Saturday
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.url}/evals/alignment/?session={wanted}")
    expect(page.get_by_label("Session")).to_have_value(wanted)

    page.get_by_label("Session").select_option(str(made[0].pk))  # a pointer's choice is sent at once
    expect(page).to_have_url(f"{live_server.url}/evals/alignment/?session={made[0].pk}")
    assert failures == []


@pytest.mark.browser
def test_a_new_share_link_and_signing_secret_have_the_focus(live_server, team_users, new_page):
    """Each is shown once: after "Make link" or "New secret" the focus was back at the page's top, a page of tabs
    (a phone's screen of scrolling) away from the one thing to copy."""
    from playwright.sync_api import expect

    from campaigns import webhooks
    from campaigns.webhook_models import WebhookEndpoint

    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair", destination="https://example.com/")
    WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/qart",
                                   events=["scan.created"], secret=webhooks.new_secret())
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "owner")
    page.goto(f"/campaigns/{campaign.pk}/shares/")
    page.fill("#id_label", "Agency Blue")
    page.keyboard.press("Enter")
    link = page.get_by_label("Share link")
    expect(link).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Copy")).to_be_focused()

    page.goto(f"/campaigns/teams/{team_users.team.pk}/webhooks/")
    page.once("dialog", lambda dialog: dialog.accept())  # "Make a new secret? …"
    page.get_by_role("button", name="New secret").click()
    expect(page.get_by_label("Signing secret")).to_be_focused()
    assert failures == []
