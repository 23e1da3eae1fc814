"""Shared by the qartsite tests: the API's OpenAPI schema, generated once per module; the admin's cast (every member
staff) and a row of every team-owned model for each of two teams (`linked`: ours pointing into theirs); one stored
media file of each kind (`files`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from tests.qartsite.admin_pages import team_rows


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return APIClient().get("/api/schema/?format=json").json()


@pytest.fixture
def cast(team_users):
    from tests.conftest import make_staff

    make_staff(team_users.owner, team_users.teammate, team_users.viewer, team_users.outsider)
    return team_users


@pytest.fixture
def rows(cast):
    return {"ours": team_rows(cast.team, cast.owner), "theirs": team_rows(cast.other_team, cast.outsider)}


@pytest.fixture
def linked(rows):
    """Our rows pointing into the other team's through the relations that do not decide a row's team, as rows made
    before the admin's one-team forms may: our placement prints their candidate, our started job is for their
    placement, our session holds their candidate, our sample is their job's, our preset their sweep's."""
    from campaigns.models import Placement
    from generator.models import (
        Candidate,
        EvalRun,
        EvalSample,
        GenerationJob,
        GenerationPreset,
        LabelingItem,
        LabelingSession,
    )

    ours, theirs = rows["ours"], rows["theirs"]
    Placement.objects.filter(pk=ours[Placement].pk).update(artwork=theirs[Candidate])
    GenerationJob.objects.filter(pk=ours[GenerationJob].pk).update(placement=theirs[Placement], status="done")
    ours[LabelingSession].candidates.add(theirs[Candidate])
    LabelingItem.objects.create(session=ours[LabelingSession], candidate=theirs[Candidate], position=9)
    EvalSample.objects.filter(pk=ours[EvalSample].pk).update(job=theirs[GenerationJob])
    GenerationPreset.objects.filter(pk=ours[GenerationPreset].pk).update(source_run=theirs[EvalRun])
    return rows


def png_bytes(shade: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (shade, shade, shade)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def files(team_users, media_storage) -> SimpleNamespace:
    """One stored file of each kind for the team: a candidate, the job's control image, uploaded picture and logo,
    and a labeling image; each a distinct PNG, so a test can tell which file came back."""
    from django.core.files.base import ContentFile

    from generator.models import Candidate, GenerationJob, LabelingItem, LabelingSession, Prompt

    prompt = Prompt.objects.create(owner=team_users.owner, team=team_users.team, text="a misty forest")
    job = GenerationJob.objects.create(owner=team_users.owner, team=team_users.team, prompt=prompt,
                                       content="https://qart.example/r/abc")
    job.control_image.save(f"control-{job.pk}.png", ContentFile(png_bytes(10)), save=False)
    job.init_image.save("picture-0123456789abcdef.png", ContentFile(png_bytes(20)), save=False)
    job.logo.save("logo-0123456789abcdef.png", ContentFile(png_bytes(25)), save=False)
    job.save()
    candidate = Candidate(job=job, index=0, seed=123, scan_probability=0.9, verdict="pass", rank=1)
    candidate.image.save("candidate-00-seed123.png", ContentFile(png_bytes(30)))
    session = LabelingSession.objects.create(name="Office phones", team=team_users.team, created_by=team_users.owner)
    item = LabelingItem(session=session, candidate=candidate)
    item.image.save("item-link.png", ContentFile(png_bytes(40)))
    return SimpleNamespace(job=job, candidate=candidate, item=item, fields={
        "candidate": candidate.image, "control": job.control_image, "picture": job.init_image, "logo": job.logo,
        "labeling": item.image,
    })
