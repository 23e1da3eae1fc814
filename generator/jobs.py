"""RQ jobs for generation: the thin layer between Django rows and the framework-free core.

- `enqueue_generation(job)` puts the job's primary key on the `gpu` queue once the transaction commits.
- `run_generation(pk)` runs best-of-N on the worker's warm engine and stores every candidate.
- The database row is the source of truth: status, stage, progress, timings and errors live there;
  progress is mirrored into RQ's `job.meta` for RQ's own tools.
- A job's files (its picture read back, its candidates' PNGs and rows stored) are in `generator.job_files`.

Retries: RQ retries a job once when it crashed, its worker died or the media storage could not be reached
(`Retry(max=1)`; before that, a job's images are stored once more `QART["STORE_AGAIN_AFTER"]` seconds later), then
`generation_failed` marks the row failed with the reason. Expected failures (bad parameters, missing weights,
cancellation, timeout) are handled here and never retried. Jobs nothing will finish (lost when Redis
restarted, or whose worker died unnoticed) are re-queued or failed by the reconciler (`generator.reconcile`).
"""

from __future__ import annotations

import errno
import functools
import logging
import math
import time
from dataclasses import dataclass, replace

import django_rq
from django import db
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Callback, Retry, get_current_job
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from campaigns import webhooks
from campaigns.models import Placement
from generator import job_files, verifier_models
from generator.core.codes import decision, images, qr
from generator.core.engines import diffusion, halftone, loading, parameters, ranking, tiny
from generator.generation_models import FLOAT_PARAMETERS
from generator.job_files import PngEncoder, Superseded, stored_picture, this_attempt
from generator.models import EvalSample, GenerationJob, HumanScanResult
from qartsite.queues import REDIS_AWAY, drop_dead_connections
from qartsite.storage import MediaUnavailable

log = logging.getLogger(__name__)
QUEUE = "gpu"
Status = GenerationJob.Status
_engines: dict[tuple[parameters.ModelSpec, bool], diffusion.Engine] = {}
LOAD_RETRY_SECONDS = 300


@dataclass(frozen=True)
class FailedLoad:
    at: float  # time.monotonic() of the failure
    fingerprint: tuple  # the weights as they were (`loading.weights_fingerprint`)
    message: str  # the EngineUnavailable's, raised again until the files change


_failed_loads: dict[tuple[parameters.ModelSpec, bool], FailedLoad] = {}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def engine_spec(model: str | None = None, controlnet: str | None = None) -> parameters.ModelSpec:
    """The weights to use: explicit arguments, else QART_* settings, else the real defaults on a GPU
    and the tiny preset without one."""
    q = settings.QART
    model = model or q["MODEL"] or (parameters.DEFAULT_BASE if cuda_available() else "tiny")
    if model == "tiny":
        return replace(tiny.tiny_spec(q["MODEL_DIR"] / "tiny"), fewstep_lora=q["FEWSTEP_LORA"] or None)
    return parameters.ModelSpec(
        base=model,
        controlnet=controlnet or q["CONTROLNET"] or parameters.DEFAULT_CONTROLNET,
        controlnet_subfolder=q["CONTROLNET_SUBFOLDER"] or None,
        base_config=q["BASE_CONFIG"] or None,
        aesthetic_clip=q["AESTHETIC_CLIP"] if q["AESTHETIC_HEAD"] else None,
        aesthetic_head=q["AESTHETIC_HEAD"] or None,
        fewstep_lora=q["FEWSTEP_LORA"] or None,
    )


def fewstep_scheduler() -> str | None:
    """The few-step preset's scheduler where a few-step LoRA is configured (QART_FEWSTEP_LORA), else None: the
    page and the API offer the preset only then."""
    q = settings.QART
    return q["FEWSTEP_SCHEDULER"] if q["FEWSTEP_LORA"] else None


def schedulers() -> tuple[str, ...]:
    """The schedulers a job may ask for here."""
    fewstep = fewstep_scheduler()
    return parameters.SCHEDULERS + ((fewstep,) if fewstep else ())


