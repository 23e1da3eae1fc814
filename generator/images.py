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
