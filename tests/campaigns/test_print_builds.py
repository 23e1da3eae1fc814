"""Large print files' bookkeeping (`campaigns.print_builds`); the download flow is in test_views.py
(TestPrintDownloads) and the browser's in tests/e2e/test_print_flow.py."""

from __future__ import annotations

import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from campaigns import print_builds


@pytest.mark.django_db
def test_made_files_are_deleted_a_day_later(media_storage):
    name = default_storage.save(f"{print_builds.FOLDER}/made.png", ContentFile(b"png"))
    assert print_builds.forget_old_files() == 0 and default_storage.exists(name)
    later = time.time() + print_builds.KEEP_SECONDS + 2 * 3600
    assert print_builds.forget_old_files(now=later) == 1 and not default_storage.exists(name)


def test_no_folder_yet_is_nothing_to_delete(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                          "OPTIONS": {"location": str(tmp_path / "media")}}}
    assert print_builds.forget_old_files() == 0


@pytest.mark.django_db
def test_a_file_asked_for_again_after_its_build_was_lost_is_queued_again(client, team_users, placement, print_queue):
    # The build's worker was killed (kill -9): RQ's cleanup failed the job, and its list of executions still named one
    # whose record had expired, which RQ's own delete() trips on: asked for again, the page answered 500 (a fault
    # drill) until that list expired.
    from rq.job import JobStatus

    client.force_login(team_users.owner)
    url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1"
    assert client.get(url).status_code == 202
    (job_id,) = print_queue.job_ids
    print_queue.fetch_job(job_id).set_status(JobStatus.FAILED)
    print_queue.remove(job_id)
    assert client.get(url).status_code == 503  # "could not be made just now", for TROUBLE_SECONDS
    for answer in print_queue.connection.scan_iter(match=print_builds._answer_key("*")):
        print_queue.connection.delete(answer)  # ... which have passed
    print_queue.connection.zadd(f"rq:executions:{job_id}", {"expired-execution": time.time() + 60})

    assert client.get(url).status_code == 202
    assert print_queue.job_ids == [job_id]


@pytest.mark.django_db
def test_a_build_lost_with_its_worker_no_longer_holds_the_persons_other_files(client, team_users, placement,
                                                                            print_queue):
    # Its worker killed (kill -9) mid-build, RQ's cleanup failed the job without its callback: the page said the file
    # could not be made, but the person's mark stayed BUILD_SECONDS (10 minutes), and every other print file of theirs
    # was refused meanwhile as "still being made".
    from rq.job import JobStatus

    from campaigns import printfiles
    from tests.campaigns.conftest import body

    client.force_login(team_users.owner)
    url = f"/campaigns/placements/{placement.pk}/print?format=png&dpi=100&confirm=1&width="
    assert client.get(url + "5cm").status_code == 202
    (job_id,) = print_queue.job_ids
    print_queue.fetch_job(job_id).set_status(JobStatus.FAILED)
    print_queue.remove(job_id)
    lost = client.get(url + "5cm")  # its waiting page asks again
    assert lost.status_code == 503 and print_builds.COULD_NOT in body(lost)
    other = client.get(url + "6cm")
    assert other.status_code == 202, body(other)
    assert len(print_queue.job_ids) == 1 and print_queue.job_ids != [job_id]
    assert print_queue.connection.get(printfiles.building_mark(team_users.owner.pk)) is not None  # the new file's


@pytest.mark.django_db
def test_a_large_file_waits_for_a_worker_still_loading_its_engine(client, team_users, placement, print_queue,
                                                                  monkeypatch):
    # RQ registers a worker only once its engine is loaded: meanwhile an 89-million-pixel file was made in the request,
    # 32 s, past the web server's timeout (a fault drill).
    from generator import engine_status

    monkeypatch.setattr(print_builds, "workers_on", lambda queue: 0)
    loading = engine_status.WorkerReport("w1", "h1", "loading", "cpu", queues=["gpu", print_builds.QUEUE])
    monkeypatch.setattr(engine_status, "live_workers", lambda: [loading])
    client.force_login(team_users.owner)
    url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1"
    assert client.get(url).status_code == 202 and print_queue.count == 1


@pytest.mark.django_db
def test_a_queued_file_whose_worker_is_gone_says_it_waits_for_one(client, team_users, placement, print_queue,
                                                                  monkeypatch):
    # The only worker went (killed while loading its engine, stopped) before taking the build: the page said "up to a
    # minute or two" for as long as none ran.
    from generator import engine_status

    client.force_login(team_users.owner)
    url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1"
    assert client.get(url).status_code == 202
    asked = []
    monkeypatch.setattr(print_builds, "workers_on", lambda queue: asked.append(queue) or 0)
    monkeypatch.setattr(engine_status, "live_workers", lambda: [])
    response = client.get(url)
    assert response.status_code == 202 and print_builds.NO_WORKER in response.content.decode()
    assert [q.name for q in asked] == [print_builds.QUEUE]  # the queue itself, as qartsite.queues.workers_on takes
    assert len(print_queue.job_ids) == 1  # still queued, made once a worker starts


