"""Fixtures shared by the campaign tests: the owner's team's spring campaign and a placement in it, the short link's
buffer, and the webhooks' queue."""

from __future__ import annotations

import os

import django_rq
import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from campaigns import redirects, scan_buffer, webhooks
from campaigns.models import Campaign, Placement
from tests.conftest import free_port, live_queue


@pytest.fixture
def campaign(team_users) -> Campaign:
    return Campaign.objects.create(team=team_users.team, name="Spring Sale", destination="https://shop.example.com/")


@pytest.fixture
def placement(campaign) -> Placement:
    return Placement.objects.create(campaign=campaign, name="Station poster", kind="poster")


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
        client.delete(scan_buffer.stream_key(), scan_buffer.links_key())
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
