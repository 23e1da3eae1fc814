"""Print specs: what to print (`PrintSpec`: width, resolution, bleed, marks, format, colour) and its page.

Plain Python, importable without Django. Lengths are typed with their unit (`parse_length`) and said back in
centimetres and inches (`describe_length`); a spec checks itself (`PrintSpec.validate`, raising `PrintError` with
the reason) and gives its page (`geometry`): the TrimBox is the `width` square, quiet zone included; the BleedBox
is the TrimBox grown by `bleed` on each side; crop marks sit in a slug outside the BleedBox. Writing and reading
back the files is `printing`'s.

    spec = PrintSpec(width_mm=parse_length("20cm"), dpi=300, bleed_mm=3, crop_marks=True, format="pdf")
    geometry(spec).boxes_pt(), pixels(spec.width_mm, spec.dpi)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from generator.core.codes.echoes import echo

MM_PER_INCH = 25.4
PT_PER_MM = 72 / MM_PER_INCH
FORMATS = ("pdf", "png", "tiff", "svg")
# Every file is read back before it is offered, and no PostScript renderer is installed to read an EPS back (the
# Python QR libraries that write EPS do not render it); PDF carries the same vectors and every RIP takes it.
NO_EPS = ("EPS is not offered: it could not be read back and verified here. Choose pdf or svg, which carry the "
          "same vectors; print shops and design tools accept both.")
MIN_WIDTH_MM, MAX_WIDTH_MM = 5.0, 5000.0
MIN_DPI, MAX_DPI = 72, 1200
MAX_BLEED_MM = 25.0
# A raster page's side at most: 10,000 px is 85 cm at 300 dpi and 300 MB of RGB; larger prints are viewed from
# farther away and need fewer dots per inch.
MAX_RASTER_SIDE = 10_000
MARK_OFFSET_MM = 2.0  # crop marks start this far outside the BleedBox, so trimming within the bleed cuts none
MARK_LENGTH_MM = 5.0
# ASCII digits only (re.ASCII): Python's \d and float() also read other scripts' digits, and "２０cm" (full width)
# printed 20 cm, where the API's and the pages' other numbers refuse them. re.ASCII also narrows \s, so other spaces
# are made plain first (`_SPACE`).
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(mm|cm|m|in|inch|inches|\")\s*$", re.IGNORECASE | re.ASCII)
_UNITS_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": MM_PER_INCH, "inch": MM_PER_INCH, "inches": MM_PER_INCH,
             '"': MM_PER_INCH}
_ZERO = re.compile(r"^\s*(0+(?:\.0*)?|\.0+)\s*$")  # nothing, in any unit: "0" for no bleed
# A decimal comma ("20,5cm", as much of Europe writes it), signed as a point may be ("+20,5cm"; "-20,5cm" is then
# told it cannot be negative); three digits after it would be thousands ("1,000mm").
_DECIMAL_COMMA = re.compile(r"^(\s*[+-]?\d+),(\d{1,2}\s*\D+)$", re.ASCII)
# Any space, read as a plain one: "20\u00a0cm" (a no-break space, as French writes a unit and word processors and
# macOS's Option-Space type it) is a length, as it was before the patterns took ASCII digits only.
_SPACE = re.compile(r"\s")


class PrintError(ValueError):
    """A print request that cannot be met; the message is meant for a person, `option` names the option it is about
    (width, dpi, bleed, format, cmyk, crop_marks) when it is about one."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


def parse_length(text: str, what: str = "width") -> float:
    """A length typed with its unit ("20cm", "200 mm", "8in", "0.2m", "20,5cm"; nothing needs none: "0") in
    millimetres.

    Args:
        text (`str`): the length as typed.
        what (`str`, *optional*, defaults to "width"): what it is, for the error message.

    Returns:
        The length in millimetres.

    Raises:
        PrintError: no number, or no unit (a bare "20" could be centimetres or inches).
    """
    typed = _DECIMAL_COMMA.sub(r"\1.\2", _SPACE.sub(" ", str(text)).strip())
    if _ZERO.match(typed.removeprefix("+")):
        return 0.0
    match = _LENGTH.match(typed.removeprefix("+"))
    if not match:
        if typed.startswith("-") and _LENGTH.match(typed[1:]):
            raise PrintError(f"The {what} cannot be negative, got “{echo(str(text).strip())}”.", what)
        raise PrintError(f"The {what} “{echo(text)}” needs a number and a unit, e.g. 20cm, 200mm or 8in.", what)
    return float(match.group(1)) * _UNITS_MM[match.group(2).lower()]


def describe_length(mm: float) -> str:
    """A length in centimetres and inches, e.g. "20 cm (7.87 in)": print shops think in either. Centimetres to one
    decimal: a computed size (2048 px at 300 dpi is 17.3397 cm) is no more precise than a print shop cuts."""
    return f"{round(mm / 10, 1):g} cm ({mm / MM_PER_INCH:.2f} in)"


