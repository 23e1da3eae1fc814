"""Parameter sweeps: every (prompt, content, configuration) of a grid, as GenerationJobs on the `gpu` queue.

    grid = generator.core.evals.grid.parse_grid(["conditioning_scale=1.0,1.3,1.6", "control_start=0,0.15,0.3"])
    outcome = start_sweep(team=team, user=user, name="cs-vs-start", prompts=prompts, contents=contents,
                          grid=grid, candidates=8)
    print(outcome.summary(), progress(outcome.run).summary())

A sample is one GenerationJob (repair off, one batch: raw scan rates) run by the ordinary worker; when the job
finishes, `jobs._finish` copies its results onto the EvalSample. Nothing here generates anything.

Resuming: starting a sweep with a name its team already used continues that run. Samples that are done, or whose
job is still queued or running, are left alone; failed and cancelled ones (and queued ones Redis lost) get a new
job. The run's fixed parameters (base parameters, candidates per sample, which parameters are swept) cannot change
under the same name, since the samples would no longer be comparable; new values of the swept parameters, and new
prompts or contents, are added as new samples and the outcome says so.

Seeds are derived from (prompt, content) alone, so every configuration of one prompt and content draws the same
seeds: a comparison between configurations is paired, and sampling noise does not masquerade as an effect.
"""

from __future__ import annotations

import statistics
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import django_rq
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import Job

from generator import job_parameters, jobs
from generator.core.codes.echoes import echo
from generator.core.engines import parameters
from generator.core.evals.grid import PARAMETERS, GridError, config_key, expand, sample_seed, value_text
from generator.models import EvalRun, EvalSample, GenerationJob, Prompt
from qartsite import queues
from qartsite.plurals import counted

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_PROMPTS = DATA / "eval_prompts.txt"
DEFAULT_CONTENTS = DATA / "eval_contents.txt"
Status = GenerationJob.Status
LIVE = (Status.QUEUED, Status.RUNNING, Status.SCORING)


class SweepError(GridError):
    """Bad sweep input; the message is meant for the person who typed the command."""


def base_params(overrides: dict, grid: dict[str, list]) -> dict:
    """The value every sample shares for each parameter not swept: the GenerationJob defaults (error correction
    from settings), then `overrides`."""
    clash = sorted(set(overrides) & set(grid))
    if clash:
        raise SweepError(f"{', '.join(clash)}: both swept (--grid) and fixed (--base); choose one")
    params = {name: GenerationJob._meta.get_field(name).get_default() for name in PARAMETERS}
    params["ecc"] = settings.QART["DEFAULT_ECC"]
    params.update(overrides)
    return {name: value for name, value in params.items() if name not in grid}


