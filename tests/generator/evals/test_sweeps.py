"""Sweeps: grid parsing, sample creation and resumption on a real Redis queue, progress, the shipped data."""

from __future__ import annotations

import pytest
from django.conf import settings

from generator.core.codes import qr
from generator.core.engines import parameters
from generator.core.evals import grid
from generator.evals import sweeps
from generator.models import EvalRun, EvalSample, GenerationJob, Prompt

PROMPTS = ["a koi pond at dawn", "weathered oak bark"]
CONTENTS = ["https://qart.example/r/AbC123xY", "Table 12"]
GRID = {"conditioning_scale": [1.0, 1.5]}


def start(team_users, on_commit, **overrides):
    fields = dict(team=team_users.team, user=team_users.owner, name="smoke", prompts=PROMPTS, contents=CONTENTS,
                  grid=GRID, base={"steps": 2, "size": 256}, candidates=2)
    fields.update(overrides)
    with on_commit(execute=True):
        return sweeps.start_sweep(**fields)


# 1. Parameters

def test_it_refuses_a_parameter_both_swept_and_fixed():
    with pytest.raises(sweeps.SweepError, match="steps: both swept \\(--grid\\) and fixed \\(--base\\)"):
        sweeps.base_params({"steps": 2}, {"steps": [2, 3]})
    assert sweeps.base_params({"steps": 2}, {"size": [256]})["steps"] == 2


def test_it_reads_lines_without_comments_blanks_or_duplicates(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("# comment\n a fox \n\nan owl\na fox\n", encoding="utf-8")
    assert sweeps.read_lines(path) == ["a fox", "an owl"]
    path.write_text("# only comments\n\n", encoding="utf-8")
    with pytest.raises(sweeps.SweepError, match="no lines to use"):
        sweeps.read_lines(path)
    with pytest.raises(sweeps.SweepError, match="no such file"):
        sweeps.read_lines(tmp_path / "missing.txt")
    with pytest.raises(sweeps.SweepError, match="is a folder, not a text file$"):
        sweeps.read_lines(tmp_path)
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(sweeps.SweepError, match="cannot read it as UTF-8"):
        sweeps.read_lines(path)


# 2. Starting and resuming, on a real Redis queue

def test_it_creates_one_paired_job_per_sample_and_enqueues_it(team_users, gpu_queue,
                                                               django_capture_on_commit_callbacks):
    outcome = start(team_users, django_capture_on_commit_callbacks)
    assert outcome.created and (outcome.total, outcome.new, outcome.done, outcome.live) == (8, 8, 0, 0)
    assert outcome.summary() == "8 samples: 0 already done, 8 enqueued"
    run = EvalRun.objects.get(team=team_users.team, name="smoke")
    assert run.grid == GRID and run.candidates_per_sample == 2 and run.created_by == team_users.owner
    assert run.base_params["steps"] == 2 and "conditioning_scale" not in run.base_params
    assert run.code_version  # a commit, or "unknown" outside git
    samples = list(run.samples.select_related("job", "job__prompt"))
    assert len(samples) == 8 and gpu_queue.count == 8
    for sample in samples:
        job = sample.job
        assert (job.team, job.owner, job.repair, job.max_batches, job.candidates_per_batch) == \
            (team_users.team, team_users.owner, False, 1, 2)
        assert job.conditioning_scale == sample.config["conditioning_scale"] and job.steps == 2
        assert job.prompt.text == sample.prompt and job.content == sample.content
        assert job.rq_job_id == f"qart-generation-{job.pk}"
        # Paired: the same prompt and content draw the same seeds in every configuration.
        assert job.seed == grid.sample_seed(sample.prompt, sample.content)
    assert len({s.job.seed for s in samples}) == 4
    # Sweep prompts stay out of the team's gallery of prompts people reuse.
    assert not Prompt.objects.filter(team=team_users.team).exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"grid": {"conditioning_scale": [1.0, 9.0]}}, "configuration conditioning_scale=9.0: Conditioning scale"),
        ({"contents": CONTENTS + ["x" * 80]}, "content “xxxx"),
        ({"prompts": PROMPTS + ["y" * 1200]}, "prompt 3 (“yyyy"),
        ({"candidates": 40}, "Candidates per batch must be between 1 and 16"),
        ({"base": {"size": 100}}, "Size must be between 256 and 1024"),
        ({"grid": {"control_start": [0.5, 1.0]}}, "Control start (1.0) must be before control end"),
        ({"name": " "}, "--name must be 1 to 120 characters"),
    ],
)
def test_it_refuses_bad_input_and_stores_nothing(team_users, gpu_queue, django_capture_on_commit_callbacks,
                                                overrides, message):
    with pytest.raises(sweeps.SweepError) as exc:
        start(team_users, django_capture_on_commit_callbacks, **overrides)
    assert message in str(exc.value)
    assert not EvalRun.objects.exists() and not GenerationJob.objects.exists() and gpu_queue.count == 0


