"""Scan verifier: will a person with a phone get exactly this text from this image?

Plain Python, importable without Django. For an image (and optionally the text it should carry) it runs
the decoders (zxing-cpp, WeChat, zbar; QReader when its weights are local) on the image itself, zxing and zbar
also on seeded simulated phone captures of rising severity (`generator.core.codes.captures`), grades the
symbol at full resolution (`generator.core.codes.grading`), and returns:

- `reads`: what each decoder read in each view;
- `expected_match`: whether any decoder read the expected text exactly (None without an expectation);
- `misread`: whether any decoder read a *different* text - a phone could open the wrong thing, so a
  misread always fails, whatever the probability;
- `scan_probability`: the probability in [0, 1] that a phone reads the expected text;
- `verdict`: "pass" when scan_probability >= threshold (default 0.5) and there is no misread;
- `features`: every number a decision model may weigh (below);
- `grades` and `reasons`: why, in the terms of ISO/IEC 15415 symbol grading: contrast, modulation,
  fixed-pattern damage, grid and unused error correction graded A-F, and what falls short in plain words;
- `model`: which decision model gave the probability (`MODEL`: its form and a hash of its weights).

WeChat (and QReader) read only the original, and only where some view shows a QR finder pattern
(`generator.core.codes.finders`) or a fast decoder (zxing, zbar) read a text: no reader reads a code without
finder patterns, and WeChat can spend seconds on an image without any.

How the probability is made (form "logistic-v3")
------------------------------------------------
A phone sees a code on a screen or a print at about the image's own resolution and binarises it locally, so
the art's texture inside modules can flip the pixel it samples; downscaled captures average that texture away
and make every decoder *more* likely to read (on real QR art too), so they are the lenient view, not the
strict one. A phone also needs all three finder patterns, and error correction to spare for the next frame.
The features follow:

- reads of the original: `o_zxing`, `o_wechat`, `o_zbar` (1 or 0), `o_pair` (zxing and WeChat both: two
  independent implementations agree);
- `f_share`: the mean share of fast decoders reading each capture - measured, but the shipped model gives it
  no weight: downscaled captures average the art's texture away, and on real QR art capture reads called
  two-thirds of iPhone failures readable;
- full-resolution margins from the symbol grading (`margin_features`): unused error correction as 15415
  measures it (`g_unused_ec`) and from each module centre's own pixel against a window of three modules
  (`g_unused_ec_sharp`, the phone's binariser), whether either leaves any to spare (`g_spare`: a code with
  none fails on the next frame that misreads one module more), the same read a ninth of a module off each
  centre (`g_unused_ec_jitter`, `g_spare_jitter`: a phone's grid is about that far out, and art whose texture
  flips a module within that distance reads on one frame and fails the next), the worst finder's damage
  (`g_finders`), the finders a phone's finder scan would find with light beyond them (`g_finders_clear`), the
  quiet zone (`g_quiet`), symbol contrast (`g_contrast`) and modulation (`g_modulation`); all 0 where the symbol
  is not found.

scan_probability = sigmoid(BIAS + sum(WEIGHTS[k] * k)); `DecisionModel` carries the weights, so a model
fitted to people's labels (the Django layer's calibration) can judge instead. Weights are non-negative: a
read or a margin never makes a phone less likely to read. Older features (`o_any`, `o_share`, `f_any`,
`f_max`, per-decoder `f_*`) stay in `features` so models of form "logistic-v1" still judge.

The weights are fitted by `bench/calibrate_verifier.py` (logistic regression) on synthetic sets made by
`generator.core.codes.synthetic`, whose labels come from a phone-like reference reader: it knows where the
code is, reads one binarised pixel per module at about full resolution, needs all three finders with light
beyond them and the format information, and needs Reed-Solomon to decode with a codeword to spare. The sets
include near-decodable art (art that some decoder reads on the image), where phones and decoders part ways.
Its figures (agreement, speed, and what they cannot show) are in `bench/RESULTS.md`.
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

from generator.core.codes import captures, decoders, finders, grading, sampling

DEFAULT_THRESHOLD = 0.5
FULL_CAPTURES = 6  # the full verdict: the image plus six simulated captures
RANKING_CAPTURES = 2  # the cheaper ranking score for many candidates
DECODERS = ("zxing", "wechat", "zbar")
# The original view is shrunk to this longer side first: no phone resolves more of a code than this, and
# decoders on a 6000 px photo would take seconds.
MAX_ORIGINAL_SIDE = 1536

FORM = "logistic-v3"  # reads of the original and the full-resolution grading margins, jittered too (docstring)
# Fitted by bench/calibrate_verifier.py (see the module docstring and bench/RESULTS.md), at full precision: a test
# refits them from the committed training table (tests/generator/core/codes/data/verifier_features.csv). Features
# at 0 were offered and left out by the fit; a calibration on people's labels weighs them all again. The captures'
# read share (`f_share`) is not offered: downscaling averages the art's texture away, so on real QR art capture
# reads called two-thirds of iPhone failures readable (issue 12); on the synthetic sets it adds nothing either.
BIAS = -13.21989244
WEIGHTS = {"o_zxing": 0.56005478, "o_wechat": 0.76126859, "o_zbar": 0.18555601, "o_pair": 0.0,
           "g_unused_ec": 0.52903916, "g_unused_ec_sharp": 2.80605849, "g_spare": 2.34943249,
           "g_unused_ec_jitter": 0.0, "g_spare_jitter": 1.35842448, "g_finders": 1.55181337,
           "g_finders_clear": 2.65297329, "g_quiet": 0.15545843, "g_contrast": 5.12466208, "g_modulation": 0.0}
# Decoders cheap enough to run on every view of every image; the others read only the original, and only where
# some view shows a finder pattern.
FAST_DECODERS = ("zxing", "zbar")
# Wrong modules in a finder with its separator (8x8) at which `g_finders` reaches 0.
FINDER_DAMAGE = 8
# Pixels per module below which no margin counts: phone scanners want about two preview pixels a module (zxing's
# documentation), and grading a symbol drawn one pixel a module measures the drawing, not what a phone resolves.
MIN_MODULE_PIXELS = 1.8
MARGIN_FEATURES = ("g_found", "g_unused_ec", "g_unused_ec_sharp", "g_spare", "g_unused_ec_jitter", "g_spare_jitter",
                   "g_finders", "g_finders_clear", "g_timing", "g_quiet", "g_contrast", "g_modulation", "g_grid",
                   "g_fixed_pattern")
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
    """Per-decoder (`o_zxing`, `f_zxing`, ...) and decoder-agnostic (`o_any`, ...) read rates.

    A decoder counts on the views it ran on: the slow ones (WeChat) read only the original, so their capture
    rate (`f_wechat`) is 0 and they count towards the original's shares alone.

    Args:
        reads: every (view, decoder) read; the first view is the original image.
        expected: the exact text, or None to count any non-empty text.

    Returns:
        The read-rate features by name (see the module docstring).
    """

    def matched(texts: list[str]) -> bool:
        return expected in texts if expected is not None else any(texts)

    views = list(dict.fromkeys(r.view for r in reads))
    voters = [d for d in dict.fromkeys(r.decoder for r in reads) if d in VOTERS]
    hit = {(r.view, r.decoder): matched(r.texts) for r in reads}
    out: dict[str, float] = {}
    captures_seen = max(1, len(views) - 1)
    for d in voters:
        out[f"o_{d}"] = float(hit.get((views[0], d), False))
        out[f"f_{d}"] = sum(hit.get((v, d), False) for v in views[1:]) / captures_seen
    out["o_pair"] = out.get("o_zxing", 0.0) * out.get("o_wechat", 0.0)
    if not voters:
        return {**out, "o_any": 0.0, "o_share": 0.0, "f_any": 0.0, "f_share": 0.0, "f_max": 0.0}

    def share(view: str) -> float:
        ran = [d for d in voters if (view, d) in hit]
        return sum(hit[view, d] for d in ran) / len(ran) if ran else 0.0

    shares = [share(v) for v in views]
    out["o_any"] = float(shares[0] > 0)
    out["o_share"] = shares[0]
    out["f_any"] = sum(s > 0 for s in shares[1:]) / captures_seen
    out["f_share"] = sum(shares[1:]) / captures_seen
    out["f_max"] = max(out[f"f_{d}"] for d in voters)
    return out


def margin_features(graded: grading.Grading) -> dict[str, float]:
    """The full-resolution symbol measures a decision model may weigh, each 0-1 with 1 the best.

    Args:
        graded: `grading.grade`'s answer for the original image (`grading.not_found` where nothing was found).

    Returns:
        `g_found` (the symbol was located); `g_unused_ec` (15415's unused error correction of the worst block:
        1 untouched, 0 nothing left); `g_unused_ec_sharp` (the same from each module centre's own pixel against
        a window of 3 modules, as a phone's binariser sees the image at full resolution); `g_spare` (1 when
        either reading leaves some error correction unused, else 0); `g_unused_ec_jitter` and `g_spare_jitter`
        (the same where a module counts wrong if its centre or any point a ninth of a module off it reads wrong
        against a 5-module window: frames whose grid is a little off); `g_finders` (the
        worst finder with its separator: 1 intact, 0 at `FINDER_DAMAGE` wrong modules or more);
        `g_finders_clear` (1 when all three finders' centre lines read clean, light beyond each end, in that
        sharp reading - `grading.finders_clear` - else 0); `g_timing`
        (share of the worse timing pattern read right); `g_quiet` (the narrowest quiet-zone margin / 4
        modules); `g_contrast` (symbol contrast); `g_modulation`, `g_grid`, `g_fixed_pattern` (those grades,
        F = 0 to A = 1). All 0 when not found, or found with modules under `MIN_MODULE_PIXELS` across.
    """
    measures = graded.measures
    if graded.located_by is None or not measures or measures.get("module_pixels", 0.0) < MIN_MODULE_PIXELS:
        return dict.fromkeys(MARGIN_FEATURES, 0.0)
    worst_finder = max(measures[f"finder_errors_{name}"] for name in grading.FINDER_NAMES)
    worst_timing = max(measures[f"timing_errors_{name}"] for name in grading.TIMING_NAMES)
    return {
        "g_found": 1.0,
        "g_unused_ec": 1.0 - measures["ec_used"],
        "g_unused_ec_sharp": 1.0 - measures["ec_used_sharp"],
        # Error correction to spare in either reading: a phone whose next frame misreads one module more fails a
        # code with none, however well its finders and contrast look (a sum of margins alone passed such codes).
        "g_spare": float(measures["ec_used"] < 1.0 or measures["ec_used_sharp"] < 1.0),
        # The same read a ninth of a module off each centre (`sampling.JITTER_OFFSETS`): art whose texture flips a
        # module within that distance reads on a well-placed frame and fails the next.
        "g_unused_ec_jitter": 1.0 - measures["ec_used_jitter"],
        "g_spare_jitter": float(measures["ec_used_jitter"] < 1.0),
        "g_finders": max(0.0, 1.0 - worst_finder / FINDER_DAMAGE),
        # All three or nothing: a phone that finds two finders reads nothing, so two are worth no more than none.
        "g_finders_clear": float(measures["finders_clear"] == 3),
        "g_timing": 1.0 - worst_timing,
        "g_quiet": measures["quiet_zone_modules"] / sampling.QUIET,
        "g_contrast": measures["symbol_contrast"],
        "g_modulation": grading.LETTERS.index(graded.grades["modulation"]) / 4,
        "g_grid": grading.LETTERS.index(graded.grades["grid"]) / 4,
        "g_fixed_pattern": grading.LETTERS.index(graded.grades["fixed_pattern"]) / 4,
    }


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


DEFAULT_MODEL = DecisionModel(BIAS, tuple(WEIGHTS.items()), FORM)
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

    The same verdict can be reached in two processes (`ranking.submit_verify` does, with cores to spare):
    `verify_part` on two ranges of views, then `combine`.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    started = time.perf_counter()
    readers = readers if readers is not None else decoders.available_readers()
    options = dict(captures_count=captures_count, seed=seed, readers=readers, grade=grade, model=model)
    part = verify_part(image, expected, range(captures_count + 1), **options)
    return combine(image, expected, [part], threshold=threshold, started=started, **options)


@dataclass
class Part:
    """What `verify_part` saw on some of an image's views; `combine` makes the verdict from the parts."""

    views: range
    texts: dict[tuple[str, str], list[str]]  # (view name, decoder): texts read
    finder_seen: bool  # a decoder read a text, or a finder pattern shows, in one of these views
    slow_read: bool  # the slow decoders read the original (its part, where it saw a finder): in `texts`
    graded: grading.Grading | None  # the symbol's grading, where this part could grade it
    settings: tuple  # (captures_count, seed, grade, model id): the parts of one verdict must agree
    seconds: float  # this part's own time


