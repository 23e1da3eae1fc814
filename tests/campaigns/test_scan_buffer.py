"""The durable buffer of scans (`campaigns.scan_buffer`): the spool file shared by a web process's threads, and the
stream's Redis left alone for a moment after a failure."""

from __future__ import annotations

import errno
import json
import logging
from time import monotonic

import pytest

from campaigns import scan_buffer
from tests.conftest import free_port


def test_it_closes_a_spool_file_that_failed_under_the_thread_lock(monkeypatch):
    # A full disk (a fault drill: a 256 KB spool filling up under runserver's threads): the failing append closed the
    # shared descriptor after letting go of the thread lock, while another thread wrote to that number; once reused
    # (a client's socket, another file) that thread wrote its scan there (a 302 counted nowhere, a client answered
    # with a JSON line) or closed the other file.
    spool = scan_buffer.SpoolFile()
    monkeypatch.setattr(scan_buffer, "_spool", spool)

    def full(data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool, "_append", full)
    locked_at_close = []
    close = spool.close
    monkeypatch.setattr(spool, "close", lambda: (locked_at_close.append(spool.threads.locked()), close()))

    with pytest.raises(OSError):
        scan_buffer.append_to_spool(json.dumps({"id": "1", "placement": 1, "time": "2026-01-01T00:00:00+00:00"}))

    assert locked_at_close == [True]


def test_it_opens_the_spool_file_afresh_after_a_failed_append(settings, tmp_path, monkeypatch):
    settings.QART = {**settings.QART, "SPOOL_DIR": tmp_path / "spool"}
    spool = scan_buffer.SpoolFile()
    monkeypatch.setattr(scan_buffer, "_spool", spool)
    scan_buffer.append_to_spool('{"n": 1}')
    writes = iter([OSError(errno.ENOSPC, "No space left on device")])
    real_write = scan_buffer.os.write

    def write(fd, data):
        failure = next(writes, None)
        if failure is not None:
            raise failure
        return real_write(fd, data)

    monkeypatch.setattr(scan_buffer.os, "write", write)
    with pytest.raises(OSError):
        scan_buffer.append_to_spool('{"n": 2}')
    assert spool.fd is None
    scan_buffer.append_to_spool('{"n": 3}')
    assert spool.fd is not None and scan_buffer.spool_path().read_text().splitlines() == ['{"n": 1}', '{"n": 3}']


def test_a_spool_that_cannot_be_written_is_left_alone_for_a_moment_with_one_warning(monkeypatch, caplog):
    # A full or read-only spool cost every scan a failed write and a warning (600 lines in a fault drill).
    tried, streamed = [], []
    monkeypatch.setattr(scan_buffer, "append_to_spool", lambda line: tried.append(line) or _full())
    monkeypatch.setattr(scan_buffer, "add_to_stream", lambda line: streamed.append(line) or True)
    with caplog.at_level(logging.WARNING, logger="campaigns.scan_buffer"):
        where = [scan_buffer.push({"n": n}) for n in range(5)]
    assert where == ["stream"] * 5 and len(tried) == 1 and len(streamed) == 5
    assert sum("Could not append to the spool" in r.getMessage() for r in caplog.records) == 1
    # With the stream away too, the spool is tried after all; the scan is lost only when both fail.
    monkeypatch.setattr(scan_buffer, "add_to_stream", lambda line: False)
    with pytest.raises(OSError):
        scan_buffer.push({"n": 5})
    assert len(tried) == 2
    scan_buffer.spool_outage.end()


def _full():
    raise OSError(28, "No space left on device")


def test_a_redis_that_does_not_answer_is_left_alone_longer_than_one_that_refuses(settings, silent_server):
    # A frozen Redis (SIGSTOP) takes the connection and never answers: each try cost a scan the whole read timeout,
    # and after the refusal's one-second pause a third of each web worker's time went on waiting (a fault drill).
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_server[0]}/0"
    assert not scan_buffer.add_to_stream('{"n": 1}')
    assert scan_buffer.redis_outage.until - monotonic() > scan_buffer.REDIS_RETRY_AFTER
    scan_buffer.redis_outage.end()
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: refused at once, tried again soon
    assert not scan_buffer.add_to_stream('{"n": 2}')
    assert scan_buffer.redis_outage.until - monotonic() <= scan_buffer.REDIS_RETRY_AFTER
