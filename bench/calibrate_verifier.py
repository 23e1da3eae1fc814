"""Fit the scan verifier's weights on synthetic calibration sets and measure agreement and speed.

    .venv/bin/python bench/calibrate_verifier.py --per-family 60

Fits on one seeded set (train), reports agreement with the reference labels on another (test), for the
fitted verifier and for the single-decoder and voting baselines. Prints Markdown for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from multiprocessing import Pool
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from generator.core.codes import (  # noqa: E402
    qr,
    scan,
    synthetic,  # noqa: E402
)
from generator.core.evals.alignment import agreement  # noqa: E402

cv2.setNumThreads(1)
DECODERS = scan.DECODERS


PHOTOS: list[np.ndarray] = []


def photo_folder() -> Path | None:
    """scikit-image's sample photos (requirements-nodeps.txt installs its wheel for the data only)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def features_of(args: tuple[str, float, int]) -> tuple[str, float, bool, dict[str, float]]:
    family, strength, seed = args
    sample = synthetic.make_sample(family, strength, seed, photos=PHOTOS)
    result = scan.verify(sample.gray, sample.content)
    return family, strength, sample.label, result.features


def build(per_family: int, seed: int, workers: int) -> list:
    jobs = synthetic.calibration_plan(per_family, seed)
    with Pool(workers) as pool:
        return pool.map(features_of, jobs, chunksize=4)


PER_DECODER = [f"o_{d}" for d in DECODERS] + [f"f_{d}" for d in DECODERS]


def matrix(rows: list, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[feats.get(n, 0.0) for n in names] for _, _, _, feats in rows])
    y = np.array([label for _, _, label, _ in rows], dtype=float)
    return x, y


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.1, iterations: int = 50) -> np.ndarray:
    """L2-regularised logistic regression with non-negative weights; returns [bias, weights...].

    Non-negative because a decoder reading the code must never make a phone *less* likely to read it:
    a negative weight would only fit a quirk of the synthetic sets. Active set: fit by Newton's method,
    drop features whose weight went negative, refit until none does. Classes are weighted equally, so
    the 0.5 threshold balances missed codes against false passes (balanced accuracy is a target too).
    """
    sample_weight = np.where(y == 1, len(y) / (2 * max(1, y.sum())), len(y) / (2 * max(1, (1 - y).sum())))
    active = np.ones(x.shape[1], dtype=bool)
    while True:
        design = np.hstack([np.ones((len(x), 1)), x[:, active]])
        w = np.zeros(design.shape[1])
        penalty = l2 * np.diag(np.r_[0.0, np.ones(len(w) - 1)])
        for _ in range(iterations):
            p = 1 / (1 + np.exp(-design @ w))
            grad = design.T @ (sample_weight * (p - y)) + penalty @ w
            hess = design.T @ (design * (sample_weight * p * (1 - p))[:, None]) + penalty
            w -= np.linalg.solve(hess, grad)
        if (w[1:] >= 0).all():
            full = np.zeros(x.shape[1] + 1)
            full[0] = w[0]
            full[1:][active] = w[1:]
            return full
        negative = np.flatnonzero(active)[w[1:] < 0]
        active[negative] = False


def speed(repeats: int) -> tuple[float, float]:
    rng = np.random.default_rng(7)
    code = qr.encode("https://qart.example/r/AbC123")
    base = np.asarray(qr.render_control_image(code, 768, style="rounded").convert("L"), np.float32)
    tex = synthetic.texture(rng, 768)
    alpha = 0.6 * synthetic.centre_weights(code, 768, 4)
    art = np.clip(tex * (1 - alpha) + base * alpha, 0, 255).astype(np.uint8)
    scan.verify(art, code.content)  # load the WeChat nets first
    full = [scan.verify(art, code.content, seed=i).seconds for i in range(repeats)]
    quick = []
    for i in range(repeats):
        started = time.perf_counter()
        scan.ranking_score(art, code.content, seed=i)
        quick.append(time.perf_counter() - started)
    return statistics.median(full), statistics.median(quick)


