"""Time the verifier's process pool on one batch, as a GPU worker's job verifies it (issue 16, the job's tail).

    python bench/verify_pool.py [--images 8] [--runs 12] [--workers N] [--out DIR]

Eight code-like candidates (the control image blended 55/45 with upsampled noise, as `bench/rq_job.py`'s
"code-like" jobs) are verified with `ranking.verify_many` in three pools of `--workers` processes (default: one per
core), each timed over `--runs` batches after a warm-up:
- "one task an image, OpenCV's threads": the pool before 2026-12-02 (OpenCV's default thread pool in each process);
- "one task an image, one thread": `ranking.verifier_pool`'s processes (one OpenCV thread each), no split;
- "two tasks an image": the product (`ranking.submit_verify` sends each image's luminance, not its RGB, and splits each
  verdict over two processes when there are two an image; `scan.combine` makes the same verdict).
Every pool's verdicts are checked against the inline `scan.verify` (same probability, verdict and reads).
Results: a table on stdout and `verify_pool.json` in `--out`.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from generator.core.codes import qr, scan  # noqa: E402
from generator.core.engines import ranking  # noqa: E402

CONTENT = "https://qart.example/r/Bench123"


def code_like(count: int, size: int = 768) -> list[Image.Image]:
    control = np.asarray(qr.render_control_image(qr.encode(CONTENT), size).convert("RGB"), np.float32)
    rng = np.random.default_rng(0)
    images = []
    for _ in range(count):
        noise = Image.fromarray(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8))
        noise = np.asarray(noise.resize((size, size), Image.Resampling.BICUBIC), np.float32)
        images.append(Image.fromarray((0.55 * control + 0.45 * noise).astype(np.uint8)))
    return images


def _nothing(_: int) -> int:
    return os.getpid()


def verify(images: list[Image.Image], workers: int, split: bool) -> list[scan.ScanResult]:
    if split:
        return ranking.verify_many(images, CONTENT, 0.5, workers)
    # One task an image: what `submit_verify` did before it split verdicts
    return ranking._submit([functools.partial(scan.verify, image, CONTENT) for image in images], workers)()


def timed(images: list[Image.Image], workers: int, runs: int, split: bool) -> tuple[list[float], list]:
    verify(images, workers, split)  # warm-up: decoders and WeChat's nets loaded in every process
    seconds, results = [], []
    for _ in range(runs):
        started = time.perf_counter()
        results = verify(images, workers, split)
        seconds.append(time.perf_counter() - started)
    return seconds, results


def summary(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"median_s": round(statistics.median(ordered), 4),
            "p95_s": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 4),
            "max_s": round(ordered[-1], 4), "runs": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    images = code_like(args.images)
    inline = [scan.verify(image, CONTENT) for image in images]
    one_image = [scan.verify(images[0], CONTENT).seconds for _ in range(5)]
    rows = {"inline, one image, one process (s)": statistics.median(one_image)}
    report: dict = {"cores": os.cpu_count(), "workers": args.workers, "images": args.images, "pools": {}}

    # Before: OpenCV's own thread pool in every verifier process (a pool made here, handed to ranking)
    context = multiprocessing.get_context("forkserver")
    before = ProcessPoolExecutor(max_workers=args.workers, mp_context=context)
    list(before.map(_nothing, range(args.workers)))
    ranking._pool, ranking._pool_size = before, args.workers
    cases = [("one task an image, OpenCV's threads", False)]
    results = {}
    seconds, results[cases[0][0]] = timed(images, args.workers, args.runs, split=False)
    report["pools"][cases[0][0]] = summary(seconds)
    before.shutdown()
    ranking._pool = None

    for name, split in (("one task an image, one thread", False), ("two tasks an image", True)):
        seconds, results[name] = timed(images, args.workers, args.runs, split=split)
        report["pools"][name] = summary(seconds)

    for name, got in results.items():
        pairs = zip(got, inline, strict=True)
        same = all({**a.to_dict(), "seconds": 0} == {**b.to_dict(), "seconds": 0} for a, b in pairs)
        report["pools"][name]["same_as_inline"] = same
    report["inline_one_image_median_s"] = round(rows["inline, one image, one process (s)"], 4)
    report["passed"] = sum(r.passed for r in inline)

    print(f"verify_pool: {args.images} code-like 768² images, {args.workers} processes on {os.cpu_count()} cores; "
          f"one image inline {report['inline_one_image_median_s']:.3f} s; {report['passed']} pass")
    print(f"{'pool':40} {'median s':>9} {'p95 s':>8} {'max s':>8}  same verdicts")
    for name, row in report["pools"].items():
        print(f"{name:40} {row['median_s']:9.3f} {row['p95_s']:8.3f} {row['max_s']:8.3f}  {row['same_as_inline']}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "verify_pool.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
