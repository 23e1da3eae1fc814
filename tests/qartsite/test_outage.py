"""Pages while the database is away (qartsite.outage): a 503 that says so, never a 500. The real outage, a database
that does not answer, is drilled in tests/drills/test_database_hanging.py."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import IntegrityError, OperationalError
from django.test import Client

from qartsite.outage import MESSAGE, DatabaseUnavailableMiddleware


@pytest.fixture
def database_away(monkeypatch):
    """Every session lookup fails as a refused or timed-out connection does."""

    def load(self):
        raise OperationalError("connection timeout expired")

    monkeypatch.setattr(SessionStore, "load", load)


def signed_in_client() -> Client:
    client = Client()
    client.cookies["sessionid"] = "x" * 32  # the page must look the session up in the database
    return client


def test_a_page_answers_503_saying_the_database_is_away(database_away):
    response = signed_in_client().get("/campaigns/")
    assert response.status_code == 503
    assert response["Retry-After"] == "30" and response["Cache-Control"] == "no-store"
    assert MESSAGE in response.content.decode()


def test_the_api_answers_503_in_json(database_away):
    response = signed_in_client().get("/api/campaigns/")
    assert response.status_code == 503 and response.json() == {"detail": MESSAGE}


def test_other_database_errors_stay_errors(rf):
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    assert middleware.process_exception(rf.get("/campaigns/"), IntegrityError("duplicate key")) is None
    assert middleware.process_exception(rf.get("/campaigns/"), ValueError("a bug")) is None
