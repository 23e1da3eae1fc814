"""Scan verifier: will a person with a phone get exactly this text from this image?

Plain Python, importable without Django. For an image (and optionally the text it should carry) it runs
every available decoder (zxing-cpp, WeChat, zbar; QReader when its weights are local) on the image itself
and on seeded simulated phone captures of rising severity (`generator.core.codes.captures`), then returns:

- `reads`: what each decoder read in each view;
- `expected_match`: whether any decoder read the expected text exactly (None without an expectation);
- `misread`: whether any decoder read a *different* text — a phone could open the wrong thing, so a
  misread always fails, whatever the probability;
- `scan_probability`: a calibrated probability in [0, 1] that a phone reads the expected text;
- `verdict`: "pass" when scan_probability >= threshold (default 0.5) and there is no misread;
- `grades` and `reasons`: why, in the terms of ISO/IEC 15415 symbol grading (`generator.core.codes.grading`):
  contrast, modulation, fixed-pattern damage, grid and unused error correction graded A-F, and what falls
  short in plain words;
- `model`: which decision model gave the probability (`MODEL`: its form and a hash of its weights).

The slow decoders (WeChat, QReader) run only where some view shows a QR finder pattern
(`generator.core.codes.finders`) or a fast decoder (zxing, zbar) read a text: no reader reads a code
without finder patterns, and WeChat can spend seconds on an image without any.

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
import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from PIL import Image

from generator.core.codes import captures, decoders, finders, grading

DEFAULT_THRESHOLD = 0.5
FULL_CAPTURES = 6  # the full verdict: the image plus six simulated captures
RANKING_CAPTURES = 2  # the cheaper ranking score for many candidates
DECODERS = ("zxing", "wechat", "zbar")
# The original view is shrunk to this longer side first: no phone resolves more of a code than this, and
# decoders on a 6000 px photo would take seconds.
MAX_ORIGINAL_SIDE = 1536

# Fitted by bench/calibrate_verifier.py (see the module docstring and bench/RESULTS.md), at full precision: a test
# refits them from the committed training table (tests/generator/core/codes/data/verifier_features.csv).
BIAS = -5.7383012
WEIGHTS = {"o_any": 0.98149407, "o_share": 0.0, "f_any": 0.0, "f_share": 9.77219657, "f_max": 0.0}
# Decoders cheap enough to run on every view of every image; the others wait for a finder pattern.
FAST_DECODERS = ("zxing", "zbar")
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
    grades: dict[str, str] = field(default_factory=dict)
    reasons: list[dict[str, str]] = field(default_factory=list)
    model: str = ""

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


def model_id(bias: float, weights: Mapping[str, float], form: str = "logistic-v1") -> str:
    """The decision model's name: its form and a short hash of its weights, so a result says what judged it."""
    digest = hashlib.blake2b(json.dumps([bias, sorted(weights.items())]).encode(), digest_size=4).hexdigest()
    return f"{form}-{digest}"


@dataclass(frozen=True)
class DecisionModel:
    """What turns a verification's features into a scan probability: sigmoid(bias + sum(weight * feature)).

    The shipped default is `DEFAULT_MODEL`; `fit_weights` makes others from people's labels (the Django layer
    stores them, activates one and passes it in). Features a model has no weight for count 0; features it names
    that a verification does not measure count 0 too, so an older model still judges.
    """

    bias: float
    weights: tuple[tuple[str, float], ...]  # (feature name, weight), in the order they were fitted
    form: str = "logistic-v1"  # which feature set and rule the weights belong to

    @property
    def id(self) -> str:
        return model_id(self.bias, dict(self.weights), self.form)

    def probability(self, feature_values: Mapping[str, float]) -> float:
        z = self.bias + sum(weight * feature_values.get(name, 0.0) for name, weight in self.weights)
        return 1.0 / (1.0 + math.exp(-min(max(z, -700.0), 700.0)))

    def to_dict(self) -> dict:
        return {"form": self.form, "bias": self.bias, "weights": dict(self.weights), "id": self.id}

    @classmethod
    def from_dict(cls, data: Mapping) -> DecisionModel:
        """A model from `to_dict`'s output; one clear ValueError for anything else."""
        try:
            bias = float(data["bias"])
            weights = tuple((str(k), float(v)) for k, v in dict(data["weights"]).items())
            form = str(data.get("form", "logistic-v1"))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a decision model (needs bias and weights): {error}") from None
        if not all(math.isfinite(v) for v in (bias, *(w for _, w in weights))):
            raise ValueError("a decision model's bias and weights must be finite numbers")
        return cls(bias, weights, form)


