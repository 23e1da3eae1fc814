"""Scan verifier: will a person with a phone get exactly this text from this image?

Plain Python, importable without Django. For an image (and optionally the text it should carry) it runs
every available decoder (zxing-cpp, WeChat, zbar; QReader when its weights are local) on the image itself
and on seeded simulated phone captures of rising severity (`generator.captures`), then returns:

- `reads`: what each decoder read in each view;
- `expected_match`: whether any decoder read the expected text exactly (None without an expectation);
- `misread`: whether any decoder read a *different* text — a phone could open the wrong thing, so a
  misread always fails, whatever the probability;
- `scan_probability`: a calibrated probability in [0, 1] that a phone reads the expected text;
- `verdict`: "pass" when scan_probability >= threshold (default 0.5) and there is no misread.

How the probability is made and calibrated
------------------------------------------
Features per decoder d: o_d, whether d read the original image, and f_d, the fraction of the simulated
captures d read. scan_probability = sigmoid(bias + sum_d (w_orig[d] * o_d + w_capture[d] * f_d)).

Plain "any decoder on any view" is too lenient (one lucky read in a clean view counts as much as many
robust reads), "two of three decoders" too strict (zbar and zxing miss codes that phones read). The
weights let robust reads across captures, and WeChat's lenient-but-phone-like reads, count for more.

The weights are fitted by `bench/calibrate_verifier.py` (logistic regression) on synthetic sets made by
`generator.synthetic`: clean codes in every style; codes blended into procedural textures at rising
strength (the look of QR art); module-centre corruption at rising rates; inverted and low-contrast
codes. Their labels come from a reference reader that knows exactly where the code is (as a phone does
once it has locked on), samples module centres after a phone-like capture and needs Reed-Solomon to
recover the text - i.e. whether the information a phone samples is still there. The fitted figures,
agreement (accuracy, balanced accuracy, ROC AUC) and speed are in `bench/RESULTS.md`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from generator import captures, decoders

DEFAULT_THRESHOLD = 0.5
FULL_CAPTURES = 6  # the full verdict: the image plus six simulated captures
RANKING_CAPTURES = 2  # the cheaper ranking score for many candidates
DECODERS = ("zxing", "wechat", "zbar")

# Fitted by bench/calibrate_verifier.py; see the module docstring. Decoders absent from a machine
# contribute nothing; the optional QReader has no weight (it never votes in the calibrated model).
BIAS = -4.0
W_ORIGINAL = {"zxing": 0.5, "wechat": 1.0, "zbar": 0.3}
W_CAPTURES = {"zxing": 2.5, "wechat": 4.0, "zbar": 1.0}


@dataclass(frozen=True)
class Read:
    """What one decoder read in one view."""

    view: str
    decoder: str
    texts: list[str]


@dataclass
class ScanResult:
    """The verifier's answer for one image (see the module docstring for each field)."""

    expected: str | None
    reads: list[Read]
    decoded: list[str]
    expected_match: bool | None
    misread: bool
    scan_probability: float
    verdict: str
    seconds: float
    features: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict:
        return asdict(self)


def probability(features: Mapping[str, float]) -> float:
    """The calibrated scan probability for a feature dict ({"o_zxing": 1.0, "f_wechat": 0.5, ...})."""
    z = BIAS
    for name in DECODERS:
        z += W_ORIGINAL[name] * features.get(f"o_{name}", 0.0)
        z += W_CAPTURES[name] * features.get(f"f_{name}", 0.0)
    return 1.0 / (1.0 + math.exp(-z))


def image_seed(gray: np.ndarray, seed: int) -> int:
    """A seed for the captures that depends on the pixels, so every image gets its own reproducible views."""
    digest = hashlib.blake2b(gray.tobytes(), digest_size=8, key=str(seed).encode()).digest()
    return int.from_bytes(digest, "big")


def verify(
    image: Image.Image | np.ndarray,
    expected: str | None = None,
    *,
    captures_count: int = FULL_CAPTURES,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
    readers: Mapping[str, decoders.Reader] | None = None,
) -> ScanResult:
    """Verify that phones read `expected` from `image`.

    Args:
        image (`PIL.Image.Image` or `np.ndarray`): the picture; arrays are 2-D uint8 luminance.
        expected (`str`, *optional*): the exact text the code must carry. Without it, any non-empty
            text counts as read and nothing is a misread.
        captures_count (`int`, *optional*, defaults to 6): simulated phone captures besides the image
            itself; `RANKING_CAPTURES` gives the cheaper ranking score.
        threshold (`float`, *optional*, defaults to 0.5): scan probability needed to pass.
        seed (`int`, *optional*, defaults to 0): seeds the captures (mixed with the pixels).
        readers (*optional*): decoders by name; defaults to `decoders.available_readers()`.

    Returns:
        A `ScanResult`.
    """
    # 1. Check inputs
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    if captures_count < 1:
        raise ValueError(f"captures_count must be at least 1, got {captures_count}")
    started = time.perf_counter()
    gray = np.asarray(image.convert("L")) if isinstance(image, Image.Image) else image
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("image arrays must be 2-D uint8 luminance")
    readers = readers if readers is not None else decoders.available_readers()

    # 2. Read every view with every decoder
    views = captures.phone_views(gray, captures_count, seed=image_seed(gray, seed))
    reads = [Read(view.name, name, read(view.gray)) for view in views for name, read in readers.items()]

    # 3. Exact matches and misreads
    def matched(texts: list[str]) -> bool:
        return expected in texts if expected is not None else any(texts)

    decoded = sorted({t for r in reads for t in r.texts})
    misread = expected is not None and any(t != expected for t in decoded)
    features: dict[str, float] = {}
    for name in readers:
        own = [r for r in reads if r.decoder == name]
        features[f"o_{name}"] = float(matched(own[0].texts))
        features[f"f_{name}"] = sum(matched(r.texts) for r in own[1:]) / len(own[1:])

    # 4. Probability and verdict
    p = probability(features)
    return ScanResult(
        expected=expected,
        reads=reads,
        decoded=decoded,
        expected_match=(expected in decoded) if expected is not None else None,
        misread=misread,
        scan_probability=round(p, 4),
        verdict="pass" if p >= threshold and not misread else "fail",
        seconds=round(time.perf_counter() - started, 4),
        features=features,
    )


def ranking_score(image: Image.Image | np.ndarray, expected: str | None = None, seed: int = 0) -> float:
    """A cheaper scan probability for ranking many candidates (two captures instead of six)."""
    result = verify(image, expected, captures_count=RANKING_CAPTURES, seed=seed)
    return 0.0 if result.misread else result.scan_probability
