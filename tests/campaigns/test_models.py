"""Campaign models: a placement's short link follows the site's one rule for absolute links (qartsite.site); where
a printed code leads; what deleting takes with it; the limits of a placement's figures."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db.models import RestrictedError
from django.test import Client
from rest_framework.test import APIClient

from campaigns import history
from campaigns.models import Campaign, Placement
from tests.conftest import at_once
from tests.generator.factories import candidate

pytestmark = pytest.mark.django_db


@pytest.fixture
def placement(team_users) -> Placement:
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example.com/")
    return Placement.objects.create(campaign=campaign, name="Station poster")


class TestShortUrl:
    def test_it_uses_the_configured_site_root_on_any_host(self, placement, rf, settings):
        settings.SITE_ROOT = "https://go.example"
        assert placement.short_url(rf.get("/")) == f"https://GO.EXAMPLE/R/{placement.slug}"

    def test_it_uses_the_request_host_without_a_site_root(self, placement, rf, settings):
        settings.SITE_ROOT = ""
        assert placement.short_url(rf.get("/", secure=True)) == f"https://TESTSERVER/R/{placement.slug}"

    def test_it_keeps_the_link_as_it_is_for_an_old_slug_or_a_host_qr_cannot_write_in_capitals(self, placement, rf,
                                                                                              settings):
        # Codes already printed for an old mixed-case slug carry it as it is; so do new ones.
        settings.SITE_ROOT = "https://go.example"
        Placement.objects.filter(pk=placement.pk).update(slug="AbC23456")
        placement.refresh_from_db()
        assert placement.short_url(rf.get("/")) == "https://go.example/r/AbC23456"
        settings.SITE_ROOT = "https://go_links.example"  # an underscore: no alphanumeric host
        other = Placement.objects.create(campaign=placement.campaign, name="Flyer")
        assert other.short_url(rf.get("/")) == f"https://go_links.example/r/{other.slug}"

    def test_the_team_may_write_the_scheme_in_capitals_too(self, placement, rf, settings):
        settings.SITE_ROOT = "https://go.example"
        placement.campaign.team.capital_scheme = True
        assert placement.short_url(rf.get("/")) == f"HTTPS://GO.EXAMPLE/R/{placement.slug}"


class TestArchivedCampaign:
    def test_it_takes_no_new_placement_but_keeps_its_own(self, placement):
        campaign = placement.campaign
        campaign.set_archived(True)
        with pytest.raises(ValidationError, match="archived: bring it back"):
            Placement.objects.create(campaign=campaign, name="Late flyer")
        with pytest.raises(ValidationError, match="archived: bring it back"):
            Placement(campaign=campaign, name="Late flyer").full_clean()
        placement.name = "Renamed"
        placement.full_clean()
        placement.save()
        assert list(campaign.placements.values_list("name", flat=True)) == ["Renamed"]
        campaign.set_archived(False)
        assert Placement.objects.create(campaign=campaign, name="Late flyer").pk


class TestDestination:
    """A live placement: its override, else the campaign's destination. An archived campaign or an inactive
    placement: the campaign's fallback, else its destination (a printed code never answers 404)."""

    @pytest.fixture
    def overridden(self, placement) -> Placement:
        placement.destination_override = "https://shop.example.com/poster"
        placement.campaign.fallback_url = "https://shop.example.com/ended"
        return placement

    def test_a_live_placement_leads_to_its_override_then_the_campaigns_destination(self, overridden):
        assert overridden.is_live and overridden.destination == "https://shop.example.com/poster"
        overridden.destination_override = ""
        assert overridden.destination == "https://shop.example.com/"

    def test_an_archived_campaigns_placement_leads_to_the_fallback(self, overridden):
        overridden.campaign.archived = True
        assert not overridden.is_live and overridden.destination == "https://shop.example.com/ended"

    def test_an_inactive_placement_leads_to_the_fallback_else_the_campaigns_destination(self, overridden):
        overridden.active = False
        assert overridden.destination == "https://shop.example.com/ended"
        overridden.campaign.fallback_url = ""
        assert overridden.destination == "https://shop.example.com/"


class TestArtwork:
    def test_a_candidate_printed_as_artwork_cannot_be_deleted(self, placement, team_users):
        art = candidate(team_users.owner, team_users.team)
        placement.artwork = art
        placement.save()
        with pytest.raises(RestrictedError):
            art.job.delete()
        placement.refresh_from_db()
        assert placement.artwork == art

    def test_a_team_deleted_as_a_whole_takes_its_placements_and_artwork_together(self, placement, team_users):
        placement.artwork = candidate(team_users.owner, team_users.team)
        placement.save()
        team_users.team.delete()
        assert not Placement.objects.exists()


