from __future__ import annotations

import hashlib
import hmac
from datetime import date
from urllib.parse import parse_qsl, urlsplit

import pytest
import qrcode
from django.core.exceptions import ValidationError

from campaigns import links
from tests.clients import IPHONE


class TestValidateDestination:
    @pytest.mark.parametrize("url", ["https://example.com", "http://shop.example.co.uk/offer?x=1#top",
                                     "https://localhost:8443/x", "https://bücher.de/", "https://xn--bcher-kva.de/",
                                     "https://1.2.3.4/x", "https://example.com.:443/", "https://my_host.example.com/",
                                     "https://example.com:/", "https://a-b.example.com:65535/"])
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
            # Addresses a printed code would lead nowhere with: a port out of range, an empty label, a label that
            # starts or ends with a hyphen, a host that turns its text round (shown as "exaelpm.com")
            ("https://example.com:99999/", "port must be a number from 1 to 65535"),
            ("https://example.com:0/", "port must be a number from 1 to 65535"),
            ("https://example.com:http/", "port must be a number from 1 to 65535"),
            ("https://example..com/", "host name is not valid"),
            ("https://-bad-.com/", "host name is not valid"),
            ("https://exa\u202emple.com/", "host name is not valid"),
            ("https://" + "a" * 64 + ".com/", "host name is not valid"),
        ],
    )
    def test_it_refuses_anything_else(self, url, message):
        with pytest.raises(ValidationError) as exc:
            links.validate_destination(url)
        assert message in str(exc.value)


    def test_it_names_the_fix_for_a_host_and_path_without_their_scheme(self):
        # The API, strict, says what to send; the pages' forms add https:// themselves (tests/campaigns/test_forms.py).
        with pytest.raises(ValidationError) as exc:
            links.validate_destination("shop.example.com/winter")
        assert exc.value.messages == ["The destination must start with http:// or https://, like "
                                      "https://shop.example.com/winter."]


class TestAssumedScheme:
    @pytest.mark.parametrize("typed, address", [
        ("shop.example.com/winter", "https://shop.example.com/winter"),
        ("  www.example.com ", "https://www.example.com"),
        ("shop.example.com:8080/x?a=1", "https://shop.example.com:8080/x?a=1"),
        ("1.2.3.4/x", "https://1.2.3.4/x"),
        ("http://shop.example.com/", "http://shop.example.com/"),
    ])
    def test_a_host_and_path_is_read_as_its_https_address(self, typed, address):
        assert links.with_assumed_scheme(typed) == address

    @pytest.mark.parametrize("typed", ["javascript:alert(1)", "mailto:a@example.com", "localhost:8000", "/offer",
                                       "banana", "shop.example.com/a b", "example..com/x", "ftp://example.com/",
                                       "user:pw@example.com/", ""])
    def test_anything_else_is_left_for_the_destination_check(self, typed):
        assert links.with_assumed_scheme(typed) == typed.strip()


class TestWebAddressProblem:
    """Content meant as a web address: the form's and the API's check (tests/generator/test_forms.py has the cases a
    person types)."""

    def test_only_the_codes_capacity_limits_its_length(self):
        # A campaign destination stops at 2,000 characters; a code's content at what the code holds, checked apart.
        assert links.web_address_problem("https://example.com/" + "x" * 2100) == ""

    @pytest.mark.parametrize("content", ["https://example.com\n", "www.example.com\tmenu"])
    def test_whitespace_of_any_kind_is_a_space(self, content):
        assert "contains a space" in links.web_address_problem(content)


def test_slugs_are_unguessable_capitals_free_of_look_alike_characters():
    slugs = {links.new_slug() for _ in range(2000)}
    assert len(slugs) == 2000
    assert all(len(s) == links.SLUG_LENGTH and set(s) <= set(links.SLUG_ALPHABET) for s in slugs)
    # Typed back from a poster: no 0 and O, no 1 and I; capitals and digits only, all in QR's alphanumeric mode
    assert not set("0O1I") & set(links.SLUG_ALPHABET) and len(set(links.SLUG_ALPHABET)) == 32
    assert set(links.SLUG_ALPHABET) <= links.QR_ALPHANUMERIC
    assert set("".join(slugs)) == set(links.SLUG_ALPHABET)  # every one of them in use
    # At least as many slugs as the mixed-case 8 characters gave, and a length no such old slug has
    assert len(links.SLUG_ALPHABET) ** links.SLUG_LENGTH >= 56 ** 8 and links.SLUG_LENGTH != 8


