"""A job's files (`generator.job_files`): candidates' PNGs encoded as they are drawn, stored side by side on threads
kept from job to job, whole or not at all, stored once more when the storage was away for a moment, and the job's
picture read back."""

from __future__ import annotations

import io
import threading
import time
from types import SimpleNamespace

import pytest
from django.db.models import F
from PIL import Image

from generator import job_files, jobs
from generator.core.codes import scan
from generator.core.engines import ranking
from generator.models import GenerationJob
from tests.conftest import ON_S3_ONLY
from tests.generator.factories import CONTENT, halftone_job

pytestmark = pytest.mark.django_db(transaction=True)  # as in test_jobs: on_commit runs at once, as in a worker
RUNNING = GenerationJob.Status.RUNNING  # a job's files are stored by its running attempt (`job_files.this_attempt`)


def stored_names(storage, folder: str) -> list[str]:
    try:
        return storage.listdir(folder)[1]
    except FileNotFoundError:  # the filesystem: no folder at all
        return []


def made(count: int = 8) -> ranking.BestOfNResult:
    """What `best_of_n` returns for `count` candidates of one batch, in plain colours (nothing drawn or verified)."""
    verdict = scan.ScanResult(expected=CONTENT, reads=[], decoded=[CONTENT], expected_match=True, misread=False,
                              scan_probability=0.9, verdict="pass", seconds=0.0)
    candidates = [ranking.RankedImage(index, 0, 9 + index, Image.new("RGB", (64, 64), (20 * index, 0, 0)), verdict,
                                      None, rank=index + 1) for index in range(count)]
    return ranking.BestOfNResult(code=None, control=Image.new("RGB", (64, 64), "white"), candidates=candidates,
                                 batches=1, generation_seconds=0.0, scoring_seconds=0.0, message="")


def test_a_storage_failing_part_way_leaves_no_half_stored_candidates(media_storage, monkeypatch, settings):
    from django.core.files.storage import default_storage

    from generator.models import Candidate
    from qartsite.storage import MediaUnavailable

    job = halftone_job(status=RUNNING)
    backend = type(default_storage._wrapped)
    save, saved = backend._save, []

    def fails_on_the_control_image(self, name, content):
        if "/control/" in name:
            raise MediaUnavailable(f"The media storage could not store “{name}”: it went away")
        time.sleep(0.1)  # still storing when the control image failed: waited for, then deleted
        saved.append(save(self, name, content))
        return saved[-1]

    monkeypatch.setattr(backend, "_save", fails_on_the_control_image)
    settings.QART = {**settings.QART, "STORE_AGAIN_AFTER": 0}
    with pytest.raises(MediaUnavailable):
        jobs.run_generation(job.pk)  # raised on: RQ retries it, then generation_failed says why
    monkeypatch.undo()

    job.refresh_from_db()
    assert len(saved) == 6 and all(name.startswith(f"generations/{job.pk}/") for name in saved)  # 3 candidates, twice
    assert not Candidate.objects.filter(job=job).exists() and not job.control_image
    assert stored_names(default_storage, "generations/control") == []
    assert stored_names(default_storage, f"generations/{job.pk}") == []
    assert default_storage.exists(job.init_image.name)  # the job's own picture stays, for the retry


def test_a_storage_away_for_a_moment_keeps_the_jobs_work(media_storage, monkeypatch, caplog):
    # The bucket restarting as a job stored its images failed the job, and RQ's retry (at once) met the bucket still
    # away: the GPU's work was lost twice. The images are stored once more, past the storage's outage memory.
    from django.core.files.storage import default_storage

    from generator.models import Candidate
    from qartsite import storage
    from qartsite.storage import MediaUnavailable

    job = halftone_job(status=RUNNING)
    backend = type(default_storage._wrapped)
    save, waited = backend._save, []

    def away(self, name, content):
        raise MediaUnavailable("The media storage could not be reached: it is restarting")

    def back_after(seconds):
        waited.append((seconds, GenerationJob.objects.get(pk=job.pk).stage))
        monkeypatch.setattr(backend, "_save", save)

    monkeypatch.setattr(backend, "_save", away)
    monkeypatch.setattr(job_files.time, "sleep", back_after)
    assert not jobs.run_generation(job.pk).startswith("failed")
    job.refresh_from_db()
    assert job.status == "done" and Candidate.objects.filter(job=job).exists()
    assert default_storage.exists(job.control_image.name)
    assert waited == [(20, "storing_again")] and 20 > storage.AWAY_SECONDS
    assert "storing again in 20 s" in caplog.text


