"""Simulated phone captures: what a camera pointed at a printed or on-screen code hands its QR reader.

Each view is seeded and reproducible. Views ramp in severity, from a clean-ish capture at arm's length
to a tilted, soft, noisy, badly exposed one; how far along the ramp a code keeps being read is what the
scan verifier turns into a probability.

Effects, in the order a camera applies them: print/screen contrast loss and uneven light, perspective
(tilt), distance (downscale so the code spans 250-400 px), defocus, exposure and gamma, sensor noise,
JPEG compression.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MIN_SIDE, MAX_SIDE = 250, 400


@dataclass(frozen=True)
class View:
    """One image a decoder sees. `severity` is 0 for the image itself and up to 1 for the hardest capture."""

    name: str
    severity: float
    gray: np.ndarray


def capture(gray: np.ndarray, rng: np.random.Generator, severity: float) -> np.ndarray:
    """Simulate one phone capture of a 2-D uint8 image.

    Args:
        gray: the image as printed, 2-D uint8.
        rng: the random source (seed it for reproducible views).
        severity: 0-1; scales tilt, blur, exposure error, noise and compression.

    Returns:
        The captured 2-D uint8 image, its shorter side 250-400 px, the aspect ratio kept.
    """
    s = float(np.clip(severity, 0.0, 1.0))
    img = gray.astype(np.float32)

    # 1. Paper or screen: contrast loss towards mid-grey and a soft light gradient across the code
    contrast = 1.0 - rng.uniform(0.0, 0.35) * s
    img = (img - 128.0) * contrast + 128.0
    h, w = img.shape
    ramp = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :] * rng.uniform(-1, 1)
    ramp = ramp + np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None] * rng.uniform(-1, 1)
    img = img + ramp * 25.0 * s

    # 2. Distance: the code (assumed to span the image's shorter side) covers 250-400 px on the sensor,
    # farther as severity rises; the aspect ratio is kept
    side = int(round(MAX_SIDE - (MAX_SIDE - MIN_SIDE) * rng.uniform(0.3 * s, s))) if s > 0 else MAX_SIDE
    side = int(np.clip(side, MIN_SIDE, MAX_SIDE))
    scale = side / min(h, w)
    out_w, out_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    img = cv2.resize(img, (out_w, out_h), interpolation=cv2.INTER_AREA)

    # 3. Tilt: move each corner inwards by up to 9 % of the side; the border is the image's own edge colour
    jitter = rng.uniform(0.0, 0.09 * s, size=(4, 2)) * side
    src = np.float32([[0, 0], [out_w - 1, 0], [out_w - 1, out_h - 1], [0, out_h - 1]])
    signs = np.float32([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    dst = src + signs * jitter.astype(np.float32)
    edge = float(np.median(np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])))
    matrix = cv2.getPerspectiveTransform(src, dst)
    img = cv2.warpPerspective(img, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=edge)

    # 4. Defocus and motion softness
    sigma = rng.uniform(0.3, 0.3 + 1.2 * s)
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma)

    # 5. Exposure and gamma
    gain = 1.0 + rng.uniform(-0.3, 0.3) * s
    gamma = float(np.exp(rng.uniform(-0.35, 0.35) * s))
    img = np.clip(img * gain, 0.0, 255.0)
    img = 255.0 * (img / 255.0) ** gamma

    # 6. Sensor noise
    img = img + rng.normal(0.0, 1.0 + 7.0 * s, size=img.shape).astype(np.float32)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)

    # 7. JPEG
    quality = int(round(92 - 52 * s * rng.uniform(0.5, 1.0)))
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else out


def view_name(index: int) -> str:
    """The name of view `index` of `phone_views`: "original" for the image itself, "capture-i" for the i-th capture."""
    return "original" if index == 0 else f"capture-{index}"


def phone_views(gray: np.ndarray, count: int = 6, seed: int = 0, indices: range | None = None) -> list[View]:
    """The image itself followed by `count` simulated captures of rising severity.

    Args:
        gray: 2-D uint8 image.
        count: how many simulated captures (0 gives only the image itself).
        seed: the same seed gives the same views.
        indices: only these views (0 the image, i the i-th capture), each the same as in the whole list: two
            processes can share one image's views.

    Returns:
        `count + 1` views (or those of `indices`); views[0] is the image, views[i] has severity i / count.
    """
    indices = range(count + 1) if indices is None else indices
    if indices and not 0 <= min(indices) <= max(indices) <= count:
        raise ValueError(f"view indices must be within 0-{count}, got {indices}")
    views = [View(view_name(0), 0.0, gray)] if 0 in indices else []
    for i in indices:
        if i == 0:
            continue
        severity = i / count
        rng = np.random.default_rng([seed, i])
        views.append(View(view_name(i), severity, capture(gray, rng, severity)))
    return views
