"""Repair: make a QR art image scan by touching only the module centres a phone would misread.

Plain Python, importable without Django. Readers sample each module near its centre and compare it with a
local threshold, so an image scans when every module centre is on the right side of its neighbourhood's
mean luminance - with room to spare for the capture (contrast loss, blur, noise). Repair finds the
centres that are wrong or too close to call (by their mean, their worst pixel at full resolution, and the
whole module's mean a downscaled capture sees) and paints a soft spot of about a third of a module on each,
darker or lighter past the threshold by a margin, keeping each pixel's hue; finder and alignment patterns
with several weak modules are repainted whole. It does this in rounds with a growing margin, and stops only
at a robust margin above the verifier's pass line (`robust.check`: zxing and WeChat read the exact text on
the image, on 3 of 4 phone-like captures of the code and on 7 of 8 captures of the whole image at phone
size), not at the line itself: a pass at the line reads on one phone and not the next.

    grid = grids.grid_from_control(control_image)    # or grids.grid_from_code(code, size, border)
    result = repair(art, grid, "https://qart.example/r/AbC123")
    result.passed, result.robust.to_dict(), result.pixels_changed_fraction, result.ssim

The module grid, and what a reader samples on it (centre luminance, local threshold), are in `grids`: it comes
from the control image the art was generated from, since the art itself cannot be trusted to show where modules
are - that is what is being repaired. This module holds the repair itself: which modules are weak, the spots
painted on them, and the rounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from generator.core.codes import decision, decoders, grids, robust, scan

# Luminance margins past the local threshold, one per round: small first so the least is changed. A round with
# margin m repaints the modules that are wrong or within m * SELECT_SHARE of their threshold, m past it: few
# modules, pushed hard (repainting every module within m of its threshold changed half the pixels at m = 64).
MARGINS = (16, 32, 48, 64, 96, 128)
SELECT_SHARE = 0.25
# Passes within a round: painting a module moves the local threshold of its neighbours, so modules that read
# right before can read wrong after; each pass repaints what is weak in the image as it now is.
PASSES = 3
# A finder or alignment pattern with this many weak modules is repainted whole (`_whole_patterns`): repainting a
# few of its modules black and white among the picture's greys breaks its runs' ratio; one weak module alone is
# repainted by itself. Whole patterns are most of the pixels repair changes: on 19 synthetic failing art images
# this took them from 11.6 % to 10.0 %, and unseen captures read 18 of them instead of 17 (bench/RESULTS.md).
WHOLE_PATTERN_MIN = 2
# Spot radius as a share of the module pitch: full strength out to CORE, feathered to zero at EDGE.
# A core of 1/6 (a third of the module across) covers the centre readers sample; the feather avoids a
# hard ring that would look like a printing fault.
SPOT_CORE = 1 / 6
SPOT_EDGE = 0.25
# Finder, separator and alignment modules are pushed at most this far past the threshold, whatever the round's margin:
# they are repainted as whole squares, so each level further moves many pixels, and their runs read as clearly at 48
# as beyond. On the 19 near misses of bench/RESULTS.md the patterns are 8.6 of the 10.4 % of pixels repair changed;
# capped at 48 repair changed 9.8 % (seeds 0-3: 9.1-10.3 %, against 9.4-10.9 %) with the same reads (32: fewer reads).
FUNCTION_MARGIN_MAX = 48
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601 luminance, as PIL's convert("L")


@dataclass
class RepairResult:
    """What `repair` did.

    Attributes:
        image: the repaired RGB image (an unchanged copy of the input when it already passed).
        before: the verifier's answer for the input.
        after: its answer for `image`.
        modules: (row, col) of every module whose centre was changed, function patterns first.
        pixels_changed_fraction: share of pixels whose colour changed, 0-1.
        ssim: structural similarity of the luminance of input and output, 1 when unchanged.
        margin: luminance margin of the last round tried (0 when nothing was changed).
        robust: the robust margin (`robust.check`) of `image`, None where the verifier failed it (not checked).
    """

    image: Image.Image
    before: scan.ScanResult
    after: scan.ScanResult
    modules: list[tuple[int, int]]
    pixels_changed_fraction: float
    ssim: float
    margin: int
    robust: robust.Margin | None = None

    @property
    def passed(self) -> bool:
        """The verifier passes `image` and it reads with the robust margin to spare."""
        return self.after.passed and self.robust is not None and self.robust.passed

    @property
    def modules_changed(self) -> int:
        return len(self.modules)


def weak_modules(
    image: Image.Image, grid: grids.Grid, margin: float, where: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """Modules whose centre is on the wrong side of the local threshold, or within `margin` of it.

    The centre is judged by its mean and, at half the margin, by its worst pixel (`grids.core_extremes`): texture
    inside a module that a full-resolution phone would binarise the wrong way counts as weak too. So does a
    module whose whole mean lies on the wrong side, which a downscaled capture reads wrong.

    Args:
        image: the picture, the size `grid` is for.
        grid: where the modules are and what each should be.
        margin: luminance (0-255) a centre must clear the threshold by.
        where: (n, n) bool, the modules to consider; all by default.

    Returns:
        (row, col) pairs: finder and alignment modules first (a phone that cannot lock on reads nothing),
        then the most wrong first.
    """
    # Signed room to spare: positive when the centre reads right with `margin` to spare.
    threshold = grids.local_threshold(image, grid)
    lead = threshold - grids.module_luminance(image, grid)
    lead = np.where(grid.matrix, lead, -lead) - margin
    lightest, darkest = grids.core_extremes(image, grid)
    worst = np.where(grid.matrix, threshold - lightest, darkest - threshold) - margin / 2
    # The whole module's mean, which is what a downscaled capture sees of it, on the right side at least.
    whole = threshold - grids._box_means(np.asarray(image.convert("L")), grid, grid.pitch * 0.45)
    lead = np.minimum(np.minimum(lead, worst), np.where(grid.matrix, whole, -whole))
    xs, ys = grid.centres()
    inside = (xs >= 0) & (xs < grid.width) & (ys >= 0) & (ys < grid.height)  # a quiet ring may lie outside
    weak = (lead < 0) & inside
    if where is not None:
        weak &= where
    rows, cols = np.nonzero(weak)
    order = np.lexsort((lead[rows, cols], ~grid.function_mask[rows, cols]))
    return [(int(rows[i]), int(cols[i])) for i in order]


def _pattern_blocks(grid: grids.Grid) -> np.ndarray:
    """(n, n) int: which finder (its 7x7 square) or alignment pattern (5x5) each module of a ringed grid
    (`grids.Grid.with_quiet_ring`) belongs to, 0 for none. Separators and the quiet ring are left out: they are
    repainted only where they are weak, which keeps whole repainted patterns to about half the pixels."""
    n = grid.size
    cores = np.zeros((n, n), np.uint8)
    for row, col in ((1, 1), (1, n - 8), (n - 8, 1)):
        cores[row : row + 7, col : col + 7] = 1
    alignment = grid.function_mask.copy()
    alignment[:9, :9] = alignment[:9, n - 9 :] = alignment[n - 9 :, :9] = False  # the finders' 9x9 blocks
    cores[alignment] = 1
    _, labels = cv2.connectedComponents(cores, connectivity=4)
    return labels


def _whole_patterns(modules: list[tuple[int, int]], blocks: np.ndarray) -> list[tuple[int, int]]:
    """`modules`, with every module of each finder or alignment pattern `WHOLE_PATTERN_MIN` of them belong to.

    A finder is found by the ratio of its runs: repainting some of its modules black and white and leaving the
    rest in the picture's greys breaks the ratio as surely as damage does.
    """
    counts: dict[int, int] = {}
    for m in modules:
        counts[int(blocks[m])] = counts.get(int(blocks[m]), 0) + 1
    touched = {block for block, count in counts.items() if block and count >= WHOLE_PATTERN_MIN}
    if not touched:
        return modules
    whole = [(int(r), int(c)) for r, c in np.argwhere(np.isin(blocks, list(touched)))]
    return whole + [m for m in modules if blocks[m] not in touched]


def spots(grid: grids.Grid, modules: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The soft spots painted on `modules`: how strongly each pixel is pushed, and for which module.

    A data module gets a disc a third of the module across at full strength, feathered to nothing at
    `SPOT_EDGE`: readers sample only there. A function module (finder, separator, alignment, the quiet
    ring next to a finder) gets its whole square, because finders are found by runs across whole modules.

    Args:
        grid: where the modules are.
        modules: (row, col) of the modules to mark.

    Returns:
        (weight, owner), both (height, width): weight in 0-1, and the flat index (row * n + col) of the
        module each pixel belongs to, -1 outside every spot.
    """
    weight = np.zeros((grid.height, grid.width))
    owner = np.full((grid.height, grid.width), -1)
    xs, ys = grid.centres()
    reach = int(np.ceil(grid.pitch / 2)) + 1
    for r, c in modules:
        cx, cy = xs[r, c] - 0.5, ys[r, c] - 0.5  # pixel i covers [i, i + 1), so its centre is at i + 0.5
        x0, x1 = max(0, int(cx) - reach), min(grid.width, int(cx) + reach + 2)
        y0, y1 = max(0, int(cy) - reach), min(grid.height, int(cy) + reach + 2)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        if grid.function_mask[r, c]:
            w = (np.maximum(abs(xx - cx), abs(yy - cy)) < grid.pitch / 2).astype(float)
        else:
            t = np.clip((SPOT_EDGE - np.hypot(xx - cx, yy - cy) / grid.pitch) / (SPOT_EDGE - SPOT_CORE), 0, 1)
            w = t * t * (3 - 2 * t)  # smoothstep: no hard ring at the spot's edge
        mine = w > 0
        weight[y0:y1, x0:x1][mine] = w[mine]
        owner[y0:y1, x0:x1][mine] = r * grid.size + c
    return weight, owner


