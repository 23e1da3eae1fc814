"""Downloads: a candidate as a PNG at a print size, and the plain code as SVG.

Plain Python (Pillow and the QR core), importable without Django: the views pass the images and codes in.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from generator.core.codes import qr
from generator.core.codes.echoes import echo

# Square print sizes in pixels. Generated images are at most 1024 px, so anything larger is an upscale;
# 4096 px is the cap because more only adds pixels Lanczos invents, and takes seconds to encode.
PRINT_SIZES = (1024, 2048, 4096)
PRINT_DPI = 300  # written into the PNG so print software sizes it right: 4096 px is 34.7 cm at 300 dpi
QUIET_ZONE = 4  # modules of light border the QR standard asks for around a code


def print_centimetres(size: int, dpi: int = PRINT_DPI) -> float:
    """The printed side in centimetres of `size` pixels at `dpi`."""
    return round(size / dpi * 2.54, 1)


def print_inches(size: int, dpi: int = PRINT_DPI) -> float:
    """The printed side in inches of `size` pixels at `dpi`."""
    return round(size / dpi, 2)


def parse_size(value: str | None) -> int:
    """The print size asked for in a query string; the smallest when none is given.

    Raises:
        ValueError: not one of `PRINT_SIZES` (the message lists them).
    """
    if not value:
        return PRINT_SIZES[0]
    # int() refuses "²", which isdigit passes, and reads "２０４８" (full width) as 2048: digits 0-9 only.
    size = int(value) if value.isdecimal() and value.isascii() and len(value) <= 6 else None
    if size not in PRINT_SIZES:
        raise ValueError(f"Download sizes are {_sizes()} pixels; “{echo(value)}” is not one of them.")
    return size


def png_at_size(image: Image.Image, size: int) -> bytes:
    """Re-encode an image as a PNG whose longer side is `size` pixels.

    Args:
        image (`PIL.Image.Image`): the candidate as stored.
        size (`int`): one of `PRINT_SIZES`.

    Returns:
        The PNG's bytes, resampled with Lanczos and tagged with `PRINT_DPI`.

    Raises:
        ValueError: `size` is not one of `PRINT_SIZES` (the message lists them).
    """
    if size not in PRINT_SIZES:
        raise ValueError(f"Download sizes are {_sizes()} pixels; {size} is not one of them.")
    image = image.convert("RGB")
    width, height = image.size
    scale = size / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if target != image.size:
        image = image.resize(target, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", dpi=(PRINT_DPI, PRINT_DPI))
    return buffer.getvalue()


def code_svg(code: qr.QRCode, border: int = QUIET_ZONE, module_px: int = 10) -> str:
    """The plain code as an SVG: one square per dark module on a white quiet zone.

    Args:
        code (`qr.QRCode`): the encoded code.
        border (`int`, *optional*, defaults to 4): quiet zone in modules.
        module_px (`int`, *optional*, defaults to 10): the width and height attributes' pixels per module;
            the drawing itself scales freely (its viewBox counts modules).

    Returns:
        The SVG document as text.
    """
    side = code.size + 2 * border
    modules = "".join(
        f'<rect x="{col + border}" y="{row + border}" width="1" height="1"/>' for row, col in np.argwhere(code.matrix)
    )
    # The white background is a path, not a rect, so that rects are exactly the dark modules.
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" width="{side * module_px}" '
        f'height="{side * module_px}" shape-rendering="crispEdges">'
        f"<title>QR code: {_escape(code.content)}</title>"
        f'<path fill="#fff" d="M0 0h{side}v{side}H0z"/><g fill="#000">{modules}</g></svg>\n'
    )


def _sizes() -> str:
    return ", ".join(str(s) for s in PRINT_SIZES)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
