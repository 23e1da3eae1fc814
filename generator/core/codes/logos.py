"""A logo in the centre of a code: a white plate the error correction pays for, clear of every function pattern.

Plain Python, importable without Django. A reader recovers the codewords under the plate as errors, so the plate
spends error correction that phones would otherwise have to spare for blur, glare and print faults: codes with a
logo are error-correction level H (30 % of the codewords recoverable) and the plate is at most `MAX_SHARE` of the
symbol's area (whole modules, quiet zone excluded). The plate never covers a finder, separator, timing or
alignment pattern, which readers need intact to find and sample the grid: from version 7 on an alignment pattern
sits in the very centre, and there is then no room for a logo (a shorter link gives a smaller version).

    plate = logos.plate_for(code, share=0.12)
    image = logos.draw(image, grid, plate, logo)   # after the code is drawn; the verifier then judges it

The logo is fitted inside the plate, keeping its aspect, with `MARGIN_MODULES` of white on every side, so its edge
never touches a module and the code's dark modules never touch the logo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from generator.core.codes import qr
from generator.core.codes.grids import Grid

MAX_SHARE = 0.20  # the plate's area as a share of the symbol's at most: about two thirds of level H's budget
DEFAULT_SHARE = 0.12  # leaves most of the budget to phones; the halftone engine's robust margin still holds
MIN_SHARE = 0.06  # a plate of at least 5 modules even on a version 1 code (5² of 21²)
MARGIN_MODULES = 1  # white between the plate's edge and the logo
MIN_PLATE_MODULES = 3 + 2 * MARGIN_MODULES  # smaller leaves the logo a few pixels: not worth the error correction
LOGO_ECC = "H"


class LogoError(ValueError):
    """A logo that cannot be placed; the message is meant for a person."""


@dataclass(frozen=True)
class Plate:
    """A centred square of whole modules.

    Attributes:
        first: the row (and column) of its top-left module.
        side: its side in modules.
        size: the symbol's side in modules.
    """

    first: int
    side: int
    size: int

    @property
    def share(self) -> float:
        """Its area as a share of the symbol's."""
        return self.side**2 / self.size**2

    def modules(self) -> np.ndarray:
        """(size, size) bool: True on the plate's modules."""
        mask = np.zeros((self.size, self.size), dtype=bool)
        mask[self.first : self.first + self.side, self.first : self.first + self.side] = True
        return mask


def protected(code: qr.QRCode) -> np.ndarray:
    """(n, n) bool: the modules a logo must leave alone (finders with separators, alignment and timing patterns)."""
    mask = code.function_mask.copy()
    mask[6, :] = True  # timing patterns: row 6 and column 6 between the finders
    mask[:, 6] = True
    return mask


def plate_for(code: qr.QRCode, share: float = DEFAULT_SHARE) -> Plate:
    """The largest centred plate of at most `share` of the symbol that leaves every function pattern alone.

    Args:
        code (`qr.QRCode`): the code the logo goes on; its error correction must be level H.
        share (`float`, *optional*, defaults to `DEFAULT_SHARE`): the plate's area as a share of the symbol's,
            between `MIN_SHARE` and `MAX_SHARE`.

    Returns:
        A `Plate`.

    Raises:
        LogoError: the code is not level H, the share is out of range, or the centre has no room (an alignment
            pattern there: a long link's large version).
    """
    if code.ecc != LOGO_ECC:
        raise LogoError(f"A logo needs error correction level {LOGO_ECC} (30 %); this code is level {code.ecc}.")
    if not MIN_SHARE <= share <= MAX_SHARE:
        raise LogoError(f"The logo's share of the code must be between {MIN_SHARE:.0%} and {MAX_SHARE:.0%}, "
                        f"got {share:.0%}.")
    n = code.matrix.shape[0]
    keep = protected(code)
    side = math.floor(math.sqrt(share) * n)
    side -= (n - side) % 2  # centred on whole modules: n is odd, so the side is odd too
    while side >= MIN_PLATE_MODULES:
        plate = Plate((n - side) // 2, side, n)
        if not (keep & plate.modules()).any():
            return plate
        side -= 2
    # Said to the person who chose the logo: what to do, not "a version 7 code with an alignment pattern"
    raise LogoError("No room for a logo: this link makes a code so large that it has a fixed marker in its centre, "
                    "where the logo would go. Use a shorter link (a campaign placement's tracked short link fits), "
                    "or no logo.")


def plate_box(grid: Grid, plate: Plate) -> tuple[int, int, int, int]:
    """The plate in the image's pixels: (left, top, right, bottom), right and bottom exclusive."""
    left = round(grid.origin_x + plate.first * grid.pitch)
    top = round(grid.origin_y + plate.first * grid.pitch)
    right = round(grid.origin_x + (plate.first + plate.side) * grid.pitch)
    bottom = round(grid.origin_y + (plate.first + plate.side) * grid.pitch)
    return left, top, right, bottom


def plate_pixels(grid: Grid, plate: Plate) -> np.ndarray:
    """(h, w) bool: the image's pixels under the plate."""
    left, top, right, bottom = plate_box(grid, plate)
    mask = np.zeros((grid.height, grid.width), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def draw(image: Image.Image, grid: Grid, plate: Plate, logo: Image.Image) -> Image.Image:
    """`image` with a white plate and `logo` fitted inside it (aspect kept, `MARGIN_MODULES` of white around).

    Args:
        image: the drawn code (RGB), the size `grid` is for.
        grid: where the modules are.
        plate: where the logo goes (`plate_for`).
        logo: the logo (RGB; transparency already flattened onto white, see `images.open_picture`).

    Returns:
        A new RGB image.
    """
    left, top, right, bottom = plate_box(grid, plate)
    out = image.convert("RGB").copy()
    out.paste((255, 255, 255), (left, top, right, bottom))
    inset = round(MARGIN_MODULES * grid.pitch)
    room = (max(1, right - left - 2 * inset), max(1, bottom - top - 2 * inset))
    fitted = ImageOps.contain(logo.convert("RGB"), room, Image.Resampling.LANCZOS)
    out.paste(fitted, (left + inset + (room[0] - fitted.width) // 2, top + inset + (room[1] - fitted.height) // 2))
    return out