def test_a_rerun_repeats_nothing_that_is_done_or_under_way(team_users, gpu_queue,
                                                           django_capture_on_commit_callbacks):
    start(team_users, django_capture_on_commit_callbacks)
    sample = EvalSample.objects.first()
    GenerationJob.objects.filter(pk=sample.job_id).update(status="done")
    sample.record(GenerationJob.objects.get(pk=sample.job_id))
    again = start(team_users, django_capture_on_commit_callbacks)
    assert not again.created and (again.done, again.live, again.enqueued) == (1, 7, 0)
    assert again.summary() == "8 samples: 1 already done, 0 enqueued, 7 already queued or running"
    assert GenerationJob.objects.count() == 8 and gpu_queue.count == 8 and EvalRun.objects.count() == 1


def test_a_rerun_retries_failed_cancelled_and_lost_samples_with_new_jobs(team_users, gpu_queue,
                                                                         django_capture_on_commit_callbacks):
    start(team_users, django_capture_on_commit_callbacks)
    failed, cancelled, lost = EvalSample.objects.select_related("job")[:3]
    for sample, status in ((failed, "failed"), (cancelled, "cancelled")):
        GenerationJob.objects.filter(pk=sample.job_id).update(status=status, error="boom")
        sample.record(GenerationJob.objects.get(pk=sample.job_id))
    # Redis lost this one (emptied or restarted without saving): it is queued in the database only.
    gpu_queue.remove(lost.job.rq_job_id)
    gpu_queue.connection.delete(f"rq:job:{lost.job.rq_job_id}")
    lost_job = lost.job
    again = start(team_users, django_capture_on_commit_callbacks)
    assert (again.retried, again.live, again.new) == (3, 5, 0)
    assert again.summary() == "8 samples: 0 already done, 3 enqueued, 5 already queued or running " \
                              "(3 retried after failing)"
    for sample in (failed, cancelled, lost):
        old_job = sample.job
        sample.refresh_from_db()
        assert sample.job_id != old_job.pk and sample.status == "queued" and sample.error == ""
        assert sample.job.seed == old_job.seed and sample.job.repair is False
    lost_job.refresh_from_db()
    assert lost_job.status == "failed" and "Lost from the queue" in lost_job.error
    assert GenerationJob.objects.count() == 11 and gpu_queue.count == 7 + 3


def test_a_rerun_with_new_values_adds_their_samples_and_says_so(team_users, gpu_queue,
                                                                django_capture_on_commit_callbacks):
    start(team_users, django_capture_on_commit_callbacks)
    again = start(team_users, django_capture_on_commit_callbacks, grid={"conditioning_scale": [1.5, 2.0]})
    assert again.added_configs == ["conditioning_scale=2.0"] and again.new == 4 and again.live == 4
    assert any("adds 1 configuration(s)" in note for note in again.notes)
    run = EvalRun.objects.get()
    assert run.grid == {"conditioning_scale": [1.0, 1.5, 2.0]} and run.samples.count() == 12


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"base": {"steps": 3, "size": 256}}, "fixed steps differently (steps=2)"),
        ({"candidates": 3}, "draws 2 candidates per sample, not 3"),
        ({"grid": {"control_start": [0.1, 0.2]}}, "swept conditioning_scale; this grid sweeps control_start"),
    ],
)
def test_a_rerun_cannot_change_what_keeps_samples_comparable(team_users, gpu_queue,
                                                             django_capture_on_commit_callbacks, overrides, message):
    start(team_users, django_capture_on_commit_callbacks)
    with pytest.raises(sweeps.SweepError) as exc:
        start(team_users, django_capture_on_commit_callbacks, **overrides)
    assert message in str(exc.value) and "new --name" in str(exc.value)
    assert GenerationJob.objects.count() == 8


