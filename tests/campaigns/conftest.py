"""Fixtures shared by the campaign tests: the owner's team's spring campaign, and the short link's buffer."""

from __future__ import annotations

import os

import pytest
from redis import Redis
from redis.exceptions import RedisError

from campaigns import redirects, scan_buffer
from campaigns.models import Campaign


@pytest.fixture
def campaign(team_users) -> Campaign:
    return Campaign.objects.create(team=team_users.team, name="Spring Sale", destination="https://shop.example.com/")


def forget_short_link_state() -> None:
    redirects._links.clear()
    redirects.database_outage.end()
    scan_buffer.redis_outage.end()


@pytest.fixture(autouse=True)
def _short_link_state(_scan_buffer_keys):
    """Every test starts with no link copy and no known outage, and leaves nothing in Redis (its own keys: see
    `_scan_buffer_keys`)."""
    client = scan_buffer.redis_client()  # taken now: a test may point REDIS_URL elsewhere
    forget_short_link_state()
    yield
    forget_short_link_state()
    try:
        client.delete(scan_buffer.stream_key(), scan_buffer.links_key())
    except RedisError:
        pass


@pytest.fixture
def scan_redis() -> Redis:
    """The Redis at REDIS_URL, for tests of the stream (make test starts one); skipped without it, except in CI."""
    client = scan_buffer.redis_client()
    try:
        client.ping()
    except RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"no Redis at {os.environ.get('REDIS_URL', 'the default URL')} (make test starts one)")
    return client
