"""The API's shared plumbing (`qartsite.api`): the HTTP answers every endpoint gives to a client's mistakes, and the
strict fields the apps share (their strict filters and ordering: test_filters.py; what the schema says of the
refusals: test_api_schema.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign, Placement
from generator.core.codes.echoes import ECHO_CHARS
from generator.models import GenerationJob
from qartsite.api import field_errors
from tests.clients import signed_in
from tests.generator.factories import job_with_ranks
from tests.qartsite.inputs import ARABIC_INDIC, FULL_WIDTH, LISTS, project_subclasses

# --- What HTTP clients get wrong ------------------------------------------------------------------------------------


@pytest.fixture
def rival_objects(team_users) -> dict[str, int]:
    """Ids of the outsider's team's campaign, placement and generation: real rows the owner must not see."""
    campaign = Campaign.objects.create(team=team_users.other_team, name="Rival", destination="https://r.example/")
    placement = Placement.objects.create(campaign=campaign, name="Rival poster")
    job = job_with_ranks(team_users.other_team, team_users.outsider, ranks=(1,))
    return {"campaigns": campaign.pk, "placements": placement.pk, "generations": job.pk}


@pytest.mark.django_db
class TestHttpAnswers:
    @pytest.mark.parametrize("path", LISTS)
    def test_it_answers_no_credentials_with_401_and_the_scheme_to_use(self, path):
        response = APIClient().get(path)
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
        assert response.json() == {"detail": "Authentication credentials were not provided."}

    @pytest.mark.parametrize("method, path, allow", [
        ("put", "/api/campaigns/", "GET, POST, HEAD, OPTIONS"),
        ("put", "/api/generations/1/", "GET, DELETE, HEAD, OPTIONS"),
        ("get", "/api/generations/1/cancel/", "POST, OPTIONS"),
        ("post", "/api/campaigns/1/", "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"),
        ("delete", "/api/teams/1/", "GET, PUT, PATCH, HEAD, OPTIONS"),
    ])
    def test_it_answers_a_wrong_method_with_405_and_the_allowed_ones(self, team_users, method, path, allow):
        response = getattr(signed_in(team_users.owner), method)(path)
        assert response.status_code == 405
        assert response["Allow"] == allow
        assert response.json() == {"detail": f'Method "{method.upper()}" not allowed.'}

    @pytest.mark.parametrize("path", LISTS)
    def test_head_and_options_answer_without_a_body_or_with_the_description(self, team_users, path):
        client = signed_in(team_users.owner)
        head = client.head(path)
        assert head.status_code == 200 and head.content == b"" and head["Content-Type"] == "application/json"
        assert client.options(path).json()["parses"] == [
            "application/json", "application/x-www-form-urlencoded", "multipart/form-data"]

    @pytest.mark.parametrize("body, content_type, status, detail", [
        ('{"name": ', "application/json", 400, "JSON parse error - Expecting value: line 1 column 10 (char 9)"),
        (b'{"name": "\xff"}', "application/json", 400,
         "JSON parse error - the body is not UTF-8 text (send JSON as UTF-8)."),
        ('{"name": "x"}', "text/plain", 415, "Unsupported media type “text/plain”: send the body as one of application"
                                             "/json, application/x-www-form-urlencoded, multipart/form-data."),
        # What Python's requests sends for `data=json.dumps(...)`: DRF said `Unsupported media type "" in request.`
        ('{"name": "x"}', "", 415, "The body has no Content-Type header: send it with one of application/json, "
                                   "application/x-www-form-urlencoded, multipart/form-data."),
    ])
    def test_it_answers_a_body_it_cannot_read_with_one_detail(self, team_users, body, content_type, status, detail):
        response = signed_in(team_users.owner).generic("POST", "/api/campaigns/", body, content_type=content_type)
        assert response.status_code == status
        assert response.json() == {"detail": detail}
        assert not Campaign.objects.exists()

    def test_a_415_names_the_types_the_endpoint_reads(self, team_users):
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/import-placements/",
                                                    {"text": "name\nGate\n"}, format="json")
        assert response.status_code == 415
        assert response.json() == {"detail": "Unsupported media type “application/json”: send the body as one of "
                                             "multipart/form-data, application/x-www-form-urlencoded."}
        assert not campaign.placements.exists()

    def test_a_list_fields_items_errors_are_messages_naming_each_item(self, team_users):
        # DRF answered {"events": {"1": [...]}}: an object where the schema (`FieldErrors`) promises a list of
        # strings under each field.
        response = signed_in(team_users.owner).post("/api/webhooks/", {
            "team": team_users.team.pk, "url": "https://hooks.example.com/q", "events": ["scan.created", 1, "nope"]},
            format="json")
        assert response.status_code == 400
        assert response.json() == {"events": ['Item 2: "1" is not a valid choice.',
                                              'Item 3: "nope" is not a valid choice.']}

    @pytest.mark.parametrize("kind", ["campaigns", "placements", "generations"])
    def test_another_teams_ids_and_ids_that_are_not_numbers_answer_404_alike(self, team_users, rival_objects,
                                                                            kind):
        client = signed_in(team_users.owner)
        rival, missing = client.get(f"/api/{kind}/{rival_objects[kind]}/"), client.get(f"/api/{kind}/999999/")
        assert rival.status_code == missing.status_code == 404
        assert rival.json() == missing.json()
        for odd in ("abc", "1.5", "99999999999999999999999"):
            response = client.get(f"/api/{kind}/{odd}/")
            assert response.status_code == 404 and set(response.json()) == {"detail"}, odd

    def test_it_answers_a_format_it_has_no_renderer_for_with_406_naming_those_it_has(self, team_users):
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        client = signed_in(team_users.owner)
        for path in (f"/api/campaigns/{campaign.pk}/scans/?format=csv", f"/api/campaigns/{campaign.pk}/scans.csv",
                     f"/api/placements/{placement.pk}/scans/?format=xml", "/api/campaigns/?format=CSV"):
            response = client.get(path)
            assert response.status_code == 406, path
            asked = path.rsplit("=", 1)[-1] if "=" in path else "csv"
            assert response.json() == {
                "detail": f"The format “{asked}” is not supported here; use one of: json, api."}, path
        assert client.get(f"/api/campaigns/{campaign.pk}.5/").status_code == 404  # an id "1.5", not a format
        assert client.get(f"/api/campaigns/{campaign.pk}/scans/?format=json").status_code == 200
        assert client.get(f"/api/campaigns/{campaign.pk}/scans.json").status_code == 200

    def test_it_reads_an_accept_header_naming_no_media_type_as_none(self, team_users):
        client = signed_in(team_users.owner)
        for accept in ("", " ", ",", " , "):
            response = client.get("/api/campaigns/", HTTP_ACCEPT=accept)
            assert response.status_code == 200 and response["Content-Type"] == "application/json", repr(accept)

    def test_it_answers_an_accept_header_it_cannot_satisfy_naming_the_types_it_has(self, team_users):
        response = signed_in(team_users.owner).get("/api/campaigns/", HTTP_ACCEPT="application/xml")
        assert response.status_code == 406
        assert response.json() == {"detail": "This answers in application/json, text/html; the Accept header asked "
                                             "for “application/xml”."}

    def test_an_unsupported_format_answers_alike_for_another_teams_object_and_ours(self, team_users, rival_objects):
        ours = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        client = signed_in(team_users.owner)
        mine, theirs = (client.get(f"/api/campaigns/{pk}/?format=csv") for pk in (ours.pk, rival_objects["campaigns"]))
        assert mine.status_code == theirs.status_code == 406 and mine.json() == theirs.json()


@pytest.mark.django_db
class TestKnownFieldsOnly:
    def test_it_refuses_an_unknown_field_naming_those_it_takes_and_changes_nothing(self, team_users):
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        response = signed_in(team_users.owner).patch(f"/api/campaigns/{campaign.pk}/", {
            "name": "Autumn", "nmae": "Autumn"}, format="json")
        assert response.status_code == 400
        assert response.json() == {"nmae": [
            "Unknown field. Fields you can send: team, name, destination, fallback_url, starts_on, ends_on, "
            "dates_route, utm_source, utm_medium, utm_campaign, rules, archived."]}
        campaign.refresh_from_db()
        assert campaign.name == "Spring"

    def test_it_answers_unknown_fields_with_the_other_fields_errors_at_once(self, team_users):
        response = signed_in(team_users.owner).post("/api/campaigns/", {"name": None, "colour": "red"},
                                                    format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"name", "destination", "colour"}

    @pytest.mark.parametrize("format", ["urlencoded", "multipart"])
    def test_a_field_a_form_names_twice_is_refused_and_nothing_is_made(self, team_users, format):
        # DRF took the last value without a word ("Summer"), where JSON naming a key twice is refused.
        client = signed_in(team_users.owner)
        if format == "urlencoded":
            response = client.post("/api/campaigns/", "name=Spring&name=Summer&destination=https%3A%2F%2Fa.example%2F",
                                   content_type="application/x-www-form-urlencoded")
        else:
            response = client.post("/api/campaigns/", {"name": ["Spring", "Summer"],
                                                       "destination": "https://a.example/"}, format="multipart")
        assert response.status_code == 400
        assert response.json() == {"name": ["Sent 2 times in the form: send it once."]}
        assert not Campaign.objects.exists()

    def test_a_field_of_many_values_takes_each_a_form_gives_it(self, team_users):
        response = signed_in(team_users.owner).post("/api/webhooks/", "url=https%3A%2F%2Fhooks.example.com%2F&"
                                                    "events=scan.created&events=generation.finished",
                                                    content_type="application/x-www-form-urlencoded")
        assert response.status_code == 201, response.content
        assert response.json()["events"] == ["scan.created", "generation.finished"]

    def test_read_only_fields_are_known_so_a_read_object_can_be_sent_back(self, team_users):
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        client = signed_in(team_users.owner)
        read = client.get(f"/api/campaigns/{campaign.pk}/").json()
        response = client.put(f"/api/campaigns/{campaign.pk}/", {**read, "name": "Autumn"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["name"] == "Autumn"

    @pytest.mark.parametrize("path, body", [
        ("/api/shares/", {"campaign": 0, "lable": "Agency"}),
        ("/api/webhooks/", {"url": "https://hooks.example/", "events": ["scan"], "activ": True}),
    ])
    def test_every_app_refuses_unknown_fields(self, team_users, path, body):
        response = signed_in(team_users.owner).post(path, body, format="json")
        assert response.status_code == 400
        misspelt = next(name for name in body if name not in ("campaign", "url", "events"))
        assert response.json()[misspelt][0].startswith("Unknown field. Fields you can send: ")

    def test_a_teams_settings_refuse_unknown_fields(self, team_users):
        response = signed_in(team_users.owner).patch(f"/api/teams/{team_users.team.pk}/", {"timezone": "UTC"},
                                                     format="json")
        assert response.status_code == 400
        assert response.json() == {"timezone": [
            "Unknown field. Fields you can send: name, time_zone, scan_retention_days, capital_scheme, "
            "confirm_retention."]}

    def test_it_names_the_first_unknown_fields_and_counts_the_rest(self, team_users):
        # Each unknown key once got its own entry with the whole list of fields: 500,000 keys made a 100 MB answer.
        from qartsite.api import MAX_UNKNOWN

        body = {"name": "", **{f"k{n}": n for n in range(5000)}}
        response = signed_in(team_users.owner).post("/api/campaigns/", body, format="json")
        errors = response.json()
        assert response.status_code == 400 and len(response.content) < 10_000
        assert [name for name in errors if name.startswith("k")] == [f"k{n}" for n in range(MAX_UNKNOWN)]
        assert errors["non_field_errors"] == [
            f"{5000 - MAX_UNKNOWN} more unknown fields are not listed. Fields you can send: team, name, destination, "
            "fallback_url, starts_on, ends_on, dates_route, utm_source, utm_medium, utm_campaign, rules, archived."]
        assert "name" in errors  # the body's other mistakes come in the same answer

    def test_the_browsable_apis_csrf_field_is_not_unknown(self, team_users):
        response = signed_in(team_users.owner).post("/api/campaigns/", {
            "name": "Spring", "destination": "https://a.example/", "csrfmiddlewaretoken": "x"}, format="multipart")
        assert response.status_code == 201, response.content


@pytest.mark.django_db
class TestScopedField:
    def test_it_refuses_a_fraction_rather_than_round_it_to_a_team(self, team_users):
        # {"team": 1.5} picked team 1: the database rounded the id down.
        response = signed_in(team_users.owner).post("/api/campaigns/", {
            "team": team_users.team.pk + 0.5, "name": "S", "destination": "https://a.example/"}, format="json")
        assert response.status_code == 400
        assert response.json() == {"team": ["A valid integer is required."]}
        assert not Campaign.objects.exists()

    @pytest.mark.parametrize("team", ["1.5", True, [1], "one"])
    def test_it_refuses_other_things_that_are_not_whole_numbers(self, team_users, team):
        response = signed_in(team_users.owner).post("/api/campaigns/", {
            "team": team, "name": "S", "destination": "https://a.example/"}, format="json")
        assert response.status_code == 400
        assert response.json() == {"team": ["A valid integer is required."]}
        assert not Campaign.objects.exists()

    def test_a_whole_number_written_as_a_float_is_that_id(self, team_users):
        response = signed_in(team_users.owner).post("/api/campaigns/", {
            "team": float(team_users.team.pk), "name": "S", "destination": "https://a.example/"}, format="json")
        assert response.status_code == 201 and response.json()["team"] == team_users.team.pk


def all_serializers() -> set[type]:
    from rest_framework import serializers

    return project_subclasses(serializers.BaseSerializer)


def test_every_related_field_a_client_can_write_is_scoped_to_the_users_teams():
    # An unscoped related field lists every team's objects in the browsable API's form (even on an action's 405
    # page) and checks ids against the whole table.
    from rest_framework import relations

    from qartsite.api import ScopedField

    serializers_seen = all_serializers()
    assert len(serializers_seen) > 20
    for serializer_class in serializers_seen:
        for name, field in serializer_class(context={"request": None}).fields.items():
            child = getattr(field, "child_relation", field)
            if isinstance(child, relations.RelatedField) and not field.read_only:
                assert isinstance(child, ScopedField), f"{serializer_class.__name__}.{name} is writable and unscoped"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["campaigns", "placements", "shares", "webhooks", "generations"])
def test_a_201_names_the_new_objects_address_in_location(team_users, enqueued, settings, path):
    settings.QART_WEBHOOKS_ALLOW_PRIVATE = True
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
    bodies = {
        "campaigns": {"name": "Autumn", "destination": "https://b.example/"},
        "placements": {"campaign": campaign.pk, "name": "Poster"},
        "shares": {"campaign": campaign.pk, "days": 7},
        "webhooks": {"team": team_users.team.pk, "url": "https://hooks.example/", "events": ["scan.created"]},
        "generations": {"prompt": "a misty forest", "content": "https://a.example/"},
    }
    client = signed_in(team_users.owner)
    response = client.post(f"/api/{path}/", bodies[path], format="json")
    assert response.status_code == 201, response.content
    assert response["Location"] == f"http://testserver/api/{path}/{response.json()['id']}/"
    assert client.get(response["Location"]).json()["id"] == response.json()["id"]


@pytest.mark.django_db
def test_a_201_that_is_no_new_object_names_no_location(team_users):
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
    response = signed_in(team_users.owner).post(f"/api/campaigns/{campaign.pk}/import-placements/",
                                                {"text": "name\nPoster"}, format="multipart")
    assert response.status_code == 201, response.content
    assert not response.has_header("Location")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["generations", "campaigns", "placements", "shares", "webhooks", "alerts"])
def test_every_404_says_not_found_and_names_no_model(team_users, path):
    response = signed_in(team_users.owner).get(f"/api/{path}/987654/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


@pytest.mark.django_db
def test_the_browsable_apis_filter_forms_name_placements_in_one_query(team_users):
    # The placement filter's select named each placement by its campaign, one query each (5,000 at a team's
    # volume: 7 s for the HTML page of /api/generations/).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    campaign = Campaign.objects.create(team=team_users.team, name="Big", destination="https://example.com")
    client = signed_in(team_users.owner)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/generations/", HTTP_ACCEPT="text/html").status_code == 200
        return len(captured.captured_queries)

    Placement.objects.create(campaign=campaign, name="P0")
    few = queries()
    Placement.objects.bulk_create(Placement(campaign=campaign, name=f"P{i}", slug=f"many{i:04d}") for i in range(1, 20))
    assert queries() == few


class TestFieldErrors:
    def test_every_fields_errors_are_a_list_of_strings_saying_where_each_belongs(self):
        nested = {"split": [{}, {"url": ["Enter a valid URL."], "weight": ["Too big."]}], "events": {0: ["Bad."]},
                  "name": ["Taken."], "note": "One message."}
        assert field_errors(nested) == {
            "split": ["Item 2: url: Enter a valid URL.", "Item 2: weight: Too big."], "events": ["Item 1: Bad."],
            "name": ["Taken."], "note": ["One message."]}

    def test_detail_stays_one_string_and_a_bare_list_is_about_the_request(self):
        assert field_errors({"detail": "The job as a whole."}) == {"detail": "The job as a whole."}
        assert field_errors(["Not at all."]) == {"non_field_errors": ["Not at all."]}


@pytest.mark.django_db
class TestOneMessagePerFault:
    """A NUL in a field with a rule of its own was two messages: the rule's, then DRF's "Null characters are not
    allowed."; a time zone's quoted the NUL back raw."""

    @pytest.mark.parametrize(("method", "what", "field", "message"), [
        ("post", "campaigns", "name", "A campaign's name is one line of text: no line breaks, tabs or control "
                                      "characters."),
        ("patch", "campaign", "utm_source", "A UTM value is one line of text: no line breaks, tabs or control "
                                            "characters."),
        ("patch", "placement", "name", "A placement's name is one line of text: no line breaks, tabs or control "
                                       "characters."),
        ("patch", "team", "name", "A team's name is one line of text: no line breaks, tabs or control characters."),
        ("patch", "team", "time_zone", "“Europe/Pa\\u0000ris” is not a time zone name, like Europe/Paris or "
                                       "America/New_York."),
        ("patch", "placement", "notes", "Null characters are not allowed."),  # no rule of its own: DRF's says it
    ])
    def test_a_nul_is_answered_with_one_message_that_shows_it_escaped(self, team_users, method, what, field,
                                                                      message):
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        path = {"campaigns": "/api/campaigns/", "campaign": f"/api/campaigns/{campaign.pk}/",
                "placement": f"/api/placements/{placement.pk}/", "team": f"/api/teams/{team_users.team.pk}/"}[what]
        body = {"team": team_users.team.pk, "destination": "https://a.example/"} if method == "post" else {}
        response = getattr(signed_in(team_users.owner), method)(path, {**body, field: "Europe/Pa\x00ris"},
                                                               format="json")
        assert response.status_code == 400 and response.json() == {field: [message]}

    def test_a_length_beside_a_nul_is_another_fault(self):
        from django.core.validators import ProhibitNullCharactersValidator
        from rest_framework.exceptions import ErrorDetail

        too_long = ErrorDetail("Ensure this field has no more than 5 characters.", code="max_length")
        nul = ErrorDetail(ProhibitNullCharactersValidator.message, code=ProhibitNullCharactersValidator.code)
        assert field_errors({"name": [too_long, nul]}) == {"name": [str(too_long), str(nul)]}


