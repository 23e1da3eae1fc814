"""Rates for pages without sign-in (`qartsite.rates`); the shared report's rate is tested with its page
(tests/campaigns/test_shares.py), the password reset's with its form (test_accounts.py)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from qartsite import rates


@pytest.mark.parametrize(("seconds", "said"), [
    (0.2, "1 second"), (40, "40 seconds"), (89, "89 seconds"), (90, "about 2 minutes"), (720, "about 12 minutes"),
    (5400, "about 2 hours"),
])
def test_it_says_when_to_retry_as_a_person_would(seconds, said):
    assert rates.retry_in(seconds) == said


@pytest.mark.parametrize(("address", "network"), [
    ("198.51.100.7", "198.51.100.7"), ("::ffff:198.51.100.7", "198.51.100.7"),
    ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"), ("not an address", "not an address"), ("", "unknown"),
])
def test_it_counts_a_client_by_its_address_or_its_ipv6_64(address, network, settings):
    settings.QART = {**settings.QART, "TRUST_PROXY": False}
    assert rates.client_network(RequestFactory().get("/", REMOTE_ADDR=address)) == network
