"""Database helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import DatabaseError, connection, migrations, models
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

NOT_MIGRATED = "The database has no qart tables yet: run `manage.py migrate` (make run does)."


def not_migrated(exc: BaseException) -> bool:
    """Whether a database error says a table is missing (a worker or drainer started before `migrate`): PostgreSQL's
    "relation ... does not exist", SQLite's "no such table". Logged as "the database is away", it sent people
    looking for a connection problem."""
    text = str(exc)
    return isinstance(exc, DatabaseError) and ("no such table" in text or
                                               ("relation" in text and "does not exist" in text))


def lock_rows(model: type[models.Model], pks: Iterable[Any], *, deleting: bool = False) -> list[Any]:
    """Lock the rows of `model` with these ids (None left out) until the transaction ends, and return the ids found.

    By id, one order for every caller, so no two wait for each other in a circle. FOR NO KEY UPDATE, which lets an
    insert that only points at a row through; `deleting`: FOR UPDATE, which holds such inserts off too, so a row
    inserted meanwhile cannot point at a row being deleted (nor fail its delete)."""
    ids = sorted({pk for pk in pks if pk is not None})
    return list(model.objects.select_for_update(no_key=not deleting).filter(pk__in=ids).order_by("pk")
                .values_list("pk", flat=True))


def one_of(model: type[models.Model], field: str, values: Collection[Any]) -> Q | RawSQL:
    """A filter for `model`'s queries: `field` is one of `values` (str, UUID or int).

    The ORM's `field__in` sends one parameter per value; for the few hundred keys of a scan batch that costs the
    drainer more CPU than the query itself (bench/RESULTS.md). On PostgreSQL the values travel as one array literal
    instead, compared with `= ANY(...)`; elsewhere this is `field__in`.
    """
    if connection.vendor != "postgresql":
        return Q(**{f"{field}__in": values})
    model_field = model._meta.get_field(field)
    column = f"{connection.ops.quote_name(model._meta.db_table)}.{connection.ops.quote_name(model_field.column)}"
    array_type = model_field.db_type(connection)  # "uuid", "varchar(32)", "bigint", ...
    return RawSQL(f"{column} = ANY(%s::{array_type}[])", (array_literal(values),), output_field=BooleanField())


def copy_rows(model: type[models.Model] | str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL only: insert `rows` (values of `columns`, in that order) into `model`'s table (or the table `model`
    names) with COPY, which costs a tenth of bulk_create's CPU per row (no model instances, no per-value
    preparation; bench/RESULTS.md).
    COPY has no ON CONFLICT: the caller makes sure none of the rows is stored already."""
    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    table = model if isinstance(model, str) else model._meta.db_table
    # The driver's own cursor raises the driver's errors: wrapped as Django's (DatabaseError), as every other query's
    # are, so that the drainer waits for a database that went away mid-COPY instead of stopping.
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def array_literal(values: Iterable[Any]) -> str:
    """PostgreSQL's text form of an array of `values` (each quoted, so commas, quotes, braces and the word NULL stay
    plain text), for one parameter cast to an array type: `%s::text[]`, `%s::timestamptz[]`. Datetimes go as ISO
    8601."""
    return "{" + ",".join('"' + _text(value).replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime | date) else str(value)


class AddIndexOnline(AddIndexConcurrently):
    """A migration's AddIndex that does not stop writes while it builds: CREATE INDEX CONCURRENTLY on PostgreSQL (the
    migration must set `atomic = False`), a plain CREATE INDEX on SQLite, which has no concurrent writers to spare.
    A plain AddIndex on a table of millions of scan rollups held every write to it for the whole build (~15 s for
    5.9 M rows)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
