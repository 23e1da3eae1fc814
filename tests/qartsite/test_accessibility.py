"""What the pages say to people who cannot see them or use a mouse, checked in the HTML the server sends: refused forms
start on one announced summary, tables' headers all have words, live regions say only what changed, landmarks and
names exist. What needs a browser (focus, keys) is in tests/e2e/test_keyboard.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.template.loader import render_to_string

from campaigns import shares
from campaigns.models import Campaign, Placement
from generator.evals import sessions
from tests.clients import logged_in
from tests.conftest import staff
from tests.generator.factories import VALID, job_of_clean_codes, job_with_candidates

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "static" / "qart"
SUMMARY = re.compile(r'<div class="form-errors" id="(?P<id>[\w-]+)" role="alert" tabindex="-1" autofocus>\s*'
                     r'<p>(?P<lead>[^<]*)</p>(?P<items>.*?)</div>', re.S)


def summary_of(html: str) -> re.Match:
    """The one error summary of a page (two would fight over focus and both be read)."""
    found = list(SUMMARY.finditer(html))
    assert len(found) == 1, f"{len(found)} error summaries"
    return found[0]


def empty_headers(html: str) -> list[str]:
    """<th> cells with no words in them, visually hidden words included."""
    return [cell for cell in re.findall(r"<th[^>]*>(.*?)</th>", html, re.S) if not re.sub(r"<[^>]+>", "", cell).strip()]


@pytest.fixture
def placement(team_users) -> Placement:
    campaign = Campaign.objects.create(team=team_users.team, name="Spring fair", destination="https://shop.example.com/")
    return Placement.objects.create(campaign=campaign, name="Poster at the gate")


class TestErrorSummaries:
    def test_it_puts_the_sign_in_refusal_first_so_its_autofocus_wins(self, client, team_users):
        html = client.post("/accounts/login/", {"username": "owner", "password": "wrong"}).content.decode()
        summary = summary_of(html)
        assert summary["lead"] == "Not signed in:" and "correct username and password" in summary["items"]
        assert html.index('id="form-errors"') < html.index('id="id_username"')
        assert html.count(" autofocus") == 2  # the summary's, then the username's (which loses: it comes later)

    def test_a_clean_sign_in_page_has_no_summary(self, client):
        assert 'class="form-errors"' not in client.get("/accounts/login/").content.decode()

    def test_the_generation_page_says_nothing_started_and_links_to_the_field(self, team_users, enqueued):
        response = logged_in(team_users.owner).post("/generate/", {**VALID, "team": team_users.team.pk, "prompt": ""})
        summary = summary_of(response.content.decode())
        assert enqueued == [] and summary["lead"] == "Nothing started yet: fix what is marked, then try again."
        assert '<a href="#id_prompt">' in summary["items"]

    def test_a_generation_for_every_placement_says_nothing_started_in_one_focused_summary(self, team_users,
                                                                                          placement, enqueued,
                                                                                          fresh_cache):
        url = f"/campaigns/{placement.campaign_id}/generate/"
        post = {**{k: VALID[k] for k in ("negative_prompt", "look", "speed", "style", "background")},
                "engine": "diffusion", "prompt": ""}
        html = logged_in(team_users.owner).post(url, {**post, "placements": [placement.pk]}).content.decode()
        summary = summary_of(html)
        assert summary["lead"].startswith("Nothing started yet") and 'href="#id_prompt"' in summary["items"]
        assert 'role="alert"' not in html.replace(summary[0], "")  # one announcement
        # No placement chosen: said at the top too, linked to the boxes.
        html = logged_in(team_users.owner).post(url, {**post, "prompt": "a koi pond"}).content.decode()
        assert '<a href="#id_placements">' in summary_of(html)["items"] and 'id="id_placements"' in html

    def test_each_help_text_the_bulk_form_points_at_exists(self, team_users, placement, fresh_cache):
        html = logged_in(team_users.owner).get(f"/campaigns/{placement.campaign_id}/generate/").content.decode()
        pointed = {name for names in re.findall(r'aria-describedby="([^"]+)"', html) for name in names.split()}
        assert pointed and pointed <= set(re.findall(r'\sid="([^"]+)"', html))

    def test_the_labeling_session_form_says_no_session_was_created(self, team_users):
        html = logged_in(staff(team_users.owner)).post("/evals/labeling/", {"name": ""}).content.decode()
        summary = summary_of(html)
        assert summary["lead"].startswith("No session created yet") and '<a href="#id_name">' in summary["items"]

    def test_a_refused_print_file_is_a_focused_summary_and_marks_the_width(self, team_users, placement):
        response = logged_in(team_users.owner).get(f"/campaigns/placements/{placement.pk}/print?width=20")
        html = response.content.decode()
        summary = summary_of(html)
        assert response.status_code == 400 and summary["id"] == "print-error"
        assert summary["lead"] == "No print file yet:" and "a unit" in summary["items"]
        width = re.search(r'<input type="text" name="width"[^>]*>', html)[0]
        assert 'aria-describedby="width-help print-error"' in width and 'aria-invalid="true"' in width
        clean = logged_in(team_users.owner).get(f"/campaigns/placements/{placement.pk}/").content.decode()
        assert "print-error" not in clean and 'aria-invalid' not in clean


class TestJobPage:
    def test_only_the_stage_of_a_running_job_is_live(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner, status="running", progress=0.4)
        html = logged_in(team_users.owner).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert "aria-live" not in html  # the elapsed seconds were read out every second
        assert re.search(r'<strong data-stage role="status">', html)

    def test_the_finished_jobs_result_is_announced(self, team_users):
        job = job_with_candidates(team_users.team, team_users.owner, count=2, status="done", progress=1.0,
                                  scannable=True, result_message="2 of 2 variants scan.")
        html = logged_in(team_users.owner).get(f"/generate/jobs/{job.pk}/").content.decode()
        assert re.search(r'<p class="result result-ok" role="status">2 of 2 variants scan\.</p>', html)

    def test_each_candidates_buttons_and_downloads_name_it(self, team_users, placement):
        job = job_with_candidates(team_users.team, team_users.owner, count=2, status="done", placement=placement)
        html = logged_in(team_users.owner).get(f"/generate/jobs/{job.pk}/").content.decode()
        for rank in (1, 2):
            hidden = f'<span class="visually-hidden">, candidate #{rank}</span>'
            assert f"Use this one{hidden}</button>" in html and html.count(f"in{hidden}</a>") >= 3


def test_the_crop_frame_can_be_reached_and_says_how_to_move_it(team_users):
    html = logged_in(team_users.owner).get("/generate/").content.decode()
    frame = re.search(r"<div class=\"crop-frame\"[^>]*>", html)[0]
    assert 'tabindex="0"' in frame and 'aria-label="Crop"' in frame and 'aria-describedby="crop-how"' in frame
    assert re.search(r'id="crop-how">[^<]*arrow keys', html)


def test_the_hour_and_weekday_charts_have_tables(team_users, placement):
    from django.utils import timezone

    from campaigns.drainer import store_events
    from campaigns.scan_buffer import scan_event

    # One scan: a campaign never scanned draws no charts (and so has no tables of them)
    store_events([scan_event(placement.pk, timezone.now(), visitor_key="0" * 32)])
    html = logged_in(team_users.owner).get(f"/campaigns/{placement.campaign_id}/").content.decode()
    for summary, labels in (("Scans by hour as a table", 24), ("Scans by day as a table", 7)):
        table = re.search(rf"<summary>{summary}</summary>(.*?)</details>", html, re.S)[1]
        counts = re.findall(r'<tr><td>[^<]+</td><td class="num">(\d+)</td></tr>', table)
        assert len(counts) == labels and sorted(counts) == ["0"] * (labels - 1) + ["1"]


class TestTables:
    def test_no_table_header_is_empty(self, team_users, placement):
        client = logged_in(staff(team_users.owner))
        shares.create(placement.campaign, team_users.owner, label="Printer")
        job = job_of_clean_codes(team_users.team, team_users.owner)
        sessions.create_session(team_users.team, team_users.owner, "Friday", job.candidates.all(), 300, seed=0)
        pages = {url: client.get(url).content.decode()
                 for url in (f"/campaigns/{placement.campaign_id}/shares/", "/evals/labeling/")}
        pages["report"] = render_to_string("generator/evals/_report_tables.html",
                                           {"rows": [{"label": "a"}], "post_url": "/x/", "can_edit": True})
        for name, html in pages.items():
            assert "<th" in html and empty_headers(html) == [], name

    def test_the_confusion_matrix_corner_names_its_rows(self):
        # Read from the template: the matrix shows only once people labelled scans.
        html = (ROOT / "templates" / "generator" / "labeling" / "alignment.html").read_text()
        corner = re.search(r'<table class="table compact" id="confusion">\s*<thead><tr>(<th>.*?</th>)', html)[1]
        assert empty_headers(corner) == []


class TestLandmarksAndNames:
    def test_every_page_starts_with_a_skip_link_to_main(self, client):
        html = client.get("/").content.decode()
        body = html[html.index("<body>"):]
        first = re.search(r"<(a|button|input|select|textarea|summary)\b[^>]*>", body)[0]
        assert first == '<a class="skip-link" href="#content">'
        assert '<main id="content" tabindex="-1">' in html

    @pytest.mark.parametrize("name", ["400.html", "500.html", "503.html"])
    def test_the_bare_error_pages_have_a_main(self, name):
        html = render_to_string(name, {"message": "m"})
        assert "<main><h1>" in html and "</main></body>" in html

    def test_the_staff_menu_is_named_without_its_triangle(self, team_users):
        html = logged_in(staff(team_users.owner)).get("/campaigns/").content.decode()
        assert '<summary>Staff<span aria-hidden="true"> ▾</span></summary>' in html
        assert 'src="/static/qart/staff-menu.js"' in html
        assert "content:" not in re.search(r"\.nav-staff summary[^{]*\{[^}]*\}", (STATIC / "site.css").read_text())[0]

    def test_the_phone_menu_is_a_button_that_says_whether_it_is_open(self, client, team_users):
        html = logged_in(team_users.owner).get("/campaigns/").content.decode()
        header = html[html.index('<header class="topbar">'):html.index("</header>")]
        assert ('<button type="button" id="nav-toggle" class="nav-button" aria-expanded="false" '
                'aria-controls="main-nav">Menu</button>') in header
        assert '<nav class="nav" id="main-nav" aria-label="Main">' in header
        assert 'type="checkbox"' not in header and "<label" not in header  # read out as a checkbox, no state
        # A file, not inline (the Content-Security-Policy), and in the <head> so the links fold before the first paint.
        head = html[:html.index("</head>")]
        assert '<script src="/static/qart/nav-menu.js"></script>' in head
        assert "<script>" not in html and " onclick=" not in html
        # Signed out there is no menu to open: the one link shows as it is.
        anonymous = client.get("/").content.decode()
        assert 'id="nav-toggle"' not in anonymous and "nav-menu.js" not in anonymous

    def test_the_labeling_page_has_a_heading(self, team_users):
        user = staff(team_users.owner)
        job = job_of_clean_codes(team_users.team, user)
        session = sessions.create_session(team_users.team, user, "Friday", job.candidates.all(), 300, seed=0)
        html = logged_in(user).get(f"/evals/labeling/{session.pk}/run/").content.decode()
        assert '<h1 class="visually-hidden">Friday: code 1 of 2</h1>' in html

    def test_the_labeling_page_offers_to_turn_its_single_key_shortcuts_off(self, team_users):
        user = staff(team_users.owner)
        job = job_of_clean_codes(team_users.team, user)
        session = sessions.create_session(team_users.team, user, "Friday", job.candidates.all(), 300, seed=0)
        html = logged_in(user).get(f"/evals/labeling/{session.pk}/run/").content.decode()
        switch = re.search(r'<label class="switch">(<input[^>]*>)\s*([^<]*)</label>', html)
        assert switch[1] == '<input type="checkbox" id="shortcuts" checked aria-describedby="shortcuts-help">'
        assert switch[2].strip() == "Keyboard shortcuts"  # on by default, for the labelers who rely on them
        help_html = re.search(r'<p id="shortcuts-help">(.*?)</p>', html, re.S)[1]
        help_text = " ".join(re.sub(r"<[^>]+>", "", help_html).split())
        assert "S scanned" in help_text and "F could not scan" in help_text and "Turn them off" in help_text
        assert html.index('id="shortcuts"') < html.index('src="/static/qart/labeling.js"')

    def test_the_403_page_is_true_for_a_change_refused_and_a_page_closed(self, team_users):
        changed = logged_in(team_users.viewer).post("/campaigns/new/", {"name": "x"}).content.decode()
        opened = logged_in(team_users.viewer).get("/evals/").content.decode()
        for html in (changed, opened):
            assert "<h1>This isn't open to you.</h1>" in html and "You can look" not in html
        assert "Ask a team owner" in changed and "for staff" in opened


def luminance(colour: str) -> float:
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


class TestColours:
    def test_focus_rings_are_solid(self):
        css = (STATIC / "site.css").read_text() + (STATIC / "generate.css").read_text()
        assert not re.search(r"outline:[^;]*rgba", css)  # a see-through ring was 1.75:1 on the page

    def test_field_borders_stand_out_from_white(self):
        for name in ("site.css", "generate.css"):
            rule = re.search(r"^(?:\.form|\.field) input[^{]*\{[^}]*\}", (STATIC / name).read_text(), re.M)[0]
            border = re.search(r"border: 1px solid (#[0-9a-f]{6})", rule)[1]
            assert contrast(border, "#ffffff") >= 3, name

    # That the border shows (the rule wins over the inputs' own): tests/e2e/test_keyboard.py, on the print form.
    def test_a_field_django_marks_invalid_gets_the_error_border(self):
        css = (STATIC / "site.css").read_text()
        assert re.search(r'\.form input\[aria-invalid="true"\][^{]*\{ border-color: #b42318; \}', css)

    def test_the_labeling_buttons_text_is_readable(self):
        css = (STATIC / "labeling.css").read_text()
        fg = re.search(r"--fg: (#[0-9a-f]{6})", css)[1]
        for name in ("good", "bad"):
            assert contrast(re.search(rf"--{name}: (#[0-9a-f]{{6}})", css)[1], fg) >= 4.5, name