def qr_version(text: str) -> int:
    """The version the `qrcode` package chooses at level H (as `generator.core.codes.qr.encode` does)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_H)
    code.add_data(text)
    return code.best_fit()


class TestCodeLink:
    def test_it_writes_host_and_path_in_capitals_and_the_code_is_a_version_smaller(self):
        link = "https://go.acme-marketing.com/r/K7QW2M9XHT"
        assert links.code_link(link) == "https://GO.ACME-MARKETING.COM/R/K7QW2M9XHT"
        assert (qr_version(link), qr_version(links.code_link(link))) == (5, 4)

    def test_the_scheme_in_capitals_too_when_the_team_asks_makes_more_codes_smaller(self):
        link = "https://qart.example/r/K7QW2M9XHT"
        assert links.code_link(link, capital_scheme=True) == "HTTPS://QART.EXAMPLE/R/K7QW2M9XHT"
        assert (qr_version(link), qr_version(links.code_link(link, capital_scheme=True))) == (4, 3)
        assert links.code_link("http://127.0.0.1:8140/r/K7QW2M9XHT", True) == "HTTP://127.0.0.1:8140/R/K7QW2M9XHT"

    @pytest.mark.parametrize("link", [
        "https://qart.example/r/AbC12345",  # an old mixed-case slug: its codes keep their text
        "https://my_host.example/r/K7QW2M9XHT",  # an underscore: no alphanumeric host
        "https://xn--bcher-kva.example/r/K7QW2M9XHT",  # an internationalised name: phones would show it as ASCII
        "https://[2001:db8::1]/r/K7QW2M9XHT",  # brackets
        "https://qart.example/qart/r/K7QW2M9XHT",  # a site prefix a proxy may route by case
        "https://qart.example/r/K7QW2M9XHT?src=poster",
    ])
    def test_it_keeps_todays_text_where_capitals_cannot_be_written_or_would_change_the_link(self, link):
        assert links.code_link(link) == link == links.code_link(link, capital_scheme=True)


class TestCapitalisedSlug:
    def test_a_new_slug_typed_in_lower_case_is_read_in_capitals(self):
        assert links.capitalised_slug("k7qw2m9xht") == links.capitalised_slug("K7qw2M9xHT") == "K7QW2M9XHT"

    @pytest.mark.parametrize("slug", ["K7QW2M9XHT", "abc23456", "AbC23456", "k7qw2m9xh", "k7qw2m9xhto", "k7qw2m9xh1"])
    def test_an_old_slugs_length_a_new_slug_as_it_is_or_a_letter_no_new_slug_has_is_no_new_slug(self, slug):
        # 8 characters is an old slug's length: never folded, two old slugs may differ only in case
        assert links.capitalised_slug(slug) == ""


def test_utm_parameters_are_added_without_overriding_the_destinations_own():
    url = links.with_utm("https://example.com/p?utm_source=news&x=1",
                         {"utm_source": "qr", "utm_medium": "print", "utm_content": ""})
    assert url == "https://example.com/p?utm_source=news&x=1&utm_medium=print"


def test_utm_parameters_keep_the_destinations_own_query_byte_for_byte():
    url = links.with_utm("https://example.com/s?q=red%20shoes&a=1+2&e=&b=%2F#top", {"utm_source": "qr code"})
    assert url == "https://example.com/s?q=red%20shoes&a=1+2&e=&b=%2F&utm_source=qr%20code#top"
    assert links.with_utm("https://example.com/", {"utm_source": "qr"}) == "https://example.com/?utm_source=qr"
    assert links.with_utm("https://example.com/?", {"utm_source": "qr"}) == "https://example.com/?utm_source=qr"
    assert links.with_utm("https://example.com/p?x=%20", {"utm_source": ""}) == "https://example.com/p?x=%20"


class TestScannerQuery:
    DESTINATION = "https://shop.example.com/s?utm_source=qr&q=red%20shoes#offer"

    def test_it_adds_the_scanners_parameters_before_the_fragment_and_the_destinations_own_win(self):
        url = links.with_scanner_query(self.DESTINATION, "utm_source=poster&x=1&tag=a&tag=b&empty=")
        assert url == "https://shop.example.com/s?utm_source=qr&q=red%20shoes&x=1&tag=a&tag=b&empty=#offer"

    def test_it_encodes_what_it_passes_on(self):
        url = links.with_scanner_query("https://shop.example.com/", "name=J%C3%BCrgen+M&sum=1%2B1&amp=%26x%3D1")
        assert url == "https://shop.example.com/?name=J%C3%BCrgen%20M&sum=1%2B1&amp=%26x%3D1"
        parts = urlsplit(url)
        assert parse_qsl(parts.query) == [("name", "Jürgen M"), ("sum", "1+1"), ("amp", "&x=1")]

    @pytest.mark.parametrize("query", ["next=https://evil.example/", "x=%23@evil.example", "@evil.example/",
                                       "x=/../../evil", "x=%0d%0aLocation:%20https://evil.example/",
                                       "%3F%23=//evil.example"])
    def test_it_never_changes_the_destinations_scheme_host_or_path(self, query):
        url = links.with_scanner_query(self.DESTINATION, query)
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "shop.example.com", "/s",
                                                                            "offer")
        assert not any(c in url for c in "\r\n ")
        assert parts.query.startswith("utm_source=qr&q=red%20shoes&")
        assert len(parse_qsl(parts.query, keep_blank_values=True)) == 3

    def test_without_a_query_or_with_only_nameless_parameters_it_is_the_destination(self):
        assert links.with_scanner_query(self.DESTINATION, "") == self.DESTINATION
        assert links.with_scanner_query(self.DESTINATION, "=x&&") == self.DESTINATION

    def test_a_query_that_would_make_the_url_too_long_is_dropped_whole(self):
        room = links.MAX_PASSED_URL - len("https://shop.example.com/?x=")
        assert links.with_scanner_query("https://shop.example.com/", "x=" + "a" * room).endswith("a" * room)
        assert links.with_scanner_query("https://shop.example.com/", "x=" + "a" * (room + 1)) == (
            "https://shop.example.com/")
        # Encoding makes it longer than the query sent: still dropped, not cut.
        assert links.with_scanner_query("https://shop.example.com/", "x=" + "+" * 1500) == (
            "https://shop.example.com/")


class TestVisitorKey:
    ADDRESS, AGENT, SECRET, TEAM = "203.0.113.7", "Mozilla/5.0 (iPhone)", "s3cret", 1
    MONDAY, TUESDAY = date(2026, 3, 2), date(2026, 3, 3)

    def key(self, address=ADDRESS, agent=AGENT, secret=SECRET, day=MONDAY, team=TEAM) -> str:
        return links.visitor_key(address, agent, secret, day, team)

    def test_it_is_the_same_for_one_visitor_on_one_day(self):
        assert self.key() == self.key() and len(self.key()) == 32

    def test_it_differs_across_days_so_a_visitor_cannot_be_followed(self):
        assert self.key(day=self.MONDAY) != self.key(day=self.TUESDAY)

    def test_it_tells_visitors_behind_one_address_apart_by_their_agent(self):
        assert self.key(agent="Mozilla/5.0 (Android)") != self.key()

    def test_it_depends_on_the_secret(self):
        assert self.key(secret="other") != self.key()

    def test_it_differs_from_team_to_team_so_two_teams_cannot_join_their_exports(self):
        assert self.key(team=2) != self.key(team=1) == self.key(team=1)
        assert self.key(team=12, address="3.0.113.7") != self.key(team=1, address="23.0.113.7")  # no run-together

    def test_it_never_equals_a_hash_of_the_address_alone(self):
        address = self.ADDRESS.encode()
        hashes = [hashlib.new(name, address).hexdigest() for name in ("md5", "sha1", "sha256", "sha512")]
        hashes += [hmac.new(self.SECRET.encode(), address, hashlib.sha256).hexdigest(),
                   hmac.new(self.SECRET.encode(), address, hashlib.md5).hexdigest()]
        for day in (self.MONDAY, self.TUESDAY):
            day_key = hmac.new(self.SECRET.encode(), f"visitor:{day.isoformat()}".encode(), hashlib.sha256).digest()
            hashes.append(hmac.new(day_key, address, hashlib.sha256).hexdigest())
            key = self.key(day=day)
            assert "203" not in key and all(key[:16] not in digest for digest in hashes)


@pytest.mark.parametrize(
    "agent, device_class, is_bot",
    [
        (IPHONE, "mobile", False),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile "
         "Safari/537.36", "mobile", False),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 "
         "Safari/537.36", "desktop", False),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "bot", True),
        ("WhatsApp/2.23.20.0 A", "bot", True),
        ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "bot", True),
        ("", "bot", True),
        # Non-browser clients: ua-parser calls most of them browsers.
        ("curl/8.5.0", "bot", True),
        ("python-requests/2.31.0", "bot", True),
        ("Go-http-client/1.1", "bot", True),
        ("Wget/1.21.4", "bot", True),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 "
         "Safari/537.36", "bot", True),
        ("okhttp/4.12.0", "bot", True),
        ("Python/3.11 aiohttp/3.9.3", "bot", True),
        # Link previews.
        ("Slackbot 1.0 (+https://api.slack.com/robots)", "bot", True),
        ("WhatsApp/2.2407.3 i", "bot", True),
        ("Twitterbot/1.0", "bot", True),
        ("TelegramBot (like TwitterBot)", "bot", True),
        ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "bot", True),
        ("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", "bot", True),
        ("Mozilla/5.0 (compatible; SkypeUriPreview Preview/0.5)", "bot", True),
        ("Iframely/1.3.1 (+https://iframely.com/docs/about)", "bot", True),
        ("Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)", "bot", True),
        # Teams', Outlook's and Bing's previews: Edge's user agent and a token (ua-parser: a desktop Edge).
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
         "Safari/537.36 Edg/120.0.0.0 MicrosoftPreview/2.0 +https://aka.ms/MicrosoftPreview", "bot", True),
        ("Mozilla/5.0 (compatible; MicrosoftPreview/2.0; +https://aka.ms/MicrosoftPreview)", "bot", True),
        ("Quora Link Preview/1.0 (http://www.quora.com)", "bot", True),
        ("Google-Safety", "bot", True),  # Google's checks of links in mail and elsewhere
        # Office checks a link clicked in a document or mail before the browser opens it.
        ("Mozilla/4.0 (compatible; ms-office; MSOffice 16)", "bot", True),
        ("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)", "bot", True),
        # Crawlers and scanners ua-parser takes for browsers, or for nothing.
        ("GoogleOther", "bot", True),
        ("Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; "
         "Bytespider; spider-feedback@bytedance.com)", "bot", True),
        ("Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse", "bot", True),
        ("Mozilla/5.0 (compatible; urlscan.io)", "bot", True),
        ("Mozilla/5.0 zgrab/0.x", "bot", True),
        ("Dart/3.2 (dart:io)", "bot", True),
        # In-app browsers are people.
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UQ1A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
         "Chrome/124.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/460.0;]", "mobile", False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Mobile/15E148 Instagram 330.0", "mobile", False),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Mobile/15E148 [Pinterest/iOS]", "mobile", False),
        ("Mozilla/5.0 (Linux; Android 13; SM-G991B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Version/4.0 Chrome/120.0.6099.144 Mobile Safari/537.36 [Pinterest/Android]", "mobile", False),
    ],
)
def test_user_agents_are_classified(agent, device_class, is_bot):
    _, _, got_class, got_bot = links.describe_agent(agent)
    assert (got_class, got_bot) == (device_class, is_bot)


@pytest.mark.parametrize(("headers", "speculative"), [
    ({"HTTP_SEC_PURPOSE": "prefetch"}, True),
    ({"HTTP_SEC_PURPOSE": "prefetch;prerender"}, True),
    ({"HTTP_SEC_PURPOSE": "prefetch; anonymous-client-ip"}, True),
    ({"HTTP_PURPOSE": "Prefetch"}, True),
    ({"HTTP_X_MOZ": "prefetch"}, True),
    ({"HTTP_X_PURPOSE": "preview"}, True),
    ({}, False),
    ({"HTTP_SEC_PURPOSE": ""}, False),
    ({"HTTP_SEC_FETCH_DEST": "document", "HTTP_SEC_FETCH_MODE": "navigate"}, False),  # a person opening it
])
def test_it_tells_a_browsers_speculative_load_from_a_visit(headers, speculative):
    assert links.is_speculative({"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone)", **headers}) is speculative


@pytest.mark.parametrize(("destination", "embedded"), [
    ("image", True), ("script", True), ("iframe", True), ("empty", True), ("style", True),  # a page's own loads
    ("document", False), ("Document", False), ("", False),  # a person opening it, and a client that does not say
])
def test_it_tells_a_page_that_embeds_the_link_from_a_visit(destination, embedded):
    meta = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone)", "HTTP_SEC_FETCH_DEST": destination}
    assert links.is_embedded(meta) is embedded
    assert links.is_embedded({"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone)"}) is False
