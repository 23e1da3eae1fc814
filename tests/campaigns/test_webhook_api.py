"""The webhook API (`campaigns.webhook_api`): owners only (members 403), secret shown once, other teams invisible."""

from __future__ import annotations

import time

import django_rq
import pytest
from django.core.cache import cache
from django.test import override_settings
from redis import Redis
from rest_framework.test import APIClient
from rq import Queue

from campaigns import webhook_pings, webhooks
from campaigns.models import WebhookDelivery, WebhookEndpoint
from qartsite import queues
from tests.conftest import free_port, live_queue


@pytest.fixture
def endpoint(team_users) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/qart",
                                          events=["scan.created"], secret=webhooks.new_secret())


@pytest.fixture(autouse=True)
def _no_pending_tests():
    cache.clear()  # the mark of a queued test lives in the cache, which outlives a test's rollback
    yield
    cache.clear()


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


class TestWebhookApi:
    def test_it_makes_an_endpoint_and_shows_the_secret_only_then(self, team_users):
        response = api(team_users.owner).post("/api/webhooks/", {
            "team": team_users.team.pk, "url": "https://hooks.example.com/a", "events": ["generation.finished"]},
            format="json")
        assert response.status_code == 201 and response.json()["secret"].startswith("whsec_")
        assert response.json()["secret"] == WebhookEndpoint.objects.get().secret
        listed = api(team_users.owner).get("/api/webhooks/").json()["results"]
        assert [row["url"] for row in listed] == ["https://hooks.example.com/a"] and "secret" not in listed[0]

    def test_a_form_body_without_active_makes_an_active_endpoint(self, team_users):
        response = api(team_users.owner).post("/api/webhooks/", {
            "team": team_users.team.pk, "url": "https://hooks.example.com/a", "events": ["generation.finished"]},
            format="multipart")
        assert response.status_code == 201 and response.json()["active"] is True

    def test_it_refuses_a_second_endpoint_for_the_same_address_but_lets_one_be_edited(self, team_users):
        body = {"team": team_users.team.pk, "url": "https://hooks.example.com/a", "events": ["scan.created"]}
        first = api(team_users.owner).post("/api/webhooks/", body, format="json")
        again = api(team_users.owner).post("/api/webhooks/", body, format="json")
        assert again.status_code == 400 and "already sends to this address" in again.json()["url"][0]
        edited = api(team_users.owner).patch(f"/api/webhooks/{first.json()['id']}/", {
            "url": "https://hooks.example.com/a", "events": ["generation.finished"]}, format="json")
        assert edited.status_code == 200 and WebhookEndpoint.objects.count() == 1

    def test_it_keeps_each_event_once(self, team_users):
        response = api(team_users.owner).post("/api/webhooks/", {
            "team": team_users.team.pk, "url": "https://hooks.example.com/a",
            "events": ["scan.created", "generation.finished", "scan.created"]}, format="json")
        assert response.status_code == 201 and response.json()["events"] == ["scan.created", "generation.finished"]

    @pytest.mark.parametrize("body, field", [
        ({"url": "http://hooks.example.com/", "events": ["scan.created"]}, "url"),
        ({"url": "https://hooks.example.com/", "events": ["scan.deleted"]}, "events"),
        ({"url": "https://hooks.example.com/", "events": []}, "events"),
    ])
    def test_it_refuses_bad_input_with_a_400(self, team_users, body, field):
        response = api(team_users.owner).post("/api/webhooks/", {"team": team_users.team.pk, **body}, format="json")
        assert response.status_code == 400 and field in response.json()
        assert not WebhookEndpoint.objects.exists()

    @pytest.mark.parametrize("who", ["teammate", "viewer"])
    def test_it_refuses_members_who_do_not_own_the_team_with_a_403_that_says_why(self, team_users, who):
        response = api(getattr(team_users, who)).post("/api/webhooks/", {
            "team": team_users.team.pk, "url": "https://hooks.example.com/", "events": ["scan.created"]},
            format="json")
        assert response.status_code == 403 and "Only a team owner" in response.json()["detail"]
        assert not WebhookEndpoint.objects.exists()

    def test_it_refuses_another_teams_id_as_if_it_did_not_exist(self, team_users):
        # Like the campaigns API: a 403 here would confirm the team exists.
        body = {"url": "https://hooks.example.com/", "events": ["scan.created"]}
        client = api(team_users.outsider)
        foreign = client.post("/api/webhooks/", {**body, "team": team_users.team.pk}, format="json")
        missing = client.post("/api/webhooks/", {**body, "team": 999999}, format="json")
        assert foreign.status_code == missing.status_code == 400
        assert foreign.json()["team"] == [m.replace("999999", str(team_users.team.pk)) for m in missing.json()["team"]]
        assert not WebhookEndpoint.objects.exists()

    @pytest.mark.parametrize("who", ["teammate", "viewer", "outsider"])
    def test_it_lists_endpoints_and_deliveries_only_to_owners(self, team_users, endpoint, who):
        WebhookDelivery.objects.create(endpoint=endpoint, message_id="m1", event="scan.created", ok=True)
        client = api(getattr(team_users, who))
        assert client.get("/api/webhooks/").json()["results"] == []
        assert client.get("/api/webhook-deliveries/").json()["results"] == []

    @pytest.mark.parametrize("who, status", [("teammate", 403), ("viewer", 403), ("outsider", 404)])
    def test_it_refuses_each_action_of_an_endpoint_to_members_with_403_and_others_with_404(
            self, team_users, endpoint, who, status):
        client = api(getattr(team_users, who))
        answers = [
            client.get(f"/api/webhooks/{endpoint.pk}/"),
            client.patch(f"/api/webhooks/{endpoint.pk}/", {"url": "https://evil.example.com/"}, format="json"),
            client.put(f"/api/webhooks/{endpoint.pk}/", {"team": team_users.team.pk, "url": "https://evil.example.com/",
                                                         "events": ["scan.created"]}, format="json"),
            client.delete(f"/api/webhooks/{endpoint.pk}/"),
            client.post(f"/api/webhooks/{endpoint.pk}/rotate-secret/"),
        ]
        assert [answer.status_code for answer in answers] == [status] * len(answers)
        if status == 403:
            assert all("Only a team owner" in answer.json()["detail"] for answer in answers)
        assert WebhookEndpoint.objects.get() == endpoint
        assert WebhookEndpoint.objects.values_list("url", "secret").get() == (endpoint.url, endpoint.secret)

    def test_it_answers_an_id_that_is_not_a_number_with_404(self, team_users):
        assert api(team_users.owner).get("/api/webhooks/abc/").status_code == 404

    def test_it_lists_deliveries_to_the_owner(self, team_users, endpoint):
        WebhookDelivery.objects.create(endpoint=endpoint, message_id="m1", event="scan.created", ok=False,
                                       error="The receiver answered 500", status_code=500)
        [row] = api(team_users.owner).get("/api/webhook-deliveries/").json()["results"]
        assert row["message_id"] == "m1" and row["status_code"] == 500 and not row["ok"]

    def test_it_filters_deliveries_by_event_and_refuses_an_event_there_is_not(self, team_users, endpoint):
        WebhookDelivery.objects.create(endpoint=endpoint, message_id="m1", event="scan.created", ok=True)
        WebhookDelivery.objects.create(endpoint=endpoint, message_id="ping-0123456789abcdef", event="webhook.ping",
                                       ok=True)
        client = api(team_users.owner)
        [ping] = client.get("/api/webhook-deliveries/?event=webhook.ping").json()["results"]
        assert ping["message_id"] == "ping-0123456789abcdef"
        assert client.get("/api/webhook-deliveries/?event=scan.created").json()["count"] == 1
        # A misspelt event answered an empty list, as if nothing had been sent
        refused = client.get("/api/webhook-deliveries/?event=scan.create")
        assert refused.status_code == 400 and "scan.create is not one of the available choices" in str(refused.json())

    def test_it_rotates_the_secret(self, team_users, endpoint):
        response = api(team_users.owner).post(f"/api/webhooks/{endpoint.pk}/rotate-secret/")
        assert response.status_code == 200 and response.json()["secret"] == WebhookEndpoint.objects.get().secret
        assert response.json()["secret"] != endpoint.secret

    def test_no_cache_keeps_an_answer_that_shows_the_secret(self, team_users, endpoint):
        # A share's link and the page's secret were no-store; the API's create and rotate answers were cacheable.
        client = api(team_users.owner)
        made = client.post("/api/webhooks/", {"url": "https://hooks.example.com/a", "events": ["scan.created"]},
                           format="json")
        rotated = client.post(f"/api/webhooks/{endpoint.pk}/rotate-secret/")
        assert [(r.status_code, r["Cache-Control"]) for r in (made, rotated)] == [(201, "no-store"), (200, "no-store")]

    def test_it_makes_an_endpoint_in_the_only_team_the_owner_owns(self, team_users):
        # As a campaign is made in the caller's only team: `team` was required here alone.
        team_users.owner.memberships.create(team=team_users.other_team, role="editor")  # not owned: no choice
        response = api(team_users.owner).post("/api/webhooks/", {
            "url": "https://hooks.example.com/a", "events": ["scan.created"]}, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["team"] == team_users.team.pk == WebhookEndpoint.objects.get().team_id

    def test_it_asks_for_a_team_when_the_owner_owns_several(self, team_users):
        team_users.owner.memberships.create(team=team_users.other_team, role="owner")
        body = {"url": "https://hooks.example.com/a", "events": ["scan.created"]}
        response = api(team_users.owner).post("/api/webhooks/", body, format="json")
        assert response.status_code == 400 and response.json() == {"team": ["You own more than one team: choose one."]}
        chosen = api(team_users.owner).post("/api/webhooks/", {**body, "team": team_users.other_team.pk}, format="json")
        assert chosen.status_code == 201 and WebhookEndpoint.objects.get().team == team_users.other_team

    def test_it_refuses_a_member_who_owns_no_team_without_a_team_named_with_a_403(self, team_users):
        response = api(team_users.teammate).post("/api/webhooks/", {
            "url": "https://hooks.example.com/a", "events": ["scan.created"]}, format="json")
        assert response.status_code == 403 and "Only a team owner" in response.json()["detail"]
        assert not WebhookEndpoint.objects.exists()

    @pytest.mark.parametrize("method", ["put", "patch"])
    def test_the_create_answer_sent_back_as_a_put_changes_nothing_of_its_secret(self, team_users, method):
        # A client that keeps the create's answer (secret included) and sends it back edited: "Unknown field."
        client = api(team_users.owner)
        made = client.post("/api/webhooks/", {"url": "https://hooks.example.com/a", "events": ["scan.created"]},
                           format="json").json()
        response = getattr(client, method)(f"/api/webhooks/{made['id']}/", {**made, "active": False}, format="json")
        assert response.status_code == 200, response.content
        assert "secret" not in response.json() and response.json()["active"] is False
        assert WebhookEndpoint.objects.values_list("secret", "active").get() == (made["secret"], False)

    def test_it_refuses_a_changed_secret_naming_rotate_secret(self, team_users, endpoint):
        client = api(team_users.owner)
        sent = {**client.get(f"/api/webhooks/{endpoint.pk}/").json(), "secret": webhooks.new_secret()}
        response = client.put(f"/api/webhooks/{endpoint.pk}/", sent, format="json")
        assert response.status_code == 400 and list(response.json()) == ["secret"]
        assert f"/api/webhooks/{endpoint.pk}/rotate-secret/" in response.json()["secret"][0]
        assert WebhookEndpoint.objects.get().secret == endpoint.secret

    def test_it_refuses_a_secret_on_create(self, team_users):
        response = api(team_users.owner).post("/api/webhooks/", {
            "url": "https://hooks.example.com/a", "events": ["scan.created"], "secret": "whsec_mine"}, format="json")
        assert response.status_code == 400 and "made by the server" in response.json()["secret"][0]
        assert not WebhookEndpoint.objects.exists()

    def test_it_switches_a_disabled_endpoint_on_with_a_fresh_start(self, team_users, endpoint):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=False, disabled_reason="failed")
        response = api(team_users.owner).patch(f"/api/webhooks/{endpoint.pk}/", {"active": True}, format="json")
        assert response.status_code == 200
        endpoint.refresh_from_db()
        assert endpoint.active and endpoint.disabled_reason == "" and endpoint.failing_since is None


