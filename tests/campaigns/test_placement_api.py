"""The placement API (`campaigns.placement_api`): placements, their artwork, print files and preflight."""

from __future__ import annotations

import json

import jsonschema
import pytest

from campaigns import links
from campaigns.models import Campaign, Placement, ScanEvent
from campaigns.placement_api import ARTWORK_OPTION_ALONE
from generator.models import GenerationJob
from tests.campaigns.conftest import own_link
from tests.clients import api_as
from tests.generator.factories import job_with_ranks


@pytest.mark.django_db
class TestPlacements:
    def test_it_shows_the_slug_short_url_and_effective_destination(self, team_users, placement):
        body = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/").json()
        assert body["slug"] == placement.slug
        assert body["short_url"] == f"http://TESTSERVER/R/{placement.slug}"  # as its codes carry it
        assert body["destination"] == "https://shop.example.com/" and body["destination_override"] == ""
        assert body["artwork"] is None and body["artwork_image"] is None

    def test_it_creates_with_a_fresh_slug_it_will_not_take_from_the_request(self, team_users, campaign):
        response = api_as(team_users.teammate).post("/api/placements/", {
            "campaign": campaign.pk, "name": "Flyer", "kind": "flyer", "slug": "chosen1",
            "destination_override": "https://other.example.com/"}, format="json")
        assert response.status_code == 201, response.content
        created = Placement.objects.get()
        assert created.slug != "chosen1" and len(created.slug) == links.SLUG_LENGTH
        assert response.json()["destination"] == "https://other.example.com/"

    @pytest.mark.parametrize("day", ["0026-05-01", "1999-12-31", "2201-01-01", "9999-12-31"])
    def test_a_deployment_day_out_of_range_is_refused_with_one_message(self, team_users, placement, day):
        # Any year from 1 to 9999 was stored: 0026 for 2026 went up in the year 26.
        response = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {"deployed_on": day},
                                                  format="json")
        assert response.status_code == 400 and response.json() == {"deployed_on": ["Give a year from 2000 to 2200."]}
        placement.refresh_from_db()
        assert placement.deployed_on is None
        assert api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {"deployed_on": "2026-05-01"},
                                              format="json").json()["deployed_on"] == "2026-05-01"

    @pytest.mark.parametrize("format", ["json", "multipart"])
    def test_a_form_body_that_leaves_a_yes_no_field_out_gets_its_default_as_json_does(self, team_users, campaign,
                                                                                        format):
        # DRF reads a missing field of a form body as an unticked checkbox: placements were made switched off.
        api = api_as(team_users.teammate)
        made = api.post("/api/placements/", {"campaign": campaign.pk, "name": "Flyer", "kind": "flyer"},
                        format=format)
        assert made.status_code == 201 and made.json()["active"] is True
        off = api.post("/api/placements/", {"campaign": campaign.pk, "name": "Off", "kind": "flyer", "active": "false"},
                       format=format)
        assert off.status_code == 201 and off.json()["active"] is False  # said, not left out
        created = api.post("/api/campaigns/", {"name": "Autumn", "destination": "https://shop.example.com/",
                                               "team": campaign.team.pk}, format=format)
        assert created.status_code == 201 and created.json()["dates_route"] is True

    def test_a_placement_stays_in_its_campaign(self, team_users, campaign, placement):
        other = Campaign.objects.create(team=campaign.team, name="Autumn", destination="https://autumn.example.com/")
        moved = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {"campaign": other.pk},
                                               format="json")
        assert moved.status_code == 400 and "stays in the campaign that made it" in moved.json()["campaign"][0]
        placement.refresh_from_db()
        assert placement.campaign == campaign
        same = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {"campaign": campaign.pk,
                                                                                   "name": "Renamed"}, format="json")
        assert same.status_code == 200 and same.json()["name"] == "Renamed"

    def test_an_archived_campaign_takes_no_new_placement(self, team_users, campaign, placement):
        campaign.set_archived(True)
        client = api_as(team_users.owner)
        refused = client.post("/api/placements/", {"campaign": campaign.pk, "name": "Late flyer"}, format="json")
        assert refused.status_code == 400
        assert refused.json() == {"campaign": ["This campaign is archived: bring it back before adding placements "
                                               "to it."]}
        assert list(campaign.placements.all()) == [placement]
        kept = client.patch(f"/api/placements/{placement.pk}/", {"name": "Renamed"}, format="json")
        assert kept.status_code == 200 and kept.json()["name"] == "Renamed"

    def test_it_answers_a_bad_override_with_400_and_the_message(self, team_users, placement):
        response = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {
            "destination_override": "ftp://files.example.com/"}, format="json")
        assert response.status_code == 400
        assert response.json()["destination_override"] == ["The destination must start with http:// or https://."]

    @pytest.mark.parametrize("field, value, message", [
        ("latitude", 999, "Latitude must be between -90 and 90 degrees."),
        ("latitude", "1000", "Latitude must be between -90 and 90 degrees."),
        # More digits than the column holds said its digits first ("no more than 9 digits in total")
        ("latitude", 1e308, "Latitude must be between -90 and 90 degrees."),
        ("latitude", "123456789012", "Latitude must be between -90 and 90 degrees."),
        ("longitude", "-1e20", "Longitude must be between -180 and 180 degrees."),
        ("longitude", 500, "Longitude must be between -180 and 180 degrees."),
        ("longitude", -181, "Longitude must be between -180 and 180 degrees."),
        ("printed_quantity", 1e12, "The printed quantity must be a whole number from 0 to 100,000,000 (one hundred "
                                   "million printed pieces)."),
        ("printed_quantity", -1, "The printed quantity must be a whole number from 0 to 100,000,000 (one hundred "
                                 "million printed pieces)."),
    ])
    def test_it_refuses_impossible_values_with_one_message(self, team_users, campaign, placement, field, value,
                                                           message):
        client = api_as(team_users.owner)
        created = client.post("/api/placements/", {"campaign": campaign.pk, "name": "Far", field: value},
                              format="json")
        assert created.status_code == 400 and created.json() == {field: [message]}
        changed = client.patch(f"/api/placements/{placement.pk}/", {field: value}, format="json")
        assert changed.status_code == 400 and changed.json() == {field: [message]}
        assert Placement.objects.count() == 1 and getattr(Placement.objects.get(), field) is None

    def test_it_accepts_the_ends_of_each_range(self, team_users, placement):
        response = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {
            "latitude": "-90", "longitude": "180", "printed_quantity": 100_000_000}, format="json")
        assert response.status_code == 200, response.content
        placement.refresh_from_db()
        assert (placement.latitude, placement.longitude, placement.printed_quantity) == (-90, 180, 100_000_000)

    @pytest.mark.parametrize("field", ["scan_distance_m", "printed_width_cm"])
    def test_it_refuses_nan_and_infinity_that_ranges_let_through(self, team_users, placement, field):
        client = api_as(team_users.owner)
        for value in ("nan", "inf"):
            response = client.patch(f"/api/placements/{placement.pk}/", {field: value}, format="json")
            assert response.status_code == 400 and "finite number" in response.json()[field][0]
        assert getattr(Placement.objects.get(), field) is None

    def test_it_names_every_bad_split_destination_in_one_message(self, team_users, placement):
        response = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {"rules": {"split": [
            {"url": "banana", "weight": 1}, {"url": "https://a.example.com", "weight": 70},
            {"url": "ftp://b.example.com", "weight": -5}]}}, format="json")
        assert response.status_code == 400
        [message] = response.json()["rules"]
        assert message.startswith("A/B split, destination 1: The destination must start with http")
        assert "destination 2" not in message
        assert ("A/B split, destination 3: the weight must be a whole number from 1 to 1000. The destination must "
                "start with http") in message

    @pytest.mark.parametrize("rules, message", [
        ("[" * 1000 + "]" * 1000, "Nested too deeply: at most 200 levels."),
        ('{"a":' * 3000 + "1" + "}" * 3000, "Nested too deeply: at most 200 levels."),
        ('{"split": [{"url": "https://a.example.com", "weight": 1e400}]}', "Out of range: numbers must be finite"),
        # Python reads no int of 5,000 digits: "Value must be valid JSON.", of JSON that is
        pytest.param('{"split": [{"url": "https://a.example.com", "weight": %s}]}' % ("9" * 5000),
                     "Out of range: numbers must", id="5000-digits"),
    ])
    @pytest.mark.parametrize("form", ["multipart", "urlencoded"])
    def test_rules_sent_as_text_in_a_form_body_hold_to_the_json_bodys_limits(self, team_users, placement, rules,
                                                                            message, form):
        # A JSON body is checked whole by the parser; rules as text in a form field went to Python's parser, which
        # recursed to its limit (a RecursionError: 500) or read 1e400 as infinity
        client = api_as(team_users.owner)
        url = f"/api/placements/{placement.pk}/"
        response = client.patch(url, {"rules": rules}, format="multipart") if form == "multipart" else client.patch(
            url, f"rules={rules}", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 400
        assert response.json()["rules"][0].startswith(message)
        assert Placement.objects.get().rules == {}

    def test_rules_as_text_in_a_form_body_still_work(self, team_users, placement):
        response = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {
            "rules": '{"ios": "https://apps.example.com/ios"}'}, format="multipart")
        assert response.status_code == 200, response.json()
        assert Placement.objects.get().rules["ios"] == "https://apps.example.com/ios"

    def test_a_campaign_has_one_placement_of_a_name_as_its_import_says(self, team_users, campaign, placement):
        client = api_as(team_users.owner)
        refused = client.post("/api/placements/", {"campaign": campaign.pk, "name": "station POSTER"}, format="json")
        assert refused.status_code == 400
        assert refused.json() == {"name": ["The campaign already has a placement with this name."]}
        flyer = client.post("/api/placements/", {"campaign": campaign.pk, "name": "Flyer"}, format="json").json()
        assert client.patch(f"/api/placements/{flyer['id']}/", {"name": "Station poster"},
                            format="json").status_code == 400
        assert client.patch(f"/api/placements/{placement.pk}/", {"name": "Station Poster", "notes": "x"},
                            format="json").status_code == 200
        assert Placement.objects.filter(campaign=campaign).count() == 2
        # A pair of one name made before the rule: each stays editable under its own name
        Placement.objects.filter(pk=flyer["id"]).update(name="station poster")
        assert client.patch(f"/api/placements/{flyer['id']}/", {"name": "station poster", "notes": "y"},
                            format="json").status_code == 200

    def test_it_refuses_another_teams_campaign(self, team_users, campaign):
        response = api_as(team_users.outsider).post("/api/placements/", {
            "campaign": campaign.pk, "name": "Sneaky"}, format="json")
        assert response.status_code == 400 and "does not exist" in response.json()["campaign"][0]
        assert not Placement.objects.exists()

    def test_another_teams_placements_answer_404(self, team_users, placement):
        client = api_as(team_users.outsider)
        assert client.get("/api/placements/").json()["count"] == 0
        for url in (f"/api/placements/{placement.pk}/", f"/api/placements/{placement.pk}/scans/"):
            assert client.get(url).status_code == 404
        assert client.patch(f"/api/placements/{placement.pk}/", {"active": False}, format="json").status_code == 404
        placement.refresh_from_db()
        assert placement.active

    def test_viewers_cannot_create_or_change(self, team_users, campaign, placement):
        client = api_as(team_users.viewer)
        assert client.post("/api/placements/", {"campaign": campaign.pk, "name": "X"}, format="json").status_code == 403
        assert client.patch(f"/api/placements/{placement.pk}/", {"name": "X"}, format="json").status_code == 403
        assert Placement.objects.get().name == "Station poster"

    def test_delete_archives_the_placement_and_its_code_still_leads_somewhere(self, team_users, placement):
        ScanEvent.objects.create(placement=placement, device_class="mobile")
        client = api_as(team_users.teammate)
        response = client.delete(f"/api/placements/{placement.pk}/")
        assert response.status_code == 200
        assert response.json()["active"] is False and response.json()["destination"] == "https://shop.example.com/"
        placement.refresh_from_db()
        assert not placement.active and placement.scans.count() == 1
        assert client.patch(f"/api/placements/{placement.pk}/", {"active": True}, format="json").status_code == 200
        assert Placement.objects.get().active

    def test_viewers_and_outsiders_cannot_delete_a_placement(self, team_users, placement):
        assert api_as(team_users.viewer).delete(f"/api/placements/{placement.pk}/").status_code == 403
        assert api_as(team_users.outsider).delete(f"/api/placements/{placement.pk}/").status_code == 404
        placement.refresh_from_db()
        assert placement.active

    def test_artwork_must_be_a_candidate_of_the_campaigns_team(self, team_users, placement):
        ours = job_with_ranks(team_users.team, team_users.owner, ranks=(1,)).candidates.get()
        GenerationJob.objects.filter(pk=ours.job_id).update(content=f"http://testserver/r/{placement.slug}")
        theirs = job_with_ranks(team_users.other_team, team_users.outsider, ranks=(1,)).candidates.get()
        client = api_as(team_users.owner)
        url = f"/api/placements/{placement.pk}/"
        unseen = client.patch(url, {"artwork": theirs.pk}, format="json")
        assert unseen.status_code == 400 and "does not exist" in unseen.json()["artwork"][0]
        # Even a candidate the user can see is refused when it belongs to another of their teams.
        team_users.owner.memberships.create(team=team_users.other_team, role="editor")
        other_team = client.patch(url, {"artwork": theirs.pk}, format="json")
        assert other_team.status_code == 400 and "campaign's team" in other_team.json()["artwork"][0]
        accepted = client.patch(url, {"artwork": ours.pk}, format="json")
        assert accepted.status_code == 200 and accepted.json()["artwork"] == ours.pk
        assert accepted.json()["artwork_image"].startswith("http://testserver/media/generations/")
        placement.refresh_from_db()
        assert placement.artwork == ours

    def test_it_filters_by_campaign_activity_kind_and_archived(self, team_users, campaign, placement):
        other = Campaign.objects.create(team=team_users.team, name="Old", destination="https://a.example/")
        flyer = Placement.objects.create(campaign=other, name="Flyer", kind="flyer", active=False)
        other.set_archived(True)
        client = api_as(team_users.owner)

        def ids(query: str) -> list[int]:
            return [p["id"] for p in client.get(f"/api/placements/?{query}").json()["results"]]

        assert ids(f"campaign={campaign.pk}") == [placement.pk]
        assert ids("active=false") == ids("kind=flyer") == ids("archived=true") == [flyer.pk]
        assert ids("ordering=-name") == [placement.pk, flyer.pk]

    def test_it_refuses_a_filter_value_or_ordering_it_cannot_read(self, team_users, placement):
        client = api_as(team_users.owner)
        for query, name in (("active=no", "active"), ("archived=maybe", "archived")):
            response = client.get(f"/api/placements/?{query}")
            assert response.status_code == 400 and list(response.json()) == [name], query
        response = client.get("/api/placements/?ordering=slug")
        assert response.status_code == 400
        assert response.json() == {"ordering": [
            "Cannot order by slug: order by name, created, kind, deployed_on, with a leading - for descending."]}

    def test_it_refuses_an_unknown_field_and_keeps_the_placement(self, team_users, placement):
        response = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {
            "name": "Renamed", "destination": "https://elsewhere.example/"}, format="json")
        # `destination` is read-only (where scans lead now), so it is known, and ignored: `name` changes.
        assert response.status_code == 200 and response.json()["name"] == "Renamed"
        response = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {
            "name": "Again", "overide": "https://elsewhere.example/"}, format="json")
        assert response.status_code == 400
        assert list(response.json()) == ["overide"]
        assert response.json()["overide"][0].startswith("Unknown field. Fields you can send: campaign, name, kind,")
        placement.refresh_from_db()
        assert placement.name == "Renamed" and placement.destination_override == ""

    def test_filters_do_not_confirm_other_teams_campaigns(self, team_users, placement):
        rival = Campaign.objects.create(team=team_users.other_team, name="Rival", destination="https://r.example/")
        client = api_as(team_users.owner)
        foreign = client.get(f"/api/placements/?campaign={rival.pk}")
        missing = client.get("/api/placements/?campaign=999999")
        assert foreign.status_code == missing.status_code == 400
        assert foreign.json() == missing.json()


