from __future__ import annotations

import numpy as np
import pytest

from generator.core.codes import grading, qr, synthetic


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
    assert [s.family for s in a] == [f for f in synthetic.FAMILIES for _ in range(2 * synthetic.FAMILY_SHARE.get(f, 1))]
    assert all(np.array_equal(x.gray, y.gray) and x.label == y.label for x, y in zip(a, b, strict=True))


def test_it_rejects_an_unknown_family():
    with pytest.raises(ValueError, match="family"):
        synthetic.make_sample("smudged", 0.5, seed=1)


def test_it_labels_strong_art_readable_and_faint_art_unreadable():
    assert sum(synthetic.make_sample("art", 0.0, seed=s).label for s in range(6)) >= 5
    assert not any(synthetic.make_sample("art", 0.8, seed=s).label for s in range(6))


def test_art_is_textured_inside_its_modules():
    # Fine texture inside modules is what confuses a phone binarising at full resolution: a dark module's pixels
    # spread far more than a clean render's, whose modules are flat.
    sample = synthetic.make_sample("art", 0.3, seed=2)
    code, border = sample.code, sample.border
    pitch = sample.gray.shape[0] / (code.size + 2 * border)
    row, col = np.argwhere(code.matrix & ~code.function_mask)[10]
    y, x = int((border + row) * pitch), int((border + col) * pitch)
    core = sample.gray[y + int(pitch / 4) : y + int(3 * pitch / 4), x + int(pitch / 4) : x + int(3 * pitch / 4)]
    assert core.std() > 3


class TestReferenceReader:
    def render(self, text: str = "finders") -> tuple[qr.QRCode, np.ndarray]:
        code = qr.encode(text)
        return code, np.asarray(qr.render_control_image(code, 400).convert("L")).copy()

    def test_it_needs_all_three_finders(self):
        code, gray = self.render()
        assert synthetic.reference_read(gray, code)
        pitch = 400 / (code.size + 8)
        top, left = int(4 * pitch), int((4 + code.size - 7) * pitch)
        gray[top : top + int(7 * pitch), left : left + int(7 * pitch)] = 255  # the top-right finder painted over
        assert not synthetic.reference_read(gray, code)

    def test_it_needs_light_beyond_a_finder(self):
        code, gray = self.render()
        pitch = 400 / (code.size + 8)
        gray[: int(4 * pitch), : int(12 * pitch)] = 0  # the picture runs dark up to the top-left finder
        assert not synthetic.reference_read(gray, code)

    def test_it_needs_error_correction_to_spare(self):
        # Level H, version 1: one block of 17 error-correction codewords, one kept for misdecode protection, so 8
        # wrong codewords are the most it corrects. The phone-like reader wants a codeword to spare: 7, not 8.
        code = qr.encode("spare", ecc="H")
        layout = grading.codeword_layout(code.version, code.ecc)
        assert layout.blocks == [(17, 1)]
        for wrong, readable in ((7, True), (8, False)):
            matrix = code.matrix.copy()
            for word in range(wrong):
                row, col = np.argwhere(layout.codeword == word)[0]
                matrix[row, col] = ~matrix[row, col]
            modules = np.pad(np.where(matrix, 0, 255).astype(np.uint8), 4, constant_values=255)
            gray = np.kron(modules, np.ones((16, 16), np.uint8))
            assert synthetic.reference_read(gray, code) is readable
