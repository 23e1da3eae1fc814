"""Pages while the database is away (qartsite.outage): a 503 that says so, never a 500. The real outage, a database
that does not answer, is drilled in tests/drills/test_database_hanging.py."""

from __future__ import annotations

import importlib
import time

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import IntegrityError, OperationalError, connection, connections
from django.db.backends.signals import connection_created
from django.test import Client

from qartsite import outage
from qartsite.outage import MESSAGE, DatabaseUnavailableMiddleware

LIMIT_UID = "qartsite.outage.limit_statements"


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
    assert response.status_code == 503 and response.content == f'{{"detail":"{MESSAGE}"}}'.encode()


def test_other_database_errors_stay_errors(rf):
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    assert middleware.process_exception(rf.get("/campaigns/"), IntegrityError("duplicate key")) is None
    assert middleware.process_exception(rf.get("/campaigns/"), ValueError("a bug")) is None


@pytest.mark.parametrize("deadlock", [True, False], ids=["postgresql-deadlock", "sqlite-locked"])
def test_a_write_that_lost_a_race_is_told_to_send_again_not_that_the_database_is_away(rf, deadlock):
    # A deadlock was answered "The database is not answering right now ... try again in a minute"
    from psycopg import errors

    from qartsite.outage import CONTENTION

    error = OperationalError("deadlock detected" if deadlock else "database is locked")
    error.__cause__ = errors.DeadlockDetected("deadlock detected") if deadlock else None
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    page = middleware.process_exception(rf.post("/campaigns/1/edit/"), error)
    api = middleware.process_exception(rf.patch("/api/campaigns/1/"), error)
    assert page.status_code == api.status_code == 503 and page["Retry-After"] == "2"
    assert CONTENTION in page.content.decode() and api.content.decode() == f'{{"detail":"{CONTENTION}"}}'


def test_web_processes_limit_how_long_a_statement_may_wait():
    import qartsite.wsgi  # noqa: F401 (as gunicorn loads it)

    assert connection_created.disconnect(dispatch_uid=LIMIT_UID)  # it was connected
    connection_created.connect(outage.limit_statements, dispatch_uid=LIMIT_UID)


def test_web_processes_under_asgi_limit_statements_too():
    # qartsite.asgi served pages whose query waited behind a lock for as long as the lock was held.
    connected = connection_created.disconnect(dispatch_uid=LIMIT_UID)  # by qartsite.wsgi, if an earlier test loaded it
    try:
        importlib.reload(importlib.import_module("qartsite.asgi"))  # as uvicorn or daphne loads it
        assert connection_created.disconnect(dispatch_uid=LIMIT_UID)
    finally:
        if connected:
            connection_created.connect(outage.limit_statements, dispatch_uid=LIMIT_UID)


@pytest.mark.django_db(transaction=True)
def test_a_page_stuck_behind_a_lock_answers_503_before_the_web_server_gives_up(monkeypatch):
    # A fault drill: another session locked the scans' table; the campaign page waited on it until gunicorn killed its
    # worker at 30 s, and the person got a dropped connection instead of a page that says what is wrong.
    if connection.vendor != "postgresql":
        pytest.skip("a statement's time limit is PostgreSQL's (SQLite waits on its own lock timeout)")
    monkeypatch.setattr(outage, "STATEMENT_TIMEOUT_MS", 300)
    web_process = connection_created.disconnect(dispatch_uid=LIMIT_UID)  # this one, where qartsite.wsgi was imported
    connection_created.connect(outage.limit_statements, dispatch_uid=LIMIT_UID)
    connection.close()  # the page's queries go through a new connection, as in a web process
    locker = connections.create_connection("default")
    try:
        locker.set_autocommit(False)
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLE django_session IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = signed_in_client().get("/campaigns/")
        waited = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
        if not web_process:
            connection_created.disconnect(dispatch_uid=LIMIT_UID)
        connection.close()
    assert response.status_code == 503 and MESSAGE in response.content.decode()
    assert waited < 5
