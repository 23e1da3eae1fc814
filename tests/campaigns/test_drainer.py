"""The drainer (`campaigns.drainer`) when the database refuses a scan: the others are stored, the refused one is set
aside (`campaigns.refused_scans`), and the scans after it keep flowing. The drainer's other behaviour, and its
command's, is tested in test_drain_scans.py."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.db import IntegrityError, OperationalError
from django.utils import timezone

from campaigns import drainer, refused_scans, scan_buffer
from campaigns.drainer import GROUP, drain_once
from campaigns.models import ScanEvent
from tests.campaigns.buffered import to_spool, to_stream
from tests.campaigns.refusals import block_refused_folder, refuse, refused_logs
from tests.campaigns.rollup_data import event


def scans(placement, count: int, **fields) -> list[dict]:
    return [event(placement, timezone.now(), visitor=f"{i:032d}", **fields) for i in range(count)]


def stored_ids() -> set[str]:
    return {row.hex for row in ScanEvent.objects.values_list("event_id", flat=True)}


def ids(*events: dict) -> set[str]:
    return {uuid.UUID(made["id"]).hex for made in events}


def set_aside(redis) -> dict[str, str]:
    """The refused scans in Redis: event id -> reason."""
    return {key.decode(): json.loads(raw)["reason"] for key, raw in redis.hgetall(refused_scans.refused_key()).items()}


@pytest.mark.django_db
class TestRefusedScans:
    def test_a_refused_stream_event_is_set_aside_and_the_others_are_stored(self, placement, scan_redis, monkeypatch,
                                                                          caplog):
        # The whole batch failed, nothing was acknowledged, and its pending entries were read first on every pass:
        # no scan reached the database again
        good = scans(placement, 6)
        poison = good.pop(3)
        refuse(monkeypatch, poison)
        to_stream(*good[:3], poison, *good[3:])
        assert drain_once().stored == 5
        assert stored_ids() == ids(*good)
        assert list(set_aside(scan_redis)) == [uuid.UUID(poison["id"]).hex]
        assert "value too long" in set_aside(scan_redis)[uuid.UUID(poison["id"]).hex]
        stream = scan_buffer.stream_key()
        assert scan_redis.xlen(stream) == 0 and scan_redis.xpending(stream, GROUP)["pending"] == 0
        [logged] = refused_logs(caplog)
        assert logged.levelno == logging.ERROR and poison["id"] in logged.getMessage()

        later = scans(placement, 2)
        to_stream(*later)
        assert drain_once().stored == 2 and stored_ids() == ids(*good, *later)
        assert len(refused_logs(caplog)) == 1  # said once, not once a pass

    def test_a_refused_spool_event_is_set_aside_and_the_file_drained(self, placement, scan_redis, monkeypatch):
        good = scans(placement, 4)
        poison = good.pop(0)
        refuse(monkeypatch, poison)
        to_spool(poison, *good)
        assert drain_once().stored == 3 and stored_ids() == ids(*good)
        assert set(set_aside(scan_redis)) == ids(poison)
        assert list(scan_buffer.spool_path().parent.glob("scans-*")) == []
        later = scans(placement, 1)
        to_spool(*later)
        assert drain_once().stored == 1 and stored_ids() == ids(*good, *later)

    def test_while_redis_is_away_a_refused_scan_waits_in_a_file_then_moves_to_redis(self, placement, scan_redis,
                                                                                     monkeypatch, settings):
        good = scans(placement, 2)
        poison = good.pop()
        refuse(monkeypatch, poison)
        to_spool(*good, poison)
        redis_url, settings.REDIS_URL = settings.REDIS_URL, "redis://127.0.0.1:1/0"
        assert drain_once().stored == 1 and stored_ids() == ids(*good)
        [path] = refused_scans.folder().iterdir()
        assert path.name == f"{uuid.UUID(poison['id']).hex}.json"
        assert json.loads(path.read_text())["event"] == poison
        settings.REDIS_URL = redis_url
        drain_once()
        assert set(set_aside(scan_redis)) == ids(poison) and list(refused_scans.folder().iterdir()) == []

    def test_a_value_no_driver_can_encode_is_set_aside(self, placement, scan_redis):
        # A lone surrogate (JSON's "\ud800") is refused by the driver before the database sees it, on both databases:
        # a UnicodeEncodeError that stopped the drainer outright
        good, poison = scans(placement, 1), event(placement, timezone.now(), browser="Safari\ud800")
        to_stream(poison, *good)
        assert drain_once().stored == 1 and stored_ids() == ids(*good)
        assert set(set_aside(scan_redis)) == ids(poison)

    def test_an_outage_is_retried_whole_and_nothing_is_set_aside(self, placement, scan_redis, monkeypatch):
        made = scans(placement, 3)
        to_stream(*made)

        def away(rows):
            raise OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(drainer, "insert", away)
        with pytest.raises(OperationalError):
            drain_once()
        assert ScanEvent.objects.count() == 0 and set_aside(scan_redis) == {}
        assert scan_redis.xpending(scan_buffer.stream_key(), GROUP)["pending"] == 3  # nothing acknowledged
        monkeypatch.undo()
        assert drain_once().stored == 3 and set_aside(scan_redis) == {}

    def test_a_scan_refused_once_for_its_unique_id_is_tried_again_alone_not_set_aside(self, placement, scan_redis,
                                                                                        monkeypatch):
        # A lost race on the unique event id (another drainer stored it between our look and our insert): alone, in
        # a transaction of its own, the scan is looked up again; only one refused twice is set aside
        [made] = scans(placement, 1)
        insert, calls = drainer.insert, []

        def raced(rows):
            calls.append(len(rows))
            if len(calls) == 1:
                raise IntegrityError("UNIQUE constraint failed: campaigns_scanevent.event_id")
            insert(rows)

        monkeypatch.setattr(drainer, "insert", raced)
        to_stream(made)
        assert drain_once().stored == 1
        assert stored_ids() == ids(made) and set_aside(scan_redis) == {} and calls == [1, 1]

    def test_the_log_leaves_out_the_visitor(self, placement, scan_redis, monkeypatch, caplog):
        poison = event(placement, timezone.now(), visitor="f" * 32, referer="https://news.example/a?token=s3cret")
        refuse(monkeypatch, poison)
        to_stream(poison)
        drain_once()
        [logged] = refused_logs(caplog)
        assert "https://news.example" in logged.getMessage()
        assert "f" * 32 not in logged.getMessage() and "s3cret" not in logged.getMessage()

    def test_a_malformed_scan_is_dropped_and_logged_without_the_visitor_either(self, placement, scan_redis, caplog):
        # Its log line held the whole event: the visitor key and a referer's token with it.
        malformed = event(placement, timezone.now(), visitor="f" * 32, referer="https://news.example/a?token=s3cret")
        malformed["time"] = "yesterday"
        to_stream(malformed)
        assert drain_once().stored == 0 and set_aside(scan_redis) == {}
        [logged] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Dropping a malformed scan")]
        assert malformed["id"] in logged and "https://news.example" in logged
        assert "f" * 32 not in logged and "s3cret" not in logged

    def test_an_unreadable_stream_entry_is_logged_without_the_visitor_or_the_referers_query(self, placement,
                                                                                           scan_redis, caplog):
        # Its log line printed the entry's raw fields: the visitor key and a referer's token with them
        made = event(placement, timezone.now(), visitor="f" * 32, referer="https://news.example/a?token=s3cret")
        del made["time"]
        stream = scan_buffer.stream_key()
        scan_redis.xadd(stream, {"event": json.dumps(made)})
        scan_redis.xadd(stream, {"event": json.dumps(made)[:-40]})  # cut short: no JSON at all
        assert drain_once().stored == 0 and scan_redis.xlen(stream) == 0
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Dropping unreadable")]
        assert len(said) == 2 and made["id"] in said[0] and "https://news.example" in said[0]
        assert said[1].endswith(" bytes, not a scan") and made["id"] not in said[1]
        assert not [line for line in said if "f" * 32 in line or "s3cret" in line or "news.example/a" in line]

    def test_a_refused_scans_file_it_cannot_move_is_said_once_and_again_when_it_can(self, placement, scan_redis,
                                                                                   monkeypatch, caplog):
        # A folder it cannot delete in (read-only, another user's) was warned about on every pass, once a second
        waiting = event(placement, timezone.now())
        refused_scans.set_aside(waiting, "value too long", None)
        unblock = block_refused_folder(monkeypatch)
        running = drainer.Drainer()
        for _ in range(3):
            running.drain_once()
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Refused scans")]
        assert said == [f"Refused scans wait in {refused_scans.folder()} ([Errno 13] Permission denied)"]
        unblock()
        running.drain_once()
        running.drain_once()
        said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Refused scans")]
        assert said[1:] == [f"Refused scans are moved from {refused_scans.folder()} again"]
        assert set(set_aside(scan_redis)) == ids(waiting) and list(refused_scans.folder().iterdir()) == []
