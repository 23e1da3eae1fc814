"""Shared by the qartsite tests: the API's OpenAPI schema, generated once per module; the admin's cast (every member
staff) and a row of every team-owned model for each of two teams."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return APIClient().get("/api/schema/?format=json").json()


@pytest.fixture
def cast(team_users):
    from tests.qartsite.test_admin import make_staff

    make_staff(team_users.owner, team_users.teammate, team_users.viewer, team_users.outsider)
    return team_users


@pytest.fixture
def rows(cast):
    from tests.qartsite.test_admin import team_rows

    return {"ours": team_rows(cast.team, cast.owner), "theirs": team_rows(cast.other_team, cast.outsider)}