@pytest.mark.django_db
class TestArtworkRules:
    def test_it_answers_400_with_the_reason_for_a_failing_candidate(self, team_users, placement):
        from tests.campaigns.conftest import make_art

        failing = make_art(team_users.team, team_users.owner, own_link(placement), verdict="fail", probability=0.0)
        client = api_as(team_users.teammate)
        url = f"/api/placements/{placement.pk}/"
        refused = client.patch(url, {"artwork": failing.pk}, format="json")
        assert refused.status_code == 400 and "does not pass the scan check" in refused.json()["artwork"][0]
        accepted = client.patch(url, {"artwork": failing.pk, "print_anyway": "client wants a proof"}, format="json")
        assert accepted.status_code == 200
        data = accepted.json()
        assert data["print_state"] == "will_not_scan" and data["print_anyway_by"] == "teammate"
        assert data["print_anyway_reason"] == "client wants a proof" and "does not pass" in data["print_problem"]
        blocked = client.get(f"/api/placements/{placement.pk}/print/?width=20cm")
        assert blocked.status_code == 409 and "do not print" in blocked.json()["detail"]

    def test_it_refuses_print_anyway_and_restamp_sent_without_artwork(self, team_users, placement):
        # They say how to take the artwork sent with them; alone they were ignored and answered 200, the reason to
        # print anyway recorded nowhere.
        from tests.campaigns.conftest import make_art

        failing = make_art(team_users.team, team_users.owner, own_link(placement), verdict="fail", probability=0.0)
        client = api_as(team_users.owner)
        url = f"/api/placements/{placement.pk}/"
        for body in ({"print_anyway": "client wants a proof"}, {"restamp": True}, {"name": "Renamed", "restamp": True}):
            response = client.patch(url, body, format="json")
            assert response.status_code == 400, body
            assert response.json() == {name: [ARTWORK_OPTION_ALONE] for name in body if name != "name"}
        placement.refresh_from_db()
        assert placement.name == "Station poster" and placement.print_anyway_reason == ""
        created = client.post("/api/placements/", {"campaign": placement.campaign_id, "name": "Gate", "restamp": True},
                              format="json")
        assert created.status_code == 400 and not Placement.objects.filter(name="Gate").exists()
        # Sent with the artwork, and again as a retry with the same artwork (now the placement's): both taken.
        body = {"artwork": failing.pk, "print_anyway": "client wants a proof"}
        assert client.patch(url, body, format="json").status_code == 200
        assert client.patch(url, body, format="json").status_code == 200
        # The options' defaults, as a form or a full object sends them, are not options.
        assert client.patch(url, {"restamp": False, "print_anyway": ""}, format="json").status_code == 200

    def test_it_answers_400_for_another_links_candidate_and_restamps_on_request(self, team_users, campaign,
                                                                                 placement):
        from tests.campaigns.conftest import make_art

        flyer = Placement.objects.create(campaign=campaign, name="Flyer")
        art = make_art(team_users.team, team_users.owner, own_link(flyer))
        client = api_as(team_users.owner)
        url = f"/api/placements/{placement.pk}/"
        refused = client.patch(url, {"artwork": art.pk}, format="json")
        assert refused.status_code == 400 and own_link(flyer) in refused.json()["artwork"][0]
        restamped = client.patch(url, {"artwork": art.pk, "restamp": True}, format="json")
        assert restamped.status_code == 200 and restamped.json()["artwork"] != art.pk
        assert restamped.json()["print_state"] == "ok"
        placement.refresh_from_db()
        assert placement.artwork.job.content == own_link(placement)

    def test_it_restamps_before_it_locks_the_placement_and_once_for_a_retry(self, team_users, campaign, placement,
                                                                            verifications):
        # Restamping and verifying take a second: under the placement's lock they held the scan drainer (and, on
        # SQLite, every writer) meanwhile, and each call made a copy.
        from tests.campaigns.conftest import make_art

        art = make_art(team_users.team, team_users.owner, own_link(Placement.objects.create(campaign=campaign,
                                                                                             name="Flyer")))
        client = api_as(team_users.owner)
        url = f"/api/placements/{placement.pk}/"
        first, retry = (client.patch(url, {"artwork": art.pk, "restamp": True}, format="json") for _ in range(2))
        assert first.status_code == retry.status_code == 200 and first.json()["artwork"] == retry.json()["artwork"]
        assert first.json()["artwork"] != art.pk and first.json()["print_state"] == "ok"
        assert verifications == [False] and GenerationJob.objects.filter(placement=placement).count() == 1

    def test_it_judges_again_before_it_locks_the_placement_and_refuses_as_before(self, team_users, placement,
                                                                                 verifications):
        from tests.campaigns.conftest import make_art, unreadable_to_the_active_model

        stale = unreadable_to_the_active_model(make_art(team_users.team, team_users.owner, own_link(placement)))
        refused = api_as(team_users.owner).patch(f"/api/placements/{placement.pk}/", {"artwork": stale.pk},
                                                 format="json")
        assert refused.status_code == 400 and "does not pass the scan check" in refused.json()["artwork"][0]
        assert verifications == [False]
        placement.refresh_from_db()
        assert placement.artwork is None

    def test_a_viewer_or_outsider_makes_nothing_before_the_refusal(self, team_users, campaign, placement,
                                                                  verifications):
        from tests.campaigns.conftest import make_art

        art = make_art(team_users.team, team_users.owner, own_link(Placement.objects.create(campaign=campaign,
                                                                                             name="Flyer")))
        for user, status in ((team_users.viewer, 403), (team_users.outsider, 404)):
            response = api_as(user).patch(f"/api/placements/{placement.pk}/", {"artwork": art.pk, "restamp": True},
                                          format="json")
            assert response.status_code == status
        assert verifications == [] and not GenerationJob.objects.filter(placement=placement).exists()

    def test_artwork_cannot_be_chosen_before_the_placement_exists(self, team_users, campaign):
        from tests.campaigns.conftest import make_art

        art = make_art(team_users.team, team_users.owner, "https://qart.example/r/whatever")
        response = api_as(team_users.owner).post("/api/placements/", {"campaign": campaign.pk, "name": "New",
                                                                      "artwork": art.pk}, format="json")
        assert response.status_code == 400 and "Create the placement first" in response.json()["artwork"][0]


