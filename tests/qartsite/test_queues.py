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
