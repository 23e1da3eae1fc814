"""Finder patterns: does an image show any QR finder pattern at all?

Plain Python, importable without Django. Every QR reader starts by finding the three 7x7 squares in the
corners of a code; where no finder pattern shows, no reader can read anything. The verifier asks this
cheap question before running its slow decoders: OpenCV's WeChat engine proposes candidate regions all
over a noise image and decodes each in turn, so it can spend seconds on an image with no code at all
(bench/RESULTS.md).

A finder pattern shows where a row crosses dark, light, dark, light, dark runs in the ratio 1:1:3:1:1
(as zxing and zbar scan for them) and the 7x7 modules around that centre, sampled at the run's module
size, match the pattern in at least `MIN_MATCH` of their places - which random texture practically never
does; on the verifier's calibration sets, skipping the slow decoders where no finder shows lost no read
(bench/RESULTS.md).
Both polarities are checked (light-on-dark codes are read too); the image is split into dark and light
against the mean of a window an eighth of its shorter side across, as phone binarisers threshold locally.
Modules under `MIN_MODULE` pixels are not looked for.
"""

from __future__ import annotations

import cv2
import numpy as np

FINDER = np.pad(np.pad(np.ones((3, 3), bool), 1), 1, constant_values=True)  # 7x7, True = dark
MIN_MATCH = 0.9  # share of the 49 modules that must match: 45 of 49
MIN_MODULE = 2.0  # pixels: no reader reads smaller modules, and pixel noise is full of 1-pixel run groups
OFFSETS = np.arange(7) - 3


def present(gray: np.ndarray) -> bool:
    """Whether any QR finder pattern, dark on light or light on dark, shows in a 2-D uint8 image."""
    block = max(15, (min(gray.shape) // 8) | 1)
    dark = gray < cv2.blur(gray, (block, block))
    centres, starts_dark = _run_centres(dark)  # one pass finds the run groups of both polarities
    return _matches(dark, centres[starts_dark]) or _matches(~dark, centres[~starts_dark])


def _matches(dark: np.ndarray, centres: np.ndarray) -> bool:
    """Whether a finder pattern (dark where `dark` is True) lies around one of the run groups' centres."""
    if not len(centres):
        return False
    h, w = dark.shape
    y, x, module = centres[:, 0:1], centres[:, 1:2], centres[:, 2:3]
    rows = np.clip(np.round(y + OFFSETS * module).astype(int), 0, h - 1)
    cols = np.clip(np.round(x + OFFSETS * module).astype(int), 0, w - 1)
    # The column through the centre first (at most one of its 7 modules wrong), which texture rarely passes;
    # then all 49 modules of the candidates left.
    column = dark[rows, cols[:, 3:4]]
    keep = (column == FINDER[:, 3]).sum(axis=1) >= 6
    rows, cols = rows[keep], cols[keep]
    samples = dark[rows[:, :, None], cols[:, None, :]]  # (candidates, 7, 7)
    return bool(((samples == FINDER).mean(axis=(1, 2)) >= MIN_MATCH).any())


def _run_centres(dark: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, centre column, module size) of every group of five runs along a row in ratio 1:1:3:1:1, and
    whether each starts with a dark run (dark-light-dark-light-dark) or a light one.

    Each run may be off by half a module (and half a pixel), the middle one by three halves: zxing's tolerance.
    """
    h, w = dark.shape
    change = np.ones((h, w), dtype=bool)
    change[:, 1:] = dark[:, 1:] != dark[:, :-1]
    rows, starts = np.nonzero(change)  # every run, row by row
    same_row = np.r_[rows[1:] == rows[:-1], False]
    lengths = (np.where(same_row, np.r_[starts[1:], 0], w) - starts).astype(np.float32)
    count = len(starts) - 4
    if count <= 0:
        return np.zeros((0, 3)), np.zeros(0, dtype=bool)
    runs = np.stack([lengths[i : i + count] for i in range(5)], axis=1)  # five consecutive runs
    module = runs.sum(axis=1) / 7
    slack = module * 0.5 + 0.5
    ok = (rows[:count] == rows[4:]) & (module >= MIN_MODULE)
    for i in (0, 1, 3, 4):
        ok &= np.abs(runs[:, i] - module) <= slack
    ok &= np.abs(runs[:, 2] - 3 * module) <= 1.5 * slack
    i = np.flatnonzero(ok)
    centre = starts[i] + runs[i, 0] + runs[i, 1] + runs[i, 2] / 2
    return np.stack([rows[i], centre, module[i]], axis=1), dark[rows[i], starts[i]]