DEFAULT_MODEL = DecisionModel(BIAS, tuple(WEIGHTS.items()))
MODEL = DEFAULT_MODEL.id


def probability(feature_values: Mapping[str, float], model: DecisionModel = DEFAULT_MODEL) -> float:
    """The scan probability for a dict made by `features`, by `model` (the shipped one by default)."""
    return model.probability(feature_values)


def fit_weights(x: np.ndarray, y: np.ndarray, l2: float = 0.1, iterations: int = 50) -> np.ndarray:
    """Fit the scan probability's logistic model: L2-regularised, class-balanced, non-negative weights.

    Non-negative because a decoder reading the code must never make a phone *less* likely to read it:
    a negative weight would only fit a quirk of the synthetic sets. Active set: fit by Newton's method,
    drop features whose weight went negative, refit until none does. Classes are weighted equally, so
    the 0.5 threshold balances missed codes against false passes (balanced accuracy is a target too).

    Args:
        x: (samples, features) float array, one column per feature (for BIAS and WEIGHTS: the keys of
            `WEIGHTS`, in order).
        y: (samples,) array of labels, 1 where a phone reads the code.
        l2: ridge penalty on the weights (not on the bias).
        iterations: Newton steps per active set.

    Returns:
        [bias, weight per column of `x`...]; weights of dropped features are 0.
    """
    sample_weight = np.where(y == 1, len(y) / (2 * max(1, y.sum())), len(y) / (2 * max(1, (1 - y).sum())))
    active = np.ones(x.shape[1], dtype=bool)
    while True:
        design = np.hstack([np.ones((len(x), 1)), x[:, active]])
        w = np.zeros(design.shape[1])
        penalty = l2 * np.diag(np.r_[0.0, np.ones(len(w) - 1)])
        for _ in range(iterations):
            p = 1 / (1 + np.exp(-design @ w))
            grad = design.T @ (sample_weight * (p - y)) + penalty @ w
            hess = design.T @ (design * (sample_weight * p * (1 - p))[:, None]) + penalty
            w -= np.linalg.solve(hess, grad)
        if (w[1:] >= 0).all():
            full = np.zeros(x.shape[1] + 1)
            full[0] = w[0]
            full[1:][active] = w[1:]
            return full
        negative = np.flatnonzero(active)[w[1:] < 0]
        active[negative] = False


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
    grade: bool = True,
    model: DecisionModel | None = None,
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
        grade (`bool`, *optional*, defaults to True): grade the symbol (`grades`, `reasons`); the ranking
            score, which needs only the probability, skips it.
        model (`DecisionModel`, *optional*): what turns the features into the probability; defaults to
            `DEFAULT_MODEL` (the Django layer passes the active calibrated model).

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

    # 2. Read every view: the fast decoders everywhere, the slow ones only where a finder pattern shows
    views = captures.phone_views(gray, captures_count, seed=image_seed(gray, seed))
    texts = {(v.name, name): read(v.gray) for v in views for name, read in readers.items() if name in FAST_DECODERS}
    slow = {name: read for name, read in readers.items() if name not in FAST_DECODERS}
    finder_seen = any(texts.values()) or any(finders.present(v.gray) for v in views)
    for v in views:
        for name, read in slow.items():
            texts[v.name, name] = read(v.gray) if finder_seen else []
    reads = [Read(v.name, name, texts[v.name, name]) for v in views for name in readers]

    # 3. Exact matches and misreads
    decoded = sorted({t for r in reads for t in r.texts})
    misread = expected is not None and any(t != expected for t in decoded)
    rates = features(reads, expected)

    # 4. Why: symbol grades (a symbol without a finder pattern anywhere is not found, whatever it carries)
    if not grade:
        graded = grading.Grading({})
    elif finder_seen:
        graded = grading.grade(gray, expected, decoded)
    else:
        graded = grading.not_found(expected is not None)

    # 5. Probability and verdict
    model = model or DEFAULT_MODEL
    p = model.probability(rates)
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
        grades=graded.grades,
        reasons=graded.reasons,
        model=model.id,
    )


def ranking_score(
    image: Image.Image | np.ndarray, expected: str | None = None, seed: int = 0, model: DecisionModel | None = None
) -> float:
    """A cheaper scan probability for ranking many candidates (two captures instead of six)."""
    result = verify(image, expected, captures_count=RANKING_CAPTURES, seed=seed, grade=False, model=model)
    return 0.0 if result.misread else result.scan_probability