def _gray(image: Image.Image | np.ndarray) -> np.ndarray:
    gray = np.asarray(image.convert("L")) if isinstance(image, Image.Image) else image
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("image arrays must be 2-D uint8 luminance")
    if max(gray.shape) > MAX_ORIGINAL_SIDE:
        scale = MAX_ORIGINAL_SIDE / max(gray.shape)
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def _grades(model: DecisionModel, grade: bool) -> bool:
    """Whether a verdict grades the symbol: for its reasons, or because the model weighs a margin."""
    return grade or any(name in MARGIN_FEATURES for name, _ in model.weights)


def _slow_reads(gray: np.ndarray, texts: dict, readers: Mapping) -> None:
    """The slow decoders on the original, into `texts`: once some view showed a finder pattern."""
    for name, read in readers.items():
        if name not in FAST_DECODERS:
            texts[captures.view_name(0), name] = read(gray)


def _grading(gray: np.ndarray, expected: str | None, texts: dict, grades: bool) -> grading.Grading:
    """The symbol's grading once a finder was seen; without an expected text, of the first text any view read."""
    if not grades:
        return grading.Grading({})
    return grading.grade(gray, expected, sorted({t for found in texts.values() for t in found}))


def verify_part(
    image: Image.Image | np.ndarray,
    expected: str | None,
    views: range,
    *,
    captures_count: int = FULL_CAPTURES,
    seed: int = 0,
    readers: Mapping[str, decoders.Reader] | None = None,
    grade: bool = True,
    model: DecisionModel | None = None,
) -> Part:
    """Read some of `image`'s views as `verify` reads them: the fast decoders and the finder check on each; with the
    original among them and a finder seen, the slow decoders and the grading too.

    Args:
        image, expected, captures_count, seed, readers, grade, model: as `verify`'s.
        views (`range`): which views (0 the image itself, i its i-th capture of `captures_count`).

    Returns:
        A `Part`, for `combine` with the parts of the other views (it pickles: a process pool can make it).
    """
    if captures_count < 1:
        raise ValueError(f"captures_count must be at least 1, got {captures_count}")
    started = time.perf_counter()
    model = model or DEFAULT_MODEL
    gray = _gray(image)
    readers = readers if readers is not None else decoders.available_readers()
    seen = captures.phone_views(gray, captures_count, seed=image_seed(gray, seed), indices=views)
    texts = {(v.name, name): read(v.gray) for v in seen for name, read in readers.items() if name in FAST_DECODERS}
    finder_seen = any(texts.values()) or any(finders.present(v.gray) for v in seen)
    slow_read, graded = 0 in views and finder_seen, None
    if slow_read:
        _slow_reads(gray, texts, readers)
        # Without an expected text the grading needs every view's reads: `combine` grades then, unless all are here
        if expected is not None or len(views) == captures_count + 1:
            graded = _grading(gray, expected, texts, _grades(model, grade))
    return Part(views, texts, finder_seen, slow_read, graded, (captures_count, seed, grade, model.id),
                time.perf_counter() - started)


