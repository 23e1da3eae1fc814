"""Database wrappers (`connection.execute_wrapper`) that make SQLite refuse what PostgreSQL refuses, so a test fails on
either database where production's would."""

from __future__ import annotations


def refuse_nul(execute, sql, params, many, context):
    """A database wrapper that fails any query carrying a NUL as PostgreSQL does (DataError)."""
    from django.db import DataError

    if any("\x00" in str(param) for param in (params or ())):
        raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    return execute(sql, params, many, context)
