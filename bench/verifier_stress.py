"""Stress the verifier's threading: parallel `verify_many` then repairs, as a GPU worker's job does.

    python bench/verifier_stress.py --seconds 240 --threads 16

Written after WeChat's detector corrupted the heap on a 16-core GPU host when verifier threads ran it at
once; the process aborts (and this prints nothing more) if that comes back. Prints rounds done and timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from generator.core.codes import (  # noqa: E402
    grids,
    qr,
    repair,
    synthetic,  # noqa: E402
)
from generator.core.engines import ranking  # noqa: E402


def candidates(code: qr.QRCode, seed: int) -> list[Image.Image]:
    base = np.asarray(qr.render_control_image(code, 768).convert("L"), np.float32)
    images = []
    for i in range(8):
        rng = np.random.default_rng(seed * 8 + i)
        alpha = rng.uniform(0.15, 0.6) * synthetic.centre_weights(code, 768, 4)
        art = np.clip(synthetic.texture(rng, 768) * (1 - alpha) + base * alpha, 0, 255).astype(np.uint8)
        images.append(Image.fromarray(art).convert("RGB"))
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    code = qr.encode("https://qart.example/r/AbC123")
    grid = grids.grid_from_code(code, 768, 4)
    deadline = time.monotonic() + args.seconds
    rounds, verify_s, repair_s = 0, [], []
    while time.monotonic() < deadline:
        images = candidates(code, rounds)
        started = time.perf_counter()
        scans = ranking.verify_many(images, code.content, 0.5, args.threads)
        verify_s.append(time.perf_counter() - started)
        failing = [i for i, s in enumerate(scans) if not s.passed][:2]
        started = time.perf_counter()
        for i in failing:
            repair.repair(images[i], grid, code.content, before=scans[i])
        repair_s.append(time.perf_counter() - started)
        rounds += 1
        print(f"round {rounds}: verify {verify_s[-1]:.2f} s, repair {repair_s[-1]:.2f} s", flush=True)
    print(f"OK: {rounds} rounds without a crash; verify_many median {statistics.median(verify_s):.2f} s, "
          f"repair of up to 2 median {statistics.median(repair_s):.2f} s ({args.threads} threads)")


if __name__ == "__main__":
    main()
