"""Fixtures shared by the campaign tests: the owner's team's spring campaign."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign


@pytest.fixture
def campaign(team_users) -> Campaign:
    return Campaign.objects.create(team=team_users.team, name="Spring Sale", destination="https://shop.example.com/")
