"""Codes as QR art leaves them, made in code: painted into a texture, or with modules flipped."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from generator.core.codes import qr, repair, synthetic

URL = "https://qart.example/r/AbC123"
SIZE = 400


def blended(seed: int, strength: float = 0.65) -> tuple[qr.QRCode, Image.Image]:
    """A code painted into a warm-tinted procedural texture, module centres weighted, as QR art looks."""
    rng = np.random.default_rng(seed)
    code = qr.encode(URL)
    base = np.asarray(qr.render_control_image(code, SIZE, 4, "rounded").convert("L"), np.float32)
    alpha = (1 - strength) * synthetic.centre_weights(code, SIZE, 4) * synthetic.patchiness(rng, SIZE)
    luma = cv2.GaussianBlur(synthetic.texture(rng, SIZE) * (1 - alpha) + base * alpha, (0, 0), 1.0)
    tint = np.float32([1.0, 0.55, 0.35])
    tint /= tint @ repair.LUMA.astype(np.float32)  # a tint that keeps luminance: the code stays as strong
    return code, Image.fromarray(np.clip(luma[..., None] * tint + 0.5, 0, 255).astype(np.uint8))


def corrupted(seed: int, rate: float = 0.2) -> tuple[qr.QRCode, Image.Image, set[tuple[int, int]]]:
    """A clean code with `rate` of its data modules' centres painted the wrong colour, and those modules."""
    rng = np.random.default_rng(seed)
    code = qr.encode(URL)
    image = np.asarray(qr.render_control_image(code, SIZE, 4, "rounded")).copy()
    pitch = SIZE / (code.size + 8)
    flips = (rng.random(code.matrix.shape) < rate) & ~code.function_mask
    for r, c in zip(*np.nonzero(flips), strict=True):
        centre = (int((4 + c + 0.5) * pitch), int((4 + r + 0.5) * pitch))
        colour = (255, 255, 255) if code.matrix[r, c] else (0, 0, 0)
        cv2.circle(image, centre, int(pitch * 0.32), colour, -1)
    return code, Image.fromarray(image), {(int(r), int(c)) for r, c in zip(*np.nonzero(flips), strict=True)}
