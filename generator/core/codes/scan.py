"""Scan verifier: will a person with a phone get exactly this text from this image?

Plain Python, importable without Django. For an image (and optionally the text it should carry) it runs
every available decoder (zxing-cpp, WeChat, zbar; QReader when its weights are local) on the image itself
and on seeded simulated phone captures of rising severity (`generator.core.codes.captures`), then returns:

- `reads`: what each decoder read in each view;
- `expected_match`: whether any decoder read the expected text exactly (None without an expectation);
- `misread`: whether any decoder read a *different* text — a phone could open the wrong thing, so a
  misread always fails, whatever the probability;
- `scan_probability`: a calibrated probability in [0, 1] that a phone reads the expected text;
- `verdict`: "pass" when scan_probability >= threshold (default 0.5) and there is no misread.

How the probability is made and calibrated
------------------------------------------
Five features, none tied to one decoder: whether any decoder read the original image (`o_any`), the share
of decoders that did (`o_share`), the share of simulated captures that any decoder read (`f_any`), the
mean share of decoders per capture (`f_share`), and the best single decoder's share of captures
(`f_max`: one decoder reading robustly across captures, as WeChat often does on art that phones read
while zxing and zbar fail). scan_probability = sigmoid(BIAS + sum(WEIGHTS[k] * k)).

Plain "any decoder on any view" is too lenient (one lucky read counts as much as many robust ones), "two
of three decoders" too strict (zbar and zxing miss codes that phones read). Counting how far along the
capture ramp the code keeps being read sits between the two. Features are decoder-agnostic on purpose:
each decoder's agreement with phones differs between synthetic and real images (zxing agrees with our
synthetic labels best, WeChat with real iPhones), and per-decoder weights would learn the synthetic quirk.
Weights are constrained non-negative: a read never makes a phone less likely to read.

The weights are fitted by `bench/calibrate_verifier.py` (logistic regression) on synthetic sets made by
`generator.core.codes.synthetic`: clean codes in every style; codes blended into procedural textures at rising
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

import cv2
import numpy as np
from PIL import Image

from generator.core.codes import captures, decoders

DEFAULT_THRESHOLD = 0.5
FULL_CAPTURES = 6  # the full verdict: the image plus six simulated captures
RANKING_CAPTURES = 2  # the cheaper ranking score for many candidates
DECODERS = ("zxing", "wechat", "zbar")
# The original view is shrunk to this longer side first: no phone resolves more of a code than this, and
# decoders on a 6000 px photo would take seconds.
MAX_ORIGINAL_SIDE = 1536

# Fitted by bench/calibrate_verifier.py (see the module docstring and bench/RESULTS.md).
BIAS = -5.74
WEIGHTS = {"o_any": 0.98, "o_share": 0.00, "f_any": 0.00, "f_share": 9.77, "f_max": 0.00}
# Decoders that vote. The optional QReader reads (its texts count for misreads) but does not vote: it was
# never part of a calibration run, and on real art it calls nearly every image readable.
VOTERS = DECODERS


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


def features(reads: list[Read], expected: str | None) -> dict[str, float]:
    """Per-decoder (`o_zxing`, `f_zxing`, ...) and decoder-agnostic (`o_any`, ..., see above) read rates.

    Args:
        reads: every (view, decoder) read; the first view is the original image.
        expected: the exact text, or None to count any non-empty text.
    """

    def matched(texts: list[str]) -> bool:
        return expected in texts if expected is not None else any(texts)

    views = list(dict.fromkeys(r.view for r in reads))
    voters = [d for d in dict.fromkeys(r.decoder for r in reads) if d in VOTERS]
    hit = {(r.view, r.decoder): matched(r.texts) for r in reads}
    out: dict[str, float] = {}
    for d in voters:
        out[f"o_{d}"] = float(hit[views[0], d])
        out[f"f_{d}"] = sum(hit[v, d] for v in views[1:]) / max(1, len(views) - 1)
    if not voters:
        return {**out, "o_any": 0.0, "o_share": 0.0, "f_any": 0.0, "f_share": 0.0, "f_max": 0.0}
    share = [sum(hit[v, d] for d in voters) / len(voters) for v in views]
    out["o_any"] = float(share[0] > 0)
    out["o_share"] = share[0]
    out["f_any"] = sum(s > 0 for s in share[1:]) / max(1, len(views) - 1)
    out["f_share"] = sum(share[1:]) / max(1, len(views) - 1)
    out["f_max"] = max(out[f"f_{d}"] for d in voters)
    return out


def probability(feature_values: Mapping[str, float]) -> float:
    """The calibrated scan probability for a dict made by `features`."""
    z = BIAS + sum(weight * feature_values.get(name, 0.0) for name, weight in WEIGHTS.items())
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
    if max(gray.shape) > MAX_ORIGINAL_SIDE:
        scale = MAX_ORIGINAL_SIDE / max(gray.shape)
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)

    # 2. Read every view with every decoder
    views = captures.phone_views(gray, captures_count, seed=image_seed(gray, seed))
    reads = [Read(view.name, name, read(view.gray)) for view in views for name, read in readers.items()]

    # 3. Exact matches and misreads
    decoded = sorted({t for r in reads for t in r.texts})
    misread = expected is not None and any(t != expected for t in decoded)
    rates = features(reads, expected)

    # 4. Probability and verdict
    p = probability(rates)
    return ScanResult(
        expected=expected,
        reads=reads,
        decoded=decoded,
        expected_match=(expected in decoded) if expected is not None else None,
        misread=misread,
        scan_probability=round(p, 4),
        verdict="pass" if p >= threshold and not misread else "fail",
        seconds=round(time.perf_counter() - started, 4),
        features=rates,
    )


def ranking_score(image: Image.Image | np.ndarray, expected: str | None = None, seed: int = 0) -> float:
    """A cheaper scan probability for ranking many candidates (two captures instead of six)."""
    result = verify(image, expected, captures_count=RANKING_CAPTURES, seed=seed)
    return 0.0 if result.misread else result.scan_probability
