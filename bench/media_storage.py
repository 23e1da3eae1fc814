"""What keeping media in a bucket costs, against the filesystem: storing a job's images and reading one back.

    bench/media_storage.sh [REPEATS=20]   (starts SeaweedFS on loopback, like make test, and runs this)

For each storage (MEDIA_ROOT in a temporary folder; the bucket of QART_TEST_S3_*, as make test exports it; the same
bucket through `bench/latency_proxy.py`, 5 and 15 ms each way, as a bucket across a network would answer):
- store a job's files as `generator.job_files.store` does (`_store_files`: the control image and 8 candidates, 768x768
  PNGs, into the file fields of unsaved rows): side by side over `job_files.store_pool`, and one after another as
  before it (the same code over a pool of one thread); and one file alone, the least that storing each PNG as soon as
  it is encoded could leave after the last one. Every pool's threads are warm (two jobs stored first);
- read one image as `/media/` does for a member of its team: modification time, open and read.
Prints the medians as a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import io
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="qart-bench-media-")
for name in ("ENDPOINT_URL", "BUCKET", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"):
    os.environ[f"MEDIA_S3_{name}"] = os.environ[f"QART_TEST_S3_{name}"]
os.environ.update(MEDIA_S3_REGION="us-east-1", MEDIA_S3_ADDRESSING_STYLE="path", MEDIA_S3_PREFIX="bench")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files.storage import storages  # noqa: E402

from generator import job_files  # noqa: E402
from generator.models import Candidate, GenerationJob  # noqa: E402
from qartsite.storage import S3MediaStorage  # noqa: E402

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
FILES = 9  # a control image and 8 candidates
DELAYS_MS = (5, 15)  # one way, through bench/latency_proxy.py
job_pks = itertools.count(1_000_000)  # a new job a run: no name is taken, no extra HEAD for a free one


def candidate_png(seed: int) -> bytes:
    """A 768x768 PNG about as large as a generated candidate's: smooth colour with detail on top."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:768, 0:768]
    base = np.stack([(x / 3) % 256, (y / 3) % 256, ((x + y) / 6) % 256], axis=-1)
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def median_ms(run, repeats: int = REPEATS) -> float:
    run(), run()  # warm: every pool thread's connection open, the first objects written
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds)


def job_files_to_store(storage, pngs: list[bytes]) -> list:
    """`job_files.store`'s (field file, name, PNG) for a new job in `storage`: its control image, then a candidate a
    PNG."""
    job = GenerationJob(pk=next(job_pks))
    rows = [Candidate(job=job, index=index, seed=9 + index) for index in range(len(pngs) - 1)]
    files = job_files._files_to_store(job, pngs[0], rows, pngs[1:])
    for file, _, _ in files:
        file.storage = storage
    return files


@contextmanager
def store_pool_of_one():
    """`job_files` storing one file after another, as before `store_pool`: the same code over one warm thread."""
    pool, kept = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-before"), job_files.store_pool
    job_files.store_pool = lambda: pool
    try:
        yield
    finally:
        job_files.store_pool = kept
        pool.shutdown()


@contextmanager
def latency_proxy(endpoint: str, delay_ms: float):
    """The endpoint of `bench/latency_proxy.py` started in front of `endpoint` with `delay_ms` each way."""
    address = urlsplit(endpoint)
    proxy = subprocess.Popen([sys.executable, str(Path(__file__).with_name("latency_proxy.py")), address.netloc,
                              str(delay_ms)], stdout=subprocess.PIPE, text=True)
    try:
        yield f"{address.scheme}://127.0.0.1:{proxy.stdout.readline().strip()}"
    finally:
        proxy.terminate()
        proxy.wait()


def measure(storage, pngs: list[bytes]) -> tuple[float, float, float, float]:
    """(one after another, side by side, one file alone, one read), medians in ms."""
    def store(count: int = FILES):
        files = job_files_to_store(storage, pngs[:count])
        job_files._store_files(files)
        return files[0][0]  # the control image's field file, as large as a candidate's

    with store_pool_of_one():
        before = median_ms(store)
    now, alone = median_ms(store), median_ms(lambda: store(1))
    stored = store(1)

    def serve_one() -> None:
        storage.get_modified_time(stored.name)
        with storage.open(stored.name, "rb") as file:
            assert len(file.read()) == len(pngs[0])

    return before, now, alone, median_ms(serve_one)


def main() -> None:
    pngs = [candidate_png(seed) for seed in range(FILES)]
    print(f"{FILES} PNGs of {statistics.mean(len(p) for p in pngs) / 1e6:.2f} MB on average, {REPEATS} repeats",
          file=sys.stderr)
    rows = [("filesystem (MEDIA_ROOT)", measure(storages["filesystem"], pngs)),
            ("SeaweedFS on loopback (S3)", measure(storages["s3"], pngs))]
    options = settings.STORAGES["s3"]["OPTIONS"]
    for delay in DELAYS_MS:
        with latency_proxy(options["endpoint_url"], delay) as endpoint:
            rows.append((f"the same through a {delay} ms each way proxy",
                         measure(S3MediaStorage(**{**options, "endpoint_url": endpoint}), pngs)))
        print(f"{rows[-1][0]}: done", file=sys.stderr)
    print(f"| storage | store a job's {FILES} images one after another (before) | side by side over "
          "`job_files.store_pool` | one image alone | read one image as /media/ does |")
    print("|---|---|---|---|---|")
    for label, (before, now, alone, serve) in rows:
        print(f"| {label} | {before:.0f} ms | {now:.0f} ms | {alone:.0f} ms | {serve:.1f} ms |")


if __name__ == "__main__":
    main()