def read_lines(path: str | Path) -> list[str]:
    """The non-empty, non-comment (`#`) lines of a UTF-8 file, stripped, in order, duplicates dropped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SweepError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SweepError(f"{path}: is a folder, not a text file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path}: cannot read it as UTF-8 text ({exc})") from None
    lines = [line.strip() for line in text.splitlines()]
    lines = list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))
    if not lines:
        raise SweepError(f"{path}: no lines to use (empty, or only # comments)")
    return lines


def code_version() -> str:
    """The git commit this code runs from ("-dirty" with uncommitted changes), else "unknown"."""
    root = Path(settings.BASE_DIR)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


# 2. Starting (or resuming) a sweep

@dataclass
class SweepOutcome:
    """What `start_sweep` did (or, with `dry_run`, would do)."""

    run: EvalRun
    created: bool  # a new run, rather than a resumed one
    total: int  # samples this request covers
    done: int  # already done: skipped
    live: int  # queued or running already: skipped
    new: int  # enqueued for the first time
    retried: int  # failed, cancelled or lost from the queue: enqueued again with a new job
    added_configs: list[str] = field(default_factory=list)  # configurations the run did not have before
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def enqueued(self) -> int:
        return self.new + self.retried

    def summary(self) -> str:
        verb = "would be enqueued" if self.dry_run else "enqueued"
        line = f"{counted(self.total, 'sample')}: {self.done} already done, {self.enqueued} {verb}"
        if self.live:
            line += f", {self.live} already queued or running"
        if self.retried:
            line += f" ({self.retried} retried after failing)"
        return line


def _validate(prompts: list[str], contents: list[str], configs: list[dict], base: dict, candidates: int,
              user) -> None:
    """`job_parameters.validate_job` over every prompt, content and configuration, without the full product.

    Validity factorises: prompt and parameter checks do not depend on the content, and the content only meets
    the error-correction level; so each configuration, prompt and (content, level) is checked once.
    """

    def check(prompt: str, content: str, config: dict, what: str) -> None:
        job = GenerationJob(owner=user, prompt=Prompt(text=prompt, negative_text=parameters.DEFAULT_NEGATIVE),
                            content=content, candidates_per_batch=candidates, max_batches=1, repair=False,
                            seed=sample_seed(prompt, content), **base, **config)
        try:
            job_parameters.validate_job(job)
        except ValueError as exc:  # qr.ContentError is a ValueError too
            raise SweepError(f"{what}: {exc}") from None

    for config in configs:
        check(prompts[0], contents[0], config, f"configuration {config_key(config) or '(base)'}")
    for number, prompt in enumerate(prompts, 1):
        check(prompt, contents[0], configs[0], f"prompt {number} (“{echo(prompt)}”)")
    for ecc in dict.fromkeys(c.get("ecc", base.get("ecc")) for c in configs):
        config = next(c for c in configs if c.get("ecc", base.get("ecc")) == ecc)
        for content in contents:
            check(prompts[0], content, config, f"content “{echo(content)}”")


def _merge_grid(run: EvalRun, grid: dict[str, list], base: dict, candidates: int) -> dict[str, list]:
    """The resumed run's grid with this request's new values added; refuses changes that break comparability."""
    if set(run.grid) != set(grid):
        raise SweepError(
            f"sweep “{echo(run.name)}” swept {', '.join(sorted(run.grid)) or 'nothing'}; this grid sweeps "
            f"{', '.join(sorted(grid)) or 'nothing'}. Use a new --name for a different set of parameters."
        )
    if run.candidates_per_sample != candidates:
        raise SweepError(f"sweep “{echo(run.name)}” draws {run.candidates_per_sample} candidates per sample, not "
                         f"{candidates}; use the same -n, or a new --name")
    if run.base_params != base:
        changed = sorted(k for k in set(run.base_params) | set(base) if run.base_params.get(k) != base.get(k))
        raise SweepError(f"sweep “{echo(run.name)}” fixed {', '.join(changed)} differently "
                         f"({', '.join(f'{k}={value_text(run.base_params.get(k))}' for k in changed)}); "
                         "use the same --base values, or a new --name")
    merged = {name: list(values) for name, values in run.grid.items()}
    for name, values in grid.items():
        known = {value_text(v) for v in merged[name]}
        merged[name] += [v for v in values if value_text(v) not in known]
    return merged


def _lost_jobs(job_pks: list[int]) -> set[int]:
    """Of these queued jobs, the ones Redis no longer holds (emptied or restarted without saving)."""
    if not job_pks:
        return set()
    connection = django_rq.get_queue(jobs.QUEUE).connection
    found = Job.fetch_many([jobs.rq_job_id(pk) for pk in job_pks], connection=connection)
    return {pk for pk, rq_job in zip(job_pks, found, strict=True) if rq_job is None}


def check_queue() -> None:
    """Raise SweepError unless the `gpu` queue's Redis answers."""
    try:
        django_rq.get_queue(jobs.QUEUE).connection.ping()
    except RedisError as exc:
        raise SweepError(f"the job queue (Redis) is not reachable ({exc}); start Redis or check REDIS_URL") from None


