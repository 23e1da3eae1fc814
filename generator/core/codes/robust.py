"""The robust margin: does an image read with room to spare, not just at the verifier's pass line?

Plain Python, importable without Django. The verifier's pass is a probability over its features; an image
that sits just over the line reads on one phone and not on the next. Repair and the halftone engine
therefore stop only at a margin above it, checked against independent reads (`check`):

- the image itself must read exactly (the expected text, nothing else) by both margin decoders, zxing-cpp
  and WeChat - two independent implementations, one strict, one lenient;
- and so must at least `NEEDED` of `CAPTURES` phone-like captures (`generator.core.codes.captures`:
  perspective, downscaled so the code spans 250-400 px, defocus, exposure, sensor noise, JPEG), each read
  by both decoders;
- and, where asked (`whole_needed`), at least that many of `WHOLE_CAPTURES` captures of the whole image
  (`generator.core.codes.whole_captures`: the image at 260-400 px, tilted up to 25 degrees, blurred by
  0.5-1.5 px there), each read by both decoders.

    held = check(image, "https://qart.example/r/AbC123")
    held.passed, held.captures_read, held.to_dict()

The captures are seeded from the pixels and `seed` (`scan.image_seed`), so every image gets its own views and
a repair that changes pixels cannot tune itself to one fixed set of captures. The whole-image captures are seeded
from the expected text and `seed` instead (`whole_params`): every image of one code is judged on the same views, so
a repair's rounds differ by their pixels, not by their draws (with pixel seeds, which round an image stopped at
moved with the draw: bench/RESULTS.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from generator.core.codes import captures, decoders, scan, whole_captures

DECODERS = ("zxing", "wechat")  # two independent readers: both must read the expected text exactly
CAPTURES = 4
NEEDED = 3  # captures (of CAPTURES) that both decoders must read
# Capture severities: from a steady phone at arm's length to a tilted, soft, noisy, compressed one.
SEVERITIES = (0.4, 0.6, 0.8, 1.0)
# Every capture at the hard end of the range (small, soft, tilted, noisy, compressed): what the halftone engine
# checks its variants against, since a variant's small spots are what a soft, small capture loses first.
HARD_SEVERITIES = (1.0, 1.0, 1.0, 1.0)
SEED_OFFSET = 7919  # keeps these captures apart from the verifier's own (same image, same seed)
# Whole-image captures: a ramp of four from mild to the hardest corner, then four over the full ranges. Their own
# seed, apart from every draw the benches judge by (bench/phone_captures.py), so what repair stops at is still
# tested on captures it never saw.
WHOLE_LEVELS = (0.25, 0.5, 0.75, 1.0, None, None, None, None)
WHOLE_CAPTURES = len(WHOLE_LEVELS)
WHOLE_NEEDED = 7  # of WHOLE_CAPTURES, for repair: all 8 changed 17 % of pixels on the bench's near misses, 7 10.4 %
WHOLE_SEED = 52_711


@dataclass(frozen=True)
class Margin:
    """What `check` found.

    Attributes:
        image: decoder name -> whether it read exactly the expected text on the image itself.
        captures: one such mapping per capture.
        captures_read: captures on which every margin decoder read exactly the expected text.
        needed: how many captures had to be read.
        passed: the image, at least `needed` captures and at least `whole_needed` whole-image captures read
            exactly by every margin decoder.
        whole_captures: one such mapping per whole-image capture read (none where not asked or already failed).
        whole_read: whole-image captures on which every margin decoder read exactly the expected text.
        whole_needed: how many whole-image captures had to be read (0: none asked).
    """

    image: dict[str, bool]
    captures: list[dict[str, bool]]
    captures_read: int
    needed: int
    passed: bool
    whole_captures: list[dict[str, bool]] = field(default_factory=list)
    whole_read: int = 0
    whole_needed: int = 0

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
    whole_needed: int = 0,
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
        whole_needed (`int`, *optional*, defaults to 0): whole-image captures of `WHOLE_CAPTURES` that must read
            too (`whole_params(expected, seed)`); 0 takes none.

    Returns:
        A `Margin`.
    """
    # 1. Check inputs
    if len(severities) != CAPTURES or not all(0.0 <= s <= 1.0 for s in severities):
        raise ValueError(f"severities must be {CAPTURES} values between 0 and 1, got {severities}")
    if not 0 <= needed <= CAPTURES:
        raise ValueError(f"needed must be between 0 and {CAPTURES}, got {needed}")
    if not 0 <= whole_needed <= WHOLE_CAPTURES:
        raise ValueError(f"whole_needed must be between 0 and {WHOLE_CAPTURES}, got {whole_needed}")
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
        return Margin(on_image, [], 0, needed, False, whole_needed=whole_needed)

    def read_until(views: Iterator[np.ndarray], needed: int, total: int) -> tuple[list[dict[str, bool]], int]:
        """Each view's reads, made and read one at a time until `needed` of `total` have read or no longer can; and
        how many read."""
        seen: list[dict[str, bool]] = []
        read = 0
        for view in views:
            seen.append(exact(view))
            read += all(seen[-1].values())
            if read >= needed or read + total - len(seen) < needed:
                break
        return seen, read

    # 3. The captures, stopping once the outcome is certain either way
    base = scan.image_seed(gray, seed + SEED_OFFSET)
    seen, read = read_until((captures.capture(gray, np.random.default_rng([base, i]), severity)
                             for i, severity in enumerate(severities)), needed, CAPTURES)
    if read < needed or not whole_needed:
        return Margin(on_image, seen, read, needed, read >= needed, whole_needed=whole_needed)

    # 4. The whole-image captures (in colour where the image is), stopping likewise
    rgb = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else gray
    whole, whole_read = read_until((whole_captures.capture(rgb, params) for params in whole_params(expected, seed)),
                                   whole_needed, WHOLE_CAPTURES)
    return Margin(on_image, seen, read, needed, whole_read >= whole_needed, whole, whole_read, whole_needed)


def whole_params(expected: str, seed: int = 0) -> list[whole_captures.Params]:
    """The whole-image captures `check` reads for `expected`: seeded from the text and `seed`, not the pixels.

    Args:
        expected (`str`): the code's text.
        seed (`int`, *optional*, defaults to 0): another seed, another set.

    Returns:
        `WHOLE_CAPTURES` capture settings, at `WHOLE_LEVELS` (None: over the full ranges).
    """
    digest = hashlib.blake2b(expected.encode(), digest_size=8, key=str(seed).encode()).digest()
    key = int.from_bytes(digest, "big")
    # Ramp and random draws from separate streams (i and 100 + i), as they were measured (bench/RESULTS.md).
    return [whole_captures.draw(np.random.default_rng([WHOLE_SEED, key, i if level is not None else 100 + i - 4]),
                                level)
            for i, level in enumerate(WHOLE_LEVELS)]
