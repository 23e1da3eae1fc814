"""qartsite.sql: `one_of` matches exactly the values given, whatever characters they hold, on either database."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Placement, ScanEvent
from qartsite.models import Team
from qartsite.sql import one_of

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
