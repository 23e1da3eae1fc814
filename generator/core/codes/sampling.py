"""Locating a known QR symbol in an image and sampling its module centres, for `grading`.

Plain Python, importable without Django.

    located = locate(gray, "https://qart.example/r/AbC123")   # None when the symbol cannot be found
    located.sampled.reflectance, located.sampled.read_dark, located.grid.axial

The text is re-encoded as qr.py encodes it, so the intended colour of every module is known. The grid is
placed by zxing-cpp's corners when it locates the symbol (even one it cannot decode); otherwise the
re-encoded matrix is matched against the image at every size from `MIN_SIDE_SHARE` of the image's shorter
side to all of it, axis-aligned, as art generated from a control image is. Either way the finder and
alignment patterns are then looked for within `SEARCH_MODULES` of where the grid puts them, and the grid is
refitted to the ones found. Sampling happens on a rectified view, `SAMPLE` pixels per module, with the
`QUIET`-module quiet zone around the symbol.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import qrcode.util

from generator.core.codes import decoders, qr

QUIET = 4  # quiet zone ISO 18004 asks for, in modules
SAMPLE = 9  # pixels per module in the rectified view; a module's central third is its middle 3x3
WINDOW_MODULES = 7  # local threshold window, as `grids.WINDOW_MODULES`: where phone binarisers average
# The sharp reading: one rectified pixel at each module centre against the mean of a window this many modules
# across, as a phone's binariser sees the image at full resolution, texture inside modules and all.
SHARP_WINDOW_MODULES = 3
# The jittered reading: a phone's grid estimate is off by about a tenth of a module (more on art, whose finder and
# alignment centres are fuzzy), so it reads each module a little off its centre. Each module centre's pixel and the
# four pixels a ninth of a module away (one rectified pixel of `SAMPLE`) against the mean of a window this many
# modules across; a module whose texture flips within that distance reads wrong on some frames.
JITTER_WINDOW_MODULES = 5
JITTER_OFFSETS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # (rows, columns) in rectified pixels
MIN_MATCH = 0.4  # normalised correlation of the re-encoded matrix below which nothing was found
MIN_PATTERN = 0.5  # correlation of a finder or alignment pattern below which it counts as not found
SEARCH_MODULES = 1.5  # how far from the grid's prediction a pattern is looked for
MIN_SIDE_SHARE = 0.5  # matching looks for codes spanning at least this share of the shorter side
COARSE_SIDE, FINE_SIDE = 128, 256  # shorter side of the two matching levels, in pixels
SCALE_STEP = 1.04  # between sizes tried on the coarse level; the fine level tries 1.5 % steps
ECC_ORDER = ("H", "Q", "M", "L")  # qr.encode's default level first
QUIET_CLEAR = 0.95  # a quiet-zone strip is clear when this share of its module centres is light: specks do not count
FINDER = np.pad(np.pad(np.ones((3, 3), bool), 1), 1, constant_values=True)  # 7x7, True = dark
ALIGNMENT = np.pad(np.pad(np.ones((1, 1), bool), 1), 1, constant_values=True)  # 5x5


@dataclass(frozen=True, eq=False)
class Sampled:
    """Module-centre reflectances of a located symbol and its quiet zone, light-on-dark symbols inverted.

    Attributes:
        ring: (n + 8, n + 8) reflectance 0-1 of every module centre, the 4-module quiet zone included.
        inside: (n + 8, n + 8) bool, True where the module centre lies inside the image.
        read_dark: (n, n) bool, the symbol's modules as a phone reads them (darker than their 7x7 surround);
            modules outside the image read wrong.
        sharp_ring: (n + 8, n + 8) bool, every module centre's own pixel (the quiet zone included) read dark
            against the mean of the 3x3 modules around it (`SHARP_WINDOW_MODULES`), as a phone's binariser reads
            the image at full resolution: texture inside a module can flip it where the central third's mean
            holds. Module centres outside the image read light.
        jitter_rings: (len(JITTER_OFFSETS), n + 8, n + 8) bool, the same read at each module centre and a ninth of
            a module off it each way, against a window of `JITTER_WINDOW_MODULES` modules: what frames with a
            slightly misplaced grid read. Module centres outside the image read light.
        threshold: 15415's global threshold, (Rmax + Rmin) / 2.
        contrast: 15415's symbol contrast, Rmax - Rmin.
        inverted: the symbol is light on dark.
    """

    ring: np.ndarray
    inside: np.ndarray
    read_dark: np.ndarray
    sharp_ring: np.ndarray
    jitter_rings: np.ndarray
    threshold: float
    contrast: float
    inverted: bool

    @property
    def sharp_dark(self) -> np.ndarray:
        """(n, n) bool, the symbol's own modules of `sharp_ring`."""
        return self.sharp_ring[QUIET:-QUIET, QUIET:-QUIET]

    @property
    def jitter_dark(self) -> np.ndarray:
        """(len(JITTER_OFFSETS), n, n) bool, the symbol's own modules of `jitter_rings`."""
        return self.jitter_rings[:, QUIET:-QUIET, QUIET:-QUIET]

    @property
    def reflectance(self) -> np.ndarray:
        """(n, n) reflectance of the symbol's own modules."""
        return self.ring[QUIET:-QUIET, QUIET:-QUIET]

    def quiet_margin(self) -> tuple[int, str]:
        """The narrowest clear margin (0-4 modules) and its side: strips outwards from the symbol that lie
        inside the image and whose module centres are light (at least `QUIET_CLEAR` of them)."""
        n = self.ring.shape[0] - 2 * QUIET
        margins = {}
        for side in ("top", "bottom", "left", "right"):
            width = 0
            for j in range(1, QUIET + 1):
                line = QUIET - j if side in ("top", "left") else QUIET + n - 1 + j
                span = slice(QUIET - j, QUIET + n + j)
                index = (line, span) if side in ("top", "bottom") else (span, line)
                if not self.inside[index].all() or (self.ring[index] >= self.threshold).mean() < QUIET_CLEAR:
                    break
                width = j
            margins[side] = width
        side = min(margins, key=margins.get)
        return margins[side], side