def warm_shapes() -> tuple[tuple[int, int], ...]:
    """The (size, candidates) pairs the worker compiles at start, from QART_WARM_SHAPES.

    Parsed here, not in settings (which import no application module); a bad value stops the worker before it loads.
    """
    try:
        return parameters.parse_shapes(settings.QART["WARM_SHAPES"])
    except ValueError as exc:
        raise ImproperlyConfigured(f"QART_WARM_SHAPES: {exc}") from None


def get_engine(
    spec: parameters.ModelSpec | None = None, optimize: bool = True
) -> diffusion.Engine | diffusion.SplitEngine:
    """The warm engine for `spec` (default: from settings), loaded once per process.

    `optimize` compiles on CUDA (minutes once, then ~1.5x faster): right for long-lived workers, not for a
    one-off command, which gets the eager pipeline (the same images within fp16 rounding).

    A load that failed is not tried again for every job: with real weights each try loads gigabytes before it fails
    (a bad LoRA is met after SD1.5 is loaded). Its error is raised again until the files the spec names change
    (`loading.weights_fingerprint`) or `LOAD_RETRY_SECONDS` pass (weights copied into the hub cache change no path
    the spec names).
    """
    spec = spec or engine_spec()
    key = (spec, optimize)
    if key in _engines:
        return _engines[key]
    fingerprint = loading.weights_fingerprint(spec)
    failed = _failed_loads.get(key)
    if failed and time.monotonic() - failed.at < LOAD_RETRY_SECONDS and fingerprint == failed.fingerprint:
        raise parameters.EngineUnavailable(failed.message)
    log.info("Loading generation engine: %s", spec.label)
    devices, shapes = settings.QART["DEVICES"], warm_shapes()
    try:
        if len(devices) > 1:
            engine = loading.load_split_engine(spec, devices, optimize=optimize, warm_shapes=shapes)
        else:
            engine = loading.load_engine(spec, devices[0] if devices else None, optimize=optimize, warm_shapes=shapes)
    except Exception as exc:
        if not isinstance(exc, parameters.EngineUnavailable):  # a file failing where no check foresaw it
            log.exception("Loading the generation engine failed")
            exc = parameters.EngineUnavailable(
                f"The generation engine could not be loaded ({type(exc).__name__}: {exc}). Check the files that "
                "QART_MODEL, QART_CONTROLNET, QART_AESTHETIC_CLIP, QART_AESTHETIC_HEAD and QART_FEWSTEP_LORA name."
            )
        _failed_loads[key] = FailedLoad(time.monotonic(), fingerprint, str(exc))
        raise exc from None
    _failed_loads.pop(key, None)
    _engines[key] = engine
    ranking.warm_verifier(ranking.BestOfNConfig().workers)
    return engine


def loaded_engine(spec: parameters.ModelSpec | None = None) -> diffusion.Engine | diffusion.SplitEngine | None:
    """The engine `get_engine` already holds for `spec` (default: from settings), or None; never loads."""
    return _engines.get((spec or engine_spec(), True))


def load_error(spec: parameters.ModelSpec | None = None) -> str | None:
    """Why the last load of `spec`'s engine failed, while that failure stands; None otherwise."""
    failed = _failed_loads.get((spec or engine_spec(), True))
    return failed.message if failed else None


def job_params(job: GenerationJob) -> parameters.GenerationParams:
    return parameters.GenerationParams(
        prompt=job.prompt.text,
        negative_prompt=job.prompt.negative_text,
        steps=job.steps,
        guidance_scale=job.guidance_scale,
        conditioning_scale=job.conditioning_scale,
        control_start=job.control_start,
        control_end=job.control_end,
        strength=job.strength,
        size=job.size,
        scheduler=job.scheduler,
    )


def job_config(job: GenerationJob, model: decision.DecisionModel | None = None) -> ranking.BestOfNConfig:
    """Best-of-N's settings for `job`; `model` judges the candidates (the shipped one when None)."""
    return ranking.BestOfNConfig(
        n=job.candidates_per_batch,
        max_batches=job.max_batches,
        repair=job.repair,
        threshold=settings.QART["SCAN_THRESHOLD"],
        seed=job.seed,
        style=job.style,
        background=job.background,
        ecc=job.ecc,
        max_version=settings.QART["MAX_VERSION"],
        model=model,
    )


