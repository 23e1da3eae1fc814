"""Synthetic calibration sets for the scan verifier, and the reference reader that labels them.

No real phone scans of QR art exist on this machine, so the verifier is calibrated on images made here,
in families that span "obviously fine" to "obviously broken" the way QR art does:

- clean: codes in every style and several versions and levels;
- blended: codes painted into photos (when given) or procedural textures at rising strength, module
  centres weighted more than edges and some regions hidden more than others;
- art: the look of Stable Diffusion QR art (QR Code Monster) at 768 px: the code's modules as soft,
  merging blobs swinging the picture's luminance up and down, fine texture from a second photo (brick,
  gravel, grass, fur) inside every module, regions where the picture swallows the code, finder patterns
  sometimes drawn over by the picture, and the picture running on into the quiet zone;
- corrupted: module centres flipped at rising rates;
- inverted: light-on-dark codes (modern phone readers accept these);
- low-contrast: codes squeezed into a narrow band of grey levels.

Labels come from `reference_read`, a reader that knows exactly where the code is - as a phone does once it
has locked on - and reads the way a phone's scanner does at the resolution a phone sees a screen or print
from arm's length, which is about the image's own: it looks at the image at 0.9-1.3x its size with mild
defocus and sensor noise, binarises every pixel against the mean of a window two and a half to four
modules across (zxing's binariser averages 40-pixel blocks, two or three modules of 768 px art), and reads one
binarised pixel at each module centre, the grid placed with a small error. That decides a view as a phone
decides a frame: all three finder patterns must be found (few wrong modules, and a clean 1:1:3:1:1 line
through the centre with light on both sides, the quiet side included), the format information must
decode (at most 3 of a copy's 15 bits wrong), and Reed-Solomon must correct every block with misdecode
protection and one more codeword to spare (2t <= d - p - 2). Texture inside modules flips single pixels,
which a downscaled view averages away, so this is stricter than the downscaled captures, as phones are
(bench/RESULTS.md). A code is labelled readable when at least two of three seeded views decode.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from generator.core.codes import grading, qr

FAMILIES = ("clean", "blended", "art", "corrupted", "inverted", "low-contrast")
# Grey levels between the median dark and median light module centre below which phones fail to lock on.
MIN_CONTRAST = 24.0
# The reference reader (see the module docstring): views per code, how large a phone sees the image, its
# binariser's window in modules, how far its grid is off (standard deviation in modules, overall and per module).
REFERENCE_VIEWS = 3
REFERENCE_SCALE = (0.9, 1.3)
REFERENCE_WINDOW = (2.5, 4.0)
REFERENCE_GRID_ERROR = (0.08, 0.05)
# A finder is found when at most this many of its 49 modules read wrong (and a centre line reads clean).
MAX_FINDER_ERRORS = 4
# Format information: BCH(15, 5) corrects 3 wrong bits of one of its two copies.
MAX_FORMAT_ERRORS = 3
# Codewords of every block kept spare beyond misdecode protection: 2t <= d - p - SPARE_EC.
SPARE_EC = 2
# A line through a finder's centre, with the module of light on either side: light, dark, light, dark x3, ...
FINDER_LINE = np.array([0, 1, 0, 1, 1, 1, 0, 1, 0], bool)
URL_CHARS = string.ascii_letters + string.digits + "-_"
# Calibration sets spread each family's strength over 0..span: past these, every sample is plainly
# unreadable, and samples there would teach the verifier nothing.
STRENGTH_SPAN = {"clean": 1.0, "blended": 0.6, "art": 0.8, "corrupted": 0.6, "inverted": 1.0, "low-contrast": 1.0}
# The art family is what the verifier judges in production, and the one whose labels the others explain least,
# so calibration sets hold three times as many of it.
FAMILY_SHARE = {"art": 3}


@dataclass(frozen=True)
class Sample:
    """One calibration image: the code it carries, how it was made, and whether a phone would read it."""

    family: str
    strength: float
    content: str
    gray: np.ndarray
    label: bool
    code: qr.QRCode | None = None  # the encoded code (its grid: `grids.grid_from_code(code, size, border)`)
    border: int = 4  # quiet zone in modules


def random_content(rng: random.Random) -> str:
    """A short-link-like or free-text content string."""
    if rng.random() < 0.6:
        slug = "".join(rng.choice(URL_CHARS) for _ in range(rng.randint(5, 10)))
        return f"https://{rng.choice(['qart.example', 'go.shop.example', 'x.example'])}/r/{slug}"
    alphabet = string.ascii_letters + string.digits + " .,:;/-_?!=&"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(4, 40)))


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A procedural greyscale 'photo': smooth multi-scale noise, a light gradient and some hard shapes."""
    img = np.zeros((size, size), np.float32)
    for cells, weight in ((4, 1.0), (12, 0.5), (40, 0.25)):
        noise = rng.normal(0, 1, (cells, cells)).astype(np.float32)
        img += weight * cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img += rng.uniform(-1.5, 1.5) * xx + rng.uniform(-1.5, 1.5) * yy
    for _ in range(rng.integers(0, 6)):  # hard-edged shapes, like objects in a scene
        cx, cy, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(size * 0.05, size * 0.25)]
        cv2.circle(img, (int(cx), int(cy)), int(r), float(rng.normal(0, 1.5)), -1)
    img = (img - img.mean()) / (img.std() + 1e-6)
    return np.clip(128 + img * rng.uniform(25, 70) + rng.uniform(-50, 50), 0, 255).astype(np.float32)


