"""Generations built straight with the ORM for the tests of every app: jobs with candidates, a placement, a posted
generation form, and the pictures they hold.

Three job builders, each for what its tests look at:
- `job_with_candidates`: `count` coloured candidates ranked 1..count, stored worst first (the pages sort by rank).
- `job_with_ranks`: one tiny black candidate per given rank (None: unranked), judged by the active model.
- `job_of_clean_codes`: a finished job whose candidates are clean codes of its content, so they restamp and decode.
"""

from __future__ import annotations

import io

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from campaigns.models import Campaign, Placement
from generator.core.codes import decision, qr
from generator.models import Candidate, GenerationJob, Prompt

CONTENT = "https://qart.example/r/AbC123"
SHORT_LINK = "https://qart.example/r/AbC12345"
VALID = {"prompt": "a koi pond at dawn", "negative_prompt": "blurry", "content": CONTENT, "look": "balanced",
         "speed": "fast", "guidance_scale": "3.5", "control_end": "1.0", "size": "768", "candidates_per_batch": "8",
         "style": "square", "background": "white"}


def solid_png(colour: tuple[int, int, int] | str, size: int = 64) -> ContentFile:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="candidate.png")


def art_png(image: Image.Image) -> ContentFile:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name="art.png")


def qr_png(text: str) -> bytes:
    buffer = io.BytesIO()
    qr.render_control_image(qr.encode(text), 240).save(buffer, format="PNG")
    return buffer.getvalue()


def job_with_candidates(team, owner, count: int = 0, **fields) -> GenerationJob:
    prompt = Prompt.objects.create(owner=owner, team=team, text=f"{team.name}'s lighthouse", negative_text="")
    fields = {"owner": owner, "team": team, "prompt": prompt, "content": CONTENT, **fields}
    job = GenerationJob.objects.create(**fields)
    for index in reversed(range(count)):
        # Stored worst first: the page must sort by rank.
        Candidate.objects.create(
            job=job, index=index, seed=100 + index, image=solid_png((index * 40, 90, 160)), rank=index + 1,
            scan_probability=0.9 - index * 0.1, verdict="pass" if index < 3 else "fail",
            aesthetic_score=6.0 - index * 0.1, repaired=index == 1, verifier_model=decision.MODEL,
        )
    return job


def job_with_ranks(team, owner, ranks: tuple = (), **fields) -> GenerationJob:
    """A saved generation of `team` with one candidate per rank (None: unranked), each a tiny PNG."""
    prompt = Prompt.objects.create(owner=owner, text="a misty forest")
    job = GenerationJob.objects.create(team=team, owner=owner, prompt=prompt, content=SHORT_LINK, **fields)
    for index, rank in enumerate(ranks):
        Candidate.objects.create(job=job, index=index, seed=1000 + index, image=solid_png("black", 8), rank=rank,
                                 verdict="pass", scan_probability=round(0.9 - index / 10, 2),
                                 aesthetic_score=5.0 + index,
                                 verifier_model=decision.MODEL)  # judged by the active model: not verified again
    return job


def job_of_clean_codes(team, owner, probabilities=(0.9, 0.2), content: str = SHORT_LINK) -> GenerationJob:
    """A finished job whose candidates are clean codes of its content (so they restamp and decode)."""
    prompt = Prompt.objects.create(owner=owner, team=team, text=f"{team.name}'s lighthouse")
    job = GenerationJob.objects.create(owner=owner, team=team, prompt=prompt, content=content, status="done")
    art = qr.render_control_image(qr.encode(content, "H", max_version=40), 264)
    for index, p in enumerate(probabilities):
        Candidate.objects.create(job=job, index=index, seed=index, image=art_png(art), rank=index + 1,
                                 scan_probability=p, verdict="pass" if p >= 0.5 else "fail")
    return job


def halftone_job(**overrides) -> GenerationJob:
    """A saved halftone job with its picture stored (in this test's storage), not enqueued; `overrides` replace any
    of its fields (`content` and `size` included)."""
    picture = Image.new("RGB", (320, 320), (240, 200, 60))
    ImageDraw.Draw(picture).ellipse((40, 40, 280, 280), fill=(30, 90, 180))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    user, _ = get_user_model().objects.get_or_create(username="maker")
    fields = {"owner": user, "prompt": Prompt.remember(user, "", ""), "content": CONTENT, "size": 256,
              "candidates_per_batch": 3, "seed": 9, "engine": GenerationJob.Engine.HALFTONE, **overrides}
    job = GenerationJob(**fields)
    job.init_image.save("picture.png", ContentFile(buffer.getvalue()), save=False)
    job.save()
    return job


def candidate(owner, team, content: str = "https://example.com/r/x") -> Candidate:
    """A passing candidate of a finished job of `team`, its picture a name only (nothing stored)."""
    prompt = Prompt.objects.create(owner=owner, text="a lighthouse")
    job = GenerationJob.objects.create(owner=owner, team=team, prompt=prompt, content=content, status="done")
    return Candidate.objects.create(job=job, index=0, seed=1, image="generations/1/c0.png", scan_probability=0.9,
                                    verdict="pass", rank=1, verifier_model=decision.MODEL)  # not verified again


def placement_of(team, name: str = "Station Poster") -> Placement:
    campaign = Campaign.objects.create(team=team, name=f"{team.name} spring", destination="https://shop.example.com/")
    return Placement.objects.create(campaign=campaign, name=name)


def many_placements(team, count: int, campaign: str = "Spring") -> Campaign:
    """A campaign of `team` named `campaign` with `count` placements "Poster 0"... and slugs "<campaign>0000"...
    (stored in one query: a team past the generation page's select, `placement_picker.SELECT_MAX`)."""
    made = Campaign.objects.create(team=team, name=campaign, destination="https://shop.example.com/")
    Placement.objects.bulk_create(Placement(campaign=made, name=f"Poster {n}", slug=f"{campaign[:8].lower()}{n:04d}")
                                  for n in range(count))
    return made


def for_placement(job: GenerationJob, placement: Placement, own: bool = False) -> None:
    """The job made for `placement` (its own job with `own`): its candidates carry the placement's short link."""
    GenerationJob.objects.filter(pk=job.pk).update(content=f"http://testserver/r/{placement.slug}",
                                                   placement=placement if own else None)
