"""Preflight: from how far will a printed code scan?

Plain Python, importable without Django. A phone's QR scanner decodes preview frames, not photos, so what
matters is how many preview pixels one module covers at the distance people stand. From the camera's geometry
that is

    pixels per module = (printed width / modules) x preview width / (2 x distance x tan(field of view / 2))

The art is resampled to exactly that many pixels per module (what the sensor integrates: area averaging, then
a little lens blur), and the scan verifier (`scan.verify`) judges that simulated capture; its own captures then
add tilt, defocus, noise and compression on top, shrinking the frame by up to 1.6x at their harshest (a margin
for shake and focus hunting, which makes the range conservative). The smallest pixels-per-module that passes
gives the farthest distance; the nearest is where the code no longer fits the frame, or the camera's close
focus. Assumptions (`Camera`) are stated in every report.

    report = preflight(art, link, modules=code.size + 8, width_m=0.2, distance_m=1.5)
    report.summary  # "scans from 0.29 m to 2.4 m at 20 cm wide"
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from PIL import Image

from generator.core.codes import captures, grids, qr, scan

# The pixels-per-module ladder searched for the smallest that scans (ZXing's documentation asks for about
# 2 preview pixels a module, WeChat's super-resolution reads some codes at 1.5).
LADDER = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0)
LENS_BLUR_SIGMA = 0.5  # preview pixels: demosaicing and the lens soften an edge over about one pixel
LOW_CONTRAST = 0.40  # symbol contrast under this (ISO/IEC 15415 grade C and below) is warned about
QUIET_ZONE_MODULES = 4
MAX_FRAME_SIDE = 4096  # pixels: more than any phone's preview frame (1920 x 1080 here)


@dataclass(frozen=True)
class Camera:
    """What a phone's QR scanner sees: stated assumptions, shown with every report.

    Attributes:
        preview_px: preview frame pixels along its long side (scanners decode a ~1920x1080 stream, not photos).
        short_px: along its short side.
        fov_deg: field of view along the long side (a main phone camera, ~26 mm equivalent: about 69 degrees).
        close_focus_m: nearest distance the camera focuses at.
        fill: the largest share of the frame's short side the code (quiet zone included) may fill and still
            be framed by a hand-held phone.
    """

    preview_px: int = 1920
    short_px: int = 1080
    fov_deg: float = 69.0
    close_focus_m: float = 0.10
    fill: float = 0.9

    @property
    def pixels_per_metre_at_1m(self) -> float:
        """Preview pixels per metre of the scene at 1 m; inversely proportional to the distance."""
        return self.preview_px / (2 * math.tan(math.radians(self.fov_deg) / 2))

    def describe(self) -> str:
        return (f"a {self.preview_px}x{self.short_px} preview frame over a {self.fov_deg:g} degree field of view, "
                f"focusing from {self.close_focus_m:g} m; the code framed within {self.fill:.0%} of the frame's "
                "short side")

    def in_plain_words(self) -> str:
        """`describe` for people who print codes, not those who build cameras (the placement page's footnote)."""
        return (f"a typical phone camera: it reads a {self.preview_px} × {self.short_px} pixel video picture about "
                f"{self.fov_deg:g}° wide, focuses from {self.close_focus_m * 100:g} cm, and people hold it so the "
                f"code fills at most {self.fill:.0%} of the picture's shorter side")


PHONE = Camera()  # the assumptions every report states unless a caller passes its own


def pixels_per_module(width_m: float, modules: int, distance_m: float, camera: Camera = PHONE) -> float:
    """Preview pixels one module covers when a code `width_m` wide (of `modules` modules, quiet zone included)
    is `distance_m` from the camera."""
    return width_m / modules * camera.pixels_per_metre_at_1m / distance_m


def farthest(width_m: float, modules: int, ppm: float, camera: Camera = PHONE) -> float:
    """The distance at which a module covers `ppm` preview pixels."""
    return width_m / modules * camera.pixels_per_metre_at_1m / ppm


def nearest(width_m: float, camera: Camera = PHONE) -> float:
    """The nearest distance the whole code is in focus and inside the frame."""
    fits = width_m * camera.pixels_per_metre_at_1m / (camera.fill * camera.short_px)
    return max(camera.close_focus_m, fits)


def min_width(distance_m: float, modules: int, ppm: float, camera: Camera = PHONE) -> float:
    """The printed width (metres) whose modules cover `ppm` preview pixels at `distance_m`."""
    return ppm * modules * distance_m / camera.pixels_per_metre_at_1m


def framed_ppm(modules: int, camera: Camera = PHONE) -> float:
    """The most preview pixels per module a code of `modules` modules covers while the phone frames it whole:
    closer than that, people step back until it fits."""
    return camera.fill * camera.short_px / modules


def simulate_capture(image: Image.Image | np.ndarray, modules: int, ppm: float) -> np.ndarray:
    """The code as a phone's preview frame holds it at `ppm` pixels per module.

    Args:
        image: the printed square (quiet zone included), any size; arrays are 2-D uint8 luminance.
        modules: modules across the square, quiet zone included.
        ppm: preview pixels per module.

    Returns:
        A 2-D uint8 frame: the code area-averaged to `modules x ppm` pixels, lens-blurred, and surrounded by
        its own edge up to `captures.MAX_SIDE` pixels, so the verifier's captures see a frame of phone size.
    """
    side = max(8, round(modules * ppm))
    if side > MAX_FRAME_SIDE:  # a caller's bug, not a capture: the frame alone would take gigabytes
        raise ValueError(f"A capture {side:,} pixels a side is larger than any phone's preview frame.")
    gray = np.asarray(image.convert("L")) if isinstance(image, Image.Image) else image
    small = cv2.resize(gray.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=LENS_BLUR_SIGMA)
    pad = max(0, (captures.MAX_SIDE - side) // 2)
    frame = np.pad(small, pad, mode="edge") if pad else small
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Check:
    """One simulated capture and its verdict."""

    pixels_per_module: float
    passed: bool
    scan_probability: float
    misread: str = ""  # a text some reader got that is not the code's: another code in the art


def smallest_scanning_ppm(
    image: Image.Image, content: str, modules: int, threshold: float = scan.DEFAULT_THRESHOLD
) -> tuple[float | None, list[Check]]:
    """The fewest preview pixels per module (from `LADDER`) at which the verifier passes the capture.

    A binary search: more pixels never make a code harder to read, so the ladder splits once at each verdict.

    Args:
        image: the printed square.
        content: the exact text the code carries.
        modules: modules across the square, quiet zone included.
        threshold: scan probability needed to pass.

    Returns:
        (ppm, checks): the smallest passing rung, or None when even the largest fails; every verdict taken.
    """
    checks: list[Check] = []
    lo, hi = 0, len(LADDER) - 1
    found = None
    while lo <= hi:
        mid = (lo + hi) // 2
        result = scan.verify(simulate_capture(image, modules, LADDER[mid]), content, threshold=threshold)
        checks.append(Check(LADDER[mid], result.passed, result.scan_probability, _misread(result, content)))
        if result.passed:
            found, hi = LADDER[mid], mid - 1
        else:
            lo = mid + 1
    return found, sorted(checks, key=lambda c: c.pixels_per_module)


@dataclass
class Preflight:
    """Where a printed code is predicted to scan (see the module docstring for the model).

    Attributes:
        width_m: printed width, quiet zone included.
        distance_m: the placement's scanning distance.
        modules: modules across, quiet zone included.
        module_mm: printed side of one module.
        ppm_at_distance: preview pixels per module at `distance_m`.
        scans_at_distance: whether it scans from `distance_m`: the verifier passes the capture simulated there and
            the distance is within the predicted range (or nearer: people step back from a code too big for the
            frame). The two estimates can differ near the range's end; the page shows one answer, the cautious one.
        scan_probability_at_distance: the verifier's scan probability on that capture.
        min_ppm: the fewest pixels per module that passed, None when none did.
        near_m, far_m: the predicted range (None when it does not scan at any distance).
        min_width_m: the narrowest print that scans from `distance_m` (None when none does).
        contrast: symbol contrast of the module centres, 0-1 (light median minus dark median).
        warnings: quiet zone, contrast and range problems in plain words (squares and the white border, not
            modules and the quiet zone: people who print codes read them).
        summary: one line, e.g. "scans from 0.29 m to 2.4 m at 20 cm wide".
        assumptions: the camera model.
    """

    width_m: float
    distance_m: float
    modules: int
    module_mm: float
    ppm_at_distance: float
    scans_at_distance: bool
    scan_probability_at_distance: float
    min_ppm: float | None
    near_m: float | None
    far_m: float | None
    min_width_m: float | None
    contrast: float
    summary: str
    warnings: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    assumptions: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def preflight(
    image: Image.Image,
    content: str,
    *,
    code: qr.QRCode,
    width_m: float,
    distance_m: float,
    border: int = QUIET_ZONE_MODULES,
    camera: Camera = PHONE,
    threshold: float = scan.DEFAULT_THRESHOLD,
) -> Preflight:
    """Predict the distances at which a printed code scans, and what to change when it does not.

    Args:
        image (`PIL.Image.Image`): the printed square: the art, or the plain code, quiet zone included.
        content (`str`): the exact text the code carries.
        code (`qr.QRCode`): the code the image carries (its module count and matrix).
        width_m (`float`): printed width in metres, quiet zone included.
        distance_m (`float`): the distance people scan from, in metres.
        border (`int`, *optional*, defaults to 4): the quiet zone the image has, in modules.
        camera (`Camera`, *optional*): the phone model (see `Camera`).
        threshold (`float`, *optional*, defaults to 0.5): scan probability needed to pass.

    Returns:
        A `Preflight`.

    Raises:
        ValueError: a width or distance that is not positive.
    """
    # 1. Check inputs
    if not width_m > 0 or not distance_m > 0:
        raise ValueError("The printed width and the scanning distance must both be more than 0.")
    image = image.convert("RGB")
    modules = code.size + 2 * border

    # 2. The capture at the placement's distance (as framed: a code too big for the frame there is scanned from
    # where it fits), and the fewest pixels per module that scan
    at_distance = pixels_per_module(width_m, modules, distance_m, camera)
    captured = min(at_distance, framed_ppm(modules, camera))
    verdict = scan.verify(simulate_capture(image, modules, captured), content, threshold=threshold)
    min_ppm, checks = smallest_scanning_ppm(image, content, modules, threshold)

    # 3. The range, and the width the placement's distance needs
    near = nearest(width_m, camera)
    far = farthest(width_m, modules, min_ppm, camera) if min_ppm else None
    width_text = f"{width_m * 100:.3g} cm"
    warnings: list[str] = []
    misread = next((check.misread for check in checks if check.misread), "") or _misread(verdict, content)
    if misread:  # said first: whatever the range, a phone could open the wrong thing
        warnings.append(f"A reader found another code in the art: it read “{misread[:80]}”, not this code's text. "
                        "Phones could open that instead: do not print this art.")
    if far is None:
        summary = f"does not scan at any distance at {width_text} wide"
        if not misread:
            warnings.append("Even a close, sharp view of it fails the scan check: the art itself does not scan.")
        near = None
    elif far < near:
        summary = f"too small to scan at {width_text} wide: it blurs before the phone can focus on it"
        warnings.append(f"At {width_text} wide each square of the code is only {width_m / modules * 1000:.2f} mm: "
                        "print it larger.")
        near = far = None
    else:
        summary = f"scans from {_metres(near)} to {_metres(far)} at {width_text} wide"
    needed = min_width(distance_m, modules, min_ppm, camera) if min_ppm else None
    scans_at_distance = verdict.passed and far is not None and distance_m <= far
    if far is not None and near <= distance_m <= far and not verdict.passed:  # nearer, people step back
        warnings.append(f"A phone's view simulated from {_metres(distance_m)} fails the scan check, near the end of "
                        "the range: print it larger, or scan a test print from there first.")
    if far is not None and not near <= distance_m <= far:
        if distance_m > far:
            warnings.append(f"From {_metres(distance_m)} this print is too small: print it at least "
                            f"{needed * 100:.3g} cm wide, or expect people closer than {_metres(far)}.")
        else:
            warnings.append(f"At {_metres(distance_m)} a {width_text} code does not fit the phone's frame; people "
                            f"will step back to {_metres(near)}.")

    # 4. Quiet zone and contrast, measured on the module centres. The words are for the person printing the code
    # (the placement page, the API's `warnings`): squares and the white border, not modules and the quiet zone.
    contrast, quiet_ok = _contrast_and_quiet_zone(image, code, border)
    if border < QUIET_ZONE_MODULES:
        border_is = (f"The white border around the code is only {_squares(border)} wide" if border
                     else "The code has no white border around it")
        warnings.append(f"{border_is}: phones need {_squares(QUIET_ZONE_MODULES)} of plain light border to find "
                        "it.")
    elif not quiet_ok:
        warnings.append(f"The white border around the code is not plain and light: keep a border "
                        f"{_squares(QUIET_ZONE_MODULES)} wide around the code free of picture, text and frames, "
                        "or phones may not find it.")
    if contrast < LOW_CONTRAST:
        warnings.append(f"Low contrast: the code's dark and light squares differ by only {contrast:.0%} in brightness "
                        f"(under {LOW_CONTRAST:.0%} is risky); print, glossy paper and dim light flatten it further.")
    return Preflight(
        width_m=width_m, distance_m=distance_m, modules=modules, module_mm=round(width_m / modules * 1000, 2),
        ppm_at_distance=round(at_distance, 2), scans_at_distance=scans_at_distance,
        scan_probability_at_distance=verdict.scan_probability, min_ppm=min_ppm,
        near_m=round(near, 2) if near is not None else None, far_m=round(far, 2) if far is not None else None,
        min_width_m=round(needed, 4) if needed else None, contrast=round(contrast, 3), summary=summary,
        warnings=warnings, checks=checks, assumptions=camera.describe(),
    )


def _misread(result: scan.ScanResult, content: str) -> str:
    """A text some reader got from the capture that is not `content` (another code in the art), else ""."""
    return next((text for text in result.decoded if text != content), "") if result.misread else ""


def _squares(count: int) -> str:
    """`count` squares of the code, as a border's width is said to people ("1 square", "4 squares")."""
    return f"{count} square" if count == 1 else f"{count} squares"


def _metres(value: float) -> str:
    return f"{value:.2g} m" if value < 1 else f"{value:.3g} m"


def _contrast_and_quiet_zone(image: Image.Image, code: qr.QRCode, border: int) -> tuple[float, bool]:
    """Symbol contrast (light-centre median minus dark-centre median, 0-1), and whether the quiet zone is
    plain and light: nearly all of it lighter than halfway between the dark and light centres."""
    grid = grids.grid_from_code(code, image.width, border)
    centres = grids.module_luminance(image, grid)
    dark, light = np.median(centres[code.matrix]), np.median(centres[~code.matrix])
    contrast = max(0.0, float(light - dark) / 255.0)
    if border == 0:
        return contrast, False
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    inner = np.zeros(gray.shape, dtype=bool)
    lo = int(round(grid.origin_x))
    hi = int(round(grid.origin_x + grid.pitch * code.size))
    inner[lo:hi, lo:hi] = True
    quiet = gray[~inner]
    midpoint = (dark + light) / 2
    return contrast, bool(np.mean(quiet > midpoint) >= 0.98)