def test_runs_of_the_same_name_in_two_teams_stay_apart(team_users, gpu_queue, django_capture_on_commit_callbacks):
    start(team_users, django_capture_on_commit_callbacks)
    other = start(team_users, django_capture_on_commit_callbacks, team=team_users.other_team,
                  user=team_users.outsider)
    assert other.created and other.new == 8
    mine, theirs = (EvalRun.objects.get(team=t, name="smoke") for t in (team_users.team, team_users.other_team))
    assert {s.job.team for s in theirs.samples.all()} == {team_users.other_team}
    assert list(EvalRun.objects.for_user(team_users.owner)) == [mine]
    assert list(EvalRun.objects.for_user(team_users.outsider)) == [theirs]


def test_a_dry_run_counts_and_stores_nothing(team_users):
    outcome = sweeps.start_sweep(team=team_users.team, user=team_users.owner, name="dry", prompts=PROMPTS,
                                 contents=CONTENTS, grid=GRID, candidates=2, dry_run=True)
    assert outcome.summary() == "8 samples: 0 already done, 8 would be enqueued"
    assert not EvalRun.objects.exists() and not GenerationJob.objects.exists()


def test_it_refuses_to_start_when_redis_is_down(team_users, monkeypatch):
    import django_rq
    from redis import Redis
    from rq import Queue

    dead = Queue("gpu", connection=Redis(port=1, socket_connect_timeout=1))
    monkeypatch.setattr(django_rq, "get_queue", lambda name="default", **kwargs: dead)
    with pytest.raises(sweeps.SweepError, match="the job queue \\(Redis\\) is not reachable"):
        sweeps.start_sweep(team=team_users.team, user=team_users.owner, name="x", prompts=PROMPTS,
                           contents=CONTENTS, grid=GRID, candidates=2)
    assert not EvalRun.objects.exists()


# 3. Progress

def test_it_reports_progress_per_status_and_configuration_with_an_eta(team_users, gpu_queue,
                                                                      django_capture_on_commit_callbacks):
    start(team_users, django_capture_on_commit_callbacks)
    run = EvalRun.objects.get()
    samples = list(run.samples.order_by("pk"))
    for sample, seconds in zip(samples[:3], (10.0, 20.0, 30.0), strict=True):  # three done
        GenerationJob.objects.filter(pk=sample.job_id).update(status="done", generation_seconds=seconds - 2,
                                                              scoring_seconds=2.0, model_id="tiny/base")
        sample.record(GenerationJob.objects.get(pk=sample.job_id))
    GenerationJob.objects.filter(pk=samples[3].job_id).update(status="failed", error="x")
    samples[3].record(GenerationJob.objects.get(pk=samples[3].job_id))
    GenerationJob.objects.filter(pk=samples[4].job_id).update(status="running")  # the sample still says queued

    progress = sweeps.progress(run, workers=2)
    assert (progress.total, progress.done, progress.remaining, progress.finished) == (8, 3, 4, False)
    assert progress.counts["running"] == 1 and progress.counts["queued"] == 3 and progress.counts["failed"] == 1
    assert progress.per_config == {"conditioning_scale=1.0": (2, 4), "conditioning_scale=1.5": (1, 4)}
    assert progress.mean_seconds == 20.0 and progress.eta_seconds == 4 * 20.0 / 2
    assert progress.engines == ["tiny/base"]
    assert progress.summary() == "3/8 done (38%), 1 running, 3 queued, 1 failed; ETA 40 s"
    assert progress.to_dict()["per_config"]["conditioning_scale=1.0"] == {"done": 2, "total": 4}
    assert sweeps.progress(run, workers=0).summary().endswith("; no GPU worker is listening")


