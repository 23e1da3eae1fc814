"""Safe image loading for everything that reads pictures from people: one clear message per bad file.

Whatever comes in (16-bit, CMYK, palette, transparent, huge), what comes out is an RGB image flattened
onto white, or an `ImageError` whose message can be shown as it is.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from generator.core.codes.amounts import over_cap

DEFAULT_MAX_PIXELS = 40_000_000
# What people may give qart to draw from (Pillow's names): the formats the page and the API document. Anything
# else is refused from its first bytes, before any of Pillow's format plugins reads it.
PICTURE_FORMATS = ("PNG", "JPEG", "WEBP")
# Other formats people try, named in the refusal so they know what to change.
OTHER_SIGNATURES = ((b"GIF8", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"), (b"%PDF", "PDF"),
                    (b"8BPS", "Photoshop"))


class ImageError(ValueError):
    """An image that cannot be used; the message names the problem for a person."""


def _flatten(image: Image.Image) -> Image.Image:
    """Convert any mode to RGB, compositing transparency onto white (as a printed code would sit on paper)."""
    if image.mode == "RGB":
        return image  # no copy: a 40-megapixel picture is 120 MB per copy
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale to 8 bits by the actual range (PIL's convert("L") would clip).
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        image = Image.fromarray(_to_bytes(values, top), "L")
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        top = 1.0 if values.max() <= 1.0 else 255.0
        image = Image.fromarray(_to_bytes(values, top), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, L and 1 all convert directly


def _to_bytes(values: np.ndarray, top: float) -> np.ndarray:
    """`values` (float32, changed in place: float64 temporaries took a 40-megapixel picture past 1 GB) scaled
    from 0..`top` to rounded uint8."""
    values /= top
    values *= 255.0
    values += 0.5
    np.clip(values, 0, 255, out=values)
    return values.astype(np.uint8)


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
    name, data = _read(source)
    return _decode(data, name, max_pixels)


def _read(source: str | Path | bytes) -> tuple[str, bytes]:
    """The name to show for `source` and its bytes; ImageError when missing, a folder, unreadable or empty."""
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
    return name, data


def _check_pixels(image: Image.Image, name: str, max_pixels: int) -> None:
    """Refuse an opened, not yet loaded image over `max_pixels`: its size comes from the header (Image.open
    is lazy), so nothing is decoded."""
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} is too large ({width * height:,} pixels; the limit is "
            f"{max_pixels:,}). Resize it first."
        )


def _decode(data: bytes, name: str, max_pixels: int, formats: tuple[str, ...] | None = None) -> Image.Image:
    """`data` decoded as RGB (see `open_image`); only `formats` (Pillow's names) are tried when given."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=formats)
            _check_pixels(image, name, max_pixels)
            image.load()
            # In place: every copy of a large picture costs its full size again.
            ImageOps.exif_transpose(image, in_place=True)
            return _flatten(image)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (or a format qart cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard, before qart's (`_check_pixels`) sees the size: its message carries the pixel count.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)):,} pixels is" if found else "the number of pixels is"
        raise ImageError(f"{name}: {pixels} too large (the limit is {max_pixels:,}). Resize it first.") from None
    except ValueError as exc:
        if "Decompressed data too large" in str(exc):  # Pillow's cap on a PNG's text or colour-profile chunk
            raise ImageError(f"{name}: the file carries more metadata (text or a colour profile) than qart reads. "
                             "Save it again without metadata.") from None
        raise ImageError(f"{name}: the file is damaged or truncated ({exc})") from None
    except (OSError, SyntaxError, EOFError) as exc:
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
        ImageError: too large (bytes or pixels), too small, animated, not PNG, JPEG or WebP (`PICTURE_FORMATS`),
            or anything `open_image` refuses.
    """
    name = "the upload" if isinstance(source, bytes) else str(source)
    size = len(source) if isinstance(source, bytes) else _file_size(Path(source))
    if size is not None and size > max_bytes:
        sent, accepted = over_cap(size, max_bytes)
        raise ImageError(f"{name}: the file is {sent}; pictures up to {accepted} are accepted. Save it smaller first.")
    name, data = _read(source)
    # 1. The format, from the first bytes: TIFF, BMP or TGA never reach a decoder.
    found = picture_format(data)
    if found not in PICTURE_FORMATS:
        kind = f"a {found} file" if found else "not an image qart can use"
        raise ImageError(f"{name}: {kind}; pictures must be PNG, JPEG or WebP. Save it as one of those first.")
    # 2. Pixels and frames, from the header: nothing is decoded yet.
    try:
        with Image.open(io.BytesIO(data), formats=[found]) as probe:
            _check_pixels(probe, name, max_pixels)
            if getattr(probe, "is_animated", False) and getattr(probe, "n_frames", 1) > 1:
                raise ImageError(
                    f"{name}: an animated {probe.format} picture; the code needs one still picture. "
                    "Upload a PNG or JPEG of the frame you want."
                )
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        pass  # _decode below gives the clear message for every unreadable file
    # 3. Decode
    image = _decode(data, name, max_pixels, (found,))
    if min(image.size) < min_side:
        raise ImageError(
            f"{name}: {image.width}x{image.height} pixels is too small to draw a code from; "
            f"at least {min_side} pixels on each side are needed."
        )
    return image


def picture_format(data: bytes) -> str | None:
    """The format a file's first bytes announce, without decoding anything or running any of Pillow's format
    plugins: "PNG", "JPEG" or "WEBP" (`PICTURE_FORMATS`), another format's name, or None when unknown."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return "HEIC or AVIF"  # what phones save; Pillow reads neither without a plugin
    return next((name for signature, name in OTHER_SIGNATURES if data.startswith(signature)), None)


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


# zlib level 1 with its run-length strategy, through OpenCV's libpng, every row Paeth-filtered: the same pixels as
# Pillow's encoder in files the size of its default level, faster (a GPU job waits for its last candidate's PNG).
# Most of an encoder's time is choosing each row's filter: libpng's own choice picked Paeth's size anyway
# (bench/RESULTS.md, "PNG encoders"). Not Huffman-only coding: smaller for art, 40x larger for a control image.
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
              cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_PAETH]
TO_OPENCV = {"L": None, "RGB": cv2.COLOR_RGB2BGR, "RGBA": cv2.COLOR_RGBA2BGRA}  # modes OpenCV writes as they are


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG, its pixels exactly: stored candidates, and uploads stored re-encoded instead of the
    file as sent. Modes other than L, RGB and RGBA (palette, 16-bit, ...) go through Pillow."""
    if image.mode not in TO_OPENCV:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    pixels = np.asarray(image)
    conversion = TO_OPENCV[image.mode]
    ok, encoded = cv2.imencode(".png", pixels if conversion is None else cv2.cvtColor(pixels, conversion), PNG_PARAMS)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.mode} image of {image.size} as PNG")
    return encoded.tobytes()