@dataclass(frozen=True)
class PrintSpec:
    """What to print.

    Attributes:
        width_mm: the printed side of the square TrimBox, quiet zone included.
        dpi: dots per inch of raster output (and of art placed in a PDF).
        bleed_mm: how far the art runs past the trim on each side.
        crop_marks: draw crop marks in a slug outside the BleedBox.
        format: one of `FORMATS`.
        cmyk: CMYK output (PDF, TIFF); else RGB, and the report says so.
    """

    width_mm: float
    dpi: int = 300
    bleed_mm: float = 0.0
    crop_marks: bool = False
    format: str = "pdf"
    cmyk: bool = False

    def validate(self, vector: bool) -> None:
        """Raise `PrintError` with the reason when this cannot be printed (`vector`: a plain code)."""
        if self.format == "eps":
            raise PrintError(NO_EPS, "format")
        if self.format not in FORMATS:
            raise PrintError(f"Print formats are {', '.join(FORMATS)}; “{echo(self.format)}” is not one of them.",
                             "format")
        if not MIN_WIDTH_MM <= self.width_mm <= MAX_WIDTH_MM:
            # Past the range only its side is said: a 300-digit width echoed back is no help.
            got = describe_length(self.width_mm) if self.width_mm < 100 * MAX_WIDTH_MM else "far more"
            raise PrintError(f"The width must be between {MIN_WIDTH_MM / 10:g} cm and {MAX_WIDTH_MM / 1000:g} m, "
                             f"got {got}.", "width")
        if not MIN_DPI <= self.dpi <= MAX_DPI:
            raise PrintError(f"The resolution must be between {MIN_DPI} and {MAX_DPI} dpi, got {self.dpi}.", "dpi")
        if not 0 <= self.bleed_mm <= MAX_BLEED_MM:
            raise PrintError(f"The bleed must be between 0 and {MAX_BLEED_MM:g} mm, got {self.bleed_mm:g} mm.",
                             "bleed")
        if self.format == "svg" and not vector:
            raise PrintError("SVG is for plain codes, which are vectors; art is pixels: choose pdf, png or tiff.",
                             "format")
        if self.cmyk and self.format in ("png", "svg"):
            raise PrintError(f"{self.format.upper()} has no CMYK: choose pdf or tiff for CMYK, or leave CMYK off "
                             "for an RGB file.", "cmyk")
        side = pixels(geometry(self).media_mm, self.dpi)
        if (self.format in ("png", "tiff") or not vector) and side > MAX_RASTER_SIDE:
            if pixels(geometry(replace(self, dpi=MIN_DPI)).media_mm, MIN_DPI) > MAX_RASTER_SIDE:
                # Even the fewest dots per inch are too many pixels: no dpi helps, only a smaller print.
                # Whole millimetres down: rounded up, the width named would itself be one pixel too many.
                widest = math.floor(MAX_RASTER_SIDE / MIN_DPI * MM_PER_INCH - (geometry(self).media_mm - self.width_mm))
                raise PrintError(f"This print is too large for a raster file: at {MIN_DPI} dpi, the fewest, it is "
                                 f"{pixels(geometry(self).media_mm, MIN_DPI):,} pixels a side and the most is "
                                 f"{MAX_RASTER_SIDE:,}. The widest is {describe_length(widest)} with these margins"
                                 + (", or choose pdf or svg." if vector else "."), "width")
            raise PrintError(f"At {self.dpi} dpi this print is {side:,} pixels a side; the most is "
                             f"{MAX_RASTER_SIDE:,}. Lower the dpi (large prints are seen from farther away)"
                             + (" or choose pdf or svg." if vector else "."), "dpi")


@dataclass(frozen=True)
class Geometry:
    """The page, in millimetres from its lower left corner (PDF's orientation): trim inside bleed inside media."""

    width_mm: float
    bleed_mm: float
    slug_mm: float  # room for crop marks outside the BleedBox (0 without marks)

    @property
    def media_mm(self) -> float:
        return self.width_mm + 2 * (self.bleed_mm + self.slug_mm)

    @property
    def trim_origin_mm(self) -> float:
        return self.slug_mm + self.bleed_mm

    def boxes_pt(self) -> dict[str, list[float]]:
        """MediaBox, BleedBox and TrimBox as PDF writes them: [x0, y0, x1, y1] in points."""
        t, s, m = self.trim_origin_mm, self.slug_mm, self.media_mm
        box = {"media": (0.0, m), "bleed": (s, m - s), "trim": (t, t + self.width_mm)}
        return {name: [round(lo * PT_PER_MM, 3), round(lo * PT_PER_MM, 3), round(hi * PT_PER_MM, 3),
                       round(hi * PT_PER_MM, 3)] for name, (lo, hi) in box.items()}

    def crop_marks_mm(self) -> list[tuple[float, float, float, float]]:
        """Eight lines (x0, y0, x1, y1) on the trim lines' extensions, in the slug outside the BleedBox."""
        t0, t1 = self.trim_origin_mm, self.trim_origin_mm + self.width_mm
        near, far = self.slug_mm - MARK_OFFSET_MM - MARK_LENGTH_MM, self.slug_mm - MARK_OFFSET_MM
        top_near, top_far = self.media_mm - far, self.media_mm - near
        lines = []
        for t in (t0, t1):
            lines += [(t, near, t, far), (t, top_near, t, top_far), (near, t, far, t), (top_near, t, top_far, t)]
        return lines


def geometry(spec: PrintSpec) -> Geometry:
    """The page of `spec`: where its trim, bleed and marks go."""
    return Geometry(spec.width_mm, spec.bleed_mm, MARK_OFFSET_MM + MARK_LENGTH_MM if spec.crop_marks else 0.0)


def pixels(mm: float, dpi: int) -> int:
    """How many pixels `mm` are at `dpi`."""
    return max(1, round(mm / MM_PER_INCH * dpi))