def load_photos(folder: str | Path, limit: int = 40) -> list[np.ndarray]:
    """Greyscale photos (PNG/JPEG) from a folder, for the blended family; unreadable files are skipped."""
    photos = []
    for path in sorted(Path(folder).glob("*"))[: limit * 2]:
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is not None and min(img.shape) >= 128:
            photos.append(img)
    return photos[:limit]


def photo_crop(rng: np.random.Generator, photos: list[np.ndarray], size: int) -> np.ndarray:
    """A random square crop of a random photo, resized to `size`."""
    photo = photos[int(rng.integers(len(photos)))]
    side = int(rng.uniform(0.5, 1.0) * min(photo.shape))
    y = int(rng.integers(0, photo.shape[0] - side + 1))
    x = int(rng.integers(0, photo.shape[1] - side + 1))
    crop = photo[y : y + side, x : x + side].astype(np.float32)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def patchiness(rng: np.random.Generator, size: int, low: float = 0.2) -> np.ndarray:
    """Smooth per-region strength, `low`-1.5: parts of a picture swallow the code more than others."""
    noise = rng.normal(0, 1, (5, 5)).astype(np.float32)
    return np.clip(1.0 + 0.6 * cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC), low, 1.5)


def centre_weights(code: qr.QRCode, size: int, border: int) -> np.ndarray:
    """Per-pixel weight, 1 at module centres falling smoothly to 0.5 at module edges."""
    pitch = size / (code.size + 2 * border)
    pos = (np.arange(size, dtype=np.float32) + 0.5) / pitch
    dist = np.abs(pos - np.floor(pos) - 0.5) * 2  # 0 at centre, 1 at edge
    d = np.maximum(dist[None, :], dist[:, None])
    return 1.0 - 0.5 * d**2


def sd_art(code: qr.QRCode, size: int, border: int, strength: float, rng: np.random.Generator,
           photos: list[np.ndarray] | None = None) -> np.ndarray:
    """The look of Stable Diffusion QR art: the code as soft blobs swinging a picture's luminance, with texture.

    Args:
        code: the code to paint.
        size: image side in pixels.
        border: quiet zone in modules (the picture runs on into it).
        strength: 0-1; the code's swing shrinks and the texture inside modules grows as it rises.
        rng: the random source.
        photos: greyscale photos for the picture and its texture; procedural textures without them.

    Returns:
        A (size, size) float32 image, 0-255 before rounding.
    """
    pitch = size / (code.size + 2 * border)
    style = qr.STYLES[int(rng.integers(len(qr.STYLES)))]
    control = np.asarray(qr.render_control_image(code, size, border, style).convert("L"), np.float32)
    # 1. The code as soft blobs: neighbouring dark modules merge, edges are never crisp
    swing = cv2.GaussianBlur(control, (0, 0), pitch * rng.uniform(0.12, 0.4)) / 127.5 - 1.0  # -1 dark, +1 light
    # 2. The picture: its broad shapes, and fine texture (a second photo, high-passed) inside every module
    picture = photo_crop(rng, photos, size) if photos else texture(rng, size)
    broad = cv2.GaussianBlur(picture, (0, 0), pitch * rng.uniform(1.0, 3.0))
    fine = photo_crop(rng, photos, size) if photos else _fine_noise(rng, size, pitch)
    fine = fine - cv2.GaussianBlur(fine, (0, 0), pitch * rng.uniform(0.3, 0.8))
    fine /= fine.std() + 1e-6
    # 3. How strongly the code shows: weaker as strength rises, patchy, and drawn over at some finders
    amplitude = (1.0 - strength) * rng.uniform(70, 120) * patchiness(rng, size, low=0.3)
    cover = np.zeros((size, size), np.float32)
    n = code.size
    for row, col in ((0, 0), (0, n - 7), (n - 7, 0)):
        if rng.random() < 0.1:
            centre = (int((border + col + 3.5) * pitch), int((border + row + 3.5) * pitch))
            cv2.circle(cover, centre, int(pitch * rng.uniform(2.5, 5.0)), float(rng.uniform(0.4, 1.0)), -1)
    amplitude *= 1.0 - cv2.GaussianBlur(cover, (0, 0), pitch)
    inside = np.zeros((size, size), bool)
    inside[int(border * pitch) : int((border + n) * pitch), int(border * pitch) : int((border + n) * pitch)] = True
    amplitude = np.where(inside, amplitude, amplitude * rng.uniform(0.0, 1.0))  # the picture runs on outside
    # 4. Together, softened as a generated image is
    level = 128 + (broad - broad.mean()) * rng.uniform(0.2, 0.6)
    grain = rng.uniform(4, 16) + strength * rng.uniform(0, 30)
    img = level + amplitude * swing + grain * fine
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.0))