class Clock:
    """`job_files`' time: sleeps pass at once and are noted, with the stage the job's row shows meanwhile."""

    def __init__(self, job: GenerationJob, on_sleep=lambda seconds: None) -> None:
        self.job, self.now, self.slept, self.on_sleep = job, 0.0, [], on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append((seconds, GenerationJob.objects.get(pk=self.job.pk).stage))
        self.now += seconds
        self.on_sleep(seconds)


def failing_for_a_moment(backend, times: int):
    """A bucket's `_save` that answers the first `times` calls as a bucket just back from an outage does (a 500,
    "please try again"), then stores."""
    from qartsite.storage import MediaUnavailable

    save, calls = backend._save, []

    def _save(self, name, content):
        calls.append(name)
        if len(calls) <= times:
            failed = MediaUnavailable(f"The media storage refused to store “{name}”: InternalError (500)")
            failed.passing = True
            raise failed
        return save(self, name, content)

    return _save


def test_a_bucket_just_back_that_fails_for_a_moment_is_tried_again_within_the_wait(media_storage, monkeypatch,
                                                                                    settings):
    # SeaweedFS thawed after a freeze answered the second store's PutObjects with a 500 ("InternalError ... please try
    # again") for a second or two: the attempt failed and RQ ran the whole job again (a fault drill, now and then).
    from django.core.files.storage import default_storage

    from qartsite.storage import MediaUnavailable

    job = halftone_job(status=RUNNING)
    backend = type(default_storage._wrapped)
    # The first store fails (frozen); the second fails for a moment: its first try, and part of its next.
    frozen_then_failing = failing_for_a_moment(backend, times=3 + 4 + 2)
    first = [True]

    def _save(self, name, content):
        if first[0]:
            first[0] = False
            raise MediaUnavailable("The media storage could not store it: read timeout")
        return frozen_then_failing(self, name, content)

    monkeypatch.setattr(backend, "_save", _save)
    clock = Clock(job)
    monkeypatch.setattr(job_files, "time", clock)
    settings.QART = {**settings.QART, "STORE_AGAIN_AFTER": 5}
    assert not jobs.run_generation(job.pk).startswith("failed")
    job.refresh_from_db()
    assert job.status == "done" and job.attempts == 1 and job.candidates.count() == 3
    assert clock.slept == [(5, "storing_again"), (1.0, "storing_again"), (1.0, "storing_again")]
    assert default_storage.exists(job.control_image.name)


def test_a_bucket_failing_past_the_wait_fails_the_attempt(media_storage, monkeypatch, settings):
    from django.core.files.storage import default_storage

    from qartsite.storage import MediaUnavailable

    job = halftone_job(status=RUNNING)
    monkeypatch.setattr(type(default_storage._wrapped), "_save",
                        failing_for_a_moment(type(default_storage._wrapped), times=10_000))
    clock = Clock(job)
    monkeypatch.setattr(job_files, "time", clock)
    settings.QART = {**settings.QART, "STORE_AGAIN_AFTER": 3}
    with pytest.raises(MediaUnavailable, match="InternalError"):
        jobs.run_generation(job.pk)  # raised on: RQ retries it once
    assert clock.slept == [(3, "storing_again"), (1.0, "storing_again"), (1.0, "storing_again"),
                           (1.0, "storing_again")]


@ON_S3_ONLY
def test_a_store_again_asks_the_bucket_though_its_wait_is_shorter_than_the_storages_pause(media_storage, settings,
                                                                                         monkeypatch):
    # The first store timed out on a frozen bucket, which starts the storage's pause (`storage.AWAY_SECONDS`): a
    # second store sooner than that (QART_STORE_AGAIN_AFTER=3) failed without asking, and the job was retried from the
    # start, the GPU's work thrown away, though the bucket was back (a fault drill: the S3 server SIGSTOPped).
    from django.core.files.storage import default_storage

    from qartsite.storage import MediaUnavailable

    job = halftone_job(status=RUNNING)
    bucket = default_storage._wrapped
    backend, save = type(bucket), type(bucket)._save

    def frozen(self, name, content):
        self._no_answer("The media storage did not answer: read timeout")  # as a timed-out call leaves it
        raise MediaUnavailable(f"The media storage could not store “{name}”: read timeout")

    monkeypatch.setattr(backend, "_save", frozen)
    monkeypatch.setattr(job_files.time, "sleep", lambda seconds: monkeypatch.setattr(backend, "_save", save))
    settings.QART = {**settings.QART, "STORE_AGAIN_AFTER": 3}
    assert not jobs.run_generation(job.pk).startswith("failed")
    job.refresh_from_db()
    assert job.status == "done" and job.attempts == 1 and job.candidates.count() == 3
    assert default_storage.exists(job.control_image.name)


