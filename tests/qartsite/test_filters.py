"""The API's strict query filters (`qartsite.filters`): yes/no filters take true or false, orderings name a field
there is; anything else is a 400 saying what would do, on every list, quoting a value shortened. Ids and pages are
numbered in ASCII digits."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, Placement
from generator.core.codes.echoes import ECHO_CHARS
from qartsite.filters import PageNumbers, TeamField
from qartsite.models import Membership, Team
from tests.clients import signed_in
from tests.qartsite.inputs import ARABIC_INDIC, FULL_WIDTH, LISTS, project_subclasses

NOT_A_CHOICE = "Select a valid choice. That choice is not one of the available choices."


@pytest.mark.django_db
class TestStrictQueries:
    @pytest.mark.parametrize("path, name", [
        ("/api/campaigns/?archived=maybe", "archived"), ("/api/placements/?active=yes", "active"),
        ("/api/placements/?archived=2", "archived"), ("/api/generations/?scannable=maybe", "scannable"),
        ("/api/generations/?sweep=yes", "sweep"), ("/api/alerts/?open=yes", "open"),
        ("/api/webhook-deliveries/?ok=no", "ok"),
    ])
    def test_it_answers_a_yes_or_no_filter_it_cannot_read_with_400(self, team_users, path, name):
        # django-filter's BooleanFilter read these as unset and listed everything.
        response = signed_in(team_users.owner).get(path)
        assert response.status_code == 400
        value = path.rsplit("=", 1)[1]
        assert response.json() == {name: [f"Select a valid choice. {value} is not one of the available choices. "
                                          "Choose one of: true, false."]}

    def test_a_refused_choice_names_the_choices_there_are(self, team_users):
        # "… is not one of the available choices." named none: a client guessed a placement's kinds.
        response = signed_in(team_users.owner).get("/api/placements/?kind=posterr")
        assert response.status_code == 400
        [message] = response.json()["kind"]
        assert message.startswith("Select a valid choice. posterr is not one of the available choices. Choose one of: ")
        assert "poster, " in message and message.endswith(".")

    def test_a_refused_id_names_no_choices(self, team_users):
        # Other teams' ids are never listed: the refusal of an id stays the same for theirs and a missing one.
        response = signed_in(team_users.owner).get("/api/placements/?campaign=999999")
        assert response.status_code == 400 and response.json() == {"campaign": [NOT_A_CHOICE]}

    @pytest.mark.parametrize("path", ["/api/campaigns/", "/api/generations/", "/api/webhooks/"])
    @pytest.mark.parametrize("sent", ["abc", "Acme", "999999", "rival"])
    def test_a_refused_team_says_it_is_given_by_its_number_and_names_the_callers_teams(self, team_users, path, sent):
        # "Select a valid choice." alone: a client sent the team's name, and guessed on. Another team's id is refused
        # as one that does not exist: only the caller's own teams are named.
        Membership.objects.create(team=Team.objects.create(name="Beta"), user=team_users.owner, role="owner")
        sent = str(team_users.other_team.pk) if sent == "rival" else sent
        response = signed_in(team_users.owner).get(f"{path}?team={sent}")
        assert response.status_code == 400
        beta = Team.objects.get(name="Beta").pk
        assert response.json() == {"team": [
            f"{NOT_A_CHOICE} A team is given by its number (id): {team_users.team.pk} (Acme), {beta} (Beta)."]}

    def test_a_refused_team_of_someone_without_a_team_to_use_says_so(self, team_users):
        response = signed_in(team_users.teammate).get("/api/webhooks/?team=abc")  # webhooks: owners only
        assert response.json() == {"team": [
            f"{NOT_A_CHOICE} A team is given by its number (id); you have no team to use here."]}

    def test_a_refused_team_names_at_most_a_few_teams(self, team_users, monkeypatch):
        monkeypatch.setattr(TeamField, "LISTED", 1)
        Membership.objects.create(team=Team.objects.create(name="Beta"), user=team_users.owner, role="owner")
        [message] = signed_in(team_users.owner).get("/api/campaigns/?team=abc").json()["team"]
        assert message.endswith(f"(id): {team_users.team.pk} (Acme), and 1 more.")

    def test_true_and_false_still_filter(self, team_users):
        Campaign.objects.create(team=team_users.team, name="Old", destination="https://a.example/", archived=True)
        Campaign.objects.create(team=team_users.team, name="New", destination="https://a.example/")
        client = signed_in(team_users.owner)
        assert [c["name"] for c in client.get("/api/campaigns/?archived=true").json()["results"]] == ["Old"]
        assert [c["name"] for c in client.get("/api/campaigns/?archived=false").json()["results"]] == ["New"]
        assert client.get("/api/campaigns/?archived=").json()["count"] == 2
        # As django-filter's BooleanFilter read them: `requests` sends Python's True as "True".
        for value, names in (("True", ["Old"]), ("TRUE", ["Old"]), ("1", ["Old"]), ("0", ["New"]), ("False", ["New"])):
            assert [c["name"] for c in client.get(f"/api/campaigns/?archived={value}").json()["results"]] == names

    def test_the_schema_documents_them_as_booleans(self, schema):
        # Not a boolean with an enum of strings, which no client can send.
        parameters = {p["name"]: p for p in schema["paths"]["/api/placements/"]["get"]["parameters"]}
        assert parameters["active"]["schema"] == parameters["archived"]["schema"] == {"type": "boolean"}
        assert parameters["archived"]["description"] == "Whether the campaign is archived"

    @pytest.mark.parametrize("path, fields", [
        ("/api/campaigns/?ordering=nmae", "name, created, starts_on, ends_on"),
        ("/api/placements/?ordering=-name,campaign__team__name", "name, created, kind, deployed_on"),
        ("/api/generations/?ordering=prompt__text", "created, status, total_seconds"),
    ])
    def test_it_answers_an_unknown_ordering_with_400_naming_the_fields(self, team_users, path, fields):
        # DRF's OrderingFilter dropped it without a word: the list came back in its default order.
        response = signed_in(team_users.owner).get(path)
        assert response.status_code == 400
        wrong = path.rsplit("=", 1)[1].removeprefix("-name,")
        assert response.json() == {"ordering": [
            f"Cannot order by {wrong}: order by {fields}, with a leading - for descending."]}

    @pytest.mark.parametrize("name", ["kind", "active", "ordering"])
    def test_a_refused_value_is_quoted_shortened(self, team_users, name):
        # 3,000 characters came back whole in the message.
        response = signed_in(team_users.owner).get(f"/api/placements/?{name}={'k' * 3000}")
        assert response.status_code == 400
        (message,) = response.json()[name]
        assert f"{'k' * ECHO_CHARS}…" in message and len(message) < 200

    def test_a_page_numbered_in_other_digits_than_asciis_is_not_found(self, team_users):
        # Django's paginator reads it with int(): "１" (full width) was page 1.
        Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        client = signed_in(team_users.owner)
        assert client.get("/api/campaigns/?page=1").status_code == 200
        response = client.get("/api/campaigns/?page=１")
        assert response.status_code == 404 and response.json()["detail"].startswith("Invalid page “１”: ")

    def test_a_page_numbered_with_underscores_is_not_found(self, team_users):
        # int() reads "0_1" as 1: page 1 at another address.
        Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        response = signed_in(team_users.owner).get("/api/campaigns/?page=0_1")
        assert response.status_code == 404 and response.json()["detail"].startswith("Invalid page “0_1”: ")

    @pytest.mark.parametrize("page", ["3", "0", "-1", "two"])
    def test_a_page_there_is_not_says_which_pages_there_are(self, team_users, monkeypatch, page):
        # DRF's "Invalid page." said neither how many pages there are nor how to walk them.
        monkeypatch.setattr(PageNumbers, "page_size", 2)
        for name in ["A", "B", "C"]:
            Campaign.objects.create(team=team_users.team, name=name, destination="https://a.example/")
        response = signed_in(team_users.owner).get(f"/api/campaigns/?page={page}")
        assert response.status_code == 404 and response.json() == {"detail": (
            f"Invalid page “{page}”: this list has pages 1 to 2 (2 results a page), numbered in ASCII digits; each "
            "answer's `next` links the page after it.")}

    @pytest.mark.parametrize("written", [
        lambda pk: str(pk).translate(ARABIC_INDIC), lambda pk: str(pk).translate(FULL_WIDTH),
        lambda pk: f"0_{pk}", lambda pk: f"+{pk}", lambda pk: f" {pk}"],
        ids=["arabic-indic", "full-width", "underscore", "sign", "space"])
    def test_an_id_filter_takes_ascii_digits_only(self, team_users, written):
        # Django's lookup reads the id with int(): `?campaign=١` listed campaign 1's placements.
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        Placement.objects.create(campaign=campaign, name="Poster")
        client = signed_in(team_users.owner)
        assert client.get(f"/api/placements/?campaign={campaign.pk}").json()["count"] == 1
        response = client.get("/api/placements/", {"campaign": written(campaign.pk)})
        assert response.status_code == 400 and response.json() == {"campaign": [NOT_A_CHOICE]}

    def test_known_orderings_still_order(self, team_users):
        for name in ("b", "a", "c"):
            Campaign.objects.create(team=team_users.team, name=name, destination="https://a.example/")
        client = signed_in(team_users.owner)
        assert [c["name"] for c in client.get("/api/campaigns/?ordering=-name,").json()["results"]] == ["c", "b", "a"]

    def test_the_schema_says_which_orderings_there_are(self, schema):
        ordering = next(p for p in schema["paths"]["/api/campaigns/"]["get"]["parameters"] if p["name"] == "ordering")
        assert ordering["description"] == ("Comma-separated: name, created, starts_on, ends_on; a leading - orders "
                                           "descending. Another field is a 400.")

    @pytest.mark.parametrize("path", LISTS)
    def test_every_list_answers_an_unknown_ordering_with_400(self, team_users, path):
        response = signed_in(team_users.owner).get(f"{path}?ordering=nmae")
        assert response.status_code == 400
        (message,) = response.json()["ordering"]
        assert message.startswith("Cannot order by nmae: order by ")
        first = message.removeprefix("Cannot order by nmae: order by ").split(",")[0]
        assert signed_in(team_users.owner).get(f"{path}?ordering=-{first}").status_code == 200

    def test_one_objects_request_ignores_ordering_as_before(self, team_users):
        # `get_object` filters the queryset too: an ordering means nothing there and stays ignored.
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        client = signed_in(team_users.owner)
        assert client.get(f"/api/campaigns/{campaign.pk}/?ordering=nmae").status_code == 200
        assert client.patch(f"/api/campaigns/{campaign.pk}/?ordering=nmae", {"name": "Autumn"},
                            format="json").status_code == 200


def test_every_filter_by_an_id_or_a_number_reads_ascii_digits():
    # django-filter's own ModelChoiceFilter (and NumberFilter) hand the value to a lookup that reads it with int():
    # "١" is 1. A filter set's declared filters and those it makes from `Meta.fields` alike.
    from django import forms
    from django_filters.filterset import BaseFilterSet

    from qartsite.api_urls import router
    from qartsite.filters import IdFilter

    found = project_subclasses(BaseFilterSet)
    assert len(found) >= 6
    for filter_set in found:
        for name, query_filter in filter_set.base_filters.items():
            # A FloatField and a DecimalField are IntegerFields; a ModelMultipleChoiceField is a ModelChoiceField.
            if issubclass(query_filter.field_class, forms.ModelChoiceField | forms.IntegerField):
                assert isinstance(query_filter, IdFilter), f"{filter_set.__name__}.{name}: use filters.IdFilter"
    # `filterset_fields` makes a filter set where no test sees it: each list declares its own.
    assert not [basename for _, viewset, basename in router.registry if getattr(viewset, "filterset_fields", None)]
