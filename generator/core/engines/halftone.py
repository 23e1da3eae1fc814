"""The halftone engine: QR codes that look like a picture and scan, on one CPU core, with no model weights.

Plain Python, importable without Django. The method is that of halftone QR codes (Chu et al., SIGGRAPH Asia
2013) and QArt codes (Cox 2012): a phone samples each module near its centre and compares it with its
neighbourhood, so only a spot of about a third of each module has to carry the module's bit. Those spots, the
finder and alignment patterns (whole modules: readers lock on by runs across them) and the quiet zone are
pushed just past the local threshold by a margin, keeping each pixel's hue (`repair.set_luminance`); every
other pixel keeps the picture's colour. The variant's margin is raised module by module where the picture
leaves it too little contrast (dark neighbourhoods, white ones, texture: `module_margins`), so the first
verdict usually passes: on one core each verdict costs about 0.3 s at 768².

    result = best_halftones(picture, "https://qart.example/r/AbC123", HalftoneConfig(n=8, seed=7))
    result.candidates[0].image, result.candidates[0].fidelity_ssim, result.message

Variants differ in spot size ("centre", a share of the module side), spot shape (dot or square), starting
margin ("soft" or "strong" contrast), dithering of the picture (error diffusion to two luminance levels, the
halftone look) and colour or greyscale. A candidate's seed names its variant (`variant_for_seed`). Every
variant is verified with the full strict verdict (`scan.verify`) and must hold the robust margin above it
(`robust.check` at `robust.HARD_SEVERITIES`: zxing and WeChat read the exact text on the image and on 3 of 4
hard phone-like captures; small spots can pass the verdict and still vanish in a downscaled, blurred capture);
one that falls short is made stronger (a larger margin, then larger spots) and checked again, so every returned
candidate holds both. Before any verdict, each module's spot is fitted to such a capture (`fit_spots`): where
the picture around a module disagrees with its bit, a 0.30 spot is blurred away at 260 px, so its margin and then
its size grow until the module's blurred centre reads right (`capture_leads`); where the picture agrees, the spot
stays as the variant draws it.

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

import itertools
import os
import secrets
import time
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from PIL import Image, ImageOps

from generator.core.codes import grids, logos, qr, repair, robust, scan
from generator.core.engines import ranking

SHAPES = ("dot", "square")
CENTRES = (0.30, 0.36, 0.42)  # spot side (or diameter) as a share of the module side; readers sample ~1/3
CONTRASTS = {"soft": 40, "strong": 72}  # starting luminance margin past the local threshold
MARGIN_STEP = 32  # each failed verdict adds this to the margin ...
MAX_MARGIN = 136  # ... up to this, then the spots grow
CENTRE_STEP = 0.12
MAX_CENTRE = 0.66  # beyond two thirds the code is a plain QR code with the picture in its gaps
FEATHER = 0.08  # soft edge of a spot, in module sides: no hard ring that would look like a printing fault
FUNCTION_MARGIN = 96  # finder and alignment modules get at least this margin: phones must lock on first
QUIET_LUMA = 224  # the quiet zone keeps the picture's hue at this luminance or lighter
DITHER_LEVELS = (48, 208)  # the two luminances of a dithered picture: dark and light enough to carry hue
# Adaptive margins (`module_margins`): where the picture leaves a module no room on one side of its threshold
# (a dark goal below black, a light one above white), the other side must carry the contrast, and phones' gamma
# squeezes dark tones most; texture blurs into the spots. Each adds to the variant's margin. Tuned on
# bench/halftone.py's pictures so the first verdict passes (black took 2.75 verdicts a candidate before) at the
# least fidelity cost: texture gain 0.5, or dark gain from luminance 96 down, cost 0.02-0.04 SSIM on photos.
DARK_TONE = 64.0  # neighbourhoods darker than this lack room below (or the margin, where that is larger)
DARK_ROOM_GAIN = 2.5  # extra margin per unit of room lacking below
LIGHT_ROOM_GAIN = 0.5  # ... and above white, which captures squeeze less
BUSY_GAIN = 0.25  # extra margin per unit of texture (RMS roughness of the module centres) around a module
# Spots sized for a soft, small capture (`fit_spots`). A phone that sees the whole 768 px image at 260-400 px
# (33 + 8 modules across: 6-10 px a module) through defocus of 1-1.5 px there reads each module as a blurred mean
# of about a third of a module around its centre, not the spot alone: a 0.30 spot (2 px) in a picture that
# disagrees with its bit is averaged away, and the module reads as the picture. So where a data module's blurred
# centre does not clear the blurred local threshold, its spot is made stronger step by step: first its margin,
# then its size. Tuned on bench/halftone.py's photos against phone-like captures written apart from
# `captures.capture` (the whole image at 260-400 px, tilted up to 25 degrees, defocus up to 1.5 px, noise, JPEG
# 50-80): blur 0.28 with the margin first read every variant at 260 px up to defocus 1.2 px (0.19 module sides),
# at the least fidelity cost of the settings tried; size alone, or blur 0.25, lost some from 1.0-1.2 px.
CAPTURE_BLUR = 0.28  # the Gaussian blur the spots are sized for, in module sides (1.8 px at 260 px, 41 modules)
CAPTURE_JITTER = 0.1  # the blurred centre is also sampled this far off the centre (module sides): grids are inexact
CAPTURE_LEAD = 12.0  # luminance the blurred centre must clear its blurred local threshold by
MARGIN_GROWTH = 16  # a weak module's margin rises by this per step ...
MAX_EXTRA_MARGIN = 64  # ... this far above the variant's (or until its goal reaches black or white) ...
SPOT_GROWTH = 0.06  # ... then its spot grows by this share of the module side per step (two while it reads wrong)
MAX_SPOT = 0.84  # ... up to this (the module is then nearly all spot)
GROWTH_STEPS = 14
FIT_PIXELS = 6.0  # module side (px) at which spots are fitted: enough for a blur of 0.28 of it
MIN_PICTURE_SIDE = 64
# How the result message starts its warning that the picture fought the code; the result says it as data too
# (`BestOfNResult.picture_fights`), which the job page reads to show the message as a warning, not as good news.
PICTURE_FIGHTS = "This picture fights the code"
MIN_SIZE, MAX_SIZE = 256, 2048


@dataclass(frozen=True)
class Variant:
    """How one candidate is drawn."""

    colour: bool  # keep the picture's colours (else greyscale)
    shape: str  # spot shape: "dot" or "square"
    dither: bool  # error-diffuse the picture to two luminance levels (the halftone look)
    centre: float  # spot side as a share of the module side
    margin: int  # luminance past the local threshold at the spots, raised locally by `module_margins`

    def describe(self) -> str:
        """A short label, e.g. 'centre 0.36, dots, colour, dithered, margin 40' (fits Candidate.variant)."""
        parts = [f"centre {self.centre:.2f}", f"{self.shape}s", "colour" if self.colour else "greyscale"]
        if self.dither:
            parts.append("dithered")
        return ", ".join(parts + [f"margin {self.margin}"])

    def stronger(self) -> Variant | None:
        """The next variant up the ladder (larger margin, then larger spots), or None at the top."""
        if self.margin < MAX_MARGIN:
            return replace(self, margin=min(MAX_MARGIN, self.margin + MARGIN_STEP))
        if self.centre < MAX_CENTRE - 1e-9:
            return replace(self, centre=round(min(MAX_CENTRE, self.centre + CENTRE_STEP), 2))
        return None


# Every combination once, colour changing fastest, then shape, dither, centre and contrast: any run of eight
# seeds covers colour x shape x dither.
VARIANTS = tuple(
    Variant(colour, shape, dither, centre, margin)
    for margin, centre, dither, shape, colour in itertools.product(
        CONTRASTS.values(), CENTRES, (False, True), SHAPES, (True, False)
    )
)


def variant_for_seed(seed: int) -> Variant:
    """The variant a candidate's seed names (seeds cycle through `VARIANTS`)."""
    return VARIANTS[seed % len(VARIANTS)]


