"""The `browser` fixture (tests/e2e/conftest.py): what it leaves open once it has closed."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connections_used():
    """The database connections a test used while the browser was up; set up before `browser` (named first), so
    checked after it has closed: each must be closed by then, or it keeps the test database from being dropped at
    the session's end."""
    used: list = []
    yield used
    left_open = [f"{wrapper.alias} ({wrapper.connection!r})" for wrapper in used if wrapper.connection is not None]
    assert left_open == [], f"the browser closed and left these connections open: {left_open}"


@pytest.mark.browser
def test_it_closes_the_connections_opened_while_it_was_up(connections_used, browser):
    from django.db import DEFAULT_DB_ALIAS, connections

    from qartsite.models import Team

    asyncio.get_running_loop()  # Playwright's loop runs in this thread (RuntimeError if not): Django's connections
    # under it are not the thread's own, and no teardown of the test's database closes them
    Team.objects.create(name="Harbour")
    connections_used.append(connections[DEFAULT_DB_ALIAS])  # the one the ORM just used: this context's
    assert connections_used[0].connection is not None
