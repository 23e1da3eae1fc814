"""A database that refuses chosen scans, and the log lines that say so, for the tests of the drainer, of
`refused_scans` and of `qart_refused_scans`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path

from django.db import DataError, connection

from campaigns import drainer, refused_scans


def refuse(monkeypatch, *events: dict) -> None:
    """Make the database refuse these buffered events whenever a batch holds one. On PostgreSQL genuinely: their rows
    get a three-letter country, too long for its column (`scan_row` cuts what a scan carries to fit, so nothing a
    request sends does this). SQLite stores any length, so there the insert raises PostgreSQL's error itself. Undo
    with `monkeypatch.undo()`: the cause fixed."""
    chosen = {uuid.UUID(made["id"]) for made in events}
    if connection.vendor == "postgresql":
        scan_row = drainer.scan_row

        def too_long(event: dict):
            row = scan_row(event)
            if row.event_id in chosen:
                row.country = "DEU"
            return row

        monkeypatch.setattr(drainer, "scan_row", too_long)
        return
    insert = drainer.insert

    def refused(rows: list) -> None:
        if any(row.event_id in chosen for row in rows):
            raise DataError("value too long for type character varying(2)")
        insert(rows)

    monkeypatch.setattr(drainer, "insert", refused)


def refused_logs(caplog) -> list[logging.LogRecord]:
    """The records that say a scan was refused and set aside (`refused_scans._log_refused`)."""
    return [r for r in caplog.records if r.getMessage().startswith("The database refused a scan")]


def block_refused_folder(monkeypatch) -> Callable[[], None]:
    """Make the refused scans' folder one nothing can be deleted in (read-only, another user's); returns what
    unblocks it."""
    unlink = Path.unlink

    def read_only(path, *args, **kwargs):
        if path.parent == refused_scans.folder():
            raise PermissionError(13, "Permission denied")
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", read_only)
    return lambda: monkeypatch.setattr(Path, "unlink", unlink)
