"""Whole generation jobs as the product runs them: a GenerationJob row, enqueued on Redis, run by an RQ worker.

Called by `bench/gpu.py --variants P,rq` on the device machine with the product engine (P) already compiled and
warm; also runs on the CPU with the tiny model (`python bench/rq_job.py --tiny`) as a dry run. Each run:

1. creates a GenerationJob (8 candidates, 768², the engine's steps; one batch) and enqueues it on the `gpu`
   queue with `generator.jobs.enqueue_generation`, exactly as the page and the API do;
2. a `generator.worker.GenerationWorker`, started once for each setting and waiting on the queue between jobs as in
   production (`_timed_jobs`), takes it from Redis and runs `generator.jobs.run_generation` (generate, verify in the
   process pool while the aesthetic head runs, rank, encode PNGs, store rows);
3. the job's own timings are read back from the database: `total_seconds` is enqueue (row created) -> ranked
   candidates stored; `queue_seconds` is pickup;
4. beside them, the bench's own clock (`TailClock`, `tail_*` keys): when each step after the engine's last image
   ended, in seconds after that image was handed over (the aesthetic scores, the verifier's last part, the verdicts
   combined, the PNGs, the rows stored, the job ended).

Settings, each timed over `runs` jobs after one warm-up job:
- "code-like": the typical path. Random weights make noise that never scans, and OpenCV's WeChat detector spends
  ~1.8 s on one 768² noise image against ~0.01 s on a picture that contains a code, so noise would time a verifier
  that real QR art never meets. Here the GPU generation runs in full, then each image is blended 55/45 with the
  control image before verification (a stand-in for art that carries its code); repair off, one batch. At the
  product's 25 steps and with the "turbo" preset's 15. "code-whole": the same, with the engine decoding the whole
  batch at once (`Engine.decode_group`), so verification starts only after the last image, as before issue 16's
  ninth step. "code-halves": the same as "code", with each verdict in two processes at most (`ranking.SPLITS`
  without its three- and six-way splits), as before issue 16's tenth step. "code-thirds": the same, in three
  processes at most (the image alone, the captures in halves), as before the image's work was split into pieces.
  "code-pillow": the same as "code", with the
  candidates' PNGs encoded by Pillow at zlib level 1, as before issue 16's eleventh step. "code-quiet": the same as
  "code", with the job's progress written once a minute instead of every 0.2 s (`jobs.ProgressWriter.INTERVAL`): what
  those writes on the thread that launches the GPU's kernels cost. "code-exp": the same as "code", with FA4's
  softmax variant that `bench/gpu.py`'s fa4exp stage found fastest with the images kept (`bench/fa4_exp.py`;
  skipped when none was). "code-nice": the same as "code", with the verifier's processes at nice 10, so that they
  give way to the worker's own threads while the last images decode. "code-queued": the same as "code", with every
  decode queued before the first hand-over (`decoding.decodes_ahead` all), as from 76ecea1 to the fourteenth step.
  "code-gc": the same as "code", with every object alive before its warm-up job (the earlier kinds' jobs run)
  frozen out of the garbage collector's reach (`gc.freeze`), so that its collections during a job walk only the
  job's own objects.
  "code-nographs": the same as "code", with the VAE decoder compiled without CUDA graphs (`cuda.compile_decoder`;
  CUDA engines only), as before issue 16's fourteenth step.
- "noise": the same job on the raw noise (the verifier's pessimistic case; nothing passes; repair off).
- "noise, repair 2": nothing passes and repair runs on the two best-looking candidates (the worst one-batch job).
- "fewstep": code-like with the few-step preset (`fewstep_steps` steps of its scheduler, no classifier-free guidance);
  the engine must carry a few-step UNet (`bench/gpu.py --fewstep`).
- "queue" / "queue-fewstep": throughput and queueing. `queue_jobs` code-like jobs (25 steps / few-step) are enqueued
  at once, then one worker takes them in turn, as a burst of requests meets one GPU worker: each job's wait
  (enqueue -> pickup) and total (enqueue -> stored), the wall time from the first enqueue to the last job stored,
  and jobs per hour on this GPU (jobs / wall time).

Services: Redis from `$QART_REDIS_SERVER` (default `redis-server` on PATH) on a free loopback port, SQLite and
media in a temporary folder. Django's settings are qartsite's, with only the apps a worker and the migrations need
(no admin, drf-spectacular or django-filter; DRF, knox and axes travel as wheels: bench/GPU.md).
"""

