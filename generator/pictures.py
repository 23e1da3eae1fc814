"""The halftone engine's inputs on the Django side: which engine is the default here, and the picture a job draws.

Shared by the generation page (`generator.forms`) and the API (`generator.api`), so both refuse the same files
with the same messages and store the same thing: a picture is decoded, checked (`images.open_picture`),
scaled to at most `STORED_SIDE` and re-encoded as PNG; the uploaded file itself is never stored or served.
An earlier candidate is looked up among the job's team's candidates only: another team's id reads as missing.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image

from generator import halftone, images, jobs
from generator.models import Candidate, GenerationJob, Prompt

HALFTONE = GenerationJob.Engine.HALFTONE.value
DIFFUSION = GenerationJob.Engine.DIFFUSION.value
STORED_SIDE = halftone.MAX_SIZE  # no job draws larger, so nothing larger is kept
NEEDS_PICTURE = "The halftone engine draws the code into a picture: upload one or pick an earlier candidate."
NO_WEIGHTS_NOTE = (
    "This server has no GPU and no diffusion model weights, so the diffusion engine could only draw noise "
    "with its tiny test model. The halftone engine needs neither: it draws the code into your picture."
)


def diffusion_has_weights() -> bool:
    """Whether the diffusion engine would draw real pictures: weights named in settings, or a GPU to fetch the
    real defaults onto; otherwise it falls back to the tiny test model (`jobs.engine_spec`)."""
    return bool(settings.QART["MODEL"]) or jobs.cuda_available()


def default_engine(picture_given: bool = True) -> str:
    """The engine a request that names none gets: halftone where diffusion has no weights and there is a picture.

    Without a picture the halftone engine has nothing to draw, so such a request keeps the diffusion engine.
    """
    return HALFTONE if picture_given and not diffusion_has_weights() else DIFFUSION


def engine_note() -> str:
    """Why the page starts on the halftone engine, or "" when it does not."""
    return "" if diffusion_has_weights() else NO_WEIGHTS_NOTE


def from_upload(upload) -> Image.Image:
    """The picture in an uploaded file, checked.

    Raises:
        images.ImageError: too large, animated, too small, not an image... (the message says which).
    """
    cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if upload.size is not None and upload.size > cap:
        # Checked before reading: the file may be far larger than memory should hold.
        raise images.ImageError(
            f"{upload.name}: the file is {upload.size / 2**20:.1f} MB; pictures up to {cap / 2**20:.0f} MB are "
            "accepted. Save it smaller first."
        )
    data = upload.read()
    try:
        return images.open_picture(data, max_bytes=cap, max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
    except images.ImageError as exc:
        raise images.ImageError(str(exc).replace("the upload", upload.name or "the upload", 1)) from None


def from_candidate(team, pk) -> Image.Image:
    """The image of candidate `pk` of `team`'s jobs.

    Raises:
        images.ImageError: no such candidate in that team (whether it exists elsewhere is not said), or its
            file is gone.
    """
    candidate = Candidate.objects.filter(pk=pk, job__team=team).first() if team is not None else None
    if candidate is None:
        raise images.ImageError("Pick one of this team's earlier candidates.")
    try:
        with candidate.image.open("rb") as stored:
            return images.open_picture(stored.read(), max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
    except OSError:
        raise images.ImageError("That candidate's image is missing; pick another or upload a picture.") from None


def chosen(upload, team, candidate_pk) -> Image.Image:
    """A halftone job's picture, as the page's form and the API take it: the upload if any, else the team's earlier
    candidate `candidate_pk`.

    Raises:
        images.ImageError: neither was given, or the one given cannot be used; `picture_field(upload,
            candidate_pk)` names the input the message belongs to.
    """
    if upload:
        return from_upload(upload)
    if candidate_pk is not None:
        return from_candidate(team, candidate_pk)
    raise images.ImageError(NEEDS_PICTURE)


def picture_field(upload, candidate_pk) -> str:
    """The input a `chosen` error belongs to: the earlier candidate when only that was given, else the upload."""
    return "earlier_candidate" if candidate_pk is not None and not upload else "picture"


def attach(job: GenerationJob, picture: Image.Image) -> None:
    """Store `picture` as the job's `init_image`: scaled to at most `STORED_SIDE` and re-encoded as PNG."""
    picture = picture.copy()
    picture.thumbnail((STORED_SIDE, STORED_SIDE), Image.Resampling.LANCZOS)
    job.init_image.save(f"picture-{secrets.token_hex(8)}.png", ContentFile(images.png_bytes(picture)), save=False)


def save_new_job(job: GenerationJob, user, picture: Image.Image | None) -> GenerationJob:
    """Store a validated, unsaved job (the page's form and the API both make one): remember its prompt and, for the
    halftone engine, attach its picture. Enqueueing is the caller's (`jobs.enqueue_generation`, after commit)."""
    if job.engine == HALFTONE:
        # A halftone job's prompt only labels it: kept off the team's gallery of prompts to draw from.
        job.prompt = Prompt.remember(user, job.prompt.text, "", team=None)
        attach(job, picture)
    else:
        job.prompt = Prompt.remember(user, job.prompt.text, job.prompt.negative_text, team=job.team)
    job.save()
    return job