def halftone_config(job: GenerationJob, model: decision.DecisionModel | None = None) -> halftone.HalftoneConfig:
    """The halftone engine's settings for `job`; `model` judges the candidates (the shipped one when None)."""
    return halftone.HalftoneConfig(
        n=job.candidates_per_batch, seed=job.seed, threshold=settings.QART["SCAN_THRESHOLD"], size=job.size,
        ecc=job.ecc, max_version=settings.QART["MAX_VERSION"], model=model,
    )


def validate_job(job: GenerationJob) -> None:
    """Raise ValueError (or qr.ContentError) with a person's message for any bad parameter."""
    # Every engine: halftone ignores these, but they are stored and served all the same, and a NaN or infinity
    # would break every later answer that lists the job.
    for name in FLOAT_PARAMETERS:
        value = getattr(job, name)
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{name.replace('_', ' ').capitalize()} must be a finite number, got {value}.")
    if job.engine == GenerationJob.Engine.HALFTONE:
        # No prompt, steps or ControlNet: the picture (checked where it is uploaded) and the code are all.
        halftone_config(job).validate()
        qr.encode(job.content, ecc=job.ecc, max_version=settings.QART["MAX_VERSION"])
        return
    job_params(job).validate()
    if job.scheduler not in schedulers():
        raise ValueError(f"Scheduler {job.scheduler!r} is not offered here: choose one of {', '.join(schedulers())} "
                         "(the few-step preset needs a few-step LoRA, QART_FEWSTEP_LORA).")
    job_config(job).validate()
    qr.encode(job.content, ecc=job.ecc, max_version=settings.QART["MAX_VERSION"])
    if job.style not in qr.STYLES:
        raise ValueError(f"Style must be one of {', '.join(qr.STYLES)}.")
    if job.background not in qr.BACKGROUNDS:
        raise ValueError(f"Background must be one of {', '.join(qr.BACKGROUNDS)}.")


QUEUE_UNAVAILABLE = "The job queue is unavailable right now; please try again."


def queue_answers() -> bool:
    """Whether the `gpu` queue's Redis answers now. Asked before a generation is stored: a job the queue cannot take
    is refused with nothing made, where it was made and failed at once (`enqueue_generation`: which still covers a
    Redis that goes away between the two)."""
    try:
        django_rq.get_queue(QUEUE).connection.ping()
    except RedisError as exc:
        log.warning("The job queue (Redis) does not answer: %s", exc)
        return False
    return True


def rq_job_id(pk: int) -> str:
    """The id of a generation row's RQ job (the row keeps it in `rq_job_id` once queued)."""
    return f"qart-generation-{pk}"


def enqueue_generation(job: GenerationJob, retries: int = 1) -> None:
    """Queue the job on the GPU queue after the current transaction commits; RQ retries a crashed run `retries`
    times (the reconciler re-queues a lost job with what is left of its attempts: generator.reconcile)."""

    def send() -> None:
        try:
            rq_job = django_rq.get_queue(QUEUE).enqueue(
                run_generation,
                job.pk,
                job_id=rq_job_id(job.pk),
                job_timeout=settings.QART["JOB_TIMEOUT"],
                retry=Retry(max=retries) if retries else None,
                on_failure=Callback(generation_failed),
                result_ttl=24 * 3600,
                failure_ttl=7 * 24 * 3600,
            )
        except RedisError:
            log.exception("Could not enqueue generation %s", job.pk)
            _finish(job.pk, Status.FAILED, error=QUEUE_UNAVAILABLE)
            return
        GenerationJob.objects.filter(pk=job.pk).update(rq_job_id=rq_job.id)

    transaction.on_commit(send)


def why_kept(job: GenerationJob) -> str:
    """Why `job` may not be deleted by its team, in words for them; "" when it may. Its images, uploaded picture and
    logo go with it (the daily media sweep removes files no row names, `qartsite.media_sweep`)."""
    if not job.is_finished:
        return "This job has not finished: cancel it first, then delete it."
    printed = list(Placement.objects.filter(artwork__job=job).order_by("name").values_list("name", flat=True)[:4])
    if printed:
        names = ", ".join(f"“{name}”" for name in printed[:3]) + (" and others" if len(printed) > 3 else "")
        return f"Its code is the artwork of {names}: choose other artwork there first, or the print files go."
    if HumanScanResult.objects.filter(candidate__job=job).exists():
        return ("People labelled its codes in a labeling session: those labels are what the verifier is checked "
                "against, so the job stays. A superuser can delete it in the admin with its labels.")
    return ""


