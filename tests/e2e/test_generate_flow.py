"""The generation pages in a real browser: the halftone picture's crop and logo reaching the stored job, "print anyway"
from a job's candidate card, the print PNG download, and no page wider than the screen at desktop and phone sizes
(each screenshot saved for a person to look at).

Headless Chromium (Debian's) against pytest-django's live server; no worker is needed: the job is not enqueued,
and finished jobs are made in the test.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from campaigns.models import Campaign, Placement
from generator import views
from generator.models import GenerationJob
from tests.campaigns.conftest import make_art
from tests.e2e.conftest import DESKTOP, PHONE, TIMEOUT_MS, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
RED, BLUE = (220, 20, 20), (20, 20, 220)


def halves(path: Path) -> Path:
    """Red on the left half, blue on the right: the colour of the stored square says which half was kept."""
    picture = Image.new("RGB", (400, 200), RED)
    picture.paste(BLUE, (200, 0, 400, 200))
    picture.save(path, format="PNG")
    return path


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0: nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


# What a card's `overflow: hidden` clips never widens the page, so it is looked for separately: anything sticking
# out of its card, and text wider than its own box (the download buttons' labels once overlapped).
SPILLS = """() => {
  const found = [];
  document.querySelectorAll(".card, .candidate").forEach((card) => {
    const edge = card.getBoundingClientRect();
    card.querySelectorAll("*").forEach((el) => {
      const box = el.getBoundingClientRect();
      if (box.width && (box.right > edge.right + 1 || box.left < edge.left - 1))
        found.push(el.tagName.toLowerCase() + "." + el.className + " outside its card");
    });
  });
  document.querySelectorAll(".downloads a, .badge, .button").forEach((el) => {
    if (el.scrollWidth > el.clientWidth + 1) found.push(el.textContent.trim() + " wider than its box");
  });
  return found;
}"""


@pytest.mark.browser
def test_the_crop_chosen_on_the_page_is_the_picture_the_job_keeps(live_server, team_users, browser, tmp_path,
                                                                   monkeypatch):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: False)  # the page starts on halftone
    monkeypatch.setattr(views.jobs, "enqueue_generation", lambda job: None)
    base = live_server.url
    context = browser.new_context(base_url=base, viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, "owner")
        page.goto("/generate/")
        expect(page.get_by_text("Upload a picture or logo")).to_be_visible()
        expect(page.get_by_text("Describe a picture")).to_be_hidden()
        expect(page.locator("#gallery-title")).to_be_hidden()
        expect(page.locator("#id_guidance_scale")).to_be_hidden()
        crop = page.locator("[data-crop]")
        expect(crop).to_be_hidden()  # no picture yet: no empty frame
        page.locator("#id_picture").set_input_files(str(halves(tmp_path / "halves.png")))
        expect(crop).to_be_visible()
        expect(page.locator("#id_crop_zoom")).to_have_value("1.000")

        # Zoom in twice, then drag the picture left: the frame moves over the blue half, and stops at its edge.
        page.locator("[data-crop-zoom]").fill("2")
        frame = page.locator("[data-crop-frame]").bounding_box()
        x, y = frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - frame["width"] * 3, y, steps=5)
        page.mouse.up()
        expect(page.locator("#id_crop_x")).to_have_value("0.8750")  # the square's centre, as far right as it goes
        expect(page.locator("#id_crop_zoom")).to_have_value("2.000")

        # A logo for the centre: its own input, which leaves the crop alone.
        Image.new("RGB", (90, 90), RED).save(tmp_path / "logo.png", format="PNG")
        page.get_by_label("Logo in the centre (optional)").set_input_files(str(tmp_path / "logo.png"))
        expect(page.locator("#id_crop_x")).to_have_value("0.8750")

        page.fill("#id_content", "https://qart.example/r/AbC123")
        page.get_by_role("button", name="Generate candidates").click()
        page.wait_for_url(f"{base}/generate/jobs/*/")
        job = GenerationJob.objects.get()
        with job.init_image.open("rb") as stored:
            picture = Image.open(io.BytesIO(stored.read())).convert("RGB")
        assert picture.size == (100, 100)
        assert picture.getpixel((0, 0)) == BLUE and picture.getpixel((99, 99)) == BLUE
        assert job.ecc == "H" and job.logo
        with job.logo.open("rb") as stored:
            assert Image.open(io.BytesIO(stored.read())).convert("RGB").getpixel((45, 45)) == RED
    finally:
        context.close()


@pytest.mark.browser
def test_print_anyway_from_the_job_page_offers_the_image_not_print_files(live_server, team_users, new_page):
    from playwright.sync_api import expect

    base = live_server.url
    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair", destination=f"{base}/healthz")
    placement = Placement.objects.create(campaign=campaign, name="Poster at the gate", printed_width_cm=20)
    failing = make_art(team_users.team, team_users.owner, f"{base}/r/{placement.slug}", verdict="fail",
                       probability=0.1)
    job = failing.job
    GenerationJob.objects.filter(pk=job.pk).update(placement=placement)

    page, failures = new_page(viewport=DESKTOP, accept_downloads=True)
    sign_in(page, "owner")
    page.goto(f"/generate/jobs/{job.pk}/")
    card = page.locator(f"#candidate-{failing.pk}")
    expect(card.locator("[data-reliability]")).to_have_text("Scan reliability: poor")
    expect(card.locator("[data-scan-probability]")).to_be_hidden()  # the numbers, one click away
    card.get_by_text("The numbers").click()
    expect(card.locator("[data-scan-probability]")).to_have_text("10 %")

    card.get_by_role("button", name="Use anyway…").click()
    expect(page.locator("[data-refused]")).to_have_attribute("data-refused", "scan")
    page.get_by_label("Why print it anyway").fill("proof for the client")
    page.get_by_role("button", name="Print anyway").click()
    expect(page).to_have_url(f"{base}/generate/jobs/{job.pk}/#candidate-{failing.pk}")
    expect(page.locator(".messages, [role=alert], .message").first).to_contain_text(
        f"Candidate #{failing.rank} is now the artwork of")
    placement.refresh_from_db()
    assert placement.artwork_id == failing.pk and placement.print_anyway_reason == "proof for the client"

    # The card links to the placement, whose page has the print files (off for this one, as the message says);
    # a code that fails is offered as drawn, never "for print", with a word on why.
    expect(card.get_by_role("link", name="Poster at the gate")).to_have_attribute(
        "href", f"/campaigns/placements/{placement.pk}/")
    expect(card.get_by_role("link", name="1024 px", exact=False)).to_have_count(0)
    expect(card.locator("[data-no-print]")).to_contain_text("It fails the scan check: do not print it.")
    with page.expect_download() as info:
        card.locator("[data-no-print] a").click()
    assert Image.open(info.value.path()).size == (256, 256)
    assert not failures, failures


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_generation_page_is_wider_than_the_screen(live_server, team_users, browser, tmp_path, viewport):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    base = live_server.url
    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair", destination=f"{base}/healthz")
    placement = Placement.objects.create(campaign=campaign, name="Poster at the gate with a long name indeed",
                                         printed_width_cm=20)
    art = make_art(team_users.team, team_users.owner, f"{base}/r/{placement.slug}")
    # The widest seed there is: it once ran out of its card.
    art.seed = 2**63 - 1
    art.save(update_fields=["seed"])
    placement.artwork = art
    placement.save(update_fields=["artwork"])

    context = browser.new_context(base_url=base, viewport=viewport)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, "owner")
        pages = {"generate": "/generate/", "jobs": "/generate/jobs/", "job": f"/generate/jobs/{art.job_id}/",
                 "placement": f"/campaigns/placements/{placement.pk}/"}
        for name, url in pages.items():
            page.goto(url)
            if name == "job":
                page.get_by_text("The numbers").first.click()  # the seed shows
                expect(page.locator("dd.seed").first).to_have_text(str(2**63 - 1))
            if name == "placement":
                expect(page.locator("[data-preflight-summary]")).to_be_visible()  # the preflight panel
            page.screenshot(path=str(tmp_path / f"{name}-{viewport['width']}.png"), full_page=True)
            assert horizontal_overflow(page) <= 0, f"{url} scrolls sideways at {viewport['width']} px"
            assert page.evaluate(SPILLS) == [], url
    finally:
        context.close()


@pytest.mark.browser
def test_an_earlier_code_is_offered_only_for_its_own_link(team_users, new_page):
    # A picture that is a code of another link is refused (both would be read): the page offered every earlier
    # code and then refused the one chosen.
    from playwright.sync_api import expect

    earlier = make_art(team_users.team, team_users.owner, "https://shop.example.com/old-poster")
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto("/generate/")
    radio = page.locator(f'input[name="earlier_candidate"][value="{earlier.pk}"]')
    content = page.locator("#id_content")
    content.fill("https://shop.example.com/new-poster")
    expect(radio).to_be_disabled()
    content.fill("https://shop.example.com/old-poster")
    expect(radio).to_be_enabled()
    assert not failures, failures


@pytest.mark.browser
def test_the_prompt_counts_its_characters_and_keeps_a_long_paste(live_server, team_users, new_page):
    # The prompt box once stopped at 1,000 characters with no count: a longer prompt pasted was cut without a word.
    from playwright.sync_api import expect

    page, failures = new_page(viewport=PHONE)
    sign_in(page, "owner")
    page.goto("/generate/")
    page.check('input[name="engine"][value="diffusion"]')
    prompt, count = page.locator("#id_prompt"), page.locator("#id_prompt_count")
    expect(prompt).to_have_attribute("aria-describedby", re.compile(r"\bid_prompt_count\b"))
    prompt.fill("a koi pond")
    expect(count).to_have_text("10 of 1,000 characters.")
    expect(count).to_have_attribute("aria-live", "off")
    prompt.fill("x" * 950)
    expect(count).to_have_text("50 characters left.")
    expect(count).to_have_attribute("aria-live", "polite")
    prompt.fill("x" * 1000 + "\n  ")  # the form strips the ends: as many as the server counts
    expect(count).to_have_text("0 characters left.")
    prompt.fill("x" * 1010)
    expect(count).to_have_text("10 characters too many: at most 1,000.")
    assert len(prompt.input_value()) == 1010  # nothing cut

    page.fill("#id_content", "https://shop.example.com/spring")
    page.get_by_role("button", name="Generate candidates").click()
    expect(page.locator("#form-errors")).to_contain_text(
        "The prompt can be at most 1,000 characters; this one has 1,010. Shorten it.")
    expect(page.locator("#id_prompt")).to_have_value("x" * 1010)
    expect(page.locator("#id_prompt_count")).to_have_text("10 characters too many: at most 1,000.")
    assert not failures, failures


@pytest.mark.browser
def test_a_new_picture_replaces_the_last_ones_message_and_an_earlier_code_ticked(team_users, new_page, tmp_path):
    # After a refused upload its message stayed beside a good picture chosen next; an earlier code ticked before
    # stayed ticked beside the upload, which the server takes instead.
    from playwright.sync_api import expect

    link = "https://shop.example.com/old-poster"
    earlier = make_art(team_users.team, team_users.owner, link)
    (tmp_path / "notimage.png").write_bytes(b"this is no picture")
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto("/generate/")
    page.check('input[name="engine"][value="halftone"]')
    page.locator("#id_content").fill(link)
    page.locator("#id_picture").set_input_files(str(tmp_path / "notimage.png"))
    page.locator("form[data-generate-form] button[type=submit]").first.click()
    message = page.locator(".field:has(#id_picture) .errorlist")
    expect(message).to_be_visible()
    radio = page.locator(f'input[name="earlier_candidate"][value="{earlier.pk}"]')
    radio.check()
    page.locator("#id_picture").set_input_files(str(halves(tmp_path / "halves.png")))
    expect(message).to_have_count(0)
    expect(radio).not_to_be_checked()
    assert not failures, failures


@pytest.mark.browser
def test_a_picture_past_the_pixel_limit_is_refused_before_it_is_sent(team_users, new_page, tmp_path, settings):
    # A 48-megapixel phone photo (1.5 MB) passed the page's size check and was refused by the server after the upload
    from PIL import Image
    from playwright.sync_api import expect

    settings.QART = {**settings.QART, "MAX_IMAGE_PIXELS": 1_000_000}
    Image.new("RGB", (1200, 900), "teal").save(tmp_path / "big.jpg", quality=60)  # 1.08 megapixels
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto("/generate/")
    picture = page.locator("#id_picture")
    picture.set_input_files(str(tmp_path / "big.jpg"))
    # Polled by Playwright's own script: a polled string expression needs eval, which the page's CSP forbids
    expect(picture).to_have_js_property(
        "validationMessage",
        "This picture is 1200×900 (1.1 megapixels); pictures up to 1 megapixels are accepted. Resize it first.")
    Image.new("RGB", (900, 900), "teal").save(tmp_path / "fits.jpg", quality=60)
    picture.set_input_files(str(tmp_path / "fits.jpg"))
    expect(page.locator("[data-crop-image]")).to_have_js_property("naturalWidth", 900)  # its preview decoded
    assert picture.evaluate("(el) => el.validationMessage") == ""
    assert not failures, failures


@pytest.mark.browser
def test_a_picture_over_the_cap_is_refused_before_it_is_sent_in_the_servers_words(
        team_users, new_page, tmp_path, settings):
    # A cap under 1 MB read "pictures up to 0 MB"; a file 400 bytes over it would have read as the cap itself
    from playwright.sync_api import expect

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200 * 1024  # for a small file here; 10 MB by default
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), "teal").save(buffer, format="PNG")
    data = buffer.getvalue()
    (tmp_path / "big.png").write_bytes(data + b"\0" * (200 * 1024 + 400 - len(data)))  # decoders stop at its end
    link = "https://shop.example.com/old-poster"
    earlier = make_art(team_users.team, team_users.owner, link)
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto("/generate/")
    picture = page.locator("#id_picture")
    picture.set_input_files(str(tmp_path / "big.png"))
    # the words of generator.core.codes.amounts.over_cap, which the server's own refusal uses
    expect(picture).to_have_js_property(
        "validationMessage", "This picture is 200.4 KB; pictures up to 200 KB are accepted. Save it smaller first.")
    # An earlier code ticked instead empties the picture: its message goes too (it stayed and blocked the form)
    page.locator("#id_content").fill(link)
    page.locator(f'input[name="earlier_candidate"][value="{earlier.pk}"]').check()
    expect(picture).to_have_js_property("validationMessage", "")
    assert not failures, failures


@pytest.mark.browser
def test_a_picture_and_a_logo_over_the_cap_together_are_refused_before_they_are_sent(
        team_users, new_page, tmp_path, settings, monkeypatch):
    # The page checked the picture alone; the server's cap counts a request's files together (qartsite.limits), so
    # the two went up to be refused by the 413 page
    from playwright.sync_api import expect

    monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: False)  # the page starts on halftone
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200 * 1024  # for small files here; 10 MB by default
    for name in ("picture.png", "logo.png"):  # each within the cap alone; decoders stop at the PNG's end
        Image.new("RGB", (300, 300), "teal").save(tmp_path / name, format="PNG")
        (tmp_path / name).write_bytes((tmp_path / name).read_bytes().ljust(120 * 1024, b"\0"))
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto("/generate/")
    page.locator("#id_content").fill("https://example.com/kept")
    page.locator("#id_picture").set_input_files(str(tmp_path / "picture.png"))
    page.locator("#id_logo").set_input_files(str(tmp_path / "logo.png"))
    expect(page.locator("#id_logo")).to_have_js_property(
        "validationMessage", "The picture and the logo are 240 KB together; up to 200 KB is accepted, the two counted "
                             "together. Choose a smaller picture or logo.")
    page.get_by_role("button", name="Generate candidates").click()
    assert page.url.endswith("/generate/") and page.locator("#id_content").input_value() == "https://example.com/kept"
    assert not GenerationJob.objects.exists() and not failures, failures


@pytest.mark.browser
def test_a_pictures_pixel_message_shows_once_its_size_message_goes(team_users, new_page, tmp_path, settings,
                                                                   monkeypatch):
    # The pixel check held its message back while the size message showed; removing the logo cleared the size message
    # and nothing said the picture's own problem until the server refused it after the upload
    from playwright.sync_api import expect

    monkeypatch.setattr("generator.engine_status.diffusion_has_weights", lambda: False)  # the page starts on halftone
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200 * 1024  # for small files here; 10 MB by default
    settings.QART = {**settings.QART, "MAX_IMAGE_PIXELS": 1_000_000}
    Image.new("RGB", (1200, 900), "teal").save(tmp_path / "picture.png", format="PNG")  # 1.08 megapixels
    Image.new("RGB", (300, 300), "teal").save(tmp_path / "logo.png", format="PNG")
    for name in ("picture.png", "logo.png"):  # each within the cap alone; decoders stop at the PNG's end
        (tmp_path / name).write_bytes((tmp_path / name).read_bytes().ljust(120 * 1024, b"\0"))
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    page.goto("/generate/")
    picture, logo = page.locator("#id_picture"), page.locator("#id_logo")
    logo.set_input_files(str(tmp_path / "logo.png"))
    picture.set_input_files(str(tmp_path / "picture.png"))
    expect(picture).to_have_js_property(
        "validationMessage", "The picture and the logo are 240 KB together; up to 200 KB is accepted, the two counted "
                             "together. Choose a smaller picture or logo.")
    expect(page.locator("[data-crop-image]")).to_have_js_property("naturalWidth", 1200)  # its pixels checked
    logo.set_input_files([])
    expect(picture).to_have_js_property(
        "validationMessage",
        "This picture is 1200×900 (1.1 megapixels); pictures up to 1 megapixels are accepted. Resize it first.")
    assert logo.evaluate("(el) => el.validationMessage") == "" and not failures, failures


@pytest.mark.browser
def test_a_picture_over_the_cap_sent_without_javascript_gets_the_sites_page_and_a_way_back(
        live_server, team_users, browser, tmp_path, settings):
    # With JavaScript off nothing checks the size before it is sent: the answer was the server's plain-text 413
    from playwright.sync_api import expect

    from tests.e2e.conftest import watched_page

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200 * 1024  # for a small file here; 10 MB by default
    (tmp_path / "big.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 400 * 1024)
    context, page, failures = watched_page(browser, live_server.url, TIMEOUT_MS, viewport=DESKTOP,
                                           java_script_enabled=False)
    try:
        expect.set_options(timeout=TIMEOUT_MS)
        sign_in(page, "owner")
        page.goto("/generate/")
        page.locator("#id_picture").set_input_files(str(tmp_path / "big.png"))
        page.get_by_role("button", name="Generate candidates").click()
        expect(page.locator("[data-too-large]")).to_have_text(
            "What you sent is over 200 KB (its files count together, a picture and a logo alike); choose a smaller "
            "file.")
        page.screenshot(path=tmp_path / "too-large.png", full_page=True)
        page.get_by_role("link", name="Back to the form").click()
        expect(page.locator("#id_picture")).to_be_visible()
        assert page.url.endswith("/generate/") and not GenerationJob.objects.exists()
        assert failures == [], failures
    finally:
        context.close()


# Each line of a caption's link part, as laid out: its characters grouped by the top of their boxes (the date after
# it, in its own span, is left out).
CAPTION_LINES = """(caption) => {
  const lines = new Map();
  const walker = document.createTreeWalker(caption, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest(".muted")) continue;
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const top = Math.round(range.getBoundingClientRect().top);
      lines.set(top, (lines.get(top) || "") + node.data[i]);
    }
  }
  return [...lines.keys()].sort((a, b) => a - b).map((top) => lines.get(top));
}"""


@pytest.mark.browser
def test_an_earlier_codes_link_breaks_only_after_a_slash_on_a_phone(team_users, new_page, tmp_path):
    # The narrow caption broke "qart.example/r/AbC12345" anywhere: "qart.exampl / e/r/AbC123 / 45".
    earlier = make_art(team_users.team, team_users.owner, "https://qart.example/r/AbC12345")
    page, failures = new_page(viewport=PHONE)
    sign_in(page, "owner")
    page.goto("/generate/")
    caption = page.locator(f'label:has(input[value="{earlier.pk}"]) .earlier-caption')
    caption.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "earlier-caption-phone.png"), full_page=True)
    lines = caption.evaluate(CAPTION_LINES)
    assert "".join(lines) == "qart.example/r/AbC12345"
    assert len(lines) > 1, lines  # it does wrap at this width: the test would prove nothing otherwise
    assert all(line.endswith("/") for line in lines[:-1]), lines
    assert horizontal_overflow(page) == 0
    assert not failures, failures
