from __future__ import annotations

import cv2
import numpy as np
import pytest

from generator.core.codes import finders, qr, synthetic

URL = "https://qart.example/r/AbC123"


def noise(kind: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(0, 256, (768, 768), dtype=np.uint8)
    if kind == "binary":
        return (rng.random((768, 768)) < 0.5).astype(np.uint8) * 255
    if kind == "blotchy":  # smooth, saturated noise, like a diffusion model's output at random weights
        smooth = cv2.GaussianBlur(rng.normal(0, 1, (768, 768)).astype(np.float32), (0, 0), 4)
        return np.clip(128 + smooth / smooth.std() * 120, 0, 255).astype(np.uint8)
    return cv2.resize((rng.random((96, 96)) < 0.5).astype(np.uint8) * 255, (768, 768), interpolation=cv2.INTER_NEAREST)


class TestPresent:
    @pytest.mark.parametrize("style", qr.STYLES)
    def test_it_sees_the_finders_of_a_code(self, style):
        gray = np.asarray(qr.render_control_image(qr.encode(URL), 512, style=style).convert("L"))
        assert finders.present(gray)
        assert finders.present(255 - gray)  # light on dark

    def test_it_sees_a_single_finder_in_a_photo(self):
        gray = np.full((600, 800), 200, np.uint8)
        gray[100:170, 300:370] = np.kron(np.where(finders.FINDER, 30, 200), np.ones((10, 10))).astype(np.uint8)
        assert finders.present(gray)

    @pytest.mark.parametrize("kind", ["uniform", "binary", "blotchy", "blocks"])
    def test_it_sees_none_in_noise(self, kind):
        assert not finders.present(noise(kind))

    def test_it_sees_none_in_a_blank_image(self):
        assert not finders.present(np.full((300, 300), 255, np.uint8))

    def test_it_sees_the_finders_of_a_code_blended_into_a_picture(self):
        sample = synthetic.make_sample("blended", 0.5, seed=4)
        assert finders.present(sample.gray)