def start_sweep(*, team, user, name: str, prompts: list[str], contents: list[str], grid: dict[str, list],
                base: dict | None = None, candidates: int = 8, dry_run: bool = False) -> SweepOutcome:
    """Create (or resume) the team's sweep `name` and enqueue every sample not done or under way.

    Args:
        team (`Team`): the run's team; its jobs belong to it.
        user (`User`): who starts it; owner of the jobs.
        name (`str`): the run's name, unique per team. Reusing it resumes that run.
        prompts (`list[str]`), contents (`list[str]`): what to generate; every pair meets every configuration.
        grid (`dict[str, list]`): the swept values, from `parse_grid`.
        base (`dict`, *optional*): fixed parameter values, from `parse_params`; the rest are the job defaults.
        candidates (`int`, *optional*, defaults to 8): candidates per sample (one batch).
        dry_run (`bool`, *optional*): check and count, but store and enqueue nothing.

    Returns:
        A `SweepOutcome` with the counts of what was skipped and enqueued.

    Raises:
        SweepError: bad input or an unreachable queue, before anything is stored.
    """
    # 1. Check inputs: every job must validate before any is stored
    name = name.strip()
    if not name or len(name) > EvalRun._meta.get_field("name").max_length:
        raise SweepError("--name must be 1 to 120 characters")
    if not prompts or not contents:
        raise SweepError("a sweep needs at least one prompt and one content")
    base = base_params(base or {}, grid)
    configs = expand(grid)
    _validate(prompts, contents, configs, base, candidates, user)
    if not dry_run:
        check_queue()

    # 2. The run: new, or resumed with the same fixed parameters
    run = EvalRun.objects.filter(team=team, name=name).first()
    created = run is None
    notes: list[str] = []
    if created:
        run = EvalRun(name=name, team=team, created_by=user, grid=grid, base_params=base,
                      candidates_per_sample=candidates, code_version=code_version())
        known_configs: set[str] = set()
    else:
        run.grid = _merge_grid(run, grid, base, candidates)
        known_configs = set(run.samples.values_list("config_key", flat=True).distinct())
        version = code_version()
        if version != run.code_version:
            notes.append(f"this code is {version}; the run started from {run.code_version}: samples will mix both")
            stamp = f"{timezone.now():%Y-%m-%d %H:%M} resumed at {version}"
            run.notes = f"{run.notes}\n{stamp}" if run.notes else stamp
    added = [key for key in dict.fromkeys(config_key(c) for c in configs) if key not in known_configs]
    if not created and added:
        notes.append(f"adds {len(added)} configuration(s) to the run: {'; '.join(added)}")

    # 3. Sort every (prompt, content, configuration) into done, under way, to retry and new
    existing = {(s.prompt, s.content, s.config_key): s
                for s in (run.samples.select_related("job") if not created else [])}
    # Configurations vary fastest, so the first results already compare every configuration on the same prompts.
    wanted = [(p, c, config) for p in prompts for c in contents for config in configs]
    done = live = 0
    new: list[tuple[str, str, dict]] = []
    retry: list[EvalSample] = []
    queued: dict[int, EvalSample] = {}
    for prompt, content, config in wanted:
        sample = existing.get((prompt, content, config_key(config)))
        if sample is None:
            new.append((prompt, content, config))
        elif sample.status == Status.DONE:
            done += 1
        elif sample.job is not None and sample.job.status in LIVE:
            if sample.job.status == Status.QUEUED:
                queued[sample.job.pk] = sample
            live += 1
        else:
            retry.append(sample)
    lost = set()
    if queued and not dry_run:
        lost = _lost_jobs(list(queued))
        live -= len(lost)
        retry += [queued[pk] for pk in lost]
    outcome = SweepOutcome(run=run, created=created, total=len(wanted), done=done, live=live, new=len(new),
                           retried=len(retry), added_configs=added if not created else [], notes=notes,
                           dry_run=dry_run)
    if dry_run:
        return outcome

    # 4. Store jobs and samples in one transaction; the jobs reach Redis when it commits
    with transaction.atomic():
        run.save()
        if lost:
            GenerationJob.objects.filter(pk__in=lost).update(
                status=Status.FAILED, stage="failed", finished=timezone.now(),
                error="Lost from the queue (Redis was emptied or restarted); the sweep enqueued the sample again.")
        prompt_rows: dict[str, Prompt] = {}

        def job_for(prompt: str, content: str, config: dict) -> GenerationJob:
            if prompt not in prompt_rows:
                # No team: sweep prompts stay out of the team's gallery of prompts people reuse.
                prompt_rows[prompt] = Prompt.remember(user, prompt, parameters.DEFAULT_NEGATIVE, team=None)
            return GenerationJob(owner=user, team=team, prompt=prompt_rows[prompt], content=content,
                                 candidates_per_batch=candidates, max_batches=1, repair=False,
                                 seed=sample_seed(prompt, content), **base, **config)

        new_jobs = GenerationJob.objects.bulk_create([job_for(*item) for item in new], batch_size=500)
        EvalSample.objects.bulk_create(
            [EvalSample(run=run, prompt=p, content=c, config=config, config_key=config_key(config), job=job)
             for (p, c, config), job in zip(new, new_jobs, strict=True)], batch_size=500)
        retry_jobs = GenerationJob.objects.bulk_create(
            [job_for(s.prompt, s.content, s.config) for s in retry], batch_size=500)
        for sample, job in zip(retry, retry_jobs, strict=True):
            sample.job, sample.status, sample.scores, sample.error, sample.finished = job, Status.QUEUED, [], "", None
            sample.generation_seconds = sample.scoring_seconds = sample.total_seconds = None
        EvalSample.objects.bulk_update(retry, ["job", "status", "scores", "error", "finished", "generation_seconds",
                                               "scoring_seconds", "total_seconds"], batch_size=500)
        for job in new_jobs + retry_jobs:
            jobs.enqueue_generation(job)
    return outcome