def test_a_job_whose_picture_is_gone_fails_with_the_reason_and_is_not_retried():
    job = halftone_job(status=RUNNING)
    job.init_image.storage.delete(job.init_image.name)

    assert jobs.run_generation(job.pk).startswith("failed: ")
    job.refresh_from_db()
    assert job.status == "failed" and job.error == ("The job's picture is no longer stored; start a new job with the "
                                                   "picture.")


def test_the_png_encoder_reuses_what_it_started_and_encodes_what_repair_replaced(monkeypatch):
    calls = []
    encode = job_files.images.png_bytes
    monkeypatch.setattr(job_files.images, "png_bytes", lambda image: calls.append(image) or encode(image))
    drawn = [Image.new("RGB", (64, 64), (n * 40, 0, 0)) for n in range(3)]
    repaired = Image.new("RGB", (64, 64), "white")
    with job_files.PngEncoder() as encoder:
        encoder.start(drawn)
        pngs = encoder.pngs([drawn[2], repaired, drawn[0]])
    assert len(calls) == 4  # three started when drawn, the repaired one when asked for; none twice
    assert [Image.open(io.BytesIO(png)).getpixel((0, 0)) for png in pngs] == [(80, 0, 0), (255, 255, 255), (0, 0, 0)]


def test_it_stores_a_jobs_files_side_by_side_on_threads_kept_from_job_to_job(media_storage, monkeypatch):
    # One file after another, a job's tail paid a HEAD and a PUT per file to a bucket (18 round trips for 9 files);
    # threads made for each job opened a connection each, which cost more than it saved.
    from django.core.files.storage import default_storage

    first, second = halftone_job(status=RUNNING), halftone_job(status=RUNNING)
    backend = type(default_storage._wrapped)
    save, threads = backend._save, []
    together = threading.Barrier(9, timeout=5)

    def side_by_side(self, name, content):
        threads.append(threading.current_thread())
        together.wait()  # all nine files in flight at once: one after another, the first waits here in vain
        return save(self, name, content)

    monkeypatch.setattr(backend, "_save", side_by_side)
    for job in (first, second):
        with job_files.PngEncoder() as encoder:
            job_files.store(job, made(), encoder)

    assert [job.candidates.count() for job in (first, second)] == [8, 8]
    assert len(threads) == 18 and len(set(threads)) <= job_files.STORE_THREADS
    assert all(thread.name.startswith("store") for thread in threads)


@ON_S3_ONLY
def test_the_store_threads_connections_are_opened_before_the_first_job(media_storage, monkeypatch):
    # boto's session and client for a thread hold the GIL ~0.1 s: nine opened by the first job took ~1 s.
    from django.core.files.storage import default_storage

    job = halftone_job(status=RUNNING)
    backend = type(default_storage._wrapped)
    job_files.open_store_connections()
    create, opened = backend._create_session, []
    monkeypatch.setattr(backend, "_create_session", lambda self: opened.append(1) or create(self))
    save, together = backend._save, threading.Barrier(9, timeout=5)

    def on_every_thread(self, name, content):
        together.wait()  # nine files in flight at once: one on each of the nine threads
        return save(self, name, content)

    monkeypatch.setattr(backend, "_save", on_every_thread)
    with job_files.PngEncoder() as encoder:
        job_files.store(job, made(), encoder)

    assert job.candidates.count() == 8 and opened == []


def test_the_stored_image_is_the_one_repair_made(media_storage):
    # Repair replaces a candidate's image after it was handed over (and its PNG started): the file is the new one,
    # and the one handed over is not stored at all.
    from django.core.files.storage import default_storage

    job, result = halftone_job(status=RUNNING), made(3)
    repaired = Image.new("RGB", (64, 64), (0, 0, 255))
    with job_files.PngEncoder() as encoder:
        encoder.start([c.image for c in result.candidates])
        result.candidates[1].image = repaired
        job_files.store(job, result, encoder)

    stored = {c.index: c for c in job.candidates.all()}
    with stored[1].image.open("rb") as file:
        assert Image.open(file).getpixel((0, 0)) == (0, 0, 255)
    assert sorted(stored_names(default_storage, f"generations/{job.pk}")) == [
        "candidate-00-seed9.png", "candidate-01-seed10.png", "candidate-02-seed11.png"]


