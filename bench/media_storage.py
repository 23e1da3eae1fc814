"""What keeping media in a bucket costs, against the filesystem: storing a job's images and reading one back.

    bench/media_storage.sh [REPEATS=20]   (starts SeaweedFS on loopback, like make test, and runs this)

For each storage (MEDIA_ROOT in a temporary folder; the bucket of QART_TEST_S3_*, as make test exports it):
- store a job: the control image and 8 candidates, 768x768 PNGs, one after another through `storage.save`, as
  `generator.job_files.store` does; and, for comparison, the same 9 files over 8 threads whose connections are already
  open (a pool kept for the life of the worker);
- read one image as `/media/` does for a member of its team: modification time, open and read.
Prints the medians as a Markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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

from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.storage import storages  # noqa: E402

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
FILES = 9  # a control image and 8 candidates


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
    run(0)  # warm: connections open, the first object written
    seconds = []
    for repeat in range(1, repeats + 1):
        started = time.perf_counter()
        run(repeat)
        seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds)


def main() -> None:
    pngs = [candidate_png(seed) for seed in range(FILES)]
    print(f"{FILES} PNGs of {statistics.mean(len(p) for p in pngs) / 1e6:.2f} MB on average, {REPEATS} repeats",
          file=sys.stderr)
    pool = ThreadPoolExecutor(max_workers=8)
    rows = []
    for label, storage in (("filesystem (MEDIA_ROOT)", storages["filesystem"]),
                           ("SeaweedFS on loopback (S3)", storages["s3"])):

        def store_in_series(repeat: int, storage=storage) -> None:
            for index, png in enumerate(pngs):
                storage.save(f"generations/{repeat}/candidate-{index:02d}.png", ContentFile(png))

        def store_in_threads(repeat: int, storage=storage) -> None:
            names = [f"generations/t{repeat}/candidate-{index:02d}.png" for index in range(FILES)]
            list(pool.map(lambda pair: storage.save(pair[0], ContentFile(pair[1])), zip(names, pngs, strict=True)))

        def serve_one(repeat: int, storage=storage) -> None:
            name = f"generations/{repeat}/candidate-00.png"
            storage.get_modified_time(name)
            with storage.open(name, "rb") as stored:
                assert len(stored.read()) == len(pngs[0])

        store = median_ms(store_in_series)
        rows.append((label, store, median_ms(store_in_threads), median_ms(serve_one)))
    pool.shutdown()
    print("| storage | store a job's 9 images, one after another | the same over 8 warm threads | "
          "read one image as /media/ does |")
    print("|---|---|---|---|")
    for label, series, threads, serve in rows:
        print(f"| {label} | {series:.0f} ms | {threads:.0f} ms | {serve:.1f} ms |")


if __name__ == "__main__":
    main()