# 3. Progress, for the command and the staff pages

@dataclass
class SweepProgress:
    """Where a run stands. `counts` has every status; queued/running/scoring come from the live job."""

    total: int
    counts: dict[str, int]
    per_config: dict[str, tuple[int, int]]  # config_key -> (done, total), keys sorted
    mean_seconds: float | None  # mean generation + scoring time of a done sample, on one worker
    workers: int | None  # GPU workers listening now (None: unknown)
    engines: list[str]  # model ids the workers reported for done samples

    @property
    def done(self) -> int:
        return self.counts.get(Status.DONE, 0)

    @property
    def remaining(self) -> int:
        return sum(self.counts.get(s, 0) for s in LIVE)

    @property
    def finished(self) -> bool:
        return self.remaining == 0

    @property
    def eta_seconds(self) -> float | None:
        """Remaining samples × mean sample time ÷ workers: rough, as samples differ and workers come and go."""
        if self.mean_seconds is None or not self.remaining:
            return None if self.remaining else 0.0
        return self.remaining * self.mean_seconds / max(self.workers or 1, 1)

    def summary(self) -> str:
        """One line: `30/48 done (62%), 2 running, 10 queued, 6 failed; ETA 4 min`."""
        percent = 100 * self.done / self.total if self.total else 100.0
        parts = [f"{self.done}/{self.total} done ({percent:.0f}%)"]
        running = self.counts.get(Status.RUNNING, 0) + self.counts.get(Status.SCORING, 0)
        for label, count in (("running", running), ("queued", self.counts.get(Status.QUEUED, 0)),
                             ("failed", self.counts.get(Status.FAILED, 0)),
                             ("cancelled", self.counts.get(Status.CANCELLED, 0))):
            if count:
                parts.append(f"{count} {label}")
        line = ", ".join(parts)
        if self.remaining:
            eta = self.eta_seconds
            line += f"; ETA {format_duration(eta)}" if eta is not None else "; ETA after the first sample"
            if self.workers == 0:
                line += "; no GPU worker is listening"
        return line

    def to_dict(self) -> dict:
        return {"total": self.total, "done": self.done, "remaining": self.remaining, "finished": self.finished,
                "counts": self.counts, "per_config": {k: {"done": d, "total": t} for k, (d, t) in
                                                      self.per_config.items()},
                "mean_seconds": self.mean_seconds, "eta_seconds": self.eta_seconds, "workers": self.workers,
                "engines": self.engines}


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gpu_workers() -> int | None:
    """How many workers listen on the `gpu` queue now; None when Redis cannot say."""
    try:
        return queues.workers_on(django_rq.get_queue(jobs.QUEUE))
    except RedisError:
        return None


def progress(run: EvalRun, workers: int | None = None) -> SweepProgress:
    """Counts per status, done/total overall and per configuration, and the ETA of `run`.

    Args:
        run (`EvalRun`): the sweep.
        workers (`int`, *optional*): GPU workers sharing the queue, for the ETA (see `gpu_workers`).

    Returns:
        A `SweepProgress`.
    """
    rows = run.samples.values_list("status", "job__status", "config_key", "generation_seconds", "scoring_seconds",
                                   "job__model_id")
    counts: Counter[str] = Counter()
    per_config: dict[str, list[int]] = {}
    seconds, engines = [], set()
    for status, job_status, key, generation, scoring, model_id in rows:
        # A sample copies its job's status when the job finishes; until then the job says where it is.
        if status not in GenerationJob.FINISHED and job_status is not None:
            status = job_status
        counts[status] += 1
        tally = per_config.setdefault(key, [0, 0])
        tally[1] += 1
        if status == Status.DONE:
            tally[0] += 1
            if generation is not None:
                seconds.append(generation + (scoring or 0.0))
            if model_id:
                engines.add(model_id)
    return SweepProgress(
        total=sum(counts.values()), counts={s: counts.get(s, 0) for s in Status.values},
        per_config={k: (d, t) for k, (d, t) in sorted(per_config.items())},
        mean_seconds=statistics.fmean(seconds) if seconds else None, workers=workers, engines=sorted(engines),
    )