from __future__ import annotations

import gc
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KINDS = ("code", "code-whole", "code-halves", "code-thirds", "code-pillow", "code-quiet", "code-exp", "code-nice",
         "code-queued", "code-gc", "code-nographs", "turbo", "noise", "repair", "fewstep", "queue", "queue-fewstep")
NICE = 10  # "code-nice": the verifier processes' nice value
IDLE_BEFORE = 0.2  # seconds between one job's end and the next one's arrival (the worker back on the queue)
JOB_WAIT = 120.0  # seconds a timed job may take before the bench gives up on it
WARM_UP_WAIT = 600.0  # the same for a setting's warm-up job, which may compile (a cold compile: 2-3 minutes)
MAX_IDLE = 30  # seconds a long-lived worker waits for a job that never comes before it stops


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    binary = os.environ.get("QART_REDIS_SERVER") or shutil.which("redis-server")
    if not binary:
        raise SystemExit("redis-server not found: set QART_REDIS_SERVER")
    port = _free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"redis-server did not start on port {port}")


def setup_django(folder: Path, redis_url: str, fewstep_lora: str | None = None,
                 fewstep_scheduler: str = "lcm") -> None:
    os.environ.update(DATABASE_URL=f"sqlite:///{folder}/qart.sqlite3", REDIS_URL=redis_url, DEBUG="1",
                      MEDIA_ROOT=str(folder / "media"), DJANGO_SETTINGS_MODULE="qartsite.settings")
    import django
    from django.conf import settings

    import qartsite.settings as base

    conf = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    # Kept: DRF, its token app and knox (qartsite's migrations need them), axes. Dropped: the admin (its
    # autodiscovery imports every admin module) and the API's schema and filter apps.
    skip = ("django.contrib.admin", "django_filters", "drf_spectacular")
    conf["INSTALLED_APPS"] = [app for app in conf["INSTALLED_APPS"] if not app.startswith(skip)]
    conf["MIDDLEWARE"] = []
    conf["DEBUG"] = False  # no query log growing over the runs
    conf["LOGGING"] = {"version": 1, "disable_existing_loggers": False}
    # The few-step preset is offered only where a LoRA is configured; the bench's engine carries one built in code.
    conf["QART"] = dict(conf["QART"], FEWSTEP_LORA=fewstep_lora or "", FEWSTEP_SCHEDULER=fewstep_scheduler)
    settings.configure(**conf)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def summarise(rows: list[dict]) -> dict:
    """Median and p95 of every number in the rows (a key some rows lack, such as a clock's note, over those that
    have it)."""
    keys = dict.fromkeys(k for row in rows for k, v in row.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool))
    values = {k: [row[k] for row in rows if k in row] for k in keys}
    return {k: dict(median=round(statistics.median(v), 4), p95=round(float(np.percentile(v, 95)), 4))
            for k, v in values.items()}