@dataclass(frozen=True)
class GridFit:
    """15415's grid measures: axial non-uniformity and the largest grid deviation, in modules."""

    axial: float
    deviation: float


@dataclass(frozen=True, eq=False)
class Located:
    """A symbol found in an image: the code it carries, where its modules are and what they read."""

    code: qr.QRCode
    homography: np.ndarray  # module coordinates (column, row; 0 to n across the symbol) -> pixel coordinates
    sampled: Sampled
    grid: GridFit
    located_by: str  # "zxing" or "match"

    @property
    def pitch(self) -> float:
        """Pixels per module at the symbol's centre (the square root of the grid's area scale there)."""
        n = self.code.size
        return float(np.sqrt(abs(np.linalg.det(_jacobian(self.homography, np.array([n / 2, n / 2]))))))


def locate(gray: np.ndarray, text: str) -> Located | None:
    """Find the symbol that carries `text` in `gray` (2-D uint8) and sample it; None when it is not there."""
    # 1. zxing-cpp's corners: the decoded symbol first, then ones it located but could not decode whose version
    # (read from the symbol) is the expected code's; zxing also "locates" symbols in texture, without a version
    symbols = decoders.zxing_symbols(gray)
    for symbol in sorted(symbols, key=lambda s: s.text != text):
        if symbol.text is not None and symbol.text != text:
            continue
        # Encoded in the symbol's version, which may be larger than the text needs: a code restamped with a shorter
        # link ("https://QART.EXAMPLE/R/...", alphanumeric) keeps its art's version. (A smaller one cannot hold it.)
        for code in encodings(text, symbol.ecc, symbol.mask, symbol.version) if symbol.ecc else encodings(text):
            if symbol.version == code.version:
                src = np.float32([[0, 0], [code.size, 0], [code.size, code.size], [0, code.size]])
                h = cv2.getPerspectiveTransform(src, np.float32(symbol.corners) - 0.5)  # to pixel centres
                return _sample(gray, code, h, "zxing")
    # 2. The re-encoded matrix matched against the image. Short links differ only in a few codewords, so a
    # neighbouring code matches well: where a decoder read another text, that code is not the one looked for.
    candidates = encodings(text)
    if not candidates:
        return None
    coarse, fine = _Shrunk.of(gray, COARSE_SIDE), _Shrunk.of(gray, FINE_SIDE)
    score, h, code = _match(coarse, fine, candidates)
    if score < MIN_MATCH:
        # A code made elsewhere, or restamped with a new link, keeps a mask qrcode would not choose: half its data
        # modules differ from the re-encoded matrix, and the best wrong match may even be another level. Every
        # level's other masks (28 templates on the small levels; only where the first search found nothing).
        others = [c for level in ECC_ORDER for m in range(8)
                  if (c := _encoded(text, level, m)) is not None
                  and not any(np.array_equal(c.matrix, k.matrix) for k in candidates)]
        if others:
            score, h, code = max((score, h, code), _match(coarse, fine, others), key=lambda found: found[0])
    centre = _map(h, np.array([[code.size / 2, code.size / 2]]))[0]
    others = [s.corners for s in symbols if s.text is not None and s.text != text]
    if score < MIN_MATCH or any(cv2.pointPolygonTest(np.float32(q), tuple(centre), False) >= 0 for q in others):
        return None
    return _sample(gray, code, h, "match")


