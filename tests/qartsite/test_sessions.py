"""qartsite.sessions: a session cookie holding a NUL names no session, and is never looked up."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.database_wrappers import refuse_nul


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "status"), [("/r/ZZZZZZZZ", 404), ("/", 200)])
def test_it_treats_a_session_cookie_with_a_nul_as_no_session(client, path, status):
    # The development server passes such a cookie on; PostgreSQL refused the lookup (DataError), and the page, the
    # short link's 404 among them, answered 500.
    client.cookies["sessionid"] = "abcdefgh\x00ijklmnopqrstuvwxyz012345"
    with connection.execute_wrapper(refuse_nul):
        response = client.get(path)
    assert response.status_code == status and "Sign in" in response.content.decode()
