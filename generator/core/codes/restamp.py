"""Restamp: make a QR art image carry a different text while keeping how hard it is to scan.

Plain Python, importable without Django. Human labeling shows every candidate re-rendered with its own
one-time link (`<site>/l/<token>`), so a phone that reads it tells the server by itself. The re-rendered image
must be as easy or as hard to read as the original, or the labels would measure the restamp, not the art:

- the new code keeps the original's version (so the same module size and layout); the link must fit in it,
  which `fit_link` arranges by shortening the token to the room the version has;
- of the eight masks, the one that flips the fewest modules is used, so the least of the picture changes;
- a module whose bit flips gets its centre mirrored around its local threshold (`grids.local_threshold`,
  what a phone's binariser compares with): a light centre that cleared the threshold by 40 becomes a dark one
  40 below it, and a centre that was on the wrong side stays as wrong. The whole module moves by the same
  step, so its texture stays, keeping each pixel's hue (`repair.set_luminance`).

    link = fit_link("https://qart.example/l/", token, ecc="H", version=3)     # None: no room
    result = restamp(art, "https://qart.example/r/AbC123", link, ecc="H", grid=grid)
    result.image, result.modules_changed
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import qrcode
from PIL import Image

from generator.core.codes import grids, qr, repair

# A token shorter than this is too easy to guess or to collide with another item's: 6 URL-safe characters
# are 36 bits, plenty for a link that only counts while its item is on screen.
MIN_TOKEN_LENGTH = 6
DEFAULT_BORDER = 4  # the quiet zone the generator's control images have (ranking.BestOfNConfig.border)


class RestampError(ValueError):
    """Inputs restamp cannot work with; the message is meant for a person."""


@dataclass
class Restamped:
    """What `restamp` made.

    Attributes:
        image: the RGB image carrying `code`.
        code: the new code, at the original's version.
        modules_changed: how many modules' bits differ from the original code's.
    """

    image: Image.Image
    code: qr.QRCode
    modules_changed: int


def fit_link(prefix: str, token: str, ecc: str, version: int) -> str | None:
    """`prefix + token`, the token cut to what a code of `version` at level `ecc` still holds.

    Args:
        prefix (`str`): the link up to the token, e.g. "https://qart.example/l/".
        token (`str`): the one-time token; only its leading characters may be used.
        ecc (`str`): error-correction level, L/M/Q/H.
        version (`int`): the QR version the link must fit in.

    Returns:
        The link, or None when fewer than `MIN_TOKEN_LENGTH` characters of the token fit.
    """
    room = qr.capacity(prefix + token, ecc, max_version=version) - len(prefix)
    if room < min(MIN_TOKEN_LENGTH, len(token)):
        return None
    return prefix + token[:room]


def encode_at_version(content: str, ecc: str, version: int, like: np.ndarray | None = None) -> qr.QRCode:
    """Encode `content` in exactly `version`, with the mask that makes it most like `like`.

    Args:
        content (`str`): the text the code carries.
        ecc (`str`): error-correction level, L/M/Q/H.
        version (`int`): the QR version to use, 1-40.
        like (`np.ndarray`, *optional*): an (n, n) bool matrix of the same version; the mask that differs from it
            in the fewest modules is chosen. Without it, the standard penalty rule chooses.

    Returns:
        The `qr.QRCode`.

    Raises:
        RestampError: the content does not fit in `version` at level `ecc`.
    """
    text = qr.validate_content(content)
    if ecc not in qr.ECC_LEVELS:
        raise ValueError(f"ecc must be one of {', '.join(qr.ECC_LEVELS)}, got {ecc!r}")

    def build(mask: int | None) -> qrcode.QRCode:
        code = qrcode.QRCode(version=version, error_correction=qr.ECC_LEVELS[ecc], border=0, mask_pattern=mask)
        code.add_data(text)
        try:
            code.make(fit=False)
        except qrcode.exceptions.DataOverflowError:
            # Said on the placement page: how many fit, not "a version-3 level-H code"
            room = qr.capacity(text, ecc, max_version=version)
            raise RestampError(f"The link's {len(text)} characters do not fit in this picture's code, which holds "
                               f"at most {room} characters like these.") from None
        return code

    if like is None:
        mask = build(None).best_mask_pattern()
        return qr.QRCode(text, np.array(build(mask).modules, dtype=bool), version, ecc, mask)
    matrices = {mask: np.array(build(mask).modules, dtype=bool) for mask in range(8)}
    mask = min(matrices, key=lambda m: int((matrices[m] != like).sum()))
    return qr.QRCode(text, matrices[mask], version, ecc, mask)


def restamp(
    image: Image.Image,
    content: str,
    new_content: str,
    *,
    ecc: str = "H",
    grid: grids.Grid | None = None,
    border: int = DEFAULT_BORDER,
    code: qr.QRCode | None = None,
) -> Restamped:
    """Re-render QR art so that it carries `new_content`, with each module centre as clear or as weak as before.

    Args:
        image (`PIL.Image.Image`): the QR art (converted to RGB).
        content (`str`): the exact text the art was made for.
        new_content (`str`): the text it should carry instead; must fit in the original's version (`fit_link`).
        ecc (`str`, *optional*, defaults to "H"): the original code's error-correction level, kept.
        grid (`grids.Grid`, *optional*): where the modules are, from the art's control image
            (`grids.grid_from_control`); without it, the layout of `qr.render_control_image(code, side, border)`.
        border (`int`, *optional*, defaults to 4): quiet zone in modules, used only without `grid`.
        code (`qr.QRCode`, *optional*): the code the art carries, when it is not `content` as `qr.encode` writes it:
            art restamped before keeps its version, which may be larger than its text needs, and its mask.

    Returns:
        A `Restamped`.

    Raises:
        RestampError: the new content does not fit, or the grid is not the original code's.
        grids.RepairError: the image and the grid do not fit together.
    """
    # 1. Check inputs; the original code comes out the same as when the art was made (smallest version, and
    # the mask the penalty rule picks, both deterministic), unless `code` says how a restamp changed them
    original = image.convert("RGB")
    old = code if code is not None else qr.encode(content, ecc=ecc, max_version=40)
    if grid is None:
        if original.width != original.height:
            raise RestampError(f"The image is {original.width}x{original.height}: without its control image, "
                               "only square art can be restamped.")
        grid = grids.grid_from_code(old, original.width, border)
    grid = grid.fitted_to(*original.size)
    if grid.version != old.version or (grid.matrix != old.matrix).any():
        raise RestampError("The control image does not carry the code this image was made for.")

    # 2. The new code, same version, fewest flipped modules
    new = encode_at_version(new_content, ecc, old.version, like=old.matrix)
    rows, cols = np.nonzero(new.matrix != old.matrix)
    flipped = list(zip(rows.tolist(), cols.tolist(), strict=True))
    if not flipped:
        return Restamped(original, new, 0)

    # 3. Move each flipped module's luminance by twice its centre's lead over the local threshold: the centre
    # lands mirrored around the threshold, and the module's texture moves with it instead of being inverted
    pixels = np.asarray(original)
    lead = (grids.local_threshold(original, grid) - grids.module_luminance(original, grid)).ravel()
    # Whole modules, not just the centre spots repair paints: a module left half its old colour lets lenient
    # readers (WeChat, zbar average whole modules) read the old code, and a phone could open the old link.
    weight, owner = repair.spots(replace(grid, function_mask=np.ones_like(grid.matrix)), flipped)
    inside = owner >= 0
    rgb = pixels[inside].astype(np.float64)
    luma = rgb @ repair.LUMA
    moved = luma + weight[inside] * 2 * lead[owner[inside]]
    out = pixels.copy()
    out[inside] = np.round(repair.set_luminance(rgb, moved)).astype(np.uint8)
    return Restamped(Image.fromarray(out, "RGB"), new, len(flipped))
