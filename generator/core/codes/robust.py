"""The robust margin: does an image read with room to spare, not just at the verifier's pass line?

Plain Python, importable without Django. The verifier's pass is a probability over its features; an image
that sits just over the line reads on one phone and not on the next. Repair and the halftone engine
therefore stop only at a margin above it, checked against independent reads (`check`):

- the image itself must read exactly (the expected text, nothing else) by both margin decoders, zxing-cpp
  and WeChat - two independent implementations, one strict, one lenient;
- and so must at least `NEEDED` of `CAPTURES` phone-like captures (`generator.core.codes.captures`:
  perspective, downscaled so the code spans 250-400 px, defocus, exposure, sensor noise, JPEG), each read
  by both decoders.

    held = check(image, "https://qart.example/r/AbC123")
    held.passed, held.captures_read, held.to_dict()

The captures are seeded from the pixels and `seed` (`scan.image_seed`), so every image gets its own views and
a repair that changes pixels cannot tune itself to one fixed set of captures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

from generator.core.codes import captures, decoders, scan

DECODERS = ("zxing", "wechat")  # two independent readers: both must read the expected text exactly
CAPTURES = 4
NEEDED = 3  # captures (of CAPTURES) that both decoders must read
# Capture severities: from a steady phone at arm's length to a tilted, soft, noisy, compressed one.
SEVERITIES = (0.4, 0.6, 0.8, 1.0)
# Every capture at the hard end of the range (small, soft, tilted, noisy, compressed): what the halftone engine
# checks its variants against, since a variant's small spots are what a soft, small capture loses first.
HARD_SEVERITIES = (1.0, 1.0, 1.0, 1.0)
SEED_OFFSET = 7919  # keeps these captures apart from the verifier's own (same image, same seed)


@dataclass(frozen=True)
class Margin:
    """What `check` found.

    Attributes:
        image: decoder name -> whether it read exactly the expected text on the image itself.
        captures: one such mapping per capture.
        captures_read: captures on which every margin decoder read exactly the expected text.
        needed: how many captures had to be read.
        passed: the image and at least `needed` captures read exactly by every margin decoder.
    """

    image: dict[str, bool]
    captures: list[dict[str, bool]]
    captures_read: int
    needed: int
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self)


def check(
    image: Image.Image | np.ndarray,
    expected: str,
    *,
    seed: int = 0,
    readers: Mapping[str, decoders.Reader] | None = None,
    needed: int = NEEDED,
    severities: tuple[float, ...] = SEVERITIES,
) -> Margin:
    """Whether `image` reads exactly `expected` by both margin decoders, on itself and on phone-like captures.

    Args:
        image (`PIL.Image.Image` or `np.ndarray`): the picture; arrays are 2-D uint8 luminance.
        expected (`str`): the exact text; any other text read fails that view.
        seed (`int`, *optional*, defaults to 0): seeds the captures (mixed with the pixels).
        readers (*optional*): decoders by name; defaults to `decoders.available_readers()`. Those of
            `DECODERS` among them are used; with neither, nothing passes.
        needed (`int`, *optional*, defaults to 3): captures of `CAPTURES` that must read.
        severities (*optional*): the captures' severities (`captures.capture`), one per capture; `SEVERITIES`
            (a steady phone to a hard one) by default, `HARD_SEVERITIES` for every capture a hard one.

    Returns:
        A `Margin`.
    """
    # 1. Check inputs
    if len(severities) != CAPTURES or not all(0.0 <= s <= 1.0 for s in severities):
        raise ValueError(f"severities must be {CAPTURES} values between 0 and 1, got {severities}")
    if not 0 <= needed <= CAPTURES:
        raise ValueError(f"needed must be between 0 and {CAPTURES}, got {needed}")
    gray = np.asarray(image.convert("L")) if isinstance(image, Image.Image) else image
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("image arrays must be 2-D uint8 luminance")
    readers = readers if readers is not None else decoders.available_readers()
    chosen = {name: readers[name] for name in DECODERS if name in readers}

    def exact(view: np.ndarray) -> dict[str, bool]:
        return {name: read(view) == [expected] for name, read in chosen.items()}

    # 2. The image itself first: where it does not read, no capture is worth the time
    on_image = exact(gray)
    if not chosen or not all(on_image.values()):
        return Margin(on_image, [], 0, needed, False)

    # 3. The captures, stopping once the outcome is certain either way
    base = scan.image_seed(gray, seed + SEED_OFFSET)
    seen: list[dict[str, bool]] = []
    for i, severity in enumerate(severities):
        view = captures.capture(gray, np.random.default_rng([base, i]), severity)
        seen.append(exact(view))
        read = sum(all(v.values()) for v in seen)
        if read >= needed or read + CAPTURES - len(seen) < needed:
            break
    read = sum(all(v.values()) for v in seen)
    return Margin(on_image, seen, read, needed, read >= needed)
