"""Fixtures for the generation core: the tiny preset, saved like the hub and loaded by the real loader; worker
processes on a queue; a worker's stop in the middle of a job; and a finished job, which the generation pages and their
actions show."""

from __future__ import annotations

import pytest

from tests.generator.factories import job_with_candidates


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory):
    from generator.core.engines import tiny

    return tiny.tiny_spec(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_engine(tiny_spec):
    from generator.core.engines import loading

    return loading.load_engine(tiny_spec, device="cpu")


def database_url() -> str:
    """A URL for the test database as this process sees it, for worker processes to share."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def cold_stops(worker, monkeypatch):
    """Every generation `worker` (the test module's GenerationWorker, in this process) runs is stopped as RQ's cold
    shut down stops it: the operator's second signal (their first, a warm shut down, came a while ago) lands in the
    middle of the job, in RQ's signal handler."""
    import signal
    from datetime import timedelta

    from rq.utils import now as rq_now

    from generator import jobs

    worker._stop_requested, worker._shutdown_requested_date = True, rq_now() - timedelta(seconds=5)
    monkeypatch.setattr(jobs, "_run", lambda job, on_progress: worker.request_force_stop(signal.SIGTERM, None))


def forget_everything(queue) -> None:
    """Empty the queue and its registries: a job left "started" by a worker an earlier test killed would
    otherwise be retried by the next test's registry cleanup."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    queue.empty()
    for registry in (queue.started_job_registry, queue.failed_job_registry, queue.finished_job_registry,
                     queue.canceled_job_registry, queue.deferred_job_registry, queue.scheduled_job_registry):
        # rq 2's StartedJobRegistry cannot remove() (its entries are "job:execution"): drop jobs and the key.
        for entry in registry.get_job_ids(cleanup=False):
            job_id = registry.parse_job_id(entry)
            try:
                Job.fetch(job_id, connection=queue.connection).delete()
            except NoSuchJobError:
                pass
            except ValueError:  # an execution its worker, killed by the test, had half removed: drop the job's key
                queue.connection.delete(Job.key_for(job_id))
        queue.connection.delete(registry.key)
    # When a killed worker last renewed its leases outlives them (leases.last_heard): a later test's job of the same
    # id would count its silence from it. A lease a test took by hand (a worker that has not started its job yet)
    # would have a later test's job of the same id held.
    from generator import claims, leases

    for prefix in (leases.HEARD_PREFIX, leases.LEASE_PREFIX, leases.HOLDER_PREFIX, claims.UNLEASED_PREFIX):
        for key in queue.connection.scan_iter(match=prefix + "*"):
            queue.connection.delete(key)
    queue.connection.delete(queue.registry_cleaning_key)  # left by a cleaner a test killed
    # Jobs a test took off the queue by hand (Queue.dequeue_any) stay in RQ's intermediate list; a minute after a
    # cleaning first saw them there, the next cleaning (a later test's, or a later run's) retried them into the queue.
    intermediate = queue.intermediate_queue.key
    for key in [intermediate, *queue.connection.scan_iter(match=intermediate + ":first_seen:*")]:
        queue.connection.delete(key)


@pytest.fixture
def killed_while_cleaning():
    """killed_while_cleaning(queue): `queue`'s cleaning lock (RQ's maintenance lock) as a worker killed while it
    cleaned (SIGKILL: the out-of-memory killer) left it: naming a process of this host that is gone
    (`generator.cleaning`), for as long as RQ's lock lives (899 s)."""
    import subprocess

    from generator import processes

    def leave(queue) -> None:
        gone = subprocess.Popen(["sleep", "60"])
        token = processes.process_token(gone.pid)
        gone.kill()
        gone.wait()
        queue.connection.set(queue.registry_cleaning_key, f"{token}#killed", ex=899)

    return leave


@pytest.fixture
def gpu_queue():
    """The real `gpu` queue on the Redis the suite runs against, emptied before and after the test."""
    from tests.conftest import live_queue

    queue = live_queue("gpu")
    forget_everything(queue)
    yield queue
    forget_everything(queue)


@pytest.fixture
def start_worker(tiny_spec, settings, tmp_path):
    """Start real `rqworker gpu` processes with the GenerationWorker class on the tiny model."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    started: list[subprocess.Popen] = []

    def start(burst: bool = False, **extra_env: str) -> subprocess.Popen:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url(),
            MEDIA_ROOT=str(settings.MEDIA_ROOT),
            QART_MODEL="tiny",
            QART_MODEL_DIR=str(Path(tiny_spec.base).parent.parent),
            PYTHONUNBUFFERED="1",
        )
        # One thread for torch's CPU kernels: the tiny model gains nothing from two, and three workers' OpenMP threads
        # spinning on two cores beside make test's two passes starved each other (a drill's jobs stood still 4 min).
        env.setdefault("OMP_NUM_THREADS", "1")
        env.update(extra_env)  # the test's own, over the defaults (a MEDIA_ROOT of another host, say)
        command = [sys.executable, "manage.py", "rqworker", "gpu", "--worker-class",
                   "generator.worker.GenerationWorker"] + (["--burst"] if burst else [])
        log = open(tmp_path / f"worker-{len(started)}.log", "w")  # a file: a pipe nobody reads could fill up
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        process.log_path = log.name
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


@pytest.fixture
def done_job(team_users):
    return job_with_candidates(team_users.team, team_users.owner, count=6, status="done", progress=1.0, scannable=True,
                               result_message="3 of 6 candidates scan.", tiny_model=True)


@pytest.fixture
def gone_process():
    """The `process_token` of a process of this host that was killed and reaped: a worker the out-of-memory killer
    took."""
    import subprocess

    from generator import processes

    process = subprocess.Popen(["sleep", "60"])
    token = processes.process_token(process.pid)
    process.kill()
    process.wait()
    return token
