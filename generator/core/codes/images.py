"""Safe image loading for everything that reads pictures from people: one clear message per bad file.

Whatever comes in (16-bit, CMYK, palette, transparent, huge), what comes out is an RGB image flattened
onto white, or an `ImageError` whose message can be shown as it is.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """An image that cannot be used; the message names the problem for a person."""


def _flatten(image: Image.Image) -> Image.Image:
    """Convert any mode to RGB, compositing transparency onto white (as a printed code would sit on paper)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale to 8 bits by the actual range (PIL's convert("L") would clip).
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        top = 1.0 if values.max() <= 1.0 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, L, 1 and RGB all convert directly


def open_image(source: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open an image file (or its bytes) as RGB, refusing anything unusable with a clear message.

    Args:
        source: a path, or the file's bytes (an upload).
        max_pixels: the largest width x height accepted; guards against decompression bombs.

    Returns:
        A fully loaded RGB `PIL.Image.Image`, EXIF orientation applied, transparency flattened onto white.

    Raises:
        ImageError: missing, empty, truncated, not an image, too many pixels, or an unsupported format.
    """
    name = "the upload" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"{name}: cannot be read ({exc.strerror})") from None
    if not data:
        raise ImageError(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{name}: {width}x{height} is too large ({width * height:,} pixels; the limit is "
                        f"{max_pixels:,}). Resize it first."
                    )
                probe.load()
                image = ImageOps.exif_transpose(probe)
                return _flatten(image)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (or a format qart cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name}: too many pixels to open safely. Resize it first.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated and corrupt files as OSError/SyntaxError with terse messages.
        raise ImageError(f"{name}: the file is damaged or truncated ({exc})") from None


def to_gray(image: Image.Image) -> np.ndarray:
    """A 2-D uint8 luminance array, what every decoder reads."""
    return np.asarray(image.convert("L"), dtype=np.uint8)


DEFAULT_MAX_PICTURE_BYTES = 10 * 1024 * 1024
MIN_PICTURE_SIDE = 64


def open_picture(
    source: str | Path | bytes,
    max_bytes: int = DEFAULT_MAX_PICTURE_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = MIN_PICTURE_SIDE,
) -> Image.Image:
    """Open a picture someone gives qart to draw from (the halftone engine's input), or say why not.

    Stricter than `open_image`: a byte cap, no animations (which frame would the code show?), and a
    smallest side. Transparency is flattened onto white, as a logo would sit on paper. The result is
    decoded pixels: callers store it re-encoded (`png_bytes`), never the file as uploaded.

    Args:
        source: a path, or the file's bytes (an upload).
        max_bytes: the largest file accepted.
        max_pixels: the largest width x height accepted.
        min_side: the smallest width and height accepted.

    Returns:
        A fully loaded RGB `PIL.Image.Image`.

    Raises:
        ImageError: too large (bytes or pixels), too small, animated, or anything `open_image` refuses.
    """
    name = "the upload" if isinstance(source, bytes) else str(source)
    size = len(source) if isinstance(source, bytes) else _file_size(Path(source))
    if size is not None and size > max_bytes:
        raise ImageError(
            f"{name}: the file is {_amount(size)}; pictures up to {_amount(max_bytes)} are accepted. "
            "Save it smaller first."
        )
    data = source if isinstance(source, bytes) else None
    try:
        with Image.open(io.BytesIO(data) if data is not None else source) as probe:
            if getattr(probe, "is_animated", False) and getattr(probe, "n_frames", 1) > 1:
                raise ImageError(
                    f"{name}: an animated {probe.format} picture; the code needs one still picture. "
                    "Upload a PNG or JPEG of the frame you want."
                )
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        pass  # open_image below gives the clear message for every unreadable file
    image = open_image(source, max_pixels)
    if min(image.size) < min_side:
        raise ImageError(
            f"{name}: {image.width}x{image.height} pixels is too small to draw a code from; "
            f"at least {min_side} pixels on each side are needed."
        )
    return image


def _amount(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.0f} KB"


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def png_bytes(image: Image.Image) -> bytes:
    """The image re-encoded as PNG: what is stored and served instead of an uploaded file."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
