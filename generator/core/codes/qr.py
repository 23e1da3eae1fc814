"""QR core: encode content into a module matrix and render the ControlNet control image.

Plain Python (no Django, no environment): the Django layer passes limits in.

    code = encode("https://qart.example/r/AbC123")          # level H, version <= 6
    image = render_control_image(code, size=768, style="dots", background="grey")

Why a version limit: long content means a dense code. Dense codes leave the diffusion model little room
for art and give phones small modules to read, so both the art and the scan rate suffer. Campaign short
links keep codes at version 2-4.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import qrcode
import qrcode.util
from PIL import Image, ImageDraw

ECC_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
STYLES = ("square", "rounded", "dots")
BACKGROUNDS = {"white": (255, 255, 255), "grey": (128, 128, 128)}
DARK = (0, 0, 0)
LIGHT = (255, 255, 255)
DEFAULT_MAX_VERSION = 6
# The most characters qart takes as a code's content, checked before anything is encoded (fitting 4 M characters
# cost 10 s): what the largest code (version 40, level L) holds in bytes. Art codes (up to DEFAULT_MAX_VERSION)
# hold far fewer; `encode` says how many.
MAX_CONTENT_CHARS = 2953
CONTENT_TOO_LONG = (f"A QR code carries at most {MAX_CONTENT_CHARS:,} characters; art codes far fewer. "
                    "Use a short link instead.")
# Tab, line feed and carriage return are legitimate in vCards and Wi-Fi payloads; every other control
# character is dropped or mangled by phone QR apps, so it would be a silent misread.
ALLOWED_CONTROLS = {"\t", "\n", "\r"}
# Supersampling factor for shaped modules: shapes are drawn large and box-filtered down, which anti-aliases
# their edges while staying deterministic (no randomness, no platform-dependent font or path code).
SUPERSAMPLE = 4


class ContentError(ValueError):
    """Content that cannot become a good QR code; the message is meant for the person who typed it."""


@dataclass(frozen=True)
class QRCode:
    """An encoded QR symbol.

    Attributes:
        content: the text the code carries.
        matrix: (n, n) bool array, True where a module is dark; no quiet zone.
        version: QR version, 1-40 (n = 17 + 4 * version).
        ecc: error-correction level, one of "L", "M", "Q", "H".
        mask: mask pattern number, 0-7.
    """

    content: str
    matrix: np.ndarray
    version: int
    ecc: str
    mask: int

    @property
    def size(self) -> int:
        return self.matrix.shape[0]

    @cached_property
    def function_mask(self) -> np.ndarray:
        """See `function_mask`: what readers locate this code by."""
        return function_mask(self.version)


def function_mask(version: int) -> np.ndarray:
    """(n, n) bool array, True on finder patterns (with their separators) and alignment patterns.

    These are what a reader locates the code by, so renderers keep them solid squares whatever the style
    and repair restores them whole.
    """
    n = 17 + 4 * version
    mask = np.zeros((n, n), dtype=bool)
    for row, col in ((0, 0), (0, n - 8), (n - 8, 0)):
        mask[row : row + 8, col : col + 8] = True
    centres = qrcode.util.pattern_position(version)
    for r in centres:
        for c in centres:
            if mask[r, c]:  # overlaps a finder pattern: no alignment pattern there
                continue
            mask[r - 2 : r + 3, c - 2 : c + 3] = True
    return mask


def validate_content(content: str | bytes) -> str:
    """Check that content can be carried exactly by a QR code and read back by phones.

    Args:
        content: text, or UTF-8 bytes (for example a command-line argument).

    Returns:
        The content as a str.

    Raises:
        ContentError: empty content, invalid UTF-8, or a control character phones cannot carry.
    """
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContentError(f"Content is not valid UTF-8 (bad byte at position {exc.start}).") from None
    if not content:
        raise ContentError("Content is empty: enter the text or link the code should open.")
    try:
        content.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Python keeps undecodable command-line bytes as lone surrogates.
        raise ContentError(f"Content is not valid UTF-8 (bad character at position {exc.start}).") from None
    for position, char in enumerate(content):
        if unicodedata.category(char) == "Cc" and char not in ALLOWED_CONTROLS:
            raise ContentError(
                f"Content has a control character (U+{ord(char):04X}) at position {position}: "
                "phone QR readers drop or mangle these. Remove it."
            )
    return content


def _build(content: str, level: int, version: int | None, mask: int | None) -> qrcode.QRCode:
    qr = qrcode.QRCode(version=version, error_correction=level, border=0, mask_pattern=mask)
    qr.add_data(content)
    return qr


def _fits(content: str, level: int, max_version: int) -> bool:
    try:
        qr = _build(content, level, None, None)
        return qr.best_fit() <= max_version
    except qrcode.exceptions.DataOverflowError:
        return False
    except ValueError as exc:
        # qrcode 8's best_fit says "Invalid version (was 41, expected 1 to 40)" for content past version 40's
        # capacity, where a little less overflows properly; that reached a page as a 500 and as these very words
        if str(exc).startswith("Invalid version"):
            return False
        raise


def capacity(content: str, ecc: str = "H", max_version: int = DEFAULT_MAX_VERSION) -> int:
    """How many leading characters of `content` fit in a code of at most `max_version` at level `ecc`.

    Capacity depends on the characters (digits pack tighter than letters, non-ASCII looser), so it is
    measured on the content itself rather than read from a table.
    """
    level = ECC_LEVELS[ecc]
    lo, hi = 0, len(content)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _fits(content[:mid], level, max_version):
            lo = mid
        else:
            hi = mid - 1
    return lo


def encode(
    content: str | bytes, ecc: str = "H", max_version: int = DEFAULT_MAX_VERSION, mask: int | None = None,
    version: int | None = None,
) -> QRCode:
    """Encode content as a QR code in the smallest version that fits (or in `version`).

    Args:
        content (`str` or `bytes`): the text the code should carry; bytes must be UTF-8.
        ecc (`str`, *optional*, defaults to "H"): error-correction level, L/M/Q/H (7/15/25/30 % recoverable).
        max_version (`int`, *optional*, defaults to 6): the largest version accepted for art.
        mask (`int`, *optional*): force a mask pattern 0-7; by default the standard penalty rule picks one.
        version (`int`, *optional*): encode in exactly this version, at least the smallest that fits: a code
            restamped with a shorter text keeps its art's version (`restamp.encode_at_version`), and the grading
            looks for it there.

    Returns:
        The encoded `QRCode`.

    Raises:
        ContentError: bad content, or content too long for `max_version` (the message says how many
            characters fit and suggests a short link).
        ValueError: a bad `ecc`, `max_version` or `mask` (programming errors, not user input).
    """
    # 1. Check inputs
    if ecc not in ECC_LEVELS:
        raise ValueError(f"ecc must be one of {', '.join(ECC_LEVELS)}, got {ecc!r}")
    if not 1 <= max_version <= 40:
        raise ValueError(f"max_version must be between 1 and 40, got {max_version}")
    if mask is not None and not 0 <= mask <= 7:
        raise ValueError(f"mask must be between 0 and 7, got {mask}")
    text = validate_content(content)
    level = ECC_LEVELS[ecc]

    # 2. Capacity guard for art
    if not _fits(text, level, max_version):
        fit = capacity(text, ecc, max_version)
        # Said to the person who typed it: how many characters fit and what to do, not the level and version
        # that set the limit (`fit` is exact for this content: digits take less room, accented letters more)
        raise ContentError(
            f"This is too long for QR art: {len(text)} characters, and QR art holds at most {fit} characters like "
            "these (digits take less room, accented letters and emoji more). Shorten the link or text: a campaign "
            "placement's tracked short link fits easily and keeps the code's squares few and big."
        )

    # 3. Fit, choose the mask and build the matrix
    qr = _build(text, level, None, None)
    smallest = qr.best_fit()
    if version is not None and version > smallest:
        qr = _build(text, level, version, None)
    else:
        version = smallest
    chosen_mask = mask if mask is not None else qr.best_mask_pattern()
    qr = _build(text, level, version, chosen_mask)
    qr.make(fit=False)
    matrix = np.array(qr.modules, dtype=bool)
    return QRCode(content=text, matrix=matrix, version=version, ecc=ecc, mask=chosen_mask)


def _edges(count: int, size: int) -> np.ndarray:
    """Pixel edges of `count` equal cells across `size` pixels, rounded so every cell is within one pixel."""
    return np.round(np.arange(count + 1) * size / count).astype(int)


def render_control_image(
    code: QRCode,
    size: int = 768,
    border: int = 4,
    style: str = "square",
    background: str = "white",
) -> Image.Image:
    """Render the ControlNet control image of a QR code.

    Args:
        code (`QRCode`): the encoded code.
        size (`int`, *optional*, defaults to 768): output width and height in pixels.
        border (`int`, *optional*, defaults to 4): quiet zone in modules (the standard asks for 4).
        style (`str`, *optional*, defaults to "square"): data module shape, "square", "rounded" or "dots".
            Finder and alignment patterns are always solid squares.
        background (`str`, *optional*, defaults to "white"): "white", or "grey" (#808080, which the
            QR Code Monster model card suggests: grey reads as "free to paint" to that ControlNet).
            Dark modules are black and light modules white in either case.

    Returns:
        An RGB `PIL.Image.Image` of `size` x `size`. The same arguments always give the same pixels.
    """
    # 1. Check inputs
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    if border < 0:
        raise ValueError(f"border must be 0 or more modules, got {border}")
    total = code.size + 2 * border
    if size < total:
        raise ValueError(f"size {size} px is smaller than the code ({total} modules with its quiet zone)")

    # 2. Draw modules at SUPERSAMPLE x scale
    scale = SUPERSAMPLE if style != "square" else 1
    canvas = size * scale
    edges = _edges(total, canvas)
    image = Image.new("RGB", (canvas, canvas), BACKGROUNDS[background])
    draw = ImageDraw.Draw(image)
    module = canvas / total
    for row in range(code.size):
        y0, y1 = edges[row + border], edges[row + border + 1]
        for col in range(code.size):
            x0, x1 = edges[col + border], edges[col + border + 1]
            colour = DARK if code.matrix[row, col] else LIGHT
            if style == "square" or code.function_mask[row, col]:
                draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
            elif style == "rounded":
                draw.rounded_rectangle((x0, y0, x1 - 1, y1 - 1), radius=module * 0.35, fill=colour)
            else:  # dots: 80 % of the module, centred, so the module centre (what readers sample) is solid
                inset = module * 0.1
                draw.ellipse((x0 + inset, y0 + inset, x1 - 1 - inset, y1 - 1 - inset), fill=colour)

    # 3. Box-filter down to the output size
    if scale != 1:
        image = image.resize((size, size), Image.Resampling.BOX)
    return image
