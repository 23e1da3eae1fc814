"""RQ jobs for generation: the thin layer between Django rows and the framework-free core.

- `enqueue_generation(job)` puts the job's primary key on the `gpu` queue once the transaction commits.
- `run_generation(pk)` runs best-of-N on the worker's warm engine and stores every candidate.
- The database row is the source of truth: status, stage, progress, timings and errors live there;
  progress is mirrored into RQ's `job.meta` for RQ's own tools, by another thread (`ProgressWriter`).
- A job's files (its picture read back, its candidates' PNGs and rows stored) are in `generator.job_files`; its
  parameters as the core's settings, and the check every new job passes, in `generator.job_parameters`; the worker's
  warm engine in `generator.warm_engines`.

Retries: RQ retries a job once when it crashed, its worker died or the media storage could not be reached
(`Retry(max=1)`; before that, a job's images are stored once more `QART["STORE_AGAIN_AFTER"]` seconds later), then
`generation_failed` marks the row failed with the reason. A run that a stop of its worker interrupted (`WorkerStopped`)
goes back in the queue without spending an attempt, up to MAX_WORKER_STOPS times (`workers.put_back_if_stopped`).
Expected failures (bad parameters, missing weights, cancellation, timeout) are handled here and never retried. Jobs
nothing will finish (lost when Redis restarted, or whose worker died unnoticed) are re-queued or failed by the
reconciler (`generator.reconcile`).
"""

from __future__ import annotations

import errno
import functools
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

import django_rq
from django import db
from django.conf import settings
from django.db import transaction
from django.db.models import F, ProtectedError, RestrictedError
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Callback, Retry, get_current_job
from rq.exceptions import AbandonedJobError
from rq.timeouts import JobTimeoutException

from campaigns import webhooks
from campaigns.models import Placement
from generator import job_files, verifier_models, warm_engines
from generator.core.codes import decision, images, qr
from generator.core.engines import halftone, parameters, ranking
from generator.job_files import PngEncoder, Superseded, stored_picture, this_attempt, update_attempt
from generator.job_parameters import halftone_config, job_config, job_params
from generator.models import EvalSample, GenerationJob, HumanScanResult
from qartsite.queues import REDIS_AWAY, RedisSkipped, breaker, password_refused_on_page, probe_write
from qartsite.storage import MediaUnavailable
from qartsite.workers import MAX_WORKER_STOPS, WorkerStopped, drop_dead_connections, put_back_if_stopped

log = logging.getLogger(__name__)
QUEUE = "gpu"
Status = GenerationJob.Status


QUEUE_UNAVAILABLE = "The job queue is unavailable right now; please try again."
INTERRUPTED = "interrupted"  # the stage of a row whose run a stop of its worker interrupted, waiting to run again


def queue_refusal(operator: bool = False) -> str | None:
    """None when the `gpu` queue's Redis takes a write now (`queues.probe_write`); else why not, as the page and the
    API say it. Asked before a generation is stored: a job the queue cannot take is refused with nothing made, where
    it was made and failed at once (`enqueue_generation`: which still covers a Redis that goes away between the two).

    Args:
        operator (`bool`, *optional*): the reader runs the site (a superuser): a refused password says where Redis is.

    Returns:
        `str | None`: None, `QUEUE_UNAVAILABLE` (a Redis away, full or read-only: try again later), or that the queue
        refuses the site's password (`queues.password_refused_on_page`: no wait mends it; "please try again" sent
        people to retry what only whoever runs the site puts right).
    """
    connection = django_rq.get_queue(QUEUE).connection
    try:
        # Through the breaker: each create waited out the timeout again while Redis stalled (a fault drill).
        with breaker(connection):
            probe_write(connection)
    except RedisSkipped:
        return QUEUE_UNAVAILABLE
    except RedisError as exc:
        if refused := password_refused_on_page(connection, exc, "The job queue", operator):
            return refused
        log.warning("The job queue (Redis) does not answer: %s", exc)
        return QUEUE_UNAVAILABLE
    return None


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
        except RedisError as exc:
            if isinstance(exc, REDIS_AWAY):  # an outage, not a bug: one line (it was a traceback per job)
                log.error("Could not enqueue generation %s: %s", job.pk, exc)
            else:
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
        queue = django_rq.get_queue(QUEUE)
        try:
            # Through the breaker: a stalled Redis held each cancel its timeout again (a fault drill).
            with breaker(queue.connection):
                rq_job = queue.fetch_job(job.rq_job_id)
                state = rq_job.get_status() if rq_job is not None else None
                if state == "started":
                    return  # a worker has just taken it: it stops at its first step
                if state in ("queued", "scheduled", "deferred"):
                    rq_job.cancel()
        except RedisError as exc:
            log.warning("Could not reach Redis to cancel %s (%s); the worker will skip it", job.pk, exc)
    _finish(job.pk, Status.CANCELLED, stage="cancelled")


