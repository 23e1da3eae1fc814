"""The admin's lists of scans and rollups at 1280 px: a placement named in one long word (the underscore style many
teams name by) keeps every column in view. Its "campaign: placement" column pushed the last ones off the screen.

Headless Chromium (Debian's) against pytest-django's live server.
"""

from __future__ import annotations

import pytest

from campaigns.links import SLUG_LENGTH
from tests.e2e.conftest import DESKTOP, sign_in

pytestmark = pytest.mark.django_db(transaction=True)
NAME = "SS26_DE_BER_OOH_Poster_UBahn_Mitte_Alexanderplatz_Q2_Final_v3_approved"


def every_column_in_view(page, url: str) -> bool:
    """Whether `url`'s list shows its last column without scrolling sideways, with the admin's menu folded away (the
    « button; the admin remembers it): a column past the list's own box is hidden in its scroll area even where it
    ends inside the window, and beside the open menu 630 px are left for any list."""
    page.goto(url)
    if page.locator("#nav-sidebar").is_visible():
        page.click("#toggle-nav-sidebar")
    return page.locator("#result_list tbody tr").first.locator("td").last.evaluate(
        "(el) => el.getBoundingClientRect().right <= el.closest('.results').getBoundingClientRect().right + 1")


@pytest.mark.browser
def test_a_long_placement_name_leaves_every_column_of_the_scan_and_rollup_lists_in_view(new_page, team_users):
    from django.utils import timezone

    from campaigns.models import Campaign, Placement, ScanEvent, ScanRollup
    from tests.conftest import make_staff

    make_staff(team_users.owner)
    campaign = Campaign.objects.create(team=team_users.team, name=NAME, destination="https://example.com/spring")
    placement = Placement.objects.create(campaign=campaign, name=f"{NAME}_flyer")
    ScanEvent.objects.create(placement=placement, device_class="mobile", os="Android", browser="Chrome Mobile",
                             country="DE")
    ScanRollup.objects.create(placement=placement, day=timezone.now().date(), scans=1, first_scan=timezone.now(),
                              last_scan=timezone.now())
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    for url in ("/admin/campaigns/scanevent/", "/admin/campaigns/scanrollup/"):
        assert every_column_in_view(page, url), url
        assert page.locator("#result_list .clipped").first.get_attribute("title") == str(placement)
    assert failures == []


@pytest.mark.browser
def test_long_names_and_addresses_leave_every_column_of_the_campaign_share_and_change_lists_in_view(new_page,
                                                                                                   team_users):
    # Their name, campaign, placement, location and address columns pushed "changed by", "created", "created by" and
    # the placements' "print" off a 1280 px screen.
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.models import Campaign, DestinationChange, Placement, ReportShare
    from tests.conftest import make_staff

    make_staff(team_users.owner)
    address = f"https://example.com/landing/{NAME}?utm_source=qart&utm_campaign={NAME}"
    campaign = Campaign.objects.create(team=team_users.team, name=NAME, destination=address)
    # The widest slug there can be: the slug's width changed from run to run, and at its widest the list overflowed
    placement = Placement.objects.create(campaign=campaign, name=f"{NAME}_flyer",
                                         location=f"{NAME}_Ausgang_Gontardstrasse", slug="W" * SLUG_LENGTH)
    DestinationChange.objects.create(campaign=campaign, placement=placement, field="destination_override",
                                     before=address, after=f"{address}_v4", changed_by=team_users.owner)
    ReportShare.objects.create(campaign=campaign, token_hash="a" * 64, label=f"{NAME}_agency_share",
                               expires=timezone.now() + timedelta(days=7), created_by=team_users.owner)
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    for url in ("/admin/campaigns/campaign/", "/admin/campaigns/placement/", "/admin/campaigns/destinationchange/",
                "/admin/campaigns/reportshare/"):
        assert every_column_in_view(page, url), url
        assert page.locator("#result_list .clipped").count() >= 2, url
    assert page.locator("#result_list .clipped").first.get_attribute("title") == str(campaign)
    assert failures == []


def last_column_in_view(page) -> bool:
    """Whether the list's last column ends inside the list's own box (past it, it is hidden in its scroll area)."""
    return page.locator("#result_list tbody tr").first.locator("td").last.evaluate(
        "(el) => el.getBoundingClientRect().right <= el.closest('.results').getBoundingClientRect().right + 1")


