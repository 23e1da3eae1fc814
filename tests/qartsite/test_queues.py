from __future__ import annotations

from rq import Queue, Worker

from qartsite import queues
from tests.conftest import live_queue


def test_it_counts_the_living_workers_on_a_queue_and_not_a_killed_one():
    queue = Queue("queues-count-test", connection=live_queue("default").connection)
    other = Queue("queues-count-other", connection=queue.connection)
    assert queues.workers_on(queue) == 0
    alive = Worker([queue], connection=queue.connection, name="queues-count-alive")
    killed = Worker([queue], connection=queue.connection, name="queues-count-killed")
    elsewhere = Worker([other], connection=queue.connection, name="queues-count-elsewhere")
    for worker in (alive, killed, elsewhere):
        worker.register_birth()
    queue.connection.delete(killed.key)  # its heartbeat expired: killed without a goodbye
    try:
        assert queues.workers_on(queue) == 1
        assert queues.workers_on(other) == 1
    finally:
        alive.register_death()
        elsewhere.register_death()
    assert queues.workers_on(queue) == 0


def test_a_worker_waits_out_a_redis_that_stops_answering(monkeypatch):
    # RQ's own loop quits on a timeout, with exit status 0: the worker was gone after a stall of a minute or two.
    from redis.exceptions import TimeoutError as RedisTimeoutError

    queue = Queue("queues-patience-test", connection=live_queue("default").connection)
    worker = queues.PatientWorker([queue], connection=queue.connection, name="queues-patience")
    answers = [RedisTimeoutError("Timeout reading from socket"), RedisTimeoutError("again"), "a job"]
    waits = []

    def dequeue(self, timeout, max_idle_time=None):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(Worker, "dequeue_job_and_maintain_ttl", dequeue)
    monkeypatch.setattr(queues.time, "sleep", waits.append)
    assert worker.dequeue_job_and_maintain_ttl(5) == "a job"
    assert waits == [1.0, 2.0]


def test_a_heartbeat_redis_did_not_answer_does_not_stop_the_worker(monkeypatch):
    from redis.exceptions import TimeoutError as RedisTimeoutError

    def stalled(self, timeout=None, pipeline=None):
        raise RedisTimeoutError("Timeout reading from socket")

    monkeypatch.setattr(Worker, "heartbeat", stalled)
    worker = queues.PatientWorker(["queues-patience-test"], connection=live_queue("default").connection,
                                  name="queues-heartbeat")
    worker.heartbeat()  # logged, not raised


def test_rqworker_uses_the_patient_worker_unless_told_otherwise(settings):
    from django_rq.workers import get_worker_class

    assert get_worker_class() is queues.PatientWorker
    from generator.worker import GenerationWorker

    assert issubclass(GenerationWorker, queues.RedisPatience)


def test_a_maintenance_or_suspension_check_redis_did_not_answer_does_not_stop_the_worker(monkeypatch):
    from redis.exceptions import TimeoutError as RedisTimeoutError

    def stalled(*args, **kwargs):
        raise RedisTimeoutError("Timeout reading from socket")

    monkeypatch.setattr(Worker, "check_for_suspension", stalled)
    monkeypatch.setattr(Worker, "run_maintenance_tasks", stalled)
    worker = queues.PatientWorker(["queues-patience-test"], connection=live_queue("default").connection,
                                  name="queues-maintenance")
    worker.check_for_suspension(burst=False)  # logged, not raised
    worker.run_maintenance_tasks()