def encodings(text: str, ecc: str | None = None, mask: int | None = None,
              version: int | None = None) -> list[qr.QRCode]:
    """`text` encoded as qr.py does: at `ecc` and `mask` when known, else at each level with qrcode's mask; in
    `version` when given (at least the smallest that holds the text), else in the smallest."""
    codes = [_encoded(text, level, mask, version) for level in ((ecc,) if ecc else ECC_ORDER)]
    return codes if all(codes) else []


@lru_cache(maxsize=32)
def _encoded(text: str, ecc: str, mask: int | None, version: int | None = None) -> qr.QRCode | None:
    """`qr.encode` at any version, remembered: choosing the mask is most of a grading's time, and the verifier
    grades many images of one text (a job's candidates, repair's rounds). None for text no QR code carries."""
    try:
        code = qr.encode(text, ecc, max_version=40, mask=mask, version=version)
    except ValueError:  # ContentError too
        return None
    code.matrix.setflags(write=False)  # shared by every caller from now on
    return code


@dataclass(frozen=True, eq=False)
class _Shrunk:
    """The image shrunk to `short` pixels on its shorter side, with what FFT correlation needs of it."""

    image: np.ndarray
    scale: float
    spectrum: np.ndarray
    sums: np.ndarray
    squares: np.ndarray

    @classmethod
    def of(cls, gray: np.ndarray, short: int) -> _Shrunk:
        scale = short / min(gray.shape)
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        image = cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(np.float64)
        return cls(image, scale, np.fft.rfft2(image), cv2.integral(image), cv2.integral(image * image))


def _match(coarse: _Shrunk, fine: _Shrunk, codes: list[qr.QRCode]) -> tuple[float, np.ndarray, qr.QRCode]:
    """(score, grid, code): the best normalised correlation of an axis-aligned code with the image, and the
    grid it implies. Every size on the coarse level for every code, then sizes and positions around the best
    match on the fine level."""
    short = min(coarse.image.shape)
    steps = int(np.log(1 / MIN_SIDE_SHARE) / np.log(SCALE_STEP)) + 1
    sides = MIN_SIDE_SHARE * short * SCALE_STEP ** np.arange(steps)
    templates = [np.where(code.matrix, 0.0, 1.0) for code in codes]
    (score, side, x, y), template, code = max(
        ((_correlate(coarse, t, sides), t, c) for t, c in zip(templates, codes, strict=True)), key=lambda m: m[0][0])
    level, ratio = coarse, fine.scale / coarse.scale
    sides = side * ratio * np.array([0.97, 0.985, 1.0, 1.015, 1.03])
    refined = _correlate(fine, template, sides, (x * ratio, y * ratio))
    if refined[0] >= score:
        (score, side, x, y), level = refined, fine
    pitch = side / level.scale / code.size
    h = np.array([[pitch, 0, x / level.scale - 0.5], [0, pitch, y / level.scale - 0.5], [0, 0, 1]])
    return score, h, code