def run(engine, *, steps: int, size: int, n: int, runs: int, seed: int, prompt: str, content: str, log,
        save=lambda: None, results: dict | None = None, turbo_steps: int = 15,
        kinds: Sequence[str] = KINDS, fewstep_steps: int = 4, fewstep_scheduler: str = "lcm",
        queue_jobs: int = 50) -> dict:
    """Time `runs` whole jobs per setting (plus one untimed warm-up job) with `engine` as the worker's engine.

    `kinds` picks the settings (see the module docstring): code, turbo, noise, repair, fewstep, queue, queue-fewstep.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown job kinds {sorted(unknown)}: choose from {', '.join(KINDS)}")
    folder = Path(tempfile.mkdtemp(prefix="qart-rq-"))
    redis_proc, redis_url = start_redis(folder)
    out: dict = {"runs": runs, "steps": steps, "size": size, "candidates": n, "cpu_count": os.cpu_count()}
    if results is not None:
        results["rq"] = out
    generate, restore = engine.generate, lambda: None
    try:
        fewstep = getattr(engine, "fewstep", None) is not None or any(
            getattr(r, "fewstep", None) is not None for r in getattr(engine, "replicas", []))
        if {"fewstep", "queue-fewstep"} & set(kinds) and not fewstep:
            raise ValueError("the fewstep job kinds need an engine with a few-step UNet (bench/gpu.py --fewstep)")
        setup_django(folder, redis_url, "bench-lora" if fewstep else None, fewstep_scheduler)
        import django_rq
        from django.contrib.auth import get_user_model

        from generator import job_files, jobs, warm_engines
        from generator.core.codes import decoders, images
        from generator.core.engines import decoding, ranking
        from generator.models import GenerationJob, Prompt
        from generator.worker import GenerationWorker
        from qartsite.models import Membership, Team

        # The worker's engine is the one this process built and compiled (the bench cannot load weights from
        # disk: there are none); everything else is the product's code path.
        warm_engines.get_engine = lambda spec=None, optimize=True: engine
        started = time.perf_counter()
        ranking.warm_verifier(ranking.BestOfNConfig().workers)
        out["verifier_warm_s"] = round(time.perf_counter() - started, 2)
        # Which decoders verified these jobs: a machine without libzbar0 verifies with two of the three, and is
        # faster for it (every GPU whole job until 2026-12-05 was; bench/GPU.md, fifteenth step).
        out["decoders"] = list(decoders.available_readers())
        clock = TailClock()
        restore = clock.install(engine, jobs, ranking, job_files)
        user = get_user_model().objects.create_user("bench")
        team = Team.objects.create(name="bench")
        Membership.objects.create(team=team, user=user, role="owner")
        queue = django_rq.get_queue(jobs.QUEUE)
        out["summary"] = {}
        fewstep_name = f"code-like, few-step {fewstep_steps} steps ({fewstep_scheduler})"
        settings = {"code": (f"code-like, {steps} steps", steps, "dpmpp_2m_karras", False, True),
                    "code-whole": (f"code-like, {steps} steps, whole batch decoded at once", steps, "dpmpp_2m_karras",
                                   False, True),
                    "code-halves": (f"code-like, {steps} steps, each verdict in two processes at most", steps,
                                    "dpmpp_2m_karras", False, True),
                    "code-thirds": (f"code-like, {steps} steps, each verdict in three processes at most", steps,
                                    "dpmpp_2m_karras", False, True),
                    "code-pillow": (f"code-like, {steps} steps, PNGs by Pillow at level 1", steps, "dpmpp_2m_karras",
                                    False, True),
                    "code-quiet": (f"code-like, {steps} steps, progress written once a minute", steps,
                                   "dpmpp_2m_karras", False, True),
                    "code-exp": (f"code-like, {steps} steps, FA4 softmax variant", steps, "dpmpp_2m_karras", False,
                                 True),
                    "code-nice": (f"code-like, {steps} steps, verifier processes at nice {NICE}", steps,
                                  "dpmpp_2m_karras", False, True),
                    "code-queued": (f"code-like, {steps} steps, every decode queued first", steps,
                                    "dpmpp_2m_karras", False, True),
                    "code-gc": (f"code-like, {steps} steps, objects frozen out of the collector", steps,
                                "dpmpp_2m_karras", False, True),
                    "code-nographs": (f"code-like, {steps} steps, VAE decoder without CUDA graphs", steps,
                                      "dpmpp_2m_karras", False, True),
                    "turbo": (f"code-like, turbo {turbo_steps} steps", turbo_steps, "dpmpp_2m_karras", False, True),
                    "noise": (f"noise, {steps} steps", steps, "dpmpp_2m_karras", False, False),
                    "repair": (f"noise, {steps} steps, repair 2", steps, "dpmpp_2m_karras", True, False),
                    "fewstep": (fewstep_name, fewstep_steps, fewstep_scheduler, False, True)}

        def new_job(job_steps, scheduler, repair, r):
            return GenerationJob.objects.create(
                owner=user, team=team, prompt=Prompt.remember(user, prompt, "", team), content=content,
                steps=job_steps, size=size, candidates_per_batch=n, max_batches=1, repair=repair,
                seed=seed + r, scheduler=scheduler,
            )

        def row_of(job) -> dict:
            job.refresh_from_db()
            if job.status != GenerationJob.Status.DONE:
                raise RuntimeError(f"job {job.pk} ended {job.status}: {job.error}")
            return dict(total=job.total_seconds, queue=job.queue_seconds, generation=job.generation_seconds,
                        scoring=job.scoring_seconds,
                        store_and_rest=job.total_seconds - job.queue_seconds - job.generation_seconds
                        - job.scoring_seconds,
                        candidates=job.candidates.count(), passed=job.candidates.filter(verdict="pass").count(),
                        repaired=job.candidates.filter(repaired=True).count())

        def work(**kwargs) -> None:  # burst (every job queued, then stop) unless told otherwise
            kwargs.setdefault("burst", True)
            GenerationWorker([queue], connection=queue.connection).work(logging_level="WARNING", **kwargs)

        for kind in dict.fromkeys(kinds):  # in the order asked for: the first matter most in a short call
            if kind.startswith("queue"):
                name, job_steps, scheduler, repair, _ = settings["fewstep" if kind == "queue-fewstep" else "code"]
                engine.generate = _code_like(generate)
                out[kind] = _queue(new_job, row_of, work, queue_jobs, job_steps, scheduler, f"{name}, queue", log)
                out["summary"][kind] = out[kind]["summary"]
                save()
                continue
            name, job_steps, scheduler, repair, code_like = settings[kind]
            engine.generate = clock.generate(_code_like(generate) if code_like else generate)
            # code-whole: the decoder's batch-n graph compiles in the untimed warm-up job
            decode_group = getattr(engine, "decode_group", None)
            if kind == "code-whole":
                if decode_group is None:
                    log("rq code-whole skipped: it needs a single-GPU engine (Engine.decode_group)")
                    continue
                engine.decode_group = 0
            if kind == "code-exp":
                best = (results or {}).get("fa4_exp_best")
                if best is None:
                    log("rq code-exp skipped: no FA4 softmax variant kept the images and beat the shipped one")
                    continue
                import fa4_exp  # bench/fa4_exp.py

                fa4_exp.install(best)  # FA4 compiles it again in the warm-up job
                name = f"{name} {best}"
            if kind == "code-nice":
                _renice(ranking, NICE, log)
            vae = getattr(getattr(engine, "txt2img", None), "vae", None)
            decoder = getattr(vae, "decoder", None)
            if kind == "code-nographs":
                if vae is None or vae.device.type != "cuda":
                    log("rq code-nographs skipped: it needs a single-GPU engine on CUDA")
                    continue
                from generator.core.engines import cuda

                cuda.compile_decoder(vae, cuda_graphs=False)
            splits, png_bytes, interval = ranking.SPLITS, images.png_bytes, jobs.ProgressWriter.INTERVAL
            decodes_ahead = decoding.decodes_ahead
            if kind == "code-queued":
                decoding.decodes_ahead = len
            if kind == "code-gc":
                gc.collect()
                gc.freeze()
            if kind in ("code-halves", "code-thirds"):
                most = 2 if kind == "code-halves" else 3
                ranking.SPLITS = {ways: parts for ways, parts in splits.items() if ways <= most}
            if kind == "code-pillow":
                images.png_bytes = _pillow_png
            if kind == "code-quiet":
                jobs.ProgressWriter.INTERVAL = 60.0
            try:
                rows = _timed_jobs(new_job, row_of, work, runs, job_steps, scheduler, repair, name, log, clock)
            except Exception as exc:  # recorded: the call's other kinds still matter
                log(f"rq {name} failed: {type(exc).__name__}: {exc}")
                out[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                save()
                continue
            finally:
                ranking.SPLITS, images.png_bytes, jobs.ProgressWriter.INTERVAL = splits, png_bytes, interval
                decoding.decodes_ahead = decodes_ahead
                if kind == "code-gc":
                    gc.unfreeze()
                if decoder is not None:
                    vae.decoder = decoder
                if kind == "code-exp":
                    fa4_exp.install("mufu")
                if kind == "code-nice":
                    _renice(ranking, 0, log)
                if decode_group is not None:
                    engine.decode_group = decode_group
            out[name] = rows
            out["summary"][name] = summarise(rows)
            save()
        return out
    finally:
        engine.generate = generate
        restore()
        redis_proc.kill()


def _renice(ranking, value: int, log) -> None:
    """Set the verifier processes' nice value (10: they yield a core to the worker's own threads, the one that
    launches the GPU's kernels among them, whenever both want it; 0: back as they were)."""
    pool = ranking._pool
    pids = list(getattr(pool, "_processes", {}) or {}) if pool is not None else []
    for pid in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, value)
        except OSError as exc:  # lowering it again needs privileges a bench may not have
            log(f"rq: nice {value} for verifier process {pid} refused: {exc}")
    log(f"rq: verifier processes {pids} at nice {value}")


