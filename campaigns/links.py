"""Short links: slugs, destination checks (and content meant as a web address), UTM tagging, and what a scan
request says about the scanner.

Plain functions, no Django models, so the redirect's hot path is easy to read and to time.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import date
from functools import lru_cache
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from django.core.exceptions import ValidationError

# Capitals and digits a person can type back from a print without doubt (no 0/O, 1/I), and all of them in QR's
# alphanumeric mode: a code's link written in capitals (`code_link`) takes 5.5 bits a character there, not byte mode's
# 8, and its code is often a version smaller (fewer, larger squares: what art needs to scan). Slugs made before
# 2026-12-07 are 8 characters of mixed case (base62, then this alphabet with its lower case) and still answer: a slug
# is looked up as it is, capitals included, and an old one is never folded to one case: two given out may differ only
# in case ("AbC12345", "abc12345"), and folding would send one of them to the other's destination. A new slug is
# 10 characters long, a length no old one has, so a lower-case copy of it can be read in capitals
# (`capitalised_slug`) without ever reaching an old slug.
SLUG_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
SLUG_LENGTH = 10  # 32**10 = 1.1e15 (the mixed-case 56**8 was 9.7e13): unguessable at any realistic scan rate
# What QR's alphanumeric mode holds (ISO/IEC 18004): digits, capitals, space and $%*+-./:
QR_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
# A short link as `Placement.short_url` builds it: scheme, host (a port too) and the `/r/` route's path, no site
# prefix; anything else (a SITE_ROOT with a path, which a proxy may route by case) keeps its case in codes. In any
# case, as a code may carry it (`code_link`, `same_link`): scheme and host are case-insensitive (RFC 3986) and `/R/`
# is routed as `/r/`; the slug is read as written.
SHORT_LINK_PARTS = re.compile(r"(?P<scheme>https?)://(?P<host>[^/?#]+)/r/(?P<slug>[^/?#]+)", re.IGNORECASE)
# The longest redirect that takes the scanner's query (`with_scanner_query`): the usual bound for a URL every
# browser, proxy and server takes (IIS refuses a longer query string by default).
MAX_PASSED_URL = 2048
# Link-preview fetchers, link checkers and crawlers that ua-parser does not already classify as spiders. Office
# ("ms-office", "Microsoft Office/16.0 (... Microsoft Outlook ...)") checks a link clicked in a document or mail
# before the browser opens it: counted, each such click was two scans. Each names the fetcher, never an app that also
# has an in-app browser people open links in ("pinterest" matched Pinterest's, "[Pinterest/iOS]").
PREVIEW_BOTS = ("slackbot", "whatsapp", "telegrambot", "discordbot", "skypeuripreview", "linkedinbot",
                "facebookexternalhit", "twitterbot", "embedly", "pinterestbot", "redditbot", "bingpreview",
                "google-pagerenderer", "applebot", "iframely", "vkshare", "mastodon", "ms-office",
                "microsoft office/", "cardyb", "googleother", "bytespider", "chrome-lighthouse", "urlscan", "zgrab",
                # Teams', Outlook's and Bing's previews send Edge's own user agent with "MicrosoftPreview" at its end
                # (a link pasted in a Teams chat was a desktop scan); ua-parser names Google's link checks in mail
                # and Quora's previews nothing, and they were counted as people too.
                "microsoftpreview", "google-safety", "quora link preview")
# HTTP libraries, command-line tools and headless browsers: scripts, not people. ua-parser names most of them as
# browsers (curl, Python Requests, Go-http-client, Wget, HeadlessChrome), so they are matched here.
NON_BROWSERS = ("curl/", "wget/", "python-", "python/", "go-http-client", "headlesschrome", "phantomjs", "okhttp",
                "aiohttp", "httpx", "java/", "apache-httpclient", "libwww-perl", "node-fetch", "axios/",
                "guzzlehttp", "postmanruntime", "insomnia", "dart:io")


# What a sentence puts after a link written in it ("…/r/AbC12345." or "(…/r/AbC12345)"), the space or line break a
# copy takes with it (%20, a no-break space, %0A), and a stray slash typed back from a print ("…/r/AbC12345/." or
# "…//"): no slug holds any of these (`new_slug` draws letters and digits only), so a slug that ends in them is read
# without them.
SENTENCE_ENDS = ".,;:!?)]}>'\"\u2026\u00bb\u201d\u2019 \t\r\n\u00a0/"


def slug_in(path_part: str) -> str:
    """The slug a short link's path names, without what a sentence or a stray slash added after it (SENTENCE_ENDS).

    Args:
        path_part: the text after `/r/`, as Django decoded it (slashes included).

    Returns:
        `path_part` less any trailing sentence punctuation and slashes; unchanged when it ends in a letter or digit.
        A slash left inside ("AbC12345/x") is no slug's: `campaigns.redirects.could_be_slug` says so.
    """
    return path_part.rstrip(SENTENCE_ENDS)


def new_slug() -> str:
    return "".join(secrets.choice(SLUG_ALPHABET) for _ in range(SLUG_LENGTH))


def capitalised_slug(slug: str) -> str:
    """The new slug that `slug` names when a person typed it, or copied it, in lower case ("" when it names none).

    Args:
        slug: a slug as the link gave it, not found as it is.

    Returns:
        `slug` in capitals when it has a new slug's length and letters (`SLUG_ALPHABET`) and differs from it; else
        "". No old slug has that length, so this never leads one old slug to another.
    """
    capitals = slug.upper()
    if len(slug) != SLUG_LENGTH or capitals == slug or not set(capitals) <= set(SLUG_ALPHABET):
        return ""
    return capitals


def code_link(short_url: str, capital_scheme: bool = False) -> str:
    """The text a code for `short_url` carries: host and path in capitals where QR's alphanumeric mode can hold them,
    so the encoder packs them at 5.5 bits a character ("https://QART.EXAMPLE/R/ABCDEFGH23"). Scheme and host are
    case-insensitive (RFC 3986), and `/R/` is routed as `/r/` is.

    The scheme stays lower case unless the team asks (`qartsite.models.Team.capital_scheme`): Google's Pixel Camera
    app and other Android readers hand "HTTPS://" to no browser (Android matches a scheme's case exactly), and the
    reports of readers that open no link are all of the scheme's case, none of the host's. In capitals too, the code
    is often a version smaller still (bench/RESULTS.md, "Short links in capitals").

    Args:
        short_url: a placement's absolute short link (`Placement.short_url`'s, before this).
        capital_scheme: write the scheme in capitals too ("HTTPS://").

    Returns:
        The link in capitals; `short_url` unchanged for an old mixed-case slug, a site prefix before `/r/`, or a host
        the mode cannot hold (an underscore, an IPv6 address) or that phones would show in its ASCII form (an
        internationalised name, "xn--").
    """
    parts = SHORT_LINK_PARTS.fullmatch(short_url)
    if parts is None:
        return short_url
    host, slug = parts["host"].upper(), parts["slug"]
    if (slug != slug.upper() or not set(slug) <= QR_ALPHANUMERIC or not set(host) <= QR_ALPHANUMERIC
            or any(label.startswith("XN--") for label in host.split("."))):
        return short_url
    scheme = parts["scheme"].upper() if capital_scheme else parts["scheme"]
    return f"{scheme}://{host}/R/{slug}"


def same_link(text: str, other: str) -> bool:
    """Whether two texts codes carry open the same address: the same text, or the same short link written in other
    case (`code_link`, its scheme as a team chose): a code made before a team's owner turned on "HTTPS:// in
    capitals" still opens its placement's link.

    Args:
        text: what one code carries.
        other: what the other carries.

    Returns:
        True when a phone that scans either reaches the same page.
    """
    if text == other:
        return True
    one, two = SHORT_LINK_PARTS.fullmatch(text), SHORT_LINK_PARTS.fullmatch(other)
    return one is not None and two is not None and one["slug"] == two["slug"] and \
        (one["scheme"].lower(), one["host"].lower()) == (two["scheme"].lower(), two["host"].lower())


def validate_destination(url: str) -> None:
    """Refuse anything but an absolute http(s) URL with a host (no javascript:, data:, relative paths)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValidationError("Enter a valid web address.") from None
    if parts.scheme not in ("http", "https"):
        # Name the fix where there is one: "shop.example.com/winter" is a host and path without its scheme.
        assumed = with_assumed_scheme(url)
        raise ValidationError("The destination must start with http:// or https://"
                              + (f", like {assumed}." if assumed != url.strip() else "."))
    if not parts.hostname or "." not in parts.hostname.strip(".") and parts.hostname != "localhost":
        raise ValidationError("The destination needs a host name, like https://example.com/offer.")
    if parts.username or parts.password:
        raise ValidationError("The destination must not contain a user name or password.")
    if any(c in url for c in "\r\n\t ") or len(url) > 2000:
        raise ValidationError("The destination contains spaces or is too long.")
    if not host_is_valid(parts.hostname):
        raise ValidationError("The destination's host name is not valid: each part between its dots needs letters "
                              "or digits (a hyphen only inside), like https://example.com/offer.")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 and parts.netloc.rpartition("]")[2].count(":"):
        raise ValidationError("The destination's port must be a number from 1 to 65535.")