def report_speed(repeats: int) -> None:
    full, quick = speed(repeats)
    print(f"\n## Speed, one core, 768x768 blended code ({platform.processor() or platform.machine()})\n")
    print(f"- full verdict (image + {scan.FULL_CAPTURES} captures, 3 decoders): median {full * 1000:.0f} ms")
    print(f"- ranking score (image + {scan.RANKING_CAPTURES} captures): median {quick * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=60)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--speed-repeats", type=int, default=20)
    parser.add_argument("--dump", help="write the test set's features and labels here (JSON lines)")
    parser.add_argument("--speed-only", action="store_true", help="only time the verifier (no calibration)")
    args = parser.parse_args()

    if args.speed_only:
        report_speed(args.speed_repeats)
        return
    folder = photo_folder()
    PHOTOS.extend(synthetic.load_photos(folder) if folder else [])
    print(f"Blending into {len(PHOTOS)} photos from {folder}" if PHOTOS else "Blending into procedural textures")
    started = time.time()
    train = build(args.per_family, seed=1, workers=args.workers)
    test = build(args.per_family, seed=2, workers=args.workers)
    agnostic = list(scan.WEIGHTS)
    x_train, y_train = matrix(train, agnostic)
    x_test, y_test = matrix(test, agnostic)
    w = fit_logistic(x_train, y_train)
    print("## Fitted weights (paste into generator/core/codes/scan.py)\n")
    print(f"    BIAS = {w[0]:.2f}")
    print("    WEIGHTS = {" + ", ".join(f'"{k}": {w[1 + i]:.2f}' for i, k in enumerate(agnostic)) + "}")

    xd_train, _ = matrix(train, PER_DECODER)
    xd_test, _ = matrix(test, PER_DECODER)
    wd = fit_logistic(xd_train, y_train)
    n = len(DECODERS)
    print(f"\n## Agreement with reference labels on the test set ({len(y_test)} images, "
          f"{int(y_test.sum())} readable)\n")
    print("| verifier | accuracy | balanced accuracy | ROC AUC |")
    print("|---|---|---|---|")
    fitted = 1 / (1 + np.exp(-(w[0] + x_test @ w[1:])))
    per_decoder = 1 / (1 + np.exp(-(wd[0] + xd_test @ wd[1:])))
    shipped = np.array([scan.probability(feats) for _, _, _, feats in test])
    rows = {"qart verifier, weights in scan.py (p >= 0.5)": (shipped >= 0.5, shipped),
            "qart verifier, weights fitted now (p >= 0.5)": (fitted >= 0.5, fitted),
            "per-decoder weights instead (p >= 0.5)": (per_decoder >= 0.5, per_decoder)}
    for i, d in enumerate(DECODERS):
        rows[f"{d} alone, original image"] = (xd_test[:, i] == 1, xd_test[:, i])
    votes = xd_test[:, :n].sum(axis=1)
    any_view = np.maximum(xd_test[:, :n].max(1), (xd_test[:, n:] > 0).max(1))
    rows["any decoder on any view"] = (any_view == 1, xd_test.sum(1))
    rows["two of three decoders, original"] = (votes >= 2, votes)
    for name, (pred, score) in rows.items():
        acc, bal, roc = agreement(pred.astype(float), np.asarray(score, float), y_test)
        print(f"| {name} | {acc:.3f} | {bal:.3f} | {roc:.3f} |")

    print("\n## Per family (test set, weights in scan.py)\n")
    print("| family | images | readable | accuracy |")
    print("|---|---|---|---|")
    families = np.array([fam for fam, *_ in test])
    for fam in synthetic.FAMILIES:
        sel = families == fam
        acc = float(((shipped[sel] >= 0.5) == y_test[sel]).mean())
        print(f"| {fam} | {sel.sum()} | {int(y_test[sel].sum())} | {acc:.3f} |")

    print("\n## Domain shift: fit without one family, test on it (balanced accuracy where both labels occur)\n")
    print("| held-out family | decoder-agnostic (shipped form) | per-decoder |")
    print("|---|---|---|")
    train_families = np.array([fam for fam, *_ in train])
    for fam in synthetic.FAMILIES:
        keep, sel = train_families != fam, families == fam
        wa = fit_logistic(x_train[keep], y_train[keep])
        wb = fit_logistic(xd_train[keep], y_train[keep])
        pa = 1 / (1 + np.exp(-(wa[0] + x_test[sel] @ wa[1:])))
        pb = 1 / (1 + np.exp(-(wb[0] + xd_test[sel] @ wb[1:])))
        a = agreement((pa >= 0.5).astype(float), pa, y_test[sel])
        b = agreement((pb >= 0.5).astype(float), pb, y_test[sel])
        mixed = 0 < y_test[sel].sum() < sel.sum()
        pick = 1 if mixed else 0
        print(f"| {fam} ({'balanced' if mixed else 'accuracy'}) | {a[pick]:.3f} | {b[pick]:.3f} |")

    if args.dump:
        with open(args.dump, "w") as out:
            for (fam, strength, label, feats), p in zip(test, shipped, strict=True):
                out.write(json.dumps({"family": fam, "strength": strength, "label": bool(label),
                                      "p": round(float(p), 4), **feats}) + "\n")

    report_speed(args.speed_repeats)
    print(f"\n(total run {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
