"""Drill: Redis frozen (SIGSTOP) past a generation worker's own Redis timeout while it draws a job, and thawed once
the job's end has waited for it that long.

RQ raises its worker's read timeout to its dequeue wait plus 10 s (`rq.Worker.connection_timeout`: 20 s for a
GenerationWorker), so a frozen Redis costs each of the worker's calls 20 s, and then a timeout; the job's lease and
RQ's heartbeats last 90 s. Real processes: a redis-server of the drill's own and an RQ worker on the tiny model. While
Redis is frozen the job is drawn, verified and stored on (its progress moves within `MOVES_WITHIN`: RQ's copy of it is
sent without the drawing waiting for it, `jobs.ProgressWriter`), its row ends done, the job's page says so, and an API
create is refused with nothing made; Redis stays frozen past the worker's timeout after the job's end. Thawed, RQ
records the job's end once (no retry of it, no failure callback: the worker waited for Redis,
`GenerationWorker.handle_execution_ended`), its lease goes, and the worker takes the next job. Measured on a two-core
host shared with other test runs: the drawing stood still 1.1 to 2.2 s at most while frozen (20.1 s before: RQ's copy of
the progress, in the job's thread, waited out the worker's timeout), the row ended 2.4 to 10.1 s into a freeze of 40 s,
and the job's end was recorded at the thaw (before: a traceback, the failure callback, and the job run again).
"""

from __future__ import annotations

import time

import django_rq
import pytest
from rq.job import Job

from generator import jobs, leases
from generator.models import Candidate, GenerationJob
from qartsite.settings import with_timeouts
from tests.clients import logged_in, signed_in
from tests.drills.conftest import log_tail
from tests.drills.worker_jobs import tiny_job, wait_for

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the worker reads committed rows

CANDIDATES = 2
STEPS = 12  # a few seconds of drawing on a quiet host, tens of seconds on a loaded one
# Seconds the freeze lasts at least: past the worker's Redis timeout (20 s) and its first try again, and past two of the
# site's breaker pauses (`queues.REDIS_AWAY_FOR`).
FREEZE = 40.0
# Seconds Redis stays frozen after the job's row ended: past the worker's Redis timeout, so that its first try to record
# the end times out and the next waits for the thaw.
FROZEN_PAST_THE_END = 22.0
# Seconds the drawing's progress may stand still while frozen: a step of the tiny model on a loaded two-core host (1.3 s
# on average; the longest standstill measured 2.2 s), several times over; the copy to RQ waited out the worker's 20 s.
MOVES_WITHIN = 10.0
ENDS_WITHIN = 120.0  # seconds the job may take to end while frozen (it ends in a minute at most on a loaded host)
# A page's first Redis call waits out the web processes' timeout (settings.WEB_REDIS_TIMEOUT, 1 s), then the breaker
# skips Redis; and a second and a half for the page itself on a loaded two-core host.
ANSWER_WITHIN = 2.5


def ask(client, method: str, path: str, **kwargs) -> tuple:
    """(status, seconds, body) of one request of this process's client."""
    started = time.monotonic()
    answer = getattr(client, method)(path, **kwargs)
    return answer.status_code, time.monotonic() - started, answer.content.decode()