def delete(job: GenerationJob) -> str:
    """Delete `job`, its candidates, picture and logo (their files within a day) unless something keeps it; returns
    "" when deleted, else why not (`why_kept`). Something that started keeping it after the check (a placement
    choosing one of its codes at the same moment) keeps it too: the delete refused, where it answered a 500."""
    kept = why_kept(job)
    if kept:
        return kept
    try:
        with transaction.atomic():
            job.delete()
    except (ProtectedError, RestrictedError):
        return why_kept(job) or "Something started using its codes a moment ago, so it stays."
    return ""


def request_cancel(job: GenerationJob) -> None:
    """Cancel a job: at once unless a worker has taken it, between denoising steps if one has.

    A queued job ends at once even when Redis lost it (restarted) or cannot be reached: a worker skips a finished row,
    so nothing runs it afterwards, and the page never says "Cancelling" for ever. A running job whose worker died is
    ended by the reconciler (generator.reconcile).
    """
    GenerationJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    if job.status != Status.QUEUED:
        return
    if job.rq_job_id:
        try:
            rq_job = django_rq.get_queue(QUEUE).fetch_job(job.rq_job_id)
            state = rq_job.get_status() if rq_job is not None else None
            if state == "started":
                return  # a worker has just taken it: it stops at its first step
            if state in ("queued", "scheduled", "deferred"):
                rq_job.cancel()
        except RedisError:
            log.warning("Could not reach Redis to cancel %s; the worker will skip it", job.pk)
    _finish(job.pk, Status.CANCELLED, stage="cancelled")


def queue_position(job: GenerationJob) -> int | None:
    """1 for the next job to run, None when the job is not waiting (or Redis cannot tell)."""
    if job.status != Status.QUEUED or not job.rq_job_id:
        return None
    try:
        position = django_rq.get_queue(QUEUE).get_job_position(job.rq_job_id)
    except RedisError:
        return None
    return None if position is None else position + 1


def _finish(pk: int, status: str, expect: dict | None = None, **fields) -> bool:
    """End the row with `status`; with `expect` (field lookups) only while the row still matches them, so the
    reconciler never overwrites what a worker wrote meanwhile. Returns whether the row was ended."""
    now = timezone.now()
    job = GenerationJob.objects.only("created", "started").get(pk=pk)
    fields.setdefault("total_seconds", (now - job.created).total_seconds())
    with transaction.atomic():  # the end and its webhook (kept in the outbox) commit together, or neither
        if not GenerationJob.objects.filter(pk=pk, **(expect or {})).update(status=status, finished=now, **fields):
            return False
        # Queued after the commit: receivers then read the finished row through the API.
        webhooks.generation_finished(GenerationJob.objects.only("pk", "team", "status", "placement").get(pk=pk))
    _record_eval_samples(pk)
    return True


class ProgressWriter:
    """The core's `on_progress(stage, fraction)` for one job: the row (and RQ's `job.meta`) follow it, and a
    cancel request stops it by raising `Cancelled`."""

    INTERVAL = 0.2  # seconds: one cheap UPDATE per step at most this often, plus the cancel check it answers

    def __init__(self, job_pk: int, rq_job=None) -> None:
        self.job_pk, self.rq_job = job_pk, rq_job
        self.written_at, self.stage = 0.0, ""

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage == self.stage and now - self.written_at < self.INTERVAL and fraction < 1.0:
            return
        self.written_at, self.stage = now, stage
        status = Status.SCORING if stage in ("scoring", "repairing") else Status.RUNNING
        GenerationJob.objects.filter(pk=self.job_pk).update(stage=stage, progress=round(fraction, 4), status=status)
        if self.rq_job is not None:
            self.rq_job.meta.update(stage=stage, progress=fraction)
            try:
                self.rq_job.save_meta()
            except RedisError as exc:
                # RQ's copy of the progress only: the row above is what pages read. A Redis restarted mid-job raised
                # here, and the job and then its worker stopped (the job waited for the reconciler, 2.5 minutes).
                # Not asked again this job: a stalled Redis would cost its 3 s timeout at every step.
                log.warning("Job %s: its progress could not be copied to RQ (%s); it goes on", self.job_pk, exc)
                self.rq_job = None
        if GenerationJob.objects.filter(pk=self.job_pk, cancel_requested=True).exists():
            raise parameters.Cancelled()