class TestLimits:
    @pytest.mark.parametrize("field, value, message", [
        ("latitude", 999, "Latitude must be between -90 and 90"),
        ("latitude", -91, "Latitude must be between -90 and 90"),
        ("longitude", 500, "Longitude must be between -180 and 180"),
        ("longitude", -180.5, "Longitude must be between -180 and 180"),
        ("printed_quantity", 10**12, "100,000,000"),
    ])
    def test_it_refuses_impossible_values_with_one_message(self, placement, field, value, message):
        setattr(placement, field, value)
        with pytest.raises(ValidationError) as refused:
            placement.full_clean()
        [said] = refused.value.message_dict[field]
        assert message in said

    def test_it_accepts_the_ends_of_each_range(self, placement):
        placement.latitude, placement.longitude, placement.printed_quantity = 90, -180, 100_000_000
        placement.full_clean()


def test_every_model_of_the_app_is_imported_from_here_in_its_order():
    # Other apps, the admin and the migrations import every model from campaigns.models, though scans' and
    # webhooks' are defined in their own modules; the order is the registry's, which reverse relations follow.
    from django.apps import apps

    from campaigns import models

    registered = list(apps.get_app_config("campaigns").get_models())
    assert [getattr(models, model.__name__) for model in registered] == registered
    assert [model.__name__ for model in registered][:3] == ["Campaign", "Placement", "ScanEvent"]


def test_route_by_its_dates_says_what_switching_it_on_and_off_does():
    # Read by a marketer on the campaign form, beside the campaign page's "Its dates do not change where its codes
    # lead" when it is off: the same words, and nothing about qart's history.
    help_text = Campaign._meta.get_field("dates_route").help_text
    assert help_text.startswith("On: before its first day and after its last, its codes lead to the fallback address")
    assert help_text.endswith("Off: its dates do not change where its codes lead.")


@pytest.mark.django_db(transaction=True)  # two requests at once, each with a connection of its own
class TestChangesInTurn:
    """`locked_copy`: two changes of one campaign or placement at once are made one after the other. A save wrote
    back every column as its request had read it, so the later save undid the other's change."""

    @staticmethod
    def api(user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    def test_two_api_changes_of_other_fields_at_once_both_stay(self, team_users, campaign, monkeypatch):
        def destination() -> int:
            return self.api(team_users.owner).patch(f"/api/campaigns/{campaign.pk}/", {
                "destination": "https://shop.example.com/summer"}, format="json").status_code

        def source() -> int:
            return self.api(team_users.teammate).patch(f"/api/campaigns/{campaign.pk}/", {
                "utm_source": "newsletter"}, format="json").status_code

        assert at_once(monkeypatch, (history, "stored_values"), destination, source) == [200, 200]
        campaign.refresh_from_db()
        assert (campaign.destination, campaign.utm_source) == ("https://shop.example.com/summer", "newsletter")

    def test_an_archive_beside_a_page_edit_stays_archived(self, team_users, campaign, monkeypatch):
        page = Client()
        page.force_login(team_users.owner)

        def edit() -> int:
            return page.post(f"/campaigns/{campaign.pk}/edit/", {
                "name": "Spring Sale", "destination": "https://shop.example.com/spring", "utm_source": "qr",
                "utm_medium": "print", "utm_campaign": "", "dates_route": "on"}).status_code

        def archive() -> int:
            return self.api(team_users.teammate).delete(f"/api/campaigns/{campaign.pk}/").status_code

        assert at_once(monkeypatch, (history, "stored_values"), edit, archive) == [302, 200]
        campaign.refresh_from_db()
        assert campaign.archived and campaign.destination == "https://shop.example.com/spring"

    def test_a_placement_switched_off_beside_an_api_change_stays_off(self, team_users, campaign, monkeypatch):
        poster = Placement.objects.create(campaign=campaign, name="Poster")

        def notes() -> int:
            return self.api(team_users.owner).patch(f"/api/placements/{poster.pk}/", {"notes": "by the door"},
                                                    format="json").status_code

        def switch_off() -> int:
            return self.api(team_users.teammate).delete(f"/api/placements/{poster.pk}/").status_code

        assert at_once(monkeypatch, (history, "stored_values"), notes, switch_off) == [200, 200]
        poster.refresh_from_db()
        assert not poster.active and poster.notes == "by the door"

    def test_a_row_deleted_meanwhile_has_no_locked_copy(self, campaign):
        from django.db import transaction

        from campaigns.models import locked_copy

        poster = Placement.objects.create(campaign=campaign, name="Poster")
        Placement.objects.filter(pk=poster.pk).delete()
        with transaction.atomic():
            assert locked_copy(poster) is None
            assert locked_copy(campaign).name == campaign.name