@pytest.mark.django_db
class TestPrintAndPreflight:
    def test_it_sends_a_verified_print_file_with_its_report(self, team_users, placement):
        response = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/print/?width=8in&format=svg")
        assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
        report = json.loads(response["X-Qart-Print-Report"])
        assert report["width_mm"] == 203.2 and report["verified"]["passed"]
        assert report["preflight"]["summary"].startswith("scans from")
        # The same name as the page's download of it (it was "qart-<slug>.svg" here, with the width there).
        assert response["Content-Disposition"] == f'attachment; filename="qart-{placement.slug}-20.32cm.svg"'

    def test_a_failed_precondition_or_a_range_past_the_end_says_why_in_json(self, team_users, placement):
        # Django's 412 was empty and called itself HTML, the 416 was plain text: the API's every answer is JSON.
        client = api_as(team_users.viewer)
        url = f"/api/placements/{placement.pk}/print/?width=8in&format=svg"
        size = len(client.get(url).content)
        failed = client.get(url, HTTP_IF_MATCH='"0123456789abcdef0123456789abcdef"')
        past = client.get(url, HTTP_RANGE=f"bytes={size}-")
        assert (failed.status_code, past.status_code) == (412, 416)
        assert "If-Match" in failed.json()["detail"]
        assert past.json() == {"detail": f"The file has {size} bytes: the range asked for is not in it."}
        assert past["Content-Range"] == f"bytes */{size}"
        for refused in (failed, past):  # the message is not the file: never saved under its name
            assert refused["Content-Type"] == "application/json" and "Content-Disposition" not in refused
            assert refused["ETag"] == client.get(url)["ETag"]

    def test_if_unmodified_since_is_ignored_for_a_file_made_in_the_request(self, team_users, placement):
        # The file has no modification date, so RFC 9110 13.1.4 has the header ignored; Django answered 412 to any
        # date, refusing a download manager that sends it with a resumed request.
        client = api_as(team_users.viewer)
        url = f"/api/placements/{placement.pk}/print/?width=8in&format=svg"
        whole = client.get(url)
        for date in ("Mon, 01 Jan 1990 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"):
            response = client.get(url, HTTP_IF_UNMODIFIED_SINCE=date)
            assert response.status_code == 200 and response.content == whole.content, date
        resumed = client.get(url, HTTP_IF_UNMODIFIED_SINCE="Mon, 01 Jan 1990 00:00:00 GMT", HTTP_RANGE="bytes=10-")
        assert resumed.status_code == 206 and resumed.content == whole.content[10:]

    @pytest.mark.parametrize(("query", "option", "words"), [
        ("width=huge", "width", "needs a number and a unit"), ("width=20cm&bleed=3", "bleed", "needs a number"),
        ("width=20cm&dpi=many", "dpi", "whole number"), ("width=20cm&dpi=5", "dpi", "between"),
        ("width=20cm&cmyk=maybe", "cmyk", "true or false"), ("width=20cm&crop_marks=2", "crop_marks", "true or false"),
        ("width=20cm&format=gif", "format", "Print formats are"),
        ("width=20cm&format=png&cmyk=true", "cmyk", "no CMYK"),
        ("width=20m", "width", "between"),
    ])
    def test_bad_options_answer_400_at_the_option_with_the_reason(self, team_users, placement, query, option, words):
        response = api_as(team_users.owner).get(f"/api/placements/{placement.pk}/print/?{query}")
        assert response.status_code == 400 and list(response.json()) == [option]
        assert words in response.json()[option][0]

    def test_preflight_reports_range_width_and_module_size(self, team_users, placement):
        Placement.objects.filter(pk=placement.pk).update(kind="billboard")
        client = api_as(team_users.viewer)
        report = client.get(f"/api/placements/{placement.pk}/preflight/?width=20cm").json()
        assert report["distance_m"] == 10.0 and not report["scans_at_distance"]
        assert report["min_width_m"] > 0.2 and report["module_mm"] > 4 and report["warnings"]
        missing = client.get(f"/api/placements/{placement.pk}/preflight/")
        assert missing.status_code == 400 and "printed_width_cm" in missing.json()["width"][0]
        assert client.get(f"/api/placements/{placement.pk}/preflight/?width=abc").status_code == 400

    def test_preflight_warnings_are_in_plain_words_and_its_keys_unchanged(self, team_users, placement, monkeypatch):
        # The `warnings` are read by people (integrators show them as they come); the keys are the integrators'
        from campaigns import printfiles

        monkeypatch.setattr(printfiles.printing, "QUIET_ZONE", 0)
        report = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/preflight/?width=20cm").json()
        assert {"module_mm", "modules", "warnings", "min_width_m", "summary"} <= set(report)
        assert ("The code has no white border around it: phones need 4 squares of plain light border to find it."
                in report["warnings"])
        assert not [w for w in report["warnings"] if "module" in w.lower() or "quiet zone" in w.lower()]

    def test_preflight_while_the_image_storage_is_away_is_a_503_not_a_missing_image(self, team_users, placement,
                                                                                    monkeypatch):
        # It answered 409 "This placement's artwork image is missing.": a team told to choose its artwork again.
        from campaigns import printfiles
        from qartsite.storage import MediaUnavailable

        def away(*args, **kwargs):
            raise MediaUnavailable("The media storage could not be reached")

        monkeypatch.setattr(printfiles, "placement_preflight", away)
        response = api_as(team_users.viewer).get(f"/api/placements/{placement.pk}/preflight/?width=20cm")
        assert response.status_code == 503 and response["Retry-After"] == "60"
        assert response.json() == {"detail": "The image storage is unavailable right now; try again in a minute."}

    def test_outsiders_get_404(self, team_users, placement):
        client = api_as(team_users.outsider)
        assert client.get(f"/api/placements/{placement.pk}/print/?width=20cm").status_code == 404
        assert client.get(f"/api/placements/{placement.pk}/preflight/?width=20cm").status_code == 404