def with_assumed_scheme(text: str) -> str:
    """`text` with "https://" before it when it is a host name with a dot (or an IP address), perhaps a port and a
    path, typed without its scheme ("shop.example.com/winter", "www.example.com"), as a browser's address bar reads
    it; anything else as typed, spaces around it dropped, for `validate_destination` to judge ("javascript:…",
    "mailto:…" and "localhost:8000" are no host name with a dot, "/offer" is a path alone).

    Args:
        text: what was typed.

    Returns:
        The https:// address it stands for, when that address is a valid destination; else `text`, stripped.
    """
    text = text.strip()
    if not text or "://" in text or text.startswith("/"):
        return text
    address = f"https://{text}"
    try:
        parts = urlsplit(address)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (read for its check: a port that is not a number raises)
    except ValueError:
        return text
    if parts.username or parts.password or "." not in host.strip("."):
        return text
    try:
        validate_destination(address)
    except ValidationError:
        return text
    return address


HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)", re.IGNORECASE)  # "_" too: browsers open such hosts


def host_is_valid(host: str) -> bool:
    """An IP address, or a host name whose every label (in its ASCII form: IDNA, so "bücher.de" is fine) is letters,
    digits, hyphens inside and underscores, 1-63 characters: "example..com", "-bad-.com", a host with a control or
    direction-changing character ("exa\u202emple.com" shows as "exaelpm.com") are not; a final dot is."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.removesuffix(".").encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(ascii_host) <= 253 and all(HOST_LABEL.fullmatch(label) for label in ascii_host.split("."))


# How content that sets out to be a web address starts: a scheme and a colon or slashes ("htp:/", "https//"), bare
# slashes ("://", "//"), or "www.". Only a scheme close to http or https counts (`web_address_problem`): a code
# carries any text, and tel:, WIFI:, BEGIN:VCARD and app links (otpauth://, market://) are not web addresses.
WEB_ADDRESS_START = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)(?::/*|//)|:?//|(?P<www>www\.))", re.I)
WEB_SCHEMES = ("http", "https")
NOT_A_WEB_ADDRESS = "That doesn't look like a complete web address: {problem}"


def web_address_problem(content: str) -> str:
    """What is wrong with content that was meant as a web address but is not a complete one ("" for one that is,
    and for content plainly not meant as one: a phone number, a vCard, words). A code made of "htp:/exa mple"
    would scan, and open nothing; a bare "www." address is checked as the https:// one phones open for it.

    Looser than a campaign's destination (`validate_destination`): any host name will do, one without a dot too (an
    intranet's "http://qart/", a container's "http://web:8000", the site's own short links there), an IP address
    too, and the code's own capacity is the only length limit.
    """
    start = WEB_ADDRESS_START.match(content)
    if start is None:
        return ""
    scheme = (start["scheme"] or "").lower()
    if scheme and not difflib.get_close_matches(scheme, WEB_SCHEMES, cutoff=0.75):
        return ""  # another scheme: tel:, mailto:, otpauth://...
    if start["www"]:
        address = f"https://{content}"
    elif scheme in WEB_SCHEMES and content[len(scheme):].startswith("://"):
        address = content
    else:  # http misspelt, or missing its colon or a slash
        return NOT_A_WEB_ADDRESS.format(problem="it should start with https:// (or http://), like "
                                                "https://example.com.")
    if any(character.isspace() for character in address):
        return NOT_A_WEB_ADDRESS.format(problem="it contains a space, and a web address has none (to put words in "
                                                "the code as well, start with the words).")
    try:
        parts = urlsplit(address)
        host = parts.hostname
        parts.port  # noqa: B018 (read for its check: a port that is not a number raises)
    except ValueError:
        return NOT_A_WEB_ADDRESS.format(problem="it cannot be read as one (check its brackets and port).")
    if not host:
        return NOT_A_WEB_ADDRESS.format(problem="it needs a host name after the slashes, like https://example.com.")
    if parts.username or parts.password:
        return NOT_A_WEB_ADDRESS.format(problem="it must not contain a user name or password.")
    return ""


def with_utm(url: str, utm: dict[str, str]) -> str:
    """`url` with the non-empty UTM parameters appended; parameters already in the URL win (`with_parameters`)."""
    return with_parameters(url, [(key, value) for key, value in utm.items() if value])


def with_parameters(url: str, parameters: Iterable[tuple[str, str]]) -> str:
    """`url` with `parameters` appended, each percent-encoded, a name given twice kept twice; a name already in the
    URL's query is left out (the URL's own value wins).

    The URL's own query string is kept byte for byte (re-encoding it would turn `%20` into `+`, which some sites read
    differently): the new parameters are only appended, before any fragment. Every `&`, `=`, `?` and `#` of a name or
    value is encoded, so nothing appended can change the URL's scheme, host or path.
    """
    base, hash_mark, fragment = url.partition("#")
    present = {key for key, _ in parse_qsl(urlsplit(base).query, keep_blank_values=True)}
    added = urlencode([(key, value) for key, value in parameters if key not in present], quote_via=quote)
    if not added:
        return url
    separator = "" if base.endswith(("?", "&")) else "&" if "?" in base else "?"
    return f"{base}{separator}{added}{hash_mark}{fragment}"


def with_scanner_query(url: str, query: str) -> str:
    """`url` (a link's destination) with the parameters of the query string the scanner's request carried, as link
    products pass them on: a code printed with `?src=poster` or a link shared with `?ref=newsletter` tells the
    destination so. The destination's own parameters win (a campaign's UTM tags are not the URL-crafter's to
    change); a URL that would grow past MAX_PASSED_URL keeps the destination as it is, the query dropped whole."""
    if not query or len(url) + len(query) > MAX_PASSED_URL:
        return url
    passed = with_parameters(url, [(key, value) for key, value in parse_qsl(query, keep_blank_values=True) if key])
    return passed if len(passed) <= MAX_PASSED_URL else url


def visitor_key(address: str, user_agent: str, secret: str, day: date, team_id: int) -> str:
    """A keyed hash of the team, address and user agent under a key that changes every day (`day`: the team's, see
    `campaigns.redirects.visit_of`).

    Counts unique visitors per day without storing who they are; the day's key is derived from the secret, so
    yesterday's key says nothing about today's and one visitor cannot be followed from day to day. The team is
    hashed too, so one person has another key in each team's exports and two customers cannot join theirs to
    follow them; in the message, not the key, so the day's key stays one cached value for every team. Keyed
    BLAKE2b (a MAC by design): it runs in every scan request, where it costs a fraction of an OpenSSL HMAC.
    """
    return hashlib.blake2b(f"{team_id}\n{address}\n{user_agent}".encode(), key=_day_key(secret, day),
                           digest_size=16).hexdigest()


@lru_cache(maxsize=4)
def _day_key(secret: str, day: date) -> bytes:
    return hmac.new(secret.encode(), f"visitor:{day.isoformat()}".encode(), hashlib.sha256).digest()


# Headers a browser sends when it loads a link ahead of a click (prefetch, prerender, a preview of top sites):
# Sec-Purpose ("prefetch", "prefetch;prerender"), Purpose and X-Moz ("prefetch"), X-Purpose ("preview").
SPECULATIVE_LOADS = (("HTTP_SEC_PURPOSE", "prefetch"), ("HTTP_PURPOSE", "prefetch"), ("HTTP_X_MOZ", "prefetch"),
                     ("HTTP_X_PURPOSE", "preview"))


def is_speculative(meta: Mapping[str, str]) -> bool:
    """Whether a request (its `request.META`) is a browser loading the link on its own, not a person opening it:
    the page may never be shown, so it is no more a scan than a link preview."""
    return any(wanted in meta.get(header, "").lower() for header, wanted in SPECULATIVE_LOADS)


# What a browser says it loads (Sec-Fetch-Dest, sent by Chrome, Edge, Firefox and Safari 16.4 on): a person who opens
# the link loads it as the page ("document"); anything else is a page that loads it as a part of itself.
OPENED_AS_A_PAGE = ("", "document")


def is_embedded(meta: Mapping[str, str]) -> bool:
    """Whether a request (its `request.META`) is another page loading the link as an image, a script, a frame or a
    fetch, not a person opening it: any page that embeds the link in an `<img>` would make each of its own visitors a
    scan. A client that sends no Sec-Fetch-Dest (older browsers, scanner apps' own clients) opens it as a page.

    Args:
        meta: the request's `request.META` (not `request.headers`, which is built whole per request).

    Returns:
        True when the browser says it loads the link as anything but a page of its own.
    """
    return meta.get("HTTP_SEC_FETCH_DEST", "").strip().lower() not in OPENED_AS_A_PAGE


@lru_cache(maxsize=4096)
def describe_agent(user_agent: str) -> tuple[str, str, str, bool]:
    """(browser family, OS family, device class, is_bot) for a user-agent string; cached, since a few
    hundred strings cover nearly all phones."""
    from ua_parser import parse

    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else "Other"
    os_family = result.os.family if result.os else "Other"
    device = result.device.family if result.device else "Other"
    lowered = user_agent.lower()
    is_bot = (device == "Spider" or not user_agent or any(bot in lowered for bot in PREVIEW_BOTS)
              or any(client in lowered for client in NON_BROWSERS))
    if is_bot:
        device_class = "bot"
    elif os_family in ("iOS", "Android") and ("iPad" in user_agent or "Tablet" in user_agent):
        device_class = "tablet"
    elif os_family in ("iOS", "Android") or "Mobile" in user_agent:
        device_class = "mobile"
    elif os_family in ("Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora"):
        device_class = "desktop"
    else:
        device_class = "other"
    return browser, os_family, device_class, is_bot
