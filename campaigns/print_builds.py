"""Large print files, made by a worker rather than in the request; pages and the API ask `requested_file`.

An 82 cm poster of art at 300 dpi takes 17-35 s and 1.3-2.3 GB to make (`bench/print_files.py`): past a web server's
timeout, and a lot of a web host's memory. Rasters over `INLINE_PIXELS` are queued once on the `default` queue
(`build`); the page says so and asks again every few seconds, the API answers 202 with Retry-After. The made file
is kept in the media storage for a day, so the next download (or a HEAD) reads it back; the workers' daily upkeep
deletes it (`forget_old_files`). What is known of each file lives in Redis, which web and workers share: being made
(by which RQ job), made (where), or refused (why: in the file's own terms for ten minutes, a passing trouble for
half a minute). Without a worker on the queue (nor one loading its engine to take it: `engine_status.loading_on`), the
file is made in the request (`printfiles.checked_file`), as small ones always are; without Redis (away, stalled, full)
it is refused for the moment (503, `QUEUE_AWAY`), nothing ordered, and a stalled Redis is not asked again for a few
seconds (`queues.breaker`). A build that a stop of its worker interrupted goes back in the queue, as a generation does
(`workers.put_back_if_stopped`), and the page says that it waits to be made again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import django_rq
from django import db
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpRequest, HttpResponse
from redis.exceptions import RedisError
from rq import Callback, Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from campaigns import printfiles
from campaigns.printfiles import Refused
from generator import engine_status
from generator.core.codes import decision, print_specs, printing
from qartsite import file_responses
from qartsite.file_responses import StoredFile
from qartsite.queues import breaker, delete_job, did_not_answer, workers_on
from qartsite.storage import MediaUnavailable
from qartsite.workers import WorkerStopped, put_back_if_stopped

INLINE_PIXELS = 25_000_000  # a raster up to 5,000 px square (42 cm at 300 dpi): a few seconds, made in the request
QUEUE = "default"
BUILD_SECONDS = 600  # a worker's limit for one file
KEEP_SECONDS = 24 * 3600  # a made file, and its answer
REFUSAL_SECONDS = 600  # a refusal in the file's own terms (it does not scan as written, say)
TROUBLE_SECONDS = 30  # a passing trouble (the storage away, a build that failed or was lost): then tried again
RETRY_SECONDS = 5
FOLDER = "print-files"
VERSION = 1  # part of every file's key: raise it when a change to `printing` changes the files it makes
MAKING = "Your print file is large, so it is being made in the background (up to a minute or two)."
INTERRUPTED = ("The worker making your print file was stopped before it finished; the file waits to be made again "
               "(up to a minute or two once a worker runs).")
# A HEAD's answer when nothing is known of the file: never asked for, or lost with Redis (make run's stop, a restart)
NOT_ASKED = "No print file of these options is being made now: ask for it (not with HEAD) to have it made."
NO_WORKER = ("Your print file waits for a worker to make it, and none is running right now: it is made once one "
             "starts (ask whoever runs qart).")
COULD_NOT = "The print file could not be made just now; try again in a minute, or choose a smaller size."
QUEUE_AWAY = ("Large print files are made by a worker, and the job queue that sends them there is unavailable right "
              "now: nothing was ordered. Ask for the file again in a minute, or choose a smaller size.")
STORAGE_AWAY = "The image storage is unavailable right now; try the print file again in a minute."
WAITING = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED)


@dataclass
class Stored:
    """A print file a worker made, in the media storage."""

    name: str
    format: str
    media_type: str
    report: dict


class Making(Exception):
    """The print file is being made by a worker, or waits for one; ask again in `RETRY_SECONDS`."""

    def __init__(self, message: str = MAKING) -> None:
        super().__init__(message)
        self.message = message


def raster_pixels(placement, spec: print_specs.PrintSpec) -> int:
    """How many pixels the file's page has; 0 for vectors (a plain code in PDF or SVG)."""
    if placement.artwork is None and spec.format in ("pdf", "svg"):
        return 0
    return print_specs.pixels(print_specs.geometry(spec).media_mm, spec.dpi) ** 2


