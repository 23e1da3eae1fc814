"""A placement's pages (`campaigns.placement_views`): its forms, its page, the artwork picker and its rules, and the
preflight panel."""

from __future__ import annotations

import math
import re

import pytest
from django.utils import timezone

from campaigns import links
from campaigns.models import Placement
from generator.models import Candidate, GenerationJob
from tests.campaigns.conftest import PLACEMENT_DATA, body, own_link
from tests.generator.factories import candidate


@pytest.mark.django_db
class TestPlacementForms:
    def test_it_adds_a_placement_with_a_fresh_short_link(self, client, team_users, campaign):
        client.force_login(team_users.teammate)
        response = client.post(f"/campaigns/{campaign.pk}/placements/new/", PLACEMENT_DATA)
        placement = Placement.objects.get(name="Window sticker")
        assert response["Location"] == f"/campaigns/placements/{placement.pk}/"
        assert placement.campaign == campaign and len(placement.slug) == links.SLUG_LENGTH and placement.active

    def test_the_printed_width_is_explained_without_quiet_zone(self, client, team_users, campaign, placement):
        client.force_login(team_users.teammate)
        for url in (f"/campaigns/{campaign.pk}/placements/new/", f"/campaigns/placements/{placement.pk}/edit/"):
            html = body(client.get(url))
            assert "The code's printed side, the white border around it included." in html
            assert "quiet zone" not in html.lower()

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
        assert placement.destination_override == "" and placement.name == "Station poster"

    def test_it_refuses_a_deployment_day_out_of_range_in_the_apis_words(self, client, team_users, placement):
        client.force_login(team_users.owner)
        response = client.post(f"/campaigns/placements/{placement.pk}/edit/",
                               PLACEMENT_DATA | {"deployed_on": "0026-05-01"})
        assert response.status_code == 400
        assert response.context["form"].errors == {"deployed_on": ["Give a year from 2000 to 2200."]}
        placement.refresh_from_db()
        assert placement.deployed_on is None

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


@pytest.mark.django_db
class TestPlacementPage:
    def test_it_shows_the_absolute_short_link_and_the_generate_link(self, client, team_users, placement):
        client.force_login(team_users.teammate)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        # As its codes carry it: in capitals, QR's alphanumeric mode (`links.code_link`)
        assert f'value="http://TESTSERVER/R/{placement.slug}"' in html
        assert f'href="/generate/?placement={placement.pk}"' in html
        assert "No artwork chosen yet" in html
        # The print files come after the figures: the actions link down to them.
        assert 'href="#print"' in html and 'id="print"' in html

    def test_its_details_name_the_short_link_in_words_a_marketer_uses(self, client, team_users, placement):
        # The details said "Link: active · slug AbC123": "slug" is a developer's word, and "active" not the word
        # of the page's own "Switch off" button.
        client.force_login(team_users.teammate)
        placement.active = False
        placement.save(update_fields=["active"])
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        details = html[html.index("<h2>Details</h2>"):]
        assert "slug" not in details
        assert f"<dt>Short link</dt><dd>switched off · ends in <code>/r/{placement.slug}</code></dd>" in details

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
        assert "chart.umd.min.js" not in html  # nothing to draw: Chart.js is not loaded either
        from campaigns.drainer import store_events
        from campaigns.scan_buffer import scan_event

        store_events([scan_event(placement.pk, timezone.now(), visitor_key="0" * 32)])  # as the drainer stores it
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert "data-no-scans-yet" not in html and "Hour of the day" in html and 'data-chart="scan-chart"' in html
        assert "chart.umd.min.js" in html

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
        assert refused.status_code == 400 and own_link(flyer) in body(refused) and "Restamp" in body(refused)
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


def raising(problem: Exception):
    """A stand-in for a function that fails with `problem`, whatever it is given."""
    def fails(*args, **kwargs):
        raise problem
    return fails


