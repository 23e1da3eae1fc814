"""The API's parsers (qartsite.parsers): DRF's JSON parser, with a body nested too deeply or a number no field can hold
answered as a 400; its multipart parser, with a file name too long to read told so; its form parser, with JSON sent as
a form told so; and unknown API addresses answered in JSON (qartsite.views.not_found)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.generator.factories import job_with_ranks


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["a" * 996 + ".png", "\u00e9" * 500 + ".csv"])
def test_a_file_name_too_long_to_read_is_one_message_in_the_api(team_users, name):
    # Django refuses a part's headers over 1,024 bytes: the API said "Multipart form parse error - Request max total
    # header size exceeded." Generations and the placements' import alike; nothing is stored.
    from django.core.files.base import ContentFile

    from campaigns.models import Campaign, Placement
    from generator.models import GenerationJob
    from qartsite.parsers import FILE_NAME_TOO_LONG

    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
    client = APIClient()
    client.force_login(team_users.owner)
    for url, field in (("/api/generations/", "picture"), (f"/api/campaigns/{campaign.pk}/import-placements/", "file")):
        response = client.post(url, {field: ContentFile(b"name,kind\nGate,poster\n", name=name)}, format="multipart")
        assert response.status_code == 400 and response.json() == {"detail": FILE_NAME_TOO_LONG}, url
    assert not GenerationJob.objects.exists() and not Placement.objects.exists()


@pytest.mark.django_db
class TestJSONParser:
    @pytest.mark.parametrize("depth", [50_000, 100_000])
    def test_it_answers_json_nested_too_deeply_with_one_message(self, team_users, depth):
        client = APIClient()
        client.force_login(team_users.owner)
        body = "[" * depth + "]" * depth  # 100 KB at most
        response = client.post("/api/generations/", body, content_type="application/json")
        assert response.status_code == 400
        assert response.json() == {"detail": "JSON parse error - the body is nested too deeply."}

    def test_it_counts_the_nesting_outside_strings_only(self, team_users):
        from qartsite.parsers import MAX_DEPTH, too_deep

        assert too_deep(b"[" * (MAX_DEPTH + 1)) and not too_deep(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)
        assert not too_deep(b'{"a": "' + b"[" * 5000 + b'"}') and too_deep(b'["\\", ' + b"[" * 5000)
        client = APIClient()
        client.force_login(team_users.owner)
        body = '{"prompt": "' + "[" * 5000 + '", "content": "https://qart.example/r/x", "steps": 0}'
        response = client.post("/api/generations/", body, content_type="application/json")
        assert response.status_code == 400 and "Steps must be between 1 and 150" in str(response.json())

    def test_it_refuses_a_key_named_twice_in_one_object(self, team_users):
        # Python kept the last one without a word: this made a campaign named "Winter" that sends people to b.example.
        from campaigns.models import Campaign

        client = APIClient()
        client.force_login(team_users.owner)
        body = '{"name": "Winter", "destination": "https://a.example/", "destination": "https://b.example/"}'
        response = client.post("/api/campaigns/", body, content_type="application/json")
        assert response.status_code == 400 and not Campaign.objects.exists()
        assert response.json() == {"detail": "JSON parse error - the key “destination” appears twice in one object: "
                                              "send each key once."}
        nested = '{"name": "Winter", "destination": "https://a.example/", "rules": {"split": 1, "split": 2}}'
        assert "“split” appears twice" in client.post("/api/campaigns/", nested,
                                                     content_type="application/json").json()["detail"]
        # DRF's own answers stand: a constant it refuses, and a body that is no JSON
        for body, said in (('{"name": NaN}', "Out of range float values are not JSON compliant: 'NaN'"),
                           ("{", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")):
            response = client.post("/api/campaigns/", body, content_type="application/json")
            assert response.json() == {"detail": f"JSON parse error - {said}"}

    def test_it_reads_a_body_that_starts_with_a_byte_order_mark(self, team_users):
        client = APIClient()
        client.force_login(team_users.owner)
        body = b"\xef\xbb\xbf" + b'{"name": "Summer", "destination": "https://shop.example.com/"}'
        response = client.post("/api/campaigns/", body, content_type="application/json")
        assert response.status_code == 201, response.json()
        assert response.json()["name"] == "Summer"

    def test_a_body_that_is_not_utf8_is_told_so_in_words(self, team_users):
        client = APIClient()
        client.force_login(team_users.owner)
        body = '{"name": "Summer"}'.encode("utf-16")
        response = client.post("/api/campaigns/", body, content_type="application/json")
        assert response.status_code == 400
        assert response.json() == {"detail": "JSON parse error - the body is not UTF-8 text (send JSON as UTF-8)."}

    def test_it_still_reads_ordinary_json(self, team_users):
        client = APIClient()
        client.force_login(team_users.owner)
        response = client.post("/api/generations/", {"prompt": "p", "content": "https://qart.example/r/x", "steps": 0},
                               format="json")
        assert response.status_code == 400 and "Steps must be between 1 and 150" in str(response.json())

    @pytest.mark.parametrize(("body", "message"), [
        # 1e400 reads as infinity and 2**64 as an int no database compares with an id: an OverflowError, a 500.
        ('{"name": "n", "destination": "https://e.com", "team": 1e400}', "a number is out of range"),
        ('{"name": "n", "destination": "https://e.com", "team": 29524184556031959040}', "a number is out of range"),
        ('{"name": "n", "destination": "https://e.com", "team": [1, {"x": -1e999}]}', "a number is out of range"),
        # Python reads no int of more than 4,300 digits, and said so as "use sys.set_int_max_str_digits()".
        pytest.param('{"name": "n", "destination": "https://e.com", "team": -%s}' % ("9" * 5000),
                     "a number is out of range", id="5000-digits"),
        # Python's parser reads "\ud800" as a lone surrogate: every message that repeats it (an unknown field's
        # name, a choice) could not be written as UTF-8, and the answer was a 500.
        ('{"name": "n", "destination": "https://e.com", "\\ud800": 1}', "unpaired surrogate"),
        ('{"name": "n", "destination": "https://e.com", "rules": {"\\udfff": 1}}', "unpaired surrogate"),
        ('{"name": "\\ud800", "destination": "https://e.com", "archived": "x\\udc00"}', "unpaired surrogate"),
    ])
    def test_it_answers_a_value_python_reads_but_cannot_use_with_one_message(self, team_users, body, message):
        client = APIClient()
        client.force_login(team_users.owner)
        response = client.post("/api/campaigns/", body, content_type="application/json")
        assert response.status_code == 400
        assert message in response.json()["detail"]

    def test_a_surrogate_pair_is_a_character(self, team_users):
        from qartsite.parsers import text_encodable

        assert text_encodable({"a": ["\U0001f600", {"\u00e9": "x"}]}) and not text_encodable([{"k": "\ud800"}])
        client = APIClient()
        client.force_login(team_users.owner)
        body = '{"name": "Smile \\ud83d\\ude00", "destination": "https://e.com"}'
        response = client.post("/api/campaigns/", body, content_type="application/json")
        assert response.status_code == 201 and response.json()["name"] == "Smile \U0001f600"

    def test_numbers_within_64_bits_pass(self):
        from qartsite.parsers import numbers_in_range

        assert numbers_in_range({"a": [2**63 - 1, -(2**63 - 1), 1.5e300, True, None, "1e400"]})
        assert not numbers_in_range([2**63]) and not numbers_in_range({"x": float("nan")})


@pytest.mark.django_db
class TestFormParser:
    FORM = "application/x-www-form-urlencoded"  # what `curl -d` sends without -H

    @pytest.mark.parametrize("body", ['{"name": "Summer", "destination": "https://shop.example.com/"}',
                                      '  [{"name": "Summer"}]'])
    def test_it_answers_json_sent_as_a_form_with_the_header_to_send(self, team_users, body):
        # The whole JSON was read as one unknown field's name, beside "name" and "destination" being required.
        from campaigns.models import Campaign
        from qartsite.parsers import JSON_AS_FORM

        client = APIClient()
        client.force_authenticate(team_users.owner)
        response = client.post("/api/campaigns/", body, content_type=self.FORM)
        assert response.status_code == 400 and response.json() == {"detail": JSON_AS_FORM}
        assert not Campaign.objects.exists()
        # A form is still a form.
        form = client.post("/api/campaigns/", "name=Summer&destination=https%3A%2F%2Fshop.example.com%2F",
                           content_type=self.FORM)
        assert form.status_code == 201 and Campaign.objects.get().name == "Summer"

    @pytest.mark.parametrize("name", ["%FF%FE", "caf%E9", b"caf\xe9"])
    def test_it_refuses_a_form_that_is_not_utf8_text(self, team_users, name):
        # Each bad byte was read as U+FFFD: a campaign named "\ufffd\ufffd" was made, 201.
        from campaigns.models import Campaign

        client = APIClient()
        client.force_authenticate(team_users.owner)
        body = (name if isinstance(name, bytes) else name.encode()) + b"&destination=https%3A%2F%2Fshop.example.com%2F"
        response = client.post("/api/campaigns/", b"name=" + body, content_type=self.FORM)
        assert response.status_code == 400 and not Campaign.objects.exists()
        assert response.json() == {"detail": "Form parse error - the form is not UTF-8 text (send it as UTF-8)."}
        # Latin-1 that says so is read as Latin-1
        response = client.post("/api/campaigns/", b"name=" + body, content_type=self.FORM + "; charset=latin-1")
        assert response.status_code == 201, response.json()

    def test_it_answers_so_for_an_action_that_reads_no_body_and_for_the_import(self, team_users):
        # `curl -d '{}'` to cancel answered {"{}": ["This action reads no body: send none."]}.
        from campaigns.models import Campaign
        from qartsite.parsers import JSON_AS_FORM

        job = job_with_ranks(team_users.team, team_users.owner)  # queued: cancel would take it
        campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example/")
        client = APIClient()
        client.force_authenticate(team_users.owner)
        for url in (f"/api/generations/{job.pk}/cancel/", f"/api/campaigns/{campaign.pk}/import-placements/"):
            response = client.post(url, "{}", content_type=self.FORM)
            assert response.status_code == 400 and response.json() == {"detail": JSON_AS_FORM}, url
        job.refresh_from_db()
        assert not job.cancel_requested and not campaign.placements.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/nope/", "/api/campaigns/1/nope/", "/api/generations/1/candidates/"])
def test_an_unknown_api_address_is_answered_in_json(team_users, path):
    client = APIClient()
    client.force_login(team_users.owner)
    response = client.get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}