@dataclass
class HalftoneConfig:
    """How many candidates, of what, and how strict."""

    n: int = 8  # candidates (variants) to return
    seed: int | None = None  # first candidate's seed, which names its variant; random when None
    threshold: float = scan.DEFAULT_THRESHOLD  # scan probability needed to pass
    model: scan.DecisionModel | None = None  # the verifier's decision model; the shipped one when None
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


@dataclass(frozen=True)
class Logo:
    """A logo and where it goes on the code: drawn over every variant (`render`)."""

    image: Image.Image
    plate: logos.Plate


@dataclass
class Layout:
    """Where each pixel lies on the code, computed once per request and shared by every variant.

    Attributes:
        grid: the module grid (`grids.grid_from_code`).
        row, col: (h, w) int arrays, the module of each pixel (clipped; see `inside`).
        dx, dy: (h, w) float arrays, offset from that module's centre in module sides (-0.5 to 0.5).
        inside: (h, w) bool, pixels on the code (not the quiet zone).
        function: (h, w) bool, pixels of finder, separator and alignment modules.
    """

    grid: grids.Grid
    row: np.ndarray
    col: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    inside: np.ndarray
    function: np.ndarray


def layout(grid: grids.Grid) -> Layout:
    """Each pixel's module and offset from its centre, for `grid`.

    Args:
        grid: the module grid of the image.

    Returns:
        A `Layout`.
    """
    n = grid.size
    ux = (np.arange(grid.width) + 0.5 - grid.origin_x) / grid.pitch
    uy = (np.arange(grid.height) + 0.5 - grid.origin_y) / grid.pitch
    cols, rows = np.floor(ux).astype(int), np.floor(uy).astype(int)
    col, row = np.meshgrid(np.clip(cols, 0, n - 1), np.clip(rows, 0, n - 1))
    dx, dy = np.meshgrid(ux - cols - 0.5, uy - rows - 0.5)
    inside = np.outer((rows >= 0) & (rows < n), (cols >= 0) & (cols < n))
    return Layout(grid, row, col, dx, dy, inside, inside & grid.function_mask[row, col])