def test_a_superseded_attempt_writes_no_rows_and_leaves_its_files_to_the_media_sweep(media_storage):
    # The later attempt stores under the same names: on a bucket two stores that look a name up at once can both take
    # it, so deleting this attempt's files could take the later attempt's from under its rows.
    from django.core.files.storage import default_storage

    job = halftone_job(status=RUNNING)
    GenerationJob.objects.filter(pk=job.pk).update(attempts=F("attempts") + 1)  # handed to a later attempt
    with job_files.PngEncoder() as encoder, pytest.raises(job_files.Superseded):
        job_files.store(job, made(), encoder)

    assert job.candidates.count() == 0
    assert len(stored_names(default_storage, f"generations/{job.pk}")) == 8  # for the sweep: named by no row


def test_an_attempt_stays_superseded_when_a_stop_gave_an_attempt_back(media_storage):
    # A stopped run's attempt is given back (`jobs.put_back`: attempts - 1), so the count alone can come back to a
    # superseded attempt's: this run (attempt 1) was superseded when a stale run's stop put the row back (0) and the
    # row's next run took it (1 again); this run then wrote its candidates over the one that holds the row.
    job = halftone_job(status=RUNNING, attempts=1)  # as `run_generation` started this run
    assert jobs.put_back(job.pk)  # the stale run's stop
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.RUNNING, attempts=F("attempts") + 1)

    with job_files.PngEncoder() as encoder, pytest.raises(job_files.Superseded):
        job_files.store(job, made(), encoder)
    assert job.candidates.count() == 0


@ON_S3_ONLY
def test_a_bucket_just_back_takes_every_file_at_once_not_after_a_wait(media_storage, monkeypatch):
    # Past the storage's memory of an outage one call probes the bucket while the others fail at once: nine files
    # side by side lost that race, and the job waited STORE_AGAIN_AFTER (20 s) for a bucket that was back. The store
    # asks the bucket first, then stores.
    from django.core.files.storage import default_storage

    from qartsite import storage

    # A far bucket: the probe takes 0.3 s.
    ask, sleep = storage.S3MediaStorage._ask_server, time.sleep
    monkeypatch.setattr(storage.S3MediaStorage, "_ask_server", lambda self, timeout: sleep(0.3) or ask(self, timeout))
    job = halftone_job(status=RUNNING)  # its picture stored: the storage built
    backend = default_storage._wrapped
    backend._no_answer("The media storage did not answer: it was restarting")
    backend._away_until = time.monotonic() - 0.01  # the outage's memory just over: the next call probes
    waited: list[float] = []
    monkeypatch.setattr(job_files.time, "sleep", waited.append)
    with job_files.PngEncoder() as encoder:
        job_files.store(job, made(), encoder)

    assert job.candidates.count() == 8 and waited == []


@pytest.mark.parametrize("cleanup", ["retried it", "failed it on its last try"])
def test_a_run_whose_row_rqs_cleanup_handed_on_stops_at_its_next_step_and_writes_nothing(media_storage, monkeypatch,
                                                                                        cleanup):
    # A live worker cut off from Redis past its heartbeats' time to live: RQ's cleanup (another worker's, or the
    # reconciler's) took the job for abandoned and its failure callback handed the row back to the queue, or failed it
    # on its last try. The run went on: its progress said "running" over the queued row (over the failed row too),
    # and, ending before the retry started, it wrote its candidates and "done" beside the retry's run.
    from rq.exceptions import AbandonedJobError

    from generator.core.engines import halftone

    job = halftone_job()
    best, steps = halftone.best_halftones, []

    def cut_off_meanwhile(picture, content, config, on_progress, **kwargs):
        retries_left = 1 if cleanup == "retried it" else 0
        jobs.generation_failed(SimpleNamespace(args=[job.pk], retries_left=retries_left), None, AbandonedJobError,
                               AbandonedJobError(), None)  # what RQ's cleanup does, in another process

        def step(stage: str, fraction: float) -> None:
            steps.append(stage)
            on_progress(stage, fraction)

        return best(picture, content, config, step, **kwargs)

    monkeypatch.setattr(halftone, "best_halftones", cut_off_meanwhile)
    assert jobs.run_generation(job.pk) == "superseded by a later attempt"
    job.refresh_from_db()
    assert len(steps) == 1  # stopped at its first step
    assert job.candidates.count() == 0 and job.attempts == 1
    if cleanup == "retried it":
        assert (job.status, job.stage, job.finished) == ("queued", "retrying", None)
    else:
        assert (job.status, job.stage) == ("failed", "failed") and "stopped unexpectedly" in job.error
