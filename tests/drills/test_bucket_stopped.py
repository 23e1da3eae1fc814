"""Drill: the media bucket's server killed (SIGKILL, as a crash) while a generation worker draws a job's candidates and
people use the site, then started again on its data.

Real processes: a redis-server and a SeaweedFS of the drill's own, gunicorn (two sync workers) and an RQ worker on the
tiny model, both storing media in that bucket. While it is down, the image and upload answers are plain 503s at once
and the pages that only name images answer as usual. The worker's first store fails; it stores again
(QART_STORE_AGAIN_AFTER) once the server is back: the job ends done on its first attempt, its candidates each whole
under its row's name. The images stored before the crash are answered again, without a restart of the site.
"""

from __future__ import annotations

import io

import django_rq
import pytest
from PIL import Image

from qartsite import storage
from tests.drills.people import Person
from tests.drills.worker_jobs import assert_stored_once, tiny_job, wait_for
from tests.generator.factories import VALID, job_with_candidates

# the other processes read committed rows; `s3`: on a bucket of the drill's own, run once (make test's PostgreSQL pass)
pytestmark = [pytest.mark.drill, pytest.mark.s3, pytest.mark.django_db(transaction=True)]

CANDIDATES = 2
STORE_AGAIN_AFTER = 8  # seconds: longer than SeaweedFS takes to start again here (3 s), shorter than AWAY_SECONDS
ANSWER_WITHIN = 2.0  # seconds: a server that is down refuses connections at once


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (40, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.worker
def test_a_crashed_bucket_costs_no_job_and_no_stored_image(bucket_server, redis_server, start_worker, start_web,
                                                           settings, monkeypatch, team_users):
    # 1. A finished job in the bucket, the site and a worker on it, and a new job of the tiny model.
    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", redis_server.url)
    bucket_server.use_here(settings, monkeypatch)
    owner, team = team_users.owner, team_users.team
    earlier = job_with_candidates(team, owner, count=1, status="done").candidates.get()
    worker = start_worker(REDIS_URL=redis_server.url, QART_STORE_AGAIN_AFTER=str(STORE_AGAIN_AFTER),
                          **bucket_server.env)
    person = Person(start_web(**bucket_server.env), owner)
    image = f"/media/{earlier.image.name}"
    assert person.ask("warm", "GET", image).status_code == 200
    job = tiny_job(owner, team, CANDIDATES)

    # 2. The server dies while the candidates are drawn; people ask meanwhile; it starts again once the worker waits
    # to store them again.
    wait_for(job, lambda row: row.stage == "generating", worker)
    bucket_server.stop()
    person.ask("image", "GET", image)
    person.ask("download", "GET", f"/generate/candidates/{earlier.pk}/download.png")
    person.ask("job page", "GET", f"/generate/jobs/{earlier.job_id}/")
    person.ask("API job", "GET", f"/api/generations/{earlier.job_id}/")
    form = {**VALID, "team": team.pk, "engine": "halftone", "candidates_per_batch": "2",
            "csrfmiddlewaretoken": person.csrf("/generate/")}
    person.ask("upload", "POST", "/generate/", data=form, files={"picture": ("p.png", png())})
    wait_for(job, lambda row: row.stage == "storing_again" or row.is_finished, worker)
    bucket_server.start()

    # 3. The job done on its first attempt, its candidates whole; the earlier image answered again.
    assert_stored_once(job, worker, CANDIDATES)
    answers = {what: (status, seconds, body) for what, status, seconds, body in person.answers}
    assert person.wait_for("after", image, 200, storage.AWAY_SECONDS + 10) == 200
    slow = {what: round(seconds, 2) for what, (_, seconds, _) in answers.items()
            if seconds > ANSWER_WITHIN and what != "warm"}
    assert not slow and answers["job page"][0] == answers["API job"][0] == 200, slow
    for what in ("image", "download", "upload"):
        status, _, body = answers[what]
        assert status == 503 and "storage" in body and "Traceback" not in body, (what, status, body[-1000:])
