"""Generation jobs end to end: real Redis, real worker processes, the tiny model on the CPU."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError
from django.db.models import F
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import Job
from rq.registry import StartedJobRegistry

from generator import job_parameters, jobs
from generator.models import GenerationJob, Prompt
from qartsite.storage import MediaUnavailable
from tests.conftest import S3
from tests.generator.factories import halftone_job

URL = "https://qart.example/r/AbC123"
pytestmark = pytest.mark.django_db(transaction=True)  # the worker process must see committed rows


def job_fields() -> dict:
    user, _ = get_user_model().objects.get_or_create(username="maker")
    prompt = Prompt.remember(user, "a koi pond at dawn", "blurry")
    return dict(owner=user, prompt=prompt, content=URL, steps=2, size=256, candidates_per_batch=8, max_batches=1,
                seed=100)


def make_job(**overrides) -> GenerationJob:
    job = GenerationJob.objects.create(**{**job_fields(), **overrides})
    jobs.enqueue_generation(job)  # outside a transaction block on_commit runs at once
    return job


def wait_for(job: GenerationJob, condition, seconds: float, worker=None) -> GenerationJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if condition(job):
            return job
        if worker is not None and worker.poll() is not None:
            break
        time.sleep(0.2)
    log = Path(worker.log_path).read_text()[-3000:] if worker is not None else ""
    raise AssertionError(f"job {job.pk} stuck in {job.status} ({job.stage}, {job.progress}); worker log:\n{log}")


@pytest.mark.worker
def test_a_worker_makes_eight_ranked_candidates_and_seeds_reproduce(gpu_queue, start_worker, settings):
    # One burst worker serves both this test's jobs and the cancelled one's (a worker start costs ~20 s here).
    first, second = make_job(), make_job()
    assert first.status == "queued" and jobs.queue_position(GenerationJob.objects.get(pk=second.pk)) == 2
    cancelled = queued_job_cancelled_at_once(gpu_queue)
    worker = start_worker(burst=True)
    assert worker.wait(timeout=300) == 0, Path(worker.log_path).read_text()[-3000:]
    cancelled.refresh_from_db()
    assert cancelled.status == "cancelled" and cancelled.candidates.count() == 0  # the worker skipped it

    for job in (first, second):
        job.refresh_from_db()
        assert job.status == "done", job.error
        assert job.progress == 1.0 and job.attempts == 1 and job.scannable is not None
        assert job.model_id.endswith("base") and job.tiny_model
        assert job.queue_seconds >= 0 and job.generation_seconds > 0 and job.total_seconds >= job.generation_seconds
        assert job.control_image and Path(job.control_image.path).is_file()
        candidates = list(job.candidates.order_by("rank"))
        assert [c.rank for c in candidates] == list(range(1, 9))
        assert sorted(c.seed for c in candidates) == list(range(100, 108))
        assert all(Path(c.image.path).is_file() and c.aesthetic_score is not None for c in candidates)
        assert all(0.0 <= c.scan_probability <= 1.0 and c.verdict in ("pass", "fail") for c in candidates)
        assert str(settings.MEDIA_ROOT) in candidates[0].image.path

    by_seed = {c.seed: Path(c.image.path).read_bytes() for c in first.candidates.filter(repaired=False)}
    again = {c.seed: Path(c.image.path).read_bytes() for c in second.candidates.filter(repaired=False)}
    shared = set(by_seed) & set(again)
    assert shared and all(by_seed[s] == again[s] for s in shared)


@pytest.mark.worker
def test_a_worker_on_two_devices_splits_each_jobs_candidates(gpu_queue, start_worker):
    # Two replicas on the CPU stand in for two GPUs (QART_DEVICES=cuda:0,cuda:1 on a GPU host).
    job = make_job()
    worker = start_worker(burst=True, QART_DEVICES="cpu,cpu")
    assert worker.wait(timeout=300) == 0, Path(worker.log_path).read_text()[-3000:]
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert "ready on cpu,cpu" in Path(worker.log_path).read_text()
    candidates = list(job.candidates.order_by("rank"))
    assert sorted(c.seed for c in candidates) == list(range(100, 108))
    assert all(Path(c.image.path).is_file() and c.aesthetic_score is not None for c in candidates)


@pytest.mark.worker
def test_a_worker_told_to_use_a_missing_gpu_fails_jobs_with_one_message(gpu_queue, start_worker):
    job = make_job()
    worker = start_worker(burst=True, QART_DEVICES="cuda:0,cuda:1")  # this machine has no GPU
    assert worker.wait(timeout=300) == 0, Path(worker.log_path).read_text()[-3000:]
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("The device 'cuda:0' is not on this machine, which has 0 GPUs")
    assert "QART_DEVICES" in job.error and "Traceback" not in Path(worker.log_path).read_text()


def queued_job_cancelled_at_once(gpu_queue) -> GenerationJob:
    """A queued job, cancelled: it finishes at once and leaves the queue (a worker then skips it)."""
    waiting = gpu_queue.count
    job = make_job()
    job.refresh_from_db()
    jobs.request_cancel(job)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished is not None
    assert gpu_queue.count == waiting
    return job


def test_a_queued_job_reports_its_place_even_out_of_the_queues_list(gpu_queue):
    # Taken by a worker that has not marked the row running yet, or waiting in RQ's schedule for its retry: the row
    # says queued, and the API and the page answered queue_position null.
    taken, behind, retried = make_job(), make_job(), make_job()
    taken_rq = gpu_queue.fetch_job(jobs.rq_job_id(taken.pk))
    gpu_queue.remove(taken_rq)
    taken_rq.set_status("started")
    retried_rq = gpu_queue.fetch_job(jobs.rq_job_id(retried.pk))
    gpu_queue.remove(retried_rq)
    retried_rq.set_status("scheduled")
    gpu_queue.schedule_job(retried_rq, datetime.now(UTC) + timedelta(minutes=1))
    positions = [jobs.queue_position(GenerationJob.objects.get(pk=job.pk)) for job in (taken, behind, retried)]
    assert positions == [1, 1, 2]


def test_a_queued_job_is_cancelled_at_once(gpu_queue):
    job = queued_job_cancelled_at_once(gpu_queue)
    assert job.candidates.count() == 0


def test_a_queued_job_redis_lost_is_cancelled_at_once(gpu_queue):
    # Redis restarted without its data: no worker will ever see the job, so the cancel must not wait for one.
    job = make_job()
    job.refresh_from_db()
    gpu_queue.remove(job.rq_job_id)
    gpu_queue.connection.delete(f"rq:job:{job.rq_job_id}")
    jobs.request_cancel(job)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished is not None


def test_a_queued_job_is_cancelled_at_once_when_redis_cannot_be_reached(gpu_queue, monkeypatch):
    from redis import Redis

    job = make_job()
    job.refresh_from_db()
    unreachable, get_queue = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1), jobs.django_rq.get_queue
    monkeypatch.setattr(jobs.django_rq, "get_queue", lambda name: get_queue(name, connection=unreachable))
    jobs.request_cancel(job)
    job.refresh_from_db()
    assert job.status == "cancelled"  # and a worker that takes its RQ job later skips the finished row
    monkeypatch.undo()
    assert jobs.run_generation(job.pk) == f"job {job.pk} already cancelled"


# "cpu,cpu": two replicas stand in for a worker driving two GPUs (pipeline.SplitEngine): the job's own thread
# waits on them, and a cancel or the time limit must still reach it there.
WORKERS = pytest.mark.parametrize("devices", ["", "cpu,cpu"], ids=["one-device", "split"])


@pytest.mark.worker
@WORKERS
def test_a_running_job_stops_between_steps_when_cancelled(gpu_queue, start_worker, devices):
    job = make_job(steps=150)
    worker = start_worker(QART_DEVICES=devices)
    wait_for(job, lambda j: j.status == "running" and j.progress > 0.01, 120, worker)
    jobs.request_cancel(job)
    job = wait_for(job, lambda j: j.status == "cancelled", 60, worker)
    assert job.progress < 0.8 and job.candidates.count() == 0


@pytest.mark.worker
@WORKERS
def test_a_job_over_its_time_limit_fails_with_the_reason(gpu_queue, start_worker, settings, devices):
    settings.QART = {**settings.QART, "JOB_TIMEOUT": 3}
    job = make_job(steps=150)
    worker = start_worker(burst=True, QART_DEVICES=devices)
    assert worker.wait(timeout=300) == 0
    job.refresh_from_db()
    assert job.status == "failed" and job.error == "Stopped after the 3 s time limit."
    assert job.attempts == 1  # a timeout is not retried


@pytest.mark.worker
@pytest.mark.drill  # the "worker SIGKILLed mid-job" drill
def test_a_killed_workers_job_is_retried_once_then_failed(gpu_queue, start_worker):
    job = make_job(steps=150)
    registry = StartedJobRegistry(queue=gpu_queue)
    for attempt in (1, 2):
        worker = start_worker()
        wait_for(job, lambda j, a=attempt: j.status == "running" and j.attempts == a, 120, worker)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        # RQ notices a dead worker's job once it expires from the started registry; don't wait for that.
        registry.cleanup(timestamp=time.time() + 10**6)
        job.refresh_from_db()
        if attempt == 1:
            assert job.status == "queued" and job.stage == "retrying"
            assert gpu_queue.count == 1
    assert job.status == "failed" and job.attempts == 2
    assert "stopped unexpectedly" in job.error and "retried once" in job.error


def test_a_time_limit_that_lands_mid_query_still_ends_the_job_with_the_reason(monkeypatch, settings):
    # RQ's time limit is SIGALRM raising JobTimeoutException wherever the job is; in a PostgreSQL query psycopg leaves
    # the connection mid-command, and the job's verdict could not be written (the row stayed "running").
    from django.db import connection
    from rq.timeouts import JobTimeoutException

    slow = ("SELECT pg_sleep(2)" if connection.vendor == "postgresql" else
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c")

    def time_limit(signum, frame):
        raise JobTimeoutException("Task exceeded maximum timeout value")

    def slow_query(job, on_progress, model):
        with connection.cursor() as cursor:
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            cursor.execute(slow)

    previous = signal.signal(signal.SIGALRM, time_limit)
    monkeypatch.setattr(jobs, "_run_halftone", slow_query)
    try:
        assert jobs.run_generation(halftone_job().pk) == "timed out"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    job = GenerationJob.objects.get(engine=GenerationJob.Engine.HALFTONE)
    assert job.status == "failed" and job.error == f"Stopped after the {settings.QART['JOB_TIMEOUT']} s time limit."


def test_a_halftone_job_stores_every_passing_candidate_with_its_fidelity(settings, media_storage):
    from PIL import Image

    from generator.models import Candidate

    job = halftone_job(content=URL, size=384)
    job_parameters.validate_job(job)

    message = jobs.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == GenerationJob.Status.DONE and job.scannable and message.startswith("3 of 3 variants scan.")
    assert job.model_id == "halftone" and job.result_message == message and job.control_image
    rows = list(job.candidates.order_by("rank"))
    assert [c.rank for c in rows] == [1, 2, 3] and [c.seed for c in sorted(rows, key=lambda c: c.index)] == [9, 10, 11]
    for row in rows:
        assert row.verdict == Candidate.Verdict.PASS and row.decoded_text == URL and not row.misread
        assert row.variant.startswith("centre ") and 0 < row.fidelity_ssim <= 1 and row.color_error >= 0
        assert row.aesthetic_score is None
        with row.image.open("rb") as stored:
            assert Image.open(stored).size == (384, 384)


def run_halftone_job_with_logo(size: tuple[int, int]) -> GenerationJob:
    """A level-H halftone job with a stored blue logo of `size`, run; refreshed from the database."""
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 60, 200)).save(buffer, format="PNG")
    job = halftone_job(ecc="H")
    job.logo.save("logo.png", ContentFile(buffer.getvalue()), save=True)
    jobs.run_generation(job.pk)
    job.refresh_from_db()
    return job


def test_a_halftone_job_with_a_logo_draws_it_in_the_centre_and_still_scans():
    import numpy as np
    from PIL import Image

    from generator.core.codes import grids, logos, qr

    job = run_halftone_job_with_logo((64, 64))
    assert job.status == GenerationJob.Status.DONE and job.scannable, job.result_message or job.error
    row = job.candidates.get(rank=1)
    assert row.verdict == "pass" and row.decoded_text == URL
    with row.image.open("rb") as stored:
        image = np.asarray(Image.open(stored).convert("RGB"))
    code = qr.encode(URL, ecc="H")
    grid = grids.grid_from_code(code, 256, 4)
    left, top, right, bottom = logos.plate_box(grid, logos.plate_for(code))
    assert tuple(image[(top + bottom) // 2, (left + right) // 2]) == (20, 60, 200)


def test_a_halftone_job_with_a_wordmark_logo_stored_thinner_than_a_picture_runs():
    # A 1700x200 wordmark is stored at most 512 px long: 512x60, under a picture's 64 px; the job failed on it
    job = run_halftone_job_with_logo((512, 60))
    assert job.status == GenerationJob.Status.DONE, job.error


def test_a_halftone_job_without_a_picture_fails_with_the_reason():
    user, _ = get_user_model().objects.get_or_create(username="maker")
    job = GenerationJob.objects.create(owner=user, prompt=Prompt.remember(user, "", ""), content=URL,
                                       engine=GenerationJob.Engine.HALFTONE)
    jobs.run_generation(job.pk)
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.FAILED and "needs a picture" in job.error


@pytest.mark.parametrize("floor", [0.0, 0.99])
def test_a_halftone_job_stores_whether_the_picture_fought_the_code(monkeypatch, floor):
    import dataclasses

    from generator.core.engines import halftone

    # The engine's fidelity floor: at 0 nothing fights; at 99 % every picture does.
    config = jobs.halftone_config
    monkeypatch.setattr(jobs, "halftone_config",
                        lambda job, model=None: dataclasses.replace(config(job, model), fidelity_floor=floor))
    job = halftone_job()
    jobs.run_generation(job.pk)
    job.refresh_from_db()
    fought = floor > 0
    assert job.status == GenerationJob.Status.DONE and job.scannable, job.error
    assert job.picture_fights is fought and job.result_warns is fought
    assert (halftone.PICTURE_FIGHTS in job.result_message) is fought  # the message still says it in words


def test_a_job_is_judged_by_the_active_verifier_model():
    from generator import verifier_models
    from generator.core.codes import decision
    from generator.models import VerifierModel

    # The shipped weights with a slightly higher bias: the same verdicts, but a model of its own id.
    shipped = decision.DEFAULT_MODEL
    model = decision.DecisionModel(shipped.bias + 0.25, shipped.weights, shipped.form)
    root = get_user_model().objects.create_superuser("root", password="pw-root-1")
    row = VerifierModel.objects.create(model_id=model.id, form=model.form, bias=model.bias,
                                       weights=[list(w) for w in model.weights], label_count=80, scanned_count=40)
    verifier_models.activate(row, root)
    job = halftone_job(owner=root, prompt=Prompt.remember(root, "", ""), candidates_per_batch=2, seed=3)

    jobs.run_generation(job.pk)

    rows = list(GenerationJob.objects.get(pk=job.pk).candidates.order_by("rank"))
    assert rows and all(c.verifier_model == model.id != decision.MODEL for c in rows)
    for c in rows:
        assert c.scan_probability == pytest.approx(model.probability(c.scan_details["features"]), abs=1e-4)
        assert {"grades", "reasons", "features"} <= set(c.scan_details)


def test_a_tiny_model_job_says_noise_by_its_flag_not_twice(tiny_engine, monkeypatch):
    # Its message ended "(tiny model: images are noise)" under the page's banner that already said so.
    monkeypatch.setattr(jobs.warm_engines, "get_engine", lambda: tiny_engine)
    job = GenerationJob.objects.create(**{**job_fields(), "candidates_per_batch": 2})

    jobs.run_generation(job.pk)

    job.refresh_from_db()
    assert job.status == "done" and job.tiny_model
    assert "noise" not in job.result_message and job.result_message.endswith("candidates scan.")


@pytest.mark.worker
@pytest.mark.parametrize("media_storage", [S3], indirect=True)
def test_a_worker_on_another_host_stores_candidates_the_web_serves(gpu_queue, start_worker, media_storage,
                                                                    team_users, tmp_path, settings):
    from django.test import Client

    job = make_job(team=team_users.team, candidates_per_batch=4)
    worker_media = tmp_path / "worker-host-media"  # the worker's own disk: nothing may land there
    worker_media.mkdir()
    worker = start_worker(burst=True, **{**media_storage.env, "MEDIA_ROOT": str(worker_media)})
    assert worker.wait(timeout=300) == 0, Path(worker.log_path).read_text()[-3000:]

    job.refresh_from_db()
    assert job.status == "done", job.error
    candidates = list(job.candidates.order_by("rank"))
    assert len(candidates) == 4 and job.control_image
    owner, outsider = Client(), Client()
    owner.force_login(team_users.viewer)
    outsider.force_login(team_users.outsider)
    for field in [job.control_image] + [c.image for c in candidates]:
        response = owner.get(field.url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png", field.name
        with field.open("rb") as stored:
            assert b"".join(response.streaming_content) == stored.read()
        assert outsider.get(field.url).status_code == 404
    assert list(worker_media.iterdir()) == [] and list(Path(settings.MEDIA_ROOT).iterdir()) == []


@pytest.mark.worker
def test_a_job_whose_storage_cannot_be_reached_is_retried_once_then_failed_with_the_reason(
        gpu_queue, start_worker, unreachable_media):
    job = make_job(candidates_per_batch=2)
    worker = start_worker(burst=True, QART_STORE_AGAIN_AFTER="1", **unreachable_media.env)
    assert worker.wait(timeout=300) == 0, Path(worker.log_path).read_text()[-3000:]

    job.refresh_from_db()
    assert job.status == "failed" and job.attempts == 2 and job.candidates.count() == 0
    # Each attempt stored its images twice (`STORE_AGAIN_AFTER`): the second time within the storage's outage memory.
    assert job.error.startswith("The image storage could not be reached, twice (it was retried once).")
    log = Path(worker.log_path).read_text()
    assert log.count("storing again in 1 s") == 2
    assert "Connection refused" in log or "Could not connect to the endpoint URL" in log  # the why, for whoever runs it


@pytest.mark.django_db
def test_a_job_that_could_not_store_its_images_twice_fails_without_the_servers_paths():
    from types import SimpleNamespace

    job = halftone_job()
    error = OSError(30, "Read-only file system")
    error.filename = "/srv/qart/media/generations/control/control-7.png"
    jobs.generation_failed(SimpleNamespace(args=[job.pk], retries_left=0), None, OSError, error, None)
    job.refresh_from_db()
    assert job.status == "failed" and "could not be stored" in job.error and "Read-only file system" in job.error
    assert "/srv/qart" not in job.error


@pytest.mark.django_db
def test_a_job_whose_image_storage_was_away_twice_fails_without_the_buckets_address():
    # The team read boto's words: the bucket's private address, the bucket's name and the file's (a fault drill).
    from types import SimpleNamespace

    job = halftone_job()
    error = MediaUnavailable("The media storage could not look up 'generations/control/control-7.png': Could not "
                             'connect to the endpoint URL: "http://10.0.0.5:9000/qart-media/generations/control-7.png"')
    jobs.generation_failed(SimpleNamespace(args=[job.pk], retries_left=0), None, MediaUnavailable, error, None)
    job.refresh_from_db()
    assert job.status == "failed" and job.error == (
        "The image storage could not be reached, twice (it was retried once). Try again later; if it lasts, tell "
        "whoever runs qart.")


@pytest.mark.django_db
@pytest.mark.parametrize("error", [
    OperationalError('connection failed: connection to server at "10.0.0.3", port 5432 failed: Connection refused'),
    RedisConnectionError("Error 111 connecting to 10.0.0.4:6379. Connection refused.")], ids=["database", "redis"])
def test_a_job_that_lost_its_database_or_redis_twice_fails_without_their_address(error):
    # The team read the driver's words: the private address of the database or of Redis.
    from types import SimpleNamespace

    job = halftone_job()
    jobs.generation_failed(SimpleNamespace(args=[job.pk], retries_left=0), None, type(error), error, None)
    job.refresh_from_db()
    assert job.status == "failed" and job.error == (
        "qart's database or job queue could not be reached, twice (it was retried once). Try again later; if it "
        "lasts, tell whoever runs qart.")


@pytest.mark.django_db
def test_an_oserror_that_is_not_about_storage_keeps_its_own_words():
    from types import SimpleNamespace

    job = halftone_job()
    jobs.generation_failed(SimpleNamespace(args=[job.pk], retries_left=0), None, TimeoutError,
                           TimeoutError("timed out"), None)
    job.refresh_from_db()
    assert job.error == "The job failed twice (TimeoutError: timed out)."


@pytest.mark.django_db
def test_a_job_failed_by_its_dead_worker_sends_its_webhook(monkeypatch):
    # Every other end (done, cancelled, timed out) sent generation.finished; this one ended the row directly, and an
    # integrator waiting for the webhook waited for ever.
    from types import SimpleNamespace

    from rq.exceptions import AbandonedJobError

    from campaigns import webhooks

    sent = []
    monkeypatch.setattr(webhooks, "generation_finished", lambda job: sent.append((job.pk, job.status)))
    job = halftone_job()
    jobs.generation_failed(SimpleNamespace(args=[job.pk], retries_left=0), None, AbandonedJobError,
                           AbandonedJobError(), None)
    job.refresh_from_db()
    assert job.status == "failed" and "stopped unexpectedly on its last try" in job.error
    assert sent == [(job.pk, "failed")]
    jobs.generation_failed(SimpleNamespace(args=[job.pk], retries_left=0), None, AbandonedJobError,
                           AbandonedJobError(), None)
    assert sent == [(job.pk, "failed")]  # an ended job is not ended, nor announced, again


@pytest.mark.parametrize(("fields", "attempts_after"), [
    ({"status": "running", "stage": "generating", "attempts": 2, "progress": 0.4}, 1),
    ({"status": "queued", "stage": "", "attempts": 0}, 0),  # stopped before `run_generation` counted the attempt
], ids=["running", "not-started-yet"])
def test_a_run_its_workers_stop_interrupted_goes_back_without_spending_an_attempt(monkeypatch, fields,
                                                                                 attempts_after):
    # Restarting the server twice during one job (make run's Ctrl-C) failed it: "The worker was stopped while it ran
    # this job, on its last try". The operator did nothing wrong with the job.
    from types import SimpleNamespace

    from campaigns import webhooks
    from qartsite import workers

    sent = []
    monkeypatch.setattr(webhooks, "generation_finished", lambda job: sent.append(job.pk))
    job = halftone_job(**fields)
    rq_job = SimpleNamespace(args=[job.pk], retries_left=0, meta={})  # its last try
    jobs.generation_failed(rq_job, None, jobs.WorkerStopped, jobs.WorkerStopped(), None)
    job.refresh_from_db()
    assert (job.status, job.stage, job.progress, job.attempts) == ("queued", jobs.INTERRUPTED, 0.0, attempts_after)
    assert job.worker_stops == 1 and job.finished is None and not sent  # not ended: no webhook
    assert rq_job.meta == {workers.PUT_BACK: True}  # the worker re-queues it without spending RQ's retry


def test_a_job_its_workers_stop_interrupted_too_often_is_retried_then_failed_as_before():
    from types import SimpleNamespace

    job = halftone_job(status="running", stage="generating", attempts=1, worker_stops=jobs.MAX_WORKER_STOPS)
    rq_job = SimpleNamespace(args=[job.pk], retries_left=1, meta={})
    jobs.generation_failed(rq_job, None, jobs.WorkerStopped, jobs.WorkerStopped(), None)
    job.refresh_from_db()
    assert (job.status, job.stage, job.attempts) == ("queued", "retrying", 1) and not rq_job.meta
    GenerationJob.objects.filter(pk=job.pk).update(status="running", attempts=2)
    rq_job.retries_left = 0
    jobs.generation_failed(rq_job, None, jobs.WorkerStopped, jobs.WorkerStopped(), None)
    job.refresh_from_db()
    assert job.status == "failed" and job.worker_stops == jobs.MAX_WORKER_STOPS and not rq_job.meta
    assert job.error == "The worker was stopped while it ran this job, on its last try (it had been retried once)."


def test_a_systemexit_of_the_jobs_own_code_is_a_crash():
    # Any SystemExit was taken for the worker's stop: a library calling sys.exit failed the job saying its worker was
    # stopped.
    from types import SimpleNamespace

    job = halftone_job(status="running", stage="generating", attempts=2)
    rq_job = SimpleNamespace(args=[job.pk], retries_left=0, meta={})
    jobs.generation_failed(rq_job, None, SystemExit, SystemExit("bad option --foo"), None)
    job.refresh_from_db()
    assert job.status == "failed" and job.error == "The job failed twice (SystemExit: bad option --foo)."
    assert job.worker_stops == 0 and not rq_job.meta


def test_progress_goes_on_when_rq_cannot_be_told_of_it(gpu_queue, caplog):
    # A Redis restarted mid-job raised from RQ's copy of the progress: the job stopped, then its worker
    class Unreachable:
        asked = 0

        def hset(self, *args, **kwargs):
            self.asked += 1
            raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    job, redis = make_job(), Unreachable()
    writer = jobs.ProgressWriter(job.pk, Job.create(time.time, connection=redis))
    writer("generating", 0.25)
    writer.sending.result(timeout=10)
    writer("scoring", 0.85)
    job.refresh_from_db()
    assert (job.stage, job.progress, job.status) == ("scoring", 0.85, "scoring")
    warnings = [r.getMessage() for r in caplog.records if "could not be copied to RQ" in r.getMessage()]
    assert len(warnings) == 1 and redis.asked == 1  # not asked again: a frozen Redis holds the copy its timeout


def test_the_drawing_goes_on_while_rq_takes_its_progress(gpu_queue):
    # A worker's Redis calls wait 20 s for an answer: a frozen Redis held the drawing that long at its next step, in
    # RQ's copy of the progress (a fault drill)
    asked, answer = threading.Event(), threading.Event()

    class Frozen:
        def __init__(self) -> None:
            self.sent = []

        def hset(self, key, field, value):
            asked.set()
            answer.wait(timeout=5)  # the old copy, in the job's own thread, waited here
            self.sent.append(rq_job.serializer.loads(value))

    job, redis = make_job(), Frozen()
    rq_job = Job.create(time.time, connection=redis)
    writer = jobs.ProgressWriter(job.pk, rq_job)
    writer("generating", 0.25)
    assert asked.wait(timeout=10)
    writer("scoring", 0.85)  # while the copy of the first still waits: not sent, the next one carries newer progress
    job.refresh_from_db()
    assert (job.stage, job.progress) == ("scoring", 0.85) and not redis.sent
    answer.set()
    writer.sending.result(timeout=10)
    assert redis.sent == [{"stage": "generating", "progress": 0.25}]


def test_an_attempt_superseded_while_it_ran_writes_neither_candidates_nor_a_verdict(monkeypatch):
    # A worker whose clock ran late was taken for gone: its job was handed to another worker, both ran it, and the
    # first to end wrote "done" over the other's row (candidates twice, "done" beside "stopped unexpectedly").
    from generator.core.engines import halftone

    job = halftone_job()
    best = halftone.best_halftones

    def meanwhile_another_attempt(*args, **kwargs):
        result = best(*args, **kwargs)
        GenerationJob.objects.filter(pk=job.pk).update(attempts=F("attempts") + 1, stage="generating")
        return result

    monkeypatch.setattr(halftone, "best_halftones", meanwhile_another_attempt)
    assert jobs.run_generation(job.pk) == "superseded by a later attempt"
    job.refresh_from_db()
    assert job.status == "running" and job.attempts == 2 and job.finished is None
    assert job.candidates.count() == 0