def run_generation(job_pk: int) -> str:
    """RQ job: generate, verify, score, rank and store the candidates of one GenerationJob."""
    job = GenerationJob.objects.select_related("prompt").get(pk=job_pk)
    if job.is_finished:
        return f"job {job_pk} already {job.status}"
    if job.cancel_requested:
        _finish(job_pk, Status.CANCELLED, stage="cancelled")
        return "cancelled before start"
    started = timezone.now()
    GenerationJob.objects.filter(pk=job_pk).update(
        status=Status.RUNNING, stage="loading", started=started, attempts=job.attempts + 1,
        queue_seconds=(started - job.created).total_seconds(), error="",
    )
    job.attempts += 1
    rq_job = get_current_job()
    try:
        return _run(job, ProgressWriter(job_pk, rq_job))
    except Superseded:
        log.warning("Job %s: attempt %s was superseded by a later one while it ran; its result is dropped", job_pk,
                    job.attempts)
        return "superseded by a later attempt"
    except JobTimeoutException:
        # RQ's time limit is a signal: it can land in the middle of a query, and psycopg then leaves the connection
        # half-way through that command ("another command is already in progress"): the verdict goes through a new
        # one. (It can also land in `_run`'s own handlers, which is why it is caught out here.)
        db.connection.close()
        limit = rq_job.timeout if rq_job is not None else settings.QART["JOB_TIMEOUT"]
        # Only a row not ended yet: the limit may land after `_run` ended it (while it sends the webhook, say).
        _finish(job_pk, Status.FAILED, expect={"finished__isnull": True}, stage="failed",
                error=f"Stopped after the {limit} s time limit.")
        return "timed out"


def _run(job: GenerationJob, on_progress: ProgressWriter) -> str:
    """`run_generation` from the row marked running: the candidates made, stored and ranked, and the row ended."""
    job_pk = job.pk
    try:
        # Asked at every job's start (one indexed query): a worker judges by a newly activated model from its next job.
        model = verifier_models.active_model()
        if job.engine == GenerationJob.Engine.HALFTONE:
            return _run_halftone(job, on_progress, model)
        engine = get_engine()
        GenerationJob.objects.filter(pk=job_pk).update(
            model_id=engine.spec.base, controlnet_id=engine.spec.controlnet, stage="generating"
        )
        init = stored_picture(job.init_image, images.open_image) if job.init_image else None
        with PngEncoder() as encoder:
            result = ranking.best_of_n(engine, job.content, job_params(job), job_config(job, model), on_progress,
                                       init, on_images=encoder.start)
            job_files.store(job, result, encoder)
        _finish(
            job_pk, Status.DONE, expect=this_attempt(job), stage="done", progress=1.0, batches=result.batches,
            scannable=result.scannable,
            result_message=result.message + (" (tiny model: images are noise)" if engine.spec.tiny else ""),
            picture_fights=result.picture_fights, tiny_model=engine.spec.tiny,
            generation_seconds=round(result.generation_seconds, 3), scoring_seconds=round(result.scoring_seconds, 3),
        )
        return result.message
    except parameters.Cancelled:
        _finish(job_pk, Status.CANCELLED, expect=this_attempt(job), stage="cancelled")
        return "cancelled"
    except (qr.ContentError, ValueError, parameters.EngineUnavailable, images.ImageError) as exc:
        _finish(job_pk, Status.FAILED, expect=this_attempt(job), stage="failed", error=str(exc))
        return f"failed: {exc}"


