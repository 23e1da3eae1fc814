"""Shared by the engine tests: a small QR control image and the fastest generation parameters."""

from __future__ import annotations

import pytest
from PIL import Image

from generator.core.codes import qr

FAST = dict(prompt="a lighthouse at dusk", steps=2, size=256)  # GenerationParams(**FAST): two steps at 256²


@pytest.fixture(scope="module")
def control() -> Image.Image:
    return qr.render_control_image(qr.encode("https://qart.example/r/AbC123"), 256)
