"""Halftone engine speed and quality on one CPU core: ms per candidate, pass rate, fidelity.

    taskset -c 0 .venv/bin/python bench/halftone.py [--size 768] [--per-picture 8] [--json]

Pictures: scikit-image's sample photos (requirements-nodeps.txt installs the wheel for its data only) and the
synthetic ones the tests use (flat colour, white, black, noise, text, gradient). Every candidate is drawn,
verified with the full strict verdict and the robust margin and strengthened until both hold
(`halftone.make_candidate`), inline in this process with OpenCV on one thread, so the figures are one core's.
Target: <= 1 s per candidate at 768². Each candidate is then read by zxing and WeChat on four phone-like captures
seeded apart from the engine's own (`independent_captures`): the "captures read" column; and on captures of the whole
image written apart from the engine's capture model (`bench/phone_captures.py`: the image at 260-400 px, tilted up to
25 degrees, defocus up to 1.5 px, noise, JPEG 50-80): its four-capture ramp and `--phone-random` random ones, the
"whole-image captures" columns. `--verdict-only` returns every variant that passes the verdict, without the robust
margin or the spots fitted to a soft capture (the engine as it was when issue 12 was filed), for comparison.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.phone_captures as phone  # noqa: E402
from generator.core.codes import (
    captures,  # noqa: E402
    decoders,  # noqa: E402
    grids,  # noqa: E402
    qr,  # noqa: E402
    robust,  # noqa: E402
)
from generator.core.engines import halftone, halftone_drawing  # noqa: E402

cv2.setNumThreads(1)
URL = "https://qart.example/r/AbC12345"
PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "logo", "page", "coins")


def photos() -> dict[str, Image.Image]:
    spec = importlib.util.find_spec("skimage")  # its data only: the wheel is installed without its dependencies
    if spec is None or not spec.submodule_search_locations:
        return {}
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    found = {}
    for name in PHOTOS:
        for suffix in (".png", ".jpg"):
            if (folder / f"{name}{suffix}").exists():
                found[name] = Image.open(folder / f"{name}{suffix}").convert("RGB")
    return found


def synthetic() -> dict[str, Image.Image]:
    text = Image.new("RGB", (320, 320), "white")
    draw = ImageDraw.Draw(text)
    for row in range(12):
        draw.text((8, 8 + row * 26), "QART halftone engine " * 2, fill=(20, 20, 20))
    x = np.linspace(0, 1, 256)
    gradient = np.stack([np.outer(np.ones(256), x) * 255, np.outer(x, np.ones(256)) * 200, np.full((256, 256), 90)], -1)
    return {
        "flat colour": Image.new("RGB", (200, 200), (40, 140, 90)),
        "white": Image.new("RGB", (200, 200), "white"),
        "black": Image.new("RGB", (200, 200), "black"),
        "noise": Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)),
        "text": text,
        "gradient": Image.fromarray(gradient.astype(np.uint8), "RGB"),
    }


CAPTURE_SEEDS = (4242, 4243, 4244)  # apart from the engine's own captures


def independent_captures(image: Image.Image, expected: str) -> list[int]:
    """For each of `CAPTURE_SEEDS`, of four phone-like captures (the robust margin's severities), how many both
    zxing and WeChat read exactly."""
    gray = np.asarray(image.convert("L"))
    counts = []
    for seed in CAPTURE_SEEDS:
        read = 0
        for i, severity in enumerate(robust.SEVERITIES):
            view = captures.capture(gray, np.random.default_rng([seed, i]), severity)
            read += decoders.read_zxing(view) == [expected] and decoders.read_wechat(view) == [expected]
        counts.append(read)
    return counts


def measure(pictures: dict[str, Image.Image], size: int, per_picture: int, phone_random: int = 20) -> list[dict]:
    code = qr.encode(URL)
    grid = grids.grid_from_code(code, size, 4)
    # Warm-up: decoders and OpenCV load once.
    warm_up = halftone_drawing.fit_picture(pictures[next(iter(pictures))], size)
    halftone.make_candidate(warm_up, grid, halftone_drawing.VARIANTS[0], code.content, 0.5, 1)
    rows = []
    for name, picture in pictures.items():
        started = time.perf_counter()
        fitted = halftone_drawing.fit_picture(picture, size)
        fit_seconds = time.perf_counter() - started
        for seed in range(per_picture):
            started = time.perf_counter()
            variant = halftone_drawing.variant_for_seed(seed)
            attempt = halftone.make_candidate(fitted, grid, variant, code.content, 0.5, 6)
            total = time.perf_counter() - started + fit_seconds / per_picture
            rows.append({
                "picture": name, "seed": seed, "variant": attempt.variant.describe(),
                "passed": attempt.scan.passed and attempt.robust is not None and attempt.robust.passed,
                "verdict_passed": attempt.scan.passed, "p": attempt.scan.scan_probability,
                "captures_read": independent_captures(attempt.image, code.content),
                "phone_four": phone.read_by_both(attempt.image, code.content, phone.FOUR),
                "phone_random": phone.read_by_both(attempt.image, code.content,
                                                   phone.random_set(phone_random, phone.HELD_OUT_SEED)),
                "rounds": attempt.rounds, "ms_total": total * 1000, "ms_generation": attempt.render_seconds * 1000,
                "ms_verify": attempt.verify_seconds * 1000, "fidelity_ssim": attempt.fidelity_ssim,
                "color_error": attempt.color_error,
            })
    return rows


def summary(rows: list[dict], label: str) -> str:
    def median(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    passed = sum(r["passed"] for r in rows)
    survived = sum(min(r["captures_read"]) >= robust.NEEDED for r in rows)
    four = sum(r["phone_four"] >= robust.NEEDED for r in rows)
    random_read = [r["phone_random"] for r in rows]
    return (
        f"| {label} | {len(rows)} | {passed / len(rows):.0%} | {survived}/{len(rows)} | {four}/{len(rows)} | "
        f"{min(random_read)} / {statistics.mean(random_read):.1f} | "
        f"{statistics.mean(r['rounds'] for r in rows):.2f} | "
        f"{median('ms_generation'):.0f} | {median('ms_verify'):.0f} | {median('ms_total'):.0f} | "
        f"{max(r['ms_total'] for r in rows):.0f} | {median('fidelity_ssim'):.3f} | {median('color_error'):.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--per-picture", type=int, default=8, help="candidates (seeds 0..N-1) per picture")
    parser.add_argument("--json", action="store_true", help="print every row as JSON instead of tables")
    parser.add_argument("--pictures", help="only these pictures (comma-separated names, e.g. astronaut)")
    parser.add_argument("--phone-random", type=int, default=20, help="random whole-image captures per candidate")
    parser.add_argument("--verdict-only", action="store_true",
                        help="return every variant the verdict passes: no robust margin, no fitted spots")
    args = parser.parse_args()
    if args.verdict_only:
        robust.check = lambda image, expected, **kwargs: robust.Margin({}, [], robust.CAPTURES, robust.NEEDED, True)
        halftone_drawing.CAPTURE_BLUR = 0.0
    sets = {"photos": photos(), "synthetic": synthetic()}
    if args.pictures:
        wanted = set(args.pictures.split(","))
        sets = {label: {k: v for k, v in pictures.items() if k in wanted} for label, pictures in sets.items()}
    if not sets["photos"]:
        print("scikit-image's photos are missing: make venv (requirements-nodeps.txt)", file=sys.stderr)
    rows = {label: measure(pictures, args.size, args.per_picture, args.phone_random)
            for label, pictures in sets.items() if pictures}
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"Halftone engine, {args.size}² px, {args.per_picture} candidates per picture, {date.today()}, "
          f"{platform.processor() or platform.machine()}, OpenCV threads {cv2.getNumThreads()}")
    print(f"\n| set | candidates | pass (verdict and margin) | 3+ of 4 independent captures read, every seed | "
          f"3+ of 4 whole-image captures read (ramp) | {args.phone_random} random whole-image captures read "
          "(min / mean) | rounds (mean) | "
          "generation ms (median) | verify ms (median) | total ms (median) | total ms (max) | "
          "fidelity SSIM (median) | colour error (median) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for label, set_rows in rows.items():
        print(summary(set_rows, label))
    every = [r for set_rows in rows.values() for r in set_rows]
    print(summary(every, "all"))
    print("\nPer picture (median total ms, pass, median fidelity SSIM):")
    for name in dict.fromkeys(r["picture"] for r in every):
        mine = [r for r in every if r["picture"] == name]
        fidelity = statistics.median(r["fidelity_ssim"] for r in mine)
        print(f"- {name}: {statistics.median(r['ms_total'] for r in mine):.0f} ms, "
              f"{sum(r['passed'] for r in mine)}/{len(mine)}, {fidelity:.3f}")
        for r in mine:
            read = ", ".join(f"{n}/4" for n in r["captures_read"])
            print(f"  - {r['variant']}: p={r['p']:.2f}, rounds {r['rounds']}, independent captures read by both "
                  f"decoders: {read}; whole-image: ramp {r['phone_four']}/4, random {r['phone_random']}/"
                  f"{args.phone_random}")


if __name__ == "__main__":
    main()
