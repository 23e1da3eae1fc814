"""qart_sweep: a small sweep end to end through a real Redis and worker, resumption, status and bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generator.evals import sweeps
from generator.models import EvalRun, EvalSample, GenerationJob


@pytest.fixture
def inputs(tmp_path):
    prompts, contents = tmp_path / "prompts.txt", tmp_path / "contents.txt"
    prompts.write_text("# two prompts\na koi pond at dawn\nweathered oak bark\n", encoding="utf-8")
    contents.write_text("https://qart.example/r/AbC123xY\n", encoding="utf-8")
    return prompts, contents


def sweep(*args: str, inputs=None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    files = ["--prompts", str(inputs[0]), "--contents", str(inputs[1])] if inputs else []
    call_command("qart_sweep", *files, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


SMALL = ("--name", "smoke", "--team", "Acme", "--user", "owner", "--grid", "conditioning_scale=1.0,1.5",
         "--base", "steps=2", "size=256", "-n", "2")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)  # the worker process must see committed rows
def test_it_runs_a_small_sweep_end_to_end_and_a_rerun_repeats_nothing(team_users, gpu_queue, start_worker, inputs):
    out, err = sweep(*SMALL, inputs=inputs)
    assert "4 samples: 0 already done, 4 enqueued" in out
    assert "Started sweep “smoke” of team “Acme”: 2 prompt(s) × 1 content(s) × 2 configuration(s)" in err
    assert "0/4 done (0%), 4 queued" in out and gpu_queue.count == 4

    worker = start_worker(burst=True)
    assert worker.wait(timeout=600) == 0, Path(worker.log_path).read_text()[-3000:]

    run = EvalRun.objects.get(team=team_users.team, name="smoke")
    samples = list(run.samples.all())
    assert len(samples) == 4 and {s.config_key for s in samples} == {"conditioning_scale=1.0",
                                                                     "conditioning_scale=1.5"}
    for sample in samples:
        assert sample.status == "done", sample.error
        assert len(sample.scores) == 2 and all(0.0 <= c["scan_probability"] <= 1.0 for c in sample.scores)
        assert all(c["aesthetic_score"] is not None and c["image"] and not c["repaired"] for c in sample.scores)
        assert sample.generation_seconds > 0 and sample.total_seconds >= sample.generation_seconds
        assert sample.finished is not None
    # Paired: both configurations of a prompt drew the same seeds.
    seeds = {}
    for sample in samples:
        seeds.setdefault(sample.prompt, set()).add(tuple(c["seed"] for c in sample.scores))
    assert all(len(drawn) == 1 for drawn in seeds.values())

    jobs_before = GenerationJob.objects.count()
    out, err = sweep(*SMALL, inputs=inputs)
    assert "4 samples: 4 already done, 0 enqueued" in out and "Resumed sweep “smoke”" in err
    assert GenerationJob.objects.count() == jobs_before == 4 and gpu_queue.count == 0

    out, _ = sweep("--name", "smoke", "--team", "Acme", "--status")
    assert "smoke: 4/4 done (100%)" in out and "      2/2     conditioning_scale=1.0" in out
    run.refresh_from_db()
    assert run.engine_label.endswith("base") and f"engine {run.engine_label}" in out
    out, _ = sweep("--name", "smoke", "--team", "Acme", "--status", "--wait")  # nothing left: returns at once
    assert out.strip().endswith("smoke: 4/4 done (100%)")


@pytest.mark.django_db
def test_it_re_enqueues_a_failed_sample_on_a_rerun(team_users, gpu_queue, inputs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sweep(*SMALL, inputs=inputs)
    sample = EvalSample.objects.select_related("job").first()
    GenerationJob.objects.filter(pk=sample.job_id).update(status="failed", error="CUDA out of memory")
    sample.record(GenerationJob.objects.get(pk=sample.job_id))
    out, _ = sweep("--name", "smoke", "--team", "Acme", "--status")
    assert "0/4 done (0%), 3 queued, 1 failed" in out
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = sweep(*SMALL, inputs=inputs)
    assert "4 samples: 0 already done, 1 enqueued, 3 already queued or running (1 retried after failing)" in out
    assert "0/4 done (0%), 4 queued" in out
    assert GenerationJob.objects.count() == 5 and gpu_queue.count == 5


@pytest.mark.django_db
def test_it_checks_a_dry_run_and_defaults_to_the_shipped_set_and_the_teams_owner(team_users):
    out, err = sweep("--name", "dry", "--team", str(team_users.team.pk), "--grid", "control_start=0,0.15,0.3",
                     "--limit-prompts", "4", "--limit-contents", "5", "--dry-run")
    assert "60 samples: 0 already done, 60 would be enqueued" in out
    assert "Checked sweep “dry” of team “Acme”: 4 prompt(s) × 5 content(s) × 3 configuration(s)" in err
    assert not EvalRun.objects.exists() and not GenerationJob.objects.exists()


@pytest.mark.django_db
def test_it_shows_a_sweep_only_to_its_own_team(team_users, gpu_queue, inputs, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        sweep("--name", "theirs", "--team", "Rival", "--user", "outsider", "-n", "2", inputs=inputs)
    with pytest.raises(CommandError, match="team “Acme” has no sweep named “theirs”"):
        sweep("--name", "theirs", "--team", "Acme", "--status")
    with pytest.raises(CommandError, match="outsider is not a member of team “Acme”"):
        sweep("--name", "theirs", "--team", "Acme", "--user", "outsider", "--status")
    out, _ = sweep("--name", "theirs", "--user", "outsider", "--status")  # the user's only team
    assert "theirs: 0/2 done" in out


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--prompts", "missing.txt"], "missing.txt: no such file"),
        (["--prompts", "{empty}"], "no lines to use (empty, or only # comments)"),
        (["--grid", "conditioning_scale=1.0,lots"], "“lots” is not a number"),
        (["--grid", "cfg=1,2"], "unknown parameter “cfg”"),
        (["--grid", "conditioning_scale=1.0,5"], "configuration conditioning_scale=5.0: Conditioning scale must"),
        (["--team", "Nobody"], "no team “Nobody”"),
        (["--team", "O'Hara\t"], "no team “O'Hara\\u0009”"),
        (["--user", "ghost"], "no user named “ghost”"),
        (["--user", "viewer"], "viewer is not an owner or editor of team “Acme”"),
        (["--user", "outsider"], "outsider is not a member of team “Acme”"),
        (["-n", "0"], "-n must be at least 1, got 0"),
        (["--limit-prompts", "0"], "--limit-prompts must be at least 1, got 0"),
        (["--redis-down"], "the job queue (Redis) is not reachable"),
    ],
)
def test_it_refuses_bad_input_with_one_message_and_creates_nothing(team_users, inputs, tmp_path, monkeypatch,
                                                                   args, message):
    if args == ["--redis-down"]:
        import django_rq
        from redis import Redis
        from rq import Queue

        dead = Queue("gpu", connection=Redis(port=1, socket_connect_timeout=1))
        monkeypatch.setattr(django_rq, "get_queue", lambda name="default", **kwargs: dead)
        args = []
    (tmp_path / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    args = [str(tmp_path / "empty.txt") if a == "{empty}" else a for a in args]
    base = {"--name": "bad", "--team": "Acme", "--prompts": str(inputs[0]), "--contents": str(inputs[1])}
    base.update(dict(zip(args[::2], args[1::2], strict=True)) if args and args[0] != "--grid" else {})
    extra = args if args and args[0] == "--grid" else []
    with pytest.raises(CommandError) as exc:
        call_command("qart_sweep", *[x for kv in base.items() for x in kv], *extra, stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert message in str(exc.value) and exc.value.returncode == 2
    assert not EvalRun.objects.exists() and not GenerationJob.objects.exists()


@pytest.mark.django_db
def test_it_asks_for_a_team_when_the_choice_is_ambiguous(team_users):
    with pytest.raises(CommandError, match="give --team .* there is more than one team"):
        sweep("--name", "x", "--dry-run")


@pytest.mark.django_db
def test_it_waits_with_plain_progress_lines_until_every_sample_finishes(team_users, gpu_queue, inputs, monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    from types import SimpleNamespace

    from generator.management.commands import qart_sweep

    with django_capture_on_commit_callbacks(execute=True):
        sweep(*SMALL, inputs=inputs)
    pending = list(EvalSample.objects.order_by("pk"))

    def a_worker_finishes_one(seconds: float) -> None:  # stands in for the poll interval
        sample = pending.pop(0)
        status = "failed" if not pending else "done"
        GenerationJob.objects.filter(pk=sample.job_id).update(status=status, generation_seconds=3.0,
                                                              scoring_seconds=1.0)
        sample.record(GenerationJob.objects.get(pk=sample.job_id))

    monkeypatch.setattr(qart_sweep, "time", SimpleNamespace(sleep=a_worker_finishes_one))
    # One worker, whatever workers earlier tests left registered in Redis: the ETA divides by it.
    monkeypatch.setattr(sweeps, "gpu_workers", lambda: 1)
    out, err = sweep("--name", "smoke", "--team", "Acme", "--status", "--wait")
    lines = out.splitlines()
    assert [line.split(";")[0] for line in lines] == [
        "smoke: 0/4 done (0%), 4 queued", "smoke: 1/4 done (25%), 3 queued", "smoke: 2/4 done (50%), 2 queued",
        "smoke: 3/4 done (75%), 1 queued", "smoke: 3/4 done (75%), 1 failed"]
    assert "ETA after the first sample" in lines[0] and "ETA 8 s" in lines[2]
    assert "1 sample(s) did not finish; run the same command again to retry them." in err
