"""The campaign dashboard in a real browser: pick a date range (a preset, then a custom one) and read the placement
comparison table and the charts it drives.

Headless Chromium (Debian's) against pytest-django's live server; scans are stored the way the drainer stores them,
so the rollups the pages read are the real ones.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e.conftest import TIMEOUT_MS, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
# How many lines each first and last scan's date of the placement comparison is drawn on.
DATE_LINES = """() => [...document.querySelectorAll(
    '[data-comparison] td[data-label^="First scan"], [data-comparison] td[data-label^="Last scan"]')].map(cell => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    return new Set([...range.getClientRects()].map(box => Math.round(box.top))).size;
})"""



@pytest.mark.browser
def test_a_range_drives_the_tiles_comparison_and_charts(live_server, team_users, browser, tmp_path):
    from playwright.sync_api import expect

    from campaigns.drainer import store_events
    from campaigns.models import Campaign, Placement
    from campaigns.scan_buffer import scan_event

    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/")
    gate = Placement.objects.create(campaign=campaign, name="Poster at the gate with a rather long name",
                                    printed_quantity=200)
    flyer = Placement.objects.create(campaign=campaign, name="Flyer")
    now = timezone.now()
    store_events([scan_event(gate.pk, now - timedelta(days=days, minutes=n), device_class="mobile", os="iOS",
                             visitor_key=f"{days:016d}{n:016d}", country="FR", accept_language="fr-FR")
                  for days in (0, 1, 2, 20) for n in range(2)]
                 + [scan_event(flyer.pk, now - timedelta(days=40), device_class="desktop", visitor_key="f")])

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def tile(name: str):
        return page.locator(f'[data-tile="{name}"]')

    def row(name: str):
        return page.locator(f'tr[data-placement="{name}"]')

    try:
        sign_in(page, "viewer")
        page.get_by_role("link", name="Harbour festival").click()

        # The default range: the last 30 days.
        expect(tile("scans")).to_have_text("8")
        expect(page.locator("[data-range-label]")).to_contain_text("Last 30 days")
        expect(row(gate.name).locator('[data-col="per100"]')).to_contain_text("4.0")
        expect(page.locator("tr[data-placement]").first).to_have_attribute("data-placement", gate.name)
        drawn = page.evaluate("() => [...document.querySelectorAll('canvas[data-chart]')]"
                              ".map(c => Boolean(window.Chart && window.Chart.getChart(c)))")
        assert drawn == [True, True, True], drawn
        # The countries card names the code it was given, and keeps the code in its title.
        country = page.locator('[data-region="FR"]')
        expect(country).to_have_text("France")
        expect(country).to_have_attribute("title", "France (FR)")
        # A first or last scan's date reads on one line: "6 Dec / 2026 / 17:50" took three beside a long name.
        lines = page.evaluate(DATE_LINES)
        assert lines and set(lines) == {1}, lines
        page.screenshot(path=shots / "1-30-days.png", full_page=True)

        # A preset.
        page.get_by_role("link", name="7 days").click()
        expect(page).to_have_url(re.compile(r"\?range=7d$"))
        expect(tile("scans")).to_have_text("6")
        expect(row(flyer.name).locator('[data-col="scans"]')).to_have_text("0")

        # Lifetime reaches the flyer's old scan.
        page.get_by_role("link", name="Lifetime").click()
        expect(tile("scans")).to_have_text("9")
        expect(row(flyer.name).locator('[data-col="scans"]')).to_have_text("1")

        # A custom range, typed into the date fields.
        day = (now - timedelta(days=20)).astimezone(team_users.team.zone).date()
        page.fill('input[name="from"]', (day - timedelta(days=1)).isoformat())
        page.fill('input[name="to"]', (day + timedelta(days=1)).isoformat())
        page.get_by_role("button", name="Show").click()
        expect(tile("scans")).to_have_text("2")
        expect(tile("unique")).to_have_text("2")
        expect(page.locator("[data-range-label]")).to_contain_text("Custom range")  # the fields show the days
        expect(page.locator('input[name="from"]')).to_have_value((day - timedelta(days=1)).isoformat())
        csv_link = page.get_by_role("link", name="Download scans (CSV, bots marked)")
        expect(csv_link).to_have_attribute("href", re.compile(r"range=custom&from=.*&to="))
        page.screenshot(path=shots / "2-custom.png", full_page=True)
        assert not errors, errors
    finally:
        context.close()


@pytest.mark.browser
def test_a_campaign_never_scanned_says_what_to_do_next_instead_of_empty_charts(live_server, team_users, new_page,
                                                                              tmp_path):
    from playwright.sync_api import expect

    from campaigns.models import Campaign, Placement

    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/")
    Placement.objects.create(campaign=campaign, name="Poster at the gate")
    page, failures = new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requested: list[str] = []
    sign_in(page, "viewer")
    page.on("request", lambda request: requested.append(request.url))  # the campaign page's, from here
    page.get_by_role("link", name="Harbour festival").click()
    note = page.locator("[data-no-scans-yet]")
    expect(note).to_contain_text("No scans yet")
    assert page.locator("canvas").count() == 0 and not any("chart.umd" in url for url in requested), requested
    note.get_by_role("link", name="open a placement").click()  # it leads to the placements' table
    expect(page.locator('tr[data-placement="Poster at the gate"]')).to_be_in_viewport()
    page.screenshot(path=tmp_path / "never-scanned.png", full_page=True)
    assert not errors and not failures, (errors, failures)


@pytest.mark.browser
def test_a_teams_overview_never_scanned_says_what_to_do_next_instead_of_empty_charts(live_server, team_users,
                                                                                   new_page, tmp_path):
    from playwright.sync_api import expect

    from campaigns.models import Campaign, Placement
    from tests.e2e.conftest import PHONE

    campaign = Campaign.objects.create(team=team_users.team, name="Harbour festival",
                                       destination="https://shop.example.com/")
    Placement.objects.create(campaign=campaign, name="Poster at the gate")
    page, failures = new_page(viewport=PHONE)  # on a phone the campaigns' table is a screen above the line
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    sign_in(page, "viewer")  # lands on the campaign list
    note = page.locator("[data-no-scans-yet]")
    expect(note).to_contain_text("No scans yet")
    expect(page.locator('[data-tile="scans"]')).to_have_text("0")  # the tiles stay
    assert page.locator("canvas").count() == 0 and not any("chart.umd" in url for url in requested), requested
    note.get_by_role("link", name="open a campaign").click()  # it leads to the campaigns' table
    expect(page.get_by_role("link", name="Harbour festival")).to_be_in_viewport()
    page.screenshot(path=tmp_path / "overview-never-scanned.png", full_page=True)
    assert not errors and not failures, (errors, failures)


@pytest.mark.browser
def test_a_dst_ranges_chart_has_its_local_days_and_the_tables_and_tiles_totals(live_server, team_users, new_page):
    """Berlin's 25-hour day of 2026-10-25 between its neighbours (`tests.campaigns.figure_data`, which derives each
    figure from the raw scans): the chart Chart.js drew holds one bar per local day, the per-day table's counts and
    the tiles' totals."""
    from tests.campaigns.figure_data import figure_data

    data = figure_data(team_users.team)
    page, failures = new_page(viewport={"width": 1280, "height": 1000})
    sign_in(page, "viewer")
    page.goto(f"/campaigns/{data.autumn.pk}/?from=2026-10-24&to=2026-10-26")
    drawn = page.evaluate("""() => {
        const chart = window.Chart.getChart(document.querySelector('canvas[data-chart="scan-chart"]'));
        return {labels: chart.data.labels, scans: chart.data.datasets[0].data, unique: chart.data.datasets[1].data};
    }""")
    assert drawn == {"labels": ["24 Oct", "25 Oct", "26 Oct"], "scans": [1, 17, 1], "unique": [1, 5, 1]}
    table = page.evaluate("""() => [...document.querySelector('details.daily tbody').rows].map(
        row => [...row.cells].map(cell => cell.textContent.trim()))""")  # the first: scans per day, newest first
    assert table == [["26 Oct 2026", "1", "1"], ["25 Oct 2026", "17", "5"], ["24 Oct 2026", "1", "1"]], table
    tiles = [page.locator(f'[data-tile="{name}"]').text_content() for name in ("scans", "unique")]
    assert tiles == [str(sum(drawn["scans"])), str(sum(drawn["unique"]))] == ["19", "7"]
    # The 25-hour day's two 02:30s in one hour's bar; every scan in one hour and on one weekday
    patterns = page.evaluate("""() => ['hours-chart', 'weekdays-chart'].map(name => window.Chart.getChart(
        document.querySelector(`canvas[data-chart="${name}"]`)).data.datasets[0].data)""")
    assert patterns[0][2] == 2 and sum(patterns[0]) == sum(patterns[1]) == 19, patterns
    assert not failures, failures
