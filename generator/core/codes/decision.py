"""The scan verifier's decision: from what the decoders read and what the grading measured to the probability that a
phone reads the code.

`scan.verify` runs the decoders on an image and its simulated captures and grades the symbol; this module turns what
it saw into numbers (`features`: read rates; `margin_features`: the grading's margins) and weighs them
(`DecisionModel`: the shipped `DEFAULT_MODEL`, or one `fit_weights` fitted to people's labels).

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
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from generator.core.codes import decoders, grading, sampling

DECODERS = ("zxing", "wechat", "zbar")
# Decoders that vote. The optional QReader reads (its texts count for misreads) but does not vote: it was
# never part of a calibration run, and on real art it calls nearly every image readable.
VOTERS = DECODERS

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
# Wrong modules in a finder with its separator (8x8) at which `g_finders` reaches 0.
FINDER_DAMAGE = 8
# Pixels per module below which no margin counts: phone scanners want about two preview pixels a module (zxing's
# documentation), and grading a symbol drawn one pixel a module measures the drawing, not what a phone resolves.
MIN_MODULE_PIXELS = 1.8
MARGIN_FEATURES = ("g_found", "g_unused_ec", "g_unused_ec_sharp", "g_spare", "g_unused_ec_jitter", "g_spare_jitter",
                   "g_finders", "g_finders_clear", "g_timing", "g_quiet", "g_contrast", "g_modulation", "g_grid",
                   "g_fixed_pattern")


def features(reads: list[decoders.Read], expected: str | None) -> dict[str, float]:
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