@pytest.mark.django_db
class TestFiniteFloatField:
    def test_it_refuses_true_and_false_as_its_integer_and_decimal_neighbours_do(self, team_users):
        # DRF's FloatField read JSON's true as 1.0: a placement scanned from 1 metre, a job at guidance 1.0.
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        placement = Placement.objects.create(campaign=campaign, name="Poster", scan_distance_m=3.0)
        client = signed_in(team_users.owner)
        for value in (True, False):
            response = client.patch(f"/api/placements/{placement.pk}/", {"scan_distance_m": value,
                                                                         "printed_quantity": value}, format="json")
            assert response.status_code == 400
            assert response.json() == {"scan_distance_m": ["A valid number is required."],
                                       "printed_quantity": ["A valid integer is required."]}
        placement.refresh_from_db()
        assert placement.scan_distance_m == 3.0
        assert client.patch(f"/api/placements/{placement.pk}/", {"scan_distance_m": 1},
                            format="json").json()["scan_distance_m"] == 1.0


@pytest.mark.django_db
class TestAsciiNumbers:
    @pytest.mark.parametrize("format", ["json", "multipart"])
    @pytest.mark.parametrize(("name", "value", "message"), [
        ("printed_quantity", "１２３", "A valid integer is required."),  # a model's integer
        ("scan_distance_m", "1.5".translate(FULL_WIDTH), "A valid number is required."),  # a float
        ("latitude", "٣.٥", "A valid number is required."),  # a decimal
        ("campaign", None, "A valid integer is required."),  # an id (`ScopedField`): the placement's own campaign's
        # Python reads an underscore between digits as a grouping mark: printed 1000 times, 10.5 m away, at 10.5°.
        ("printed_quantity", "1_000", "A valid integer is required."),
        ("scan_distance_m", "1_0.5", "A valid number is required."),
        ("latitude", "1_0.5", "A valid number is required."),
    ])
    def test_a_number_in_other_digits_than_asciis_is_refused(self, team_users, format, name, value, message):
        # They were read as the ASCII digits they look like: a placement printed 123 times.
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        value = value or str(campaign.pk).translate(ARABIC_INDIC)
        response = signed_in(team_users.owner).patch(f"/api/placements/{placement.pk}/", {name: value}, format=format)
        assert response.status_code == 400 and response.json() == {name: [message]}
        placement.refresh_from_db()
        assert (placement.printed_quantity, placement.scan_distance_m, placement.latitude) == (None, None, None)

    def test_every_apps_integers_refuse_them(self, team_users):
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        client = signed_in(team_users.owner)
        share = client.post("/api/shares/", {"campaign": campaign.pk, "days": "７"}, format="json")
        assert share.status_code == 400 and share.json() == {"days": ["A valid integer is required."]}
        team = client.patch(f"/api/teams/{team_users.team.pk}/", {"scan_retention_days": "３６５"}, format="json")
        assert team.status_code == 400 and team.json() == {"scan_retention_days": ["A valid integer is required."]}
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        bulk = client.post(f"/api/campaigns/{campaign.pk}/generate/", {
            "placements": [str(placement.pk).translate(FULL_WIDTH)], "prompt": "koi"}, format="json")
        assert bulk.status_code == 400 and bulk.json() == {"placements": ["Item 1: A valid integer is required."]}
        team_users.team.refresh_from_db()
        assert not campaign.shares.exists() and team_users.team.scan_retention_days is None
        assert not GenerationJob.objects.exists()


