"""qartsite.sql: `one_of` matches exactly the values given, whatever characters they hold, on either database;
`copy_rows` stores them as given (PostgreSQL's COPY)."""

from __future__ import annotations

import uuid

import pytest
from django.db import DataError, OperationalError, ProgrammingError, connection
from django.utils import timezone

from campaigns.models import Campaign, Placement, ScanEvent
from qartsite.models import Team
from qartsite.sql import copy_rows, one_of

pytestmark = pytest.mark.django_db

AWKWARD = ['a,b', 'q"uote', "back\\slash", "{brace}", "sp ace", "NULL", "ünï", "'single'"]


def test_text_values_match_exactly_with_quotes_commas_and_braces():
    for name in [*AWKWARD, "a", "b", "plain"]:
        Team.objects.create(name=name)
    found = set(Team.objects.filter(one_of(Team, "name", AWKWARD)).values_list("name", flat=True))
    assert found == set(AWKWARD)
    assert not Team.objects.filter(one_of(Team, "name", ["nobody"])).exists()


def test_uuid_and_integer_values():
    campaign = Campaign.objects.create(team=Team.objects.create(name="T"), name="C",
                                       destination="https://example.com/")
    placement = Placement.objects.create(campaign=campaign, name="P")
    ids = [uuid.uuid4() for _ in range(3)]
    for event_id in ids:
        ScanEvent.objects.create(placement=placement, event_id=event_id, time=timezone.now())
    wanted = [ids[0], ids[2], uuid.uuid4()]
    assert set(ScanEvent.objects.filter(one_of(ScanEvent, "event_id", wanted))
               .values_list("event_id", flat=True)) == {ids[0], ids[2]}
    assert ScanEvent.objects.filter(one_of(ScanEvent, "placement", [placement.pk, placement.pk + 99])).count() == 3


def test_it_combines_with_joins_without_ambiguous_columns():
    team = Team.objects.create(name="Joined")
    Campaign.objects.create(team=team, name="C", destination="https://example.com/")
    Campaign.objects.create(team=Team.objects.create(name="Other"), name="C", destination="https://example.com/")
    # both tables have a "name" column: the filter names its own table's
    assert Campaign.objects.filter(one_of(Campaign, "name", ["C"]), team__name="Joined").count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY: PostgreSQL's")
def test_copy_rows_stores_awkward_text_times_and_ids_as_given():
    campaign = Campaign.objects.create(team=Team.objects.create(name="T"), name="C",
                                       destination="https://example.com/")
    placement = Placement.objects.create(campaign=campaign, name="P")
    tricky = [*AWKWARD, "tab\there", "new\nline", "\\N", ""]
    when = timezone.now()
    rows = [(placement.pk, uuid.uuid4(), when, text) for text in tricky]
    # COPY fills no Django defaults: every column without a database default is named
    blank = [field for field in ScanEvent._meta.concrete_fields
             if not field.primary_key and field.name not in ("placement", "event_id", "time", "browser")]
    copy_rows(ScanEvent, ["placement_id", "event_id", "time", "browser", *(field.column for field in blank)],
              [(*row, *(field.get_default() for field in blank)) for row in rows])
    stored = set(ScanEvent.objects.values_list("placement_id", "event_id", "time", "browser"))
    assert stored == set(rows)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY: PostgreSQL's")
def test_copy_rows_raises_djangos_database_error_as_other_queries_do():
    # The drainer retries on Django's DatabaseError; psycopg's own (a server gone mid-COPY, text it refuses) stopped it.
    campaign = Campaign.objects.create(team=Team.objects.create(name="T"), name="C",
                                       destination="https://example.com/")
    placement = Placement.objects.create(campaign=campaign, name="P")
    with pytest.raises(DataError):
        copy_rows(ScanEvent, ["placement_id", "event_id", "time", "browser"],
                  [(placement.pk, uuid.uuid4(), timezone.now(), "nul\x00")])


@pytest.mark.parametrize(("error", "missing"), [
    (ProgrammingError('relation "campaigns_placement" does not exist\nLINE 1: ...'), True),
    (OperationalError("no such table: campaigns_placement"), True),
    (OperationalError("connection to server at \"127.0.0.1\", port 5432 failed: Connection refused"), False),
    (ValueError("relation x does not exist"), False),
])
def test_it_tells_a_database_without_tables_from_one_that_is_away(error, missing):
    # A drainer started before `migrate` logged "the database is away (relation ... does not exist)".
    from qartsite.sql import not_migrated

    assert not_migrated(error) is missing
