"""The API's query strings (`qartsite.queries`): a parameter of one value sent twice is a 400 under its name, on every
path of the API (each operation's documented parameters: test_api_walk.py); parameters no view reads stay ignored,
and the pages keep Django's query."""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.test import Client
from rest_framework.exceptions import ValidationError

from campaigns.models import Campaign
from qartsite.queries import OneValueEach
from tests.clients import signed_in

TWICE = ["Sent 2 times in the query: send it once."]


class TestOneValueEach:
    def test_it_refuses_a_read_of_one_value_of_a_parameter_sent_twice(self):
        query = OneValueEach.of(QueryDict("range=7d&range=30d&to=2026-01-01"))
        for read in (lambda: query["range"], lambda: query.get("range"), lambda: query.get("range", "x")):
            with pytest.raises(ValidationError) as refused:
                read()
            assert refused.value.detail == {"range": TWICE}
        assert query.get("to") == query["to"] == "2026-01-01"
        assert query.get("from") is None

    def test_it_gives_every_value_to_a_read_of_many(self):
        query = OneValueEach.of(QueryDict("kind=poster&kind=flyer"))
        assert query.getlist("kind") == ["poster", "flyer"]
        assert dict(query.lists()) == {"kind": ["poster", "flyer"]}

    def test_a_walk_of_the_whole_query_refuses_nothing(self):
        # A copy's urlencode or a log line reads parameters no view reads (a cache-buster sent twice).
        query = OneValueEach.of(QueryDict("_=1&_=2&page=3"))
        assert query.dict() == dict(query.items()) == {"_": "2", "page": "3"}
        assert list(query.values()) == ["2", "3"]
        assert query.urlencode() == "_=1&_=2&page=3"

    def test_it_is_read_only_as_djangos_query_and_its_copy_stays_strict(self):
        query = OneValueEach.of(QueryDict("a=1&a=2", encoding="latin-1"))
        with pytest.raises(AttributeError):
            query["b"] = "3"
        copy = query.copy()
        copy["b"] = "3"
        assert copy.encoding == "latin-1" and copy["b"] == "3"
        with pytest.raises(ValidationError):
            copy.get("a")

    def test_it_counts_every_time_a_parameter_was_sent(self):
        with pytest.raises(ValidationError) as refused:
            OneValueEach.of(QueryDict("page=1&page=1&page=1"))["page"]
        assert refused.value.detail == {"page": ["Sent 3 times in the query: send it once."]}


@pytest.mark.django_db
class TestTheApisQuery:
    def test_a_parameter_no_view_reads_stays_ignored_however_often_it_comes(self, team_users):
        Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example.com/")
        response = signed_in(team_users.owner).get("/api/campaigns/?_=1&_=2&archived=false")
        assert response.status_code == 200 and response.json()["count"] == 1

    def test_a_format_sent_twice_is_refused_in_json(self, team_users):
        response = signed_in(team_users.owner).get("/api/campaigns/?format=json&format=api")
        assert response.status_code == 400 and response["Content-Type"] == "application/json"
        assert response.json() == {"format": TWICE}

    def test_the_browsable_api_says_it_too(self, team_users):
        client = Client()
        client.force_login(team_users.owner)
        response = client.get("/api/campaigns/?ordering=name&ordering=-name", HTTP_ACCEPT="text/html")
        assert response.status_code == 400 and response["Content-Type"].startswith("text/html")
        assert TWICE[0] in response.content.decode()

    def test_a_path_of_the_api_no_route_takes_is_still_its_404(self, team_users):
        response = signed_in(team_users.owner).get("/api/nothing/?page=1&page=2")
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}

    def test_the_pages_keep_djangos_query(self, team_users):
        client = Client()
        client.force_login(team_users.owner)
        response = client.get("/campaigns/?archived=1&archived=0")
        assert response.status_code == 200
        assert type(response.wsgi_request.GET) is QueryDict