@pytest.mark.django_db
class TestPreflightPanel:
    def test_it_shows_where_the_code_scans_at_the_printed_width(self, client, team_users, placement):
        Placement.objects.filter(pk=placement.pk).update(printed_width_cm=20, kind="poster")
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        summary = re.search(r"data-preflight-summary><strong>(.*?)</strong>", html).group(1)
        assert re.fullmatch(r"Scans from [\d.]+ m to [\d.]+ m at 20 cm wide", summary)
        assert "1.5 m" in html and "usual for a poster" in html and "20 cm (7.87 in)" in html
        # In a marketer's words: "4.54 preview pixels a module", "a 1920x1080 preview frame over a 69 degree field of
        # view" said nothing to one.
        square = re.search(r"<dd data-square-size>(.*?)</dd>", html).group(1)
        assert re.fullmatch(r"[\d.]+ mm wide · from 1.5 m a phone's camera sees it [\d.]+ pixels wide"
                            r"( \(this art needs at least [\d.]+\))?", square), square
        assert "a typical phone camera: it reads a 1920 × 1080 pixel video picture about 69° wide" in html
        for jargon in ("preview pixels", "a module", "1920x1080", "field of view"):
            assert jargon not in html, jargon

    def test_its_warnings_say_squares_and_the_white_border_not_modules_and_quiet_zone(self, client, team_users,
                                                                                      placement, monkeypatch):
        # A plain code drawn with a 2-square border: "The quiet zone is 2 modules; the QR standard asks for 4"
        from campaigns import printfiles

        monkeypatch.setattr(printfiles.printing, "QUIET_ZONE", 2)
        Placement.objects.filter(pk=placement.pk).update(printed_width_cm=20, kind="poster")
        client.force_login(team_users.viewer)
        html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert ("The white border around the code is only 2 squares wide: phones need 4 squares of plain light border "
                "to find it.") in html
        assert "the white border around the code included" in html
        for jargon in ("quiet zone", "module"):
            assert jargon not in html.lower(), jargon

    def test_without_a_report_it_says_why_without_the_word_preflight(self, client, team_users, placement,
                                                                     monkeypatch):
        from campaigns import printfiles
        from qartsite.storage import MediaUnavailable

        Placement.objects.filter(pk=placement.pk).update(printed_width_cm=20)
        client.force_login(team_users.viewer)
        for problem, said in ((MediaUnavailable(), "Where it scans cannot be worked out right now: the image storage "
                                                   "is unavailable. Reload in a minute."),
                              (OSError("The artwork's image is missing."),
                               "Where it scans cannot be worked out: The artwork&#x27;s image is missing.")):
            monkeypatch.setattr(printfiles, "placement_preflight", raising(problem))
            html = body(client.get(f"/campaigns/placements/{placement.pk}/"))
            assert said in html and "preflight" not in html.lower().replace('id="preflight"', ""), said

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
        # The custom form starts at that smallest width too: it said 20 cm, which does not scan from there
        assert presets[0] > 20 and "Set the printed width" in html and f'name="width" value="{presets[0]:g}cm"' in html
        Placement.objects.filter(pk=placement.pk).update(kind="flyer")  # 0.3 m: a few cm scan, 5 cm stays first
        flyer = body(client.get(f"/campaigns/placements/{placement.pk}/"))
        assert re.findall(r"\?width=([\d.]+)cm&amp;format=pdf", flyer) == ["5", "10", "20", "50"]
        assert 'name="width" value="20cm"' in flyer  # the form's default where 20 cm scans

    def test_it_warns_that_phones_cannot_open_a_loopback_link(self, client, team_users, placement, settings):
        client.force_login(team_users.owner)
        settings.SITE_ROOT = "http://127.0.0.1:8140"
        assert "Phones cannot open this link" in body(client.get(f"/campaigns/placements/{placement.pk}/"))
        settings.SITE_ROOT = "https://qart.example"
        assert "Phones cannot open this link" not in body(client.get(f"/campaigns/placements/{placement.pk}/"))
