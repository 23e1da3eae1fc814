"""Restamp a candidate for a placement: a copy of the picture that carries the placement's own short link.

The Django side of `generator.core.codes.restamp` for artwork (labeling has its own, `generator.evals.sessions`).
The copy is a new generation of one candidate, so that everything that reads "the text a candidate carries"
(`GenerationJob.content`) stays true: its job carries the placement's link, records where it came from, and its
candidate has its own scan verdict, taken on the restamped pixels.
"""

from __future__ import annotations

from io import BytesIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from campaigns import artwork
from campaigns.artwork import LINK, ArtworkRefused
from generator import verifier_models
from generator.core.codes import images, qr, repair, restamp, scan
from generator.evals.sessions import art_and_grid
from generator.models import Candidate, GenerationJob

# What a restamped copy shares with its original's job: the parameters that made the picture (the halftone
# engine draws it again from these at print size).
COPIED_FIELDS = ("team", "prompt", "steps", "guidance_scale", "conditioning_scale", "control_start", "control_end",
                 "strength", "size", "scheduler", "seed", "style", "background", "ecc", "init_image", "repair",
                 "engine", "model_id", "controlnet_id")


def restamp_for(candidate: Candidate, placement, short_url: str, *, user=None) -> Candidate:
    """A copy of `candidate` that carries `short_url`, stored as a one-candidate generation for `placement`.

    Args:
        candidate: the candidate made for another link.
        placement: the placement the copy is for.
        short_url: the placement's absolute short link.
        user: who asked (the new job's owner).

    Returns:
        The new candidate, verified: it may fail the scan check like any other.

    Raises:
        ArtworkRefused: the picture cannot be restamped (the link does not fit its code, or its grid is not
            found); the message says why.
    """
    job = candidate.job
    try:
        art, grid = art_and_grid(candidate)
        made = restamp.restamp(art, job.content, short_url, ecc=job.ecc, grid=grid)
    except (OSError, images.ImageError) as exc:
        raise ArtworkRefused(f"This picture cannot be restamped: its image cannot be read ({exc}).", LINK) from None
    except (restamp.RestampError, repair.RepairError, qr.ContentError) as exc:
        raise ArtworkRefused(f"This picture cannot be restamped for this placement: {exc}", LINK) from None
    result = scan.verify(made.image, short_url, threshold=settings.QART["SCAN_THRESHOLD"],
                         model=verifier_models.active_model())
    judged = verifier_models.judged_fields(result)
    buffer = BytesIO()
    made.image.save(buffer, format="PNG")
    with transaction.atomic():
        copy = GenerationJob(
            **{name: getattr(job, name) for name in COPIED_FIELDS}, owner=user if user else job.owner,
            placement=placement, content=short_url, status=GenerationJob.Status.DONE, progress=1.0, batches=1,
            candidates_per_batch=1, max_batches=1, scannable=result.passed,
            result_message=(f"Restamped from candidate #{candidate.rank or candidate.index + 1} of generation "
                            f"#{job.pk} to carry "
                            f"{short_url}: {made.modules_changed} modules changed."),
        )
        copy.save()
        row = Candidate(
            job=copy, index=0, batch=0, seed=candidate.seed, aesthetic_score=candidate.aesthetic_score, rank=1,
            variant=candidate.variant, fidelity_ssim=candidate.fidelity_ssim, color_error=candidate.color_error,
            **{**judged, "scan_details": {**judged["scan_details"], "restamped_from": candidate.pk,
                                          "modules_changed": made.modules_changed}},
        )
        row.image.save(f"restamped-from-{candidate.pk}.png", ContentFile(buffer.getvalue()), save=False)
        row.save()
    return row


def choose(placement, candidate: Candidate, *, short_url: str, user=None, restamp: bool = False,
           print_anyway_reason: str = "") -> Candidate:
    """The candidate to make `placement`'s artwork: `candidate`, or a copy restamped for the placement when it was
    made for another link and `restamp` is asked. Every entry point (form, API, admin, "Use this one") comes here.

    Args:
        placement: the saved placement.
        candidate: the candidate asked for.
        short_url: the placement's absolute short link (what a restamped copy carries).
        user: who asks (the copy's owner).
        restamp: restamp a candidate made for another link.
        print_anyway_reason: why a failing candidate is printed anyway; empty: it must pass.

    Returns:
        The candidate to apply (`artwork.apply`).

    Raises:
        ArtworkRefused: why not; its `candidate` is the one judged (the copy, when one was made).
    """
    refused = artwork.problem(placement, candidate, print_anyway_reason=print_anyway_reason)
    if refused is not None and refused.code == LINK and restamp:
        candidate = restamp_for(candidate, placement, short_url, user=user)
        refused = artwork.problem(placement, candidate, print_anyway_reason=print_anyway_reason)
    if refused is not None:
        raise refused
    return candidate
