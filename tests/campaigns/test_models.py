"""Campaign models: a placement's short link follows the site's one rule for absolute links (qartsite.site)."""

from __future__ import annotations

import pytest

from campaigns.models import Campaign, Placement

pytestmark = pytest.mark.django_db


@pytest.fixture
def placement(team_users) -> Placement:
    campaign = Campaign.objects.create(team=team_users.team, name="Spring", destination="https://shop.example.com/")
    return Placement.objects.create(campaign=campaign, name="Station poster")


class TestShortUrl:
    def test_it_uses_the_configured_site_root_on_any_host(self, placement, rf, settings):
        settings.SITE_ROOT = "https://go.example"
        assert placement.short_url(rf.get("/")) == f"https://go.example/r/{placement.slug}"

    def test_it_uses_the_request_host_without_a_site_root(self, placement, rf, settings):
        settings.SITE_ROOT = ""
        assert placement.short_url(rf.get("/", secure=True)) == f"https://testserver/r/{placement.slug}"