def requested_file(placement, short_url: str, options: Mapping[str, str], person_id: int | None = None,
                   start: bool = True) -> printing.PrintFile | Stored:
    """The print file for the typed `options`: made here when small, else a worker's (`Stored`, once made).

    Args:
        start: whether a file not yet made may be queued (False for a HEAD: it asks, it does not order).

    Raises:
        Making: a worker is making it (the request that queues it raises this too).
        Refused: why not, with its status (429: another of this person's files is being made; 503: the job queue,
            Redis, cannot be reached, or the storage).
    """
    spec = printfiles.typed_spec(placement, options)
    key = build_key(placement, short_url, spec)
    if raster_pixels(placement, spec) <= INLINE_PIXELS:
        return printfiles.checked_file(placement, short_url, spec, person_id, key)
    try:
        printfiles.refuse_unprintable(placement)  # a made file, too, is never served once its art fails
    except printfiles.NotPrintable as exc:
        raise Refused(str(exc), 409) from None
    worker_takes_it = False
    try:
        # Through the breaker: a stalled Redis held each request its timeout two or three times over
        with breaker(printfiles.redis_connection()):
            answer = _answer(key)
            if answer is None:
                if not start:
                    # Not "being made": nothing is. Answered 202, the waiting page's script (which asks with HEAD)
                    # waited for ever once Redis lost the build; any other answer reloads the page, whose GET queues
                    # it again.
                    raise Refused(NOT_ASKED, 409)
                worker_takes_it = _start(key, placement, short_url, spec, person_id)
            elif answer["state"] == "making":
                _check_on(key, answer, person_id)
    except (RedisError, OSError):
        # Refused, nothing ordered: the person asks again once Redis answers. Made here instead, it took a large
        # file's 17-35 s and gigabyte or two past the web server's timeout, beside workers that wait for Redis.
        raise Refused(QUEUE_AWAY, 503) from None
    if answer is None:
        if not worker_takes_it:
            return printfiles.checked_file(placement, short_url, spec, person_id, key)  # no worker: made here
        raise Making()
    if answer["state"] == "refused":
        raise Refused(answer["message"], answer["status"])
    stored = Stored(answer["name"], answer["format"], answer["media_type"], answer["report"])
    try:
        here = default_storage.exists(stored.name)
    except MediaUnavailable:
        raise Refused(STORAGE_AWAY, 503) from None
    if not here:  # deleted since (the daily upkeep): made again
        try:
            printfiles.redis_connection().delete(_answer_key(key))
        except RedisError:  # Redis gone since its answer was read: a traceback, 500, before
            raise Refused(QUEUE_AWAY, 503) from None
        return requested_file(placement, short_url, options, person_id, start)
    return stored


def file_name(placement, made: printing.PrintFile | Stored) -> str:
    """The downloaded file's name, the same from the page and the API: the slug, the width and the format's usual
    suffix ("qart-Ab3dE9xy-20cm.tif")."""
    extension = "tif" if made.format == "tiff" else made.format
    return f"qart-{placement.slug}-{made.report['width_mm'] / 10:g}cm.{extension}"


def download(request: HttpRequest, made: printing.PrintFile | Stored, filename: str) -> HttpResponse:
    """The response that sends `made` as an attachment: whole, one range of it, or 304 (`qartsite.file_responses`;
    a resumed download of a large file reads only the rest from the storage); nothing read for a HEAD.

    Raises:
        Refused: 503, the storage cannot be reached; 410 the stored file went away meanwhile.
    """
    try:
        content = made.data if isinstance(made, printing.PrintFile) else StoredFile.look_up(default_storage, made.name)
        return file_responses.send(request, content, made.media_type, filename)
    except MediaUnavailable:
        raise Refused(STORAGE_AWAY, 503) from None
    except FileNotFoundError:
        raise Refused("The print file was deleted a moment ago; ask for it again.", 410) from None