def combine(
    image: Image.Image | np.ndarray,
    expected: str | None,
    parts: list[Part],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    captures_count: int = FULL_CAPTURES,
    seed: int = 0,
    readers: Mapping[str, decoders.Reader] | None = None,
    grade: bool = True,
    model: DecisionModel | None = None,
    started: float | None = None,
) -> ScanResult:
    """The verdict from `verify_part`s covering every view once: what `verify` returns for the same arguments.

    Where only a capture showed a finder, the original's part did not run the slow decoders or grade: that is
    done here, as `verify` would have (rare: the original shows what its captures show).

    Args:
        image, expected, threshold, captures_count, seed, readers, grade, model: as `verify`'s, and as the parts
            were made with.
        parts (`list[Part]`): `verify_part`'s answers, each view once.
        started (`float`, *optional*): `time.perf_counter()` when the verdict began (`verify` passes it); without
            it, `seconds` is the slowest part's time and this call's.

    Returns:
        A `ScanResult`.

    Raises:
        ValueError: a threshold outside 0-1, parts that miss or repeat a view, or parts made with other settings.
    """
    # 1. Check inputs
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    covered = sorted(i for part in parts for i in part.views)
    if covered != list(range(captures_count + 1)):
        raise ValueError(f"the parts must cover views 0-{captures_count} once each, got {covered}")
    model = model or DEFAULT_MODEL
    settings = (captures_count, seed, grade, model.id)
    if any(part.settings != settings for part in parts):
        raise ValueError(f"the parts were made with other settings than {settings} (captures, seed, grade, model)")
    began = time.perf_counter()
    readers = readers if readers is not None else decoders.available_readers()
    texts = {key: found for part in parts for key, found in part.texts.items()}
    finder_seen = any(part.finder_seen for part in parts)
    original = next(part for part in parts if 0 in part.views)
    graded = original.graded

    # 2. The slow decoders read the original where some view shows a finder pattern (here when only a capture did)
    if finder_seen and graded is None:
        gray = _gray(image)
        if not original.slow_read:
            _slow_reads(gray, texts, readers)
        graded = _grading(gray, expected, texts, _grades(model, grade))
    for name in readers:
        if name not in FAST_DECODERS:
            texts.setdefault((captures.view_name(0), name), [])
    names = [captures.view_name(i) for i in range(captures_count + 1)]
    reads = [Read(view, name, texts[view, name]) for view in names for name in readers if (view, name) in texts]

    # 3. Exact matches and misreads
    decoded = sorted({t for r in reads for t in r.texts})
    misread = expected is not None and any(t != expected for t in decoded)
    rates = features(reads, expected)

    # 4. Why, and the full-resolution margins: symbol grades (a symbol without a finder pattern anywhere is not
    # found, whatever it carries). The ranking score skips grading unless the model weighs a margin.
    if not finder_seen:
        graded = grading.not_found(expected is not None) if _grades(model, grade) else grading.Grading({})
    rates.update(margin_features(graded))
    if not grade:
        graded = grading.Grading({})

    # 5. Probability and verdict
    p = model.probability(rates)
    return ScanResult(
        expected=expected,
        reads=reads,
        decoded=decoded,
        expected_match=(expected in decoded) if expected is not None else None,
        misread=misread,
        scan_probability=round(p, 4),
        verdict="pass" if p >= threshold and not misread else "fail",
        seconds=round(time.perf_counter() - started if started is not None
                      else max(part.seconds for part in parts) + time.perf_counter() - began, 4),
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