def _correlate(level: _Shrunk, template: np.ndarray, sides: np.ndarray, near: tuple | None = None) -> tuple:
    """(score, side, x, y): the template's best |normalised correlation| over `sides` and every position, or
    only positions within 4 pixels of `near` = (x, y) (FFT cross-correlation, window sums from integrals)."""
    rows, cols = level.image.shape
    sums, squares = level.sums, level.squares
    best = (-1.0, 0, 0, 0)
    for side in sorted({int(round(s)) for s in sides if 8 <= round(s) <= min(rows, cols)}):
        t = cv2.resize(template, (side, side), interpolation=cv2.INTER_AREA)
        t -= t.mean()
        corr = np.fft.irfft2(level.spectrum * np.conj(np.fft.rfft2(t, s=level.image.shape)), s=level.image.shape)
        corr = corr[: rows - side + 1, : cols - side + 1]
        window = sums[side:, side:] - sums[:-side, side:] - sums[side:, :-side] + sums[:-side, :-side]
        window2 = squares[side:, side:] - squares[:-side, side:] - squares[side:, :-side] + squares[:-side, :-side]
        spread = np.sqrt(np.maximum(window2 - window * window / side**2, 1e-6))
        ncc = np.abs(corr / (np.sqrt((t * t).sum()) * spread + 1e-9))  # |.|: a light-on-dark code matches too
        if near is not None:
            x0, y0 = int(near[0]), int(near[1])
            keep = np.zeros_like(ncc, dtype=bool)
            keep[max(0, y0 - 4) : y0 + 5, max(0, x0 - 4) : x0 + 5] = True
            ncc = np.where(keep, ncc, 0)
        y, x = np.unravel_index(np.argmax(ncc), ncc.shape)
        if ncc[y, x] > best[0]:
            best = (float(ncc[y, x]), side, int(x), int(y))
    return best


