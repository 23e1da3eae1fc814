"""Module grids: where a QR code's modules are in an image, and what a reader samples of each.

Plain Python, importable without Django. A `Grid` comes from the code itself (`grid_from_code`) or from the
control image the art was generated from, at any module size and quiet zone (`grid_from_control`): the art
itself cannot be trusted to show where modules are - that is what repair mends (`repair`). On a grid, each
module's centre luminance (`module_luminance`), its extremes (`core_extremes`) and its neighbourhood's mean,
where a phone splits dark from light (`local_threshold`), are measured.

    grid = grid_from_control(control_image)          # or grid_from_code(code, size, border)
    module_luminance(art, grid) < local_threshold(art, grid)   # the modules a phone reads as dark
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image

from generator.core.codes import qr

# Side of the neighbourhood (in modules) whose mean luminance is a module's threshold. Phone binarisers
# (zxing's HybridBinariser, WeChat's) average blocks a few modules across; seven sits in their range.
WINDOW_MODULES = 7
# The quiet zone of a control image is white or grey (#808080): anything this light or lighter.
QUIET_LEVEL = 96
FINDER = np.pad(np.pad(np.ones((3, 3), bool), 1), 1, constant_values=True)  # 7x7, True = dark


class RepairError(ValueError):
    """Inputs that repair cannot work with; the message is meant for a person."""


@dataclass(frozen=True, eq=False)  # arrays inside: compare grids field by field
class Grid:
    """Where a QR code's modules are in an image, and what each should be.

    Attributes:
        matrix: (n, n) bool array, True where a module is dark.
        function_mask: (n, n) bool array, True on finder patterns (with separators) and alignment patterns.
        version: QR version (n = 17 + 4 * version).
        origin_x: x of the top-left module's top-left corner, in pixels (float).
        origin_y: y of the same corner.
        pitch: module side in pixels (float).
        width: width of the image this geometry is for.
        height: height of that image.
    """

    matrix: np.ndarray
    function_mask: np.ndarray
    version: int
    origin_x: float
    origin_y: float
    pitch: float
    width: int
    height: int

    @property
    def size(self) -> int:
        return self.matrix.shape[0]

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel x and y of every module centre, as two (n, n) float arrays."""
        steps = (np.arange(self.size) + 0.5) * self.pitch
        return np.meshgrid(self.origin_x + steps, self.origin_y + steps)

    def fitted_to(self, width: int, height: int) -> Grid:
        """The same grid for an image of `width` x `height` (the art may be smaller than its control image).

        Raises:
            RepairError: the image's shape differs from the control image's.
        """
        if (width, height) == (self.width, self.height):
            return self
        fx, fy = width / self.width, height / self.height
        if abs(fx - fy) > 0.01 * max(fx, fy):
            raise RepairError(
                f"The image is {width}x{height} but the control image is {self.width}x{self.height}: "
                "they must have the same shape (one may be a scaled copy of the other)."
            )
        return replace(self, origin_x=self.origin_x * fx, origin_y=self.origin_y * fy,
                       pitch=self.pitch * (fx + fy) / 2, width=width, height=height)

    def with_quiet_ring(self) -> Grid:
        """This grid grown by one light module on every side, the ring next to the finders marked as function.

        A finder is found by its dark ring standing out from light on both sides; art that runs dark up to
        the code's edge hides it as surely as a broken finder does.
        """
        n = self.size
        mask = np.zeros((n + 2, n + 2), dtype=bool)
        for row, col in ((0, 0), (0, n - 7), (n - 7, 0)):  # each finder's 7x7 square plus the ring around it
            mask[row : row + 9, col : col + 9] = True
        mask[1:-1, 1:-1] = self.function_mask
        return replace(self, matrix=np.pad(self.matrix, 1), function_mask=mask,
                       origin_x=self.origin_x - self.pitch, origin_y=self.origin_y - self.pitch)


def grid_from_code(code: qr.QRCode, size: int, border: int) -> Grid:
    """The grid of `qr.render_control_image(code, size, border)` (and of art generated from it).

    Args:
        code: the encoded code.
        size: image side in pixels.
        border: quiet zone in modules.

    Returns:
        A `Grid` for a `size` x `size` image.
    """
    pitch = size / (code.size + 2 * border)
    return Grid(code.matrix.copy(), code.function_mask.copy(), code.version,
                border * pitch, border * pitch, pitch, size, size)


def grid_from_control(control: Image.Image) -> Grid:
    """Read the module grid from a control image of any module size, quiet zone, style and background.

    The code's extent is the box around its dark pixels (the three finder patterns sit at its corners and
    are always solid squares); the top-left finder's top row, 7 modules of dark, gives the module size and
    so the version; each module is then read at its centre and the finder and timing patterns checked.

    Args:
        control: the control image (dark modules black, light modules white, quiet zone white or grey).

    Returns:
        A `Grid` for an image of the control image's size.

    Raises:
        RepairError: no QR grid could be recognised.
    """
    gray = np.asarray(control.convert("L"), dtype=np.float32)
    dark = _dark_pixels(gray)
    rows, cols = np.nonzero(dark.any(axis=1))[0], np.nonzero(dark.any(axis=0))[0]
    if not len(rows):
        raise RepairError("The control image has no dark pixels, so no QR code to read the module grid from.")
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    width = right - left
    version = _version_from_finder(dark, top, left, width)
    n = 17 + 4 * version
    pitch = width / n
    if abs((bottom - top) - width) > pitch:
        raise RepairError("The control image's dark area is not square, so it is not a QR code.")
    grid = Grid(np.zeros((n, n), bool), qr.function_mask(version), version, float(left), float(top), pitch,
                control.width, control.height)
    matrix = module_luminance(control, grid) < 128
    _check_patterns(matrix)
    return replace(grid, matrix=matrix)