def build_key(placement, short_url: str, spec: print_specs.PrintSpec) -> str:
    """What a made file depends on: the placement's art (or its link) and scanning distance (the report's
    preflight), the options, the verifier, and this code's `VERSION`."""
    art = f"artwork {placement.artwork.pk} {placement.artwork.image.name}" if placement.artwork else "plain"
    text = (f"{VERSION}|{placement.pk}|{art}|{short_url}|{placement.scanning_distance}|"
            f"{sorted(dataclasses.asdict(spec).items())}|{decision.MODEL}|{settings.QART['SCAN_THRESHOLD']}|"
            f"{printfiles.CMYK_PROFILE}")
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _answer_key(key: str) -> str:
    return f"{settings.QART['REDIS_PREFIX']}print-file:{key}"


def _job_id(key: str) -> str:
    return f"qart-print-{key}"


def _answer(key: str) -> dict | None:
    """What is known of the file `key`: {"state": "making"}, "ready" (where it is) or "refused" (why)."""
    raw = printfiles.redis_connection().get(_answer_key(key))
    return json.loads(raw) if raw else None


def _tell(key: str, seconds: int, **answer) -> None:
    printfiles.redis_connection().set(_answer_key(key), json.dumps(answer), ex=seconds)


def _worker_coming(queue: Queue) -> bool:
    """Whether a worker takes `queue` (the print files' queue), or one loading its engine will: such a worker takes it
    in seconds to minutes; made in the request meanwhile, an 89-million-pixel file took 32 s, past the web server's
    timeout (a fault drill)."""
    return bool(workers_on(queue)) or engine_status.loading_on(QUEUE)


def _start(key: str, placement, short_url: str, spec: print_specs.PrintSpec, person_id: int | None) -> bool:
    """Queue the build of `key` unless it is queued already; False when no worker takes the queue.

    Raises:
        Refused: 429, another of this person's files is being made.
    """
    queue = django_rq.get_queue(QUEUE)
    if not _worker_coming(queue):
        return False
    redis = queue.connection
    if not redis.set(_answer_key(key), json.dumps({"state": "making"}), nx=True, ex=BUILD_SECONDS):
        return True  # someone queued it a moment ago
    mark = printfiles.building_mark(person_id)
    taken = person_id is None or redis.set(mark, key, nx=True, ex=BUILD_SECONDS) or redis.get(mark) == key.encode()
    if not taken:
        redis.delete(_answer_key(key))
        raise Refused(printfiles.BUSY, 429)
    try:
        try:
            delete_job(Job.fetch(_job_id(key), connection=redis))  # an earlier, failed build of the same file
        except NoSuchJobError:
            pass
        queue.enqueue(build, key, placement.pk, short_url, dataclasses.asdict(spec), person_id, job_id=_job_id(key),
                      job_timeout=BUILD_SECONDS, result_ttl=0, failure_ttl=KEEP_SECONDS,
                      on_failure=Callback(build_failed))
    except RedisError as exc:
        if not did_not_answer(exc):
            # Nothing was queued: the file must not say "being made", nor the person's mark refuse their other files,
            # for BUILD_SECONDS. A Redis that refused a write (full) still deletes; one that did not answer would not.
            with contextlib.suppress(RedisError):
                redis.delete(_answer_key(key))
                _release(key, person_id)
        raise
    return True