class TestSendTest:
    def test_it_queues_one_test_at_a_time_and_answers_its_message_id(self, team_users, endpoint, scan_redis):
        queue = django_rq.get_queue(webhooks.QUEUE)
        queue.empty()
        try:
            first = api(team_users.owner).post(f"/api/webhooks/{endpoint.pk}/send-test/")
            assert first.status_code == 202
            message_id = first.json()["message_id"]
            assert queue.job_ids == [message_id] and queue.jobs[0].args == (endpoint.pk, message_id)

            again = api(team_users.owner).post(f"/api/webhooks/{endpoint.pk}/send-test/")
            assert again.status_code == 409 and again.json()["message_id"] == message_id
            assert queue.count == 1
        finally:
            queue.empty()

    @pytest.mark.parametrize("who", ["teammate", "viewer"])
    def test_it_refuses_members_who_do_not_own_the_team_like_the_page(self, team_users, endpoint, who):
        response = api(getattr(team_users, who)).post(f"/api/webhooks/{endpoint.pk}/send-test/")
        assert response.status_code == 403 and "Only a team owner" in response.json()["detail"]
        assert cache.get(webhooks.pending_ping_key(endpoint)) is None

    def test_it_hides_another_teams_endpoint(self, team_users, endpoint):
        theirs = WebhookEndpoint.objects.create(team=team_users.other_team, url="https://rival.example.com/",
                                                events=["scan.created"], secret=webhooks.new_secret())
        assert api(team_users.owner).post(f"/api/webhooks/{theirs.pk}/send-test/").status_code == 404
        assert api(team_users.outsider).post(f"/api/webhooks/{endpoint.pk}/send-test/").status_code == 404
        assert api(team_users.owner).post("/api/webhooks/999999/send-test/").status_code == 404

    def test_it_answers_503_when_the_queue_is_away_and_keeps_no_pending_test(self, team_users, endpoint,
                                                                            monkeypatch):
        dead = Queue(webhooks.QUEUE, connection=Redis(port=free_port(), socket_connect_timeout=1))
        monkeypatch.setattr(webhook_pings.django_rq, "get_queue", lambda name: dead)
        response = api(team_users.owner).post(f"/api/webhooks/{endpoint.pk}/send-test/")
        assert response.status_code == 503 and response["Retry-After"] == "60"
        assert "cannot be reached" in response.json()["detail"]
        assert cache.get(webhooks.pending_ping_key(endpoint)) is None  # the next try goes to the queue again

    def test_it_says_the_queue_refuses_the_sites_password_without_a_retry_after(self, team_users, endpoint,
                                                                                 monkeypatch, password_redis):
        # "cannot be reached. Try again in a minute" and Retry-After: 60, for what no wait mends
        refusing = Queue(webhooks.QUEUE, connection=Redis.from_url(password_redis.url_with("wrong-password")))
        monkeypatch.setattr(webhook_pings.django_rq, "get_queue", lambda name: refusing)
        response = api(team_users.owner).post(f"/api/webhooks/{endpoint.pk}/send-test/")
        assert response.status_code == 503 and "Retry-After" not in response
        assert response.json()["detail"] == ("Test not sent: the delivery queue refuses the site's password. Waiting "
                                             "will not mend it: whoever runs the site must put it right.")
        assert cache.get(webhooks.pending_ping_key(endpoint)) is None

    def test_it_answers_503_at_once_while_the_queue_stalls(self, team_users, endpoint, stalled_queues):
        # A stalled Redis (SIGSTOP, a fault drill) held each test the web timeout again before its 503
        took = []
        for _ in range(2):
            started = time.monotonic()
            response = api(team_users.owner).post(f"/api/webhooks/{endpoint.pk}/send-test/")
            took.append(time.monotonic() - started)
            assert response.status_code == 503 and "cannot be reached" in response.json()["detail"]
        assert took[0] < 1.5 and took[1] < 0.3, took  # one wait of a second, then the breaker answers at once
        assert len(stalled_queues) == 1 and cache.get(webhooks.pending_ping_key(endpoint)) is None

    def test_a_stalled_cache_of_its_own_leaves_the_queue_asked(self, team_users, endpoint, silent_server):
        # CACHE_URL on a server of its own that stalls: the test's mark, asked under the queue's breaker, opened the
        # queue's, and for seconds every create was refused ("the job queue does not answer") and every cancel and
        # webhook skipped a queue that answered all along.
        queue = live_queue(webhooks.QUEUE)
        port, _ = silent_server
        stalled_cache = {"default": {"BACKEND": "qartsite.redis_cache.RedisCache",
                                     "LOCATION": f"redis://127.0.0.1:{port}/0",
                                     "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
        with override_settings(CACHES=stalled_cache):  # left before the teardown clears the cache
            for _ in range(2):
                response = api(team_users.owner).post(f"/api/webhooks/{endpoint.pk}/send-test/")
                assert response.status_code == 503 and "cannot be reached" in response.json()["detail"]
        assert not queues.redis_outage(queue.connection).known()

    def test_it_needs_a_signed_in_user(self, endpoint):
        assert APIClient().post(f"/api/webhooks/{endpoint.pk}/send-test/").status_code == 401


def test_it_answers_another_teams_endpoint_filter_like_a_missing_one(team_users, endpoint):
    theirs = WebhookEndpoint.objects.create(team=team_users.other_team, url="https://rival.example.com/",
                                            events=["scan.created"], secret=webhooks.new_secret())
    client = api(team_users.owner)
    other = client.get(f"/api/webhook-deliveries/?endpoint={theirs.pk}")
    missing = client.get("/api/webhook-deliveries/?endpoint=999999")
    assert other.status_code == missing.status_code == 400 and list(other.json()) == ["endpoint"]
    assert client.get(f"/api/webhook-deliveries/?endpoint={endpoint.pk}").status_code == 200


@pytest.mark.django_db(transaction=True)  # two at once, each with a connection of its own
def test_an_endpoint_switched_off_by_its_deliveries_stays_off_beside_a_patch(team_users, monkeypatch):
    # The PATCH saved every column as it had read them: the endpoint its failing deliveries had just switched off
    # was on again, and kept failing.
    from rest_framework.test import APIClient

    from campaigns import webhook_api, webhooks
    from campaigns.models import WebhookEndpoint
    from tests.conftest import at_once

    endpoint = WebhookEndpoint.objects.create(team=team_users.team, url="https://hooks.example.com/qart",
                                              secret="s" * 32)
    api = APIClient()
    api.force_authenticate(team_users.owner)

    def patch() -> int:
        return api.patch(f"/api/webhooks/{endpoint.pk}/", {"events": ["scan.created"]}, format="json").status_code

    def switch_off() -> int:
        webhooks.disable(WebhookEndpoint.objects.get(pk=endpoint.pk), "Failing for a day.")
        return 200

    paused = (webhook_api.WebhookEndpointSerializer, "update")  # read, about to save
    assert at_once(monkeypatch, paused, patch, switch_off, before=True) == [200, 200]
    endpoint.refresh_from_db()
    assert not endpoint.active and endpoint.events == ["scan.created"]


def test_it_lists_one_teams_endpoints_by_team(team_users, endpoint):
    # `?team=` was ignored: an owner of several teams got every team's endpoints for one team's.
    team_users.owner.memberships.create(team=team_users.other_team, role="owner")
    WebhookEndpoint.objects.create(team=team_users.other_team, url="https://hooks.example.com/other",
                                   events=["scan.created"], secret=webhooks.new_secret())
    client = api(team_users.owner)
    listed = client.get(f"/api/webhooks/?team={team_users.team.pk}").json()["results"]
    assert [row["id"] for row in listed] == [endpoint.pk]
    assert client.get("/api/webhooks/").json()["count"] == 2


def test_it_refuses_a_team_filter_of_a_team_you_do_not_own_like_a_missing_one(team_users, endpoint):
    client = api(team_users.teammate)  # an editor of the team, not an owner
    foreign, missing = client.get(f"/api/webhooks/?team={team_users.team.pk}"), client.get("/api/webhooks/?team=999999")
    assert foreign.status_code == missing.status_code == 400 and foreign.json() == missing.json()