def _pillow_png(image) -> bytes:
    """The candidates' PNG encoder before issue 16's eleventh step (Pillow, zlib level 1)."""
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _timed_jobs(new_job, row_of, work, runs: int, job_steps: int, scheduler: str, repair: bool, name: str,
                log, clock: TailClock) -> list[dict]:
    """`runs` jobs of one setting, one at a time, after one untimed warm-up job: their rows, with the clock's.

    As in production, one worker started once takes them all, each arriving while it waits on the queue: the worker
    runs in this (the main) thread, as RQ's signal handlers need, and a feeder thread enqueues each job `IDLE_BEFORE`
    s after the last one ended. (Until issue 16's fourteenth step a worker was started for each job, whose start-up
    counted in the job's queue time.) A job that does not end in time (`JOB_WAIT`; `WARM_UP_WAIT` for the warm-up,
    which may compile) stops the feeder; the worker stops `MAX_IDLE` s later.
    """
    from django import db

    from generator import jobs

    rows: list[dict] = []
    failed: list[BaseException] = []

    def feed() -> None:
        try:
            for r in range(runs + 1):
                time.sleep(IDLE_BEFORE)  # the worker back on the queue, waiting, as between people's requests
                job = new_job(job_steps, scheduler, repair, r)
                clock.reset()
                jobs.enqueue_generation(job)  # autocommit: on_commit sends at once
                limit = JOB_WAIT if r else WARM_UP_WAIT
                if not clock.finished.wait(limit):
                    raise RuntimeError(f"job {job.pk} did not end within {limit} s")
                row = row_of(job) | clock.row()
                log(f"rq {name} {'warm-up' if r == 0 else f'run {r}'}: "
                    + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
                if r:
                    rows.append(row)
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread, after the worker stopped
            failed.append(exc)
        finally:
            db.connection.close()  # this thread's own

    feeder = threading.Thread(target=feed, name="bench-feeder")
    feeder.start()
    work(burst=False, max_jobs=runs + 1, max_idle_time=MAX_IDLE)
    feeder.join()
    if failed:
        raise failed[0]
    return rows


def _queue(new_job, row_of, work, count: int, steps: int, scheduler: str, name: str, log) -> dict:
    """`count` jobs enqueued at once, then taken in turn by one worker: waits, totals, wall time, jobs per hour.

    One untimed job runs first (as each other kind's warm-up). The wall time starts before the rows are created, so
    jobs per hour includes creating and enqueueing them (`enqueue_s`)."""
    from generator import jobs

    warm = new_job(steps, scheduler, False, 99)  # one untimed job first, as the other kinds have
    jobs.enqueue_generation(warm)
    work()
    row_of(warm)
    started = time.perf_counter()
    queued = []
    for r in range(count):
        job = new_job(steps, scheduler, False, 100 + r)
        jobs.enqueue_generation(job)
        queued.append(job)
    enqueued = time.perf_counter() - started
    work()  # one worker, burst mode: every queued job, then it stops
    wall = time.perf_counter() - started
    rows = [row_of(job) for job in queued]
    waits = [row["queue"] for row in rows]
    result = dict(jobs=count, steps=steps, scheduler=scheduler, enqueue_s=round(enqueued, 3), wall_s=round(wall, 2),
                  jobs_per_hour=round(3600 * count / wall), wait_p50_s=round(statistics.median(waits), 2),
                  wait_p95_s=round(float(np.percentile(waits, 95)), 2), wait_max_s=round(max(waits), 2),
                  rows=[{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in rows],
                  summary=summarise(rows))
    log(f"rq {name}: {count} jobs in {wall:.1f}s ({result['jobs_per_hour']} jobs/hour), wait p50 "
        f"{result['wait_p50_s']}s p95 {result['wait_p95_s']}s max {result['wait_max_s']}s, total p95 "
        f"{result['summary']['total']['p95']}s")
    return result


class TailClock:
    """Where a job's time goes after the engine hands over its last image (issue 16, item 4), in this process.

    `install` wraps the worker's calls that follow the decode (the aesthetic scores, the verifier's processes, the
    wait for their verdicts, the PNGs, the rows stored and the job ended) to note when each starts or ends;
    `generate` wraps the engine's `generate` to note each hand-over. `row` gives every note as seconds after the last
    hand-over (`tail_*` keys), for one job at a time (`reset` before each): the bench's own timers, not the
    product's. Before it (negative): "generate_start" when the job called the engine, "first_handed" when the first
    image had been handed over and taken by the job. After it: "generated" when the engine returned; "last_part"
    when the verifier's processes returned their last task (a verdict's part; with repair, a repair round too);
    "verdicts" when the job had waited for them all and combined them; "pngs" when the encoder's PNGs were all in;
    "stored" and "finished" when `job_files.store` and `jobs._finish` returned.

    Beside them, in seconds: "handover_s", how long the job's hand-overs (`on_decoded`: the bench's blend, the PNGs
    started, the verifier's tasks sent) held the thread that launches the GPU's work; "gc_s" and "gc_runs", the
    garbage collector's passes in this process from `reset` on (any thread; `gc.callbacks`).
    """

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.finished = threading.Event()  # set when the job ended (`jobs._finish` returned); cleared by `reset`
        self.handover = self.gc = 0.0
        self.gc_runs = 0
        self._gc_start = 0.0

    def reset(self) -> None:
        self.marks = {}
        self.finished.clear()
        self.handover = self.gc = 0.0
        self.gc_runs = 0

    def _collected(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc += time.perf_counter() - self._gc_start
            self.gc_runs += 1

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter()  # the latest one counts (the pool's callbacks run in its thread)
        if name == "finished":
            self.finished.set()

    def row(self) -> dict:
        origin = self.marks.get("handed", self.marks.get("generated"))
        if origin is None:
            return {}
        return {f"tail_{name}": round(at - origin, 4) for name, at in sorted(self.marks.items(), key=lambda m: m[1])
                if name != "handed"} | dict(handover_s=round(self.handover, 4), gc_s=round(self.gc, 4),
                                            gc_runs=self.gc_runs)

    def timed(self, function, start: str | None, end: str):
        def wrapper(*args, **kwargs):
            if start is not None:
                self.mark(start)
            try:
                return function(*args, **kwargs)
            finally:
                self.mark(end)

        return wrapper

    def generate(self, generate):
        def wrapper(control, params, seeds, on_decoded=None, **kwargs):
            def handed(group: list) -> None:
                if on_decoded is not None:
                    started = time.perf_counter()
                    on_decoded(group)
                    self.handover += time.perf_counter() - started
                if "first_handed" not in self.marks:
                    self.mark("first_handed")
                self.mark("handed")

            self.mark("generate_start")

            try:
                return generate(control, params, seeds, on_decoded=handed, **kwargs)
            finally:
                self.mark("generated")

        return wrapper

    def install(self, engine, jobs, ranking, job_files):
        """Wrap the calls after the decode; returns a function that puts the originals back."""
        clock = self
        wrapped = [(engine, "score_aesthetics"), (ranking, "submit_verify"), (ranking, "verifier_pool"),
                   (job_files.PngEncoder, "pngs"), (job_files, "store"), (jobs, "_finish")]
        originals = [(owner, name, vars(owner).get(name)) for owner, name in wrapped]  # None: the class's method
        engine.score_aesthetics = self.timed(engine.score_aesthetics, "aesthetics_start", "aesthetics")
        submit_verify, verifier_pool = ranking.submit_verify, ranking.verifier_pool

        def submit(*args, **kwargs):
            results = submit_verify(*args, **kwargs)
            return self.timed(results, None, "verdicts")

        class Pool:  # the verifier's pool, noting when each task comes back; anything else goes to the pool
            def __init__(self, pool) -> None:
                self.pool = pool

            def __getattr__(self, name: str):
                return getattr(self.pool, name)

            def submit(self, *args, **kwargs):
                future = self.pool.submit(*args, **kwargs)
                future.add_done_callback(lambda _: clock.mark("last_part"))
                return future

        def pool(workers: int):
            found = verifier_pool(workers)
            return None if found is None else Pool(found)

        ranking.submit_verify, ranking.verifier_pool = submit, pool
        gc.callbacks.append(self._collected)
        job_files.PngEncoder.pngs = self.timed(job_files.PngEncoder.pngs, None, "pngs")
        job_files.store = self.timed(job_files.store, None, "stored")
        jobs._finish = self.timed(jobs._finish, None, "finished")

        def restore() -> None:
            gc.callbacks.remove(self._collected)
            for owner, name, original in originals:
                if original is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)

        return restore


def _code_like(generate):
    """`engine.generate`, then each image blended 55/45 with the control image (see the module docstring).

    The blend is the bench's stand-in, not the product's work, yet it runs inside the job's timings: OpenCV's
    saturating 8-bit blend keeps it to about 10 ms for 8 images on an H200 host (float32 arrays in numpy took ~50 ms
    of the whole-job figures up to 2026-12-02; OpenCV rounds where numpy truncated, one level at most)."""
    import cv2
    from PIL import Image

    def wrapper(control, params, seeds, on_decoded=None, **kwargs):
        blended: list = []  # every group blended as the engine hands it over, so the job verifies the blends

        def blend(group: list) -> None:
            code = np.asarray(control.convert("RGB").resize(group[0].size))
            group = [Image.fromarray(cv2.addWeighted(code, 0.55, np.asarray(im.convert("RGB")), 0.45, 0))
                     for im in group]
            blended.extend(group)
            if on_decoded is not None:
                on_decoded(group)

        generate(control, params, seeds, on_decoded=blend, **kwargs)
        return blended

    return wrapper


def main() -> None:
    """CPU dry run with the tiny model: `python bench/rq_job.py --tiny`."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", required=True)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--queue-jobs", type=int, default=5)
    args = parser.parse_args()
    from dataclasses import replace

    from generator.core.engines import loading, tiny

    folder = Path(tempfile.mkdtemp(prefix="qart-tiny-"))
    spec = tiny.tiny_spec(folder)
    lora = folder / "fewstep_lora.safetensors"
    from diffusers import UNet2DConditionModel

    tiny.save_tiny_lora(lora, UNet2DConditionModel.from_pretrained(spec.base, subfolder="unet"), rank=4)
    engine = loading.load_engine(replace(spec, fewstep_lora=str(lora)), warm_up=False)
    result = run(engine, steps=2, size=256, n=4, runs=args.runs, seed=1000, prompt="a koi pond", turbo_steps=1,
                 content="https://qart.example/r/AbC123", log=lambda m: print(m, flush=True),
                 kinds=args.kinds.split(","), fewstep_steps=2, queue_jobs=args.queue_jobs)
    print(result["summary"])


if __name__ == "__main__":
    main()
