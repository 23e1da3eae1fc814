"""Whole generation jobs as the product runs them: a GenerationJob row, enqueued on Redis, run by an RQ worker.

Called by `bench/gpu.py --variants P,rq` on the device machine with the product engine (P) already compiled and
warm; also runs on the CPU with the tiny model (`python bench/rq_job.py --tiny`) as a dry run. Each run:

1. creates a GenerationJob (8 candidates, 768², the engine's steps; one batch) and enqueues it on the `gpu`
   queue with `generator.jobs.enqueue_generation`, exactly as the page and the API do;
2. a `generator.worker.GenerationWorker` in burst mode takes it from Redis and runs `generator.jobs.run_generation`
   (generate, verify in the process pool while the aesthetic head runs, rank, encode PNGs, store rows);
3. the job's own timings are read back from the database: `total_seconds` is enqueue (row created) -> ranked
   candidates stored; `queue_seconds` is pickup.

Settings, each timed over `runs` jobs after one warm-up job:
- "code-like": the typical path. Random weights make noise that never scans, and OpenCV's WeChat detector spends
  ~1.8 s on one 768² noise image against ~0.01 s on a picture that contains a code, so noise would time a verifier
  that real QR art never meets. Here the GPU generation runs in full, then each image is blended 55/45 with the
  control image before verification (a stand-in for art that carries its code); repair off, one batch. At the
  product's 25 steps and with the "turbo" preset's 15.
- "noise": the same job on the raw noise (the verifier's pessimistic case; nothing passes; repair off).
- "noise, repair 2": nothing passes and repair runs on the two best-looking candidates (the worst one-batch job).

Services: Redis from `$QART_REDIS_SERVER` (default `redis-server` on PATH) on a free loopback port, SQLite and
media in a temporary folder. Django's settings are qartsite's, with only the apps a worker needs (the device has no
DRF and no drf-spectacular; nothing here touches them).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KINDS = ("code", "turbo", "noise", "repair")


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


def setup_django(folder: Path, redis_url: str) -> None:
    os.environ.update(DATABASE_URL=f"sqlite:///{folder}/qart.sqlite3", REDIS_URL=redis_url, DEBUG="1",
                      MEDIA_ROOT=str(folder / "media"), DJANGO_SETTINGS_MODULE="qartsite.settings")
    import django
    from django.conf import settings

    import qartsite.settings as base

    conf = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    skip = ("rest_framework", "django_filters", "drf_spectacular")
    conf["INSTALLED_APPS"] = [app for app in conf["INSTALLED_APPS"] if not app.startswith(skip)]
    conf["MIDDLEWARE"] = []
    conf["DEBUG"] = False  # no query log growing over the runs
    conf["LOGGING"] = {"version": 1, "disable_existing_loggers": False}
    settings.configure(**conf)
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float)) and not isinstance(rows[0][k], bool)]
    return {k: dict(median=round(statistics.median(r[k] for r in rows), 4),
                    p95=round(float(np.percentile([r[k] for r in rows], 95)), 4)) for k in keys}


def run(engine, *, steps: int, size: int, n: int, runs: int, seed: int, prompt: str, content: str, log,
        save=lambda: None, results: dict | None = None, turbo_steps: int = 15,
        kinds: Sequence[str] = KINDS) -> dict:
    """Time `runs` whole jobs per setting (plus one untimed warm-up job) with `engine` as the worker's engine.

    `kinds` picks the settings (see the module docstring): code, turbo, noise, repair.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown job kinds {sorted(unknown)}: choose from {', '.join(KINDS)}")
    folder = Path(tempfile.mkdtemp(prefix="qart-rq-"))
    redis_proc, redis_url = start_redis(folder)
    out: dict = {"runs": runs, "steps": steps, "size": size, "candidates": n, "cpu_count": os.cpu_count()}
    if results is not None:
        results["rq"] = out
    try:
        setup_django(folder, redis_url)
        import django_rq
        from django.contrib.auth import get_user_model

        from generator import jobs
        from generator.core.engines import ranking
        from generator.models import GenerationJob, Prompt
        from generator.worker import GenerationWorker
        from qartsite.models import Membership, Team

        # The worker's engine is the one this process built and compiled (the bench cannot load weights from
        # disk: there are none); everything else is the product's code path.
        jobs.get_engine = lambda spec=None, optimize=True: engine
        started = time.perf_counter()
        ranking.warm_verifier(ranking.BestOfNConfig().workers)
        out["verifier_warm_s"] = round(time.perf_counter() - started, 2)
        user = get_user_model().objects.create_user("bench")
        team = Team.objects.create(name="bench")
        Membership.objects.create(team=team, user=user, role="owner")
        queue = django_rq.get_queue(jobs.QUEUE)
        out["summary"] = {}
        generate = engine.generate
        settings = {"code": (f"code-like, {steps} steps", steps, False, True),
                    "turbo": (f"code-like, turbo {turbo_steps} steps", turbo_steps, False, True),
                    "noise": (f"noise, {steps} steps", steps, False, False),
                    "repair": (f"noise, {steps} steps, repair 2", steps, True, False)}
        for name, job_steps, repair, code_like in (settings[kind] for kind in KINDS if kind in kinds):
            engine.generate = _code_like(generate) if code_like else generate
            rows = []
            for r in range(runs + 1):
                job = GenerationJob.objects.create(
                    owner=user, team=team, prompt=Prompt.remember(user, prompt, "", team), content=content,
                    steps=job_steps, size=size, candidates_per_batch=n, max_batches=1, repair=repair,
                    seed=seed + r,
                )
                jobs.enqueue_generation(job)  # autocommit: on_commit sends at once
                GenerationWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")
                job.refresh_from_db()
                if job.status != GenerationJob.Status.DONE:
                    raise RuntimeError(f"job {job.pk} ended {job.status}: {job.error}")
                row = dict(total=job.total_seconds, queue=job.queue_seconds, generation=job.generation_seconds,
                           scoring=job.scoring_seconds,
                           store_and_rest=job.total_seconds - job.queue_seconds - job.generation_seconds
                           - job.scoring_seconds,
                           candidates=job.candidates.count(), passed=job.candidates.filter(verdict="pass").count(),
                           repaired=job.candidates.filter(repaired=True).count())
                log(f"rq {name} {'warm-up' if r == 0 else f'run {r}'}: "
                    + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
                if r:
                    rows.append(row)
            out[name] = rows
            out["summary"][name] = summarise(rows)
            save()
        engine.generate = generate
        return out
    finally:
        redis_proc.kill()


def _code_like(generate):
    """`engine.generate`, then each image blended 55/45 with the control image (see the module docstring)."""
    from PIL import Image

    def wrapper(control, params, seeds, **kwargs):
        images = generate(control, params, seeds, **kwargs)
        code = np.asarray(control.convert("RGB").resize(images[0].size), dtype=np.float32)
        return [Image.fromarray((0.55 * code + 0.45 * np.asarray(im.convert("RGB"), dtype=np.float32))
                                .astype(np.uint8)) for im in images]

    return wrapper


def main() -> None:
    """CPU dry run with the tiny model: `python bench/rq_job.py --tiny`."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", required=True)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    from generator.core.engines import loading, tiny

    folder = Path(tempfile.mkdtemp(prefix="qart-tiny-"))
    spec = tiny.tiny_spec(folder)
    engine = loading.load_engine(spec, warm_up=False)
    result = run(engine, steps=2, size=256, n=4, runs=args.runs, seed=1000, prompt="a koi pond", turbo_steps=1,
                 content="https://qart.example/r/AbC123", log=lambda m: print(m, flush=True))
    print(result["summary"])


if __name__ == "__main__":
    main()