def _dark_pixels(gray: np.ndarray) -> np.ndarray:
    """Pixels darker than halfway between black and the quiet zone's colour (white or grey).

    Halfway, so an anti-aliased edge pixel counts as dark when the code covers most of it: the code's
    extent then comes out right to within half a pixel on either background.
    """
    frame = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    quiet = frame[frame >= QUIET_LEVEL]
    return gray < (np.median(quiet) if len(quiet) else 255.0) / 2


def _version_from_finder(dark: np.ndarray, top: int, left: int, width: int) -> int:
    """The QR version implied by the top-left finder's width (7 modules) against the code's width."""
    run = _dark_run(dark[top, left:])
    run = _dark_run(dark[min(top + max(1, run // 14), dark.shape[0] - 1), left:])  # half a module down
    if run < 7:
        raise RepairError("The control image has no QR finder pattern in its top-left corner.")
    modules = width / (run / 7)
    version = round((modules - 17) / 4)
    if not 1 <= version <= 40 or abs(modules - (17 + 4 * version)) > 1.5:
        raise RepairError(
            f"The control image's code is about {modules:.1f} modules across, which is no QR version "
            "(17 + 4 x version): it is not a QR control image."
        )
    return version


def _dark_run(line: np.ndarray) -> int:
    """Length of the run of True values at the start of `line`."""
    stops = np.nonzero(~line)[0]
    return int(stops[0]) if len(stops) else len(line)


def _check_patterns(matrix: np.ndarray) -> None:
    """Refuse a sampled matrix whose finder or timing patterns are wrong (the grid was misread)."""
    n = matrix.shape[0]
    finders = (matrix[:7, :7], matrix[:7, n - 7 :], matrix[n - 7 :, :7])
    timing = np.arange(8, n - 8) % 2 == 0
    if any((f != FINDER).any() for f in finders) or (matrix[6, 8 : n - 8] != timing).any() or (
        matrix[8 : n - 8, 6] != timing
    ).any():
        raise RepairError(
            "The control image's finder or timing patterns do not line up with a QR module grid: "
            "is it a QR control image?"
        )


def _box_means(values: np.ndarray, grid: Grid, half: float) -> np.ndarray:
    """Mean of `values` in a square of half-side `half` pixels around each module centre, as (n, n)."""
    sums = cv2.integral(values.astype(np.float64))
    xs, ys = grid.centres()
    h, w = values.shape
    x0 = np.clip(np.round(xs - half), 0, w - 1).astype(int)
    y0 = np.clip(np.round(ys - half), 0, h - 1).astype(int)
    x1 = np.clip(np.maximum(np.round(xs + half), x0 + 1), 1, w).astype(int)
    y1 = np.clip(np.maximum(np.round(ys + half), y0 + 1), 1, h).astype(int)
    total = sums[y1, x1] - sums[y0, x1] - sums[y1, x0] + sums[y0, x0]
    return total / ((x1 - x0) * (y1 - y0))


def module_luminance(image: Image.Image, grid: Grid) -> np.ndarray:
    """Mean luminance (0-255) of the central third of each module, what a reader samples.

    Args:
        image: the picture, the size `grid` is for.
        grid: where the modules are.

    Returns:
        An (n, n) float array.
    """
    return _box_means(np.asarray(image.convert("L")), grid, grid.pitch / 6)


def local_threshold(image: Image.Image, grid: Grid) -> np.ndarray:
    """Mean luminance of the `WINDOW_MODULES`-wide neighbourhood of each module: where a phone splits dark from light.

    Args:
        image: the picture, the size `grid` is for.
        grid: where the modules are.

    Returns:
        An (n, n) float array.
    """
    return _box_means(np.asarray(image.convert("L")), grid, grid.pitch * WINDOW_MODULES / 2)


def core_extremes(image: Image.Image, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The lightest and the darkest luminance (0-255) in the central third of each module, after a 3-pixel blur.

    A phone that sees the image at full resolution reads one binarised pixel near each module centre, so a
    light speck of texture in a dark module's centre can flip it where the centre's mean holds.

    Args:
        image: the picture, the size `grid` is for.
        grid: where the modules are.

    Returns:
        (lightest, darkest), two (n, n) float arrays.
    """
    luma = cv2.blur(np.asarray(image.convert("L")), (3, 3)).astype(np.float32)
    side = max(1, int(round(grid.pitch / 3)))
    kernel = np.ones((side, side), np.uint8)
    xs, ys = grid.centres()
    cols = np.clip(np.floor(xs).astype(int), 0, grid.width - 1)
    rows = np.clip(np.floor(ys).astype(int), 0, grid.height - 1)
    return cv2.dilate(luma, kernel)[rows, cols], cv2.erode(luma, kernel)[rows, cols]
