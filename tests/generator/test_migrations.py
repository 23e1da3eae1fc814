"""Steps of the generator migrations, run on the current models (their fields are the ones the steps read)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core.management.base import CommandError

from generator.models import GenerationJob, Prompt

owners_set_null = importlib.import_module("generator.migrations.0008_owners_set_null")


@pytest.mark.django_db
def test_0008_goes_back_only_while_every_job_and_prompt_has_an_owner(team_users):
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a lighthouse")
    GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt, content="x")
    owners_set_null.refuse_ownerless_rows(apps, None)  # nothing to refuse

    team_users.owner.delete()  # their job and prompt stay, ownerless: going back made a NOT NULL column fail

    with pytest.raises(CommandError, match=r"1 generation job\(s\) and 1 prompt\(s\) outlived their owner"):
        owners_set_null.refuse_ownerless_rows(apps, None)
