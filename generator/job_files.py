"""A generation job's files in the media storage, for the job layer (`generator.jobs`): the picture it was given, read
back (`stored_picture`), and the candidates it made (`store`): their PNGs encoded while the verifier runs
(`PngEncoder`), their images stored side by side (`store_pool`) before their rows, and the rows written only while the
attempt that made them is still the row's (`this_attempt`; `Superseded` otherwise).

A storage that does not answer is asked once more `QART["STORE_AGAIN_AFTER"]` seconds later (and, while it answers
that it failed for a moment, every `STORE_AGAIN_PAUSE` seconds for as long again); what a failed store wrote is deleted
again, so that no row names a file that is not stored.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.db.models.fields.files import FieldFile
from PIL import Image

from generator import verifier_models
from generator.core.codes import images
from generator.core.engines import ranking
from generator.models import Candidate, GenerationJob
from qartsite.storage import MediaUnavailable

log = logging.getLogger(__name__)

# A job's control image and a batch of 8 candidates stored at once: one file's round trips (a HEAD, then a PUT) stand
# between the last PNG and the rows, not nine files' one after another.
STORE_THREADS = 9
STORE_AGAIN_PAUSE = 1.0  # seconds between the second store's tries while the bucket answers a 5xx (`_store_again`)


@functools.cache
def store_pool() -> ThreadPoolExecutor:
    """The threads that store jobs' files, kept for the life of this process. django-storages keeps an S3 client a
    thread for its lookups (a name's HEAD) and one client on the storage for its uploads, which the threads share
    (`qartsite.storage.S3MediaStorage` gives it a connection pool for all of them). Threads made for one job set up a
    client each (boto's session and client: ~0.1 s of the GIL apiece), which cost more than the round trips they
    saved."""
    return ThreadPoolExecutor(max_workers=STORE_THREADS, thread_name_prefix="store")


def open_store_connections() -> None:
    """Start `store_pool`'s threads and set up each one's client for the media storage (none for the filesystem),
    so that the worker's first job finds them as warm as the others do (the worker calls this before its first job).
    A client that cannot be set up is no error here: the job that needs it says why."""
    storage = storages["default"]  # resolved here: nine threads would each race to build it
    connect = functools.partial(getattr, storage, "connection", None)
    # The pool starts a thread for each task submitted while none is idle: one task a thread, as opening takes longer.
    wait([store_pool().submit(connect) for _ in range(STORE_THREADS)])


class PngEncoder:
    """Candidates' PNGs, encoded in threads from the moment they are decoded (`best_of_n`'s `on_images`; the control
    image's from the job's start), so encoding overlaps generation and verification instead of following them
    (`images.png_bytes` releases the GIL while it encodes). An image repair replaced is encoded when asked for."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="png")
        self.started: dict[int, tuple[Image.Image, Future[bytes]]] = {}  # id -> (the image, kept alive; its PNG)

    def start(self, pictures: list[Image.Image]) -> None:
        for image in pictures:
            self.started[id(image)] = (image, self.pool.submit(images.png_bytes, image))

    def pngs(self, pictures: list[Image.Image]) -> list[bytes]:
        """The PNG of each image, in order: those started are awaited, the rest encoded now, side by side."""
        futures = []
        for image in pictures:
            entry = self.started.get(id(image))
            futures.append(entry[1] if entry is not None and entry[0] is image
                           else self.pool.submit(images.png_bytes, image))
        return [future.result() for future in futures]

    def __enter__(self) -> PngEncoder:
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class Superseded(Exception):
    """The row was handed on while this attempt ran (RQ's cleanup took its worker for gone: cut off from Redis, or
    paused, its heartbeats expired): back to the queue, ended, or taken by a later attempt. This attempt's progress,
    candidates and verdict are not written over what the row says now."""


def this_attempt(job: GenerationJob, running: bool = True) -> dict:
    """The lookups of a row still the attempt's that `job` (as `jobs.run_generation` started it) is, for every write
    of that attempt (`jobs._finish`'s `expect`, its progress, its candidates).

    Args:
        job (`GenerationJob`): the row as its attempt started it, or as read before its start.
        running (`bool`, *optional*, defaults to True): the row running or scoring too; False for the start itself,
            which asks for the row as it was read (queued, or left running by a run that stopped).

    Returns:
        `dict`: field lookups for `GenerationJob.objects.filter`.
    """
    # The count of attempts alone can come back: a stop gives its run's attempt back (`jobs.put_back`), so a stale
    # run's stop and the row's next run made it the superseded attempt's again. Each put back counts a worker stop,
    # so the two together never repeat. A running status too: RQ's cleanup hands the row back to the queue (its retry,
    # `jobs.generation_failed`) before the next attempt counts itself, and a run taken for gone that went on (its
    # worker cut off from Redis) wrote its progress over the queued row ("running" for a job waiting in the queue) and
    # ran to its end beside the retry; it now stops at its next progress step, having written nothing.
    lookups = {"attempts": job.attempts, "worker_stops": job.worker_stops, "finished__isnull": True}
    if running:
        lookups["status__in"] = (GenerationJob.Status.RUNNING, GenerationJob.Status.SCORING)
    return lookups


def update_attempt(job: GenerationJob, **fields) -> None:
    """Write `fields` to `job`'s row while it is still the row of `job`'s attempt (`this_attempt`).

    Args:
        job (`GenerationJob`): the row as its attempt started it.
        **fields: the fields to write.

    Raises:
        Superseded: the row was handed on meanwhile; nothing was written.
    """
    if not GenerationJob.objects.filter(pk=job.pk, **this_attempt(job)).update(**fields):
        raise Superseded()


def store(job: GenerationJob, result: ranking.BestOfNResult, encoder: PngEncoder) -> None:
    """Store `result`'s candidates as `job`'s: their images (`encoder`'s PNGs), then their rows, in place of any an
    earlier attempt left; raises Superseded when the row was handed to a later attempt meanwhile."""
    control_png, *pngs = encoder.pngs([result.control] + [c.image for c in result.candidates])
    rows = []
    for c in result.candidates:
        row = Candidate(
            job=job, index=c.index, batch=c.batch, seed=c.seed, aesthetic_score=c.aesthetic, rank=c.rank,
            repaired=c.repaired, pixels_changed=c.pixels_changed, ssim=c.ssim, variant=c.variant,
            fidelity_ssim=c.fidelity_ssim, color_error=c.color_error, **verifier_models.judged_fields(c.scan),
        )
        rows.append(row)
    files = _files_to_store(job, control_png, rows, pngs)
    try:
        _store_files(files)
    except MediaUnavailable as exc:
        # A bucket away for a moment (a restart, a network blip) does not cost the GPU's work: once more, later.
        again_after = settings.QART["STORE_AGAIN_AFTER"]
        log.warning("Job %s: the image storage did not answer (%s); storing again in %s s", job.pk, exc, again_after)
        update_attempt(job, stage="storing_again")
        time.sleep(again_after)
        _store_again(job, files, patience=again_after)
    with transaction.atomic():
        mine = GenerationJob.objects.select_for_update().filter(pk=job.pk, **this_attempt(job)).exists()
        if mine:
            Candidate.objects.filter(job=job).delete()  # a retried job replaces a partial earlier attempt
            Candidate.objects.bulk_create(rows)
            GenerationJob.objects.filter(pk=job.pk).update(control_image=job.control_image.name)
    if not mine:
        # No row will name these files; they are left to the media sweep (`qartsite.media_sweep`), not deleted: the
        # later attempt stores under the same names, and on a bucket two stores that look a name up at once can both
        # take it, so a delete here could take the later attempt's file from under its row.
        log.warning("Job %s: this attempt was superseded; its files are left to the media sweep", job.pk)
        raise Superseded()


def _store_again(job: GenerationJob, files: list[tuple[FieldFile, str, bytes]], patience: float) -> None:
    """The second try of `store`: a failure fails the attempt (RQ retries it once), but for a server's "failed for a
    moment" (`MediaUnavailable.passing`, a 5xx), tried again a second later for up to `patience` seconds. A bucket
    just back from an outage answers so for a few seconds (SeaweedFS thawed after a freeze: InternalError to the
    PutObjects; a fault drill), and each such failure cost the GPU's work."""
    deadline = time.monotonic() + patience
    while True:
        try:
            _store_files(files, ask_now=True)
            return
        except MediaUnavailable as exc:
            if not exc.passing or time.monotonic() + STORE_AGAIN_PAUSE > deadline:
                raise
            log.warning("Job %s: the image storage failed for a moment (%s); storing again in %s s", job.pk, exc,
                        STORE_AGAIN_PAUSE)
            time.sleep(STORE_AGAIN_PAUSE)


def _files_to_store(job: GenerationJob, control_png: bytes, rows: list[Candidate],
                    pngs: list[bytes]) -> list[tuple[FieldFile, str, bytes]]:
    """(field file, name, PNG) for the job's control image and each row's image."""
    return [(job.control_image, f"control-{job.pk}.png", control_png)] + [
        (row.image, f"candidate-{row.index:02d}-seed{row.seed}.png", png) for row, png in zip(rows, pngs, strict=True)
    ]


def _store_files(files: list[tuple[FieldFile, str, bytes]], ask_now: bool = False) -> None:
    """Store each (field file, name, PNG) side by side over `store_pool`, before any row is saved: a row never names
    a file that is not stored. Should a file fail, the others are waited for and what this attempt stored is deleted
    again (as far as the storage lets us), and the first error goes on: the job fails, to be retried, with no candidate
    half stored.

    A storage that was away is asked first, here (`reachable`), before the files go side by side: else the first of
    them probes it and the others, meanwhile, fail at once as if it were still away; with `ask_now` (the second try,
    after its wait) it is asked even within the pause that its first failure started (`reachable`)."""
    reachable = getattr(files[0][0].storage, "reachable", None)
    if reachable is not None:
        reachable(ask_now=ask_now)
    futures = [store_pool().submit(file.save, name, ContentFile(png), save=False) for file, name, png in files]
    wait(futures)
    errors = [future.exception() for future in futures if future.exception() is not None]
    if errors:
        _delete([file for (file, _, _), future in zip(files, futures, strict=True) if future.exception() is None])
        raise errors[0]


def _delete(files: list[FieldFile]) -> None:
    """Delete what this attempt stored and no row will name; one it cannot delete is logged and left to the media
    sweep (`qartsite.media_sweep`)."""
    for file in files:
        try:
            file.storage.delete(file.name)
        except OSError as exc:
            log.warning("Could not delete %s, stored by an attempt whose rows were not written: %s", file.name, exc)


def stored_picture(field, opener):
    """The job's stored picture, opened by `opener` (`images.open_image` or `images.open_picture`).

    A file that is gone fails the job (ImageError, not retried); a storage that cannot be reached raises
    MediaUnavailable, which RQ retries like a crash (see `jobs.generation_failed`).
    """
    try:
        with field.open("rb") as stored:
            data = stored.read()
    except FileNotFoundError:
        raise images.ImageError("The job's picture is no longer stored; start a new job with the picture.") from None
    return opener(data, max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
