from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.utils import timezone
from PIL import Image

from campaigns import links, rollups
from campaigns.drainer import drain_once, store_events
from campaigns.models import Campaign, Placement, ScanEvent
from campaigns.scan_buffer import scan_event
from generator.core.codes import decision, decoders, images, qr
from generator.models import Candidate, GenerationJob, Prompt
from qartsite.models import Membership, Team

CHART_JS = "/static/vendor/chart.js/chart.umd.min.js"


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station Poster", location="Platform 2")


@pytest.fixture
def scans(placement):
    """Two people and one link-preview bot; all from a client address that must never be exported."""
    now = timezone.now()
    made = [
        ScanEvent.objects.create(placement=placement, device_class="mobile", os="iOS", browser="Mobile Safari",
                                 country="DE", referer="https://t.co/x", client_hash="c0ffee0123456789",
                                 accept_language="de-DE", rule="ios"),
        ScanEvent.objects.create(placement=placement, device_class="desktop", os="Windows", browser="Chrome",
                                 referer="=HYPERLINK(\"https://evil.example\")", client_hash="c0ffee0123456789"),
        ScanEvent.objects.create(placement=placement, device_class="bot", os="Other", browser="Slackbot", is_bot=True),
    ]
    ScanEvent.objects.filter(pk=made[1].pk).update(time=now - timedelta(days=10))
    rollups.rebuild(Placement.objects.all())  # what the drainer keeps as it stores scans
    return made


def page_urls(campaign: Campaign, placement: Placement) -> list[str]:
    return [
        "/campaigns/",
        f"/campaigns/{campaign.pk}/",
        f"/campaigns/placements/{placement.pk}/",
        f"/campaigns/{campaign.pk}/scans.csv",
        f"/campaigns/placements/{placement.pk}/scans.csv",
        f"/campaigns/placements/{placement.pk}/code.svg",
        f"/campaigns/placements/{placement.pk}/code.png",
    ]


def object_urls(campaign: Campaign, placement: Placement) -> list[str]:
    """Every URL that names one campaign or placement (the list page names none)."""
    return page_urls(campaign, placement)[1:] + [
        f"/campaigns/{campaign.pk}/edit/",
        f"/campaigns/{campaign.pk}/placements/new/",
        f"/campaigns/placements/{placement.pk}/edit/",
    ]


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


CAMPAIGN_DATA = {"name": "Autumn", "destination": "https://shop.example.com/autumn", "utm_source": "qr",
                 "utm_medium": "print", "utm_campaign": "", "dates_route": "on"}
PLACEMENT_DATA = {"name": "Window sticker", "kind": "poster", "location": "Shop window", "active": "on"}


