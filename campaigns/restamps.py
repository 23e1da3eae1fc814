"""Restamp a candidate for a placement: a copy of the picture that carries the placement's own short link.

The Django side of `generator.core.codes.restamp` for artwork (labeling has its own, `generator.evals.sessions`).
The copy is a new generation of one candidate, so that everything that reads "the text a candidate carries"
(`GenerationJob.content`) stays true: its job carries the placement's link, records where it came from, and its
candidate has its own scan verdict, taken on the restamped pixels.

Restamping and verifying take about a second, so entry points call `prepare` before they take an edit's locks
(`campaigns.models.locked_copy`) and `choose` under them: `choose` then finds the verdicts current and the copy made,
and judges again, quickly, all the same.
"""

from __future__ import annotations

from io import BytesIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from campaigns import artwork
from campaigns.artwork import LINK, ArtworkRefused
from generator import verifier_models
from generator.core.codes import decision, grids, images, qr, restamp, scan
from generator.evals.sessions import art_and_grid
from generator.models import Candidate, GenerationJob
from qartsite.plurals import counted

# What a restamped copy shares with its original's job: the parameters that made the picture (the halftone
# engine draws it again from these at print size).
COPIED_FIELDS = ("team", "prompt", "steps", "guidance_scale", "conditioning_scale", "control_start", "control_end",
                 "strength", "size", "scheduler", "seed", "style", "background", "ecc", "init_image", "repair",
                 "engine", "model_id", "controlnet_id")


def restamp_for(candidate: Candidate, placement, short_url: str, *, user=None) -> Candidate:
    """A copy of `candidate` that carries `short_url`, stored as a one-candidate generation for `placement`; the copy
    made before for this placement and link is used again while the active verifier model is the one that judged it
    (a second submit, or a form shown again for another field's error, each made a copy; two sent at the very same
    moment may still make two, and the newest is used).

    Args:
        candidate: the candidate made for another link.
        placement: the placement the copy is for.
        short_url: the placement's absolute short link.
        user: who asked (a new job's owner).

    Returns:
        The copy, verified: it may fail the scan check like any other.

    Raises:
        ArtworkRefused: the picture cannot be restamped (the link does not fit its code, or its grid is not
            found); the message says why.
    """
    model = verifier_models.active_model()
    found = restamped_copy(candidate, placement, short_url, model)
    if found is not None:
        return found
    job = candidate.job
    try:
        art, grid = art_and_grid(candidate)
        # The code as the art carries it: a copy restamped before may keep a larger version than its text needs.
        made = restamp.restamp(art, job.content, short_url, ecc=job.ecc, grid=grid, code=candidate.art_code())
    except (OSError, images.ImageError) as exc:
        raise ArtworkRefused(f"This picture cannot be restamped: its image cannot be read ({exc}).", LINK) from None
    except (restamp.RestampError, grids.RepairError, qr.ContentError) as exc:
        raise ArtworkRefused(f"This picture cannot be restamped for this placement: {exc}", LINK) from None
    result = scan.verify(made.image, short_url, threshold=settings.QART["SCAN_THRESHOLD"], model=model)
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
                            f"{short_url}: {counted(made.modules_changed, 'square')} of the code changed."),
        )
        copy.save()
        row = Candidate(
            job=copy, index=0, batch=0, seed=candidate.seed, aesthetic_score=candidate.aesthetic_score, rank=1,
            variant=candidate.variant, fidelity_ssim=candidate.fidelity_ssim, color_error=candidate.color_error,
            # The code as restamped (`Candidate.art_code` reads it): its art's version, which may be larger than the
            # new link needs, and the mask nearest its art's, which may not be the one `qr.encode` picks.
            **{**judged, "scan_details": {**judged["scan_details"], "restamped_from": candidate.pk,
                                          "modules_changed": made.modules_changed, "version": made.code.version,
                                          "mask": made.code.mask}},
        )
        row.image.save(f"restamped-from-{candidate.pk}.png", ContentFile(buffer.getvalue()), save=False)
        row.save()
    return row


def restamped_copy(candidate: Candidate, placement, short_url: str, model: decision.DecisionModel) -> Candidate | None:
    """The latest copy of `candidate` restamped for `placement` to carry `short_url` that `model` judged, else None.
    A copy another model judged is left alone: a new one is made and judged by the model that judges now."""
    return (Candidate.objects.filter(job__placement=placement, job__content=short_url, verifier_model=model.id,
                                     scan_details__restamped_from=candidate.pk)
            .select_related("job").order_by("-pk").first())


def prepare(placement, candidate: Candidate | None, *, short_url: str, user=None, restamp: bool = False) -> None:
    """The slow part of `choose`, done before an entry point takes its locks: the candidate's verdict brought up to
    date with the active verifier model and, when a restamp is asked for a candidate of the team made for another
    link, the copy made (or found) with its verdict. Restamping and verifying take about a second, and an edit's
    locks hold the scan drainer (and, on SQLite, every writer) meanwhile.

    Nothing is decided here: `choose`, under the locks, judges again (quickly, as the verdicts are current and
    `restamp_for` finds the copy) and words any refusal.

    Args:
        placement: the saved placement, as read before the locks.
        candidate: the candidate asked for; None: nothing to do.
        short_url: the placement's absolute short link.
        user: who asks (a copy's owner).
        restamp: a restamp is asked for.
    """
    if candidate is None or candidate.pk == placement.artwork_id:
        return  # unchanged artwork is not judged again (`choose` is not called for it)
    refused = artwork.problem(placement, candidate)
    if refused is not None and refused.code == LINK and restamp:
        try:
            restamp_for(candidate, placement, short_url, user=user)
        except (ArtworkRefused, IntegrityError):  # (the placement deleted meanwhile: its copy cannot be stored)
            pass  # `choose` meets it again under the locks and says why, or the lock finds the placement gone


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
