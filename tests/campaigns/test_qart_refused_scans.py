"""manage.py qart_refused_scans: lists the scans the database refused, retries them once fixed, or discards them."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from campaigns import drainer, refused_scans
from campaigns.drainer import drain_once
from campaigns.models import ScanEvent
from tests.campaigns.buffered import to_stream
from tests.campaigns.refusals import block_refused_folder, refuse
from tests.campaigns.rollup_data import event


def run(*args: str) -> str:
    out = StringIO()
    call_command("qart_refused_scans", *args, stdout=out, stderr=out)
    return out.getvalue()


def hex_id(made: dict) -> str:
    return uuid.UUID(made["id"]).hex


@pytest.fixture
def refused(placement, scan_redis, monkeypatch) -> list[dict]:
    """Two scans the database refused, and one it stored; the refusal's cause is still there (`monkeypatch.undo()`
    fixes it)."""
    made = [event(placement, timezone.now(), visitor=f"{i:032d}") for i in range(3)]
    refuse(monkeypatch, made[0], made[2])
    to_stream(*made)
    assert drain_once().stored == 1
    return [made[0], made[2]]


@pytest.mark.django_db
class TestCommand:
    def test_it_lists_refused_scans_with_their_reason(self, refused, placement):
        lines = run().splitlines()
        assert lines[-1] == "2 refused scans."
        assert sorted(line.split()[0] for line in lines[:-1]) == sorted(hex_id(made) for made in refused)
        assert all(f"placement {placement.pk}" in line and "value too long" in line for line in lines[:-1])

    def test_it_says_when_there_are_none(self, scan_redis):
        assert run() == "No refused scans.\n"

    def test_a_retry_after_the_fix_stores_them_once_and_forgets_them(self, refused, monkeypatch):
        monkeypatch.undo()  # the cause fixed
        assert run("--retry", "all") == "Stored 2 refused scans.\n"
        assert ScanEvent.objects.count() == 3 and run() == "No refused scans.\n"

    def test_a_retry_of_a_deleted_placements_scan_says_there_was_nothing_to_store(self, refused, placement,
                                                                                  monkeypatch):
        monkeypatch.undo()
        placement.delete()  # its scans went with it
        assert run("--retry", "all") == ("Stored 0 refused scans; 2 scans needed nothing (stored before, or its "
                                         "placement is deleted).\n")
        assert run() == "No refused scans.\n"

    def test_a_retry_still_refused_keeps_it_listed(self, refused):
        first = hex_id(refused[0])
        assert run("--retry", str(uuid.UUID(first))).splitlines() == [
            f"{first} is still refused: value too long for type character varying(2)",
            "Stored 0 refused scans; 1 scan still refused."]
        assert ScanEvent.objects.count() == 1 and run().splitlines()[-1] == "2 refused scans."

    def test_a_discard_drops_only_the_one_named(self, refused):
        assert run("--discard", hex_id(refused[0])) == "Discarded 1 refused scan.\n"
        assert run().splitlines()[0].startswith(hex_id(refused[1])) and ScanEvent.objects.count() == 1

    def test_an_unknown_id_is_one_message_and_nothing_is_done(self, refused):
        with pytest.raises(CommandError) as raised:
            run("--discard", hex_id(refused[0]), "not-an-id")
        assert str(raised.value) == "No refused scan has the id “not-an-id”: run qart_refused_scans to list them."
        assert run().splitlines()[-1] == "2 refused scans."

    def test_a_database_away_during_a_retry_is_one_message(self, refused, monkeypatch):
        monkeypatch.undo()

        def away(rows):
            raise OperationalError("connection refused")

        monkeypatch.setattr(drainer, "insert", away)
        with pytest.raises(CommandError, match=r"^The database is away \(connection refused\): 0 scans stored"):
            run("--retry", "all")
        assert run().splitlines()[-1] == "2 refused scans."

    def test_with_redis_away_it_shows_this_hosts_files(self, placement, refused, settings, monkeypatch):
        # a scan refused while Redis was away waits in a file until a drainer (or this command) moves it to Redis
        waiting = event(placement, timezone.now())
        refused_scans.set_aside(waiting, "value too long", None)
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        lines = run().splitlines()
        assert lines[0].startswith("Redis is away") and lines[-1] == "1 refused scan."
        assert lines[1].startswith(hex_id(waiting))
        assert run("--discard", hex_id(waiting)).endswith("Discarded 1 refused scan.\n")
        assert list(refused_scans.folder().iterdir()) == []
        assert run().splitlines()[1:] == ["No refused scans."]  # and with no file, Redis away is said, not raised

    def test_redis_failing_after_its_first_answer_is_one_message(self, refused, monkeypatch):
        # It answered the ping, then failed on the listing: a traceback
        def gone(*args, **kwargs):
            raise RedisConnectionError("Connection reset by peer")

        monkeypatch.setattr(Redis, "hvals", gone)
        with pytest.raises(CommandError) as raised:
            run()
        assert str(raised.value) == ("Redis is away (Connection reset by peer): run again once it answers (a scan "
                                     "stored already is not stored twice).")

    def test_a_password_redis_refuses_is_said_as_such_and_this_hosts_files_are_shown(self, placement, settings,
                                                                                      password_redis):
        # "Redis is away (invalid username-password pair ...)": no wait mends a wrong password
        waiting = event(placement, timezone.now())
        refused_scans.set_aside(waiting, "value too long", None)
        settings.REDIS_URL = password_redis.url_with("wrong-password")
        lines = run().splitlines()
        assert lines[0].startswith(f"Redis at 127.0.0.1:{password_redis.port}/0 refused the password ("), lines[0]
        assert lines[0].endswith(f"): only the refused scans kept on this host, in {refused_scans.folder()}, are "
                                 "shown.")
        assert "wrong-password" not in lines[0] and "away" not in lines[0]
        assert lines[1].startswith(hex_id(waiting)) and lines[-1] == "1 refused scan."

    def test_a_password_redis_refuses_after_its_first_answer_is_one_message_that_does_not_say_wait(
            self, placement, settings, password_redis, monkeypatch):
        # Redis restarted with another requirepass between the command's ping and its listing
        settings.REDIS_URL = password_redis.url
        listed = refused_scans.listed

        def password_changed(client):
            password_redis.change_password()
            return listed(client)

        monkeypatch.setattr(refused_scans, "listed", password_changed)
        with pytest.raises(CommandError) as raised:
            run()
        said = str(raised.value)
        assert said.startswith(f"Redis at 127.0.0.1:{password_redis.port}/0 refused the password ("), said
        assert said.endswith("): run again once REDIS_URL carries the password Redis asks for (a scan stored "
                             "already is not stored twice).")
        assert password_redis.password not in said and "once it answers" not in said

    def test_redis_failing_during_a_retry_keeps_the_scans_set_aside(self, refused, monkeypatch):
        monkeypatch.undo()  # the cause fixed
        hdel = Redis.hdel

        def gone(*args, **kwargs):
            raise RedisConnectionError("Connection reset by peer")

        monkeypatch.setattr(Redis, "hdel", gone)
        with pytest.raises(CommandError, match=r"^Redis is away \(Connection reset by peer\)"):
            run("--retry", "all")
        monkeypatch.setattr(Redis, "hdel", hdel)
        assert ScanEvent.objects.count() == 3 and run().splitlines()[-1] == "2 refused scans."
        assert run("--retry", "all") == ("Stored 0 refused scans; 2 scans needed nothing (stored before, or its "
                                         "placement is deleted).\n")  # not stored twice

    def test_files_it_cannot_collect_are_one_message_and_stay(self, placement, scan_redis, monkeypatch):
        # A folder it cannot delete in (read-only, another user's): a traceback from the collecting
        waiting = event(placement, timezone.now())
        refused_scans.set_aside(waiting, "value too long", None)
        unblock = block_refused_folder(monkeypatch)
        for args in ((), ("--discard", "all")):
            with pytest.raises(CommandError) as raised:
                run(*args)
            assert str(raised.value) == (f"The refused scans' files in {refused_scans.folder()} cannot be read or "
                                         "removed ([Errno 13] Permission denied): run again once they can.")
        unblock()
        assert run().splitlines() == [f"{hex_id(waiting)}  placement {placement.pk}  scanned {waiting['time']}  "
                                      f"refused {refused_scans.listed(scan_redis)[0].refused_at:%Y-%m-%d %H:%M} UTC: "
                                      "value too long", "1 refused scan."]
