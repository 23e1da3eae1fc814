"""The drainer (`campaigns.drainer`, `manage.py qart_drain_scans`): buffered scans reach the database exactly once,
and the webhooks Redis missed are queued once it is back."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from redis.exceptions import RedisError

from campaigns import drainer, scan_backlog, scan_buffer, webhooks
from campaigns.drainer import GROUP, Drainer, drain_once
from campaigns.models import Placement, ScanEvent, ScanRollup, WebhookEndpoint, WebhookOutbox
from tests.campaigns.buffered import scan_ago, to_spool, to_stream
from tests.campaigns.refusals import refuse


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station Poster")


def stored_ids() -> list[str]:
    return sorted(row.hex for row in ScanEvent.objects.values_list("event_id", flat=True))


def pending(redis) -> int:
    return redis.xpending(scan_buffer.stream_key(), GROUP)["pending"]


def consumers(redis) -> set[str]:
    return {info["name"].decode() for info in redis.xinfo_consumers(scan_buffer.stream_key(), GROUP)}


def spool_files() -> list[str]:
    """The spool folder's files but the drainer's record of its last pass (`scan_backlog.PASS_FILE`)."""
    folder = scan_buffer.spool_path().parent
    return sorted(path.name for path in folder.iterdir() if path.name != scan_backlog.PASS_FILE) if folder.exists() \
        else []


@pytest.mark.django_db
class TestDrainOnce:
    def test_a_line_the_disk_took_only_part_of_leaves_the_next_one_whole(self, placement, scan_redis, monkeypatch,
                                                                           settings):
        settings.QART = {**settings.QART, "SCAN_BUFFER": "spool"}
        write, sizes = os.write, []

        def short_once(fd: int, data: bytes) -> int:  # a nearly full disk: half of the first line fits
            sizes.append(len(data))
            return write(fd, data[:len(data) // 2] if len(sizes) == 1 else data)

        monkeypatch.setattr(scan_buffer.os, "write", short_once)
        first, second = scan_ago(placement), scan_ago(placement)
        assert scan_buffer.push(first) == "stream"
        scan_buffer.spool_outage.end()  # a few seconds later: the spool is tried again
        assert scan_buffer.push(second) == "spool"
        assert drain_once().stored == 2 and stored_ids() == sorted(uuid.UUID(e["id"]).hex for e in (first, second))

    def test_a_spool_file_another_drainer_finished_meanwhile_is_no_trouble(self, placement, monkeypatch, caplog):
        to_spool(scan_ago(placement))
        claim = scan_buffer.claim_spool_files

        def finished_elsewhere(folder, trouble=None):  # the other drainer stores each file and deletes it
            claimed = claim(folder, trouble)
            for path in claimed:
                assert drainer.store_events(list(scan_buffer.spool_events(path))) == 1
                path.unlink()
            return claimed

        monkeypatch.setattr(scan_buffer, "claim_spool_files", finished_elsewhere)
        Drainer().drain_spool(drainer.Drained())  # raised FileNotFoundError: "the spool cannot be drained"
        assert ScanEvent.objects.count() == 1 and spool_files() == []

    def test_it_stores_stream_and_spool_events_once_when_run_twice(self, placement, scan_redis):
        streamed, spooled = [scan_ago(placement) for _ in range(3)], [scan_ago(placement) for _ in range(2)]
        to_stream(*streamed)
        to_spool(*spooled)
        assert drain_once().stored == 5
        assert drain_once().read == 0
        assert stored_ids() == sorted(made["id"] for made in streamed + spooled)
        assert scan_redis.xlen(scan_buffer.stream_key()) == 0 and pending(scan_redis) == 0  # acknowledged, deleted
        assert spool_files() == []

    def test_a_spool_it_cannot_claim_waits_while_the_stream_is_drained(self, placement, scan_redis, monkeypatch,
                                                                       caplog):
        # A folder the drainer could not rename in (a fault drill: read-only) raised out of its loop: it crashed and
        # restarted every few seconds, a traceback each time
        spooled, streamed = scan_ago(placement), scan_ago(placement)
        to_spool(spooled)
        to_stream(streamed)
        rename = scan_buffer.os.rename

        def refused(*args):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(scan_buffer.os, "rename", refused)
        drainer = Drainer()
        assert drainer.drain_once().stored == 1 and drainer.drain_once().stored == 0
        assert stored_ids() == [streamed["id"]] and len(spool_files()) == 1
        assert [r.getMessage() for r in caplog.records if "spool cannot be drained" in r.getMessage()] == [
            "The spool cannot be drained ([Errno 1] Operation not permitted): its scans wait there; draining the "
            "stream only"]  # once, not once a pass
        monkeypatch.setattr(scan_buffer.os, "rename", rename)
        assert drainer.drain_once().stored == 1
        assert stored_ids() == sorted([streamed["id"], spooled["id"]]) and spool_files() == []

    def test_only_its_blocking_read_waits_longer_than_a_commands_timeouts(self, placement, scan_redis, settings,
                                                                         monkeypatch):
        # Every call waited the blocking read's 6 s: a frozen Redis held `qart_drain_scans --once` 16 s (a fault drill).
        to_stream(scan_ago(placement))
        made, client = [], scan_buffer._client
        monkeypatch.setattr(scan_buffer, "_client",
                            lambda url, *timeouts: made.append(timeouts) or client(url, *timeouts))
        assert Drainer().drain_once(block_ms=250).stored == 1
        connect, read = settings.REDIS_TIMEOUTS["socket_connect_timeout"], settings.REDIS_TIMEOUTS["socket_timeout"]
        assert set(made) == {(connect, read), (connect, read + 0.25)}

    @staticmethod
    def two_spool_files(placement) -> tuple[dict, dict]:
        """Two web processes' spool files, "a" sorted before "b"."""
        folder = scan_buffer.spool_path().parent
        folder.mkdir(parents=True, exist_ok=True)
        first, second = scan_ago(placement), scan_ago(placement)
        for name, made in (("a", first), ("b", second)):
            (folder / f"scans-{name}-1{scan_buffer.SPOOL_SUFFIX}").write_text(json.dumps(made) + "\n")
        return first, second

    def test_a_spool_file_it_cannot_read_waits_without_holding_up_the_others(self, placement, monkeypatch, caplog):
        # The first file in the folder's order that could not be read (another user's, a disk error) stopped the pass:
        # every file after it waited too, for as long as that one stayed unreadable.
        first, second = self.two_spool_files(placement)
        read = scan_buffer.spool_events

        def refused(path):
            if "scans-a-" in path.name:
                raise PermissionError(13, "Permission denied")
            return read(path)

        monkeypatch.setattr(scan_buffer, "spool_events", refused)
        drainer = Drainer()
        assert drainer.drain_once().stored == 1 and drainer.drain_once().stored == 0
        assert stored_ids() == [second["id"]] and drainer.spool_blocked
        assert [name.split(".")[0] for name in spool_files()] == ["scans-a-1"]
        assert len([r for r in caplog.records if "spool cannot be drained" in r.getMessage()]) == 1
        monkeypatch.setattr(scan_buffer, "spool_events", read)
        assert drainer.drain_once().stored == 1 and not drainer.spool_blocked
        assert stored_ids() == sorted([first["id"], second["id"]]) and spool_files() == []

    def test_a_spool_file_it_cannot_mark_claimed_waits_and_the_others_are_drained(self, placement, monkeypatch,
                                                                                  caplog):
        # Unmarked, a web process may still append to it: drained and deleted then, its last lines would be lost
        first, second = self.two_spool_files(placement)
        fchmod = scan_buffer.os.fchmod
        refused = []

        def first_refused(fd, mode):
            if "scans-a-" in os.readlink(f"/proc/self/fd/{fd}"):
                refused.append(fd)
                raise PermissionError(1, "Operation not permitted")
            fchmod(fd, mode)

        monkeypatch.setattr(scan_buffer.os, "fchmod", first_refused)
        drainer = Drainer()
        assert drainer.drain_once().stored == 1 and refused and drainer.spool_blocked
        assert stored_ids() == [second["id"]]
        assert [name.split(".")[0] for name in spool_files()] == ["scans-a-1"]  # renamed, waiting
        monkeypatch.setattr(scan_buffer.os, "fchmod", fchmod)
        assert drainer.drain_once().stored == 1 and not drainer.spool_blocked
        assert stored_ids() == sorted([first["id"], second["id"]]) and spool_files() == []

    def test_a_redis_that_refuses_its_password_is_said_once_as_such_and_the_spool_is_still_drained(
            self, placement, settings, password_redis, caplog):
        # "Redis is away", a warning: whoever ran the drainer waited for a Redis that was up. Not ended as a worker is:
        # the spool's scans need no Redis.
        settings.REDIS_URL = password_redis.url_with("wrong-password")
        running = Drainer()
        for _ in range(2):
            to_spool(scan_ago(placement))
            with caplog.at_level(logging.WARNING, logger="campaigns.drainer"):
                assert running.drain_once().stored == 1
        said = [(r.levelname, r.getMessage()) for r in caplog.records]
        assert len(said) == 1 and said[0][0] == "ERROR", said
        assert said[0][1].startswith(f"Redis at 127.0.0.1:{password_redis.port}/0 refused the drainer's password (")
        assert "wrong-password" not in said[0][1]

    def test_it_keeps_the_requests_time_not_the_drains(self, placement):
        made = scan_ago(placement, seconds_ago=3 * 3600)
        to_spool(made)
        drain_once()
        assert ScanEvent.objects.get().time.isoformat() == made["time"]

    def test_it_stores_a_stream_event_delivered_again_after_a_crash_before_the_ack_once(self, placement, scan_redis,
                                                                                         monkeypatch):
        made = [scan_ago(placement) for _ in range(3)]
        to_stream(*made)
        with monkeypatch.context() as patched:
            patched.setattr(Drainer, "acknowledge", lambda *args: (_ for _ in ()).throw(SystemExit("killed")))
            with pytest.raises(SystemExit):
                drain_once(consumer="crashed")
        assert ScanEvent.objects.count() == 3 and pending(scan_redis) == 3  # stored, not acknowledged
        assert drain_once(consumer="next", claim_idle_ms=0).read == 3  # delivered a second time
        assert stored_ids() == sorted(e["id"] for e in made) and pending(scan_redis) == 0

    def test_it_stores_a_spool_file_read_again_after_a_crash_before_its_removal_once(self, placement, monkeypatch):
        made = [scan_ago(placement) for _ in range(3)]
        to_spool(*made)
        with monkeypatch.context() as patched:
            patched.setattr(Drainer, "remove", lambda *args: (_ for _ in ()).throw(SystemExit("killed")))
            with pytest.raises(SystemExit):
                drain_once()
        assert ScanEvent.objects.count() == 3 and len(spool_files()) == 1  # claimed, stored, left behind
        assert drain_once().read == 3
        assert stored_ids() == sorted(e["id"] for e in made) and spool_files() == []

    def test_it_stores_the_same_event_in_one_batch_once(self, placement):
        made = scan_ago(placement)
        to_spool(made, made)
        assert drain_once().stored == 1 and ScanEvent.objects.count() == 1

    def test_it_reclaims_a_pending_entry_of_a_dead_consumer(self, placement, scan_redis):
        made = scan_ago(placement)
        to_stream(made)
        scan_redis.xgroup_create(scan_buffer.stream_key(), GROUP, id="0")
        scan_redis.xreadgroup(GROUP, "dead", {scan_buffer.stream_key(): ">"})  # read, then the process died
        assert drain_once(consumer="alive").read == 0  # not idle for long yet: it may still be working
        assert drain_once(consumer="alive", claim_idle_ms=0).stored == 1
        assert stored_ids() == [made["id"]] and pending(scan_redis) == 0

    def test_it_forgets_stopped_drainers_once_nothing_is_pending_for_them(self, placement, scan_redis, monkeypatch):
        stream = scan_buffer.stream_key()
        to_stream(scan_ago(placement), scan_ago(placement, visitor_key="w" * 32))
        scan_redis.xgroup_create(stream, GROUP, id="0")
        scan_redis.xreadgroup(GROUP, "stopped-with-one", {stream: ">"}, count=1)  # died holding an entry
        scan_redis.xreadgroup(GROUP, "stopped-empty", {stream: "0"})  # joined, read nothing new
        monkeypatch.setattr(drainer, "FORGET_IDLE_MS", 0)
        alive = Drainer(consumer="alive", claim_idle_ms=60_000)
        alive.drain_once()
        # the stopped one holding an entry stays until its entry is claimed
        assert consumers(scan_redis) == {"alive", "stopped-with-one"} and pending(scan_redis) == 1
        alive.claim_idle_ms, alive.forgot_at = 0, None
        assert alive.drain_once().stored == 1
        assert consumers(scan_redis) == {"alive"}
        assert ScanEvent.objects.count() == 2 and pending(scan_redis) == 0

    def test_it_never_forgets_a_consumer_holding_an_entry(self, placement, scan_redis):
        stream = scan_buffer.stream_key()
        to_stream(scan_ago(placement))
        scan_redis.xgroup_create(stream, GROUP, id="0")
        scan_redis.xreadgroup(GROUP, "busy", {stream: ">"})
        assert scan_redis.eval(drainer.FORGET_IF_IDLE, 1, stream, GROUP, "busy") == -1
        assert pending(scan_redis) == 1
        scan_redis.xreadgroup(GROUP, "idle", {stream: "0"})
        assert scan_redis.eval(drainer.FORGET_IF_IDLE, 1, stream, GROUP, "idle") == 0

    def test_it_loses_and_acknowledges_nothing_when_the_database_fails_mid_drain(self, placement, scan_redis,
                                                                                 monkeypatch):
        streamed, spooled = [scan_ago(placement) for _ in range(2)], [scan_ago(placement) for _ in range(2)]
        to_stream(*streamed)
        to_spool(*spooled)
        real_insert, calls = drainer.insert, []

        def fail_once(rows):  # the insert fails after the rollups were written in the same transaction
            calls.append(1)
            if len(calls) == 1:
                raise OperationalError("server closed the connection unexpectedly")
            return real_insert(rows)

        monkeypatch.setattr(drainer, "insert", fail_once)
        with pytest.raises(OperationalError):
            drain_once()
        assert ScanEvent.objects.count() == 0
        assert pending(scan_redis) == 2 and scan_redis.xlen(scan_buffer.stream_key()) == 2  # nothing acknowledged
        assert drain_once().stored == 4
        assert stored_ids() == sorted(e["id"] for e in streamed + spooled) and pending(scan_redis) == 0
        # the failed batch's rollups went with its transaction: each scan counted once
        assert sum(ScanRollup.objects.filter(dimension=ScanRollup.Dimension.TOTAL).values_list("scans", flat=True)) == 4

    def test_it_drains_the_spool_while_redis_is_down(self, placement, settings):
        to_spool(scan_ago(placement))
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        assert drain_once().stored == 1

    def test_scans_stored_while_the_webhooks_queue_is_away_are_announced_once_it_is_back(
            self, placement, team_users, scan_redis, webhooks_queue, django_capture_on_commit_callbacks):
        endpoint = WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/",
                                                  events=["scan.created"], secret=webhooks.new_secret())
        webhooks_queue.away()
        to_spool(scan_ago(placement), scan_ago(placement, visitor_key="w" * 32))
        with django_capture_on_commit_callbacks(execute=True):
            assert drain_once().stored == 2
        assert webhooks_queue.queue.count == 0 and WebhookOutbox.objects.count() == 1

        webhooks_queue.back()
        with django_capture_on_commit_callbacks(execute=True):
            assert drain_once().stored == 0  # nothing new: the pass only queues what was kept
        [job] = webhooks_queue.queue.jobs
        assert job.args[:2] == (endpoint.pk, "scan.created")
        assert sorted(uuid.UUID(message_id).hex for message_id, _ in job.args[2]) == stored_ids()
        assert not WebhookOutbox.objects.exists()

    def test_it_flushes_the_webhooks_outbox_now_and_then_and_as_soon_as_redis_is_back(
            self, placement, scan_redis, monkeypatch):
        flushes = []
        monkeypatch.setattr(webhooks, "flush_outbox", lambda: flushes.append(1))
        running = Drainer()
        running.drain_once()
        running.drain_once()
        assert len(flushes) == 1  # the first pass, then every FLUSH_EVERY

        def away(drained, block_ms) -> None:
            raise RedisError("Connection refused")

        running.drain_stream = away
        running.drain_once()
        assert len(flushes) == 1  # not while Redis is away
        del running.drain_stream
        running.drain_once()
        assert len(flushes) == 2  # at once when it is back

    def test_it_drops_scans_of_deleted_placements_and_unreadable_lines(self, placement, campaign):
        gone = Placement.objects.create(campaign=campaign, name="Gone")
        kept, lost = scan_ago(placement), scan_ago(gone)
        gone.delete()
        to_spool(kept, lost)
        with open(scan_buffer.spool_path(), "a") as file:
            file.write('{"id": "torn-by-a-kill')  # the last line of a process killed mid-write
        assert drain_once().stored == 1 and stored_ids() == [kept["id"]] and spool_files() == []

    def test_a_nul_in_a_scans_headers_is_left_out_and_holds_up_nothing(self, placement):
        # The development server passes a NUL in a header on; PostgreSQL refused it in text, the drainer stopped, and
        # the spool file stayed claimed with every scan after that one in it.
        poisoned = {**scan_ago(placement), "browser": "Mobile\x00 Safari", "referer": "https://a.example/\x00x",
                    "accept_language": "en\x00"}
        after = scan_ago(placement)
        to_spool(poisoned, after)
        assert drain_once().stored == 2 and spool_files() == []
        stored = ScanEvent.objects.get(event_id=poisoned["id"])
        assert stored.browser == "Mobile Safari" and stored.referer == "https://a.example/x"
        assert stored.accept_language == "en"

    def test_it_appends_to_a_new_file_once_the_drainer_has_claimed_the_old_one(self, placement):
        to_spool(scan_ago(placement))
        [claimed] = scan_buffer.claim_spool_files(scan_buffer.spool_path().parent)
        to_spool(scan_ago(placement))  # after the claim: a new file under the spool name
        assert sum(1 for _ in scan_buffer.spool_events(claimed)) == 1
        assert scan_buffer.spool_path().exists() and drain_once().stored == 2

    def test_a_claimed_file_is_marked_read_only_and_a_writer_holding_it_open_moves_on(self, placement):
        to_spool(scan_ago(placement))  # the writer keeps this file open
        [claimed] = scan_buffer.claim_spool_files(scan_buffer.spool_path().parent)
        assert claimed.stat().st_mode & 0o777 == scan_buffer.CLAIMED_MODE
        to_spool(scan_ago(placement))
        assert scan_buffer.spool_path().stat().st_mode & 0o777 == scan_buffer.SPOOL_MODE
        assert sum(1 for _ in scan_buffer.spool_events(claimed)) == 1

    def test_a_spool_file_deleted_under_the_writer_is_not_written_into_the_void(self, placement):
        to_spool(scan_ago(placement))
        scan_buffer.spool_path().unlink()  # someone cleaned the folder; the writer still holds the file open
        kept = scan_ago(placement)
        to_spool(kept)
        assert drain_once().stored == 1 and stored_ids() == [kept["id"]]

    def test_a_forked_child_writes_its_own_file(self, placement):
        to_spool(scan_ago(placement))  # the parent's file is open
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            try:
                to_spool(scan_ago(placement))
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        names = spool_files()
        assert len(names) == 2 and any(f"-{child}.jsonl" in name for name in names)
        assert drain_once().stored == 2


