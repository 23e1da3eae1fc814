"""The check every new job passes (`generator.job_parameters.validate_job`): a bad parameter is refused with its
message, on every engine."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from generator import job_parameters
from generator.core.codes import qr
from generator.models import GenerationJob, Prompt

URL = "https://qart.example/r/AbC123"
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"steps": 0}, "Steps must be between 1 and 150"),
        ({"conditioning_scale": 9}, "Conditioning scale must be between"),
        ({"size": 100}, "Size must be between 256 and 1024"),
        ({"strength": 2}, "Strength must be above 0"),
        ({"scheduler": "nope"}, "Unknown scheduler"),
        ({"scheduler": "lcm"}, "the few-step preset needs a few-step LoRA, QART_FEWSTEP_LORA"),
        ({"content": "x" * 300}, "too long for QR art"),
        ({"content": ""}, "Content is empty"),
        ({"candidates_per_batch": 40}, "Candidates per batch must be between 1 and 16"),
        ({"style": "hearts"}, "Style must be one of"),
    ],
)
def test_bad_parameters_are_refused_with_their_message(overrides, message):
    user, _ = get_user_model().objects.get_or_create(username="maker")
    prompt = Prompt.remember(user, "a fox", "")
    job = GenerationJob(owner=user, prompt=prompt, **{"content": URL, **overrides})
    with pytest.raises((ValueError, qr.ContentError)) as exc:
        job_parameters.validate_job(job)
    assert message in str(exc.value)


@pytest.mark.parametrize("engine", ["diffusion", "halftone"])
@pytest.mark.parametrize(("name", "value"), [
    ("guidance_scale", float("nan")), ("control_start", float("inf")), ("strength", float("-inf")),
])
def test_every_engine_refuses_parameters_that_are_not_finite(engine, name, value):
    # Halftone ignores them, but they are stored and served: one NaN broke every later list of the team's jobs.
    user, _ = get_user_model().objects.get_or_create(username="maker")
    job = GenerationJob(owner=user, prompt=Prompt.remember(user, "a fox", ""), content=URL, engine=engine,
                        **{name: value})
    label = name.replace("_", " ").capitalize()
    with pytest.raises(ValueError, match=f"^{label} must be a finite number, got {value}.$"):
        job_parameters.validate_job(job)


def test_a_refused_value_is_quoted_as_every_message_quotes_it():
    # The page and the API show this message: it quoted with repr ("it's\n"), as no other message quotes.
    user, _ = get_user_model().objects.get_or_create(username="maker")
    job = GenerationJob(owner=user, prompt=Prompt.remember(user, "a fox", ""), content=URL, scheduler="it's\n")
    with pytest.raises(ValueError) as exc:
        job_parameters.validate_job(job)
    assert str(exc.value).startswith("Unknown scheduler “it's\\u000a”: choose one of ")