def _rectify(gray: np.ndarray, h: np.ndarray, n: int) -> np.ndarray:
    """The symbol and its quiet zone seen square-on, `SAMPLE` pixels per module, reflectance 0-1."""
    side = (n + 2 * QUIET) * SAMPLE
    # Rectified pixel u (at its centre) lies at module coordinate (u + 0.5) / SAMPLE - QUIET.
    to_modules = np.array([[1 / SAMPLE, 0, 0.5 / SAMPLE - QUIET], [0, 1 / SAMPLE, 0.5 / SAMPLE - QUIET], [0, 0, 1]])
    view = cv2.warpPerspective(gray, h @ to_modules, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
    return view.astype(np.float32) / 255.0


def _map(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    return cv2.perspectiveTransform(np.asarray(points, np.float64).reshape(-1, 1, 2), h).reshape(-1, 2)


def _patterns(view: np.ndarray, code: qr.QRCode) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(kind, where the grid says, where it is) for every finder and alignment pattern found in the view, in
    module coordinates of its centre."""
    n = code.size
    wanted = [("finder", FINDER, (3.5, 3.5)), ("finder", FINDER, (n - 3.5, 3.5)), ("finder", FINDER, (3.5, n - 3.5))]
    centres = qrcode.util.pattern_position(code.version)
    wanted += [("alignment", ALIGNMENT, (c + 0.5, r + 0.5)) for r in centres for c in centres
               if not _in_finder(r, c, n)]
    reach = int(round(SEARCH_MODULES * SAMPLE))
    found = []
    for kind, pattern, (mx, my) in wanted:
        template = np.kron(np.where(np.pad(pattern, 1), 0.0, 1.0), np.ones((SAMPLE, SAMPLE))).astype(np.float32)
        k = template.shape[0]
        x0 = int(round((mx + QUIET) * SAMPLE - k / 2)) - reach
        y0 = int(round((my + QUIET) * SAMPLE - k / 2)) - reach
        if x0 < 0 or y0 < 0 or x0 + k + 2 * reach > view.shape[1] or y0 + k + 2 * reach > view.shape[0]:
            continue
        scores = cv2.matchTemplate(view[y0 : y0 + k + 2 * reach, x0 : x0 + k + 2 * reach], template,
                                   cv2.TM_CCOEFF_NORMED)
        _, score, _, (px, py) = cv2.minMaxLoc(scores)
        if score < MIN_PATTERN:
            continue
        dx, dy = px - reach + _vertex(scores[py, max(0, px - 1) : px + 2], px), py - reach + _vertex(
            scores[max(0, py - 1) : py + 2, px], py)
        found.append((kind, np.array([mx, my]), np.array([mx + dx / SAMPLE, my + dy / SAMPLE])))
    return found


def _in_finder(r: int, c: int, n: int) -> bool:
    """Whether module (r, c) lies in a finder's 8x8 corner block (no alignment pattern goes there)."""
    return (r < 8 or r >= n - 8) and (c < 8 or c >= n - 8) and not (r >= n - 8 and c >= n - 8)


def _vertex(values: np.ndarray, at: int) -> float:
    """Sub-pixel offset of a peak from three samples around it (0 at an edge)."""
    if len(values) != 3 or at == 0:
        return 0.0
    a, b, c = (float(v) for v in values)
    bend = a - 2 * b + c
    return 0.0 if bend >= 0 else float(np.clip(0.5 * (a - c) / bend, -0.5, 0.5))


def _refit(h: np.ndarray, found: list, n: int, pitch: float) -> np.ndarray:
    """The grid through the patterns found (a homography from four, an affine map from three), or `h`."""
    if len(found) < 3:
        return h
    ideal = np.float32([f[1] for f in found])
    seen = np.float32(_map(h, np.array([f[2] for f in found])))
    if len(found) >= 4:
        refit, _ = cv2.findHomography(ideal, seen, 0)
    else:
        refit = np.vstack([cv2.getAffineTransform(ideal, seen), [0, 0, 1]])
    if refit is None:
        return h
    corners = np.array([[0, 0], [n, 0], [n, n], [0, n]])
    # A refit that moves the symbol's corners by more than two modules followed a false pattern: keep the grid.
    return refit if np.abs(_map(refit, corners) - _map(h, corners)).max() <= 2 * pitch else h


def _grid_fit(h: np.ndarray, found: list, n: int) -> GridFit:
    """15415's axial and grid non-uniformity from the pattern centres found, in image pixels."""
    ideal = np.array([f[1] for f in found])
    seen = _map(h, np.array([f[2] for f in found])) if found else np.zeros((0, 2))
    finders = [i for i, f in enumerate(found) if f[0] == "finder"]
    use = finders if len(finders) == 3 else list(range(len(found)))
    if len(use) >= 3:
        design = np.hstack([ideal[use], np.ones((len(use), 1))])
        affine = np.linalg.lstsq(design, seen[use], rcond=None)[0].T  # 2x3
        deviations = np.linalg.norm(np.hstack([ideal, np.ones((len(ideal), 1))]) @ affine.T - seen, axis=1)
    else:  # too few patterns to fit: the located grid's own axes at the symbol's centre
        affine = np.hstack([_jacobian(h, np.array([n / 2, n / 2])), np.zeros((2, 1))])
        deviations = np.zeros(1)
    x, y = np.linalg.norm(affine[:, 0]), np.linalg.norm(affine[:, 1])
    pitch = (x + y) / 2
    return GridFit(axial=float(abs(x - y) / pitch), deviation=float(deviations.max() / pitch))


def _jacobian(h: np.ndarray, at: np.ndarray) -> np.ndarray:
    step = np.array([[0, 0], [1, 0], [0, 1]]) + at
    p = _map(h, step)
    return np.stack([p[1] - p[0], p[2] - p[0]], axis=1)


def _sample(gray: np.ndarray, code: qr.QRCode, h: np.ndarray, located_by: str) -> Located:
    n = code.size
    # 1. Average each pixel over its share of a module first, so the rectified view samples areas, not points
    pitch = float(np.sqrt(abs(np.linalg.det(_jacobian(h, np.array([n / 2, n / 2]))))))
    box = int(round(pitch / SAMPLE))
    source = cv2.blur(gray, (box, box)) if box >= 2 else gray

    # 2. Light-on-dark symbols are graded inverted; then find the patterns and refit the grid to them
    view = _rectify(source, h, n)
    first = _centres(view)[QUIET:-QUIET, QUIET:-QUIET]
    inverted = bool(first[code.matrix].mean() > first[~code.matrix].mean())
    if inverted:
        view = 1.0 - view
    found = _patterns(view, code)
    grid = _grid_fit(h, found, n)
    refit = _refit(h, found, n, pitch)
    if refit is not h:
        h = refit
        view = _rectify(source, h, n)
        view = 1.0 - view if inverted else view

    # 3. Module centres, their local thresholds, and which lie inside the image
    ring = _centres(view)
    window = WINDOW_MODULES * SAMPLE
    local = cv2.blur(view, (window, window))[SAMPLE // 2 :: SAMPLE, SAMPLE // 2 :: SAMPLE]
    steps = np.arange(n + 2 * QUIET) - QUIET + 0.5
    xs, ys = np.meshgrid(steps, steps)
    centres = _map(h, np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(xs.shape + (2,))
    rows, cols = gray.shape
    inside = (centres[..., 0] >= -0.5) & (centres[..., 0] <= cols - 0.5) & (centres[..., 1] >= -0.5) & (
        centres[..., 1] <= rows - 0.5)
    values = ring[inside] if inside.any() else ring.ravel()
    high, low = float(values.max()), float(values.min())
    symbol = (slice(QUIET, -QUIET), slice(QUIET, -QUIET))
    read_dark = np.where(inside[symbol], ring[symbol] < local[symbol], ~code.matrix)
    sharp = SHARP_WINDOW_MODULES * SAMPLE
    point = view[SAMPLE // 2 :: SAMPLE, SAMPLE // 2 :: SAMPLE]
    near = cv2.blur(view, (sharp, sharp))[SAMPLE // 2 :: SAMPLE, SAMPLE // 2 :: SAMPLE]
    sharp_ring = (point < near) & inside
    centre, wide = SAMPLE // 2, cv2.blur(view, (JITTER_WINDOW_MODULES * SAMPLE,) * 2)
    jitter_rings = np.stack([
        (view[centre + dy :: SAMPLE, centre + dx :: SAMPLE] < wide[centre + dy :: SAMPLE, centre + dx :: SAMPLE])
        & inside for dy, dx in JITTER_OFFSETS])
    sampled = Sampled(ring, inside, read_dark, sharp_ring, jitter_rings, (high + low) / 2, high - low, inverted)
    return Located(code, h, sampled, grid, located_by)


def _centres(view: np.ndarray) -> np.ndarray:
    """Mean of the central third of every module of a rectified view."""
    count = view.shape[0] // SAMPLE
    cells = view.reshape(count, SAMPLE, count, SAMPLE)
    third = slice(SAMPLE // 3, SAMPLE - SAMPLE // 3)
    return cells[:, third, :, third].mean(axis=(1, 3))