@pytest.mark.django_db
def test_the_print_files_schema_documents_the_resumed_and_unchanged_answers(team_users):
    # Its description promised 206 and 304, its answers did not list them: a client held to the schema refused both.
    schema = api_as(team_users.owner).get("/api/schema/?format=json").json()
    answers = schema["paths"]["/api/placements/{id}/print/"]["get"]["responses"]
    assert answers["206"]["content"].keys() == answers["200"]["content"].keys() >= {"application/pdf", "image/png"}
    assert "content" not in answers["304"] and "ETag" in answers["304"]["description"]


@pytest.mark.django_db
def test_a_large_print_files_202_is_the_body_its_schema_documents(team_users, placement, print_queue):
    # The schema said "any object" of the answer a client polls by: `detail` and `retry_after` went undocumented.
    client = api_as(team_users.owner)
    response = client.get(f"/api/placements/{placement.pk}/print/?width=5cm&format=png&dpi=100")
    assert response.status_code == 202 and response["Retry-After"] == str(response.json()["retry_after"])
    schema = client.get("/api/schema/?format=json").json()
    documented = schema["paths"]["/api/placements/{id}/print/"]["get"]["responses"]["202"]["content"][
        "application/json"]["schema"]
    assert "$ref" in documented, documented
    component = schema["components"]["schemas"][documented["$ref"].rsplit("/", 1)[1]]
    assert sorted(component["required"]) == ["detail", "retry_after"]
    jsonschema.validate(response.json(), {**component, "additionalProperties": False})