def queue_position(job: GenerationJob) -> int | None:
    """1 for the next job to run, None when the job is not waiting (or Redis cannot tell).

    A waiting row is not always in the queue's list: a worker may have just taken it (it marks the row running a moment
    later: nothing is ahead of it), or its retry may wait in RQ's schedule (it joins the end). Both answered null while
    the page and the API said "queued".
    """
    if job.status != Status.QUEUED:
        return None
    # The id is the row's own (`rq_job_id`): a row is queued before the commit that stores it in `job.rq_job_id`.
    rq_id = job.rq_job_id or rq_job_id(job.pk)
    queue = django_rq.get_queue(QUEUE)
    try:
        with breaker(queue.connection):
            position = queue.get_job_position(rq_id)
            if position is not None:
                return position + 1
            rq_job = queue.fetch_job(rq_id)
            state = rq_job.get_status() if rq_job is not None else None
            if state == "started":
                return 1
            if state in ("scheduled", "deferred"):
                return queue.count + 1
    except RedisError:
        return None
    return None  # RQ has lost it (Redis restarted): the reconciler queues it again, or ends it


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


@functools.cache
def progress_sender() -> ThreadPoolExecutor:
    """The thread that sends jobs' progress to RQ (`ProgressWriter`), kept for the life of this process."""
    return ThreadPoolExecutor(1, thread_name_prefix="qart-progress")


class ProgressWriter:
    """The core's `on_progress(stage, fraction)` for one job: the row (and RQ's `job.meta`) follow it, and a
    cancel request stops it by raising `Cancelled`. Given its attempt (`job_files.this_attempt`), the row follows it
    only while it is that attempt's, and a row handed on stops the run (`Superseded`)."""

    INTERVAL = 0.2  # seconds: one cheap UPDATE per step at most this often, plus the cancel check it answers

    def __init__(self, job_pk: int, rq_job=None, attempt: dict | None = None) -> None:
        self.job_pk, self.rq_job, self.attempt = job_pk, rq_job, attempt or {}
        self.written_at, self.stage = 0.0, ""
        self.sending: Future | None = None  # RQ's copy of the progress, on its way (`progress_sender`)

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage == self.stage and now - self.written_at < self.INTERVAL and fraction < 1.0:
            return
        self.written_at, self.stage = now, stage
        status = Status.SCORING if stage in ("scoring", "repairing") else Status.RUNNING
        # The fence rides on the UPDATE that writes the progress anyway: no query more per step.
        if not GenerationJob.objects.filter(pk=self.job_pk, **self.attempt).update(
                stage=stage, progress=round(fraction, 4), status=status) and self.attempt:
            raise Superseded()
        self._copy_to_rq(stage, fraction)
        if GenerationJob.objects.filter(pk=self.job_pk, cancel_requested=True).exists():
            raise parameters.Cancelled()

    def _copy_to_rq(self, stage: str, fraction: float) -> None:
        """RQ's copy of the progress, sent by another thread (`progress_sender`): the drawing never waits for Redis. A
        worker's connection waits 20 s for an answer (RQ raises its read timeout to its dequeue wait plus 10 s): sent
        here, a frozen Redis held the drawing that long at its next step (a fault drill). A copy due while the last is
        still on its way is skipped: the next one carries newer progress."""
        rq_job = self.rq_job
        if rq_job is None or (self.sending is not None and not self.sending.done()):
            return
        rq_job.meta.update(stage=stage, progress=fraction)
        # Serialized here, in the job's thread: RQ reads and writes the same meta once the job's code has returned.
        self.sending = progress_sender().submit(self._send, rq_job, rq_job.serializer.dumps(rq_job.meta))

    def _send(self, rq_job, meta: bytes) -> None:
        try:
            rq_job.connection.hset(rq_job.key, "meta", meta)  # RQ's `save_meta`, with the meta serialized before
        except RedisError as exc:
            # RQ's copy of the progress only: the row is what pages read. A Redis restarted mid-job raised here, and the
            # job and then its worker stopped (the job waited for the reconciler, 2.5 minutes). Not sent again this
            # job: a frozen Redis would hold the thread for its timeout each time.
            log.warning("Job %s: its progress could not be copied to RQ (%s); it goes on", self.job_pk, exc)
            self.rq_job = None


