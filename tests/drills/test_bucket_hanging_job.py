"""Drill: the media bucket's server frozen (SIGSTOP) while a generation worker draws a job's candidates, and thawed
once the worker has found it away and waits to store them again.

Real processes: a redis-server and a SeaweedFS of the drill's own, and an RQ worker on the tiny model storing its
media in that bucket, told to store again a few seconds after a failure (QART_STORE_AGAIN_AFTER, shorter than the
pause after which a process asks an away bucket again, `storage.AWAY_SECONDS`). The job's first store times out; its
second, after the bucket is back, stores them: the job ends done on its first attempt (the GPU's work kept), its
candidates each stored whole under the name its row holds, once.
"""

from __future__ import annotations

import django_rq
import pytest

from tests.drills.worker_jobs import assert_stored_once, tiny_job, wait_for

# the worker process reads committed rows; `s3`: on a bucket of the drill's own, run once (make test's PostgreSQL pass)
pytestmark = [pytest.mark.drill, pytest.mark.s3, pytest.mark.django_db(transaction=True)]

CANDIDATES = 2


@pytest.mark.worker
def test_a_job_stores_its_candidates_once_the_bucket_is_back(bucket_server, redis_server, start_worker, settings,
                                                             monkeypatch, team_users):
    # 1. A worker on the drill's Redis and bucket; a job of the tiny model.
    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", redis_server.url)
    bucket_server.use_here(settings, monkeypatch)
    worker = start_worker(REDIS_URL=redis_server.url, QART_STORE_AGAIN_AFTER="3", **bucket_server.env)
    owner, team = team_users.owner, team_users.team
    job = tiny_job(owner, team, CANDIDATES)

    # 2. The bucket freezes while the candidates are drawn; it is thawed once the worker waits to store them again.
    wait_for(job, lambda row: row.stage == "generating", worker)
    bucket_server.freeze()
    try:
        wait_for(job, lambda row: row.stage == "storing_again" or row.is_finished, worker)
    finally:
        bucket_server.thaw()

    # 3. Stored on the second try, the job's first attempt: every candidate whole under its row's name, and nothing
    # else of the job's in the bucket.
    assert_stored_once(job, worker, CANDIDATES)
