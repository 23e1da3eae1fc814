"""Drill: generation workers SIGKILLed again and again while a stream of jobs runs (the out-of-memory killer on a busy
GPU host), each started again at once as its service manager would, and the reconciler's pass run beside them.

Real processes: a redis-server of the drill's own and three RQ workers on the tiny model. Every kill leaves a job whose
worker is gone, retried within seconds (`reconcile.reclaim`, RQ's cleanup under `generator.cleaning`'s lock) by another
worker's look, the restarted worker's, or the pass; one killed on its last attempt fails with its plain message. Every
job ends exactly once: never two workers running one job (its id twice in the queue, two executions of it started at
once), never a candidate set made twice, never a job lost (left queued or running).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import django_rq
import pytest
from rq.worker import Worker

from generator import jobs, reconcile
from generator.models import Candidate, GenerationJob, Prompt

pytestmark = [pytest.mark.drill, pytest.mark.django_db(transaction=True)]  # the workers read committed rows

WORKERS = 3
JOBS = int(os.environ.get("QART_DRILL_JOBS", 6))  # at least; 30 and more by hand
KILLS = int(os.environ.get("QART_DRILL_KILLS", 3))
CANDIDATES = 2
LOST_AFTER = 4 * reconcile.RECLAIM_EVERY + 120  # seconds for the whole stream to end after the last kill: slack for CI


def queued(owner, team, seed: int) -> int:
    """A job of a few seconds on the tiny model (no repair: a second pass that doubled it), queued; its pk."""
    job = GenerationJob.objects.create(owner=owner, team=team, prompt=Prompt.remember(owner, "a harbour", ""),
                                       content="https://qart.example/r/AbC123", steps=6, size=256, repair=False,
                                       candidates_per_batch=CANDIDATES, max_batches=1, seed=seed)
    jobs.enqueue_generation(job)  # outside a transaction block on_commit runs at once
    return job.pk


def busy_pids(queue) -> dict[int, str]:
    """pid -> the RQ job id of each worker running a job now, as RQ records them."""
    return {worker.pid: worker.get_current_job_id() for worker in Worker.all(queue=queue)
            if worker.get_state() == "busy" and worker.get_current_job_id()}


def run_twice(queue) -> list[str]:
    """Job ids that RQ has twice at once: queued twice, or started twice (two executions: two workers), or both."""
    with queue.connection.pipeline() as pipeline:  # one transaction: a job taken between two reads is not twice
        pipeline.lrange(queue.key, 0, -1)
        pipeline.zrange(queue.started_job_registry.key, 0, -1)
        queued, started = pipeline.execute()
    counts = Counter(job_id.decode() for job_id in queued)
    counts.update(entry.decode().rpartition(":")[0] for entry in started)  # "<job id>:<execution id>"
    return sorted(job_id for job_id, n in counts.items() if n > 1)


def log_tails(processes: list[subprocess.Popen]) -> str:
    return "\n".join(Path(process.log_path).read_text(errors="replace")[-1500:] for process in processes)


@pytest.mark.worker
def test_workers_killed_again_and_again_end_every_job_exactly_once(redis_server, monkeypatch, start_worker,
                                                                   team_users):
    monkeypatch.setitem(django_rq.settings.QUEUES["gpu"], "URL", redis_server.url)  # this process's `gpu` queue
    queue = django_rq.get_queue(jobs.QUEUE)
    workers = [start_worker(REDIS_URL=redis_server.url) for _ in range(WORKERS)]
    pks = [queued(team_users.owner, team_users.team, seed) for seed in range(JOBS)]
    doubles, kills, passes = set(), 0, 0
    history: dict[int, list[tuple[str, str]]] = {pk: [] for pk in pks}
    killed: dict[int, tuple[int, float]] = {}  # job pk -> (its attempts, when its worker was killed)
    waits: list[float] = []  # seconds from a kill to its job's retry or failure
    chance, began = random.Random(7), time.monotonic()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for pk, status, stage in GenerationJob.objects.filter(pk__in=pks).values_list("pk", "status", "stage"):
            if not history[pk] or history[pk][-1] != (status, stage):
                history[pk].append((status, stage))
        doubles.update(run_twice(queue))
        if all(states[-1][0] in GenerationJob.FINISHED for states in history.values()):
            if kills == KILLS:
                break
            pks.append(queued(team_users.owner, team_users.team, len(pks)))  # a fast machine: more jobs to kill
            history[pks[-1]] = []
            continue
        for pk, (attempts, killed_at) in list(killed.items()):  # retried (or failed): the wait is the kill's cost
            row = GenerationJob.objects.filter(pk=pk).values("status", "attempts").get()
            if row["status"] != "running" or row["attempts"] > attempts:
                waits.append(time.monotonic() - killed_at)
                del killed[pk]
        running = busy_pids(queue)
        busy = [worker for worker in workers if worker.pid in running]  # a killed one's record stays a while
        if kills < KILLS and busy:
            # 1. A busy worker killed, and started again as its service manager would.
            victim = chance.choice(busy)
            row = GenerationJob.objects.filter(rq_job_id=running[victim.pid]).values("pk", "attempts").first()
            if row and row["pk"] not in killed:
                killed[row["pk"]] = (row["attempts"], time.monotonic())
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            workers[workers.index(victim)] = start_worker(REDIS_URL=redis_server.url)
            kills += 1
            deadline = time.monotonic() + LOST_AFTER
        elif chance.random() < 0.2:
            reconcile.reconcile_jobs()  # 2. `qart_reconcile` beside them, now and then
            passes += 1
        time.sleep(chance.uniform(0.3, 1.0))
    ended = Counter(states[-1][0] for states in history.values())
    print(f"{len(pks)} jobs ({dict(ended)}), {kills} kills, {passes} passes, {time.monotonic() - began:.0f} s;",
          "killed jobs retried or failed after", sorted(round(wait, 1) for wait in waits), "s")
    unfinished = {pk: states for pk, states in history.items() if states[-1][0] not in GenerationJob.FINISHED}
    rows = list(GenerationJob.objects.filter(pk__in=unfinished).values("pk", "status", "stage", "progress", "attempts",
                                                                        "rq_job_id"))
    assert not unfinished, f"jobs lost: {unfinished}\nnow: {rows}\nRQ: {busy_pids(queue)}\n{log_tails(workers)}"
    assert kills == KILLS, f"only {kills} kills in 10 minutes:\n{log_tails(workers)}"
    assert not doubles, f"RQ had these jobs twice at once: {doubles}"
    for row in GenerationJob.objects.filter(pk__in=pks):
        made = list(Candidate.objects.filter(job=row).values_list("batch", "index"))
        ended = [state for state in history[row.pk] if state[0] in GenerationJob.FINISHED]
        assert len(ended) == 1 and 1 <= row.attempts <= reconcile.MAX_ATTEMPTS, (row.pk, history[row.pk])
        if row.status == "done":
            assert len(made) == len(set(made)) == CANDIDATES, (row.pk, made)
        else:  # killed on its last attempt
            assert row.status == "failed" and not made, (row.pk, row.status, row.error)
            assert row.error.startswith("The worker running this job stopped unexpectedly"), row.error