def _run_halftone(job: GenerationJob, on_progress, model: decision.DecisionModel) -> str:
    """The CPU engine: no weights to load, the job's picture drawn into the code (`halftone.best_halftones`)."""
    if not job.init_image:
        raise ValueError("The halftone engine needs a picture to draw the code from.")
    GenerationJob.objects.filter(pk=job.pk).update(model_id="halftone", controlnet_id="", stage="generating")
    picture = stored_picture(job.init_image, images.open_picture)
    # A logo was checked when it was uploaded; stored at most uploads.LOGO_SIDE long, a wordmark's short side can be
    # under a picture's minimum, which a logo (drawn a few modules wide) does not need.
    logo = stored_picture(job.logo, functools.partial(images.open_picture, min_side=1)) if job.logo else None
    result = halftone.best_halftones(picture, job.content, halftone_config(job, model), on_progress, logo=logo)
    with PngEncoder() as encoder:
        job_files.store(job, result, encoder)
    _finish(
        job.pk, Status.DONE, expect=this_attempt(job), stage="done", progress=1.0, batches=result.batches,
        scannable=result.scannable,
        result_message=result.message, picture_fights=result.picture_fights,
        generation_seconds=round(result.generation_seconds, 3), scoring_seconds=round(result.scoring_seconds, 3),
    )
    return result.message


def _record_eval_samples(job_pk: int) -> None:
    """A sweep's samples copy their job's results as soon as it is done (see EvalSample.record)."""
    samples = list(EvalSample.objects.filter(job_id=job_pk))
    if samples:  # most jobs are people's, not a sweep's: one query and done
        job = GenerationJob.objects.get(pk=job_pk)
        for sample in samples:
            sample.record(job)


# What a storage that refuses to write says (read-only, full, no permission): a job's images could not be stored.
STORAGE_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM})


def generation_failed(rq_job, connection, exc_type, exc_value, tb) -> None:
    """RQ failure callback: the job crashed or its worker died. RQ retries once; then the row fails."""
    drop_dead_connections()  # the job may have failed because the database went away: ask a new connection
    job_pk = rq_job.args[0]
    if rq_job.retries_left:
        GenerationJob.objects.filter(pk=job_pk).exclude(status__in=GenerationJob.FINISHED).update(
            status=Status.QUEUED, stage="retrying", progress=0.0
        )
        return
    if exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError):
        reason = "The worker running this job stopped unexpectedly, twice (it was retried once)."
    elif isinstance(exc_value, MediaUnavailable):
        # Not boto's words: they name the bucket's address, the bucket and the file. The worker's log has them.
        log.error("Job %s failed twice on the image storage: %s", job_pk, exc_value)
        reason = ("The image storage could not be reached, twice (it was retried once). Try again later; if it lasts, "
                  "tell whoever runs qart.")
    elif isinstance(exc_value, OSError) and exc_value.errno in STORAGE_ERRNOS:
        # Not the file's path: it names the server's folders. The worker's log has all of it.
        log.error("Job %s failed twice on storage: %s", job_pk, exc_value)
        reason = (f"The images could not be stored, twice (it was retried once): "
                  f"{exc_value.strerror or type(exc_value).__name__}. Try again later; if it lasts, tell whoever runs "
                  "qart.")
    elif isinstance(exc_value, (db.OperationalError, db.InterfaceError, *REDIS_AWAY)):
        # Not the driver's words: they name the database's or Redis's address ("connection to server at "10.0.0.3",
        # port 5432 failed"). The worker's log has them.
        log.error("Job %s failed twice on the database or Redis: %s", job_pk, exc_value)
        reason = ("qart's database or job queue could not be reached, twice (it was retried once). Try again later; "
                  "if it lasts, tell whoever runs qart.")
    else:
        reason = f"The job failed twice ({getattr(exc_type, '__name__', exc_type)}: {exc_value})."
    if GenerationJob.objects.filter(pk=job_pk).exists():  # deleted meanwhile: nothing to end
        # Through _finish, as every other end: its `generation.finished` webhook was never sent for these.
        unfinished = [status for status in Status.values if status not in GenerationJob.FINISHED]
        _finish(job_pk, Status.FAILED, expect={"status__in": unfinished}, stage="failed", error=reason)