@pytest.mark.worker
def test_a_job_drawn_while_redis_is_frozen_ends_once_and_its_worker_goes_on(redis_server, start_worker, settings,
                                                                              monkeypatch, team_users):
    # 1. A worker on the drill's Redis; this process's queues on it too, waiting as a web process waits.
    settings.REDIS_URL = redis_server.url
    for queue in ("default", "gpu", "webhooks"):
        monkeypatch.setitem(django_rq.settings.QUEUES[queue], "URL",
                            with_timeouts(redis_server.url, settings.WEB_REDIS_TIMEOUTS))
    worker = start_worker(REDIS_URL=redis_server.url)
    owner, team = team_users.owner, team_users.team
    page, api = logged_in(owner), signed_in(owner)
    running = tiny_job(owner, team, CANDIDATES, steps=STEPS)
    wait_for(running, lambda row: row.stage == "generating" and row.progress > 0, worker, seconds=300)

    # 2. Redis freezes mid-drawing; the row is watched, the job's page and an API create asked.
    status_path = f"/generate/jobs/{running.pk}/status.json"
    assert ask(page, "get", status_path)[0] == 200  # this process's first page, loaded before the freeze
    redis_server.freeze()
    frozen, answers = time.monotonic(), {}
    moves = [(0.0, running.stage, running.progress)]  # (seconds into the freeze, stage, progress) as the row changed
    ended = None
    try:
        while True:
            at = time.monotonic() - frozen
            running.refresh_from_db()
            if (running.stage, running.progress) != moves[-1][1:]:
                moves.append((at, running.stage, running.progress))
            if ended is None and running.is_finished:
                ended = at
                answers["page, ended"] = ask(page, "get", status_path)
            if "page, running" not in answers:
                answers["page, running"] = ask(page, "get", status_path)
                answers["API create"] = ask(api, "post", "/api/generations/", format="json",
                                            data={"prompt": "frozen harbour", "content": "https://qart.example/r/X1"})
            if ended is not None and at > max(FREEZE, ended + FROZEN_PAST_THE_END) or at > ENDS_WITHIN:
                break
            assert worker.poll() is None, log_tail(worker)
            time.sleep(0.1)
    finally:
        redis_server.thaw()
    thawed = time.monotonic() - frozen

    # 3. Thawed: the worker records the job's end and takes the next job.
    after = wait_for(tiny_job(owner, team, CANDIDATES, steps=4), lambda row: row.is_finished, worker, seconds=300)
    rq_job = Job.fetch(running.rq_job_id, connection=django_rq.get_connection("gpu"))
    # The drawing's longest standstill: between two moves of its progress, from the freeze to the drawing's end.
    drawn = [at for at, stage, _ in moves if stage == "generating"]
    drawn.append(next((at for at, stage, _ in moves if stage != "generating"), thawed))
    still = max(later - earlier for earlier, later in zip(drawn, drawn[1:], strict=False))
    print(f"\nthe drawing stood still {still:.1f} s at most; the row ended {ended} s into the freeze, "
          f"{running.status}; thawed after {thawed:.1f} s; RQ's job {rq_job.get_status()}, "
          f"retries left {rq_job.retries_left}; "
          f"answers {[(what, status, round(seconds, 2)) for what, (status, seconds, _) in answers.items()]}")

    # While frozen: drawn on, ended done, and said so; nothing made by the create.
    assert still < MOVES_WITHIN, (moves, log_tail(worker))
    assert ended is not None and running.status == "done" and running.attempts == 1, (running.error, log_tail(worker))
    for what, (status, seconds, body) in answers.items():
        assert seconds < ANSWER_WITHIN and "Traceback" not in body, (what, status, round(seconds, 2), body[-1000:])
    assert answers["page, running"][0] == 200 and '"status": "running"' in answers["page, running"][2]
    assert answers["page, ended"][0] == 200 and '"status": "done"' in answers["page, ended"][2]
    assert answers["API create"][0] == 503 and jobs.QUEUE_UNAVAILABLE in answers["API create"][2]
    assert not GenerationJob.objects.filter(prompt__text="frozen harbour").exists()

    # Thawed: the job's end recorded once in RQ (not retried, no failure), its candidates stored once, its lease gone;
    # the next job done on its first attempt by the same worker, which logged no traceback.
    assert rq_job.get_status() == "finished" and rq_job.retries_left == 1, (rq_job.get_status(), log_tail(worker))
    assert rq_job.return_value() == running.result_message
    queue = django_rq.get_queue("gpu")
    assert not queue.started_job_registry.get_job_ids() and not queue.failed_job_registry.get_job_ids()
    assert not queue.connection.exists(leases.LEASE_PREFIX + running.rq_job_id)
    made = list(Candidate.objects.filter(job=running).values_list("batch", "index"))
    assert len(made) == len(set(made)) == CANDIDATES
    assert after.status == "done" and after.attempts == 1, (after.error, log_tail(worker))
    assert not GenerationJob.objects.exclude(status__in=GenerationJob.FINISHED).exists()
    assert worker.poll() is None
    assert "Traceback" not in log_tail(worker, chars=100_000), log_tail(worker, chars=100_000)