@pytest.mark.django_db
class TestCommand:
    def test_it_drains_once_and_says_how_many(self, placement, capsys):
        to_spool(scan_ago(placement), scan_ago(placement))
        call_command("qart_drain_scans", "--once")
        assert "Stored 2 new scans of 2 buffered." in capsys.readouterr().out

    def test_it_says_in_its_one_line_that_redis_did_not_answer(self, placement, settings, silent_server, capsys,
                                                               caplog):
        # A frozen Redis: a log line of its own before the count, after waiting the blocking read's 6 s (a fault drill).
        settings.REDIS_URL = f"redis://127.0.0.1:{silent_server[0]}/0"
        settings.REDIS_TIMEOUTS = {"socket_connect_timeout": 1, "socket_timeout": 0.25}
        to_spool(scan_ago(placement))
        with caplog.at_level(logging.INFO, logger="campaigns"):
            call_command("qart_drain_scans", "--once")
        said = capsys.readouterr().out
        assert said.startswith("Stored 1 new scan of 1 buffered; Redis could not be read (not answering: Timeout "
                               "reading from ")
        assert said.endswith("), so only the spool was drained: run this again once it answers.\n")
        assert said.count("\n") == 1 and not caplog.records

    def test_it_says_that_redis_refused_its_password_not_that_it_did_not_answer(self, placement, settings,
                                                                              password_redis, capsys):
        # A wrong password read "Redis did not answer", then "run this again once it answers": the person running it
        # waited for a Redis that was up.
        settings.REDIS_URL = password_redis.url_with("wrong-password")
        to_spool(scan_ago(placement))
        call_command("qart_drain_scans", "--once")
        said = capsys.readouterr().out
        assert said.startswith(f"Stored 1 new scan of 1 buffered; Redis at 127.0.0.1:{password_redis.port}/0 refused "
                               "the password ("), said
        assert said.endswith("), so only the spool was drained: run this again once REDIS_URL carries the password "
                             "Redis asks for.\n"), said
        assert "wrong-password" not in said and "once it answers" not in said

    def test_it_says_how_many_the_database_refused_and_where_they_are(self, placement, monkeypatch, capsys):
        poison = scan_ago(placement)
        refuse(monkeypatch, poison)
        to_spool(scan_ago(placement), poison)
        call_command("qart_drain_scans", "--once")
        assert capsys.readouterr().out == ("Stored 1 new scan of 2 buffered; the database refused 1 scan, set aside "
                                           "(see qart_refused_scans).\n")

    def test_it_says_one_scan_in_the_singular(self, placement, capsys):
        to_spool(scan_ago(placement))
        call_command("qart_drain_scans", "--once")
        assert "Stored 1 new scan of 1 buffered." in capsys.readouterr().out

    def test_its_log_says_one_scan_in_the_singular(self, monkeypatch, caplog):
        # make run's log said "Stored 1 scans" for each scan of a first walk-through.
        stop = threading.Event()

        def drain(self, block_ms=None):
            stop.set()
            return drainer.Drained(read=1, stored=1)

        monkeypatch.setattr(Drainer, "drain_once", drain)
        with caplog.at_level(logging.INFO, logger="campaigns.drainer"):
            Drainer("test").run(stop)
        assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("Stored")] == ["Stored 1 scan"]

    @pytest.mark.parametrize("seconds", ["-1", "nan", "inf", "1e300"])
    def test_it_refuses_a_claim_idle_that_is_no_time_with_one_message(self, placement, seconds, capsys):
        # A negative one was refused by Redis and taken for "Redis is away" (the spool drained alone, exit 0); NaN
        # and infinity were a traceback.
        to_spool(scan_ago(placement))
        with pytest.raises(CommandError, match=r"^--claim-idle must be between 0 and 31,536,000 seconds"):
            call_command("qart_drain_scans", "--once", f"--claim-idle={seconds}")
        assert len(spool_files()) == 1 and "Redis is away" not in capsys.readouterr().out

    def test_it_fails_with_one_message_when_the_database_is_away(self, placement, monkeypatch):
        to_spool(scan_ago(placement))
        monkeypatch.setattr(drainer, "store_events", lambda events: (_ for _ in ()).throw(OperationalError("down")))
        with pytest.raises(CommandError, match="nothing was acknowledged"):
            call_command("qart_drain_scans", "--once")
        assert len(spool_files()) == 1

    def test_it_waits_and_retries_while_the_database_is_away(self, monkeypatch):
        stop, waits, passes = threading.Event(), [], []

        def drain(self, block_ms=None):
            passes.append(block_ms)
            if len(passes) < 3:
                raise OperationalError("connection refused")
            stop.set()
            return drainer.Drained(read=1, stored=1)

        monkeypatch.setattr(Drainer, "drain_once", drain)
        monkeypatch.setattr(stop, "wait", waits.append)
        Drainer("test").run(stop)
        assert waits == [1.0, 2.0] and passes == [drainer.BLOCK_MS] * 3

    @staticmethod
    def logged_for(error: Exception, monkeypatch, caplog) -> list[str]:
        """What a running drainer logs when one pass raises `error` (then it is stopped)."""
        stop = threading.Event()

        def drain(self, block_ms=None):
            stop.set()
            raise error

        monkeypatch.setattr(Drainer, "drain_once", drain)
        monkeypatch.setattr(stop, "wait", lambda delay: None)
        with caplog.at_level(logging.WARNING, logger="campaigns.drainer"):
            Drainer("test").run(stop)
        return [r.getMessage() for r in caplog.records]

    def test_a_value_the_database_refuses_is_said_so_not_called_away(self, monkeypatch, caplog):
        # COPY's refusal of a value (DataError, since copy_rows wraps the driver's errors) was logged as "The database
        # is away", every retry. A scan's refusal no longer gets here (test_drainer.py): something else's does
        from django.db import DataError

        assert self.logged_for(DataError("invalid byte sequence"), monkeypatch, caplog) == [
            "The database refused the drainer's work (invalid byte sequence): nothing acknowledged, retrying in 1 s. "
            "Not a scan (those it refuses are set aside): tell whoever runs qart"]

    def test_a_database_without_its_tables_is_said_so_not_called_away(self, monkeypatch, caplog):
        # A drainer started before `migrate` logged "The database is away (relation ... does not exist)".
        from django.db import ProgrammingError

        error = ProgrammingError('relation "campaigns_placement" does not exist')
        assert self.logged_for(error, monkeypatch, caplog) == [
            "The database has no qart tables yet: run `manage.py migrate` (make run does). Nothing acknowledged; "
            "retrying in 1 s"]
