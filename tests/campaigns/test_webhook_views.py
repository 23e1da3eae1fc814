"""The team's webhook page (`campaigns.webhook_views`): owners only, secrets shown once, tests, CSRF."""

from __future__ import annotations

import re
from datetime import timedelta

import django_rq
import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from redis import Redis
from rq import Queue, SimpleWorker

from campaigns import webhook_pings, webhooks
from campaigns.models import WebhookDelivery, WebhookEndpoint, WebhookOutbox
from tests.campaigns.webhook_receiver import Receiver
from tests.conftest import free_port


@pytest.fixture(autouse=True)
def _no_pending_tests():
    cache.clear()  # the mark of a queued test lives in the cache, which outlives a test's rollback
    yield
    cache.clear()


@pytest.fixture
def endpoint(team_users) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/qart",
                                          events=["scan.created"], secret=webhooks.new_secret())


def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


class TestWebhookPage:
    def test_it_adds_an_endpoint_and_shows_its_secret_once(self, client, team_users):
        signed_in(client, team_users.owner)
        url = reverse("campaigns:webhooks", args=[team_users.team.pk])
        posted = client.post(url, {"url": "https://hooks.example.com/qart", "events": ["scan.created",
                                                                                       "placement.alert"]})
        endpoint = WebhookEndpoint.objects.get()
        # Redirected: a reload of the answer to the POST sent it again and added a second endpoint.
        # No fragment: a page opened at one ignores the secret's autofocus.
        assert posted.status_code == 302 and posted["Location"] == url
        response = client.get(url)
        assert endpoint.team == team_users.team and endpoint.events == ["scan.created", "placement.alert"]
        assert endpoint.secret.startswith("whsec_") and endpoint.secret in response.content.decode()
        assert response["Cache-Control"] == "no-store"
        assert endpoint.secret not in client.get(url).content.decode()  # once

    def test_it_refuses_a_second_endpoint_for_the_same_address(self, client, team_users):
        # Every event would arrive twice, one copy signed with a secret the receiver does not hold.
        signed_in(client, team_users.owner)
        url = reverse("campaigns:webhooks", args=[team_users.team.pk])
        data = {"url": "https://hooks.example.com/qart", "events": ["scan.created"]}
        assert client.post(url, data).status_code == 302
        again = client.post(url, data)
        assert again.status_code == 400 and "already sends to this address" in again.content.decode()
        assert WebhookEndpoint.objects.count() == 1

    @pytest.mark.parametrize("address", ["http://hooks.example.com/", "ftp://x.example.com/", "not a url",
                                         "https://user:pw@hooks.example.com/", "https://[::1", "https://h.example:x/",
                                         "https://169.254.169.254/latest", "https://10.0.0.1/", "https://[::1]/",
                                         "https://localhost/x", "https://api.localhost./x"])
    def test_it_refuses_bad_addresses_with_one_message(self, client, team_users, address):
        signed_in(client, team_users.owner)
        response = client.post(reverse("campaigns:webhooks", args=[team_users.team.pk]),
                               {"url": address, "events": ["scan.created"]})
        assert response.status_code == 400 and WebhookEndpoint.objects.count() == 0
        assert any(words in response.content.decode() for words in ("https://", "password", "public addresses only"))

    @pytest.mark.parametrize("who, status", [("teammate", 403), ("viewer", 403), ("outsider", 404)])
    def test_it_is_for_owners_only(self, client, team_users, endpoint, who, status):
        signed_in(client, getattr(team_users, who))
        assert client.get(reverse("campaigns:webhooks", args=[team_users.team.pk])).status_code == status
        for name in ("webhook_rotate", "webhook_test", "webhook_enable", "webhook_delete"):
            url = reverse(f"campaigns:{name}", args=[team_users.team.pk, endpoint.pk])
            assert client.post(url).status_code == status
        assert WebhookEndpoint.objects.get().secret == endpoint.secret

    def test_it_hides_another_teams_endpoint_behind_the_owners_own_team(self, client, team_users, endpoint):
        signed_in(client, team_users.outsider)
        url = reverse("campaigns:webhook_delete", args=[team_users.other_team.pk, endpoint.pk])
        assert client.post(url).status_code == 404 and WebhookEndpoint.objects.exists()

    def test_it_rotates_the_secret_and_shows_the_new_one(self, client, team_users, endpoint):
        signed_in(client, team_users.owner)
        posted = client.post(reverse("campaigns:webhook_rotate", args=[team_users.team.pk, endpoint.pk]))
        assert posted.status_code == 302
        response = client.get(posted["Location"])
        endpoint_after = WebhookEndpoint.objects.get()
        assert endpoint_after.secret != endpoint.secret and endpoint_after.secret in response.content.decode()
        assert endpoint_after.secret not in client.get(posted["Location"]).content.decode()

    def test_it_queues_a_test_and_lists_its_result_once_the_worker_sent_it(self, client, team_users, settings,
                                                                            scan_redis):
        settings.QART_WEBHOOKS_ALLOW_PRIVATE = True
        queue = django_rq.get_queue(webhooks.QUEUE)
        queue.empty()
        receiver = Receiver()
        try:
            made = WebhookEndpoint.objects.create(team=team_users.team, url=receiver.url, events=["scan.created"],
                                                  secret=webhooks.new_secret())
            signed_in(client, team_users.owner)
            response = client.post(reverse("campaigns:webhook_test", args=[team_users.team.pk, made.pk]))
            # Nothing is sent from the web process: the test waits on the queue.
            assert response.status_code == 302 and receiver.requests == [] and not WebhookDelivery.objects.exists()
            assert queue.count == 1
            waiting = client.get(response["Location"])
            assert waiting["Refresh"] == "2" and "Test queued for" in waiting.content.decode()
            assert 'data-pending-test="waiting"' in waiting.content.decode()

            SimpleWorker([queue], connection=queue.connection).work(burst=True)
            done = client.get(response["Location"])
        finally:
            receiver.server.shutdown()
            receiver.server.server_close()
        delivery = WebhookDelivery.objects.get()
        assert delivery.event == "webhook.ping" and delivery.ok and delivery.status_code == 204
        assert len(receiver.requests) == 1 and receiver.requests[0][1]["webhook-id"] == delivery.message_id
        page = done.content.decode()
        assert "Refresh" not in done and "data-pending-test" not in page
        assert delivery.message_id in page and "webhook.ping" in page

    def test_it_lists_a_failed_test_with_the_reason(self, client, team_users, settings, scan_redis):
        settings.QART_WEBHOOKS_ALLOW_PRIVATE = True
        queue = django_rq.get_queue(webhooks.QUEUE)
        queue.empty()
        receiver = Receiver()
        receiver.statuses = [500]
        try:
            made = WebhookEndpoint.objects.create(team=team_users.team, url=receiver.url, events=["scan.created"],
                                                  secret=webhooks.new_secret())
            signed_in(client, team_users.owner)
            location = client.post(reverse("campaigns:webhook_test", args=[team_users.team.pk, made.pk]))["Location"]
            SimpleWorker([queue], connection=queue.connection).work(burst=True)
        finally:
            receiver.server.shutdown()
            receiver.server.server_close()
        assert queue.count == 0 and len(receiver.requests) == 1  # one attempt: a test is not retried
        assert "The receiver answered 500" in client.get(location).content.decode()

    def test_it_queues_one_test_per_endpoint_at_a_time(self, client, team_users, settings, scan_redis):
        settings.QART_WEBHOOKS_ALLOW_PRIVATE = True
        queue = django_rq.get_queue(webhooks.QUEUE)
        queue.empty()
        receiver = Receiver()
        try:
            made = WebhookEndpoint.objects.create(team=team_users.team, url=receiver.url, events=["scan.created"],
                                                  secret=webhooks.new_secret())
            signed_in(client, team_users.owner)
            url = reverse("campaigns:webhook_test", args=[team_users.team.pk, made.pk])
            first = client.post(url)
            again = client.post(url, follow=True)
            assert queue.count == 1 and again.redirect_chain[0][0] == first["Location"]
            assert "A test is already queued for" in again.content.decode()
            SimpleWorker([queue], connection=queue.connection).work(burst=True)
            # Its result is logged: the next test may go.
            assert client.post(url)["Location"] != first["Location"] and queue.count == 1
        finally:
            receiver.server.shutdown()
            receiver.server.server_close()
            queue.empty()
        assert len(receiver.requests) == 1

    def test_it_says_when_no_worker_took_the_test(self, client, team_users, endpoint, scan_redis):
        queue = django_rq.get_queue(webhooks.QUEUE)
        queue.empty()
        signed_in(client, team_users.owner)
        location = client.post(reverse("campaigns:webhook_test", args=[team_users.team.pk, endpoint.pk]))["Location"]
        job = queue.jobs[0]
        job.enqueued_at = job.enqueued_at - webhook_pings.PING_PATIENCE - timedelta(seconds=1)
        job.save()
        page = client.get(location)
        assert "Refresh" not in page and 'data-pending-test="stuck"' in page.content.decode()
        assert "rqworker webhooks" in page.content.decode()
        queue.empty()

    def test_it_shows_no_other_teams_test(self, client, team_users, endpoint, scan_redis):
        theirs = WebhookEndpoint.objects.create(team=team_users.other_team, url="https://rival.example.com/",
                                                events=["scan.created"], secret=webhooks.new_secret())
        django_rq.get_queue(webhooks.QUEUE).empty()
        message_id = webhook_pings.queue_ping(theirs)
        signed_in(client, team_users.owner)
        page = client.get(reverse("campaigns:webhooks", args=[team_users.team.pk]) + f"?test={message_id}")
        assert page.status_code == 200 and "data-pending-test" not in page.content.decode()
        assert "Refresh" not in page
        django_rq.get_queue(webhooks.QUEUE).empty()

    def test_it_says_so_in_one_line_when_the_queue_is_away(self, client, team_users, endpoint, monkeypatch):
        dead = Queue(webhooks.QUEUE, connection=Redis(port=free_port(), socket_connect_timeout=1))
        monkeypatch.setattr(webhook_pings.django_rq, "get_queue", lambda name: dead)
        signed_in(client, team_users.owner)
        response = client.post(reverse("campaigns:webhook_test", args=[team_users.team.pk, endpoint.pk]), follow=True)
        assert response.status_code == 200 and "Test not sent: the delivery queue cannot be reached" in (
            response.content.decode())
        assert not WebhookDelivery.objects.exists()
        # Nothing was queued, so nothing waits: the next click tries the queue again.
        again = client.post(reverse("campaigns:webhook_test", args=[team_users.team.pk, endpoint.pk]), follow=True)
        assert "Test not sent" in again.content.decode()

    def test_it_says_the_queue_refuses_the_sites_password_not_to_try_again(self, client, team_users, endpoint,
                                                                            monkeypatch, password_redis):
        # "cannot be reached. Try again in a minute": no minute mends a password. Where Redis is only to superusers.
        refusing = Queue(webhooks.QUEUE, connection=Redis.from_url(password_redis.url_with("wrong-password")))
        monkeypatch.setattr(webhook_pings.django_rq, "get_queue", lambda name: refusing)
        url = reverse("campaigns:webhook_test", args=[team_users.team.pk, endpoint.pk])
        page = signed_in(client, team_users.owner).post(url, follow=True).content.decode()
        assert ("Test not sent: the delivery queue refuses the site&#x27;s password. Waiting will not mend it: "
                "whoever runs the site must put it right.") in page
        assert "Try again in a minute" not in page and f"127.0.0.1:{password_redis.port}" not in page
        team_users.owner.is_staff = True  # a team's staff: its own people, not the site's
        team_users.owner.save(update_fields=["is_staff"])
        assert f"127.0.0.1:{password_redis.port}" not in client.post(url, follow=True).content.decode()
        team_users.owner.is_superuser = True
        team_users.owner.save(update_fields=["is_superuser"])
        page = client.post(url, follow=True).content.decode()
        assert f"Redis at 127.0.0.1:{password_redis.port}/0 refused the password" in page
        assert "wrong-password" not in page and password_redis.password not in page
        assert not WebhookDelivery.objects.exists()

    def test_it_says_when_events_wait_for_the_delivery_queue(self, client, team_users, endpoint):
        signed_in(client, team_users.owner)
        url = reverse("campaigns:webhooks", args=[team_users.team.pk])
        kept = WebhookOutbox.objects.create(endpoint=endpoint, event="scan.created", messages=[["m1", {}]],
                                            next_try=timezone.now() + timedelta(minutes=1))
        assert "data-waiting-events" not in client.get(url).content.decode()  # being queued by its process
        WebhookOutbox.objects.filter(pk=kept.pk).update(next_try=timezone.now())  # its queuing failed
        assert "data-waiting-events" in client.get(url).content.decode()

    def test_it_shows_why_an_endpoint_was_switched_off_and_switches_it_on(self, client, team_users, endpoint):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False, disabled_reason="Every delivery failed.")
        signed_in(client, team_users.owner)
        url = reverse("campaigns:webhooks", args=[team_users.team.pk])
        assert "Switched off. Every delivery failed." in client.get(url).content.decode()
        client.post(reverse("campaigns:webhook_enable", args=[team_users.team.pk, endpoint.pk]))
        assert WebhookEndpoint.objects.get().active

    def test_it_deletes_an_endpoint(self, client, team_users, endpoint):
        signed_in(client, team_users.owner)
        page = client.get(reverse("campaigns:webhooks", args=[team_users.team.pk])).content.decode()
        for name in ("webhook_delete", "webhook_rotate"):  # the browser asks first (tests/e2e/test_undoable_actions)
            action = reverse(f"campaigns:{name}", args=[team_users.team.pk, endpoint.pk])
            assert re.search(f'action="{action}" data-confirm="[^"]*cannot be undone|action="{action}" '
                             'data-confirm="[^"]*refuses them', page)
        client.post(reverse("campaigns:webhook_delete", args=[team_users.team.pk, endpoint.pk]))
        assert not WebhookEndpoint.objects.exists()

    def test_it_needs_the_csrf_token(self, team_users, endpoint):
        client = signed_in(Client(enforce_csrf_checks=True), team_users.owner)
        response = client.post(reverse("campaigns:webhook_delete", args=[team_users.team.pk, endpoint.pk]))
        assert response.status_code == 403 and WebhookEndpoint.objects.exists()