@pytest.mark.django_db
class TestAsciiDates:
    WRONG_FORMAT = "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."

    @pytest.mark.parametrize("format", ["json", "multipart"])
    @pytest.mark.parametrize("day", ["2026-05-01".translate(FULL_WIDTH), "2026-05-01".translate(ARABIC_INDIC),
                                     "2026-0５-01", "20260501", "2026-W18-5", "2026-5-1"])
    def test_a_date_other_than_yyyy_mm_dd_in_ascii_digits_is_refused(self, team_users, format, day):
        # Django's parse_date, which DRF's DateField reads with, stored them as 2026-05-01.
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        client = signed_in(team_users.owner)
        response = client.patch(f"/api/placements/{placement.pk}/", {"deployed_on": day}, format=format)
        assert response.status_code == 400 and response.json() == {"deployed_on": [self.WRONG_FORMAT]}
        response = client.patch(f"/api/campaigns/{campaign.pk}/", {"starts_on": day, "ends_on": day}, format=format)
        assert response.status_code == 400
        assert response.json() == {"starts_on": [self.WRONG_FORMAT], "ends_on": [self.WRONG_FORMAT]}
        placement.refresh_from_db()
        campaign.refresh_from_db()
        assert placement.deployed_on is campaign.starts_on is campaign.ends_on is None