def test_it_gives_no_eta_before_the_first_sample_and_none_needed_after_the_last(team_users, gpu_queue,
                                                                                django_capture_on_commit_callbacks):
    start(team_users, django_capture_on_commit_callbacks)
    run = EvalRun.objects.get()
    assert sweeps.progress(run).summary() == "0/8 done (0%), 8 queued; ETA after the first sample"
    GenerationJob.objects.update(status="cancelled")
    for sample in run.samples.select_related("job"):
        sample.record(sample.job)
    progress = sweeps.progress(run)
    assert progress.finished and progress.eta_seconds == 0.0 and progress.summary() == "0/8 done (0%), 8 cancelled"


def test_it_counts_the_workers_listening_on_the_gpu_queue(gpu_queue, monkeypatch):
    from rq import Queue, Worker

    # A queue of this test's own stands in for `gpu`: workers that earlier tests started or killed stay registered
    # on the real one until their heartbeat expires, which can happen between two counts.
    queue = Queue("gpu-sweep-test", connection=gpu_queue.connection)
    asked = []
    monkeypatch.setattr(sweeps.django_rq, "get_queue", lambda name: asked.append(name) or queue)
    worker = Worker([queue], connection=queue.connection, name="sweep-test-worker")
    worker.register_birth()
    try:
        assert sweeps.gpu_workers() == 1
    finally:
        worker.register_death()
    assert sweeps.gpu_workers() == 0
    assert set(asked) == {sweeps.jobs.QUEUE}


def test_it_says_none_when_redis_cannot_count_the_workers(monkeypatch):
    from redis.exceptions import ConnectionError

    def refuse(queue):
        raise ConnectionError("Connection refused")

    monkeypatch.setattr(sweeps.queues, "workers_on", refuse)
    assert sweeps.gpu_workers() is None



# 4. The shipped evaluation set

def raw_lines(path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def test_the_shipped_prompts_are_many_varied_and_valid():
    prompts = raw_lines(sweeps.DEFAULT_PROMPTS)
    assert len(prompts) >= 200 and len(set(prompts)) == len(prompts)
    words = [len(p.split()) for p in prompts]
    # Short and long ones: long, detailed prompts are reported to hide the code better.
    assert sum(w <= 4 for w in words) >= 20 and sum(w >= 15 for w in words) >= 40 and sum(w >= 40 for w in words) >= 5
    for prompt in prompts:
        parameters.GenerationParams(prompt=prompt).validate()


def test_the_shipped_contents_are_many_distinct_and_all_fit_the_apps_codes():
    contents = raw_lines(sweeps.DEFAULT_CONTENTS)
    assert len(contents) >= 50 and len(set(contents)) == len(contents)
    for content in contents:
        qr.encode(content, ecc=settings.QART["DEFAULT_ECC"], max_version=settings.QART["MAX_VERSION"])
    assert sum("/r/" in c for c in contents) >= 10  # the app's own short links
    assert sum(c.startswith("http") and "/r/" not in c for c in contents) >= 10
    assert sum(not c.lower().startswith("http") for c in contents) >= 10
    assert len({len(c) // 10 for c in contents}) >= 5  # lengths spread from a few characters to the limit


def test_the_shipped_set_passes_a_sweeps_checks(team_users):
    prompts, contents = sweeps.read_lines(sweeps.DEFAULT_PROMPTS), sweeps.read_lines(sweeps.DEFAULT_CONTENTS)
    outcome = sweeps.start_sweep(team=team_users.team, user=team_users.owner, name="all", prompts=prompts,
                                 contents=contents, grid={"ecc": ["M", "H"]}, dry_run=True)
    assert outcome.total == len(prompts) * len(contents) * 2
