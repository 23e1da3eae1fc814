"""Rates for pages without sign-in (`qartsite.rates`); the shared report's rate is tested with its page
(tests/campaigns/test_shares.py), the password reset's with its form (test_accounts.py)."""

from __future__ import annotations

import logging

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


def test_requests_at_once_get_no_more_than_the_rate(settings, fresh_cache, monkeypatch):
    # Eight invitations to one address at once got up to seven through a rate of 3 an hour: each request read the
    # count before another wrote it (concurrency audit F7).
    import threading

    from django.core.cache import cache

    from tests.conftest import SlowCache

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"invitation_addresses": "3/hour"}}
    monkeypatch.setattr(rates.InvitationAddressThrottle, "cache", SlowCache(cache))
    request = RequestFactory().post("/", {"email": "sam@example.com"})
    assert request.POST["email"]  # read once here: eight threads reading the body at once tear it
    barrier, allowed = threading.Barrier(8), []

    def invite() -> None:
        barrier.wait()
        allowed.append(rates.refused_by(request, [rates.InvitationAddressThrottle()]) is None)

    threads = [threading.Thread(target=invite) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(allowed) == [False] * 5 + [True] * 3


def test_a_counting_lock_another_holds_refuses_and_counts_nothing(settings, fresh_cache, monkeypatch):
    from django.core.cache import cache

    monkeypatch.setattr(rates, "LOCK_WAIT", 0.05)
    request = RequestFactory().post("/", {"email": "sam@example.com"})
    throttle = rates.InvitationAddressThrottle()
    assert cache.add(f"{throttle.get_cache_key(request, None)}:lock", "someone else", 60)
    assert not throttle.allow_request(request, None)
    assert cache.get(throttle.get_cache_key(request, None)) is None
    assert throttle.retry_after() == rates.LOCK_TIMEOUT  # not "about 15 minutes", as if the rate were used up


def test_a_cache_that_cannot_be_reached_is_said_in_one_line_without_a_traceback(settings, cache_away, caplog):
    # While the cache's Redis hung, each request logged a traceback for a cache it copes without (a fault drill).
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"invitation_addresses": "3/hour"}}
    request = RequestFactory().post("/", {"email": "sam@example.com"})
    with cache_away(), caplog.at_level(logging.WARNING, logger="qartsite.rates"):
        assert rates.InvitationAddressThrottle().allow_request(request, None)
    [said] = [record for record in caplog.records if record.name == "qartsite.rates"]
    assert "cannot be reached (" in said.getMessage() and said.exc_info is None
