"""A drill's generation job on the tiny model, watched as its worker runs it, and its candidates checked in the
bucket: one home for what the worker drills share."""

from __future__ import annotations

import time

from django.core.files.storage import default_storage
from PIL import Image

from generator import jobs
from generator.models import Candidate, GenerationJob, Prompt
from tests.drills.conftest import log_tail


def tiny_job(owner, team, candidates: int, steps: int = 4) -> GenerationJob:
    """A queued job of `candidates` 256² candidates of the tiny model, `steps` steps (4: well under a second; 12: a
    few seconds), one batch."""
    job = GenerationJob.objects.create(owner=owner, team=team, prompt=Prompt.remember(owner, "a harbour", ""),
                                       content="https://qart.example/r/AbC123", steps=steps, size=256,
                                       candidates_per_batch=candidates, max_batches=1, seed=7)
    jobs.enqueue_generation(job)
    return job


def wait_for(job: GenerationJob, done, worker, seconds: float = 120) -> GenerationJob:
    """`job` as soon as `done(job)` holds, its row read again every 50 ms; fails with the worker's log if the worker
    exits or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if done(job):
            return job
        assert worker.poll() is None, log_tail(worker)
        time.sleep(0.05)
    raise AssertionError(f"job {job.pk} still {job.status} {job.stage} after {seconds} s:\n{log_tail(worker)}")


def assert_stored_once(job: GenerationJob, worker, candidates: int) -> None:
    """`job` done on its first attempt (the GPU's work kept), each of its `candidates` a whole 256² PNG under the
    name its row holds, nothing else of the job's in the bucket, no traceback in the worker's log."""
    wait_for(job, lambda row: row.is_finished, worker)
    assert job.status == "done" and job.attempts == 1, (job.error, log_tail(worker))
    rows = list(Candidate.objects.filter(job=job))
    assert len(rows) == candidates
    for row in rows:
        with default_storage.open(row.image.name, "rb") as stored:
            assert Image.open(stored).size == (256, 256)
    assert {name for name, _ in default_storage.files_under(f"generations/{job.pk}")} == {row.image.name
                                                                                           for row in rows}
    assert "Traceback" not in log_tail(worker, chars=100_000)
