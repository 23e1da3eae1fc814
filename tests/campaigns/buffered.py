"""Scan events put in the short link's buffer as the redirect puts them, for the drainer's tests."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from campaigns import scan_buffer
from campaigns.models import Placement


def scan_ago(placement: Placement, seconds_ago: float = 0, visitor_key: str = "v" * 32, **fields) -> dict:
    """A scan of `placement` by `visitor_key`, Safari on a phone, `seconds_ago` seconds before now."""
    return scan_buffer.scan_event(placement.pk, timezone.now() - timedelta(seconds=seconds_ago), browser="Safari",
                                  os="iOS", device_class="mobile", referer="", accept_language="", country="",
                                  is_bot=False, visitor_key=visitor_key, **fields)


def to_stream(*events: dict) -> None:
    for made in events:
        assert scan_buffer.add_to_stream(json.dumps(made))


def to_spool(*events: dict) -> None:
    for made in events:
        scan_buffer.append_to_spool(json.dumps(made))
