from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError

from campaigns.models import Campaign, Placement, ScanEvent

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")


@pytest.fixture
def placement(team_users) -> Placement:
    campaign = Campaign.objects.create(team=team_users.team, name="Spring Sale",
                                       destination="https://shop.example.com/spring?ref=qr")
    return Placement.objects.create(campaign=campaign, name="Station Poster", location="Platform 2")


@pytest.mark.django_db
class TestShortLink:
    def test_it_redirects_to_the_destination_with_utm_and_records_one_scan(self, client, placement):
        response = client.get(f"/r/{placement.slug}", HTTP_USER_AGENT=IPHONE, HTTP_ACCEPT_LANGUAGE="de-DE,de",
                              REMOTE_ADDR="198.51.100.23", HTTP_REFERER="https://t.co/x")
        assert response.status_code == 302
        target = urlsplit(response["Location"])
        assert (target.scheme, target.netloc, target.path) == ("https", "shop.example.com", "/spring")
        assert parse_qs(target.query) == {"ref": ["qr"], "utm_source": ["qr"], "utm_medium": ["print"],
                                          "utm_campaign": ["spring-sale"], "utm_content": ["station-poster"]}
        assert response["Cache-Control"] == "no-store"
        event = ScanEvent.objects.get()
        assert event.placement == placement and not event.is_bot
        assert (event.os, event.device_class, event.browser) == ("iOS", "mobile", "Mobile Safari")
        assert event.accept_language == "de-DE,de" and event.referer == "https://t.co/x"
        assert event.client_hash and "198.51" not in event.client_hash

    def test_a_placement_override_wins(self, client, placement):
        placement.destination_override = "https://other.example.com/"
        placement.save()
        assert client.get(f"/r/{placement.slug}")["Location"].startswith("https://other.example.com/?utm_source")

    def test_head_requests_are_not_counted(self, client, placement):
        assert client.head(f"/r/{placement.slug}").status_code == 302
        assert ScanEvent.objects.count() == 0

    def test_link_preview_bots_are_flagged_not_counted_as_people(self, client, placement):
        client.get(f"/r/{placement.slug}", HTTP_USER_AGENT="Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)")
        assert ScanEvent.objects.get().is_bot is True

    def test_unknown_and_inactive_slugs_get_a_friendly_404(self, client, placement):
        response = client.get("/r/doesNotExist")
        assert response.status_code == 404 and "isn't active" in response.content.decode()
        placement.active = False
        placement.save()
        assert client.get(f"/r/{placement.slug}").status_code == 404
        placement.active = True
        placement.save()
        placement.campaign.archived = True
        placement.campaign.save()
        assert client.get(f"/r/{placement.slug}").status_code == 404
        assert ScanEvent.objects.count() == 0

    def test_it_never_redirects_to_anything_from_the_request(self, client, placement):
        response = client.get(f"/r/{placement.slug}?next=https://evil.example/&url=https://evil.example/",
                              HTTP_HOST="testserver", HTTP_REFERER="https://evil.example/")
        assert "evil" not in response["Location"]

    def test_a_deactivated_link_stops_at_once_in_this_process(self, client, placement):
        assert client.get(f"/r/{placement.slug}").status_code == 302  # now cached
        Placement.objects.filter(pk=placement.pk).update(active=False)  # bypasses save(): cache still warm
        assert client.get(f"/r/{placement.slug}").status_code == 302
        placement.refresh_from_db()
        placement.save()  # any save clears the cache
        assert client.get(f"/r/{placement.slug}").status_code == 404

    def test_other_methods_are_refused(self, client, placement):
        assert client.post(f"/r/{placement.slug}").status_code == 405
        assert ScanEvent.objects.count() == 0

    def test_it_keeps_working_when_redis_is_down(self, client, placement, settings):
        settings.RQ_QUEUES = {name: {"URL": "redis://127.0.0.1:1/0"} for name in ("default", "gpu")}
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        assert client.get(f"/r/{placement.slug}").status_code == 302
        assert ScanEvent.objects.count() == 1

    def test_the_client_address_comes_from_the_proxy_only_when_trusted(self, client, placement, settings):
        client.get(f"/r/{placement.slug}", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
        settings.QART = {**settings.QART, "TRUST_PROXY": True, "COUNTRY_HEADER": "CF-IPCountry"}
        client.get(f"/r/{placement.slug}", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1",
                   HTTP_CF_IPCOUNTRY="nl")
        untrusted, trusted = ScanEvent.objects.order_by("id")
        assert untrusted.client_hash != trusted.client_hash and untrusted.country == ""
        assert trusted.country == "NL"


@pytest.mark.django_db
class TestDestinationsAreValidatedOnSave:
    @pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.com", "https://", "/local"])
    def test_campaign_destinations(self, team_users, url):
        with pytest.raises(ValidationError):
            Campaign.objects.create(team=team_users.team, name="Bad", destination=url)
        assert Campaign.objects.count() == 0

    def test_placement_overrides(self, placement):
        placement.destination_override = "javascript:alert(1)"
        with pytest.raises(ValidationError):
            placement.save()

    def test_slugs_are_assigned_once_and_unique(self, placement):
        slug = placement.slug
        placement.name = "Renamed"
        placement.save()
        placement.refresh_from_db()
        assert placement.slug == slug and len(slug) == 8
        second = Placement.objects.create(campaign=placement.campaign, name="Flyer")
        assert second.slug != slug