def _check_on(key: str, answer: dict, person_id: int | None) -> None:
    """A file being made (its `answer`): raises `Making` while its job waits or runs (its answer kept alive meanwhile,
    however long the queue), else `Refused` 503: the job failed, or was lost with its worker (the mark of `person_id`,
    who asks, let go if it is this file's)."""
    redis = printfiles.redis_connection()
    try:
        status = Job.fetch(_job_id(key), connection=redis).get_status()
    except NoSuchJobError:
        status = None
    if status in WAITING:
        redis.expire(_answer_key(key), BUILD_SECONDS)
        if status == JobStatus.QUEUED and not _worker_coming(django_rq.get_queue(QUEUE)):
            # Its worker gone before taking it (stopped, killed while loading): "up to a minute or two" was untrue
            raise Making(NO_WORKER)
        raise Making(INTERRUPTED if answer.get("interrupted") else MAKING)
    answer = _answer(key)  # the job may have finished since the answer was read
    if answer is not None and answer["state"] != "making":
        raise Refused(answer["message"], answer["status"]) if answer["state"] == "refused" else Making()
    _tell(key, TROUBLE_SECONDS, state="refused", status=503, message=COULD_NOT)
    # A build lost with its worker (kill -9: RQ fails the job without its callback) held the person's mark for
    # BUILD_SECONDS, each other file of theirs refused meanwhile as "still being made".
    _release(key, person_id)
    raise Refused(COULD_NOT, 503)


def build(key: str, placement_pk: int, short_url: str, spec_fields: dict, person_id: int | None) -> str:
    """RQ job: make the print file `key`, keep it in the media storage, and leave the answer in Redis."""
    from campaigns.models import Placement

    started, stopped = time.monotonic(), False
    try:
        _tell(key, BUILD_SECONDS, state="making")  # no longer waiting, if a stop of its worker had put it back
        placement = Placement.objects.select_related("artwork__job").get(pk=placement_pk)
        made = printfiles.made_and_checked(placement, short_url, print_specs.PrintSpec(**spec_fields))
        name = default_storage.save(f"{FOLDER}/{key}.{made.format}", ContentFile(made.data))
        _tell(key, KEEP_SECONDS, state="ready", name=name, format=made.format, media_type=made.media_type,
              report=made.report)
        return f"made {name} in {time.monotonic() - started:.1f} s"
    except Placement.DoesNotExist:
        printfiles.redis_connection().delete(_answer_key(key))
        return "the placement is gone"
    except Refused as exc:
        _tell(key, REFUSAL_SECONDS if exc.status < 500 else TROUBLE_SECONDS, state="refused", message=exc.message,
              status=exc.status)
        return f"refused: {exc.message}"
    except WorkerStopped:
        stopped = True  # `build_failed` puts it back, the person's mark kept for it, or ends it
        raise
    except Exception:
        # A time limit can land mid-query and leave the connection mid-command (see `generator.jobs`): the next
        # job in this worker gets a new one.
        db.connection.close()
        _tell(key, TROUBLE_SECONDS, state="refused", status=503, message=COULD_NOT)
        raise  # RQ keeps the traceback with the failed job
    finally:
        if not stopped:
            _release(key, person_id)


def build_failed(rq_job, connection, exc_type, exc_value, tb) -> None:
    """RQ failure callback of `build`: a build that a stop of its worker interrupted goes back in the queue, the page
    saying so, MAX_WORKER_STOPS times at most; then, as any failed build, the file could not be made (`build` said so
    for a failure of its own)."""
    key, person_id = rq_job.args[0], rq_job.args[4]
    if put_back_if_stopped(rq_job, exc_value):
        _tell(key, BUILD_SECONDS, state="making", interrupted=True)
    elif isinstance(exc_value, WorkerStopped):
        _tell(key, TROUBLE_SECONDS, state="refused", status=503, message=COULD_NOT)
        _release(key, person_id)


def _release(key: str, person_id: int | None) -> None:
    """The person may ask for another large file once this one is made or given up."""
    redis = printfiles.redis_connection()
    mark = printfiles.building_mark(person_id)
    if person_id is not None and redis.get(mark) == key.encode():
        redis.delete(mark)


def forget_old_files(now: float | None = None) -> int:
    """Delete made print files past their day (the workers' daily upkeep); returns how many."""
    now = time.time() if now is None else now
    try:
        _, names = default_storage.listdir(FOLDER)
    except FileNotFoundError:
        return 0
    deleted = 0
    for name in names:
        path = f"{FOLDER}/{name}"
        if now - default_storage.get_modified_time(path).timestamp() > KEEP_SECONDS + 3600:
            default_storage.delete(path)
            deleted += 1
    return deleted