def run_generation(job_pk: int) -> str:
    """RQ job: generate, verify, score, rank and store the candidates of one GenerationJob."""
    job = GenerationJob.objects.select_related("prompt").get(pk=job_pk)
    if job.is_finished:
        return f"job {job_pk} already {job.status}"
    if job.cancel_requested:
        _finish(job_pk, Status.CANCELLED, stage="cancelled")
        return "cancelled before start"
    started = timezone.now()
    # Only the row as it was read: two runs that read it at once (the retry of a run taken for gone, and a retry of
    # that run's own) would both count themselves the same attempt, and neither fence the other.
    if not GenerationJob.objects.filter(pk=job_pk, **this_attempt(job, running=False)).update(
            status=Status.RUNNING, stage="loading", started=started, attempts=job.attempts + 1,
            queue_seconds=(started - job.created).total_seconds(), error=""):
        return f"job {job_pk} was started by another run meanwhile"
    job.attempts += 1
    rq_job = get_current_job()
    try:
        return _run(job, ProgressWriter(job_pk, rq_job, this_attempt(job)))
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
        # Only the row still this attempt's: the limit may land after `_run` ended it (while it sends the webhook,
        # say), or after RQ's cleanup handed it to another run (this one's worker taken for gone).
        _finish(job_pk, Status.FAILED, expect=this_attempt(job), stage="failed",
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
        engine = warm_engines.get_engine()
        update_attempt(job, model_id=engine.spec.base, controlnet_id=engine.spec.controlnet, stage="generating")
        init = stored_picture(job.init_image, images.open_image) if job.init_image else None
        with PngEncoder() as encoder:
            result = ranking.best_of_n(engine, job.content, job_params(job), job_config(job, model), on_progress,
                                       init, on_images=encoder.start)
            job_files.store(job, result, encoder)
        _finish(
            job_pk, Status.DONE, expect=this_attempt(job), stage="done", progress=1.0, batches=result.batches,
            scannable=result.scannable,
            # The tiny model's noise is said by its flag (the page's banner, the API's tiny_model), not in the message
            # too: the job page said "noise" twice.
            result_message=result.message, picture_fights=result.picture_fights, tiny_model=engine.spec.tiny,
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
    update_attempt(job, model_id="halftone", controlnet_id="", stage="generating")
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
    """RQ failure callback: the job crashed or its worker died. RQ retries once; then the row fails. A run its worker's
    stop interrupted goes back in the queue as it was before that run (`put_back`)."""
    drop_dead_connections()  # the job may have failed because the database went away: ask a new connection
    job_pk = rq_job.args[0]
    if put_back_if_stopped(rq_job, exc_value, functools.partial(put_back, job_pk)):
        return  # the worker re-queues it without spending a retry (its handle_job_failure)
    if rq_job.retries_left:
        GenerationJob.objects.filter(pk=job_pk).exclude(status__in=GenerationJob.FINISHED).update(
            status=Status.QUEUED, stage="retrying", progress=0.0
        )
        return
    if exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError):
        # "twice" was wrong where the first try was lost another way (a Redis restart, the storage): this one is sure.
        reason = "The worker running this job stopped unexpectedly on its last try (it had been retried once)."
    elif isinstance(exc_value, WorkerStopped):
        # Put back MAX_WORKER_STOPS times already, so its stops count (it said "The job failed twice (SystemExit: )").
        reason = "The worker was stopped while it ran this job, on its last try (it had been retried once)."
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


def put_back(job_pk: int) -> bool:
    """The row of a job whose run a stop of its worker interrupted, back in the queue as it was before that run: its
    attempt not spent, its stage saying that it waits to run again, no webhook (it has not ended). False, and nothing
    changed, once it was put back MAX_WORKER_STOPS times, or when it had ended (the stop came after its end)."""
    unfinished = GenerationJob.objects.filter(pk=job_pk, worker_stops__lt=MAX_WORKER_STOPS).exclude(
        status__in=GenerationJob.FINISHED)
    again = dict(status=Status.QUEUED, stage=INTERRUPTED, progress=0.0, worker_stops=F("worker_stops") + 1)
    # `run_generation` marks the row running and counts the attempt in one update: a row still queued was stopped
    # before that, and has no attempt to give back.
    return bool(unfinished.filter(status__in=(Status.RUNNING, Status.SCORING), attempts__gt=0).update(
        attempts=F("attempts") - 1, **again) or unfinished.filter(status=Status.QUEUED).update(**again))