def fit_picture(picture: Image.Image, size: int) -> Image.Image:
    """The picture centre-cropped to a square and resized to `size` (RGB): it fills the whole code.

    Args:
        picture: any PIL image (transparency should already be flattened, see `images.open_picture`).
        size: the side in pixels.

    Returns:
        A `size` x `size` RGB image.
    """
    return ImageOps.fit(picture.convert("RGB"), (size, size), Image.Resampling.LANCZOS)


def _styled(rgb: np.ndarray, variant: Variant) -> np.ndarray:
    """The picture before any constraint: greyscale and/or dithered as the variant says (float, 0-255)."""
    out = rgb.astype(np.float64)
    luma = out @ repair.LUMA
    if not variant.colour:
        out = np.repeat(luma[..., None], 3, axis=-1)
    if variant.dither:
        lo, hi = DITHER_LEVELS
        # Stretch to the two levels first, so the dots' average keeps the picture's luminance.
        spread = np.clip((luma - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
        dots = np.asarray(Image.fromarray(spread, "L").convert("1"), dtype=bool)  # Floyd-Steinberg
        out = repair.set_luminance(out, np.where(dots, float(hi), float(lo)))
    return out


def _spot_distance(lay: Layout, variant: Variant) -> np.ndarray:
    """Each pixel's distance from its module's centre in module sides, in the variant's spot shape's metric."""
    if variant.shape == "dot":
        return np.hypot(lay.dx, lay.dy)
    return np.maximum(np.abs(lay.dx), np.abs(lay.dy))


def _spot_weight(lay: Layout, variant: Variant, spots: np.ndarray | None = None,
                 distance: np.ndarray | None = None) -> np.ndarray:
    """How strongly each pixel is bound to its module's bit: 1 in a spot's core, feathered to 0 outside.

    Args:
        lay: the code's layout.
        variant: the spot shape, and the spot size where `spots` is None.
        spots: (n, n) spot size of each module (share of the module side); the variant's for all when None.
        distance: `_spot_distance(lay, variant)`, when already at hand.
    """
    distance = _spot_distance(lay, variant) if distance is None else distance
    core = variant.centre / 2 if spots is None else spots[lay.row, lay.col] / 2
    t = np.clip((core + FEATHER - distance) / FEATHER, 0.0, 1.0)
    weight = t * t * (3 - 2 * t)  # smoothstep
    return np.where(lay.function, 1.0, np.where(lay.inside, weight, 0.0))


def capture_leads(luma: np.ndarray, grid: grids.Grid, blur: float | None = None,
                  jitter: float | None = None) -> np.ndarray:
    """How far each module reads on its right side in a soft capture: (n, n) luminance, negative where wrong.

    The luminance is blurred by `blur` module sides (at a lower resolution, 6-12 pixels a module: the blur is
    several pixels wide); each module is sampled at its centre and `jitter` module sides off it in four
    directions, and the worst sample is compared with the blurred mean of its `grids.WINDOW_MODULES`-wide
    neighbourhood, where a reader's local threshold splits dark from light.

    Args:
        luma: (h, w) luminance of the image, 0-255.
        grid: where the modules are and what each should be.
        blur: Gaussian sigma of the capture, in module sides; `CAPTURE_BLUR` when None.
        jitter: sampling offset, in module sides; `CAPTURE_JITTER` when None.

    Returns:
        An (n, n) float array: the worst sample's distance past the threshold, towards the module's bit.
    """
    blur = CAPTURE_BLUR if blur is None else blur
    jitter = CAPTURE_JITTER if jitter is None else jitter
    h, w = luma.shape
    f = max(1, int(grid.pitch // 6))  # at least 6 pixels a module
    small = cv2.resize(luma.astype(np.float32), (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    scale = small.shape[1] / w
    pitch = grid.pitch * scale
    blurred = cv2.GaussianBlur(small, (0, 0), sigmaX=blur * pitch)
    small_grid = replace(grid, origin_x=grid.origin_x * scale, origin_y=grid.origin_y * scale, pitch=pitch,
                         width=small.shape[1], height=small.shape[0])
    threshold = grids._box_means(blurred, small_grid, pitch * grids.WINDOW_MODULES / 2)
    xs, ys = small_grid.centres()
    worst = np.full(xs.shape, np.inf)
    d = jitter * pitch
    for ox, oy in ((0.0, 0.0), (d, 0.0), (-d, 0.0), (0.0, d), (0.0, -d)):
        sample = cv2.remap(blurred, (xs + ox - 0.5).astype(np.float32), (ys + oy - 0.5).astype(np.float32),
                           cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        worst = np.minimum(worst, np.where(grid.matrix, threshold - sample, sample - threshold))
    return worst


def _pixel_goals(goals: np.ndarray, lay: Layout) -> np.ndarray:
    """Each pixel's goal luminance: its module's (`goals`, (n, n)), and `QUIET_LUMA` in the quiet zone."""
    return np.where(lay.inside, goals[lay.row, lay.col], float(QUIET_LUMA))


def _wrong_side(luma: np.ndarray, goals: np.ndarray, lay: Layout) -> np.ndarray:
    """The pixels on the wrong side of their goal (those a spot moves): lighter in a dark module, else darker."""
    dark = lay.grid.matrix[lay.row, lay.col] & lay.inside
    return np.where(dark, luma > goals, luma < goals)


def fit_spots(luma: np.ndarray, goals: np.ndarray, lay: Layout, variant: Variant) -> tuple[np.ndarray, np.ndarray]:
    """Each module's spot: the variant's, made stronger where a soft, small capture would read the module wrong.

    A data module whose blurred centre does not clear its blurred local threshold by `CAPTURE_LEAD`
    (`capture_leads`) gets `MARGIN_GROWTH` more margin per step, up to `MAX_EXTRA_MARGIN` (or until its goal is
    black or white), then a larger spot, `SPOT_GROWTH` per step (two while it reads wrong), up to `MAX_SPOT`.
    Modules where the picture already agrees with the bit keep the variant's spot, so the picture stays where it
    can. Margin first: at the same fidelity it held 260 px captures blurred by 1.4 px where size alone did not.

    Args:
        luma: (h, w) luminance of the styled picture.
        goals: (n, n) each module's goal luminance at the variant's margins.
        lay: the code's layout.
        variant: the spot shape and smallest size.

    Returns:
        (spots, goals): (n, n) spot sizes (shares of the module side) and goal luminances.
    """
    spots = np.full(lay.grid.matrix.shape, variant.centre)
    if CAPTURE_BLUR <= 0:
        return spots, goals
    # Fitted at FIT_PIXELS a module: the blur is what is judged, and a 768 px image costs 9 times less at a third.
    scale = min(1.0, FIT_PIXELS / lay.grid.pitch)
    if scale < 1.0:
        h, w = luma.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        scale = size[0] / w
        luma = cv2.resize(luma.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        grid = replace(lay.grid, origin_x=lay.grid.origin_x * scale, origin_y=lay.grid.origin_y * scale,
                       pitch=lay.grid.pitch * scale, width=size[0], height=size[1])
        lay = layout(grid)
    grid = lay.grid
    distance = _spot_distance(lay, variant)
    data = ~grid.function_mask
    toward = np.where(grid.matrix, -1.0, 1.0)  # the way a module's goal moves as its margin rises
    extra = np.zeros(grid.matrix.shape)
    fitted = goals
    for _ in range(GROWTH_STEPS):
        fitted = np.clip(goals + toward * extra, 0.0, 255.0)
        pixel_goals = _pixel_goals(fitted, lay)
        weight = np.where(lay.inside, _spot_weight(lay, variant, spots, distance), 1.0)  # quiet zone: all moved
        drawn = np.where(_wrong_side(luma, pixel_goals, lay), luma + weight * (pixel_goals - luma), luma)
        leads = capture_leads(drawn, grid)
        weak = data & (leads < CAPTURE_LEAD)
        room = (extra < MAX_EXTRA_MARGIN) & np.where(grid.matrix, fitted > 0.0, fitted < 255.0)
        raise_margin = weak & room
        grow = weak & ~room & (spots < MAX_SPOT - 1e-9)
        if not (raise_margin.any() or grow.any()):
            break
        extra = np.where(raise_margin, extra + MARGIN_GROWTH, extra)
        steps = np.where(leads < 0, 2, 1) * SPOT_GROWTH
        spots = np.where(grow, np.minimum(MAX_SPOT, np.round(spots + steps, 2)), spots)
    return spots, np.clip(goals + toward * extra, 0.0, 255.0)


def module_margins(threshold: np.ndarray, centres: np.ndarray, base: int) -> np.ndarray:
    """Each module's margin: the variant's, raised where the picture makes that margin too little to scan.

    A code on a black picture at margin 40 drew light spots of luminance 40 and dark ones of 0: half the contrast
    of a mid-grey picture, and the darkest half at that, which phones' gamma squeezes further; it took three or
    four verdicts to climb the ladder. Giving such modules the margin they would end up with from the start
    makes the first verdict pass, and costs nothing where the picture already has room.

    Args:
        threshold: (n, n) local threshold of the styled picture (`grids.local_threshold`).
        centres: (n, n) luminance at the module centres (`grids.module_luminance`).
        base: the variant's margin.

    Returns:
        (n, n) float margins, between `base` and max(`base`, `MAX_MARGIN`).
    """
    below = np.maximum(0.0, max(base, DARK_TONE) - threshold)  # room a dark goal lacks below black, or in darks
    above = np.maximum(0.0, threshold + base - 255.0)  # how far a light goal would rise above white
    # Texture, not slope: a centre's difference from its 3x3 neighbours' mean is zero on a smooth ramp (which
    # readers' local thresholds follow) and large on fur or foliage; its RMS over the reader's window.
    rough = centres - _window_mean(centres, 3)
    busy = np.sqrt(_window_mean(rough**2, grids.WINDOW_MODULES))
    raised = base + DARK_ROOM_GAIN * below + LIGHT_ROOM_GAIN * above + BUSY_GAIN * busy
    return np.clip(raised, base, max(base, MAX_MARGIN))


def _window_mean(values: np.ndarray, side: int) -> np.ndarray:
    """Mean of each (side x side) neighbourhood of an (n, n) array, edges repeated."""
    padded = np.pad(values, side // 2, mode="edge")
    return np.lib.stride_tricks.sliding_window_view(padded, (side, side)).mean(axis=(-2, -1))


def render(picture: Image.Image, lay: Layout, variant: Variant,
           logo: Logo | None = None) -> tuple[Image.Image, np.ndarray]:
    """Draw one variant: the picture with its module spots, function patterns and quiet zone constrained.

    Args:
        picture: the fitted picture (`fit_picture`), the size `lay` is for.
        lay: the code's layout (`layout`).
        variant: how to draw it.
        logo: a logo on a white plate in the centre, drawn last (`logos.draw`); None for none.

    Returns:
        (image, constrained): the RGB image, and an (h, w) bool array of the pixels the code may change
        (spots with their feather, function patterns, quiet zone, the logo's plate), which fidelity leaves out.
    """
    grid = lay.grid
    rgb = _styled(np.asarray(picture.convert("RGB")), variant)
    luma = rgb @ repair.LUMA
    # 1. Goals: past each module's local threshold (measured on the picture) by the margin
    styled = Image.fromarray(np.round(rgb).astype(np.uint8), "RGB")
    threshold = grids.local_threshold(styled, grid)
    margin = module_margins(threshold, grids.module_luminance(styled, grid), variant.margin)
    margin = np.where(grid.function_mask, np.maximum(margin, FUNCTION_MARGIN), margin)
    goals = threshold + np.where(grid.matrix, -margin, margin)
    # 2. Spots: the variant's, stronger where a soft, small capture would read the picture instead of the bit
    spots, goals = fit_spots(luma, goals, lay, variant)
    # 3. The quiet zone: light, whatever the picture, so the finders stand out from it
    goals = _pixel_goals(goals, lay)
    weight = np.where(lay.inside, _spot_weight(lay, variant, spots), 1.0)
    # 4. Only pixels on the wrong side of their goal move; the spot's weight says how far
    move = (weight > 0) & _wrong_side(luma, goals, lay)
    out = rgb.copy()
    new_luma = luma[move] + weight[move] * (goals[move] - luma[move])
    out[move] = repair.set_luminance(rgb[move], new_luma)
    constrained = (weight > 0) | ~lay.inside
    image = Image.fromarray(np.round(out).astype(np.uint8), "RGB")
    if logo is not None:
        # 5. The logo over everything: its plate's modules are left to the error correction
        image = logos.draw(image, grid, logo.plate, logo.image)
        constrained |= logos.plate_pixels(grid, logo.plate)
    return image, constrained


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
    model: scan.DecisionModel | None = None, logo: Logo | None = None,
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


def strongest(variant: Variant) -> Variant:
    """The top of `variant`'s ladder."""
    while (stronger := variant.stronger()) is not None:
        variant = stronger
    return variant


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
            + ("The logo takes part of the error correction: try a smaller logo, or none. " if logo else "")
            + "Try a picture with more contrast, or a shorter link."
        )
    parts = [f"{len(ordered)} of {tried} variants scan."]
    if len(ordered) < tried:
        parts.append(f"{tried - len(ordered)} could not be made to scan and were left out.")
    if (closest := _fought_likeness(ordered, floor)) is not None:
        parts.append(
            f"{PICTURE_FIGHTS}: the code that scans and keeps the most of it has a likeness of "
            f"{_percent(closest)} to your picture; below {_percent(floor)} the picture is hard to make out."
            + (" The logo takes part of the error correction, so the code's spots are stronger: a smaller logo, "
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
