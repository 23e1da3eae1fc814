"""A picture for the halftone engine, a soft variant of it, and a phone's capture of the result with
whether each decoder reads it."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from generator.core.codes import decoders
from generator.core.engines import halftone_drawing

URL = "https://qart.example/r/AbC123"
SIZE = 384  # small for speed; the benchmark measures 768


def gradient() -> Image.Image:
    x = np.linspace(0, 1, 256)
    rgb = np.stack([np.outer(np.ones(256), x) * 255, np.outer(x, np.ones(256)) * 200, np.full((256, 256), 90)], -1)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")
SOFT = halftone_drawing.Variant(colour=True, shape="dot", dither=False, centre=0.30, margin=40)


def phone_capture(image: Image.Image, sigma: float, long_side: int = 260, seed: int = 0) -> np.ndarray:
    """A small, soft phone capture as issue 12 words it, written apart from `captures.capture`: the whole image
    downscaled so its longer side is `long_side` px, tilted (its right edge farther away), on a grey table, blurred
    by `sigma` px, with sensor noise and JPEG at quality 60."""
    gray = np.asarray(image.convert("L"), np.float32)
    h, w = gray.shape
    scale = long_side / max(h, w)
    small = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape
    pad = 30
    canvas = np.full((sh + 2 * pad, sw + 2 * pad), 120, np.float32)
    src = np.float32([[0, 0], [sw, 0], [sw, sh], [0, sh]])
    dst = src + pad + np.float32([[0, 0], [0, 0.08 * sh], [0, -0.08 * sh], [0, 0]])
    matrix = cv2.getPerspectiveTransform(src, dst)
    cv2.warpPerspective(small, matrix, canvas.shape[::-1], dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
    soft = cv2.GaussianBlur(canvas, (0, 0), sigma) + np.random.default_rng(seed).normal(0, 4, canvas.shape)
    ok, buf = cv2.imencode(".jpg", np.clip(soft, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 60])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def reads_on(view: np.ndarray) -> dict[str, bool]:
    return {"zxing": decoders.read_zxing(view) == [URL], "wechat": decoders.read_wechat(view) == [URL]}