@pytest.mark.django_db
def test_a_build_its_worker_stopped_goes_back_in_the_queue_and_the_page_says_it_waits(
        client, team_users, placement, print_queue, monkeypatch):
    # A cold stop of the worker (`make run`'s second Ctrl-C, a service manager's stop) failed the build: the page said
    # "could not be made" and the person had to ask again, where a generation went back in the queue.
    import signal
    from datetime import timedelta

    from rq import Queue
    from rq.utils import now as rq_now
    from rq.worker_registration import unregister

    from campaigns import printfiles
    from generator import jobs
    from generator.worker import GenerationWorker
    from tests.campaigns.conftest import body

    worker = GenerationWorker([print_queue], connection=print_queue.connection)
    worker.register_birth()
    # The operator's second signal lands mid-build (their first, a warm shut down, came a while ago).
    worker._stop_requested, worker._shutdown_requested_date = True, rq_now() - timedelta(seconds=5)
    monkeypatch.setattr(printfiles, "made_and_checked",
                        lambda *args: worker.request_force_stop(signal.SIGTERM, None))
    client.force_login(team_users.owner)
    url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1"
    try:
        assert client.get(url).status_code == 202
        for _ in range(jobs.MAX_WORKER_STOPS):
            rq_job, queue = Queue.dequeue_any([print_queue], timeout=None, connection=print_queue.connection)
            worker.execute_job(rq_job, queue)
            rq_job.refresh()
            assert rq_job.get_status() == "queued" and print_queue.count == 1
            waiting = client.get(url)
            assert waiting.status_code == 202 and print_builds.INTERRUPTED in body(waiting)
            # Still this person's file being made: another large one waits its turn
            assert print_queue.connection.get(printfiles.building_mark(team_users.owner.pk)) is not None
        # A build no worker lets finish does not come back for ever: then it fails as before
        rq_job, queue = Queue.dequeue_any([print_queue], timeout=None, connection=print_queue.connection)
        worker.execute_job(rq_job, queue)
        assert rq_job.get_status() == "failed" and print_queue.count == 0
        failed = client.get(url)
        assert failed.status_code == 503 and print_builds.COULD_NOT in body(failed)
        assert print_queue.connection.get(printfiles.building_mark(team_users.owner.pk)) is None
    finally:
        unregister(worker)
        print_queue.connection.delete(worker.key)


def made_in_the_request(*args):
    raise AssertionError("a large file was made in the web request")


@pytest.mark.django_db
def test_a_large_file_is_refused_at_once_while_redis_stalls_and_nothing_is_made(client, team_users, placement,
                                                                                stalled_queues, monkeypatch):
    # A stalled Redis (SIGSTOP, a fault drill) held each large file the web timeout twice (its answer, then the
    # person's mark), then the file was made in the request: 17-35 s for a poster, past the web server's timeout.
    from campaigns import printfiles
    from tests.campaigns.conftest import body
    from tests.clients import api_as

    monkeypatch.setattr(print_builds, "INLINE_PIXELS", 1000)  # every raster is large
    monkeypatch.setattr(printfiles, "made_and_checked", made_in_the_request)
    client.force_login(team_users.owner)
    query = "width=5cm&format=png&dpi=100&confirm=1"
    started = time.monotonic()
    page = client.get(f"/campaigns/placements/{placement.pk}/print?{query}")
    first = time.monotonic() - started
    assert page.status_code == 503 and print_builds.QUEUE_AWAY in body(page)
    started = time.monotonic()
    answer = api_as(team_users.owner).get(f"/api/placements/{placement.pk}/print/?{query}")
    second = time.monotonic() - started
    assert answer.status_code == 503 and answer.json() == {"detail": print_builds.QUEUE_AWAY}
    assert answer["Retry-After"] == "60"  # asked again, it is ordered once Redis answers
    assert first < 2 and second < 0.3, (first, second)  # one wait of a second, then the breaker answers at once
    assert len(stalled_queues) == 1


@pytest.mark.django_db
def test_a_build_a_full_redis_refused_leaves_neither_its_answer_nor_the_persons_mark(client, team_users, placement,
                                                                                     print_queue, monkeypatch):
    # Redis took the file's answer and the person's mark, then refused the job (full): the file said "being made" for
    # 10 minutes with nothing making it, and the person's other large files were refused as "still being made".
    from redis.exceptions import OutOfMemoryError
    from rq import Queue

    from campaigns import printfiles
    from tests.campaigns.conftest import body

    enqueue = Queue.enqueue

    def full(*args, **kwargs):
        raise OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(Queue, "enqueue", full)
    monkeypatch.setattr(printfiles, "made_and_checked", made_in_the_request)
    client.force_login(team_users.owner)
    url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1"
    refused = client.get(url)
    assert refused.status_code == 503 and print_builds.QUEUE_AWAY in body(refused)
    assert print_queue.connection.get(printfiles.building_mark(team_users.owner.pk)) is None
    assert not list(print_queue.connection.scan_iter(match=print_builds._answer_key("*")))
    monkeypatch.setattr(Queue, "enqueue", enqueue)  # room again: asked again, it is ordered
    assert client.get(url).status_code == 202 and print_queue.count == 1


@pytest.mark.django_db
def test_a_made_file_gone_from_the_storage_while_redis_fails_is_refused_not_a_traceback(client, team_users, placement,
                                                                                        print_queue, monkeypatch):
    # The daily upkeep had deleted the made file, and forgetting its answer, to make it again, failed (Redis gone at
    # that moment): the page and the API answered 500 with a traceback.
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from tests.campaigns.conftest import body

    client.force_login(team_users.owner)
    url = f"/campaigns/placements/{placement.pk}/print?width=5cm&format=png&dpi=100&confirm=1"
    assert client.get(url).status_code == 202
    assert print_builds.build(*print_queue.jobs[0].args).startswith("made ")
    for stored in default_storage.listdir(print_builds.FOLDER)[1]:
        default_storage.delete(f"{print_builds.FOLDER}/{stored}")

    def gone(self, *names):
        raise RedisConnectionError("Connection closed by server.")

    monkeypatch.setattr(Redis, "delete", gone)
    refused = client.get(url)
    assert refused.status_code == 503 and print_builds.QUEUE_AWAY in body(refused)
