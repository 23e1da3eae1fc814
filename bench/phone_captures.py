"""The benches' draws of phone-like captures of a whole image (the model: `generator.core.codes.whole_captures`,
written apart from `generator.core.codes.captures`), for benches that ask "would a phone read this?" with captures
the code under test never saw: the halftone engine checks itself against `captures.capture` alone, and repair's
margin check reads the whole-image model at draws of its own (`robust.whole_params`), never these.

Seeded by fixed seeds, never by the pixels: every image sees the same captures. `FOUR` is a ramp of four captures
from mild to the hardest corner (260 px, 25 degrees, sigma 1.5, quality 50); `random_set(n)` draws n over the full
ranges.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from generator.core.codes import decoders
from generator.core.codes.whole_captures import Params, capture, draw

__all__ = ["FOUR", "HELD_OUT_SEED", "Params", "capture", "four", "random_set", "read_by_both"]

FOUR_SEED = 1213_0001
RANDOM_SEED = 1213_0002
LEVELS = (0.25, 0.5, 0.75, 1.0)
FOUR = [draw(np.random.default_rng([FOUR_SEED, i]), level) for i, level in enumerate(LEVELS)]


def four(seed: int = FOUR_SEED) -> list[Params]:
    return [draw(np.random.default_rng([seed, i]), level) for i, level in enumerate(LEVELS)]


def random_set(n: int, seed: int = RANDOM_SEED) -> list[Params]:
    return [draw(np.random.default_rng([seed, i]), None) for i in range(n)]


# A random draw the halftone engine's soft-capture settings were not tuned on (they were tuned on `FOUR` and
# `random_set`'s default draw, then checked on this one and another): the benches' held-out captures.
HELD_OUT_SEED = 99_005


def read_by_both(image: Image.Image, expected: str, params: list[Params]) -> int:
    """Of `params`' captures of the whole `image`, how many zxing and WeChat both read exactly `expected` from."""
    rgb = np.asarray(image.convert("RGB"))
    return sum(decoders.read_zxing(view) == [expected] and decoders.read_wechat(view) == [expected]
               for view in (capture(rgb, p) for p in params))
