"""Phones scanning a short link from threads through a drill, every answer recorded."""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlsplit

from tests.clients import IPHONE

PHONES = 3  # threads scanning at once


class Phones:
    """PHONES threads scanning one short link until stopped, each scan a new connection; every answer recorded as
    (status or the error's name, seconds, when it was sent: seconds since the first)."""

    def __init__(self, base: str, path: str) -> None:
        self.address, self.path = urlsplit(base).netloc, path
        self.answers: list[tuple[int | str, float, float]] = []
        self.began = time.monotonic()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.scan, daemon=True) for _ in range(PHONES)]

    def scan_once(self, timeout: float = 10.0) -> tuple[int | str, float, float]:
        started = time.monotonic()
        connection = http.client.HTTPConnection(self.address, timeout=timeout)
        try:
            connection.request("GET", self.path, headers={"User-Agent": IPHONE})
            response = connection.getresponse()
            response.read()
            return response.status, time.monotonic() - started, started - self.began
        except OSError as exc:
            return type(exc).__name__, time.monotonic() - started, started - self.began
        finally:
            connection.close()

    def scan(self) -> None:
        while not self.stopping.is_set():
            self.answers.append(self.scan_once())
            self.stopping.wait(0.02)  # a few hundred scans a second would only load the two busy cores

    def __enter__(self) -> Phones:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)
