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
tiny_note = importlib.import_module("generator.migrations.0016_tiny_model_note_dropped")


@pytest.mark.django_db
def test_0008_goes_back_only_while_every_job_and_prompt_has_an_owner(team_users):
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a lighthouse")
    GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt, content="x")
    owners_set_null.refuse_ownerless_rows(apps, None)  # nothing to refuse

    team_users.owner.delete()  # their job and prompt stay, ownerless: going back made a NOT NULL column fail

    with pytest.raises(CommandError, match=r"1 generation job\(s\) and 1 prompt\(s\) outlived their owner"):
        owners_set_null.refuse_ownerless_rows(apps, None)


@pytest.mark.django_db
@pytest.mark.parametrize(("backfill", "flag", "said", "plain"), [
    (picture_fights.mark_jobs_whose_picture_fought, "picture_fights",
     "8 of 8 variants scan. This picture fights the code: the code that scans and keeps the most of it has a "
     "likeness of 3 % to your picture; below 40 % the picture is hard to make out.", "8 of 8 variants scan."),
    (tiny_model.mark_jobs_of_the_tiny_model, "tiny_model",
     "3 of 8 candidates scan. (tiny model: images are noise)", "3 of 8 candidates scan."),
], ids=["0013 picture fights", "0014 tiny model"])
def test_a_flag_that_was_a_phrase_is_set_from_the_messages_that_said_it(team_users, backfill, flag, said, plain):
    # The page read these warnings from the message; once they were columns, finished jobs must keep them.
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="")
    warned = GenerationJob.objects.create(team=team_users.team, prompt=prompt, content="x", scannable=True,
                                          result_message=said)
    fine = GenerationJob.objects.create(team=team_users.team, prompt=prompt, content="x", scannable=True,
                                        result_message=plain)
    assert not getattr(warned, flag) and not warned.result_warns  # before the step: a new column, False everywhere

    backfill(apps, None)

    warned.refresh_from_db()
    fine.refresh_from_db()
    assert getattr(warned, flag) and warned.result_warns and not getattr(fine, flag) and not fine.result_warns


@pytest.mark.django_db
def test_0016_drops_the_tiny_model_note_its_flag_says_and_puts_it_back_going_back(team_users):
    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="")
    noise = GenerationJob.objects.create(team=team_users.team, prompt=prompt, content="x", tiny_model=True,
                                         result_message="3 of 8 candidates scan. (tiny model: images are noise)")
    real = GenerationJob.objects.create(team=team_users.team, prompt=prompt, content="x",
                                        result_message="3 of 8 candidates scan.")

    tiny_note.drop_the_note(apps, None)
    noise.refresh_from_db()
    real.refresh_from_db()
    assert noise.result_message == real.result_message == "3 of 8 candidates scan."

    tiny_note.put_the_note_back(apps, None)
    noise.refresh_from_db()
    real.refresh_from_db()
    assert noise.result_message.endswith("(tiny model: images are noise)")
    assert real.result_message == "3 of 8 candidates scan."
