from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from campaigns import links


class TestValidateDestination:
    @pytest.mark.parametrize("url", ["https://example.com", "http://shop.example.co.uk/offer?x=1#top",
                                     "https://localhost:8443/x"])
    def test_it_accepts_http_urls_with_a_host(self, url):
        links.validate_destination(url)

    @pytest.mark.parametrize(
        "url, message",
        [
            ("javascript:alert(1)", "http:// or https://"),
            ("data:text/html,hi", "http:// or https://"),
            ("ftp://example.com/file", "http:// or https://"),
            ("//evil.example/x", "http:// or https://"),
            ("/relative/path", "http:// or https://"),
            ("https://", "host name"),
            ("https://nodot", "host name"),
            ("https://user:pw@example.com", "user name or password"),
            ("https://example.com/a b", "spaces"),
            ("https://example.com/\nSet-Cookie:x", "spaces"),
        ],
    )
    def test_it_refuses_anything_else(self, url, message):
        with pytest.raises(ValidationError) as exc:
            links.validate_destination(url)
        assert message in str(exc.value)


def test_slugs_are_base62_and_unguessable():
    slugs = {links.new_slug() for _ in range(2000)}
    assert len(slugs) == 2000
    assert all(len(s) == links.SLUG_LENGTH and set(s) <= set(links.BASE62) for s in slugs)


def test_utm_parameters_are_added_without_overriding_the_destinations_own():
    url = links.with_utm("https://example.com/p?utm_source=news&x=1",
                         {"utm_source": "qr", "utm_medium": "print", "utm_content": ""})
    assert url == "https://example.com/p?utm_source=news&x=1&utm_medium=print"


def test_addresses_are_hashed_with_a_key():
    a = links.anonymise_address("203.0.113.7", "k1")
    assert a == links.anonymise_address("203.0.113.7", "k1") and len(a) == 16
    assert a != links.anonymise_address("203.0.113.7", "k2") and "203" not in a


@pytest.mark.parametrize(
    "agent, device_class, is_bot",
    [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.4 Mobile/15E148 Safari/604.1", "mobile", False),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile "
         "Safari/537.36", "mobile", False),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 "
         "Safari/537.36", "desktop", False),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "bot", True),
        ("WhatsApp/2.23.20.0 A", "bot", True),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "bot", True),
        ("", "bot", True),
    ],
)
def test_user_agents_are_classified(agent, device_class, is_bot):
    _, _, got_class, got_bot = links.describe_agent(agent)
    assert (got_class, got_bot) == (device_class, is_bot)