def _fine_noise(rng: np.random.Generator, size: int, pitch: float) -> np.ndarray:
    """Procedural fine texture (blurred noise, features a third of a module across), when no photos are given."""
    return cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), pitch / 6)


def make_sample(
    family: str, strength: float, seed: int, size: int = 768, photos: list[np.ndarray] | None = None
) -> Sample:
    """Build one calibration sample.

    Args:
        family: one of `FAMILIES`.
        strength: 0-1, how hard the sample is (blend weight lost, corruption rate, contrast lost).
        seed: makes the sample reproducible.
        size: image side in pixels.
        photos: greyscale photos to blend codes into; procedural textures without them.

    Returns:
        A labelled `Sample`.
    """
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    content = random_content(rnd)
    code = qr.encode(content, ecc=rnd.choice("MQHH"), max_version=10)
    # Art made with QR Code Monster often has a narrow quiet zone, and its picture runs on into it.
    border = int(rng.integers(1, 5)) if family == "art" else 4
    style = rnd.choice(qr.STYLES)
    base = np.asarray(qr.render_control_image(code, size, border, style).convert("L"), np.float32)

    if family == "clean":
        img = base
    elif family == "blended":
        # strength 0: the code dominates; strength 1: the texture dominates everywhere.
        picture = photo_crop(rng, photos, size) if photos else texture(rng, size)
        alpha = np.clip((1.0 - strength) * centre_weights(code, size, border) * patchiness(rng, size), 0, 1)
        img = picture * (1 - alpha) + base * alpha
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=rnd.uniform(0.5, 1.5))
    elif family == "art":
        img = sd_art(code, size, border, strength, rng, photos)
    elif family == "corrupted":
        img = base.copy()
        pitch = size / (code.size + 2 * border)
        flips = rng.random(code.matrix.shape) < strength * 0.08
        flips &= ~code.function_mask
        for r, c in zip(*np.nonzero(flips), strict=True):
            centre = (int((border + c + 0.5) * pitch), int((border + r + 0.5) * pitch))
            colour = 255.0 if code.matrix[r, c] else 0.0
            cv2.circle(img, centre, max(1, int(pitch * 0.32)), colour, -1)
    elif family == "inverted":
        img = 255.0 - base
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=0.5 + 2.0 * strength)
    elif family == "low-contrast":
        contrast = 255.0 * (1.0 - strength) ** 1.5
        mid = rnd.uniform(60, 200)
        img = mid + (base / 255.0 - 0.5) * contrast
    else:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")

    gray = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return Sample(family, strength, content, gray, reference_read(gray, code, border, seed), code, border)


def reference_read(gray: np.ndarray, code: qr.QRCode, border: int = 4, seed: int = 0) -> bool:
    """Whether a phone that has located the code reads its exact text, with error correction to spare.

    Args:
        gray: the image, 2-D uint8, the code spanning it with `border` quiet-zone modules.
        code: the code it should carry (gives the geometry, the modules and the expected text).
        border: quiet zone in modules.
        seed: seeds the views (size, defocus, noise, binariser window, grid error).

    Returns:
        True when at least two of `REFERENCE_VIEWS` views decode (see the module docstring).
    """
    rng = np.random.default_rng(seed)
    layout = grading.codeword_layout(code.version, code.ecc)
    decoded = sum(_view_decodes(_phone_modules(gray, code, border, rng), code, layout) for _ in range(REFERENCE_VIEWS))
    return 2 * decoded > REFERENCE_VIEWS


