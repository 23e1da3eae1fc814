"""Webhooks (`campaigns.webhooks`): signed deliveries to a real local receiver, retries, public-address checks,
switching off after 5 days of failure, the drainer / generation / artwork hooks, and the outbox that keeps what Redis
missed."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import timedelta

import django_rq
import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rq import SimpleWorker
from standardwebhooks import Webhook

from campaigns import artwork, drainer, scan_buffer, webhooks
from campaigns.models import Placement, ScanEvent, WebhookDelivery, WebhookEndpoint, WebhookOutbox
from tests.campaigns.concurrently import on_postgresql
from tests.campaigns.conftest import make_art
from tests.campaigns.webhook_receiver import Receiver
from tests.conftest import at_once

ALL_EVENTS = [choice.value for choice in WebhookEndpoint.Event]


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


@pytest.fixture(autouse=True)
def _allow_local_receiver(settings):
    settings.QART_WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def endpoint(team_users, receiver) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(team=team_users.team, url=receiver.url, events=ALL_EVENTS,
                                          secret=webhooks.new_secret())


@pytest.fixture
def queued(monkeypatch) -> list[tuple[list[int], str, list]]:
    """What would be queued: (endpoint ids, event, messages) per enqueue call, every endpoint taken by the queue."""
    calls: list = []

    def enqueue(ids, event, messages) -> list[int]:
        calls.append((list(ids), event, messages))
        return list(ids)

    monkeypatch.setattr(webhooks, "enqueue", enqueue)
    return calls


def scan(placement: Placement, **fields) -> dict:
    made = dict(browser="Safari", os="iOS", device_class="mobile", referer="", accept_language="de", country="DE",
                is_bot=False, visitor_key="v" * 32)
    return scan_buffer.scan_event(placement.pk, timezone.now(), **{**made, **fields})


def verified(receiver: Receiver, endpoint: WebhookEndpoint) -> list[dict]:
    """Every received body, checked by the Standard Webhooks library (raises on a bad signature)."""
    return [Webhook(endpoint.secret).verify(body, headers) for _, headers, body in receiver.requests]


class TestDelivery:
    def test_it_delivers_drained_scans_through_a_real_worker_signed_for_a_standard_webhooks_library(
            self, placement, endpoint, receiver, scan_redis, django_capture_on_commit_callbacks):
        queue = django_rq.get_queue(webhooks.QUEUE)
        queue.empty()
        events = [scan(placement), scan(placement)]
        with django_capture_on_commit_callbacks(execute=True):
            drainer.store_events(events)
        assert queue.count == 1  # one job per endpoint for the batch
        SimpleWorker([queue], connection=queue.connection).work(burst=True)

        payloads = verified(receiver, endpoint)
        assert [p["type"] for p in payloads] == ["scan.created", "scan.created"]
        assert sorted(headers["webhook-id"] for _, headers, _ in receiver.requests) == sorted(
            str(row) for row in ScanEvent.objects.values_list("event_id", flat=True))
        assert payloads[0]["data"]["placement"] == placement.pk
        # Nothing that follows a person leaves the site.
        assert "visitor" not in json.dumps(payloads) and "accept_language" not in json.dumps(payloads)
        assert WebhookDelivery.objects.filter(endpoint=endpoint, ok=True, status_code=204).count() == 2

    def test_it_rejects_a_signature_made_with_another_secret(self, placement, endpoint, receiver):
        webhooks.deliver(endpoint.pk, "scan.created", [("m1", {"x": 1})])
        _, headers, body = receiver.requests[0]
        with pytest.raises(Exception, match="signature"):
            Webhook(webhooks.new_secret()).verify(body, headers)

    def test_it_queues_retries_with_growing_intervals(self, endpoint, scan_redis):
        queue = django_rq.get_queue(webhooks.QUEUE)
        queue.empty()
        webhooks.enqueue([endpoint.pk], "scan.created", [("m1", {})])
        job = queue.jobs[0]
        assert job.retries_left == len(webhooks.RETRY_INTERVALS)
        assert job.retry_intervals == sorted(job.retry_intervals) and job.retry_intervals[0] < job.retry_intervals[-1]
        assert sum(webhooks.RETRY_INTERVALS) <= webhooks.DISABLE_AFTER.total_seconds()
        queue.empty()

    def test_it_resends_only_what_failed_and_counts_attempts(self, endpoint, receiver):
        receiver.statuses = [204, 500]
        messages = [("m1", {"n": 1}), ("m2", {"n": 2}), ("m3", {"n": 3})]
        with pytest.raises(webhooks.DeliveryError, match="answered 500"):
            webhooks.deliver(endpoint.pk, "scan.created", messages)
        assert len(receiver.requests) == 2  # stopped at the first failure: m3 waits for the retry
        webhooks.deliver(endpoint.pk, "scan.created", messages)
        assert [headers["webhook-id"] for _, headers, _ in receiver.requests] == ["m1", "m2", "m2", "m3"]
        assert list(WebhookDelivery.objects.filter(message_id="m2").order_by("attempt")
                    .values_list("attempt", "ok")) == [(1, False), (2, True)]
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None

    def test_a_receiver_trickling_its_answer_is_cut_off_at_the_deadline(self, endpoint, monkeypatch):
        # A header line every 0.3 s stays under every read timeout: it held the worker all teams share for minutes.
        import socket
        import threading
        import time

        monkeypatch.setattr(webhooks, "ATTEMPT_SECONDS", 1.0)
        server = socket.create_server(("127.0.0.1", 0))
        stop = threading.Event()

        def drip() -> None:
            conn, _ = server.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.wait(0.3):
                try:
                    conn.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    break
            conn.close()

        threading.Thread(target=drip, daemon=True).start()
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=f"http://127.0.0.1:{server.getsockname()[1]}/h")
        started = time.monotonic()
        try:
            with pytest.raises(webhooks.DeliveryError, match="did not answer within 1 s"):
                webhooks.deliver(endpoint.pk, "scan.created", [("m1", {})])
            assert time.monotonic() - started < 5
        finally:
            stop.set()
            server.close()
        assert WebhookDelivery.objects.get().error.endswith("did not answer within 1 s.")

    def test_it_does_not_follow_redirects(self, endpoint, receiver):
        receiver.statuses = [302]
        with pytest.raises(webhooks.DeliveryError, match="redirect"):
            webhooks.deliver(endpoint.pk, "scan.created", [("m1", {})])
        assert [path for path, _, _ in receiver.requests] == ["/hook"]

    def test_it_refuses_a_loopback_address_at_delivery_time(self, endpoint, receiver, settings):
        settings.QART_WEBHOOKS_ALLOW_PRIVATE = False
        with pytest.raises(webhooks.DeliveryError, match="not public"):
            webhooks.deliver(endpoint.pk, "scan.created", [("m1", {})])
        assert receiver.requests == []
        error = WebhookDelivery.objects.get().error
        assert error.endswith("resolves to an address that is not public: deliveries go to public addresses only.")

    @pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "::1", "224.0.0.1", "100.64.0.1",
                                         # 127.0.0.1 and 10.0.0.1 inside IPv6: NAT64's prefixes, 6to4, mapped
                                         "64:ff9b::7f00:1", "64:ff9b:1::a00:1", "2002:7f00:1::1", "::ffff:7f00:1"])
    def test_it_refuses_non_public_addresses(self, monkeypatch, settings, address):
        settings.QART_WEBHOOKS_ALLOW_PRIVATE = False
        monkeypatch.setattr(webhooks.socket, "getaddrinfo", lambda *a, **k: [(None, None, None, "", (address, 443))])
        with pytest.raises(webhooks.DeliveryError, match="not public"):
            webhooks.public_address("hooks.example.com", 443)

    @pytest.mark.parametrize("address", ["64:ff9b::5db8:d822", "2002:5db8:d822::1", "2606:2800:220:1::1"])
    def test_it_takes_public_ipv6_including_a_public_ipv4_inside(self, monkeypatch, settings, address):
        settings.QART_WEBHOOKS_ALLOW_PRIVATE = False
        monkeypatch.setattr(webhooks.socket, "getaddrinfo", lambda *a, **k: [(None, None, None, "", (address, 443))])
        assert webhooks.public_address("hooks.example.com", 443) == address

    @pytest.mark.parametrize(("url", "words"), [("https://[64:ff9b::7f00:1]/h", "public addresses only"),
                                                ("https://hooks.example.com:0/h", "Port 0")])
    def test_it_refuses_an_address_it_could_never_send_to_when_saved(self, settings, url, words):
        settings.QART_WEBHOOKS_ALLOW_PRIVATE = False
        with pytest.raises(ValidationError, match=words):
            webhooks.validate_url(url)

    def test_it_connects_to_the_address_it_checked(self, monkeypatch, settings):
        settings.QART_WEBHOOKS_ALLOW_PRIVATE = False
        monkeypatch.setattr(webhooks.socket, "getaddrinfo",
                            lambda *a, **k: [(None, None, None, "", ("93.184.216.34", 443))])
        assert webhooks.public_address("hooks.example.com", 443) == "93.184.216.34"

    def test_it_switches_an_endpoint_off_after_five_days_of_failure_and_tells_the_owners(
            self, endpoint, receiver, team_users):
        team_users.owner.email = "owner@example.com"
        team_users.owner.save()
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=timezone.now() - webhooks.DISABLE_AFTER - timedelta(minutes=1))
        receiver.statuses = [500]
        with pytest.raises(webhooks.DeliveryError):
            webhooks.deliver(endpoint.pk, "scan.created", [("m1", {})])
        endpoint.refresh_from_db()
        assert not endpoint.active and "every delivery failed" in endpoint.disabled_reason
        assert [message.to for message in mail.outbox] == [["owner@example.com"]]
        assert webhooks.deliver(endpoint.pk, "scan.created", [("m2", {})]) == (
            "sent 0; the endpoint is gone or switched off")
        assert len(receiver.requests) == 1

    def test_each_message_goes_to_the_endpoint_as_it_is_when_it_is_sent(self, endpoint, receiver, monkeypatch):
        # a batch of scans takes a while: its secret rotated and its URL changed after the first message
        post, moved, rotated = webhooks.post, Receiver(), webhooks.new_secret()

        def then_changed(url: str, headers: dict, body: bytes) -> int:
            status = post(url, headers, body)
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=moved.url, secret=rotated)
            return status

        monkeypatch.setattr(webhooks, "post", then_changed)
        try:
            assert webhooks.deliver(endpoint.pk, "scan.created", [("m1", {}), ("m2", {}), ("m3", {})]) == "sent 3"
            assert len(verified(receiver, endpoint)) == 1
            endpoint.refresh_from_db()
            assert endpoint.secret == rotated and len(verified(moved, endpoint)) == 2  # signed with the new secret
        finally:
            moved.server.shutdown()
            moved.server.server_close()

    @pytest.mark.django_db(transaction=True)  # foreign keys are checked at commit (PostgreSQL defers them)
    @pytest.mark.parametrize("change", ["switched off", "deleted"])
    def test_an_endpoint_switched_off_or_deleted_during_a_batch_gets_nothing_more(self, endpoint, receiver,
                                                                                  monkeypatch, change):
        post = webhooks.post

        def then_changed(url: str, headers: dict, body: bytes) -> int:
            status = post(url, headers, body)
            found = WebhookEndpoint.objects.filter(pk=endpoint.pk)
            if change == "switched off":
                found.update(active=False)
            else:
                found.delete()
            return status

        monkeypatch.setattr(webhooks, "post", then_changed)
        outcome = webhooks.deliver(endpoint.pk, "scan.created", [("m1", {}), ("m2", {}), ("m3", {})])
        assert outcome == ("sent 1; the endpoint is gone or switched off" if change == "switched off" else
                           "sent 0; the endpoint is gone or switched off")  # deleted during the first post
        assert len(receiver.requests) == 1

    @pytest.mark.django_db(transaction=True)
    @pytest.mark.parametrize("pause", ["collect", "_raw_delete"])
    def test_an_endpoint_deleted_while_a_delivery_is_logged_is_deleted(self, endpoint, receiver, monkeypatch, pause):
        # the delete paused after it collected the delivery log, or deleted it: a delivery logged then referred to
        # a deleted endpoint and failed the delete (on PostgreSQL a 500 of the page or the API)
        from django.db.models import QuerySet
        from django.db.models.deletion import Collector

        from tests.conftest import at_once

        WebhookDelivery.objects.create(endpoint=endpoint, message_id="m0", event="scan.created", ok=True)

        def delete() -> int:
            webhooks.delete_endpoint(WebhookEndpoint.objects.get(pk=endpoint.pk))
            return 204

        outcome = []

        def deliver() -> int:
            outcome.append(webhooks.deliver(endpoint.pk, "scan.created", [("m1", {})]))
            return 200

        paused = (Collector, "collect") if pause == "collect" else (QuerySet, "_raw_delete")
        assert at_once(monkeypatch, paused, delete, deliver) == [204, 200]
        assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()
        assert outcome in (["sent 0; the endpoint is gone or switched off"], ["sent 1"])  # SQLite: one after the other

    def test_it_keeps_an_endpoint_failing_for_less_than_five_days(self, endpoint, receiver):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - timedelta(days=4))
        receiver.statuses = [500]
        with pytest.raises(webhooks.DeliveryError):
            webhooks.deliver(endpoint.pk, "scan.created", [("m1", {})])
        endpoint.refresh_from_db()
        assert endpoint.active and mail.outbox == []


def test_a_test_message_says_how_it_went_when_the_cache_cannot_take_its_mark_off(endpoint, receiver, monkeypatch,
                                                                                  caplog):
    # The mark's look-up in the job's `finally` raised: the job failed with a traceback over a delivered test.
    from django.core.cache import cache
    from redis.exceptions import ConnectionError as RedisConnectionError

    def away(*args, **kwargs):
        raise RedisConnectionError("cache away")

    monkeypatch.setattr(cache, "get", away)
    assert webhooks.ping(endpoint.pk, "ping-0123456789abcdef") == "delivered"
    assert [payload["type"] for payload in verified(receiver, endpoint)] == [webhooks.PING_EVENT]
    assert "its mark is left to expire" in caplog.text


class TestHooks:
    def test_it_queues_one_job_per_endpoint_for_a_drained_batch(self, placement, endpoint, team_users, queued,
                                                               django_capture_on_commit_callbacks):
        second = WebhookEndpoint.objects.create(team=team_users.team, url="https://b.example.com/",
                                                events=["scan.created"], secret=webhooks.new_secret())
        WebhookEndpoint.objects.create(team=team_users.team, url="https://c.example.com/",
                                       events=["generation.finished"], secret=webhooks.new_secret())
        WebhookEndpoint.objects.create(team=team_users.team, url="https://d.example.com/", events=ALL_EVENTS,
                                       secret=webhooks.new_secret(), active=False)
        events = [scan(placement), scan(placement), scan(placement, is_bot=True)]
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            drainer.store_events(events)
        assert queued == []  # nothing before the commit
        for callback in callbacks:
            callback()
        [(ids, event, messages)] = queued
        assert sorted(ids) == sorted([endpoint.pk, second.pk]) and event == "scan.created"
        assert sorted(message_id for message_id, _ in messages) == sorted(str(uuid.UUID(e["id"])) for e in events[:2])

    def test_it_reads_each_scans_team_campaign_and_slug_from_the_drainers_lock(
            self, placement, endpoint, queued, django_capture_on_commit_callbacks):
        # `scans_stored` asked for the batch's placements again, every batch: the locking query reads them now.
        with django_capture_on_commit_callbacks(execute=True), CaptureQueriesContext(connection) as done:
            drainer.store_events([scan(placement)])
        placement_queries = [q["sql"] for q in done.captured_queries
                             if f'FROM "{Placement._meta.db_table}"' in q["sql"]]
        assert len(placement_queries) == 2  # the drainer's lock, and its read once the lock is held
        [(_, _, [(_, data)])] = queued
        assert (data["campaign"], data["placement"], data["slug"]) == (
            placement.campaign_id, placement.pk, placement.slug)

    def test_it_says_which_destination_rule_sent_each_scan_and_nothing_personal(
            self, placement, endpoint, queued, django_capture_on_commit_callbacks):
        events = [scan(placement, rule="ab:1", visitor_key="f" * 32), scan(placement, visitor_key="e" * 32)]
        with django_capture_on_commit_callbacks(execute=True):
            drainer.store_events(events)

        [(_, _, messages)] = queued
        by_id = dict(messages)
        assert by_id[str(uuid.UUID(events[0]["id"]))]["rule"] == "ab:1"
        assert by_id[str(uuid.UUID(events[1]["id"]))]["rule"] == ""
        assert set(by_id[str(uuid.UUID(events[0]["id"]))]) == {
            "scan", "time", "campaign", "placement", "slug", "country", "device_class", "repeat", "rule"}
        assert "f" * 32 not in json.dumps(messages)  # the visitor key that chose the variant stays here

    def test_it_sends_nothing_to_other_teams(self, placement, team_users, queued, django_capture_on_commit_callbacks):
        WebhookEndpoint.objects.create(team=team_users.other_team, url="https://o.example.com/", events=ALL_EVENTS,
                                       secret=webhooks.new_secret())
        with django_capture_on_commit_callbacks(execute=True):
            drainer.store_events([scan(placement)])
        assert queued == []

    def test_it_announces_a_finished_generation(self, team_users, endpoint, queued,
                                                django_capture_on_commit_callbacks):
        from generator import jobs
        from generator.models import GenerationJob

        candidate = make_art(team_users.team, team_users.owner, "https://example.com/")
        GenerationJob.objects.filter(pk=candidate.job_id).update(status="running")
        with django_capture_on_commit_callbacks(execute=True):
            assert jobs._finish(candidate.job_id, "done")
        [(ids, event, [(message_id, data)])] = queued
        assert event == "generation.finished" and data == {"generation": candidate.job_id, "status": "done",
                                                            "placement": None}

    def test_a_generation_ends_only_together_with_its_webhook(self, team_users, endpoint, monkeypatch):
        # The end committed on its own, and the webhook was only queued after it: a worker that died in between
        # left a finished job that nobody announced.
        from generator import jobs
        from generator.models import GenerationJob

        candidate = make_art(team_users.team, team_users.owner, "https://example.com/")
        GenerationJob.objects.filter(pk=candidate.job_id).update(status="running")

        def dies(job) -> None:
            raise SystemExit("the worker stopped")

        monkeypatch.setattr(webhooks, "generation_finished", dies)
        with pytest.raises(SystemExit):
            jobs._finish(candidate.job_id, "done")
        assert GenerationJob.objects.get(pk=candidate.job_id).status == "running"  # the reconciler ends it later

    def test_it_announces_an_artwork_change_once(self, team_users, placement, endpoint, queued,
                                                 django_capture_on_commit_callbacks):
        candidate = make_art(team_users.team, team_users.owner, "https://example.com/poster")
        with django_capture_on_commit_callbacks(execute=True):
            artwork.apply(placement, candidate, user=team_users.owner)
            placement.save()
            artwork.apply(placement, candidate, user=team_users.owner)  # the same artwork again: no event
        [(ids, event, [(message_id, data)])] = queued
        assert event == "placement.artwork_changed" and data["candidate"] == candidate.pk


def kept() -> list[tuple[int, str, list]]:
    return [(row.endpoint_id, row.event, row.messages) for row in WebhookOutbox.objects.order_by("created", "pk")]


class TestOutbox:
    MESSAGES = [("m1", {"generation": 1}), ("m2", {"generation": 2})]

    def test_it_keeps_what_redis_missed_and_queues_it_once_redis_is_back(
            self, team_users, endpoint, receiver, webhooks_queue, django_capture_on_commit_callbacks, caplog):
        webhooks_queue.away()
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.emit(team_users.team.pk, "generation.finished", self.MESSAGES)
        assert kept() == [(endpoint.pk, "generation.finished", [["m1", {"generation": 1}], ["m2", {"generation": 2}]])]
        assert WebhookOutbox.objects.get().next_try <= timezone.now()  # its process gave up: the flush takes it now
        assert webhooks.flush_outbox() == 0 and len(kept()) == 1  # still away: kept

        webhooks_queue.back()
        with caplog.at_level(logging.INFO, logger="campaigns.webhooks"):
            assert webhooks.flush_outbox() == 1
        assert "Queued 1 webhook batches the outbox kept" in caplog.text
        assert kept() == []
        [job] = webhooks_queue.queue.jobs
        assert job.func_name == "campaigns.webhooks.deliver"
        assert job.args == (endpoint.pk, "generation.finished", self.MESSAGES)
        assert webhooks.flush_outbox() == 0 and webhooks_queue.queue.count == 1  # queued once

        SimpleWorker([webhooks_queue.queue], connection=webhooks_queue.queue.connection).work(burst=True)
        assert [headers["webhook-id"] for _, headers, _ in receiver.requests] == ["m1", "m2"]
        assert WebhookDelivery.objects.filter(endpoint=endpoint, ok=True).count() == 2

    def test_a_stalled_redis_is_asked_once_and_what_it_missed_is_queued_once_it_answers(
            self, team_users, endpoint, webhooks_queue, stalled_queues, django_capture_on_commit_callbacks):
        # A stalled Redis (SIGSTOP, a fault drill) held each commit that made events (a cancel, a generation's end, an
        # artwork change) the web timeout again before its rows were left to the flush.
        took = []
        for _ in range(2):
            started = time.monotonic()
            with django_capture_on_commit_callbacks(execute=True):
                webhooks.emit(team_users.team.pk, "generation.finished", self.MESSAGES)
            took.append(time.monotonic() - started)
        assert took[0] < 1.5 and took[1] < 0.3, took  # one wait of a second, then the breaker answers at once
        assert len(stalled_queues) == 1 and len(kept()) == 2
        assert not WebhookOutbox.objects.filter(next_try__gt=timezone.now()).exists()  # the flush takes them now

        webhooks_queue.back()
        assert webhooks.flush_outbox() == 2 and kept() == [] and webhooks_queue.queue.count == 2

    def test_the_normal_path_queues_once_and_keeps_nothing(self, team_users, endpoint, webhooks_queue,
                                                           django_capture_on_commit_callbacks):
        table = WebhookOutbox._meta.db_table
        with CaptureQueriesContext(connection) as in_transaction, \
                django_capture_on_commit_callbacks(execute=False) as callbacks:
            webhooks.emit(team_users.team.pk, "generation.finished", self.MESSAGES)
        assert [q["sql"].split()[0] for q in in_transaction.captured_queries if table in q["sql"]] == ["INSERT"]
        # Committed, not queued yet: a flush now leaves it to the process that is about to queue it.
        assert webhooks.flush_outbox() == 0 and len(kept()) == 1

        with CaptureQueriesContext(connection) as after_commit:
            for callback in callbacks:
                callback()
        assert [q["sql"].split()[0] for q in after_commit.captured_queries] == ["DELETE"]
        assert webhooks_queue.queue.count == 1 and kept() == []
        assert webhooks.flush_outbox() == 0 and webhooks_queue.queue.count == 1

    def test_a_rolled_back_transaction_queues_nothing_and_keeps_nothing(
            self, team_users, endpoint, webhooks_queue, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
            with transaction.atomic():
                webhooks.emit(team_users.team.pk, "generation.finished", self.MESSAGES)
                raise RuntimeError("the job's end failed")
        assert callbacks == [] and kept() == []
        assert webhooks.flush_outbox() == 0 and webhooks_queue.queue.count == 0

    def test_it_queues_in_created_order(self, team_users, endpoint, webhooks_queue):
        now = timezone.now()
        for n, seconds_ago in enumerate((10, 30, 20)):
            WebhookOutbox.objects.create(endpoint=endpoint, event="scan.created", messages=[[f"m{n}", {}]],
                                         created=now - timedelta(seconds=seconds_ago), next_try=now)
        assert webhooks.flush_outbox() == 3
        assert [job.args[2] for job in webhooks_queue.queue.jobs] == [[("m1", {})], [("m2", {})], [("m0", {})]]

    def test_it_drops_what_it_kept_for_endpoints_deleted_or_switched_off(
            self, team_users, endpoint, webhooks_queue, django_capture_on_commit_callbacks, caplog):
        second = WebhookEndpoint.objects.create(team=team_users.team, url="https://b.example.com/",
                                                events=ALL_EVENTS, secret=webhooks.new_secret())
        webhooks_queue.away()
        with django_capture_on_commit_callbacks(execute=True):
            webhooks.emit(team_users.team.pk, "generation.finished", self.MESSAGES)
        assert len(kept()) == 2
        gone = second.pk
        webhooks.delete_endpoint(second)  # its rows go with it
        assert [endpoint_id for endpoint_id, _, _ in kept()] == [endpoint.pk]
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False)
        # A row written while its endpoint was being deleted (no constraint holds it back) is dropped too.
        WebhookOutbox.objects.create(endpoint_id=gone, event="scan.created", messages=[], next_try=timezone.now())

        webhooks_queue.back()
        with caplog.at_level(logging.INFO, logger="campaigns.webhooks"):
            assert webhooks.flush_outbox() == 0
        assert kept() == [] and webhooks_queue.queue.count == 0
        assert "dropped 2 of endpoints deleted or switched off" in caplog.text


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_flushes_at_once_queue_each_kept_row_once(team_users, monkeypatch):
    endpoint = WebhookEndpoint.objects.create(team=team_users.team, url="https://a.example.com/", events=ALL_EVENTS,
                                              secret=webhooks.new_secret())
    for n in range(3):
        WebhookOutbox.objects.create(endpoint=endpoint, event="scan.created", messages=[[f"m{n}", {}]],
                                     next_try=timezone.now())
    monkeypatch.setattr(webhooks, "FLUSH_BATCH", 2)
    queued = []

    def enqueue(ids, event, messages) -> list[int]:
        queued.extend(message_id for message_id, _ in messages)
        return list(ids)

    monkeypatch.setattr(webhooks, "enqueue", enqueue)
    # The first holds its batch (m0, m1) while the second runs: the second takes only what is left, without waiting.
    assert at_once(monkeypatch, (webhooks, "enqueue"), webhooks.flush_outbox, webhooks.flush_outbox) == [2, 1]
    assert sorted(queued) == ["m0", "m1", "m2"]
    assert not WebhookOutbox.objects.exists()
