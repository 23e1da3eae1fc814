"""Steps of the generator migrations, run on the current models (their fields are the ones the steps read)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.core.management.base import CommandError

from generator.models import GenerationJob, Prompt

owners_set_null = importlib.import_module("generator.migrations.0008_owners_set_null")
picture_fights = importlib.import_module("generator.migrations.0013_generationjob_picture_fights")
tiny_model = importlib.import_module("generator.migrations.0014_generationjob_tiny_model")


@pytest.mark.django_db
def test_0008_goes_back_only_while_every_job_and_prompt_has_an_owner(team_users):
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a lighthouse")
    GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt, content="x")
    owners_set_null.refuse_ownerless_rows(apps, None)  # nothing to refuse

    team_users.owner.delete()  # their job and prompt stay, ownerless: going back made a NOT NULL column fail

    with pytest.raises(CommandError, match=r"1 generation job\(s\) and 1 prompt\(s\) outlived their owner"):
        owners_set_null.refuse_ownerless_rows(apps, None)


@pytest.mark.django_db
def test_0013_keeps_the_warning_of_jobs_whose_message_said_the_picture_fought(team_users):
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="")
    said = ("8 of 8 variants scan. This picture fights the code: the code that scans and keeps the most of it has a "
            "likeness of 3 % to your picture; below 40 % the picture is hard to make out.")
    fought = GenerationJob.objects.create(team=team_users.team, prompt=prompt, content="x", scannable=True,
                                          result_message=said)
    fine = GenerationJob.objects.create(team=team_users.team, prompt=prompt, content="x", scannable=True,
                                        result_message="8 of 8 variants scan.")
    assert not fought.result_warns  # before the step: a new column, False for every row

    picture_fights.mark_jobs_whose_picture_fought(apps, None)

    fought.refresh_from_db()
    fine.refresh_from_db()
    assert fought.picture_fights and fought.result_warns and not fine.picture_fights


@pytest.mark.django_db
def test_0014_keeps_the_noise_warning_of_jobs_whose_message_said_the_tiny_model_drew_them(team_users):
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a lighthouse")
    noise = GenerationJob.objects.create(team=team_users.team, prompt=prompt, content="x", scannable=True,
                                         result_message="3 of 8 candidates scan. (tiny model: images are noise)")
    real = GenerationJob.objects.create(team=team_users.team, prompt=prompt, content="x", scannable=True,
                                        result_message="3 of 8 candidates scan.")
    assert not noise.tiny_model  # before the step: a new column, False for every row

    tiny_model.mark_jobs_of_the_tiny_model(apps, None)

    noise.refresh_from_db()
    real.refresh_from_db()
    assert noise.tiny_model and noise.result_warns and not real.tiny_model and not real.result_warns