@pytest.mark.django_db
class TestAccess:
    def test_it_sends_anonymous_visitors_to_sign_in(self, client, campaign, placement):
        for url in object_urls(campaign, placement) + ["/campaigns/", "/campaigns/new/"]:
            response = client.get(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/?next="), url

    @pytest.mark.parametrize("who", ["owner", "teammate", "viewer"])
    def test_it_shows_every_page_to_team_members(self, client, team_users, campaign, placement, scans, who):
        client.force_login(getattr(team_users, who))
        for url in page_urls(campaign, placement):
            response = client.get(url)
            assert response.status_code == 200, url
            if response.streaming:  # a streamed export fails only once it is read
                b"".join(response.streaming_content)

    def test_it_answers_404_to_outsiders_for_reads_and_writes(self, client, team_users, campaign, placement):
        client.force_login(team_users.outsider)
        for url in object_urls(campaign, placement):
            assert client.get(url).status_code == 404, url
            assert client.post(url, CAMPAIGN_DATA | PLACEMENT_DATA).status_code in (404, 405), url
        assert client.post(f"/campaigns/{campaign.pk}/edit/", CAMPAIGN_DATA).status_code == 404
        assert client.post(f"/campaigns/placements/{placement.pk}/edit/", PLACEMENT_DATA).status_code == 404
        campaign.refresh_from_db()
        assert campaign.name == "Spring Sale" and campaign.placements.count() == 1

    @pytest.mark.parametrize("team", ["%C2%B2", "9" * 30, "abc", "-1"])
    def test_a_team_it_cannot_read_lists_the_first_team(self, client, team_users, campaign, team):
        client.force_login(team_users.owner)
        assert "Spring Sale" in body(client.get(f"/campaigns/?team={team}"))

    def test_it_does_not_list_other_teams_campaigns(self, client, team_users, campaign):
        Campaign.objects.create(team=team_users.other_team, name="Rival Secret", destination="https://r.example.com/")
        client.force_login(team_users.owner)
        html = body(client.get("/campaigns/"))
        assert "Spring Sale" in html and "Rival Secret" not in html

    @pytest.mark.parametrize("url", ["/campaigns/999999/", "/campaigns/placements/999999/",
                                     "/campaigns/99999999999999999999999/", "/campaigns/placements/abc/",
                                     "/campaigns/999999/scans.csv", "/campaigns/placements/999999/code.svg"])
    def test_it_answers_404_for_unknown_ids(self, client, team_users, url):
        client.force_login(team_users.owner)
        assert client.get(url).status_code == 404

    def test_it_refuses_changes_from_viewers_with_403(self, client, team_users, campaign, placement):
        client.force_login(team_users.viewer)
        posts = {
            "/campaigns/new/": CAMPAIGN_DATA | {"team": team_users.team.pk},
            f"/campaigns/{campaign.pk}/edit/": CAMPAIGN_DATA,
            f"/campaigns/{campaign.pk}/placements/new/": PLACEMENT_DATA,
            f"/campaigns/placements/{placement.pk}/edit/": PLACEMENT_DATA,
        }
        for url, data in posts.items():
            assert client.post(url, data).status_code == 403, url
        assert Campaign.objects.count() == 1 and Placement.objects.count() == 1
        campaign.refresh_from_db()
        assert campaign.name == "Spring Sale"

    def test_it_shows_viewers_no_forms(self, client, team_users, campaign, placement):
        client.force_login(team_users.viewer)
        for url in ["/campaigns/", f"/campaigns/{campaign.pk}/", f"/campaigns/placements/{placement.pk}/"]:
            html = body(client.get(url))
            assert 'method="post"' not in html.replace('method="post" action="/accounts/logout/"', ""), url
        assert "Generate art for this placement" not in html

    def test_it_protects_forms_with_csrf(self, team_users, campaign):
        from django.test import Client

        client = Client(enforce_csrf_checks=True)
        client.force_login(team_users.owner)
        assert "csrfmiddlewaretoken" in body(client.get(f"/campaigns/{campaign.pk}/"))
        assert client.post(f"/campaigns/{campaign.pk}/edit/", CAMPAIGN_DATA).status_code == 403


@pytest.mark.django_db
class TestCampaignList:
    def test_it_lists_campaigns_with_placement_and_scan_counts(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.teammate)
        html = body(client.get("/campaigns/"))
        row = re.search(r"<tr>.*?Spring Sale.*?</tr>", html, re.S).group(0)
        cells = re.findall(r'class="num">(\d+)<', row)
        assert cells == ["1", "2", "2"]  # placements, scans in the last 30 days (bot left out), unique visitors
        assert "Acme" in row

    def test_it_hides_archived_campaigns_behind_a_toggle(self, client, team_users, campaign):
        Campaign.objects.create(team=team_users.team, name="Old Promo", destination="https://example.com/",
                                archived=True)
        client.force_login(team_users.owner)
        active = body(client.get("/campaigns/"))
        archived = body(client.get("/campaigns/?archived=1"))
        assert "Spring Sale" in active and "Old Promo" not in active and "Show archived (1)" in active
        assert "Old Promo" in archived and "Spring Sale" not in archived

    def test_it_keeps_the_range_and_team_across_the_archived_toggle(self, client, team_users, campaign):
        Campaign.objects.create(team=team_users.team, name="Old Promo", destination="https://example.com/",
                                archived=True)
        client.force_login(team_users.owner)
        team = team_users.team.pk
        active = body(client.get(f"/campaigns/?range=7d&team={team}"))
        assert f'href="/campaigns/?team={team}&amp;range=7d&amp;archived=1">Show archived (1)' in active
        archived = body(client.get(f"/campaigns/?archived=1&range=7d&team={team}"))
        assert f'href="/campaigns/?team={team}&amp;range=7d">Show active (1)' in archived

    def test_it_offers_the_new_campaign_form_only_with_editable_teams(self, client, team_users):
        client.force_login(team_users.teammate)
        html = body(client.get("/campaigns/"))
        assert 'action="/campaigns/new/"' in html
        assert f'<option value="{team_users.team.pk}" selected>Acme</option>' in html
        assert "Rival" not in html
        client.force_login(team_users.viewer)
        assert 'action="/campaigns/new/"' not in body(client.get("/campaigns/"))

    def test_it_tells_a_user_without_a_team(self, client, django_user_model):
        client.force_login(django_user_model.objects.create_user("loner", password="pw-loner-1"))
        response = client.get("/campaigns/")
        assert response.status_code == 200 and "not in a team yet" in body(response)


@pytest.mark.django_db
class TestCampaignForms:
    def test_it_creates_a_campaign_in_an_editable_team(self, client, team_users):
        client.force_login(team_users.teammate)
        response = client.post("/campaigns/new/", CAMPAIGN_DATA | {"team": team_users.team.pk})
        campaign = Campaign.objects.get(name="Autumn")
        assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/"
        assert campaign.team == team_users.team and campaign.utm_campaign == "autumn"

    def test_a_second_campaign_or_placement_of_one_name_is_refused_on_its_field(self, client, team_users, campaign,
                                                                                 placement):
        # The list showed two identical "Summer Festival" rows after a form was sent twice
        client.force_login(team_users.teammate)
        response = client.post("/campaigns/new/", CAMPAIGN_DATA | {"team": team_users.team.pk, "name": "spring sale"})
        assert response.status_code == 400
        assert "Your team already has a campaign with this name" in body(response)
        assert Campaign.objects.count() == 1
        response = client.post(f"/campaigns/{campaign.pk}/placements/new/", PLACEMENT_DATA | {"name": "STATION POSTER"})
        assert response.status_code == 400
        assert "The campaign already has a placement with this name." in body(response)
        assert campaign.placements.count() == 1

    def test_bringing_back_a_campaign_beside_an_active_one_of_its_name_asks_for_a_rename(self, client, team_users,
                                                                                         campaign):
        client.force_login(team_users.teammate)
        campaign.set_archived(True)
        Campaign.objects.create(team=team_users.team, name="SPRING SALE", destination="https://a.example/")
        response = client.post(f"/campaigns/{campaign.pk}/archive/", {"archived": "0"}, follow=True)
        assert "Another active campaign is called “Spring Sale”: rename this one" in body(response)
        assert Campaign.objects.get(pk=campaign.pk).archived
        # Its own edit page still saves (an archived campaign's fallback is where its codes lead)
        edit = client.post(f"/campaigns/{campaign.pk}/edit/", CAMPAIGN_DATA | {"name": "Spring Sale", "archived": "on"})
        assert edit.status_code == 302

    def test_someone_in_two_teams_creates_in_the_team_they_are_looking_at(self, client, team_users):
        # The forms chose the first team by name, whichever team's overview the person was on.
        Membership.objects.create(team=team_users.team, user=team_users.outsider, role="editor")
        client.force_login(team_users.outsider)
        for team in (team_users.team, team_users.other_team):
            for url in (f"/campaigns/?team={team.pk}", f"/campaigns/new/?team={team.pk}", f"/generate/?team={team.pk}"):
                chosen = client.get(url).context["form"]
                assert chosen["team"].value() in (team.pk, str(team.pk)), url
        assert client.get("/campaigns/new/?team=abc").context["form"]["team"].value() == team_users.team.pk  # first

    def test_it_refuses_another_teams_id(self, client, team_users):
        client.force_login(team_users.owner)
        response = client.post("/campaigns/new/", CAMPAIGN_DATA | {"team": team_users.other_team.pk})
        assert response.status_code == 400 and "Select a valid choice" in body(response)
        assert not Campaign.objects.exists()

    @pytest.mark.parametrize("destination, message", [
        ("javascript:alert(1)", "must start with http:// or https://"),
        ("data:text/html,hi", "must start with http:// or https://"),
        ("https://nodot", "needs a host name"),
    ])
    def test_it_refuses_unsafe_destinations_with_a_message(self, client, team_users, campaign, destination, message):
        client.force_login(team_users.owner)
        response = client.post(f"/campaigns/{campaign.pk}/edit/", CAMPAIGN_DATA | {"destination": destination})
        assert response.status_code == 400 and message in body(response)
        campaign.refresh_from_db()
        assert campaign.destination == "https://shop.example.com/"

    def test_it_refuses_an_end_before_the_start(self, client, team_users):
        client.force_login(team_users.owner)
        data = CAMPAIGN_DATA | {"team": team_users.team.pk, "starts_on": "2025-05-02", "ends_on": "2025-05-01"}
        response = client.post("/campaigns/new/", data)
        assert response.status_code == 400 and "can&#x27;t end before it starts" in body(response)

    def test_it_edits_and_archives_a_campaign(self, client, team_users, campaign):
        client.force_login(team_users.teammate)
        response = client.post(f"/campaigns/{campaign.pk}/edit/", CAMPAIGN_DATA | {"archived": "on"})
        assert response.status_code == 302
        campaign.refresh_from_db()
        assert campaign.name == "Autumn" and campaign.archived


    def test_it_checks_and_saves_the_fallback_url(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        url = f"/campaigns/{campaign.pk}/edit/"
        refused = client.post(url, CAMPAIGN_DATA | {"fallback_url": "javascript:alert(1)"})
        assert refused.status_code == 400 and "must start with http:// or https://" in body(refused)
        assert client.post(url, CAMPAIGN_DATA | {"fallback_url": "https://shop.example.com/ended"}).status_code == 302
        campaign.refresh_from_db()
        assert campaign.fallback_url == "https://shop.example.com/ended"


@pytest.mark.django_db
class TestArchiving:
    """Pages never delete a campaign or placement: they archive it (a campaign) or switch it off (a placement),
    and its printed codes keep leading somewhere and counting."""

    def test_it_archives_and_unarchives_a_campaign(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.teammate)
        assert "Archive campaign" in body(client.get(f"/campaigns/{campaign.pk}/"))
        response = client.post(f"/campaigns/{campaign.pk}/archive/", {"archived": "1"})
        assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/"
        campaign.refresh_from_db()
        assert campaign.archived and campaign.placements.get().scans.count() == 3
        html = body(client.get(f"/campaigns/{campaign.pk}/"))
        assert "Unarchive" in html and "still redirect and count" in html
        assert "Spring Sale" not in body(client.get("/campaigns/"))
        assert client.post(f"/campaigns/{campaign.pk}/archive/", {"archived": "0"}).status_code == 302
        campaign.refresh_from_db()
        assert not campaign.archived

    def test_it_switches_a_placement_off_and_on(self, client, team_users, placement):
        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/archive/"
        assert client.post(url, {"archived": "1"})["Location"] == f"/campaigns/placements/{placement.pk}/"
        placement.refresh_from_db()
        assert not placement.active and Placement.objects.count() == 1
        assert "still redirects" in body(client.get(f"/campaigns/placements/{placement.pk}/"))
        client.post(url, {"archived": "0"})
        placement.refresh_from_db()
        assert placement.active

    def test_it_refuses_viewers_and_outsiders(self, client, team_users, campaign, placement):
        for user, status in ((team_users.viewer, 403), (team_users.outsider, 404)):
            client.force_login(user)
            assert client.post(f"/campaigns/{campaign.pk}/archive/", {"archived": "1"}).status_code == status
            assert client.post(f"/campaigns/placements/{placement.pk}/archive/",
                               {"archived": "1"}).status_code == status
        assert client.get(f"/campaigns/{campaign.pk}/archive/").status_code == 405
        campaign.refresh_from_db()
        placement.refresh_from_db()
        assert not campaign.archived and placement.active


@pytest.mark.django_db
class TestPlacementForms:
    def test_it_adds_a_placement_with_a_fresh_short_link(self, client, team_users, campaign):
        client.force_login(team_users.teammate)
        response = client.post(f"/campaigns/{campaign.pk}/placements/new/", PLACEMENT_DATA)
        placement = Placement.objects.get(name="Window sticker")
        assert response["Location"] == f"/campaigns/placements/{placement.pk}/"
        assert placement.campaign == campaign and len(placement.slug) == links.SLUG_LENGTH and placement.active

    def test_an_archived_campaign_offers_and_takes_no_new_placement(self, client, team_users, campaign):
        campaign.set_archived(True)
        client.force_login(team_users.teammate)
        response = client.get(f"/campaigns/{campaign.pk}/")
        page = body(response)
        assert "unarchive it to add one" in page and f"/campaigns/{campaign.pk}/placements/new/" not in page
        assert response.context["placement_form"] is None  # not built for a form the page does not show
        assert f"/campaigns/{campaign.pk}/placements/import/" not in page
        response = client.get(f"/campaigns/{campaign.pk}/placements/new/", follow=True)  # a bookmark, an old tab
        assert response.redirect_chain == [(f"/campaigns/{campaign.pk}/", 302)]
        assert "archived: bring it back before adding placements" in body(response)
        response = client.post(f"/campaigns/{campaign.pk}/placements/new/", PLACEMENT_DATA)
        assert response.status_code == 400 and "archived: bring it back before adding placements" in body(response)
        assert not campaign.placements.exists()

    def test_a_placement_with_coordinates_alone_shows_them_as_its_location(self, client, team_users, campaign):
        # It said "No location set" above "— (52.520000, 13.405000)".
        placement = Placement.objects.create(campaign=campaign, name="Pillar", latitude="52.520000",
                                             longitude="13.405000")
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert "No location set" not in html and "—" not in html.split("<dt>Location</dt>")[1].split("</dd>")[0]
        assert html.count("52.520000, 13.405000") == 2

    def test_it_refuses_a_javascript_override_with_a_message(self, client, team_users, campaign, placement):
        client.force_login(team_users.owner)
        response = client.post(f"/campaigns/placements/{placement.pk}/edit/",
                               PLACEMENT_DATA | {"destination_override": "javascript:alert(document.cookie)"})
        assert response.status_code == 400 and "must start with http:// or https://" in body(response)
        placement.refresh_from_db()
        assert placement.destination_override == "" and placement.name == "Station Poster"

    def test_the_picker_shows_this_placements_own_art_before_the_teams_newer(self, client, team_users, campaign,
                                                                              placement, monkeypatch):
        # After "generate for every placement", the team's newest candidates were all other placements' and this
        # one's own dropped out of the picker.
        from campaigns import forms

        monkeypatch.setattr(forms, "PICKER_SIZE", 3)
        own = candidate(team_users.owner, team_users.team, f"http://testserver/r/{placement.slug}")
        others = [candidate(team_users.owner, team_users.team, f"http://testserver/r/other{n}") for n in range(3)]
        client.force_login(team_users.owner)
        choices = client.get(f"/campaigns/placements/{placement.pk}/edit/").context["choices"]
        assert [c["candidate"] for c in choices] == [own, others[2], others[1]]
        assert [c["elsewhere"] for c in choices] == [False, True, True]

    def test_it_only_offers_the_teams_own_artwork(self, client, team_users, campaign, placement):
        mine = candidate(team_users.owner, team_users.team, f"http://testserver/r/{placement.slug}")
        theirs = candidate(team_users.outsider, team_users.other_team)
        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/edit/"
        response = client.post(url, PLACEMENT_DATA | {"artwork": theirs.pk})
        assert response.status_code == 400 and "Select a valid choice" in body(response)
        assert client.post(url, PLACEMENT_DATA | {"artwork": mine.pk}).status_code == 302
        placement.refresh_from_db()
        assert placement.artwork == mine


def candidate(owner, team, content: str = "https://example.com/r/x") -> Candidate:
    prompt = Prompt.objects.create(owner=owner, text="a lighthouse")
    job = GenerationJob.objects.create(owner=owner, team=team, prompt=prompt, content=content, status="done")
    return Candidate.objects.create(job=job, index=0, seed=1, image="generations/1/c0.png", scan_probability=0.9,
                                    verdict="pass", rank=1, verifier_model=decision.MODEL)  # not verified again


@pytest.mark.django_db
class TestCampaignPage:
    def test_it_sets_apart_only_the_slug_at_the_end_of_a_short_link(self, client, team_users, campaign, placement,
                                                                     settings):
        # The template's `cut` took the slug's letters out of the host as well: "https://.example/r/spring26".
        Placement.objects.filter(pk=placement.pk).update(slug="spring26")  # an older slug: small letters too
        settings.SITE_ROOT = "https://spring26.example"
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/{campaign.pk}/"))
        assert 'https://spring26.example/r/<span class="slug">spring26</span>' in html

    def test_it_shows_placements_counts_and_chart_data(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/{campaign.pk}/"))
        # The slug is never split over two lines (the table wrapped it mid-slug)
        assert f'http://testserver/r/<span class="slug">{placement.slug}</span>' in html
        chart = json.loads(re.search(r'<script id="scan-chart" type="application/json">(.*?)</script>', html,
                                     re.S).group(1))
        assert len(chart["labels"]) == 30 and chart["partial_last"]
        assert chart["datasets"] == [{"label": "Scans", "data": [0] * 19 + [1] + [0] * 9 + [1], "type": "bar"},
                                     {"label": "Unique visitors", "data": [0] * 19 + [1] + [0] * 9 + [1],
                                      "type": "line"}]
        assert "Mobile" in html and "Desktop" in html and "Bot</span>" not in html

    def test_a_large_campaign_compares_its_placements_a_page_at_a_time(self, client, team_users, campaign):
        # A campaign of three whole imports drew all 3,000 rows (4-5 MB, seconds), and its 300 alerts each a form.
        from campaigns import dashboard
        from campaigns.models import PlacementAlert

        made = Placement.objects.bulk_create(Placement(campaign=campaign, name=f"P{i:03d}", slug=f"many{i:04d}")
                                             for i in range(dashboard.COMPARISON_PAGE + 5))
        PlacementAlert.objects.bulk_create(PlacementAlert(placement=made[0], kind="stopped", message="Stopped",
                                                          day=f"2026-01-{d:02d}") for d in range(1, 26))
        client.force_login(team_users.viewer)
        first = client.get(f"/campaigns/{campaign.pk}/")
        html = body(first)
        assert html.count("<tr data-placement=") == dashboard.COMPARISON_PAGE and "Placements 1–100 of 105" in html
        assert f'<span class="tile-num">{dashboard.COMPARISON_PAGE + 5}</span>' in html
        assert "page=2#placements" in html and html.count('<li id="alert-') == dashboard.ALERTS_SHOWN
        assert "And 5 more: each placement's page shows its own." in html
        second = body(client.get(f"/campaigns/{campaign.pk}/?range=30d&page=2"))
        assert second.count("<tr data-placement=") == 5 and "Placements 101–105 of 105" in second
        # Each page's rows have their sparklines (the trends are read for the rows shown only).
        assert html.count('<svg class="spark"') == 100 and second.count('<svg class="spark"') == 5
        assert body(client.get(f"/campaigns/{campaign.pk}/?page=abc")).count("<tr data-placement=") == 100

    def test_it_writes_large_counts_with_thousands_separators(self, client, team_users, campaign, placement):
        # "343399967" on the tiles under a chart whose axis read "14,000,000": a marketer counted the digits.
        from campaigns import stats
        from campaigns.models import ScanRollup

        now, day = timezone.now(), stats.local_today(campaign.team)
        for dimension, value in (("", ""), ("device", "mobile")):
            ScanRollup.objects.create(placement=placement, day=day, dimension=dimension, value=value,
                                      scans=1_234_567, visitors=1_000_001, first_scan=now, last_scan=now)
        rollups.refresh_campaigns([campaign.pk])
        Placement.objects.filter(pk=placement.pk).update(printed_quantity=25_000)
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/{campaign.pk}/"))
        assert 'data-tile="scans">1,234,567<' in html and 'data-tile="unique">1,000,001<' in html
        row = re.search(r'<tr data-placement="Station Poster">.*?</tr>', html, re.S).group(0)
        assert 'data-col="scans">1,234,567<' in row and 'data-col="unique">1,000,001<' in row
        assert 'data-col="per100">4,938.3<span class="muted small"> · 25,000 printed' in row
        assert '<span class="num">1,234,567</span>' in html  # the devices card
        assert '<td class="num">1,234,567</td><td class="num">1,000,001</td>' in html  # the daily table
        placement_page = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert '<span class="tile-num">1,234,567</span><span class="tile-label">scans in all' in placement_page
        assert '<span class="tile-num">25,000</span><span class="tile-label">printed' in placement_page
        assert '<td data-label="Scans" class="num">1,234,567</td>' in body(client.get("/campaigns/"))

    def test_it_says_unique_visitors_are_counted_once_a_day_per_placement(self, client, team_users, campaign,
                                                                          placement, scans):
        client.force_login(team_users.viewer)
        for url in ("/campaigns/", f"/campaigns/{campaign.pk}/"):
            html = body(client.get(url))
            assert "(a day's)" not in html
            # the daily table's head and small print on every page; the tiles and the Unique columns where shown
            assert '<abbr title="Unique visitors, counted once a day per placement. Each person is counted once a ' \
                   'day on each placement they scan' in html
            assert "Unique visitors are counted once a day per placement." in html
        # One placement's page says it of that placement alone: nothing is added up there.
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert "Unique visitors are counted once a day. Someone who scans this code on two days counts twice." in html
        assert "per placement" not in html
        for url in ("/campaigns/", f"/campaigns/{campaign.pk}/"):
            html = body(client.get(url))
            tile = re.search(r'data-tile="unique">\d+</span><span class="tile-label">(.*?)</div>', html, re.S).group(1)
            assert "unique visitors" in tile and "(counted once a day per placement)" in tile
            assert 'title="Each person is counted once a day on each placement they scan' in tile
            assert re.search(r'<th class="num"><abbr title="Unique visitors, counted once a day per placement\.[^"]*">'
                             r'Unique</abbr>', html)

    def test_the_placement_page_gives_the_ranges_unique_visitors_in_words(self, client, team_users, placement, scans):
        # The chart's line was the only place: a figure to read, and its explanation outside the collapsed table.
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/?range=lifetime"))
        totals = re.search(r"<p class=\"range-totals\" data-range-totals>(.*?)</p>", html, re.S).group(1)
        assert re.match(r"<strong>(\d+)</strong> scans · <strong>(\d+)</strong> <span title=", totals)
        scans_shown, visitors_shown = map(int, re.findall(r"<strong>(\d+)</strong>", totals))
        page = client.get(f"/campaigns/placements/{placement.pk}/?range=lifetime").context
        assert (scans_shown, visitors_shown) == (page["range_scans"], page["range_visitors"]) and scans_shown > 0
        note = html.index("data-unique-note")
        assert html.rindex("</details>", 0, note) > html.rindex("<details", 0, note)  # not inside the table's
        assert "data-range-totals" not in body(client.get(f"/campaigns/{placement.campaign_id}/"))  # tiles there

    def test_it_shows_a_browser_card_like_the_other_breakdowns(self, client, team_users, campaign, placement,
                                                               scans):
        client.force_login(team_users.viewer)
        for url in ("/campaigns/?range=7d", f"/campaigns/{campaign.pk}/?range=lifetime",
                    f"/campaigns/placements/{placement.pk}/?range=lifetime"):
            html = body(client.get(url))
            card = html[html.index("<h2>Browsers</h2>"):]
            card = card[:card.index("</section>")]
            assert "Mobile Safari" in card and "Slackbot" not in card  # people only, as the API's by_browser
            assert ("Chrome" in card) == ("lifetime" in url)  # the Windows scan was 10 days ago

    def test_it_shows_the_destination_rules_card_only_when_rules_sent_scans(self, client, team_users, campaign,
                                                                             placement):
        now = timezone.now()
        made = {"browser": "Chrome Mobile", "os": "Android", "device_class": "mobile", "referer": "",
                "accept_language": "", "country": "", "is_bot": False}
        store_events([scan_event(placement.pk, now, visitor_key=f"{n:032d}", **made) for n in range(2)])
        client.force_login(team_users.viewer)
        for url in (f"/campaigns/{campaign.pk}/", f"/campaigns/placements/{placement.pk}/"):
            assert "Destination rules" not in body(client.get(url))

        store_events([scan_event(placement.pk, now, visitor_key=f"{n:032d}", rule=rule, **made)
                      for n, rule in enumerate(["ab:0", "ab:0", "ab:0", "ab:1", "after_end"], start=10)])
        for url in (f"/campaigns/{campaign.pk}/", f"/campaigns/placements/{placement.pk}/"):
            html = body(client.get(url))
            card = html[html.index('id="destination-rules"'):]
            card = card[:card.index("</section>")]
            cells = [re.sub(r"<[^>]+>", "", row).split("|") for row in re.findall(
                r"<tr><td[^>]*>(.*?)</td></tr>", card.replace("</td><td class=\"num\">", "|"))]
            assert cells == [["After the end date", "1", "1", "–"], ["A/B variant A", "3", "3", "75%"],
                             ["A/B variant B", "1", "1", "25%"], ["Main destination (no rule)", "2", "2", "–"]]
        # A range without rule scans has no card.
        assert "Destination rules" not in body(client.get(
            f"/campaigns/{campaign.pk}/?from={(now - timedelta(days=9)).date()}&to={(now - timedelta(days=8)).date()}"))

    def test_it_loads_chart_js_from_our_own_static_files(self, client, team_users, campaign, placement):
        client.force_login(team_users.owner)
        for url in [f"/campaigns/{campaign.pk}/", f"/campaigns/placements/{placement.pk}/"]:
            html = body(client.get(url))
            assert f'src="{CHART_JS}"' in html
            assert "cdn" not in html.lower()
        found = finders.find("vendor/chart.js/chart.umd.min.js")
        assert found and "Chart.js v4" in open(found, encoding="utf-8").read(200)
        assert finders.find("vendor/chart.js/LICENSE.md")


@pytest.mark.django_db
class TestPlacementPage:
    def test_it_shows_the_absolute_short_link_and_the_generate_link(self, client, team_users, placement):
        client.force_login(team_users.teammate)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert f'value="http://testserver/r/{placement.slug}"' in html
        assert f'href="/generate/?placement={placement.pk}"' in html
        assert "No artwork chosen yet" in html
        # The print files come after the figures: the actions link down to them.
        assert 'href="#print"' in html and 'id="print"' in html

    def test_its_short_link_card_says_the_rules_come_before_the_address_it_opens(self, client, team_users, placement):
        # With the campaign's A/B split every scan went to /a or /b, while the card said the code "Opens" the
        # placement's own override (a walk-through's finding)
        campaign = placement.campaign
        campaign.rules = {"split": [{"url": "https://example.com/a", "weight": 1},
                                    {"url": "https://example.com/b", "weight": 1}]}
        campaign.save()
        placement.destination_override = "https://example.com/flyer"
        placement.save()
        client.force_login(team_users.teammate)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        card = re.search(r"<p class=\"muted small\" data-rules-first>(.*?)</p>", html, re.S).group(1)
        assert card.startswith("Destination rules come first: ") and "https://example.com/a" in card
        assert card.index("Where none applies, it opens") < card.index("https://example.com/flyer")
        assert ">Opens <" not in html

    def test_a_placement_never_scanned_shows_one_line_not_screens_of_empty_charts(self, client, team_users,
                                                                                  placement):
        # 1,750 px of empty charts on a desktop (four phone screens) came before the link and print files
        client.force_login(team_users.teammate)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert "data-no-scans-yet" in html and "No scans yet." in html
        assert "Hour of the day" not in html and 'data-chart="scan-chart"' not in html
        from campaigns.drainer import store_events
        from campaigns.scan_buffer import scan_event

        store_events([scan_event(placement.pk, timezone.now(), visitor_key="0" * 32)])  # as the drainer stores it
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert "data-no-scans-yet" not in html and "Hour of the day" in html and 'data-chart="scan-chart"' in html

    def test_it_shows_the_chosen_artwork_with_print_downloads(self, client, team_users, placement):
        placement.artwork = candidate(team_users.owner, team_users.team, f"http://testserver/r/{placement.slug}")
        placement.save()
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert "/media/generations/1/c0.png" in html
        assert f"/campaigns/placements/{placement.pk}/print?width=20cm&amp;format=pdf" in html
        assert "20 cm (7.87 in)" in html
        assert "not this placement's short link" not in html  # its own link: no notice

    def test_it_numbers_the_artwork_by_rank_as_the_job_page_does(self, client, team_users, placement):
        art = candidate(team_users.owner, team_users.team, own_link(placement))
        Candidate.objects.filter(pk=art.pk).update(index=3, rank=1)  # drawn fourth, ranked first
        placement.artwork = art
        placement.save()
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert f'<a href="/generate/jobs/{art.job_id}/">Generation #{art.job_id}</a>, candidate #1 ·' in html
        assert "candidate 3" not in html
        assert f'href="/campaigns/placements/{placement.pk}/edit/">Change artwork</a>' in html
        client.force_login(team_users.viewer)  # a viewer sees where the art came from, not the change
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert f'">Generation #{art.job_id}</a>' in html and "Change artwork" not in html
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/edit/"))
        assert f'alt="Generation #{art.job_id}, candidate #1"' in html and "candidate 3" not in html

    def test_it_shows_sizes_to_a_tenth_of_a_centimetre(self, client, team_users, placement):
        Placement.objects.filter(pk=placement.pk).update(printed_width_cm=12.345)
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert "Download PNG · 2048 px, 17.3 cm (6.83 in) at 300 dpi" in html and "17.3397" not in html
        assert "PDF · 12.3 cm (4.86 in)" in html and "12.345 cm" not in html

    def test_it_warns_when_the_artwork_carries_another_link(self, client, team_users, placement):
        placement.artwork = candidate(team_users.owner, team_users.team, "https://example.com/elsewhere")
        placement.save()
        client.force_login(team_users.owner)
        assert "not this placement's short link" in body(client.get(f"/campaigns/placements/{placement.pk}/"))


@pytest.mark.django_db
class TestCodeDownloads:
    def test_it_draws_one_svg_square_per_dark_module_of_the_short_link(self, client, team_users, placement):
        client.force_login(team_users.viewer)
        response = client.get(f"/campaigns/placements/{placement.pk}/code.svg?download=1")
        svg = body(response)
        short = f"http://testserver/r/{placement.slug}"
        matrix = qr.encode(short).matrix
        assert response["Content-Type"] == "image/svg+xml" and "attachment" in response["Content-Disposition"]
        assert svg.count("<rect ") == int(matrix.sum())
        side = matrix.shape[0] + 8
        assert f'viewBox="0 0 {side} {side}"' in svg and short in svg
        # The squares sit exactly on the dark modules (offset by the 4-module quiet zone).
        squares = {(int(y) - 4, int(x) - 4) for x, y in re.findall(r'<rect x="(\d+)" y="(\d+)"', svg)}
        assert squares == {(int(r), int(c)) for r, c in zip(*matrix.nonzero(), strict=True)}

    def test_it_serves_a_png_that_decodes_to_the_short_link(self, client, team_users, placement):
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/code.png")
        image = Image.open(io.BytesIO(response.content))
        assert response["Content-Type"] == "image/png" and image.size == (2048, 2048)
        assert decoders.read_zxing(images.to_gray(image)) == [f"http://testserver/r/{placement.slug}"]


@pytest.mark.django_db
class TestCsvExport:
    def test_a_long_name_gives_a_file_name_of_a_sensible_length(self, client, team_users, campaign):
        # 200-character names made file names of ~220 characters.
        Campaign.objects.filter(pk=campaign.pk).update(name="Spring " * 28)
        client.force_login(team_users.viewer)
        for url in (f"/campaigns/{campaign.pk}/scans.csv", f"/campaigns/{campaign.pk}/placements.csv"):
            name = re.search(r'filename="([^"]+)"', client.get(url)["Content-Disposition"]).group(1)
            assert name.startswith("spring-spring-") and len(name) <= 100 and "--" not in name, name

    def test_it_streams_every_scan_with_its_placement(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.viewer)
        response = client.get(f"/campaigns/{campaign.pk}/scans.csv")
        assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
        assert re.search(r'filename="spring-sale-scans-\d{4}-\d\d-\d\d-to-\d{4}-\d\d-\d\d.csv"',
                         response["Content-Disposition"])
        rows = list(csv.DictReader(io.StringIO(body(response))))
        assert list(rows[0]) == ["time", "placement", "slug", "device_class", "os", "browser", "country", "language",
                                 "visitor", "is_bot", "referer", "rule", "is_repeat", "local_time"]
        assert len(rows) == 3  # bots too, flagged, so the export is complete
        assert rows[0]["os"] == "Windows"  # oldest first
        phone = next(row for row in rows if row["os"] == "iOS")
        assert phone == {"time": phone["time"], "placement": "Station Poster", "slug": placement.slug,
                         "device_class": "mobile", "os": "iOS", "browser": "Mobile Safari", "country": "DE",
                         "language": "de-DE", "visitor": "", "is_bot": "false", "referer": "https://t.co/x",
                         "rule": "ios", "is_repeat": "false", "local_time": phone["local_time"]}
        assert [row["is_bot"] for row in rows].count("true") == 1

    def test_it_never_exports_client_addresses_or_their_old_hashes(self, client, team_users, campaign, placement):
        client.force_login(team_users.owner)
        client.get(f"/r/{placement.slug}", REMOTE_ADDR="198.51.100.23", HTTP_ACCEPT_LANGUAGE="fr-FR")
        drain_once()
        ScanEvent.objects.update(client_hash="c0ffee0123456789")
        event = ScanEvent.objects.get()
        for url in [f"/campaigns/{campaign.pk}/scans.csv", f"/campaigns/placements/{placement.pk}/scans.csv"]:
            text = body(client.get(url))
            assert "198.51.100.23" not in text and "c0ffee0123456789" not in text
            # The day's visitor key and the language leave: they follow nobody from one day to the next.
            assert event.visitor_key in text and "fr-FR" in text
            assert len(text.strip().splitlines()) == 2

    def test_it_exports_the_asked_range_in_the_teams_days(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.owner)
        week = list(csv.DictReader(io.StringIO(body(client.get(f"/campaigns/{campaign.pk}/scans.csv?range=7d")))))
        assert {row["os"] for row in week} == {"iOS", "Other"}  # the Windows scan was 10 days ago
        today = timezone.now().date()
        custom = client.get(f"/campaigns/placements/{placement.pk}/scans.csv?from={today - timedelta(days=12)}"
                            f"&to={today - timedelta(days=8)}")
        assert [row["os"] for row in csv.DictReader(io.StringIO(body(custom)))] == ["Windows"]

    def test_it_answers_a_bad_range_with_one_plain_message(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/{campaign.pk}/scans.csv?from=2026-13-01&to=2026-01-01")
        assert response.status_code == 400 and response["Content-Type"].startswith("text/plain")
        assert body(response) == "The start date, from=“2026-13-01”, is not a date like 2026-03-01."

    def test_it_defuses_spreadsheet_formulas(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.owner)
        rows = list(csv.DictReader(io.StringIO(body(client.get(f"/campaigns/{campaign.pk}/scans.csv")))))
        assert rows[0]["referer"] == "'=HYPERLINK(\"https://evil.example\")"

    def test_it_marks_repeats_and_gives_the_time_in_the_teams_zone_last(self, client, team_users, campaign,
                                                                         placement):
        team_users.team.time_zone = "America/New_York"
        team_users.team.save()
        late = datetime(2026, 6, 2, 3, 59, 59, tzinfo=UTC)  # still 1 June in New York, the page's day
        ScanEvent.objects.create(placement=placement, time=late, is_repeat=True, os="iOS")
        ScanEvent.objects.create(placement=placement, time=late - timedelta(hours=1), os="Android")
        client.force_login(team_users.owner)
        for url in (f"/campaigns/{campaign.pk}/scans.csv", f"/campaigns/placements/{placement.pk}/scans.csv"):
            rows = list(csv.reader(io.StringIO(body(client.get(f"{url}?from=2026-06-01&to=2026-06-01")))))
            assert rows[0][-2:] == ["is_repeat", "local_time"] and len(rows) == 3
            assert [row[-2:] for row in rows[1:]] == [["false", "2026-06-01T22:59:59-04:00"],
                                                      ["true", "2026-06-01T23:59:59-04:00"]]
            assert rows[2][0] == "2026-06-02T03:59:59+00:00"  # the UTC column stays first, as it was

    def test_it_says_when_the_range_reaches_before_the_raw_scans_kept(self, client, team_users, campaign, placement,
                                                                      scans):
        team_users.team.scan_retention_days = 7
        team_users.team.save()
        ScanEvent.objects.filter(time__lt=timezone.now() - timedelta(days=7)).delete()  # what retention does
        client.force_login(team_users.owner)
        kept = f"Raw scans before {timezone.now().date():%Y-%m-%d} are no longer kept (this team keeps them 7 days)"
        for url in (f"/campaigns/{campaign.pk}/", f"/campaigns/placements/{placement.pk}/"):
            month, week = body(client.get(f"{url}?range=30d")), body(client.get(f"{url}?range=7d"))
            assert "data-export-note" in month and kept in month  # the page still counts the deleted day
            assert "data-export-note" not in week
            export = client.get(f"{url}scans.csv?range=30d")
            assert export["X-Qart-Export-Note"].startswith(kept)
            assert not body(export).startswith("#")  # no comment line: CSV readers would take it for a row
            assert "X-Qart-Export-Note" not in client.get(f"{url}scans.csv?range=7d")

    def test_it_exports_only_the_placements_own_scans(self, client, team_users, campaign, placement, scans):
        other = Placement.objects.create(campaign=campaign, name="Flyer")
        ScanEvent.objects.create(placement=other, os="Android")
        client.force_login(team_users.owner)
        rows = list(csv.DictReader(io.StringIO(body(client.get(f"/campaigns/placements/{placement.pk}/scans.csv")))))
        assert {row["slug"] for row in rows} == {placement.slug} and len(rows) == 3
        campaign_rows = body(client.get(f"/campaigns/{campaign.pk}/scans.csv")).strip().splitlines()
        assert len(campaign_rows) == 5


def tiles(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-tile="(\w+)">(\d+)<', html))


@pytest.mark.django_db
class TestDateRanges:
    def test_it_applies_the_range_to_tiles_table_and_links(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.viewer)
        week = body(client.get(f"/campaigns/{campaign.pk}/?range=7d"))
        lifetime = body(client.get(f"/campaigns/{campaign.pk}/?range=lifetime"))
        assert tiles(week) == {"scans": "1", "unique": "1"} and tiles(lifetime) == {"scans": "2", "unique": "2"}
        assert "Last 7 days" in week and 'aria-current="true">7 days<' in week
        assert f"/campaigns/{campaign.pk}/scans.csv?range=7d" in week
        # A placement's export follows its page's range too (the whole lifetime it was, whatever the page showed).
        assert f"/campaigns/placements/{placement.pk}/scans.csv?range=7d" in body(
            client.get(f"/campaigns/placements/{placement.pk}/?range=7d"))
        row = re.search(r'<tr data-placement="Station Poster">.*?</tr>', lifetime, re.S).group(0)
        assert re.search(r'data-col="scans">2<', row) and re.search(r'data-col="unique">2<', row)

    def test_it_compares_placements_by_scans_per_100_printed(self, client, team_users, campaign, placement, scans):
        placement.printed_quantity = 400
        placement.save()
        Placement.objects.create(campaign=campaign, name="Flyer")
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/{campaign.pk}/?range=30d"))
        poster = re.search(r'<tr data-placement="Station Poster">.*?</tr>', html, re.S).group(0)
        flyer = re.search(r'<tr data-placement="Flyer">.*?</tr>', html, re.S).group(0)
        assert 'data-col="per100">0.5<span class="muted small"> · 400 printed' in poster
        assert 'data-col="per100"><span class="muted" title="Set the printed quantity' in flyer
        assert html.index('data-placement="Station Poster"') < html.index('data-placement="Flyer"')  # busiest first
        assert "<polyline points=" in poster

    def test_it_takes_a_custom_range(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.owner)
        today = timezone.now().date()
        html = body(client.get(f"/campaigns/{campaign.pk}/?from={today - timedelta(days=12)}"
                               f"&to={today - timedelta(days=8)}"))
        assert tiles(html) == {"scans": "1", "unique": "1"}
        chart = json.loads(re.search(r'<script id="scan-chart" type="application/json">(.*?)</script>', html,
                                     re.S).group(1))
        assert len(chart["labels"]) == 5 and not chart["partial_last"]

    @pytest.mark.parametrize(("query", "message"), [
        ("range=forever", "range must be one of 7d, 30d, 90d, lifetime, custom; got “forever”."),
        ("range=custom&from=2026-03-01", "A custom range needs a start date (from) and an end date (to)"),
        ("from=2026-03-09&to=2026-03-01", "The start date, from=2026-03-09, is after the end date, to=2026-03-01."),
        ("from=2000-01-01&to=2026-03-01", "A range covers at most 3660 days (ten years)."),
    ])
    def test_it_answers_a_bad_range_with_one_message_and_the_default_figures(self, client, team_users, campaign,
                                                                            placement, scans, query, message):
        client.force_login(team_users.owner)
        for url in (f"/campaigns/{campaign.pk}/", "/campaigns/", f"/campaigns/placements/{placement.pk}/"):
            response = client.get(f"{url}?{query}")
            html = body(response)
            assert response.status_code == 400, url
            assert message in html and "Showing the last 30 days instead." in html and "Traceback" not in html

    def test_it_counts_days_in_the_teams_time_zone(self, client, team_users, campaign, placement):
        team_users.team.time_zone = "Pacific/Kiritimati"  # UTC+14: its today is never UTC's yesterday
        team_users.team.save()
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/{campaign.pk}/?range=7d"))
        local_today = timezone.now().astimezone(team_users.team.zone).date()
        chart = json.loads(re.search(r'<script id="scan-chart" type="application/json">(.*?)</script>', html,
                                     re.S).group(1))
        assert chart["labels"][-1] == f"{local_today.day} {local_today:%b}"
        assert "days in Pacific/Kiritimati" in html

    def test_the_list_shows_the_teams_overview(self, client, team_users, campaign, placement, scans):
        client.force_login(team_users.owner)
        html = body(client.get("/campaigns/?range=lifetime"))
        assert "All of Acme's active campaigns" in html and tiles(html) == {"scans": "2", "unique": "2"}
        assert f"/campaigns/{campaign.pk}/?range=lifetime" in html


def own_link(placement: Placement) -> str:
    return f"http://testserver/r/{placement.slug}"


@pytest.mark.django_db
class TestArtworkPicker:
    def test_it_shows_the_teams_thumbnails_passing_first_then_newest(self, client, team_users, placement):
        from tests.campaigns.conftest import make_art

        old_pass = make_art(team_users.team, team_users.owner, own_link(placement))
        new_fail = make_art(team_users.team, team_users.owner, own_link(placement), verdict="fail", probability=0.0)
        new_pass = make_art(team_users.team, team_users.owner, own_link(placement))
        theirs = make_art(team_users.other_team, team_users.outsider, own_link(placement))
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/edit/"))
        order = [int(pk) for pk in re.findall(r'data-candidate="(\d+)"', html)]
        assert order == [new_pass.pk, old_pass.pk, new_fail.pk] and theirs.pk not in order
        assert f'<img src="{new_pass.image.url}"' in html and "Doesn't scan · 0 %" in html
        assert "<select" not in html.split('class="picker"')[1].split("</fieldset>")[0]

    def test_a_new_placement_has_no_artwork_to_pick_yet(self, client, team_users, campaign):
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/{campaign.pk}/placements/new/"))
        assert 'name="artwork"' not in html and 'name="scan_distance_m"' in html


@pytest.mark.django_db
class TestArtworkRules:
    """The placement form: a failing candidate needs "print anyway" and a reason, one for another link a restamp."""

    def test_it_refuses_a_failing_candidate_then_records_print_anyway(self, client, team_users, placement):
        from tests.campaigns.conftest import make_art

        failing = make_art(team_users.team, team_users.owner, own_link(placement), verdict="fail", probability=0.0)
        client.force_login(team_users.teammate)
        url = f"/campaigns/placements/{placement.pk}/edit/"
        refused = client.post(url, PLACEMENT_DATA | {"artwork": failing.pk})
        assert refused.status_code == 400 and "does not pass the scan check" in body(refused)
        placement.refresh_from_db()
        assert placement.artwork is None
        assert client.post(url, PLACEMENT_DATA | {"artwork": failing.pk, "print_anyway": "on"}).status_code == 400
        saved = client.post(url, PLACEMENT_DATA | {"artwork": failing.pk, "print_anyway": "on",
                                                    "print_anyway_reason": "a proof for the printer"})
        assert saved.status_code == 302
        placement.refresh_from_db()
        assert placement.artwork == failing and placement.print_anyway_by == team_users.teammate
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert "Will not scan — do not print" in html and "a proof for the printer" in html
        assert "Print downloads are off" in html and "/print?width=" not in html
        # The news on top is a warning, not "saved" in green
        assert re.search(r'class="warning"[^>]*>Placement saved\. Its artwork will not scan', html)
        assert client.get(f"/campaigns/placements/{placement.pk}/print?width=20cm").status_code == 409

    def test_it_refuses_a_candidate_for_another_link_unless_restamped(self, client, team_users, campaign, placement):
        from tests.campaigns.conftest import make_art

        flyer = Placement.objects.create(campaign=campaign, name="Flyer")
        theirs = make_art(team_users.team, team_users.owner, own_link(flyer))
        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/edit/"
        refused = client.post(url, PLACEMENT_DATA | {"artwork": theirs.pk})
        assert refused.status_code == 400 and f"/r/{flyer.slug}" in body(refused) and "Restamp" in body(refused)
        placement.refresh_from_db()
        assert placement.artwork is None
        assert client.post(url, PLACEMENT_DATA | {"artwork": theirs.pk, "restamp": "on"}).status_code == 302
        placement.refresh_from_db()
        assert placement.artwork != theirs and placement.artwork.job.content == own_link(placement)
        assert placement.artwork.verdict == "pass" and placement.print_anyway_by is None

    def test_it_restamps_before_it_locks_the_placement_and_once_for_a_double_submit(self, client, team_users,
                                                                                      campaign, placement,
                                                                                      verifications):
        # Restamping and verifying take a second: under the placement's lock they held the scan drainer (and, on
        # SQLite, every writer) meanwhile, and each submit made a copy.
        from tests.campaigns.conftest import make_art

        theirs = make_art(team_users.team, team_users.owner, own_link(Placement.objects.create(campaign=campaign,
                                                                                                name="Flyer")))
        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/edit/"
        for _ in range(2):
            assert client.post(url, PLACEMENT_DATA | {"artwork": theirs.pk, "restamp": "on"}).status_code == 302
        placement.refresh_from_db()
        assert placement.artwork.scan_details["restamped_from"] == theirs.pk
        assert placement.artwork.job.content == own_link(placement)
        assert verifications == [False] and GenerationJob.objects.filter(placement=placement).count() == 1

    def test_it_judges_again_before_it_locks_the_placement_and_refuses_as_before(self, client, team_users,
                                                                                 placement, verifications):
        from tests.campaigns.conftest import make_art, unreadable_to_the_active_model

        stale = unreadable_to_the_active_model(make_art(team_users.team, team_users.owner, own_link(placement)))
        client.force_login(team_users.owner)
        refused = client.post(f"/campaigns/placements/{placement.pk}/edit/", PLACEMENT_DATA | {"artwork": stale.pk})
        assert refused.status_code == 400 and "does not pass the scan check" in body(refused)
        assert "print anyway" in body(refused) and verifications == [False]
        stale.refresh_from_db()
        placement.refresh_from_db()
        assert stale.verdict == "fail" and placement.artwork is None

    def test_unchanged_artwork_is_not_judged_again(self, client, team_users, placement):
        from tests.campaigns.conftest import make_art

        legacy = make_art(team_users.team, team_users.owner, "https://example.com/elsewhere")
        Placement.objects.filter(pk=placement.pk).update(artwork=legacy)  # chosen before these rules
        client.force_login(team_users.owner)
        response = client.post(f"/campaigns/placements/{placement.pk}/edit/",
                               PLACEMENT_DATA | {"artwork": legacy.pk, "name": "Renamed"})
        assert response.status_code == 302 and Placement.objects.get().name == "Renamed"


@pytest.mark.django_db
class TestPrintDownloads:
    def test_it_sends_a_verified_pdf_of_the_plain_code_at_its_width(self, client, team_users, placement):
        import pypdfium2 as pdfium

        client.force_login(team_users.viewer)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=20cm&bleed=3mm&crop_marks=1")
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        assert 'filename="qart-' in response["Content-Disposition"]
        trim = pdfium.PdfDocument(response.content)[0].get_trimbox()
        assert (trim[2] - trim[0]) / 72 * 25.4 == pytest.approx(200, abs=0.01)

    def test_a_file_with_cautions_comes_after_the_page_says_them(self, client, team_users, placement):
        # The API sends the preflight's warnings in a header; a person at the print form must read them before the
        # file: a 5 mm code on a poster is too small to scan from anywhere.
        client.force_login(team_users.viewer)
        url = f"/campaigns/placements/{placement.pk}/print?width=5mm&format=pdf"
        page = client.get(url)
        html = body(page)
        assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
        assert "Before you print this file" in html and "does not scan" in html and "print it larger" in html
        assert 'value="5mm"' in html  # the options as typed
        confirm = f'href="/campaigns/placements/{placement.pk}/print?width=5mm&amp;format=pdf&amp;confirm=1"'
        assert confirm in html
        response = client.get(url + "&confirm=1")
        assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
        fine = client.get(f"/campaigns/placements/{placement.pk}/print?width=20cm&format=pdf")
        assert fine["Content-Type"] == "application/pdf"  # nothing to say: the file at once

    def test_a_code_of_an_archived_campaign_is_printed_after_saying_where_it_leads(self, client, team_users,
                                                                                 placement):
        from rest_framework.test import APIClient

        placement.campaign.fallback_url = "https://example.com/ended"
        placement.campaign.set_archived(True)
        placement.campaign.save()
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/print?width=20cm&format=pdf"))
        assert "fallback address https://example.com/ended now, because its campaign is archived" in html
        api = APIClient()
        api.force_authenticate(team_users.viewer)
        answer = api.get(f"/api/placements/{placement.pk}/print/?width=20cm&format=svg")
        assert answer.status_code == 200
        assert any("its campaign is archived" in w for w in json.loads(answer["X-Qart-Print-Report"])["warnings"])
        # Said as it is at each request, never kept with a made file (large ones are kept a day).
        placement.campaign.set_archived(False)
        placement.campaign.save()
        again = api.get(f"/api/placements/{placement.pk}/print/?width=20cm&format=svg")
        assert not any("archived" in w for w in json.loads(again["X-Qart-Print-Report"])["warnings"])

    def test_one_person_has_one_print_file_built_at_a_time(self, client, team_users, placement):
        # A print file is built in the request: a second of the same person's at the same time is refused (429);
        # someone else's is not, and the person's next one after it is.
        from rest_framework.test import APIClient

        from campaigns import printfiles

        redis = printfiles.redis_connection()
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=svg"
        busy = f"{settings.QART['REDIS_PREFIX']}print-building:{team_users.viewer.pk}"
        redis.set(busy, "made here", ex=60)  # as while the viewer's first request builds
        client.force_login(team_users.viewer)
        page = client.get(url)
        assert page.status_code == 429 and printfiles.BUSY in page.content.decode()
        api = APIClient()
        api.force_authenticate(team_users.viewer)
        answer = api.get(f"/api/placements/{placement.pk}/print/?width=5cm&format=svg")
        assert answer.status_code == 429 and answer.json() == {"detail": printfiles.BUSY}
        assert answer["Retry-After"] == "5"
        client.force_login(team_users.owner)
        assert client.get(url).status_code == 200
        redis.delete(busy)
        client.force_login(team_users.viewer)
        assert client.get(url).status_code == 200 and redis.get(busy) is None  # the mark goes with the build

    def test_a_large_print_file_is_made_by_a_worker_then_downloaded_from_storage(self, client, team_users,
                                                                                 media_storage, placement,
                                                                                 print_queue, monkeypatch):
        from django.core.files.storage import default_storage
        from rest_framework.test import APIClient

        from campaigns import print_builds, printfiles
        from tests.campaigns.conftest import make_art

        placement.artwork = make_art(team_users.team, team_users.owner, own_link(placement))
        placement.save()
        # confirm=1: a 5 cm poster does not scan from a poster's distance (the cautions page; tested below)
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1"
        with monkeypatch.context() as small:
            small.setattr(print_builds, "INLINE_PIXELS", 10**8)
            inline = client_file(client, team_users.viewer, url)  # small: made in the request

        asked = client.head(url)
        assert asked.status_code == 202 and print_queue.count == 0  # a HEAD asks, it does not order
        assert asked.templates == []  # the waiting page's script asks this way every few seconds: no page drawn
        making = client.get(url)
        html = body(making)
        assert making.status_code == 202 and print_builds.MAKING in html
        assert f'<noscript><meta http-equiv="refresh" content="{print_builds.RETRY_SECONDS}"></noscript>' in html
        assert f'data-print-url="{url.replace("&", "&amp;")}"' in html  # asked again with HEAD by the script
        assert client.get(url).status_code == 202 and print_queue.count == 1  # asked again: queued once
        other = client.get(f"/campaigns/placements/{placement.pk}/print?width=6cm&format=png&dpi=100")
        assert other.status_code == 429 and printfiles.BUSY in body(other)  # one of the viewer's at a time

        (job,) = print_queue.jobs
        assert job.func_name == "campaigns.print_builds.build"
        assert print_builds.build(*job.args).startswith("made print-files/")
        assert print_queue.connection.get(printfiles.building_mark(team_users.viewer.pk)) is None
        made = client.get(url)
        assert made.status_code == 200 and made["Content-Type"] == "image/png"
        assert b"".join(made.streaming_content) == inline and 'filename="qart-' in made["Content-Disposition"]
        head = client.head(url)
        assert head.status_code == 200 and int(head["Content-Length"]) == len(inline)
        api = APIClient()
        api.force_authenticate(team_users.viewer)
        answer = api.get(f"/api/placements/{placement.pk}/print/?width=5cm&format=png&dpi=100")
        assert answer.status_code == 200 and b"".join(answer.streaming_content) == inline
        assert json.loads(answer["X-Qart-Print-Report"])["width_mm"] == 50.0

        (stored,) = default_storage.listdir(print_builds.FOLDER)[1]
        default_storage.delete(f"{print_builds.FOLDER}/{stored}")  # gone (the daily upkeep): made again
        assert client.get(url).status_code == 202 and print_queue.count == 1

    def test_a_made_file_is_not_served_once_its_artwork_fails_the_scan_check(self, client, team_users, placement,
                                                                             print_queue):
        from campaigns import print_builds
        from tests.campaigns.conftest import make_art

        placement.artwork = make_art(team_users.team, team_users.owner, own_link(placement))
        placement.save()
        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100"
        assert client.get(url).status_code == 202
        print_builds.build(*print_queue.jobs[0].args)
        assert client.get(url).status_code == 200
        type(placement.artwork).objects.filter(pk=placement.artwork.pk).update(verdict="fail", scan_probability=0.0)
        refused = client.get(url)
        assert refused.status_code == 409 and "Will not scan — do not print" in body(refused)

    @pytest.mark.parametrize(("query", "words"), [("width=" + "9" * 400 + "mm&format=png", "between"),
                                                  ("width=50cm&bleed=" + "9" * 400 + "mm&format=png", "bleed"),
                                                  ("width=99m&format=png", "between"),
                                                  ("width=50cm&dpi=99999&format=tiff", "resolution"),
                                                  ("width=50cm&format=bmp", "formats")])
    def test_options_that_cannot_be_met_are_refused_at_once_not_queued(self, client, team_users, placement,
                                                                       print_queue, query, words):
        client.force_login(team_users.owner)
        for answer in (client.get(f"/campaigns/placements/{placement.pk}/print?{query}"),
                       client.get(f"/api/placements/{placement.pk}/print/?{query}")):
            assert answer.status_code == 400 and words in answer.content.decode()
        assert print_queue.count == 0

    def test_the_api_says_when_to_ask_again_and_a_workers_refusal_is_the_answer(self, team_users, placement,
                                                                                 print_queue, monkeypatch):
        from rest_framework.test import APIClient

        from campaigns import print_builds, printfiles

        api = APIClient()
        api.force_authenticate(team_users.owner)
        url = f"/api/placements/{placement.pk}/print/?width=5cm&format=tiff&dpi=100"
        answer = api.get(url)
        assert answer.status_code == 202 and answer["Retry-After"] == str(print_builds.RETRY_SECONDS)
        assert answer.json() == {"detail": print_builds.MAKING, "retry_after": print_builds.RETRY_SECONDS}

        def does_not_scan(placement, short_url, spec):
            raise printfiles.Refused("The TIFF as written does not scan when read back.", 422)

        monkeypatch.setattr(printfiles, "made_and_checked", does_not_scan)
        (job,) = print_queue.jobs
        assert print_builds.build(*job.args).startswith("refused: ")
        answer = api.get(url)
        assert answer.status_code == 422 and answer.json() == {"detail": "The TIFF as written does not scan when "
                                                                         "read back."}

    def test_a_build_that_failed_or_was_lost_says_so_and_is_tried_again(self, client, team_users, placement,
                                                                         print_queue, monkeypatch):
        from rq.job import Job

        from campaigns import print_builds, printfiles

        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100"
        assert client.get(url).status_code == 202
        (job,) = print_queue.jobs
        Job.fetch(job.id, connection=print_queue.connection).delete()  # its worker was killed, the job lost
        lost = client.get(url)
        assert lost.status_code == 503 and print_builds.COULD_NOT in body(lost)
        assert print_queue.connection.get(printfiles.building_mark(team_users.owner.pk)) is not None

        print_queue.connection.delete(*print_queue.connection.keys(f"{settings.QART['REDIS_PREFIX']}print-*"))
        assert client.get(url).status_code == 202 and print_queue.count == 1  # half a minute later: queued again

        def storage_away(placement, short_url, spec):
            raise printfiles.Refused(print_builds.STORAGE_AWAY, 503)

        monkeypatch.setattr(printfiles, "made_and_checked", storage_away)
        print_builds.build(*print_queue.jobs[0].args)
        assert client.get(url).status_code == 503
        ttl = print_queue.connection.ttl(f"{settings.QART['REDIS_PREFIX']}print-file:{print_queue.jobs[0].args[0]}")
        assert 0 < ttl <= print_builds.TROUBLE_SECONDS  # a passing trouble is not the answer for long

    def test_the_storage_away_when_a_made_file_is_asked_for_is_503_with_the_reason(self, client, team_users,
                                                                                    placement, print_queue,
                                                                                    monkeypatch):
        from django.core.files.storage import default_storage

        from campaigns import print_builds
        from qartsite.storage import MediaUnavailable

        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100"
        client.get(url)
        print_builds.build(*print_queue.jobs[0].args)

        def away(*args, **kwargs):
            raise MediaUnavailable("The media storage could not look up it")

        monkeypatch.setattr(type(default_storage._wrapped), "exists", away)
        answer = client.get(url)
        assert answer.status_code == 503 and print_builds.STORAGE_AWAY in body(answer)

    def test_without_a_worker_on_the_queue_a_large_file_is_made_in_the_request(self, client, team_users, placement,
                                                                                print_queue, monkeypatch):
        from campaigns import print_builds

        monkeypatch.setattr(print_builds, "workers_on", lambda queue: 0)
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1")
        assert response.status_code == 200 and response["Content-Type"] == "image/png" and print_queue.count == 0

    def test_it_sends_artwork_as_tiff_with_its_dpi(self, client, team_users, media_storage, placement):
        from tests.campaigns.conftest import make_art

        placement.artwork = make_art(team_users.team, team_users.owner, own_link(placement))
        placement.save()
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=4cm&format=tiff&dpi=200&cmyk=1"
                              "&confirm=1")
        image = Image.open(io.BytesIO(response.content))
        assert response.status_code == 200 and image.mode == "CMYK" and round(image.info["dpi"][0]) == 200

    @pytest.mark.parametrize(("query", "words"), [("width=20", "a unit"), ("width=20cm&format=gif", "formats"),
                                                  ("width=20cm&dpi=9999", "resolution"), ("", "how wide"),
                                                  ("width=abc", "a unit"), ("width=0cm", "between"),
                                                  ("width=9999cm", "between")])
    def test_it_answers_bad_options_with_the_page_and_one_message(self, client, team_users, placement, query, words):
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?{query}")
        html = body(response)
        assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
        assert '<header class="topbar">' in html and f"<h1>{placement.name} " in html
        summary = re.search(r'id="print-error" role="alert"[^>]*>\s*<p>No print file yet:</p>\s*<ul>\s*<li>(.*?)</li>',
                            html)
        assert words in summary.group(1)
        assert "Traceback" not in html

    def test_it_keeps_every_print_option_as_typed(self, client, team_users, placement):
        client.force_login(team_users.owner)
        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=abc&dpi=600&bleed=2mm"
                              f"&format=tiff&crop_marks=1&cmyk=1")
        form = re.search(r'<form method="get" action="[^"]+/print" class="form print-form">(.*?)</form>',
                         body(response), re.S).group(1)
        assert response.status_code == 400
        assert 'name="width" value="abc"' in form and 'name="dpi" value="600"' in form
        assert 'name="bleed" value="2mm"' in form and '<option value="tiff" selected>' in form
        assert 'name="crop_marks" value="1" checked' in form and 'name="cmyk" value="1" checked' in form

    def test_its_refusal_page_ranges_lead_back_to_the_page(self, client, team_users, placement):
        client.force_login(team_users.owner)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/print?width=abc"))
        page = f"/campaigns/placements/{placement.pk}/"
        assert f'href="{page}?range=7d"' in html and f'class="range-custom" action="{page}"' in html

    def test_outsiders_get_404(self, client, team_users, placement):
        client.force_login(team_users.outsider)
        assert client.get(f"/campaigns/placements/{placement.pk}/print?width=20cm").status_code == 404

    def test_it_says_the_image_storage_is_unavailable_and_the_page_still_shows(self, client, team_users, placement,
                                                                                request):
        from tests.campaigns.conftest import make_art

        placement.artwork = make_art(team_users.team, team_users.owner, own_link(placement))
        placement.printed_width_cm = 20
        placement.save()
        request.getfixturevalue("unreachable_media")  # the bucket goes away
        client.force_login(team_users.owner)

        response = client.get(f"/campaigns/placements/{placement.pk}/print?width=4cm&format=png")
        assert response.status_code == 503
        assert re.search(r'id="print-error" role="alert"[^>]*>\s*<p>No print file yet:</p>\s*<ul>\s*<li>The image '
                         r'storage is unavailable right now; try the print file again in a minute\.', body(response))
        page = client.get(f"/campaigns/placements/{placement.pk}/")
        assert page.status_code == 200 and "the image storage is unavailable" in page.content.decode()


@pytest.mark.django_db
class TestPreflightPanel:
    def test_it_shows_where_the_code_scans_at_the_printed_width(self, client, team_users, placement):
        Placement.objects.filter(pk=placement.pk).update(printed_width_cm=20, kind="poster")
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        summary = re.search(r"data-preflight-summary><strong>(.*?)</strong>", html).group(1)
        assert re.fullmatch(r"Scans from [\d.]+ m to [\d.]+ m at 20 cm wide", summary)
        assert "1.5 m" in html and "usual for a poster" in html and "20 cm (7.87 in)" in html
        assert "preview frame over a 69 degree field of view" in html

    def test_without_a_width_it_asks_for_one(self, client, team_users, placement):
        client.force_login(team_users.owner)
        assert "Set the printed width" in body(client.get(f"/campaigns/placements/{placement.pk}/"))

    def test_too_small_a_width_offers_the_smallest_that_scans_first_and_nothing_smaller(self, client, team_users,
                                                                                        placement):
        # 4 cm from a poster's 1.5 m does not scan: the filled button was 4 cm, and a 5 cm preset was offered too
        Placement.objects.filter(pk=placement.pk).update(printed_width_cm=4, kind="poster")
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        smallest = float(re.search(r"<dt>Smallest width for 1.5 m</dt><dd>([\d.]+) cm", html).group(1))
        presets = [float(cm) for cm in re.findall(r"\?width=([\d.]+)cm&amp;format=pdf", html)]
        assert presets[0] == math.ceil(smallest) and presets[1] == 4
        assert all(cm >= smallest for cm in presets[2:]) and 5 not in presets
        assert re.search(r'class="warn-text" data-preflight-summary', html) and "does not scan from there" in html

    def test_without_a_width_it_offers_no_preset_too_small_for_its_distance(self, client, team_users, placement):
        # A billboard (10 m) was offered 5, 10, 20 and 50 cm, the filled button 5 cm: each one "does not scan".
        Placement.objects.filter(pk=placement.pk).update(kind="billboard")
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        presets = [float(cm) for cm in re.findall(r"\?width=([\d.]+)cm&amp;format=pdf", html)]
        preset = client.get(f"/campaigns/placements/{placement.pk}/print?width={presets[0]:g}cm&format=pdf")
        assert presets and preset.status_code == 200 and preset["Content-Type"] == "application/pdf"
        smaller = client.get(f"/campaigns/placements/{placement.pk}/print?width={presets[0] - 1:g}cm&format=pdf")
        assert "this print does not scan" in body(smaller)  # the first preset is the smallest that scans
        assert "Set the printed width" in html and 'name="width" value="20cm"' in html
        Placement.objects.filter(pk=placement.pk).update(kind="flyer")  # 0.3 m: a few cm scan, 5 cm stays first
        flyer = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert re.findall(r"\?width=([\d.]+)cm&amp;format=pdf", flyer) == ["5", "10", "20", "50"]

    def test_it_warns_that_phones_cannot_open_a_loopback_link(self, client, team_users, placement, settings):
        client.force_login(team_users.owner)
        settings.SITE_ROOT = "http://127.0.0.1:8140"
        assert "Phones cannot open this link" in body(client.get(f"/campaigns/placements/{placement.pk}/"))
        settings.SITE_ROOT = "https://qart.example"
        assert "Phones cannot open this link" not in body(client.get(f"/campaigns/placements/{placement.pk}/"))


def client_file(client, user, url: str) -> bytes:
    """The file `user` downloads from `url`, made in the request."""
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, body(response)
    return response.content


@pytest.mark.django_db
class TestTimesInTheTeamsZone:
    """A page counts days in its team's time zone, so it shows times there too (a scan on the team's 11 March read
    "10 Mar" in UTC)."""

    def test_first_scans_and_share_expiry_read_in_the_teams_zone(self, client, team_users, campaign, placement):
        from campaigns.models import ReportShare

        Team.objects.filter(pk=team_users.team.pk).update(time_zone="Pacific/Kiritimati")  # UTC+14
        scanned = datetime(2026, 3, 10, 12, tzinfo=UTC)  # 02:00 on 11 March in Kiritimati
        ScanEvent.objects.create(placement=placement, device_class="mobile", time=scanned)
        rollups.rebuild(Placement.objects.all())
        ReportShare.objects.create(campaign=campaign, token_hash="x" * 64, label="Agency",
                                   expires=datetime(2027, 1, 3, 10, 15, tzinfo=UTC))
        client.force_login(team_users.owner)

        detail = body(client.get(f"/campaigns/{campaign.pk}/?range=custom&from=2026-03-11&to=2026-03-11"))
        shares = body(client.get(f"/campaigns/{campaign.pk}/shares/"))

        assert '<td data-label="First scan">11 Mar 2026</td>' in detail
        assert "4 Jan 2027 00:15" in shares and "3 Jan 2027 10:15" not in shares


@pytest.mark.django_db
def test_the_list_of_active_campaigns_says_when_all_are_archived_and_its_overview_follows_the_list(
        client, team_users, campaign, placement, scans):
    campaign.set_archived(True)
    client.force_login(team_users.owner)

    active = body(client.get("/campaigns/"))
    archived = body(client.get("/campaigns/?archived=1"))

    assert "No campaigns yet" not in active and "No active campaigns: 1 archived" in active
    assert "active campaigns" in active and tiles(active)["scans"] == "0"
    assert "All of Acme's archived campaigns" in archived and tiles(archived)["scans"] == "2"


@pytest.mark.django_db
def test_a_range_that_cannot_be_read_keeps_the_dates_typed_marked_invalid(client, team_users, campaign):
    client.force_login(team_users.viewer)

    response = client.get(f"/campaigns/{campaign.pk}/?range=custom&from=2026-12-04&to=2026-11-01")

    html = body(response)
    assert response.status_code == 400 and 'id="range-error"' in html
    assert 'name="from" value="2026-12-04" required aria-invalid="true"' in html
    assert 'name="to" value="2026-11-01" required aria-invalid="true"' in html