@pytest.mark.django_db
class TestBriefChoiceField:
    def test_a_refused_choice_quotes_the_value_shortened(self, team_users):
        # 5,000 characters sent to a choice came back whole in its message.
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://a.example/")
        placement = Placement.objects.create(campaign=campaign, name="Poster")
        client = signed_in(team_users.owner)
        refused = f'"{"k" * ECHO_CHARS}…" is not a valid choice.'
        kind = client.patch(f"/api/placements/{placement.pk}/", {"kind": "k" * 5000}, format="json")  # a model's
        assert kind.status_code == 400 and kind.json() == {"kind": [refused]}
        hook = client.post("/api/webhooks/", {"team": team_users.team.pk, "url": "https://hooks.example.com/q",
                                              "events": ["scan.created", "k" * 5000]}, format="json")  # a list's item
        assert hook.status_code == 400 and hook.json() == {"events": [f"Item 2: {refused}"]}
        placement.refresh_from_db()
        assert placement.kind == "poster" and not team_users.team.webhook_endpoints.exists()


def test_every_number_and_choice_a_client_sends_is_read_by_the_apis_own_fields():
    # DRF's own integer, float and decimal fields read "１２３" as 123 and "1_000" as 1000, its date fields
    # "２０２６-０５-０１" as 2026-05-01, and its choice field quoted what was sent whole. What a client sends: a body
    # (its serializer refuses unknown fields) or a query (`...QuerySerializer`).
    from rest_framework import serializers

    from qartsite.api import KnownFieldsOnly

    drfs_own = (serializers.IntegerField, serializers.FloatField, serializers.DecimalField, serializers.ChoiceField,
                serializers.DateField, serializers.DateTimeField)
    sent = [cls for cls in all_serializers()
            if issubclass(cls, KnownFieldsOnly) or cls.__name__.endswith("QuerySerializer")]
    assert len(sent) > 10
    for serializer_class in sent:
        for name, field in serializer_class(context={"request": None}).fields.items():
            if field.read_only:
                continue
            parts = (field, getattr(field, "child", None), getattr(field, "pk_field", None),
                     getattr(getattr(field, "child_relation", None), "pk_field", None))
            assert not any(type(part) in drfs_own for part in parts), f"{serializer_class.__name__}.{name}"


