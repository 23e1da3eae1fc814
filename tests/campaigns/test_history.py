"""Destination history (`campaigns.history`): every change of where printed codes lead, made through the pages, the
API or the admin, is recorded with who, when, before and after; editors revert one from the pages."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, DestinationChange, Placement
from tests.campaigns.admin_forms import campaign_form as admin_campaign_form
from tests.clients import api_as
from tests.conftest import make_staff

OLD, NEW = "https://shop.example.com/", "https://shop.example.com/summer"


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station poster", kind="poster")


def page_campaign_form(**fields) -> dict:
    return {"name": "Spring Sale", "destination": OLD, "fallback_url": "", "utm_source": "qr", "utm_medium": "print",
            "utm_campaign": "spring-sale", "dates_route": "on", **fields}


def only_change() -> DestinationChange:
    changes = list(DestinationChange.objects.all())
    assert len(changes) == 1, changes
    return changes[0]


@pytest.mark.django_db
class TestRecording:
    def test_it_records_a_campaign_change_made_on_the_page(self, client, team_users, campaign):
        client.force_login(team_users.teammate)
        response = client.post(f"/campaigns/{campaign.pk}/edit/",
                               page_campaign_form(destination=NEW, fallback_url="https://shop.example.com/fb"))
        assert response.status_code == 302
        changes = {c.field: c for c in DestinationChange.objects.all()}
        assert set(changes) == {"destination", "fallback_url"}
        assert (changes["destination"].before, changes["destination"].after) == (OLD, NEW)
        assert (changes["fallback_url"].before, changes["fallback_url"].after) == ("", "https://shop.example.com/fb")
        assert all(c.changed_by == team_users.teammate and c.campaign == campaign and c.placement is None
                   for c in changes.values())

    def test_it_records_nothing_when_the_destination_stays(self, client, team_users, campaign):
        client.force_login(team_users.teammate)
        assert client.post(f"/campaigns/{campaign.pk}/edit/", page_campaign_form(name="Renamed")).status_code == 302
        assert not DestinationChange.objects.exists()

    def test_it_records_a_placement_override_made_on_the_page(self, client, team_users, placement):
        client.force_login(team_users.owner)
        response = client.post(f"/campaigns/placements/{placement.pk}/edit/",
                               {"name": "Station poster", "kind": "poster", "active": "on",
                                "destination_override": NEW})
        assert response.status_code == 302
        change = only_change()
        assert (change.field, change.before, change.after) == ("destination_override", "", NEW)
        assert change.placement == placement and change.changed_by == team_users.owner

    def test_it_records_changes_made_through_the_api(self, team_users, campaign, placement):
        client = api_as(team_users.teammate)
        assert client.patch(f"/api/campaigns/{campaign.pk}/", {"destination": NEW}, format="json").status_code == 200
        assert client.patch(f"/api/placements/{placement.pk}/", {"destination_override": NEW},
                            format="json").status_code == 200
        changes = {c.field: c for c in DestinationChange.objects.all()}
        assert (changes["destination"].before, changes["destination"].after) == (OLD, NEW)
        assert (changes["destination_override"].before, changes["destination_override"].after) == ("", NEW)
        assert all(c.changed_by == team_users.teammate for c in changes.values())

    def test_it_records_nothing_for_a_refused_api_change(self, team_users, campaign):
        client = api_as(team_users.teammate)
        response = client.patch(f"/api/campaigns/{campaign.pk}/", {"destination": "javascript:alert(1)"},
                                format="json")
        assert response.status_code == 400
        assert not DestinationChange.objects.exists()

    def test_it_records_a_change_made_in_the_admin(self, client, team_users, campaign):
        make_staff(team_users.teammate)
        client.force_login(team_users.teammate)
        response = client.post(f"/admin/campaigns/campaign/{campaign.pk}/change/",
                               admin_campaign_form(team_users.team, destination=NEW))
        assert response.status_code == 302
        change = only_change()
        assert (change.field, change.before, change.after, change.changed_by) == (
            "destination", OLD, NEW, team_users.teammate)

    def test_it_shows_the_history_on_the_campaign_and_placement_pages(self, client, team_users, campaign, placement):
        DestinationChange.objects.create(campaign=campaign, placement=placement, field="destination_override",
                                         before="", after=NEW, changed_by=team_users.owner)
        client.force_login(team_users.viewer)
        for url in (f"/campaigns/{campaign.pk}/", f"/campaigns/placements/{placement.pk}/"):
            page = client.get(url).content.decode()
            assert "Destination history" in page and NEW in page and "owner" in page
            assert ">Revert</button>" not in page  # viewers see no revert button
        client.force_login(team_users.teammate)
        assert ">Revert</button>" in client.get(f"/campaigns/placements/{placement.pk}/").content.decode()


@pytest.mark.django_db
class TestRevert:
    def changed(self, client, team_users, campaign) -> DestinationChange:
        client.force_login(team_users.teammate)
        client.post(f"/campaigns/{campaign.pk}/edit/", page_campaign_form(destination=NEW))
        return only_change()

    def test_it_reverts_and_records_the_revert(self, client, team_users, campaign):
        change = self.changed(client, team_users, campaign)
        client.force_login(team_users.owner)
        response = client.post(f"/campaigns/destination-changes/{change.pk}/revert/", follow=True)
        assert response.redirect_chain[-1][0] == f"/campaigns/{campaign.pk}/"
        campaign.refresh_from_db()
        assert campaign.destination == OLD
        undo = DestinationChange.objects.exclude(pk=change.pk).get()
        assert (undo.before, undo.after, undo.changed_by, undo.reverts) == (NEW, OLD, team_users.owner, change)
        assert "Reverted" in response.content.decode()

    def test_it_reverts_a_placement_override_back_to_empty(self, client, team_users, placement):
        change = DestinationChange.objects.create(campaign=placement.campaign, placement=placement,
                                                  field="destination_override", before="", after=NEW)
        Placement.objects.filter(pk=placement.pk).update(destination_override=NEW)
        client.force_login(team_users.teammate)
        response = client.post(f"/campaigns/destination-changes/{change.pk}/revert/")
        assert response.status_code == 302 and response["Location"] == f"/campaigns/placements/{placement.pk}/"
        placement.refresh_from_db()
        assert placement.destination_override == ""
        assert DestinationChange.objects.filter(reverts=change, before=NEW, after="").exists()

    def test_it_refuses_viewers_with_403(self, client, team_users, campaign):
        change = self.changed(client, team_users, campaign)
        client.force_login(team_users.viewer)
        assert client.post(f"/campaigns/destination-changes/{change.pk}/revert/").status_code == 403
        campaign.refresh_from_db()
        assert campaign.destination == NEW and DestinationChange.objects.count() == 1

    def test_it_answers_another_team_with_404(self, client, team_users, campaign):
        change = self.changed(client, team_users, campaign)
        client.force_login(team_users.outsider)
        assert client.post(f"/campaigns/destination-changes/{change.pk}/revert/").status_code == 404
        campaign.refresh_from_db()
        assert campaign.destination == NEW

    def test_it_refuses_get_with_405(self, client, team_users, campaign):
        change = self.changed(client, team_users, campaign)
        assert client.get(f"/campaigns/destination-changes/{change.pk}/revert/").status_code == 405
        campaign.refresh_from_db()
        assert campaign.destination == NEW

    def test_it_refuses_a_value_that_no_longer_validates_with_one_clear_message(self, client, team_users,
                                                                                 campaign):
        change = DestinationChange.objects.create(campaign=campaign, field="destination",
                                                  before="ftp://files.example.com/", after=OLD)
        client.force_login(team_users.teammate)
        response = client.post(f"/campaigns/destination-changes/{change.pk}/revert/", follow=True)
        shown = [str(message) for message in response.context["messages"]]
        assert shown == ["Not reverted: the earlier address “ftp://files.example.com/” is no longer accepted. "
                         "The destination must start with http:// or https://."]
        campaign.refresh_from_db()
        assert campaign.destination == OLD and DestinationChange.objects.count() == 1

    def test_a_revert_the_rest_of_the_row_refuses_gets_one_clear_message(self, client, team_users, campaign):
        # The fallback's earlier value is fine, but the stored destination no longer validates (written around
        # the checks): the model refuses the save, and the page says so instead of failing.
        change = DestinationChange.objects.create(campaign=campaign, field="fallback_url",
                                                  before="https://shop.example.com/closed", after="")
        Campaign.objects.filter(pk=campaign.pk).update(destination="ftp://files.example.com/")
        client.force_login(team_users.teammate)
        response = client.post(f"/campaigns/destination-changes/{change.pk}/revert/", follow=True)
        assert response.status_code == 200
        shown = [str(message) for message in response.context["messages"]]
        assert len(shown) == 1 and shown[0].startswith("Not reverted: ") and "http" in shown[0]
        campaign.refresh_from_db()
        assert campaign.fallback_url == "" and DestinationChange.objects.count() == 1