@pytest.mark.browser
def test_the_admins_menu_starts_folded_at_1280_px_and_every_column_is_in_view(new_page, team_users):
    # Django opens its menu (nav sidebar) until a browser remembers a choice: beside it a list has ~630 px, and the
    # campaign list's last columns scrolled out of view on a first visit at 1280 px.
    from django.utils import timezone

    from campaigns.models import Campaign
    from generator.core.codes import decision
    from generator.models import VerifierModel
    from tests.conftest import make_staff

    make_staff(team_users.owner)
    Campaign.objects.create(team=team_users.team, name=NAME, destination="https://example.com/spring")
    # Its column titles ("Cross validated balanced accuracy") alone made this list wider than the window
    VerifierModel.objects.create(model_id="logistic-v2", form=decision.DEFAULT_MODEL.form, bias=-4.0,
                                 weights=[["o_any", 1.0]], created_by=team_users.owner, label_count=80,
                                 scanned_count=40, figures={"cross_validated": {"balanced_accuracy": 0.86}},
                                 activated_by=team_users.owner, activated_at=timezone.now())
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    for url in ("/admin/campaigns/campaign/", "/admin/generator/verifiermodel/"):
        page.goto(url)
        assert not page.locator("#nav-sidebar").is_visible(), url
        assert last_column_in_view(page), url

    # The « button still opens it, and the admin remembers that choice as it does (its own localStorage key)
    page.click("#toggle-nav-sidebar")
    page.reload()
    assert page.locator("#nav-sidebar").is_visible()
    assert failures == []


@pytest.mark.browser
def test_the_admins_menu_starts_open_on_a_wide_screen(new_page, team_users):
    from tests.conftest import make_staff

    make_staff(team_users.owner)
    page, failures = new_page(viewport={"width": 1680, "height": 1050})
    sign_in(page, "owner", next_url="/admin/")
    page.goto("/admin/campaigns/campaign/")
    assert page.locator("#nav-sidebar").is_visible()  # Django's own default where a list has room beside it
    assert failures == []


@pytest.mark.browser
def test_the_menu_folded_for_a_narrow_window_is_no_choice_kept_for_a_wide_one(new_page, team_users):
    # The fold was saved as if the person had chosen it: the same browser on a wide screen later kept the menu folded.
    from tests.conftest import make_staff

    make_staff(team_users.owner)
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner", next_url="/admin/")
    page.goto("/admin/campaigns/campaign/")
    assert not page.locator("#nav-sidebar").is_visible()
    assert page.evaluate("localStorage.getItem('django.admin.navSidebarIsOpen')") is None
    page.set_viewport_size({"width": 1680, "height": 1050})
    page.reload()
    assert page.locator("#nav-sidebar").is_visible()
    assert failures == []