def test_every_file_a_client_sends_is_one_file():
    # DRF's FileField took the last of several parts under its name and dropped the others without a word.
    from rest_framework import serializers

    from qartsite.api import OneFileField

    files = [(serializer_class.__name__, name, field) for serializer_class in all_serializers()
             for name, field in serializer_class(context={"request": None}).fields.items()
             if isinstance(field, serializers.FileField) and not field.read_only]
    assert {(cls, name) for cls, name, _ in files} >= {("PlacementImportSerializer", "file"),
                                                       ("GenerationSerializer", "picture"),
                                                       ("GenerationSerializer", "logo")}
    assert [(cls, name) for cls, name, field in files if not isinstance(field, OneFileField)] == []


@pytest.mark.django_db
class TestErrorsAnswerInJson:
    """An error of the schema or the docs page is JSON as every API error is: the schema's YAML renderer drew it as
    "detail:\n  string: Invalid token.\n  code: authentication_failed", the docs page as bare "401 Unauthorized"."""

    @pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
    def test_a_bad_token_is_answered_in_json(self, path):
        response = APIClient().get(path, HTTP_AUTHORIZATION="Token nope")
        assert response.status_code == 401 and response["Content-Type"] == "application/json"
        assert response.json() == {"detail": "Invalid token."}

    @pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
    def test_a_wrong_method_is_answered_in_json(self, team_users, path):
        response = signed_in(team_users.owner).post(path)
        assert response.status_code == 405 and response["Content-Type"] == "application/json"
        assert response.json() == {"detail": 'Method "POST" not allowed.'}


@pytest.mark.django_db
class TestNotAcceptableAnswersInJson:
    """An Accept header no renderer takes: the 406 is JSON wherever it is asked, the schema and the docs included."""

    def test_the_schema_and_the_docs_say_what_they_answer_in_json(self, client):
        for path, types in (("/api/schema/", "application/vnd.oai.openapi, application/yaml, "
                                              "application/vnd.oai.openapi+json, application/json"),
                            ("/api/docs/", "text/html")):
            response = client.get(path, HTTP_ACCEPT="image/png")
            assert response.status_code == 406, path
            assert response["Content-Type"] == "application/json", path
            assert response.json() == {
                "detail": f"This answers in {types}; the Accept header asked for “image/png”."}, path

    def test_what_each_answers_in_is_still_served(self, client):
        assert client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["openapi"].startswith("3.")
        assert client.get("/api/schema/", HTTP_ACCEPT="application/yaml").content.startswith(b"openapi: ")
        assert client.get("/api/docs/", HTTP_ACCEPT="text/html").status_code == 200
