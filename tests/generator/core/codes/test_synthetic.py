from __future__ import annotations

import numpy as np
import pytest

from generator.core.codes import qr, synthetic


def test_it_labels_clean_codes_readable():
    assert all(synthetic.make_sample("clean", 0.0, seed=s).label for s in range(5))


def test_it_labels_heavy_corruption_unreadable():
    assert not any(synthetic.make_sample("corrupted", 1.0, seed=s).label for s in range(5))


def test_it_labels_flat_grey_unreadable():
    assert not synthetic.make_sample("low-contrast", 1.0, seed=3).label


def test_reference_reader_needs_the_exact_text():
    code = qr.encode("exact")
    gray = np.asarray(qr.render_control_image(code, 400).convert("L"))
    assert synthetic.reference_read(gray, code)
    assert not synthetic.reference_read(gray, qr.encode("exacT"))


def test_reference_reader_reads_inverted_codes():
    code = qr.encode("inverted")
    gray = 255 - np.asarray(qr.render_control_image(code, 400).convert("L"))
    assert synthetic.reference_read(gray, code)


def test_it_is_reproducible_and_covers_every_family():
    a = synthetic.calibration_set(2, seed=4, size=256)
    b = synthetic.calibration_set(2, seed=4, size=256)
    assert [s.family for s in a] == [f for f in synthetic.FAMILIES for _ in range(2)]
    assert all(np.array_equal(x.gray, y.gray) and x.label == y.label for x, y in zip(a, b, strict=True))


def test_it_rejects_an_unknown_family():
    with pytest.raises(ValueError, match="family"):
        synthetic.make_sample("smudged", 0.5, seed=1)