def _phone_modules(gray: np.ndarray, code: qr.QRCode, border: int, rng: np.random.Generator) -> np.ndarray | None:
    """One phone view: (n + 2, n + 2) bool, each module (and the ring of modules around the code) read dark,
    or None where dark and light differ too little for a phone to lock on."""
    n = code.size
    # 1. What the sensor sees: the image at about its own size, defocused, with sensor noise
    scale = rng.uniform(*REFERENCE_SCALE)
    height, width = gray.shape
    img = cv2.resize(gray.astype(np.float32), (round(width * scale), round(height * scale)),
                     interpolation=cv2.INTER_LINEAR)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.0))
    img += rng.normal(0, 3.0, img.shape).astype(np.float32)
    # 2. The binariser: each pixel against the mean of a window a few modules across
    pitch = img.shape[1] / (n + 2 * border)
    window = max(15, int(round(pitch * rng.uniform(*REFERENCE_WINDOW))) | 1)
    threshold = cv2.blur(img, (window, window), borderType=cv2.BORDER_REPLICATE)
    # 3. One pixel at each module centre, the grid a little off (overall and per module)
    steps = np.arange(-1, n + 1) + 0.5 + border
    offset = rng.normal(0, REFERENCE_GRID_ERROR[0], 2)
    xs = (steps[None, :] + offset[0] + rng.normal(0, REFERENCE_GRID_ERROR[1], (n + 2, n + 2))) * pitch
    ys = (steps[:, None] + offset[1] + rng.normal(0, REFERENCE_GRID_ERROR[1], (n + 2, n + 2))) * pitch
    col, row = np.round(xs - 0.5).astype(int), np.round(ys - 0.5).astype(int)
    seen = (col >= 0) & (row >= 0) & (col < img.shape[1]) & (row < img.shape[0])
    col, row = np.clip(col, 0, img.shape[1] - 1), np.clip(row, 0, img.shape[0] - 1)
    value, local = img[row, col], threshold[row, col]
    inner = value[1:-1, 1:-1]
    contrast = np.median(inner[~code.matrix]) - np.median(inner[code.matrix])  # light minus dark
    if abs(contrast) < MIN_CONTRAST:
        return None
    # Light-on-dark codes are read inverted, as readers that accept inverted codes do; off the image reads light.
    dark = value < local if contrast > 0 else value > local
    return dark & seen


def _view_decodes(dark: np.ndarray | None, code: qr.QRCode, layout: grading.CodewordLayout) -> bool:
    """Whether a phone decodes the modules it read (from `_phone_modules`, with the ring around the code)."""
    if dark is None:
        return False
    n = code.size
    wrong = dark[1:-1, 1:-1] != code.matrix
    # 1. All three finders: few wrong modules, and a clean line through the centre each way, light beyond it
    for row, col in ((0, 0), (0, n - 7), (n - 7, 0)):
        if wrong[row : row + 7, col : col + 7].sum() > MAX_FINDER_ERRORS:
            return False
        block = dark[row : row + 9, col : col + 9]  # the finder with one module around it
        centre = (3, 4, 5)
        if not (any((block[i] == FINDER_LINE).all() for i in centre)
                and any((block[:, i] == FINDER_LINE).all() for i in centre)):
            return False
    # 2. Format information: one copy within what its BCH code corrects
    first, second = _format_cells(n)
    if min(wrong[first].sum(), wrong[second].sum()) > MAX_FORMAT_ERRORS:
        return False
    # 3. Reed-Solomon, every block with protection and a codeword to spare
    bad = np.zeros(layout.codewords, dtype=bool)
    bad[layout.codeword[wrong & (layout.codeword >= 0)]] = True
    return all(2 * int(bad[layout.block == b].sum()) <= ec - protected - SPARE_EC
               for b, (ec, protected) in enumerate(layout.blocks))


def _format_cells(n: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(rows, cols) of the two copies of the 15 format bits of an n-module symbol."""
    first = [(8, c) for c in (0, 1, 2, 3, 4, 5, 7, 8)] + [(r, 8) for r in (7, 5, 4, 3, 2, 1, 0)]
    second = [(r, 8) for r in range(n - 1, n - 8, -1)] + [(8, c) for c in range(n - 8, n)]
    (r1, c1), (r2, c2) = (np.array(cells).T for cells in (first, second))
    return (r1, c1), (r2, c2)


def calibration_plan(count_per_family: int, seed: int = 0) -> list[tuple[str, float, int]]:
    """(family, strength, seed) for `count_per_family` samples of every family (`FAMILY_SHARE` times that for
    the art family; strengths spread over STRENGTH_SPAN)."""
    plan = []
    for f, family in enumerate(FAMILIES):
        count = count_per_family * FAMILY_SHARE.get(family, 1)
        plan += [(family, STRENGTH_SPAN[family] * i / max(1, count - 1), seed * 1_000_003 + f * 10_007 + i)
                 for i in range(count)]
    return plan


def calibration_set(
    count_per_family: int, seed: int = 0, size: int = 768, photos: list[np.ndarray] | None = None
) -> list[Sample]:
    """The samples of `calibration_plan`, built."""
    return [make_sample(f, s, sd, size, photos) for f, s, sd in calibration_plan(count_per_family, seed)]
