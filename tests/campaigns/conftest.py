"""Fixtures shared by the campaign tests: the owner's team's spring campaign and a placement in it, its scans, the
short link's buffer, and the webhooks' queue; and helpers the dashboard pages' tests share."""

from __future__ import annotations

import os
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from campaigns import links, redirects, refused_scans, rollup_rebuilds, scan_buffer, webhooks
from campaigns.models import Campaign, Placement, ScanEvent
from tests.conftest import free_port, live_queue


@pytest.fixture
def campaign(team_users) -> Campaign:
    return Campaign.objects.create(team=team_users.team, name="Spring Sale", destination="https://shop.example.com/")


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station poster", kind="poster")


@pytest.fixture
def scans(placement):
    """Two people and one link-preview bot; all from a client address that must never be exported."""
    now = timezone.now()
    made = [
        ScanEvent.objects.create(placement=placement, device_class="mobile", os="iOS", browser="Mobile Safari",
                                 country="DE", referer="https://t.co/x", client_hash="c0ffee0123456789",
                                 accept_language="de-DE", rule="ios"),
        ScanEvent.objects.create(placement=placement, device_class="desktop", os="Windows", browser="Chrome",
                                 referer="=HYPERLINK(\"https://evil.example\")", client_hash="c0ffee0123456789"),
        ScanEvent.objects.create(placement=placement, device_class="bot", os="Other", browser="Slackbot", is_bot=True),
    ]
    ScanEvent.objects.filter(pk=made[1].pk).update(time=now - timedelta(days=10))
    rollup_rebuilds.rebuild(Placement.objects.all())  # what the drainer keeps as it stores scans
    return made


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def own_link(placement: Placement) -> str:
    """The placement's link as its codes carry it (`Placement.short_url`: in capitals for a slug in capitals)."""
    return links.code_link(f"http://testserver/r/{placement.slug}", placement.campaign.team.capital_scheme)


PLACEMENT_DATA = {"name": "Window sticker", "kind": "poster", "location": "Shop window", "active": "on"}


def forget_short_link_state() -> None:
    redirects._links.clear()
    redirects.database_outage.end()
    scan_buffer.redis_outage.end()
    scan_buffer.spool_outage.end()


@pytest.fixture(autouse=True)
def _short_link_state(_scan_buffer_keys):
    """Every test starts with no link copy and no known outage, and leaves nothing in Redis (its own keys: see
    `_scan_buffer_keys`)."""
    client = scan_buffer.redis_client()  # taken now: a test may point REDIS_URL elsewhere
    forget_short_link_state()
    yield
    forget_short_link_state()
    try:
        client.delete(scan_buffer.stream_key(), scan_buffer.links_key(), refused_scans.refused_key())
    except RedisError:
        pass


@pytest.fixture
def scan_redis() -> Redis:
    """The Redis at REDIS_URL, for tests of the stream (make test starts one); skipped without it, except in CI."""
    client = scan_buffer.redis_client()
    try:
        client.ping()
    except RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"no Redis at {os.environ.get('REDIS_URL', 'the default URL')} (make test starts one)")
    return client


class WebhooksQueue:
    """The real `webhooks` queue (`queue`, emptied before and after the test), and a switch for where
    `campaigns.webhooks` queues: a port nothing listens on (`away`, Redis down) or the real queue again (`back`)."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.queue = live_queue(webhooks.QUEUE)
        self.dead = Queue(webhooks.QUEUE, connection=Redis(port=free_port(), socket_connect_timeout=1))

    def away(self) -> None:
        self.monkeypatch.setattr(django_rq, "get_queue", lambda name: self.dead)

    def back(self) -> None:
        self.monkeypatch.setattr(django_rq, "get_queue", lambda name: self.queue)


@pytest.fixture
def webhooks_queue(monkeypatch):
    made = WebhooksQueue(monkeypatch)
    made.queue.empty()
    yield made
    made.queue.empty()


def make_art(team, owner, content: str, verdict: str = "pass", probability: float = 0.95, size: int = 256,
             judged_by: str | None = None, **job_fields):
    """A finished generation of `team` with one candidate whose image really carries `content` (a plain code,
    drawn like a control image) and whose job keeps that control image: what restamp and print files read. Its
    stored verdict is taken as the active verifier model's unless `judged_by` names another model."""
    import io

    from django.core.files.base import ContentFile

    from generator import verifier_models
    from generator.core.codes import qr
    from generator.models import Candidate, GenerationJob, Prompt

    code = qr.encode(content, max_version=40)
    prompt = Prompt.objects.create(owner=owner, team=team, text="a lighthouse at dusk")
    job = GenerationJob.objects.create(owner=owner, team=team, prompt=prompt, content=content, status="done",
                                       size=size, **job_fields)

    def png(image) -> ContentFile:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return ContentFile(buffer.getvalue())

    job.control_image.save(f"control-{job.pk}.png", png(qr.render_control_image(code, size)), save=True)
    candidate = Candidate(job=job, index=0, seed=8, scan_probability=probability, verdict=verdict, rank=1,
                          verifier_model=judged_by if judged_by is not None else verifier_models.active_model().id)
    candidate.image.save(f"candidate-{job.pk}.png", png(qr.render_control_image(code, size, style="dots")),
                         save=True)
    return candidate


def unreadable_to_the_active_model(candidate):
    """`candidate` stored as judged by a model no longer active, its image a blank square: choosing it verifies it
    again (`verifier_models.current_verdict`), and it fails."""
    import io

    from django.core.files.base import ContentFile
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), "white").save(buffer, format="PNG")
    candidate.image.save(f"blank-{candidate.pk}.png", ContentFile(buffer.getvalue()), save=False)
    candidate.verifier_model = "logistic-v0-retired"
    candidate.save()
    return candidate