def set_luminance(rgb: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Give each RGB pixel the luminance `target`, keeping its hue.

    The colour is split into luminance Y (ITU-R 601, as `Image.convert("L")`) and a chroma offset with no
    luminance; the offset keeps its direction (the hue) and shrinks only as far as needed to stay in gamut.

    Args:
        rgb: (..., 3) float array, 0-255.
        target: (...) float array of luminances, 0-255.

    Returns:
        (..., 3) float array, 0-255.
    """
    luma = rgb @ LUMA
    chroma = rgb - luma[..., None]
    target = np.clip(target, 0.0, 255.0)[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        room = np.where(chroma > 0, (255.0 - target) / chroma, np.where(chroma < 0, -target / chroma, np.inf))
    scale = np.clip(room.min(axis=-1, keepdims=True), 0.0, 1.0)
    return np.clip(target + scale * chroma, 0.0, 255.0)


def push_centres(image: Image.Image, grid: grids.Grid, modules: list[tuple[int, int]], margin: float) -> Image.Image:
    """Paint a soft spot on each module's centre, darker or lighter than its local threshold by `margin`
    (`FUNCTION_MARGIN_MAX` at most for a finder's, separator's or alignment pattern's module: those are whole squares).

    Only pixels not already past the target move: in a spot's core they reach it, in its feather they go
    part of the way. Hue is kept (`set_luminance`).

    Args:
        image: the RGB picture, the size `grid` is for.
        grid: where the modules are and what each should be.
        modules: (row, col) of the modules to change.
        margin: luminance (0-255) past the local threshold.

    Returns:
        A new RGB image; pixels outside the spots are untouched.
    """
    pixels = np.asarray(image.convert("RGB"))
    push = np.where(grid.function_mask, min(margin, FUNCTION_MARGIN_MAX), margin)
    goals = grids.local_threshold(image, grid) + np.where(grid.matrix, -push, push)
    weight, owner = spots(grid, modules)
    inside = owner >= 0
    rgb = pixels[inside].astype(np.float64)
    luma = rgb @ LUMA
    goal, dark = goals.ravel()[owner[inside]], grid.matrix.ravel()[owner[inside]]
    # Only pixels on the wrong side of their goal move: a spot never lightens a dark module's centre.
    move = np.where(dark, luma > goal, luma < goal)
    new_luma = luma[move] + weight[inside][move] * (goal[move] - luma[move])
    changed = pixels[inside]
    changed[move] = np.round(set_luminance(rgb[move], new_luma)).astype(np.uint8)
    out = pixels.copy()
    out[inside] = changed
    return Image.fromarray(out, "RGB")


def ssim(a: Image.Image, b: Image.Image, where: np.ndarray | None = None) -> float:
    """Mean structural similarity of two images' luminance (Wang et al. 2004: Gaussian window, sigma 1.5).

    Args:
        a, b: images of the same size.
        where: (height, width) bool, the pixels to average the SSIM map over; all by default.

    Returns:
        SSIM in [-1, 1]; 1 for identical luminance.
    """
    x = np.asarray(a.convert("L"), dtype=np.float64)
    y = np.asarray(b.convert("L"), dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"images differ in size: {a.size} and {b.size}")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(v: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(v, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(ssim_map.mean() if where is None else ssim_map[where].mean())


def repair(
    image: Image.Image,
    grid: grids.Grid,
    expected: str,
    *,
    threshold: float = scan.DEFAULT_THRESHOLD,
    margins: tuple[int, ...] = MARGINS,
    seed: int = 0,
    readers: Mapping[str, decoders.Reader] | None = None,
    before: scan.ScanResult | None = None,
    model: decision.DecisionModel | None = None,
) -> RepairResult:
    """Change just enough module centres of `image` for the scan verifier to pass.

    Args:
        image (`PIL.Image.Image`): the QR art; converted to RGB.
        grid (`grids.Grid`): the module grid (from `grids.grid_from_control` or `grids.grid_from_code`); fitted
            to the image's size when the art is a scaled copy of its control image.
        expected (`str`): the exact text the code carries.
        threshold (`float`, *optional*, defaults to 0.5): scan probability needed to pass.
        margins (`tuple[int, ...]`, *optional*, defaults to `MARGINS`): luminance margin of each round, in
            the order tried; their count is the most rounds.
        seed (`int`, *optional*, defaults to 0): seeds the verifier's captures.
        readers (*optional*): decoders by name; defaults to `decoders.available_readers()`.
        before (`ScanResult`, *optional*): the verifier's answer for `image` (same threshold and seed) when
            the caller has it already, saving one verification.
        model (`decision.DecisionModel`, *optional*): the verifier's decision model; defaults to the shipped one.

    Returns:
        A `RepairResult`. When no round passes, it holds the last (strongest) attempt and its failing
        verdict: repair never claims a pass the verifier did not give.

    Raises:
        grids.RepairError: the image and the grid do not fit together.
    """
    # 1. Check inputs
    if not margins or min(margins) <= 0:
        raise ValueError("margins must be one or more positive luminance steps")
    original = image.convert("RGB")
    grid = grid.fitted_to(*original.size)
    if grid.pitch < 3:
        raise grids.RepairError(f"Modules are {grid.pitch:.1f} px across in this image: too small to repair.")

    def verify(candidate: Image.Image) -> scan.ScanResult:
        return scan.verify(candidate, expected, threshold=threshold, seed=seed, readers=readers, model=model)

    def hold(candidate: Image.Image, verdict: scan.ScanResult) -> robust.Margin | None:
        # Whole-image captures too, seeded from the text: with only the code's captures (seeded from the pixels,
        # all four needed) which round an image stopped at moved with the draw, and those captures disagreed
        # image by image with captures of the whole image at phone size (bench/RESULTS.md).
        if not verdict.passed:
            return None
        return robust.check(candidate, expected, seed=seed, readers=readers, whole_needed=robust.WHOLE_NEEDED)

    # 2. Nothing to do when it already scans with the margin to spare
    before = before if before is not None else verify(original)
    held = hold(original, before)
    if held is not None and held.passed:
        return RepairResult(original, before, before, [], 0.0, 1.0, 0, held)

    # 3. Rounds: each starts from the original, with a larger margin (so more modules and stronger spots), until
    # the verifier passes and the robust margin holds: a pass at the line reads on one phone and not the next
    ringed = grid.with_quiet_ring()
    where = np.pad(np.ones_like(grid.matrix), 1) | ringed.function_mask  # the code, and the ring by its finders
    blocks = _pattern_blocks(ringed)
    for luminance in margins:
        candidate, modules = original, []
        for _ in range(PASSES):
            weak = weak_modules(candidate, ringed, luminance * SELECT_SHARE, where)
            if not weak:
                break
            weak = _whole_patterns(weak, blocks)
            candidate = push_centres(candidate, ringed, weak, luminance)
            modules += [m for m in weak if m not in set(modules)]
        modules.sort(key=lambda m: not ringed.function_mask[m])  # function modules first, as weak_modules lists
        after = verify(candidate)
        held = hold(candidate, after)
        if held is not None and held.passed:
            break

    # 4. Report the modules whose pixels changed (a light centre already at white cannot get lighter), in the
    # code's own coordinates: -1 and n are the quiet ring
    changed = (np.asarray(candidate) != np.asarray(original)).any(axis=-1)
    touched = set(spots(ringed, modules)[1][changed].tolist())
    modules = [(r - 1, c - 1) for r, c in modules if r * ringed.size + c in touched]
    return RepairResult(candidate, before, after, modules, float(changed.mean()), ssim(original, candidate), luminance,
                        held)
