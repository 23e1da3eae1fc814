"""Campaign and placement forms (`campaigns.forms`): the placement's limits and the A/B split field's lines."""

from __future__ import annotations

import pytest

from campaigns.forms import CampaignForm, NewCampaignForm, PlacementForm
from campaigns.models import LATITUDE_RANGE, LONGITUDE_RANGE, PRINTED_QUANTITY_RANGE, Placement
from qartsite.models import Team
from tests.generator.factories import candidate as made_candidate
from tests.qartsite.inputs import ARABIC_INDIC, FULL_WIDTH

pytestmark = pytest.mark.django_db

PLACEMENT = {"name": "Window sticker", "kind": "poster", "active": "on"}
CAMPAIGN = {"name": "Spring Sale", "destination": "https://shop.example.com/", "utm_source": "qr",
            "utm_medium": "print", "utm_campaign": "spring-sale"}


def new_placement(campaign, **fields) -> PlacementForm:
    return PlacementForm(PLACEMENT | fields, instance=Placement(campaign=campaign), team=campaign.team)


def split_errors(campaign, text: str) -> list[str]:
    form = CampaignForm(CAMPAIGN | {"rule_split": text}, instance=campaign)
    assert not form.is_valid()
    return form.errors["rule_split"]


class TestPlacementLimits:
    @pytest.mark.parametrize("field, value, message", [
        ("latitude", "999", LATITUDE_RANGE),
        ("latitude", "-90.5", LATITUDE_RANGE),
        ("latitude", "1000", LATITUDE_RANGE),  # past the column's digits: still the range, not "3 digits"
        ("longitude", "500", LONGITUDE_RANGE),
        ("longitude", "-180.000001", LONGITUDE_RANGE),
        ("printed_quantity", "1000000000000", PRINTED_QUANTITY_RANGE),
        ("printed_quantity", "100000001", PRINTED_QUANTITY_RANGE),
        ("printed_quantity", "-5", PRINTED_QUANTITY_RANGE),
    ])
    def test_it_refuses_an_impossible_value_with_one_message(self, campaign, field, value, message):
        form = new_placement(campaign, **{field: value})
        assert not form.is_valid()
        assert form.errors[field] == [message]

    def test_it_accepts_the_limits_themselves(self, campaign):
        form = new_placement(campaign, latitude="-90", longitude="180", printed_quantity="100000000")
        assert form.is_valid(), form.errors
        placement = form.save()
        assert (placement.latitude, placement.longitude, placement.printed_quantity) == (-90, 180, 100_000_000)

    def test_the_quantity_message_names_the_limit_in_words(self):
        assert "100,000,000" in PRINTED_QUANTITY_RANGE and "hundred million" in PRINTED_QUANTITY_RANGE


class TestDigits:
    # Python's int(), float() and Decimal() read them: "1_000" was stored as 1000, "１２３" as 123, "٣.٥" as 3.5.
    @pytest.mark.parametrize("field, value, message", [
        ("printed_quantity", "1_000", "Enter a whole number."),
        ("printed_quantity", "123".translate(FULL_WIDTH), "Enter a whole number."),
        ("latitude", "3.5".translate(ARABIC_INDIC), "Enter a number."),
        ("scan_distance_m", "2".translate(FULL_WIDTH), "Enter a number."),
        ("printed_width_cm", "1_0", "Enter a number."),
        ("deployed_on", "2026".translate(FULL_WIDTH) + "-05-01", "Enter a date like 2026-03-01."),  # strptime read it
    ])
    def test_a_placement_takes_numbers_and_dates_in_ascii_digits_only(self, campaign, field, value, message):
        form = new_placement(campaign, **{field: value})
        assert not form.is_valid()
        assert form.errors[field] == [message]

    def test_a_campaign_takes_dates_in_ascii_digits_only(self, campaign):
        form = CampaignForm(CAMPAIGN | {"starts_on": "2026".translate(ARABIC_INDIC) + "-05-01"}, instance=campaign)
        assert not form.is_valid()
        assert form.errors["starts_on"] == ["Enter a date like 2026-03-01."]

    def test_a_new_campaign_takes_its_teams_id_in_ascii_digits_only(self, campaign):
        team = campaign.team
        form = NewCampaignForm(CAMPAIGN | {"name": "Autumn", "team": str(team.pk).translate(ARABIC_INDIC)},
                               teams=Team.objects.filter(pk=team.pk))
        assert not form.is_valid()
        assert form.errors["team"] == ["Select a valid choice. That choice is not one of the available choices."]

    def test_the_artwork_is_chosen_by_an_id_in_ascii_digits_only(self, team_users, placement):
        candidate = made_candidate(team_users.owner, team_users.team)
        form = PlacementForm(PLACEMENT | {"artwork": f"0_{candidate.pk}"}, instance=placement,
                             team=placement.campaign.team)
        assert not form.is_valid()
        assert form.errors["artwork"] == ["Select a valid choice. That choice is not one of the available choices."]


