"""Absolute links to this site, the ones printed codes and phones carry, and the client address of a request:
one rule each for every app.

`settings.SITE_ROOT` set: always that, whoever asks and on whichever host (a deployment behind a proxy, or a
public name the request does not show). Empty (the default): the host the request came to, which is right on a
developer's machine, where a phone on the same network reaches the labeler's LAN address, and on a deployment
whose proxy passes its public Host header.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest
from django.http.request import validate_host


def site_root(request: HttpRequest) -> str:
    """The scheme and host links start with, without a trailing slash, e.g. "https://qart.example".

    Args:
        request: the request being answered (its host is used without `settings.SITE_ROOT`).

    Returns:
        The site root.
    """
    return settings.SITE_ROOT or request.build_absolute_uri("/").rstrip("/")


def absolute_url(request: HttpRequest, path: str) -> str:
    """`path` (from `reverse`, starting with "/") as an absolute link under `site_root`."""
    return site_root(request) + path


class SiteRootMiddleware:
    """With SITE_ROOT set, every absolute link a request builds starts with it, as `site_root`'s do: the API's
    Location, its pages' next and previous, its images' and its root's links (DRF builds them all with
    `request.build_absolute_uri`). They named the host the request came to: behind a proxy that does not pass the
    public Host, an address no client can reach, beside short links that were right."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if settings.SITE_ROOT:
            # What Django's `build_absolute_uri` starts a path with (a cached property of the request). Only links:
            # the host checks (ALLOWED_HOSTS, CSRF) still read the request's own Host.
            request._current_scheme_host = settings.SITE_ROOT
        return self.get_response(request)


def is_own_link(url: str) -> bool:
    """Whether `url` leads to this site: SITE_ROOT's host when it is set, else a host this site answers to
    (ALLOWED_HOSTS, which Django checks every request against). Art made on a staging or old host carries a link
    whose scans this site never sees.

    http and https are the same site (behind a TLS proxy a link may have been made with either), and a port that is
    its scheme's default is no port; another port must match.

    Args:
        url: an absolute link (what a printed code carries).

    Returns:
        True when phones following it reach this site.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", _port(parts)
    except ValueError:  # a port that is not a number, a broken IPv6 address
        return False
    if parts.scheme.lower() not in ("http", "https") or not host:
        return False
    if settings.SITE_ROOT:
        root = urlsplit(settings.SITE_ROOT)
        return (host, port) == (root.hostname, _port(root))
    allowed = settings.ALLOWED_HOSTS or ([".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return validate_host(f"[{host}]" if ":" in host else host, allowed)


def _port(parts) -> int | None:
    """The URL's port, None for none or its scheme's default (https://host:443 is https://host)."""
    port = parts.port
    return None if port == {"http": 80, "https": 443}.get(parts.scheme.lower()) else port


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind our own proxies the hop they added to X-Forwarded-For.

    Each proxy appends the address it saw, so the client is QART["TRUSTED_PROXY_COUNT"] hops from the right; hops
    further left come from the client itself and can say anything. A hop that is not an IP address is ignored. An IPv4
    address mapped into IPv6 (a server listening on a dual-stack socket sees "::ffff:203.0.113.9") is the IPv4
    address, from the peer as from a hop: else one client was two visitors and two rate-limit networks.
    """
    if settings.QART["TRUST_PROXY"]:
        hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")  # not request.headers: built whole per request
        count = max(1, settings.QART["TRUSTED_PROXY_COUNT"])
        if len(hops) >= count and (address := hop_address(hops[-count])):
            return address
    peer = request.META.get("REMOTE_ADDR", "")
    return hop_address(peer) or peer


# A hop with its port: "203.0.113.7:51234" or "[2001:db8::1]:443" (Azure's proxies write them so), or an IPv6
# address in brackets without one.
HOP_WITH_PORT = re.compile(r"\[(?P<bracketed>[^\]]+)\](?::\d{1,5})?|(?P<ipv4>[\d.]+):\d{1,5}")


def hop_address(hop: str) -> str:
    """The IP address of one X-Forwarded-For hop in its usual form ("" when it holds none). A port and brackets are
    left out: taken for no address, they made every scan through such a proxy the proxy's own (one visitor, the
    proxy's country, one rate limit and sign-in lockout for everyone). An IPv4 address mapped into IPv6
    ("::ffff:203.0.113.7", from a dual-stack proxy) is the IPv4 address, as the same client is on other hops."""
    hop = hop.strip()
    if match := HOP_WITH_PORT.fullmatch(hop):
        hop = match["bracketed"] or match["ipv4"]
    try:
        address = ipaddress.ip_address(hop)
    except ValueError:
        return ""
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def sign_in_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The user name a sign-in tried, as django-axes records its failures (AXES_USERNAME_CALLABLE): axes' own reading
    (the credentials', else the form's), cut to the 255 characters its records hold. PostgreSQL refuses a longer one,
    and a scanner's 300-character name was a 500 on the sign-in pages (django-axes issue #1381); no account's name is
    longer than 150."""
    source = credentials or getattr(request, "data", request.POST)
    username = source.get(settings.AXES_USERNAME_FORM_FIELD)
    return username[:255] if isinstance(username, str) else username


def unreachable_reason(url: str, *, same_network: bool = False) -> str | None:
    """Why phones could not open `url`, or None when its host looks public.

    A short link printed as `http://127.0.0.1:8140/r/...` or on a LAN address works on the machine that made it
    and nowhere else: a printed code cannot be fixed afterwards, so the placement page says so before printing.

    Args:
        url: an absolute link (a placement's short link).
        same_network: phones on this machine's network will do (a labeling session's one-time links, scanned in
            the room): private addresses and local names are fine, only this machine itself and bare names are not.

    Returns:
        A sentence naming the host and why, or None.
    """
    host = urlsplit(url).hostname or ""
    if not host:
        return f"{url} has no host, so no phone can open it."
    if host == "localhost" or host.endswith(".localhost"):
        return f"The link's host {host} is this machine itself: no phone can open it."
    if host.endswith((".local", ".internal", ".lan", ".home.arpa")):
        if same_network:
            return None
        return f"The link's host {host} is a name only this network knows: phones elsewhere cannot open it."
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if "." not in host:
            return f"The link's host {host} is a bare machine name: phones cannot look it up."
        return None
    if address.is_loopback:
        return f"The link's host {host} is this machine itself (loopback): no phone can open it."
    if address.is_unspecified:
        return f"The link's host {host} is no address a phone can open."
    if (address.is_private or address.is_link_local or address.is_reserved) and not same_network:
        return (f"The link's host {host} is a private network address: only phones on that network can open it. "
                "Set SITE_ROOT to the public address before printing.")
    return None