@pytest.mark.browser
def test_long_prompts_links_and_names_leave_every_column_of_the_generator_and_eval_lists_in_view(new_page,
                                                                                              team_users):
    # Foreign keys and dates kept on one line: with a 30-letter prompt and a short link the job list scrolled
    # sideways by 186 px and the candidate list by 326 px (beside their filters, ~900 px); a long prompt, link, name
    # or username pushed every list but the prompts' and the models' past its box.
    from django.utils import timezone

    from generator.models import (
        Candidate,
        EvalRun,
        EvalSample,
        GenerationJob,
        GenerationPreset,
        HumanScanResult,
        LabelingItem,
        LabelingSession,
        Prompt,
    )
    from qartsite.models import Membership
    from tests.conftest import make_staff
    from tests.generator.factories import solid_png

    make_staff(team_users.owner)
    person = team_users.teammate
    person.username = "marketing.lead.berlin@agency-example.com"  # usernames may be e-mail addresses
    person.save(update_fields=["username"])
    team, now = team_users.team, timezone.now()
    text = "A lighthouse on a rocky coast at dawn, watercolour, soft light, gulls over the water"
    link = f"https://qart.example/r/AbC12345?utm_source=poster&utm_campaign={NAME}"
    prompt = Prompt.objects.create(owner=person, team=team, text=text)
    # A six-digit id, as a busy site's: PostgreSQL's ids grow through the suite, and the job list that fitted with
    # SQLite's "1" ended past its box with CI's.
    job = GenerationJob.objects.create(id=123456, owner=person, team=team, prompt=prompt, content=link, status="done",
                                       scannable=True, progress=1.0, total_seconds=123.456, engine="halftone")
    candidate = Candidate.objects.create(job=job, index=0, seed=123456789012, image=solid_png("black", 64), rank=1,
                                         scan_probability=0.876543, verdict="pass", aesthetic_score=6.54321,
                                         fidelity_ssim=0.912345, color_error=12.3456, variant="centre 0.33, dots")
    session = LabelingSession.objects.create(name=NAME, team=team, created_by=person, display_size_px=600)
    label = HumanScanResult.objects.create(session=session, candidate=candidate, labeler=person, scanned=True,
                                           image_name=f"{NAME}.png", device="Samsung Galaxy S23 Ultra",
                                           app="Google Lens", seconds=2.345, aesthetic_vote=1)
    LabelingItem.objects.create(session=session, candidate=candidate, position=3, shown_at=now, hit_at=now,
                                result=label)
    run = EvalRun.objects.create(name=NAME, team=team, created_by=person, code_version="8d97770a1b2c" * 3)
    EvalSample.objects.create(run=run, prompt=text, content=link, status="done", total_seconds=98.7654,
                              config_key="conditioning_scale=1.3,control_start=0.15,guidance_scale=3.5")
    GenerationPreset.objects.create(team=team, name=NAME, is_default=True, source_run=run, created_by=person)
    # A member of two teams' sessions: the lists' team and session filters shown, ~900 px left beside them
    Membership.objects.create(team=team_users.other_team, user=team_users.owner, role="viewer")
    LabelingSession.objects.create(name="Rival's sitting", team=team_users.other_team)
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, "owner")
    for url in ("/admin/generator/generationjob/", "/admin/generator/candidate/",
                "/admin/generator/candidate/?job__engine__exact=halftone", "/admin/generator/humanscanresult/",
                "/admin/generator/labelingsession/", "/admin/generator/labelingitem/", "/admin/generator/evalrun/",
                "/admin/generator/evalsample/", "/admin/generator/generationpreset/"):
        assert every_column_in_view(page, url), url
        assert page.locator("#result_list .clipped").count() >= 1, url
    page.goto("/admin/generator/generationjob/")
    assert page.locator("#result_list .clipped").first.get_attribute("title") == str(prompt)
    assert failures == []


# An e-mail address as a username, as long as a team's tool makes them: one unbroken word.
LONG_PERSON = "marketing.lead.spring.campaign.berlin.office.2026@a-very-long-agency-domain-name.example.com"


@pytest.mark.browser
def test_a_long_username_leaves_every_column_of_the_campaigns_people_lists_in_view(new_page, team_users):
    # The "changed by", "dismissed by" and "created by" cells of the changes', alerts' and shares' lists (and the
    # prompts' "owner") were not clipped: such a name widened each list past its box at 1280 px.
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.models import Campaign, DestinationChange, Placement, PlacementAlert, ReportShare
    from generator.models import Prompt
    from tests.conftest import make_staff

    make_staff(team_users.owner)
    person = team_users.owner
    person.username = LONG_PERSON
    person.set_password(f"pw-{LONG_PERSON}-1")  # what sign_in types
    person.save(update_fields=["username", "password"])
    Prompt.remember(person, "A lighthouse at dawn", "", team=team_users.team)
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://example.com/a")
    placement = Placement.objects.create(campaign=campaign, name="Poster")
    DestinationChange.objects.create(campaign=campaign, placement=placement, field="destination_override",
                                     before="https://example.com/a", after="https://example.com/b",
                                     changed_by=person)
    PlacementAlert.objects.create(placement=placement, kind="stopped", day=timezone.now().date(),
                                  message="No scans for 7 days", dismissed_at=timezone.now(), dismissed_by=person)
    ReportShare.objects.create(campaign=campaign, token_hash="a" * 64, label="Agency",
                               expires=timezone.now() + timedelta(days=7), created_by=person)
    page, failures = new_page(viewport=DESKTOP)
    sign_in(page, LONG_PERSON)
    for url in ("/admin/campaigns/destinationchange/", "/admin/campaigns/placementalert/",
                "/admin/campaigns/reportshare/", "/admin/generator/prompt/"):
        assert every_column_in_view(page, url), url
        assert page.locator(f'#result_list .clipped[title="{LONG_PERSON}"]').count() == 1, url
    assert failures == []
