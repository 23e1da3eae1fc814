"""Database calls given a time limit: run in a few daemon threads, each keeping its own connection.

The database's connect and statement timeouts bound a server that is away or slow, not one that stops answering on a
connection already open (a stalled server, a lost network): the caller would wait as long as the stall. Here the call
runs in another thread and the caller stops waiting when its time is up; the thread stays stuck until the database
answers. The threads are daemons (a process that exits does not wait for a stuck one) and keep their connections
as requests do (CONN_MAX_AGE), dropped when broken or too old.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from django.db import DatabaseError, close_old_connections, connection

T = TypeVar("T")
_STOP = object()


class TimedOut(DatabaseError):
    """The database did not answer within the time given."""


class DatabaseThreads:
    def __init__(self, count: int = 4, name: str = "db-call") -> None:
        self.count, self.name = count, name
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def call(self, function: Callable[..., T], *args, timeout: float) -> T:
        """`function(*args)` in one of the threads, its result or its exception.

        Raises:
            TimedOut: no answer within `timeout` seconds (the call is dropped if it has not started yet).
        """
        self._start()
        future: Future = Future()
        self._calls.put((future, function, args))
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            future.cancel()
            raise TimedOut(f"the database did not answer within {timeout:g} s") from None

    def submit(self, function: Callable[..., T], *args) -> Future:
        """`function(*args)` in one of the threads, not waited for: its future, never cancelled."""
        self._start()
        future: Future = Future()
        self._calls.put((future, function, args))
        return future

    def waiting(self) -> int:
        """Calls not started yet."""
        return self._calls.qsize()

    def stop(self, timeout: float = 10) -> None:
        """End the threads, each closing its connection (tests: a test database cannot be dropped while a
        connection to it is open). The next `call` starts new ones."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._calls.put(_STOP)
        for thread in threads:
            thread.join(timeout)

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self.count:
                thread = threading.Thread(target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        try:
            while (item := self._calls.get()) is not _STOP:
                future, function, args = item
                if not future.set_running_or_notify_cancel():
                    continue  # its caller stopped waiting before it started
                close_old_connections()  # this thread's connection: dropped when broken or too old
                try:
                    future.set_result(function(*args))
                except BaseException as exc:  # the caller gets it, as if it had called directly
                    connection.close_if_unusable_or_obsolete()
                    future.set_exception(exc)
        finally:
            connection.close()