class TestSplitField:
    def test_it_reports_every_bad_line_in_one_error(self, campaign):
        [error] = split_errors(campaign, "banana\n70 https://a.example\n-5 ftp://b")
        assert error.startswith("Line 1: ") and " Line 3: " in error and "Line 2" not in error
        assert "the weight must be a whole number from 1 to 1000" in error.split("Line 3: ")[1]

    def test_a_line_alone_gets_the_same_wording(self, campaign):
        [error] = split_errors(campaign, "banana")
        assert error == "Line 1: The destination must start with http:// or https://."

    def test_lines_are_numbered_as_written_blank_ones_included(self, campaign):
        [error] = split_errors(campaign, "3 https://a.example.com\n\n0 https://b.example.com")
        assert error == "Line 3: the weight must be a whole number from 1 to 1000."

    @pytest.mark.parametrize("text, message", [
        ("heavy https://a.example.com\n1 https://b.example.com", "Line 1: write the weight, then the address"),
        ("1 https://a.example.com\n50", "Line 2: write the weight, then the address"),
        ("1.5 https://a.example.com\n1 https://b.example.com", "Line 1: the weight must be a whole number"),
        ("1 https://a.example.com\n1 https://b.example.com extra", "Line 2: write the weight, then the address"),
        # Read as 50 and 1: \d and float() take other scripts' digits.
        ("５０ https://a.example.com\n١ https://b.example.com", "Line 1: write the weight, then the address"),
    ])
    def test_it_says_what_is_wrong_with_a_line(self, campaign, text, message):
        [error] = split_errors(campaign, text)
        assert error.startswith(message)

    def test_one_good_line_alone_asks_for_more_destinations(self, campaign):
        [error] = split_errors(campaign, "https://a.example.com")
        assert error.startswith("Give 2 to 10 destinations")  # the page puts "A/B split: " before it

    def test_good_lines_become_the_split(self, campaign):
        form = CampaignForm(CAMPAIGN | {"rule_split": "3 https://a.example.com\n\nhttps://b.example.com\n"},
                            instance=campaign)
        assert form.is_valid(), form.errors
        assert form.instance.rules == {"split": [{"url": "https://a.example.com", "weight": 3},
                                                 {"url": "https://b.example.com", "weight": 1}]}


@pytest.mark.django_db
class TestSeenVersion:
    """A change saved meanwhile by someone else is not overwritten unseen by a page opened before it."""

    @staticmethod
    def page_values(client, url: str) -> dict:
        form = client.get(url).context["form"]
        return {name: form[name].value() for name in form.fields if form[name].value() not in (None, "", False)}

    def test_a_page_opened_before_anothers_change_is_refused_naming_it_then_saved_knowingly(
            self, client, team_users, campaign):
        from rest_framework.test import APIClient

        client.force_login(team_users.owner)
        url = f"/campaigns/{campaign.pk}/edit/"
        posted = self.page_values(client, url) | {"utm_source": "poster"}
        api = APIClient()
        api.force_authenticate(team_users.teammate)
        assert api.patch(f"/api/campaigns/{campaign.pk}/", {"destination": "https://shop.example.com/new"},
                         format="json").status_code == 200
        refused = client.post(url, posted)
        assert refused.status_code == 400
        assert refused.context["form"].non_field_errors() == [
            "A change was saved to this since the page was drawn (Destination). Your version is below: save again to "
            "keep it, or reload the page to see the saved one."]
        campaign.refresh_from_db()
        assert (campaign.destination, campaign.utm_source) == ("https://shop.example.com/new", "qr")
        again = posted | {"seen": refused.context["form"]["seen"].value()}  # the page drawn again carries it
        assert client.post(url, again).status_code == 302
        campaign.refresh_from_db()
        assert (campaign.destination, campaign.utm_source) == ("https://shop.example.com/", "poster")

    def test_the_same_edit_sent_twice_saves_twice(self, client, team_users, campaign):
        # The second press (after submit-once.js's pause, or Back and save) was refused: its own first save had
        # changed the row since the page was drawn.
        client.force_login(team_users.owner)
        url = f"/campaigns/{campaign.pk}/edit/"
        posted = self.page_values(client, url) | {"destination": "https://shop.example.com/later"}
        assert client.post(url, posted).status_code == client.post(url, posted).status_code == 302

    def test_a_page_opened_after_the_change_and_one_of_no_change_meanwhile_save(self, client, team_users, campaign):
        poster = Placement.objects.create(campaign=campaign, name="Poster")
        client.force_login(team_users.owner)
        url = f"/campaigns/placements/{poster.pk}/edit/"
        poster.set_active(False)  # before the page was opened: it shows it
        posted = self.page_values(client, url) | {"notes": "by the door"}
        posted.pop("artwork", None)
        assert client.post(url, posted).status_code == 302
        poster.refresh_from_db()
        assert poster.notes == "by the door" and not poster.active


class TestDestinations:
    def test_a_host_and_path_typed_without_https_is_saved_with_it(self, campaign):
        # type=url had the browser refuse it ("Please enter a URL.") before any message of ours said what to add.
        form = CampaignForm(CAMPAIGN | {"destination": "shop.example.com/winter", "rule_ios": "apps.apple.com/app"},
                            instance=campaign)
        assert form.is_valid(), form.errors
        assert form.cleaned_data["destination"] == "https://shop.example.com/winter"
        assert form.cleaned_data["rule_ios"] == "https://apps.apple.com/app"
        assert 'type="text"' in str(form["destination"]) and 'inputmode="url"' in str(form["destination"])
        placement = new_placement(campaign, destination_override="www.example.com/b")
        assert placement.is_valid(), placement.errors
        assert placement.cleaned_data["destination_override"] == "https://www.example.com/b"

    def test_what_is_no_host_and_path_is_still_refused_with_the_reason(self, campaign):
        form = CampaignForm(CAMPAIGN | {"destination": "javascript:alert(1)"}, instance=campaign)
        assert not form.is_valid()
        assert form.errors["destination"] == ["The destination must start with http:// or https://."]
