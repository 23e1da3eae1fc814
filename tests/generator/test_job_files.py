"""A job's files (`generator.job_files`): candidates' PNGs encoded as they are drawn, stored whole or not at all, stored
once more when the storage was away for a moment, and the job's picture read back."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from generator import job_files, jobs
from generator.models import GenerationJob
from tests.generator.test_jobs import halftone_job

pytestmark = pytest.mark.django_db(transaction=True)  # as in test_jobs: on_commit runs at once, as in a worker


def stored_names(storage, folder: str) -> list[str]:
    try:
        return storage.listdir(folder)[1]
    except FileNotFoundError:  # the filesystem: no folder at all
        return []


def test_a_storage_failing_part_way_leaves_no_half_stored_candidates(media_storage, monkeypatch, settings):
    from django.core.files.storage import default_storage

    from generator.models import Candidate
    from qartsite.storage import MediaUnavailable

    job = halftone_job()
    backend = type(default_storage._wrapped)
    save, saved = backend._save, []

    def fails_on_the_third(self, name, content):
        if len(saved) == 2:
            raise MediaUnavailable(f"The media storage could not store {name!r}: it went away")
        saved.append(save(self, name, content))
        return saved[-1]

    monkeypatch.setattr(backend, "_save", fails_on_the_third)
    settings.QART = {**settings.QART, "STORE_AGAIN_AFTER": 0}
    with pytest.raises(MediaUnavailable):
        jobs.run_generation(job.pk)  # raised on: RQ retries it, then generation_failed says why
    monkeypatch.undo()

    job.refresh_from_db()
    assert saved[0] == f"generations/control/control-{job.pk}.png" and saved[1].startswith(f"generations/{job.pk}/")
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

    job = halftone_job()
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


def test_a_job_whose_picture_is_gone_fails_with_the_reason_and_is_not_retried():
    job = halftone_job()
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
