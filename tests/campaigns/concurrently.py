"""What the tests of row locks share: they run on PostgreSQL only (SQLite locks the whole file), and a thread's
database error is kept for the test to read, not lost in the thread."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, connections

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL's")


def catching(errors: list, work, *args) -> None:
    """Run `work(*args)` as a test's thread does: the first line of a `DatabaseError` it raises goes to `errors`
    ("deadlock detected", say), and the thread's database connections are closed once it ends.

    Args:
        errors (`list`): where the errors go.
        work (`Callable`): what the thread does.
        *args: `work`'s arguments.
    """
    try:
        work(*args)
    except DatabaseError as exc:
        errors.append(str(exc).splitlines()[0])
    finally:
        connections.close_all()
