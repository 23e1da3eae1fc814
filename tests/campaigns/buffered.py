"""Scan events put in the short link's buffer as the redirect puts them, for the drainer's tests."""

from __future__ import annotations

import json

from campaigns import scan_buffer


def to_stream(*events: dict) -> None:
    for made in events:
        assert scan_buffer.add_to_stream(json.dumps(made))


def to_spool(*events: dict) -> None:
    for made in events:
        scan_buffer.append_to_spool(json.dumps(made))
