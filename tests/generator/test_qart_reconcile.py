"""python manage.py qart_reconcile: one pass of the reconciler, what it did in one line, one message when it cannot."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from redis import Redis

from generator import jobs, reconcile
from generator.models import GenerationJob, Prompt

pytestmark = pytest.mark.django_db(transaction=True)  # re-queueing enqueues on commit


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("qart_reconcile", *args, stdout=out)
    return out.getvalue().strip()


def test_it_notes_an_orphan_then_acts_on_it_without_the_grace_period(gpu_queue):
    gpu_queue.connection.delete(reconcile.ORPHANS_KEY)
    user = get_user_model().objects.create(username="maker")
    job = GenerationJob.objects.create(owner=user, prompt=Prompt.remember(user, "a lighthouse", ""),
                                       content="https://qart.example/r/AbC123")  # queued, never reached Redis
    assert run() == f"Jobs orphaned, within the grace period #{job.pk}."
    assert run("--grace", "0") == f"Jobs re-queued #{job.pk}."
    assert run("--grace", "0") == "No orphaned jobs."
    assert gpu_queue.fetch_job(f"qart-generation-{job.pk}") is not None


def test_it_says_so_in_one_line_when_redis_cannot_be_reached(monkeypatch):
    unreachable, get_queue = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1), jobs.django_rq.get_queue
    monkeypatch.setattr(reconcile.django_rq, "get_queue", lambda name: get_queue(name, connection=unreachable))
    with pytest.raises(CommandError, match=r"^The job queue \(Redis\) cannot be reached .*; nothing was reconciled"):
        run()


def test_it_says_redis_refused_its_password_not_that_redis_cannot_be_reached(monkeypatch, password_redis):
    # "cannot be reached": its operator waited for a Redis that answered all along, refusing the password
    refusing, get_queue = Redis.from_url(password_redis.url_with("wrong-password")), jobs.django_rq.get_queue
    monkeypatch.setattr(reconcile.django_rq, "get_queue", lambda name: get_queue(name, connection=refusing))
    with pytest.raises(CommandError) as raised:
        run()
    said = str(raised.value)
    assert said == (f"Redis at 127.0.0.1:{password_redis.port}/0 refused the password (invalid username-password "
                    "pair or user is disabled.); nothing was reconciled. Run it again once REDIS_URL carries the "
                    "password Redis asks for."), said
    assert "wrong-password" not in said


def test_it_refuses_a_negative_grace_period():
    with pytest.raises(CommandError, match="--grace must be 0 or more seconds, got -1.0"):
        run("--grace", "-1")


@pytest.mark.parametrize("seconds", ["-1", "nan", "inf"])
def test_it_refuses_a_grace_that_is_no_time(seconds):
    # NaN was read as a grace period and the pass ran (every comparison with NaN is false).
    with pytest.raises(CommandError, match=r"^--grace must be 0 or more seconds"):
        run(f"--grace={seconds}")
