"""Absolute links to this site, the ones printed codes and phones carry, and the client address of a request:
one rule each for every app.

`settings.SITE_ROOT` set: always that, whoever asks and on whichever host (a deployment behind a proxy, or a
public name the request does not show). Empty (the default): the host the request came to, which is right on a
developer's machine, where a phone on the same network reaches the labeler's LAN address, and on a deployment
whose proxy passes its public Host header.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


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


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind our own proxies the hop they added to X-Forwarded-For.

    Each proxy appends the address it saw, so the client is QART["TRUSTED_PROXY_COUNT"] hops from the right; hops
    further left come from the client itself and can say anything. A hop that is not an IP address is ignored.
    """
    if settings.QART["TRUST_PROXY"]:
        hops = request.headers.get("X-Forwarded-For", "").split(",")
        count = max(1, settings.QART["TRUSTED_PROXY_COUNT"])
        if len(hops) >= count:
            try:
                return str(ipaddress.ip_address(hops[-count].strip()))
            except ValueError:
                pass
    return request.META.get("REMOTE_ADDR", "")
