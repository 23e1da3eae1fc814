"""Short links: slugs, destination checks, UTM tagging, and what a scan request says about the scanner.

Plain functions, no Django models, so the redirect's hot path is easy to read and to time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core.exceptions import ValidationError

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SLUG_LENGTH = 8  # 62**8 = 2.2e14: unguessable at any realistic scan rate
# Link-preview fetchers that ua-parser does not already classify as spiders.
PREVIEW_BOTS = ("slackbot", "whatsapp", "telegrambot", "discordbot", "skypeuripreview", "linkedinbot",
                "facebookexternalhit", "twitterbot", "embedly", "pinterest", "redditbot", "bingpreview",
                "google-pagerenderer", "applebot", "iframely", "vkshare", "mastodon")


def new_slug() -> str:
    return "".join(secrets.choice(BASE62) for _ in range(SLUG_LENGTH))


def validate_destination(url: str) -> None:
    """Refuse anything but an absolute http(s) URL with a host (no javascript:, data:, relative paths)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValidationError("Enter a valid web address.") from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError("The destination must start with http:// or https://.")
    if not parts.hostname or "." not in parts.hostname.strip(".") and parts.hostname != "localhost":
        raise ValidationError("The destination needs a host name, like https://example.com/offer.")
    if parts.username or parts.password:
        raise ValidationError("The destination must not contain a user name or password.")
    if any(c in url for c in "\r\n\t ") or len(url) > 2000:
        raise ValidationError("The destination contains spaces or is too long.")


def with_utm(url: str, utm: dict[str, str]) -> str:
    """`url` with the non-empty UTM parameters added; parameters already in the URL win."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _ in query}
    query += [(key, value) for key, value in utm.items() if value and key not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def anonymise_address(address: str, key: str) -> str:
    """A keyed hash of the client address: counts unique scanners without storing who they are."""
    return hmac.new(key.encode(), address.encode(), hashlib.sha256).hexdigest()[:16]


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
    is_bot = device == "Spider" or any(bot in lowered for bot in PREVIEW_BOTS) or not user_agent
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
