"""Scan verifier: will a person with a phone get exactly this text from this image?

Plain Python, importable without Django. For an image (and optionally the text it should carry) it runs
the decoders (zxing-cpp, WeChat, zbar; QReader when its weights are local) on the image itself, zxing and zbar
also on seeded simulated phone captures of rising severity (`generator.core.codes.captures`), grades the
symbol at full resolution (`generator.core.codes.grading`), weighs what it saw (`generator.core.codes.decision`:
the features, and the decision model that turns them into a probability), and returns:

- `reads`: what each decoder read in each view;
- `expected_match`: whether any decoder read the expected text exactly (None without an expectation);
- `misread`: whether any decoder read a *different* text - a phone could open the wrong thing, so a
  misread always fails, whatever the probability;
- `scan_probability`: the probability in [0, 1] that a phone reads the expected text;
- `verdict`: "pass" when scan_probability >= threshold (default 0.5) and there is no misread;
- `features`: every number a decision model may weigh (`decision.features`, `decision.margin_features`);
- `grades` and `reasons`: why, in the terms of ISO/IEC 15415 symbol grading: contrast, modulation,
  fixed-pattern damage, grid and unused error correction graded A-F, and what falls short in plain words;
- `model`: which decision model gave the probability (`decision.MODEL`: its form and a hash of its weights).

WeChat (and QReader) read only the original, and only where some view shows a QR finder pattern
(`generator.core.codes.finders`) or a fast decoder (zxing, zbar) read a text: no reader reads a code without
finder patterns, and WeChat can spend seconds on an image without any.

How the probability is made, from which features, and how its weights are fitted: `generator.core.codes.decision`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from PIL import Image

from generator.core.codes import captures, decision, decoders, finders, grading

DEFAULT_THRESHOLD = 0.5
FULL_CAPTURES = 6  # the full verdict: the image plus six simulated captures
RANKING_CAPTURES = 2  # the cheaper ranking score for many candidates
# The original view is shrunk to this longer side first: no phone resolves more of a code than this, and
# decoders on a 6000 px photo would take seconds.
MAX_ORIGINAL_SIDE = 1536
# Decoders cheap enough to run on every view of every image; the others read only the original, and only where
# some view shows a finder pattern.
FAST_DECODERS = ("zxing", "zbar")
# The original's work, in pieces that `verify_part` can do apart: the fast decoders (and the finder check where they
# read nothing), the slow decoders, the grading. Each of the last two costs about as much as all of a capture's work
# on a code, and far more on art that hides its code (WeChat looking for it, the grading locating it), so a verdict
# over many processes gives each its own (`ranking.SPLITS`).
ORIGINAL_PIECES = ("fast", "slow", "grade")


@dataclass
class ScanResult:
    """The verifier's answer for one image (see the module docstring for each field)."""

    expected: str | None
    reads: list[decoders.Read]
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
    model: decision.DecisionModel | None = None,
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
        model (`decision.DecisionModel`, *optional*): what turns the features into the probability; defaults to
            `decision.DEFAULT_MODEL` (the Django layer passes the active calibrated model).

    Returns:
        A `ScanResult`.

    The same verdict can be reached in several processes (`ranking.submit_verify` does, with cores to spare):
    `verify_part` on ranges of views (and on pieces of the original's work), then `combine`.
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
    pieces: tuple[str, ...] = ORIGINAL_PIECES  # which of the original's work this part did, where view 0 is in `views`


def _gray(image: Image.Image | np.ndarray) -> np.ndarray:
    gray = np.asarray(image.convert("L")) if isinstance(image, Image.Image) else image
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError("image arrays must be 2-D uint8 luminance")
    if max(gray.shape) > MAX_ORIGINAL_SIDE:
        scale = MAX_ORIGINAL_SIDE / max(gray.shape)
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def _grades(model: decision.DecisionModel, grade: bool) -> bool:
    """Whether a verdict grades the symbol: for its reasons, or because the model weighs a margin."""
    return grade or any(name in decision.MARGIN_FEATURES for name, _ in model.weights)


def _slow_reads(gray: np.ndarray, texts: dict, readers: Mapping) -> None:
    """The slow decoders on the original, into `texts`: once some view showed a finder pattern."""
    for name, read in readers.items():
        if name not in FAST_DECODERS:
            texts[captures.view_name(0), name] = read(gray)


def _shows_code(gray: np.ndarray, readers: Mapping) -> bool:
    """Whether a fast decoder reads a text in the original or a finder pattern shows in it: what the part with the
    original's fast decoders finds, asked again by a part that reads or grades the original without them (it must
    not wait for that part, and must not run WeChat on an image without a code). Cheapest first: zxing, the finder
    check, then the other fast decoders (zbar, the dearest of them)."""
    fast = [read for name, read in readers.items() if name in FAST_DECODERS]
    return any(read(gray) for read in fast[:1]) or finders.present(gray) or any(read(gray) for read in fast[1:])


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
    pieces: tuple[str, ...] = ORIGINAL_PIECES,
    captures_count: int = FULL_CAPTURES,
    seed: int = 0,
    readers: Mapping[str, decoders.Reader] | None = None,
    grade: bool = True,
    model: decision.DecisionModel | None = None,
) -> Part:
    """Read some of `image`'s views as `verify` reads them: the fast decoders and the finder check on each; with the
    original among them and a finder seen, the slow decoders and the grading too.

    Args:
        image, expected, captures_count, seed, readers, grade, model: as `verify`'s.
        views (`range`): which views (0 the image itself, i its i-th capture of `captures_count`).
        pieces (`tuple[str, ...]`, *optional*, defaults to all of `ORIGINAL_PIECES`): which of the original's work
            this part does, where view 0 is among `views`: "fast" (its fast decoders and finder check), "slow" (its
            slow decoders), "grade" (the grading). Without "fast", whether the original shows a code is asked again
            (`_shows_code`), so WeChat still never runs on an image without one.

    Returns:
        A `Part`, for `combine` with the parts of the other views (it pickles: a process pool can make it).
    """
    if captures_count < 1:
        raise ValueError(f"captures_count must be at least 1, got {captures_count}")
    if not pieces or not set(pieces) <= set(ORIGINAL_PIECES):
        raise ValueError(f"pieces must be some of {ORIGINAL_PIECES}, got {pieces}")
    started = time.perf_counter()
    model = model or decision.DEFAULT_MODEL
    gray = _gray(image)
    readers = readers if readers is not None else decoders.available_readers()
    seen = captures.phone_views(gray, captures_count, seed=image_seed(gray, seed), indices=views)
    read = [v for v in seen if v.name != captures.view_name(0) or "fast" in pieces]
    texts = {(v.name, name): fn(v.gray) for v in read for name, fn in readers.items() if name in FAST_DECODERS}
    finder_seen = any(texts.values()) or any(finders.present(v.gray) for v in read)
    slow_read, graded = False, None
    if 0 in views and {"slow", "grade"} & set(pieces):
        finder_seen = finder_seen or ("fast" not in pieces and _shows_code(gray, readers))
        if finder_seen:
            slow_read = "slow" in pieces
            if slow_read:
                _slow_reads(gray, texts, readers)
            # Without an expected text the grading needs every view's reads: `combine` grades then, unless all are here
            whole = len(views) == captures_count + 1 and set(pieces) == set(ORIGINAL_PIECES)
            if "grade" in pieces and (expected is not None or whole):
                graded = _grading(gray, expected, texts, _grades(model, grade))
    return Part(views, texts, finder_seen, slow_read, graded, (captures_count, seed, grade, model.id),
                time.perf_counter() - started, tuple(pieces) if 0 in views else ())


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
    model: decision.DecisionModel | None = None,
    started: float | None = None,
) -> ScanResult:
    """The verdict from `verify_part`s covering every view once (and the original's pieces once each): what `verify`
    returns for the same arguments.

    Where only a capture showed a finder, the original's parts did not run the slow decoders or grade: that is
    done here, as `verify` would have (rare: the original shows what its captures show).

    Args:
        image, expected, threshold, captures_count, seed, readers, grade, model: as `verify`'s, and as the parts
            were made with.
        parts (`list[Part]`): `verify_part`'s answers, each capture once and each of the original's pieces once.
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
    pieces = sorted(piece for part in parts if 0 in part.views for piece in part.pieces)
    if [i for i in covered if i] != list(range(1, captures_count + 1)) or pieces != sorted(ORIGINAL_PIECES):
        raise ValueError(f"the parts must cover views 0-{captures_count} once each, got {covered} (the original's "
                         f"pieces {', '.join(pieces) or 'none'} of {', '.join(ORIGINAL_PIECES)})")
    model = model or decision.DEFAULT_MODEL
    settings = (captures_count, seed, grade, model.id)
    if any(part.settings != settings for part in parts):
        raise ValueError(f"the parts were made with other settings than {settings} (captures, seed, grade, model)")
    began = time.perf_counter()
    readers = readers if readers is not None else decoders.available_readers()
    texts = {key: found for part in parts for key, found in part.texts.items()}
    finder_seen = any(part.finder_seen for part in parts)
    graded = next((part.graded for part in parts if part.graded is not None), None)

    # 2. The slow decoders read the original where some view shows a finder pattern, and it is graded (here when
    # only a capture did, or without an expected text, when the grading needs every view's reads)
    if finder_seen and (graded is None or not any(part.slow_read for part in parts)):
        gray = _gray(image)
        if not any(part.slow_read for part in parts):
            _slow_reads(gray, texts, readers)
        if graded is None:
            graded = _grading(gray, expected, texts, _grades(model, grade))
    for name in readers:
        if name not in FAST_DECODERS:
            texts.setdefault((captures.view_name(0), name), [])
    names = [captures.view_name(i) for i in range(captures_count + 1)]
    reads = [decoders.Read(view, name, texts[view, name])
             for view in names for name in readers if (view, name) in texts]

    # 3. Exact matches and misreads
    decoded = sorted({t for r in reads for t in r.texts})
    misread = expected is not None and any(t != expected for t in decoded)
    rates = decision.features(reads, expected)

    # 4. Why, and the full-resolution margins: symbol grades (a symbol without a finder pattern anywhere is not
    # found, whatever it carries). The ranking score skips grading unless the model weighs a margin.
    if not finder_seen:
        graded = grading.not_found(expected is not None) if _grades(model, grade) else grading.Grading({})
    rates.update(decision.margin_features(graded))
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
    image: Image.Image | np.ndarray, expected: str | None = None, seed: int = 0,
    model: decision.DecisionModel | None = None,
) -> float:
    """A cheaper scan probability for ranking many candidates (two captures instead of six)."""
    result = verify(image, expected, captures_count=RANKING_CAPTURES, seed=seed, grade=False, model=model)
    return 0.0 if result.misread else result.scan_probability
