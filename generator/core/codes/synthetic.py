"""Synthetic calibration sets for the scan verifier, and the reference reader that labels them.

No real phone scans of QR art exist on this machine, so the verifier is calibrated on images made here,
in families that span "obviously fine" to "obviously broken" the way QR art does:

- clean: codes in every style and several versions and levels;
- blended: codes painted into photos (when given) or procedural textures at rising strength, module
  centres weighted more than edges and some regions hidden more than others (the look a QR ControlNet
  produces: a face or a window swallows part of the code);
- corrupted: module centres flipped at rising rates;
- inverted: light-on-dark codes (modern phone readers accept these);
- low-contrast: codes squeezed into a narrow band of grey levels.

Labels come from `reference_read`, a reader that knows exactly where the code is - as a phone does once it
has locked on - and asks whether the information a phone samples is still there: it applies a mild,
fixed phone capture (downscale, defocus, sensor noise), samples every module centre, thresholds locally,
and needs Reed-Solomon decoding of that sampled matrix to give back the exact text. It fails below a
minimum dark/light contrast (as camera auto-exposure and binarisation do) and when more than a fifth of
the finder and alignment modules are wrong (the phone cannot lock on).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from generator.core.codes import qr

FAMILIES = ("clean", "blended", "corrupted", "inverted", "low-contrast")
# Grey levels between the median dark and median light module centre below which phones fail to lock on.
MIN_CONTRAST = 24.0
# Share of finder/alignment modules that may be wrong before a phone fails to lock on to the code.
MAX_PATTERN_ERRORS = 0.2
URL_CHARS = string.ascii_letters + string.digits + "-_"
# Calibration sets spread each family's strength over 0..span: past these, every sample is plainly
# unreadable, and samples there would teach the verifier nothing.
STRENGTH_SPAN = {"clean": 1.0, "blended": 0.6, "corrupted": 0.6, "inverted": 1.0, "low-contrast": 1.0}


@dataclass(frozen=True)
class Sample:
    """One calibration image: the code it carries, how it was made, and whether a phone would read it."""

    family: str
    strength: float
    content: str
    gray: np.ndarray
    label: bool


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


def patchiness(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth per-region strength, 0.2-1.5: parts of a picture swallow the code more than others."""
    noise = rng.normal(0, 1, (5, 5)).astype(np.float32)
    return np.clip(1.0 + 0.6 * cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC), 0.2, 1.5)


def centre_weights(code: qr.QRCode, size: int, border: int) -> np.ndarray:
    """Per-pixel weight, 1 at module centres falling smoothly to 0.5 at module edges."""
    pitch = size / (code.size + 2 * border)
    pos = (np.arange(size, dtype=np.float32) + 0.5) / pitch
    dist = np.abs(pos - np.floor(pos) - 0.5) * 2  # 0 at centre, 1 at edge
    d = np.maximum(dist[None, :], dist[:, None])
    return 1.0 - 0.5 * d**2


def make_sample(
    family: str, strength: float, seed: int, size: int = 512, photos: list[np.ndarray] | None = None
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
    border = 4
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
    return Sample(family, strength, content, gray, reference_read(gray, code, border))


def reference_read(gray: np.ndarray, code: qr.QRCode, border: int = 4, seed: int = 0) -> bool:
    """Whether a phone that has located the code samples enough correct modules to decode its exact text.

    Args:
        gray: the image, 2-D uint8, the code spanning it with `border` quiet-zone modules.
        code: the code it should carry (gives the geometry and the expected text).
        border: quiet zone in modules.
        seed: seeds the sensor noise.

    Returns:
        True when Reed-Solomon decoding of the sampled module matrix gives back `code.content` exactly.
    """
    import zxingcpp

    total = code.size + 2 * border
    # 1. A mild, fixed phone capture: about 9 px per module, defocus, sensor noise
    side = total * 9
    img = cv2.resize(gray.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=1.2)
    img += np.random.default_rng(seed).normal(0, 3.0, img.shape).astype(np.float32)

    # 2. Sample each module's centre (the middle third), as readers do
    centres = img[4::9, 4::9][:total, :total]
    window = cv2.blur(img, (3, 3))[4::9, 4::9][:total, :total]
    samples = (centres + 2 * window) / 3
    inner = samples[border:-border, border:-border]

    # 3. Local threshold: the mean of the surrounding 9x9 modules, so uneven light is tolerated
    local = cv2.blur(samples, (9, 9), borderType=cv2.BORDER_REFLECT)[border:-border, border:-border]
    contrast = np.median(inner[~code.matrix]) - np.median(inner[code.matrix])  # light minus dark
    if abs(contrast) < MIN_CONTRAST:
        return False
    # Light-on-dark codes are read inverted, as readers that accept inverted codes do.
    dark = inner < local if contrast > 0 else inner > local

    # 4. Locking on: phones find a code whose finder and alignment patterns are mostly intact, and then
    # know where every module is. Past that, the sampled patterns no longer matter.
    function = code.function_mask
    if (dark[function] != code.matrix[function]).mean() > MAX_PATTERN_ERRORS:
        return False
    dark[function] = code.matrix[function]

    # 5. Rebuild a clean symbol from the sampled modules and let Reed-Solomon decide
    clean = np.pad(np.where(dark, 0, 255).astype(np.uint8), border, constant_values=255)
    clean = np.kron(clean, np.ones((6, 6), np.uint8))
    results = zxingcpp.read_barcodes(clean, formats=zxingcpp.BarcodeFormat.QRCode, is_pure=True)
    return any(r.valid and r.bytes == code.content.encode("utf-8") for r in results)


def calibration_plan(count_per_family: int, seed: int = 0) -> list[tuple[str, float, int]]:
    """(family, strength, seed) for `count_per_family` samples of every family (strengths: STRENGTH_SPAN)."""
    return [
        (family, STRENGTH_SPAN[family] * i / max(1, count_per_family - 1), seed * 1_000_003 + f * 10_007 + i)
        for f, family in enumerate(FAMILIES)
        for i in range(count_per_family)
    ]


def calibration_set(
    count_per_family: int, seed: int = 0, size: int = 512, photos: list[np.ndarray] | None = None
) -> list[Sample]:
    """The samples of `calibration_plan`, built."""
    return [make_sample(f, s, sd, size, photos) for f, s, sd in calibration_plan(count_per_family, seed)]
