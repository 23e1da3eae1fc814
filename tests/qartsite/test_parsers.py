"""The API's JSON parser (qartsite.parsers): DRF's, with a body nested too deeply answered as a 400."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


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

    def test_it_still_reads_ordinary_json(self, team_users):
        client = APIClient()
        client.force_login(team_users.owner)
        response = client.post("/api/generations/", {"prompt": "p", "content": "https://qart.example/r/x", "steps": 0},
                               format="json")
        assert response.status_code == 400 and "Steps must be between 1 and 150" in str(response.json())
