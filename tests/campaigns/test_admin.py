"""Admin isolation: staff who are not superusers see only their own teams' rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.utils import timezone

from campaigns import names, stats
from campaigns.drainer import store_events
from campaigns.models import (
    Campaign,
    DestinationChange,
    Placement,
    PlacementAlert,
    ReportShare,
    ScanEvent,
    ScanRollup,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookOutbox,
)
from campaigns.scan_buffer import scan_event
from generator.models import Candidate, GenerationJob, Prompt
from tests.campaigns.admin_forms import campaign_form
from tests.qartsite.inputs import ARABIC_INDIC


@pytest.fixture
def staff_owner(team_users):
    user = team_users.owner
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    return user


@pytest.fixture
def both_teams(team_users):
    rows = {}
    for key, team in (("ours", team_users.team), ("theirs", team_users.other_team)):
        campaign = Campaign.objects.create(team=team, name=f"{key} campaign", destination="https://example.com")
        placement = Placement.objects.create(campaign=campaign, name=f"{key} poster")
        ScanEvent.objects.create(placement=placement, device_class="mobile")
        prompt = Prompt.remember(team_users.owner, f"{key} prompt", "", team=team)
        job = GenerationJob.objects.create(owner=team_users.owner, team=team, prompt=prompt, content="https://x.io")
        candidate = Candidate(job=job, index=0, seed=1, scan_probability=0.9, verdict="pass", rank=1)
        candidate.image.save("c.png", ContentFile(b"\x89PNG"), save=True)
        rows[key] = (campaign, placement, prompt, job, candidate)
    return rows


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url, index",
    [
        ("/admin/campaigns/campaign/", 0),
        ("/admin/campaigns/placement/", 1),
        ("/admin/generator/prompt/", 2),
        ("/admin/generator/generationjob/", 3),
    ],
)
def test_staff_see_only_their_teams_rows(client, staff_owner, both_teams, url, index):
    client.force_login(staff_owner)
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    ours, theirs = both_teams["ours"][index], both_teams["theirs"][index]
    assert f"/{ours.pk}/change/" in body
    assert f"/{theirs.pk}/change/" not in body
    assert client.get(f"{url}{theirs.pk}/change/").status_code in (302, 404)


@pytest.mark.django_db
def test_staff_see_only_their_teams_candidates_and_scans(client, staff_owner, both_teams):
    client.force_login(staff_owner)
    candidates = client.get("/admin/generator/candidate/").content.decode()
    assert f"/{both_teams['ours'][4].pk}/change/" in candidates
    assert f"/{both_teams['theirs'][4].pk}/change/" not in candidates
    scans = client.get("/admin/campaigns/scanevent/").content.decode()
    assert "ours poster" in scans and "theirs poster" not in scans


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["scanevent", "scanrollup"])
def test_the_scans_and_rollups_lists_count_only_so_far(client, staff_owner, both_teams, model, monkeypatch):
    # Each page counted every scan or rollup of the user's teams: 0.2-0.4 s at 10 M rollups, growing with the table.
    from campaigns.admin import BoundedCount

    monkeypatch.setattr(BoundedCount, "bound", 3)
    placement = both_teams["ours"][1]
    for day in range(6):
        ScanEvent.objects.create(placement=placement, device_class="mobile")
        ScanRollup.objects.create(placement=placement, day=timezone.now().date() - timedelta(days=day), scans=1,
                                  first_scan=timezone.now(), last_scan=timezone.now())
    client.force_login(staff_owner)
    response = client.get(f"/admin/campaigns/{model}/")
    assert response.context["cl"].result_count == 4  # the bound and one more: more than the bound
    assert "More than 3 " in response.content.decode()
    ScanEvent.objects.filter(placement=placement).exclude(pk=ScanEvent.objects.filter(placement=placement)
                                                          .order_by("pk").values("pk")[:1]).delete()
    ScanRollup.objects.filter(placement=placement).exclude(day=timezone.now().date()).delete()
    few = client.get(f"/admin/campaigns/{model}/")
    assert few.context["cl"].result_count == 1 and "More than" not in few.content.decode()


@pytest.mark.django_db
def test_the_placement_column_of_scans_rollups_and_alerts_is_clipped_with_its_whole_name_in_a_title(
        client, staff_owner, both_teams):
    # A long campaign and placement name made the column so wide that the other columns scrolled off at 1280 px.
    placement = both_teams["ours"][1]
    placement.name = "Platform 4 north stairs, the big poster by the ticket machines"
    placement.save()
    ScanRollup.objects.create(placement=placement, day=timezone.now().date(), scans=1, first_scan=timezone.now(),
                              last_scan=timezone.now())
    PlacementAlert.objects.create(placement=placement, kind="dropped", day=timezone.now().date(), message="Fell.")
    client.force_login(staff_owner)
    for url in ("/admin/campaigns/scanevent/", "/admin/campaigns/scanrollup/", "/admin/campaigns/placementalert/"):
        body = client.get(url).content.decode()
        assert f'<span class="clipped" title="{placement}">{placement}</span>' in body, url
        assert "qart/admin.css" in body, url


@pytest.mark.django_db
def test_the_name_and_address_columns_of_campaigns_changes_and_shares_are_clipped_with_the_whole_in_a_title(
        client, staff_owner, both_teams):
    # A long one-word name or address pushed "created", "changed by" and "created by" off a 1280 px screen.
    campaign, placement = both_teams["ours"][:2]
    address = "https://example.com/landing/spring?utm_source=qart&utm_campaign=SS26_DE_BER_OOH_Poster_UBahn"
    Campaign.objects.filter(pk=campaign.pk).update(destination=address)
    Placement.objects.filter(pk=placement.pk).update(location="Alexanderplatz, exit Gontardstrasse")
    DestinationChange.objects.create(campaign=campaign, placement=placement, field="destination_override",
                                     before=address, after="https://example.com/b")
    DestinationChange.objects.create(campaign=campaign, field="destination", before="", after=address)
    ReportShare.objects.create(campaign=campaign, token_hash="b" * 64, label="For the agency in Berlin",
                               expires=timezone.now() + timedelta(days=7))
    client.force_login(staff_owner)
    shown = {
        "/admin/campaigns/campaign/": [campaign.name, address],
        "/admin/campaigns/placement/": [placement.name, campaign.name, "Alexanderplatz, exit Gontardstrasse"],
        # a placement's change names it "campaign: placement"; a campaign's names the campaign
        "/admin/campaigns/destinationchange/": [str(placement), campaign.name, address],
        "/admin/campaigns/reportshare/": [campaign.name, "For the agency in Berlin"],
    }
    for url, values in shown.items():
        body = client.get(url).content.decode()
        for value in values:
            escaped = value.replace("&", "&amp;")
            assert f'<span class="clipped" title="{escaped}">{escaped}</span>' in body, (url, value)
        assert "qart/admin.css" in body, url


@pytest.mark.django_db
def test_scan_events_are_read_only(client, admin_user, both_teams):
    client.force_login(admin_user)
    event = ScanEvent.objects.first()
    assert client.get("/admin/campaigns/scanevent/add/").status_code == 403
    response = client.post(f"/admin/campaigns/scanevent/{event.pk}/change/", {"device_class": "desktop"})
    event.refresh_from_db()
    assert event.device_class == "mobile" and response.status_code in (200, 403)


@pytest.mark.django_db
def test_an_old_scans_visitor_hash_is_shown_to_superusers_only(client, staff_cast, admin_user, both_teams):
    # A visitor key the team's staff have no use for, and one the CSV exports leave out too.
    event = ScanEvent.objects.get(placement=both_teams["ours"][1])
    ScanEvent.objects.filter(pk=event.pk).update(client_hash="c0ffee0123456789")
    page, changelist = f"/admin/campaigns/scanevent/{event.pk}/change/", "/admin/campaigns/scanevent/"
    for user in (staff_cast.viewer, staff_cast.owner):
        client.force_login(user)
        body = client.get(page).content.decode()
        assert "ours poster" in body and "c0ffee" not in body and "field-client_hash" not in body
        # Each guess at its start showing the row or not would spell it out.
        assert client.get(f"{changelist}?client_hash__startswith=c0").status_code == 400
        assert client.get(f"{changelist}?client_hash=c0ffee0123456789").status_code == 400
    client.force_login(admin_user)
    assert "c0ffee0123456789" in client.get(page).content.decode()
    assert client.get(f"{changelist}?client_hash__startswith=c0").status_code == 200


@pytest.fixture
def staff_cast(team_users):
    from tests.conftest import make_staff

    make_staff(team_users.owner, team_users.teammate, team_users.viewer, team_users.outsider)
    return team_users


@pytest.mark.django_db
class TestCampaignAdminIsolation:
    def test_it_refuses_a_campaign_in_another_team(self, client, staff_cast):
        client.force_login(staff_cast.owner)
        response = client.post("/admin/campaigns/campaign/add/", campaign_form(staff_cast.other_team))
        assert response.status_code == 200 and "team" in response.context["adminform"].form.errors
        assert not Campaign.objects.filter(team=staff_cast.other_team).exists()
        assert client.post("/admin/campaigns/campaign/add/", campaign_form(staff_cast.team)).status_code == 302
        assert Campaign.objects.filter(team=staff_cast.team).count() == 1

    def test_it_refuses_moving_a_campaign_to_another_team(self, client, staff_cast, campaign):
        client.force_login(staff_cast.owner)
        client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", campaign_form(staff_cast.other_team))
        campaign.refresh_from_db()
        assert campaign.team == staff_cast.team

    def test_not_even_a_superuser_moves_a_campaign_or_a_placement_to_another_team(self, client, admin_user,
                                                                                  staff_cast, campaign):
        # A placement moved along sent its printed code to the other team's address and showed that team its scans.
        theirs = Campaign.objects.create(team=staff_cast.other_team, name="Rival sale", destination="https://x.io")
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        client.force_login(admin_user)
        response = client.post(f"/admin/campaigns/placement/{poster.pk}/change/", placement_form(poster,
                                                                                                 campaign=theirs.pk))
        assert response.status_code == 200 and "nothing moves to another team" in response.content.decode()
        response = client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                               campaign_form(staff_cast.other_team))
        assert response.status_code == 200 and "nothing moves to another team" in response.content.decode()
        poster.refresh_from_db()
        campaign.refresh_from_db()
        assert poster.campaign == campaign and campaign.team == staff_cast.team
        # Within the team, a placement may still change campaign (its scans count there now), and a campaign changes.
        store_events([scan_event(poster.pk, timezone.now(), visitor_key="a" * 32)])
        ours = Campaign.objects.create(team=staff_cast.team, name="Autumn", destination="https://shop.example.com/")
        response = client.post(f"/admin/campaigns/placement/{poster.pk}/change/", placement_form(poster,
                                                                                                 campaign=ours.pk))
        assert response.status_code == 302
        assert (stats.scans_ever(stats.Campaigns.one(campaign)), stats.scans_ever(stats.Campaigns.one(ours))) == (0, 1)
        assert client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                           campaign_form(staff_cast.team, name="Spring Sale 2")).status_code == 302

    def test_it_refuses_a_viewer_changing_the_destination(self, client, staff_cast, campaign):
        client.force_login(staff_cast.viewer)
        page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
        assert page.status_code == 200 and 'name="destination"' not in page.content.decode()
        response = client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                               campaign_form(staff_cast.team, destination="https://attacker.example/"))
        campaign.refresh_from_db()
        assert response.status_code == 403 and campaign.destination == "https://shop.example.com/"
        assert client.post(f"/admin/campaigns/campaign/{campaign.pk}/delete/", {"post": "yes"}).status_code == 403
        assert Campaign.objects.filter(pk=campaign.pk).exists()

    def test_it_lets_an_editor_change_the_destination(self, client, staff_cast, campaign):
        client.force_login(staff_cast.teammate)
        response = client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                               campaign_form(staff_cast.team, destination="https://shop.example.com/spring"))
        campaign.refresh_from_db()
        assert response.status_code == 302 and campaign.destination == "https://shop.example.com/spring"

    def test_it_refuses_numbers_dates_and_ids_in_other_digits(self, client, staff_cast, campaign):
        # Django's fields read them as Python does: "1_000" was stored as 1000, "２０２６-05-01" as a date and a
        # campaign id in Arabic-Indic digits picked that campaign.
        client.force_login(staff_cast.teammate)
        placement = Placement.objects.create(campaign=campaign, name="Station poster", kind="poster")
        response = client.post(f"/admin/campaigns/placement/{placement.pk}/change/", placement_form(
            placement, campaign=str(campaign.pk).translate(ARABIC_INDIC), printed_quantity="1_000",
            deployed_on="２０２６-05-01"))
        errors = response.context["adminform"].form.errors
        assert (errors["campaign"], errors["printed_quantity"], errors["deployed_on"]) == (
            ["Select a valid choice. That choice is not one of the available choices."], ["Enter a whole number."],
            ["Enter a date like 2026-03-01."])
        placement.refresh_from_db()
        assert (placement.printed_quantity, placement.deployed_on) == (None, None)

    def test_it_refuses_a_placement_on_another_teams_campaign(self, client, staff_cast):
        theirs = Campaign.objects.create(team=staff_cast.other_team, name="Rival sale", destination="https://x.io")
        client.force_login(staff_cast.owner)
        page = client.get("/admin/campaigns/placement/add/")
        assert theirs not in page.context["adminform"].form.fields["campaign"].queryset
        response = client.post("/admin/campaigns/placement/add/", {"campaign": theirs.pk, "name": "stolen",
                                                                   "kind": "poster", "active": "on"})
        assert response.status_code == 200 and not Placement.objects.filter(campaign=theirs).exists()

    def test_it_refuses_a_placement_on_an_archived_campaign_with_the_message(self, client, staff_cast):
        old = Campaign.objects.create(team=staff_cast.team, name="Old sale", destination="https://x.io",
                                      archived=True)
        client.force_login(staff_cast.owner)
        response = client.post("/admin/campaigns/placement/add/", {"campaign": old.pk, "name": "late",
                                                                   "kind": "poster", "active": "on"})
        assert response.status_code == 200 and not old.placements.exists()
        assert "archived: bring it back before adding placements" in response.content.decode()

    def test_it_lists_only_the_users_teams_in_the_team_filters(self, client, staff_cast, both_teams):
        client.force_login(staff_cast.owner)
        for url in ("/admin/campaigns/campaign/", "/admin/campaigns/placement/"):
            assert "Rival" not in client.get(url).content.decode(), url


@pytest.mark.django_db
class TestArchiveInsteadOfDelete:
    """Staff archive campaigns and switch placements off; only a superuser deletes one, and only on purpose."""

    def test_editors_cannot_delete_campaigns_or_placements(self, client, staff_cast, campaign):
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        client.force_login(staff_cast.teammate)
        assert client.post(f"/admin/campaigns/campaign/{campaign.pk}/delete/", {"post": "yes"}).status_code == 403
        assert client.post(f"/admin/campaigns/placement/{placement.pk}/delete/", {"post": "yes"}).status_code == 403
        client.post("/admin/campaigns/campaign/", {"action": "delete_selected", "_selected_action": [campaign.pk],
                                                   "post": "yes"})
        assert Campaign.objects.filter(pk=campaign.pk).exists() and Placement.objects.filter(pk=placement.pk).exists()
        page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/")
        assert page.context["inline_admin_formsets"][0].formset.can_delete is False

    def test_the_archive_action_archives_and_the_codes_still_redirect(self, client, staff_cast, campaign):
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        campaign.fallback_url = "https://shop.example.com/ended"
        campaign.save()
        client.force_login(staff_cast.teammate)
        response = client.post("/admin/campaigns/campaign/", {"action": "archive", "_selected_action": [campaign.pk]},
                               follow=True)
        assert "1 campaign archived" in response.content.decode()
        campaign.refresh_from_db()
        assert campaign.archived
        client.logout()
        assert client.get(f"/r/{placement.slug}")["Location"].startswith("https://shop.example.com/ended?")
        client.force_login(staff_cast.teammate)
        client.post("/admin/campaigns/campaign/", {"action": "unarchive", "_selected_action": [campaign.pk]})
        campaign.refresh_from_db()
        assert not campaign.archived

    def test_the_unarchive_action_leaves_a_namesake_of_an_active_campaign_archived(self, client, staff_cast,
                                                                                   campaign):
        # As on the pages and in the API: it made two active campaigns of one name
        campaign.set_archived(True)
        Campaign.objects.create(team=campaign.team, name="spring sale", destination="https://a.example/")
        client.force_login(staff_cast.teammate)
        response = client.post("/admin/campaigns/campaign/", {"action": "unarchive",
                                                              "_selected_action": [campaign.pk]}, follow=True)
        page = response.content.decode()
        assert "0 campaigns unarchived" in page and "“Spring Sale”. Rename it first." in page
        campaign.refresh_from_db()
        assert campaign.archived

    def test_the_placement_action_switches_placements_off(self, client, staff_cast, campaign):
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        client.force_login(staff_cast.owner)
        client.post("/admin/campaigns/placement/", {"action": "archive", "_selected_action": [placement.pk]})
        placement.refresh_from_db()
        assert not placement.active

    def test_viewers_cannot_archive(self, client, staff_cast, campaign):
        client.force_login(staff_cast.viewer)
        client.post("/admin/campaigns/campaign/", {"action": "archive", "_selected_action": [campaign.pk]})
        campaign.refresh_from_db()
        assert not campaign.archived

    def test_an_editor_of_one_team_archives_only_there(self, client, staff_cast, campaign):
        # The outsider owns Rival and only views Acme: the changelist shows both teams' campaigns to them.
        staff_cast.outsider.memberships.create(team=staff_cast.team, role="viewer")
        theirs = Campaign.objects.create(team=staff_cast.other_team, name="Rival sale", destination="https://x.io")
        client.force_login(staff_cast.outsider)
        client.post("/admin/campaigns/campaign/", {"action": "archive", "_selected_action": [campaign.pk, theirs.pk]})
        campaign.refresh_from_db()
        theirs.refresh_from_db()
        assert theirs.archived and not campaign.archived

    def test_a_superuser_may_still_delete_on_purpose(self, client, admin_user, campaign):
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        ScanEvent.objects.create(placement=poster)
        client.force_login(admin_user)
        # The confirmation says the printed code stops working, and what to do instead.
        page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/delete/").content.decode()
        assert f"1 printed code will stop working: its short link (/r/{poster.slug}) will answer" in page
        assert "switch its placement off or archive its campaign instead" in page
        page = client.post("/admin/campaigns/placement/", {"action": "delete_selected",
                                                            "_selected_action": [poster.pk]}).content.decode()
        assert f"(/r/{poster.slug})" in page and Placement.objects.filter(pk=poster.pk).exists()
        response = client.post(f"/admin/campaigns/campaign/{campaign.pk}/delete/", {"post": "yes"}, follow=True)
        assert response.status_code == 200 and "will stop working" not in response.content.decode()
        assert not Campaign.objects.exists() and not ScanEvent.objects.exists()


@pytest.mark.django_db
def test_deleting_a_share_or_an_alert_warns_of_no_codes(client, admin_user, staff_cast, alert_and_share):
    # The warning read the share's id as a campaign's, and named another team's short links.
    alert, share, _, _ = alert_and_share
    client.force_login(admin_user)
    for url in (f"/admin/campaigns/reportshare/{share.pk}/delete/",
                f"/admin/campaigns/placementalert/{alert.pk}/delete/"):
        page = client.get(url).content.decode()
        assert "will stop working" not in page and "/r/" not in page, url


def placement_form(placement, **fields) -> dict:
    return {"campaign": placement.campaign_id, "name": placement.name, "kind": placement.kind, "active": "on",
            **fields}


@pytest.mark.django_db
class TestArtworkInTheAdmin:
    def test_it_refuses_failing_artwork_without_a_reason_and_records_one(self, client, staff_cast, campaign):
        from tests.campaigns.conftest import make_art

        placement = Placement.objects.create(campaign=campaign, name="Poster")
        failing = make_art(staff_cast.team, staff_cast.owner, f"http://testserver/r/{placement.slug}",
                           verdict="fail", probability=0.0)
        client.force_login(staff_cast.teammate)
        url = f"/admin/campaigns/placement/{placement.pk}/change/"
        refused = client.post(url, placement_form(placement, artwork=failing.pk))
        assert refused.status_code == 200 and "does not pass the scan check" in refused.content.decode()
        placement.refresh_from_db()
        assert placement.artwork is None
        saved = client.post(url, placement_form(placement, artwork=failing.pk, print_anyway="press proof"))
        assert saved.status_code == 302
        placement.refresh_from_db()
        assert placement.artwork == failing and placement.print_anyway_by == staff_cast.teammate
        assert placement.print_anyway_reason == "press proof"
        listing = client.get("/admin/campaigns/placement/").content.decode()
        assert "WILL NOT SCAN" in listing

    def test_it_refuses_another_links_artwork_unless_restamped(self, client, staff_cast, campaign):
        from tests.campaigns.conftest import make_art

        placement = Placement.objects.create(campaign=campaign, name="Poster")
        art = make_art(staff_cast.team, staff_cast.owner, "http://testserver/r/someoneelse")
        client.force_login(staff_cast.owner)
        url = f"/admin/campaigns/placement/{placement.pk}/change/"
        refused = client.post(url, placement_form(placement, artwork=art.pk))
        assert refused.status_code == 200 and "not this placement&#x27;s short link" in refused.content.decode()
        assert client.post(url, placement_form(placement, artwork=art.pk, restamp="on")).status_code == 302
        placement.refresh_from_db()
        assert placement.artwork.job.content == f"http://TESTSERVER/R/{placement.slug}"  # as its codes carry it

    def test_it_restamps_before_it_locks_the_placement_and_once_for_a_double_submit(self, client, staff_cast,
                                                                                      campaign, verifications):
        # Restamping and verifying take a second: under the placement's lock they held the scan drainer (and, on
        # SQLite, every writer) meanwhile, and each submit made a copy.
        from generator.models import GenerationJob
        from tests.campaigns.conftest import make_art

        placement = Placement.objects.create(campaign=campaign, name="Poster")
        art = make_art(staff_cast.team, staff_cast.owner, "http://testserver/r/someoneelse")
        client.force_login(staff_cast.owner)
        url = f"/admin/campaigns/placement/{placement.pk}/change/"
        for _ in range(2):
            assert client.post(url, placement_form(placement, artwork=art.pk, restamp="on")).status_code == 302
        placement.refresh_from_db()
        assert placement.artwork.scan_details["restamped_from"] == art.pk
        assert verifications == [False] and GenerationJob.objects.filter(placement=placement).count() == 1

    def test_it_judges_again_before_it_locks_the_placement_and_refuses_as_before(self, client, staff_cast,
                                                                                 campaign, verifications):
        from tests.campaigns.conftest import make_art, unreadable_to_the_active_model

        placement = Placement.objects.create(campaign=campaign, name="Poster")
        stale = unreadable_to_the_active_model(make_art(staff_cast.team, staff_cast.owner,
                                                        f"http://testserver/r/{placement.slug}"))
        client.force_login(staff_cast.teammate)
        refused = client.post(f"/admin/campaigns/placement/{placement.pk}/change/",
                              placement_form(placement, artwork=stale.pk))
        assert refused.status_code == 200 and "does not pass the scan check" in refused.content.decode()
        assert verifications == [False]
        placement.refresh_from_db()
        assert placement.artwork is None

    def test_a_viewer_makes_nothing_before_the_refusal(self, client, staff_cast, campaign, verifications):
        from generator.models import GenerationJob
        from tests.campaigns.conftest import make_art

        placement = Placement.objects.create(campaign=campaign, name="Poster")
        art = make_art(staff_cast.team, staff_cast.owner, "http://testserver/r/someoneelse")
        client.force_login(staff_cast.viewer)
        response = client.post(f"/admin/campaigns/placement/{placement.pk}/change/",
                               placement_form(placement, artwork=art.pk, restamp="on"))
        assert response.status_code == 403
        assert verifications == [] and not GenerationJob.objects.filter(placement=placement).exists()


@pytest.fixture
def alert_and_share(staff_cast, campaign):
    from datetime import date

    from campaigns import shares

    placement = Placement.objects.create(campaign=campaign, name="Poster")
    alert = PlacementAlert.objects.create(placement=placement, kind="stopped", day=date(2026, 5, 1),
                                          message="No scans in the last 24 hours.")
    share, _ = shares.create(campaign, staff_cast.owner, days=7, label="Agency")
    theirs = Campaign.objects.create(team=staff_cast.other_team, name="Rival sale", destination="https://x.io")
    their_alert = PlacementAlert.objects.create(placement=Placement.objects.create(campaign=theirs, name="Rival"),
                                                kind="dropped", day=date(2026, 5, 1), message="Fell.")
    their_share, _ = shares.create(theirs, staff_cast.outsider, days=7)
    return alert, share, their_alert, their_share


@pytest.mark.django_db
class TestAlertsSharesAndRollupsInTheAdmin:
    def test_an_editor_dismisses_alerts_only_in_their_teams(self, client, staff_cast, alert_and_share):
        alert, _, their_alert, _ = alert_and_share
        # The outsider edits Rival and only views Acme: the changelist shows both teams' alerts to them.
        staff_cast.outsider.memberships.create(team=staff_cast.team, role="viewer")
        client.force_login(staff_cast.outsider)
        response = client.post("/admin/campaigns/placementalert/",
                               {"action": "dismiss", "_selected_action": [alert.pk, their_alert.pk]}, follow=True)
        assert "1 alert dismissed" in response.content.decode()
        alert.refresh_from_db()
        their_alert.refresh_from_db()
        assert alert.dismissed_at is None
        assert their_alert.dismissed_at is not None and their_alert.dismissed_by == staff_cast.outsider

    def test_a_viewer_can_neither_dismiss_nor_revoke(self, client, staff_cast, alert_and_share):
        alert, share, _, _ = alert_and_share
        client.force_login(staff_cast.viewer)
        listing = client.get("/admin/campaigns/placementalert/")
        assert listing.status_code == 200 and "Dismiss selected" not in listing.content.decode()
        client.post("/admin/campaigns/placementalert/", {"action": "dismiss", "_selected_action": [alert.pk]})
        client.post("/admin/campaigns/reportshare/", {"action": "revoke", "_selected_action": [share.pk]})
        alert.refresh_from_db()
        share.refresh_from_db()
        assert alert.dismissed_at is None and share.revoked_at is None

    def test_a_viewer_sees_no_share_links(self, client, staff_cast, alert_and_share):
        _, share, _, _ = alert_and_share
        client.force_login(staff_cast.viewer)
        listing = client.get("/admin/campaigns/reportshare/")
        assert listing.status_code == 200 and f"/reportshare/{share.pk}/change/" not in listing.content.decode()
        assert client.get(f"/admin/campaigns/reportshare/{share.pk}/change/").status_code in (302, 404)
        client.force_login(staff_cast.teammate)
        assert f"/reportshare/{share.pk}/change/" in client.get("/admin/campaigns/reportshare/").content.decode()

    def test_only_owners_see_or_delete_webhooks(self, client, staff_cast, campaign):
        # The site and the API keep webhooks to owners (they send the team's data elsewhere): in the admin a viewer
        # read the endpoint's address and the messages waiting for it, and an editor deleted the endpoint.
        endpoint = WebhookEndpoint.objects.create(team=staff_cast.team, url="https://hooks.acme.example/T0/key",
                                                  events=["scan.created"], secret="whsec_x")
        delivery = WebhookDelivery.objects.create(endpoint=endpoint, message_id="m-1", event="scan.created")
        waiting = WebhookOutbox.objects.create(endpoint=endpoint, event="scan.created", next_try=timezone.now(),
                                               messages=[["m-2", {"placement": 1}]])
        pages = [f"/admin/campaigns/{row._meta.model_name}/{row.pk}/change/" for row in (endpoint, delivery, waiting)]
        for user in (staff_cast.viewer, staff_cast.teammate):
            client.force_login(user)
            for model in ("webhookendpoint", "webhookdelivery", "webhookoutbox"):
                assert "hooks.acme.example" not in client.get(f"/admin/campaigns/{model}/").content.decode()
            assert [client.get(page).status_code for page in pages] == [302] * 3  # "not found" back to the index
        client.post(f"/admin/campaigns/webhookendpoint/{endpoint.pk}/delete/", {"post": "yes"})
        client.post("/admin/campaigns/webhookendpoint/",
                    {"action": "delete_selected", "_selected_action": [endpoint.pk], "post": "yes"})
        assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
        client.force_login(staff_cast.owner)
        assert "hooks.acme.example" in client.get("/admin/campaigns/webhookendpoint/").content.decode()
        assert [client.get(page).status_code for page in pages] == [200] * 3

    def test_an_editor_revokes_a_share_and_it_stops_opening(self, client, staff_cast, campaign):
        from campaigns import shares

        share, token = shares.create(campaign, staff_cast.owner, days=7)
        assert client.get(f"/campaigns/shared/{token}/").status_code == 200
        client.force_login(staff_cast.teammate)
        response = client.post("/admin/campaigns/reportshare/",
                               {"action": "revoke", "_selected_action": [share.pk]}, follow=True)
        assert "1 share link revoked" in response.content.decode()
        client.logout()
        assert client.get(f"/campaigns/shared/{token}/").status_code == 410

    def test_it_shows_no_token_hash_and_changes_nothing(self, client, staff_cast, alert_and_share):
        _, share, _, _ = alert_and_share
        client.force_login(staff_cast.owner)
        page = client.get(f"/admin/campaigns/reportshare/{share.pk}/change/")
        assert page.status_code == 200 and share.token_hash not in page.content.decode()
        client.post(f"/admin/campaigns/reportshare/{share.pk}/change/", {"label": "changed"})
        share.refresh_from_db()
        assert share.label == "Agency"
        assert client.post(f"/admin/campaigns/reportshare/{share.pk}/delete/", {"post": "yes"}).status_code == 403
        assert ReportShare.objects.filter(pk=share.pk).exists()

    def test_rollups_are_read_only_and_scoped(self, client, staff_cast, both_teams):
        from django.utils import timezone

        ours, theirs = (ScanRollup.objects.create(placement=both_teams[key][1], day=timezone.now().date(), scans=1,
                                                  first_scan=timezone.now(), last_scan=timezone.now())
                        for key in ("ours", "theirs"))
        client.force_login(staff_cast.teammate)
        listing = client.get("/admin/campaigns/scanrollup/").content.decode()
        assert f"/scanrollup/{ours.pk}/change/" in listing and f"/scanrollup/{theirs.pk}/change/" not in listing
        assert client.get("/admin/campaigns/scanrollup/add/").status_code == 403
        client.post(f"/admin/campaigns/scanrollup/{ours.pk}/change/", {"scans": 999})
        assert client.post(f"/admin/campaigns/scanrollup/{ours.pk}/delete/", {"post": "yes"}).status_code == 403
        ours.refresh_from_db()
        assert ours.scans == 1
        # A superuser neither: the campaign's own rows would still count what a deleted rollup counted.
        client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456789"))
        assert client.post(f"/admin/campaigns/scanrollup/{ours.pk}/delete/", {"post": "yes"}).status_code == 403
        client.post("/admin/campaigns/scanrollup/", {"action": "delete_selected", "_selected_action": [ours.pk],
                                                     "post": "yes"})
        assert ScanRollup.objects.filter(pk=ours.pk).exists()
        # A filtered page does not count every rollup of the user's teams as well.
        assert client.get("/admin/campaigns/scanrollup/?dimension=device").context["cl"].full_result_count is None


@pytest.mark.django_db
class TestAtAMarketingTeamsVolume:
    """Admin pages whose cost grew with the team's rows (a helper's audit at 5,000 placements and 1 M scans)."""

    def test_a_campaign_of_many_placements_links_them_instead_of_drawing_each(self, client, staff_owner, both_teams):
        from campaigns.admin import INLINE_PLACEMENTS

        campaign = Campaign.objects.get(name="ours campaign")
        staff_owner.user_permissions.add(*Permission.objects.filter(codename__in=["change_campaign"]))
        url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
        client.force_login(staff_owner)
        assert "placements-TOTAL_FORMS" in client.get(url).content.decode()
        Placement.objects.bulk_create(Placement(campaign=campaign, name=f"P{i}", slug=f"many{i:04d}")
                                      for i in range(INLINE_PLACEMENTS))
        page = client.get(url).content.decode()
        assert "placements-TOTAL_FORMS" not in page and f"?campaign__id__exact={campaign.pk}" in page
        assert f"{INLINE_PLACEMENTS + 1} placements</a> (too many to edit here)" in page

    def test_the_scan_list_reads_no_column_of_every_scan(self, client, staff_owner, both_teams):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client.force_login(staff_owner)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/admin/campaigns/scanevent/").status_code == 200
        sql = " ".join(q["sql"] for q in queries.captured_queries)
        for column in ('"os"', '"country"', '"rule"', '"device_class"'):
            assert f'DISTINCT "campaigns_scanevent".{column}' not in sql  # no all-values filter
        assert "django_datetime_trunc" not in sql.lower() and "date_trunc" not in sql.lower()  # no date drill-down

    def test_a_teams_rows_are_scoped_by_a_join_not_a_list_of_every_id(self, client, staff_owner, both_teams):
        # "id IN (SELECT id ...)" made PostgreSQL read every rollup's id for each page's count (3.6 s at 5.9 M).
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client.force_login(staff_owner)
        with CaptureQueriesContext(connection) as queries:
            page = client.get("/admin/campaigns/scanrollup/")
        assert page.status_code == 200
        sql = " ".join(q["sql"] for q in queries.captured_queries if "campaigns_scanrollup" in q["sql"])
        assert sql and '"campaigns_scanrollup"."id" IN (SELECT' not in sql

    def test_a_changelist_of_alerts_costs_the_same_for_more_rows(self, client, staff_owner, both_teams):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        placement = Placement.objects.get(name="ours poster")

        def queries_for(count: int) -> int:
            PlacementAlert.objects.bulk_create(PlacementAlert(placement=placement, kind="stopped", message="Stopped",
                                                              day=f"2026-01-{d:02d}") for d in range(1, count + 1))
            with CaptureQueriesContext(connection) as queries:
                client.get("/admin/campaigns/placementalert/")
            PlacementAlert.objects.all().delete()
            return len(queries.captured_queries)

        client.force_login(staff_owner)
        assert queries_for(2) == queries_for(12)


@pytest.mark.django_db
class TestNamesInTheAdmin:
    # The admin's forms skipped the name rule the pages, the API and the import hold to (`campaigns.names`)
    def test_it_refuses_a_campaign_named_like_an_active_one_of_the_team(self, client, staff_cast, campaign):
        client.force_login(staff_cast.owner)
        response = client.post("/admin/campaigns/campaign/add/", campaign_form(staff_cast.team, name="SPRING SALE"))
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["name"] == [names.CAMPAIGN_NAME_TAKEN]
        other = Campaign.objects.create(team=staff_cast.team, name="Autumn", destination="https://a.example/")
        response = client.post(f"/admin/campaigns/campaign/{other.pk}/change/", campaign_form(staff_cast.team))
        assert response.status_code == 200 and Campaign.objects.filter(name="Spring Sale").count() == 1
        # An archived namesake leaves the name free; the campaign's own name, recased, is its own
        assert client.post(f"/admin/campaigns/campaign/{other.pk}/change/", campaign_form(
            staff_cast.team, name="Spring Sale", archived="on")).status_code == 302
        assert client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", campaign_form(
            staff_cast.team, name="spring sale")).status_code == 302

    def test_it_refuses_a_placement_named_like_another_of_its_campaign_added_or_moved(self, client, staff_cast,
                                                                                      campaign):
        Placement.objects.create(campaign=campaign, name="Poster")
        autumn = Campaign.objects.create(team=staff_cast.team, name="Autumn", destination="https://a.example/")
        theirs = Placement.objects.create(campaign=autumn, name="poster")
        client.force_login(staff_cast.owner)
        response = client.post("/admin/campaigns/placement/add/", {"campaign": campaign.pk, "name": "POSTER",
                                                                   "kind": "poster", "active": "on"})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["name"] == [names.PLACEMENT_NAME_TAKEN]
        response = client.post(f"/admin/campaigns/placement/{theirs.pk}/change/", placement_form(
            theirs, campaign=campaign.pk))
        assert response.status_code == 200 and campaign.placements.count() == 1
        assert client.post(f"/admin/campaigns/placement/{theirs.pk}/change/", placement_form(
            theirs, name="Poster")).status_code == 302  # its own name, recased

    def test_the_campaigns_placements_keep_distinct_names_yet_may_swap_them(self, client, staff_cast, campaign):
        one = Placement.objects.create(campaign=campaign, name="Poster")
        two = Placement.objects.create(campaign=campaign, name="Flyer")
        client.force_login(staff_cast.owner)

        def post(*rows: tuple[Placement | None, str]):
            data = campaign_form(staff_cast.team, **{"placements-TOTAL_FORMS": len(rows),
                                                     "placements-INITIAL_FORMS": sum(row is not None
                                                                                     for row, _ in rows)})
            for index, (row, name) in enumerate(rows):
                data.update({f"placements-{index}-{field}": value for field, value in (
                    ("id", row.pk if row else ""), ("campaign", campaign.pk), ("name", name), ("kind", "poster"),
                    ("location", ""), ("active", "on"))})
            return client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", data)

        refused = post((one, "Poster"), (two, "Flyer"), (None, "flyer"))
        assert refused.status_code == 200 and campaign.placements.count() == 2
        assert refused.context["inline_admin_formsets"][0].formset.forms[2].errors["name"] == [
            names.PLACEMENT_NAME_TAKEN]
        assert post((one, "Poster"), (two, "poster")).status_code == 200  # a rename into a taken name
        assert post((one, "Flyer"), (two, "Poster")).status_code == 302  # a swap
        one.refresh_from_db()
        assert one.name == "Flyer"
        Placement.objects.filter(pk=two.pk).update(name="flyer")  # a pair made before the rule
        assert post((one, "Flyer"), (two, "flyer")).status_code == 302  # stays editable


@pytest.mark.django_db(transaction=True)  # two requests at once, each with a connection of its own
def test_an_admin_change_beside_an_api_archive_leaves_the_campaign_archived(team_users, campaign, monkeypatch):
    # The admin's form saved the campaign as it had read it, archived=False included: the archive was undone
    from django.test import Client
    from rest_framework.test import APIClient

    from campaigns import history
    from tests.conftest import at_once, make_staff

    make_staff(team_users.owner)
    admin_page, api = Client(), APIClient()
    admin_page.force_login(team_users.owner)
    api.force_authenticate(team_users.teammate)

    def change() -> int:
        return admin_page.post(f"/admin/campaigns/campaign/{campaign.pk}/change/", campaign_form(
            team_users.team, destination="https://shop.example.com/later")).status_code

    def archive() -> int:
        return api.delete(f"/api/campaigns/{campaign.pk}/").status_code

    assert at_once(monkeypatch, (history, "stored_values"), change, archive) == [302, 200]
    campaign.refresh_from_db()
    assert campaign.archived and campaign.destination == "https://shop.example.com/later"


@pytest.mark.django_db(transaction=True)  # two requests at once, each with a connection of its own
def test_two_placements_moved_each_into_the_others_campaign_at_once_both_move(team_users, campaign, monkeypatch):
    # Each move locked its own campaign, then the other's for the name check: on PostgreSQL they waited for each
    # other in a circle, and one was answered "the database is away" (a deadlock)
    from django.test import Client

    from campaigns import names
    from tests.conftest import at_once, make_staff

    make_staff(team_users.owner)
    autumn = Campaign.objects.create(team=team_users.team, name="Autumn", destination="https://a.example/")
    gate, flyer = (Placement.objects.create(campaign=campaign, name="Gate"),
                   Placement.objects.create(campaign=autumn, name="Flyer"))

    def move(placement, to) -> int:
        admin_page = Client()
        admin_page.force_login(team_users.owner)
        return admin_page.post(f"/admin/campaigns/placement/{placement.pk}/change/",
                               placement_form(placement, campaign=to.pk)).status_code

    codes = at_once(monkeypatch, (names, "_hold"), lambda: move(gate, autumn), lambda: move(flyer, campaign),
                    before=True)  # its own campaign held, the other not yet
    assert codes == [302, 302]
    gate.refresh_from_db()
    flyer.refresh_from_db()
    assert (gate.campaign, flyer.campaign) == (autumn, campaign)


@pytest.mark.django_db
def test_the_campaign_page_does_not_switch_back_on_a_placement_switched_off_since_it_was_drawn(client, team_users,
                                                                                               campaign):
    from tests.conftest import make_staff

    make_staff(team_users.owner)
    poster = Placement.objects.create(campaign=campaign, name="Poster")
    client.force_login(team_users.owner)
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    inline = client.get(url).context["inline_admin_formsets"][0].formset.forms[0]
    seen = inline["seen"].value()
    poster.set_active(False)  # elsewhere, after the page was drawn
    data = campaign_form(team_users.team, **{"placements-TOTAL_FORMS": 1, "placements-INITIAL_FORMS": 1})
    data.update({"placements-0-id": poster.pk, "placements-0-campaign": campaign.pk, "placements-0-name": "Poster",
                 "placements-0-kind": "poster", "placements-0-location": "", "placements-0-active": "on",
                 "placements-0-seen": seen})
    response = client.post(url, data)
    assert response.status_code == 200
    assert "A change was saved to this since the page was drawn (Active)" in response.content.decode()
    poster.refresh_from_db()
    assert not poster.active


@pytest.mark.django_db
def test_a_list_past_its_bound_says_more_than_a_grouped_number_and_offers_no_exact_count(admin_client, both_teams,
                                                                                         monkeypatch):
    # It said "More than 10000 scan events" (the admin groups thousands elsewhere, as intcomma does) and offered to
    # "Select all 10001 scan events": a count it never made.
    from campaigns.admin import BoundedCount

    monkeypatch.setattr(BoundedCount, "bound", 1000)
    ScanEvent.objects.bulk_create(ScanEvent(placement=both_teams["ours"][1], device_class="mobile")
                                  for _ in range(1000))
    page = admin_client.get("/admin/campaigns/scanevent/").content.decode()
    assert "More than 1,000 scan events" in page
    assert "Select all scan events (more than 1,000)" in page and "All scan events selected (more than 1,000)" in page
    assert "More than 1,000 results" in page  # beside the search box, with or without a search
    searched = admin_client.get("/admin/campaigns/scanevent/?q=poster").content.decode()
    assert "More than 1,000 scan events" in searched and "More than 1,000 results" in searched
    for claim in ("Select all 1", "All 1", "1001 results", "1,001 results", "1001 scan events", "1,001 scan events"):
        assert claim not in page and claim not in searched
    few = admin_client.get("/admin/campaigns/scanevent/?q=theirs").content.decode()
    assert "1 result " in few and "1 scan event\n" in few
