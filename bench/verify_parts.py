"""What each piece of one verdict costs on one core, and each part of it under `ranking.SPLITS` (issue 16, item 4).

    taskset -c 1 python bench/verify_parts.py [--runs 7] [--out DIR]

On four 768 px images (code-like as `bench/verify_pool.py` makes them, the calibration set's "art" at 0.3 and
"blended" at 0.5, raw noise), median of `--runs`, one OpenCV thread (as `ranking.verifier_pool`'s processes):
- each view's pieces: the capture made, zxing, zbar, the finder check (a verdict runs it only where the fast decoders
  read nothing); the original's slow decoder (WeChat) and its grading; the whole `scan.verify`;
- each part of each split in `ranking.SPLITS`, run one after another in this process: with a process for each part
  and nothing else on the cores, the slowest part bounds the verdict. Each split's verdict is checked against
  `scan.verify`'s (`same`).
Results: lines on stdout and `verify_parts.json` in `--out`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.verify_pool import CONTENT, code_like  # noqa: E402
from generator.core.codes import captures, decoders, finders, grading, scan, synthetic  # noqa: E402
from generator.core.engines import ranking  # noqa: E402


def timed(runs: int, function, *args, **kwargs):
    seconds, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        seconds.append(time.perf_counter() - started)
    return round(1000 * statistics.median(seconds), 1), result


def images() -> dict[str, tuple[np.ndarray, str]]:
    art = synthetic.make_sample("art", 0.3, seed=1003)
    blended = synthetic.make_sample("blended", 0.5, seed=4)
    noise = np.random.default_rng(2).integers(0, 256, (768, 768), dtype=np.uint8)
    return {"code-like": (np.asarray(code_like(1)[0].convert("L")), CONTENT), "art": (art.gray, art.content),
            "blended": (blended.gray, blended.content), "noise": (noise, CONTENT)}


def pieces(gray: np.ndarray, expected: str, runs: int) -> dict:
    seed = scan.image_seed(gray, 0)
    row: dict = {}
    for i in range(scan.FULL_CAPTURES + 1):
        ms, (view,) = timed(runs, captures.phone_views, gray, scan.FULL_CAPTURES, seed=seed, indices=range(i, i + 1))
        row[captures.view_name(i)] = {"capture": ms, "zxing": timed(runs, decoders.read_zxing, view.gray)[0],
                                      "zbar": timed(runs, decoders.read_zbar, view.gray)[0],
                                      "finder": timed(runs, finders.present, view.gray)[0]}
    row["original"]["wechat"] = timed(runs, decoders.read_wechat, gray)[0]
    row["original"]["grading"] = timed(runs, grading.grade, gray, expected)[0]
    row["verify"], whole = timed(runs, scan.verify, gray, expected)
    row["verdict"] = f"{whole.verdict} {whole.scan_probability}"
    for ways, split in sorted(ranking.SPLITS.items()):
        times = [timed(runs, scan.verify_part, gray, expected, views, pieces=kept) for views, kept in split]
        combined = scan.combine(gray, expected, [part for _, part in times])
        same = {**combined.to_dict(), "seconds": 0} == {**whole.to_dict(), "seconds": 0}
        row[f"{ways}-way"] = {"parts_ms": [ms for ms, _ in times], "slowest_ms": max(ms for ms, _ in times),
                              "same": same}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    cv2.setNumThreads(1)
    scan.verify(images()["code-like"][0], CONTENT)  # warm-up: the decoders and WeChat's nets loaded
    out = {}
    for name, (gray, expected) in images().items():
        out[name] = pieces(gray, expected, args.runs)
        for key, value in out[name].items():
            print(f"{name:10s} {key:10s} {value}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "verify_parts.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
