"""The halftone engine: QR codes that look like a picture and scan, on one CPU core, with no model weights.

Plain Python, importable without Django. Each candidate is one variant of the picture with the code's module
spots pushed past their thresholds (how a variant is drawn, its spots fitted to a soft capture and its margins
to the picture: `halftone_drawing`). The margins are raised where the picture leaves too little contrast, so the
first verdict usually passes: on one core each verdict costs about 0.3 s at 768².

    result = best_halftones(picture, "https://qart.example/r/AbC123", HalftoneConfig(n=8, seed=7))
    result.candidates[0].image, result.candidates[0].fidelity_ssim, result.message

A candidate's seed names its variant (`halftone_drawing.variant_for_seed`). Every variant is verified with the
full strict verdict (`scan.verify`) and must hold the robust margin above it (`robust.check` at
`robust.HARD_SEVERITIES`: zxing and WeChat read the exact text on the image and on 3 of 4 hard phone-like
captures; small spots can pass the verdict and still vanish in a downscaled, blurred capture); one that falls
short is made stronger (a larger margin, then larger spots) and checked again, so every returned candidate holds
both.

Ranking: there is no aesthetic model on the CPU, so `aesthetic` stays None and candidates rank by their likeness to
the picture (`ranking.likeness`: fidelity SSIM less the colour error), a "good" scan band costing a little of it
(`ranking.rank`): the most faithful scannable code first.
Fidelity is measured against the picture as fitted to the code (centre-cropped and resized), outside everything
that was constrained (spots with their feather, function patterns, quiet zone): SSIM of the luminance, and the mean
absolute colour difference per channel (0-255).

Logo: `best_halftones(..., logo=image)` puts the logo on a white plate in the centre (`logos.plate_for`: level H,
at most a fifth of the symbol, clear of every function pattern), drawn over each variant before it is verified,
so every returned candidate scans with the logo on it.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from generator.core.codes import decision, grids, logos, qr, repair, robust, scan
from generator.core.engines import ranking
from generator.core.engines.halftone_drawing import (
    Logo,
    Variant,
    fit_picture,
    layout,
    render,
    strongest,
    variant_for_seed,
)

MIN_PICTURE_SIDE = 64
# How the result message starts its warning that the picture fought the code; the result says it as data too
# (`BestOfNResult.picture_fights`), which the job page reads to show the message as a warning, not as good news.
PICTURE_FIGHTS = "This picture fights the code"
MIN_SIZE, MAX_SIZE = 256, 2048


@dataclass
class HalftoneConfig:
    """How many candidates, of what, and how strict."""

    n: int = 8  # candidates (variants) to return
    seed: int | None = None  # first candidate's seed, which names its variant; random when None
    threshold: float = scan.DEFAULT_THRESHOLD  # scan probability needed to pass
    model: decision.DecisionModel | None = None  # the verifier's decision model; the shipped one when None
    size: int = 768  # side of the image in pixels
    ecc: str = "H"  # error correction of the code
    border: int = 4  # quiet zone in modules
    max_version: int = qr.DEFAULT_MAX_VERSION
    # Below this likeness (`ranking.likeness`) of the closest candidate that scans, the result message says the
    # picture fought the code: under it the picture is hard to make out in the code.
    fidelity_floor: float = 0.4
    max_rounds: int = 6  # verdicts per candidate before it falls back to the strongest variant
    logo_share: float = logos.DEFAULT_SHARE  # a logo's plate as a share of the symbol's area (with a logo only)
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # verifier processes; 1 verifies inline

    def validate(self) -> None:
        if not 1 <= self.n <= 16:
            raise ValueError(f"Candidates must be between 1 and 16, got {self.n}.")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(f"Size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {self.size}.")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"The scan threshold must be between 0 and 1, got {self.threshold}.")
        if not 0.0 <= self.fidelity_floor <= 1.0:
            raise ValueError(f"The fidelity floor must be between 0 and 1, got {self.fidelity_floor}.")
        if self.seed is not None and not 0 <= self.seed < 2**32 - 16:
            raise ValueError(f"Seed must be between 0 and {2**32 - 17}, got {self.seed}.")
        if not 1 <= self.max_rounds <= 12:
            raise ValueError(f"Rounds must be between 1 and 12, got {self.max_rounds}.")
        if not logos.MIN_SHARE <= self.logo_share <= logos.MAX_SHARE:
            raise ValueError(f"The logo's share of the code must be between {logos.MIN_SHARE:.0%} and "
                             f"{logos.MAX_SHARE:.0%}, got {self.logo_share:.0%}.")


def fidelity(picture: Image.Image, image: Image.Image, constrained: np.ndarray) -> tuple[float, float]:
    """SSIM of the luminance and mean absolute colour difference (0-255) outside the constrained pixels.

    Args:
        picture: the fitted picture (the reference).
        image: a candidate of the same size.
        constrained: (h, w) bool, the pixels to leave out (from `render`).

    Returns:
        (fidelity_ssim, color_error).
    """
    free = ~constrained
    if not free.any():
        return 0.0, 255.0
    difference = np.abs(np.asarray(picture, dtype=np.int16) - np.asarray(image, dtype=np.int16))
    return repair.ssim(picture, image, where=free), float(difference[free].mean())


@dataclass
class Attempt:
    """One candidate as drawn and verified (what a verifier process sends back)."""

    variant: Variant
    image: Image.Image
    scan: scan.ScanResult
    robust: robust.Margin | None  # the robust margin of `image`; None where the verdict failed (not checked)
    rounds: int  # verdicts it took
    fidelity_ssim: float
    color_error: float
    pixels_changed: float
    render_seconds: float
    verify_seconds: float


def make_candidate(
    picture: Image.Image, grid: grids.Grid, variant: Variant, expected: str, threshold: float, max_rounds: int,
    model: decision.DecisionModel | None = None, logo: Logo | None = None,
) -> Attempt:
    """Draw `variant`, verify it, and make it stronger until it passes (the last round tries the strongest).

    Args:
        picture: the fitted picture (`fit_picture`).
        grid: the code's module grid for that size.
        variant: where to start.
        expected: the exact text the code carries.
        threshold: scan probability needed to pass.
        max_rounds: verdicts at most.
        model: the verifier's decision model; the shipped one when None.
        logo: a logo drawn over every round (`render`); None for none.

    Returns:
        An `Attempt`: the first variant that passed the verdict with the robust margin (`robust.check`) to spare,
        else the strongest one tried, with its failing verdict or margin.
    """
    lay = layout(grid)
    render_seconds = verify_seconds = 0.0
    rounds = 0
    while True:
        rounds += 1
        started = time.perf_counter()
        image, constrained = render(picture, lay, variant, logo)
        render_seconds += time.perf_counter() - started
        started = time.perf_counter()
        verdict = scan.verify(image, expected, threshold=threshold, model=model)
        # A pass at the verifier's line reads on one phone and not the next: every returned variant must also
        # read exactly, by both margin decoders, on the image and on phone-like captures.
        held = robust.check(image, expected, severities=robust.HARD_SEVERITIES) if verdict.passed else None
        verify_seconds += time.perf_counter() - started
        stronger = variant.stronger()
        if (held is not None and held.passed) or stronger is None or rounds >= max_rounds:
            break
        # The last round allowed goes straight to the top of the ladder: a pass beats a near miss.
        variant = stronger if rounds + 1 < max_rounds else strongest(variant)
    ssim, colour = fidelity(picture, image, constrained)
    changed = float((np.asarray(image) != np.asarray(picture)).any(axis=-1).mean())
    return Attempt(variant, image, verdict, held, rounds, ssim, colour, changed, render_seconds, verify_seconds)


def best_halftones(
    picture: Image.Image,
    content: str,
    config: HalftoneConfig | None = None,
    on_progress: ranking.Progress | None = None,
    logo: Image.Image | None = None,
) -> ranking.BestOfNResult:
    """Make N halftone QR codes of `picture` for `content`, each passing the strict scan verdict, ranked.

    Args:
        picture (`PIL.Image.Image`): the picture or logo (see `images.open_picture` for uploads); it is
            centre-cropped to a square and fills the code.
        content (`str`): what the code must carry (validated; too long gives `qr.ContentError`).
        config (`HalftoneConfig`, *optional*): candidates, seed, threshold, size, code and fidelity floor.
        on_progress (`Callable[[str, float], None]`, *optional*): called with "generating" and the fraction
            of candidates done, then ("done", 1.0). Raising from it stops the request.
        logo (`PIL.Image.Image`, *optional*): a logo for the centre of the code, on a white plate of
            `config.logo_share` of the symbol (`logos.plate_for`); the code must be level H.

    Returns:
        A `ranking.BestOfNResult` (one batch) whose control image is the code's plain control image.
        Only candidates that pass are kept, ranked by likeness (`ranking.rank`); a variant that cannot pass even at
        its strongest is left out, and the message says so, as it says when the closest one's likeness is below
        `config.fidelity_floor` (then `picture_fights` is True too).
    """
    # 1. Check inputs
    config = config or HalftoneConfig()
    config.validate()
    if min(picture.size) < MIN_PICTURE_SIDE:
        raise ValueError(
            f"The picture is {picture.width}x{picture.height} pixels: at least {MIN_PICTURE_SIDE} on each side "
            "is needed to draw from."
        )
    report = on_progress or (lambda stage, fraction: None)
    code = qr.encode(content, ecc=config.ecc, max_version=config.max_version)
    control = qr.render_control_image(code, config.size, config.border)
    grid = grids.grid_from_code(code, config.size, config.border)
    fitted = fit_picture(picture, config.size)
    placed = Logo(logo.convert("RGB"), logos.plate_for(code, config.logo_share)) if logo is not None else None
    # A random start lands on a multiple of 8, the start of a cycle (colour, undithered first), so a small request
    # gets the plain variants rather than whichever dithered ones the cycle happened to be at.
    first_seed = config.seed if config.seed is not None else secrets.randbelow(2**31 // 8) * 8
    seeds = [first_seed + i for i in range(config.n)]

    # 2. Draw, verify and strengthen every variant: one task each, side by side in the verifier processes
    report("generating", 0.0)
    started = time.perf_counter()
    tasks = [(fitted, grid, variant_for_seed(s), code.content, config.threshold, config.max_rounds,
              config.model, placed) for s in seeds]
    pool = ranking.verifier_pool(config.workers) if config.n > 1 else None
    attempts: list[Attempt] = []
    if pool is None:
        for task in tasks:
            attempts.append(make_candidate(*task))
            report("generating", len(attempts) / len(tasks))
    else:
        futures = [pool.submit(make_candidate, *task) for task in tasks]
        for done, future in enumerate(futures, start=1):
            attempts.append(future.result())
            report("generating", done / len(tasks))
    wall = time.perf_counter() - started

    # 3. Keep what passes, rank (likeness, a "good" band costing a little: there is no aesthetic model on the CPU)
    candidates = [
        ranking.RankedImage(
            index=i, batch=0, seed=seeds[i], image=a.image, scan=a.scan, aesthetic=None,
            pixels_changed=a.pixels_changed, variant=a.variant.describe(), fidelity_ssim=round(a.fidelity_ssim, 4),
            color_error=round(a.color_error, 2),
        )
        for i, a in enumerate(attempts)
        if a.scan.passed and a.robust is not None and a.robust.passed
    ]
    ordered = ranking.rank(candidates)
    report("done", 1.0)

    # 4. Timings: wall time, split between drawing and verifying as the processes spent it
    drawing = sum(a.render_seconds for a in attempts)
    verifying = sum(a.verify_seconds for a in attempts)
    share = drawing / (drawing + verifying) if drawing + verifying else 0.0
    message = _message(ordered, len(attempts), config.fidelity_floor, placed)
    return ranking.BestOfNResult(code, control, ordered, 1, wall * share, wall * (1 - share), message,
                                 picture_fights=_fought_likeness(ordered, config.fidelity_floor) is not None)


def _message(ordered: list[ranking.RankedImage], tried: int, floor: float, logo: Logo | None = None) -> str:
    """What to tell the person: how many scan, and plainly when the picture fought the code.

    The likeness quoted is the closest candidate's among those kept (all of which scan), as the job page shows it in
    percent: not the first one's, which may rank first on a safer scan band with a little less likeness.
    """
    if not ordered:
        return (
            f"No scannable code: none of {tried} variants passed the scan check, even at their strongest. "
            + ("The logo covers part of the code's spare data: try a smaller logo, or none. " if logo else "")
            + "Try a picture with more contrast, or a shorter link."
        )
    parts = [f"{len(ordered)} of {tried} variants scan."]
    if len(ordered) < tried:
        parts.append(f"{tried - len(ordered)} could not be made to scan and were left out.")
    if (closest := _fought_likeness(ordered, floor)) is not None:
        parts.append(
            f"{PICTURE_FIGHTS}: the code that scans and keeps the most of it has a likeness of "
            f"{_percent(closest)} to your picture; below {_percent(floor)} the picture is hard to make out."
            + (" The logo covers part of the code's spare data, so the code's spots are stronger: a smaller logo, "
               "or none, leaves the picture more room." if logo else "")
        )
    return " ".join(parts)


def _fought_likeness(ordered: list[ranking.RankedImage], floor: float) -> float | None:
    """The likeness of the closest candidate kept (all of which scan) when even it is below `floor`: the picture fought
    the code. None when it did not, and when nothing scans (a warning of its own: `BestOfNResult.scannable`)."""
    closest = max((ranking.likeness(c.fidelity_ssim, c.color_error) for c in ordered
                   if c.passed and c.fidelity_ssim is not None), default=None)
    if closest is None:
        return None
    # Never below nothing, as the page shows it (`_percent`): a copy far off in colour scores under 0, and a floor of
    # 0 then said "a likeness of 0 % ... below 0 %".
    closest = max(0.0, closest)
    return closest if closest < floor else None


def _percent(share: float) -> str:
    """A likeness as the job page writes it: whole percent, never below 0 (a copy far off in colour goes below)."""
    return f"{round(max(0.0, share) * 100)} %"
