from __future__ import annotations

import cv2
import numpy as np
import pytest
import qrcode

from generator.core.codes import grading, qr

URL = "https://qart.example/r/AbC123"
SIZE, BORDER = 768, 4


@pytest.fixture(scope="module")
def code() -> qr.QRCode:
    return qr.encode(URL)  # version 4, level H: four blocks of 9 data and 16 error-correction codewords


def render(code: qr.QRCode, **kwargs) -> np.ndarray:
    return np.asarray(qr.render_control_image(code, SIZE, **kwargs).convert("L")).copy()


def module_box(row: int, col: int, code: qr.QRCode, border: int = BORDER) -> tuple[slice, slice]:
    """Pixel rows and columns of module (row, col) in `render(code)`."""
    pitch = SIZE / (code.size + 2 * border)
    return (slice(round((border + row) * pitch), round((border + row + 1) * pitch)),
            slice(round((border + col) * pitch), round((border + col + 1) * pitch)))


def flip_centre(gray: np.ndarray, row: int, col: int, code: qr.QRCode) -> None:
    """Paint a module's centre the opposite colour, as a blot of ink (the synthetic 'corrupted' family does this)."""
    pitch = SIZE / (code.size + 2 * BORDER)
    centre = (int((BORDER + col + 0.5) * pitch), int((BORDER + row + 0.5) * pitch))
    cv2.circle(gray, centre, int(pitch * 0.32), 255 if code.matrix[row, col] else 0, -1)


def every_third_dark_data_centre(code: qr.QRCode) -> list[tuple[int, int]]:
    """Pixel (x, y) centres in `render(code)` of every third dark module that carries data."""
    pitch = SIZE / (code.size + 2 * BORDER)
    layout = grading.codeword_layout(code.version, code.ecc)
    return [(int((BORDER + col + 0.5) * pitch), int((BORDER + row + 0.5) * pitch))
            for row, col in np.argwhere(code.matrix & (layout.codeword >= 0))[::3]]


def codes_of(grading_: grading.Grading) -> list[str]:
    return [reason["code"] for reason in grading_.reasons]


def jargon(grading_: grading.Grading) -> list[str]:
    """The reason texts that use "module": the job page shows them to people who call them squares."""
    return [reason["text"] for reason in grading_.reasons if "module" in reason["text"]]


class TestGrade:
    @pytest.mark.parametrize(("style", "background"), [("square", "white"), ("rounded", "white"), ("dots", "grey")])
    def test_it_grades_a_clean_code_a_everywhere_without_reasons(self, code, style, background):
        result = grading.grade(render(code, style=style, background=background), URL)
        assert result.grades == dict.fromkeys(grading.GRADE_NAMES, "A")
        assert result.reasons == []
        assert result.located_by == "zxing"
        assert result.measures["module_errors"] == 0 and result.measures["ec_used"] == 0.0

    def test_it_grades_the_decoded_text_without_an_expectation(self, code):
        assert grading.grade(render(code), None, [URL]).grades == dict.fromkeys(grading.GRADE_NAMES, "A")

    def test_it_grades_a_light_on_dark_code(self, code):
        result = grading.grade(255 - render(code), URL)
        assert result.grades == dict.fromkeys(grading.GRADE_NAMES, "A") and result.reasons == []

    @pytest.mark.parametrize(("name", "corner"),
                             [("top-left", (0, 0)), ("top-right", (0, 26)), ("bottom-left", (26, 0))])
    def test_it_says_which_finder_is_damaged(self, code, name, corner):
        gray = render(code)
        rows, _ = module_box(corner[0], 0, code)
        _, cols = module_box(0, corner[1], code)
        top, left = rows.start, cols.start
        pitch = SIZE / (code.size + 2 * BORDER)
        gray[top : top + round(7 * pitch), left : left + round(7 * pitch)] = 255  # painted over
        result = grading.grade(gray, URL)
        assert result.located_by == "match"  # no decoder locates a code with two finders
        assert codes_of(result) == ["finder_damaged"]
        assert result.reasons[0]["text"].startswith(f"The {name} finder pattern")
        assert result.grades["fixed_pattern"] == "F"
        assert result.measures[f"finder_errors_{name}"] == int(code.matrix[:7, :7].sum())  # every dark module lost
        assert {k: v for k, v in result.grades.items() if k != "fixed_pattern"} == dict.fromkeys(
            ["contrast", "modulation", "grid", "unused_ec"], "A")

    @pytest.mark.parametrize(("wrong", "grade"), [(1, "B"), (2, "C"), (3, "D"), (4, "F")])
    def test_it_grades_a_finder_by_its_wrong_modules(self, code, wrong, grade):
        gray = render(code)
        for col in range(2, 2 + wrong):  # flip modules of the top-left finder's dark core, then its light ring
            box = module_box(3, col, code)
            gray[box] = 255 - gray[box]
        result = grading.grade(gray, URL)
        assert result.measures["finder_errors_top-left"] == wrong
        assert result.grades["fixed_pattern"] == grade
        assert codes_of(result) == (["finder_damaged"] if grade in "DF" else [])  # C is still acceptable

    @pytest.mark.parametrize(("border", "grade", "text"),
                             [(0, "F", "none on the top side"), (2, "C", "2 on the top side")])
    def test_it_flags_a_quiet_zone_under_four_modules(self, code, border, grade, text):
        gray = np.asarray(qr.render_control_image(code, SIZE, border=border).convert("L"))
        result = grading.grade(gray, URL)
        assert codes_of(result) == ["quiet_zone"]
        assert result.reasons[0]["text"] == f"The white border around the code is narrower than 4 squares ({text})."
        assert result.grades["fixed_pattern"] == grade and result.measures["quiet_zone_modules"] == border

    def test_it_flags_a_picture_in_the_quiet_zone(self, code):
        gray = render(code)
        rows, _ = module_box(0, 0, code)
        gray[rows.start - 16 : rows.start - 3, 200:400] = 0  # a dark stroke one module above the code
        result = grading.grade(gray, URL)
        assert codes_of(result) == ["quiet_zone"] and "on the top side" in result.reasons[0]["text"]

    def test_it_flags_a_damaged_timing_pattern(self, code):
        gray = render(code)
        for col in range(8, 8 + 4):  # four of the top timing pattern's 13 modules flipped: 31 %
            box = module_box(6, col, code)
            gray[box] = 255 - gray[box]
        result = grading.grade(gray, URL)
        assert result.measures["timing_errors_top"] == pytest.approx(4 / (code.size - 16), abs=1e-4)
        assert result.grades["fixed_pattern"] == "F"
        assert codes_of(result) == ["timing_damaged"]
        assert result.reasons[0]["text"].startswith("The top timing pattern")

    def test_it_reads_texture_inside_modules_sharply(self, code):
        # A light speck at the centre of dark modules: the central third's mean still reads dark (no error for
        # the grades), but a phone binarising at full resolution reads the speck's pixel light.
        gray = render(code)
        for x, y in every_third_dark_data_centre(code):
            gray[y - 1 : y + 2, x - 1 : x + 2] = 255
        result = grading.grade(gray, URL)
        assert result.measures["ec_used"] == 0.0 and result.grades["unused_ec"] == "A"
        assert result.measures["ec_used_sharp"] == 1.0
        assert grading.grade(render(code), URL).measures["ec_used_sharp"] == 0.0

    def test_it_reads_modules_a_little_off_their_centre(self, code):
        # A light ring around a dark centre in every third dark data module: each centre reads dark, read from
        # its middle or at full resolution, but a grid a ninth of a module out samples the ring.
        gray = render(code)
        for x, y in every_third_dark_data_centre(code):
            cv2.circle(gray, (x, y), 3, 255, 1)
        result = grading.grade(gray, URL)
        assert result.measures["ec_used_sharp"] == 0.0 and result.grades["unused_ec"] == "A"
        assert result.measures["ec_used_jitter"] == 1.0
        assert "off_centre" in codes_of(result)
        assert not jargon(result)
        clean = grading.grade(render(code), URL)
        assert clean.measures["ec_used_jitter"] == 0.0 and "off_centre" not in codes_of(clean)

    def test_it_counts_the_finders_a_phone_would_find(self, code):
        assert grading.grade(render(code), URL).measures["finders_clear"] == 3
        gray = render(code)
        rows, cols = module_box(-1, 0, code)  # the quiet-zone row just above the top-left finder, painted dark
        gray[rows, : cols.start + round(8 * SIZE / (code.size + 2 * BORDER))] = 0
        assert grading.grade(gray, URL).measures["finders_clear"] == 2

    @pytest.mark.parametrize(("dark", "light", "grade"), [(100, 160, "D"), (115, 145, "F"), (40, 200, "B")])
    def test_it_grades_symbol_contrast(self, code, dark, light, grade):
        gray = np.where(render(code) < 128, dark, light).astype(np.uint8)  # grey on grey
        result = grading.grade(gray, URL)
        assert result.grades["contrast"] == grade
        assert result.measures["symbol_contrast"] == pytest.approx((light - dark) / 255, abs=0.01)
        assert ("low_contrast" in codes_of(result)) == (grade in "DF")
        assert result.grades["modulation"] == "A"  # modulation is relative to the contrast there is

    @pytest.mark.parametrize(("per_block", "used", "grade"),  # UEC 0.625, 0.5, 0.375, 0.25, 0.125, 0: at each limit
                             [(3, 0.375, "A"), (4, 0.5, "B"), (5, 0.625, "C"), (6, 0.75, "D"), (7, 0.875, "F"),
                              (9, 1.0, "F")])
    def test_it_counts_error_correction_used_per_block(self, code, per_block, used, grade):
        layout = grading.codeword_layout(code.version, code.ecc)
        gray = render(code)
        # Spoil `per_block` codewords of every block, one module each: 2t / d = 2 * per_block / 16 of its EC.
        for block in range(len(layout.blocks)):
            for word in np.flatnonzero(layout.block == block)[:per_block]:
                row, col = np.argwhere(layout.codeword == word)[0]
                flip_centre(gray, row, col, code)
        result = grading.grade(gray, URL)
        assert result.measures["ec_used"] == pytest.approx(used)
        assert result.measures["module_errors"] == per_block * len(layout.blocks)
        assert result.grades["unused_ec"] == grade
        said = [r["text"] for r in result.reasons if r["code"] == "ec_used"]
        if used == 1.0:
            assert said == ["Read at the centre of each square, more squares come out wrong than the code's built-in "
                            "error correction can repair: some phones may still read it, with no room left for a poor "
                            "print or blur."]
        elif grade in "DF":
            assert said == [f"The code uses {round(100 * used)} % of its error correction, leaving little room "
                            "for a poor print or a shaky phone."]
        else:
            assert said == []

    def test_it_lowers_modulation_when_modules_sit_near_the_threshold(self, code):
        gray = render(code)
        layout = grading.codeword_layout(code.version, code.ecc)
        for block in range(len(layout.blocks)):  # nine codewords of each block half-way to grey
            for word in np.flatnonzero(layout.block == block)[:9]:
                row, col = np.argwhere(layout.codeword == word)[0]
                box = module_box(row, col, code)
                gray[box] = 110 if code.matrix[row, col] else 145
        result = grading.grade(gray, URL)
        assert result.grades["modulation"] in "DF" and "low_modulation" in codes_of(result)
        assert not jargon(result)
        assert result.grades["contrast"] == "A"

    def test_it_grades_a_stretched_code_down_on_the_grid(self, code):
        gray = cv2.resize(render(code), (SIZE, int(SIZE * 0.85)), interpolation=cv2.INTER_AREA)
        result = grading.grade(gray, URL)
        assert result.measures["axial_nonuniformity"] == pytest.approx(0.15 / 0.925, abs=0.01)
        assert result.grades["grid"] == "F" and "grid_distorted" in codes_of(result)
        assert not jargon(result)

    @pytest.mark.parametrize("image", ["noise", "blank"])
    def test_it_says_not_found_where_there_is_no_code(self, image):
        gray = np.full((SIZE, SIZE), 255, np.uint8)
        if image == "noise":
            gray = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
        result = grading.grade(gray, URL)
        assert result.grades == dict.fromkeys(grading.GRADE_NAMES, "F")
        assert result.reasons == [{"code": "not_found", "text": "No QR code carrying the expected text could be found "
                                                               "in the image."}]

    def test_it_does_not_take_a_neighbouring_short_link_for_the_expected_one(self, code):
        # Short links share all but a few codewords, so their matrices correlate well: the decoded one is not it.
        result = grading.grade(render(code), "https://qart.example/r/XyZ789")
        assert codes_of(result) == ["not_found"]

    def test_it_needs_a_text_to_grade(self, code):
        assert codes_of(grading.grade(render(code))) == ["not_found"]
        assert grading.grade(render(code)).reasons[0]["text"] == "No QR code could be found in the image."

    def test_it_refuses_colour_arrays(self, code):
        with pytest.raises(ValueError, match="2-D uint8"):
            grading.grade(np.zeros((10, 10, 3), np.uint8), URL)


class TestLetter:
    def test_the_limits_are_the_documented_ones(self):
        # The module docstring quotes these (15415 and 18004); a change must change both.
        assert grading.CONTRAST == (0.70, 0.55, 0.40, 0.20)
        assert grading.MODULATION == (0.50, 0.40, 0.30, 0.20)
        assert grading.UNUSED_EC == (0.62, 0.50, 0.37, 0.25)
        assert grading.AXIAL == (0.06, 0.08, 0.10, 0.12)
        assert grading.GRID == (0.38, 0.50, 0.63, 0.75)
        assert grading.FINDER_ERRORS == (0, 1, 2, 3)
        assert grading.TIMING_ERRORS == (0.0, 0.07, 0.11, 0.14)
        assert grading.QUIET_ZONE == (4, 3, 2, 1)

    def test_it_grades_at_the_standard_thresholds(self):
        assert [grading.letter(v, grading.CONTRAST) for v in (0.70, 0.69, 0.55, 0.40, 0.20, 0.19)] == [4, 3, 3, 2, 1, 0]
        axial = [grading.letter(v, grading.AXIAL, higher_is_better=False) for v in (0.06, 0.07, 0.12, 0.13)]
        assert axial == [4, 3, 1, 0]
        assert grading.letter(np.array([0.5, 0.1]), grading.MODULATION).tolist() == [4, 0]


class TestCodewordLayout:
    @pytest.mark.parametrize(("version", "ecc"), [(1, "L"), (2, "M"), (4, "H"), (5, "Q"), (7, "M"), (10, "H")])
    def test_it_finds_every_codeword_where_qrcode_put_it(self, version, ecc):
        q = qrcode.QRCode(version=version, error_correction=qr.ECC_LEVELS[ecc], mask_pattern=0, border=0)
        q.add_data("LAYOUT 42")
        q.make(fit=False)
        stream = qrcode.util.create_data(version, qr.ECC_LEVELS[ecc], q.data_list)
        unmasked = np.array(q.modules) ^ np.fromfunction(lambda r, c: (r + c) % 2 == 0, (q.modules_count,) * 2)
        layout = grading.codeword_layout(version, ecc)
        assert layout.codewords == len(stream)
        for word, value in enumerate(stream):  # each codeword's eight modules hold its bits
            assert unmasked[layout.codeword == word].sum() == bin(value).count("1")
            assert (layout.codeword == word).sum() == 8
        blocks = qrcode.base.rs_blocks(version, qr.ECC_LEVELS[ecc])
        assert [ec for ec, _ in layout.blocks] == [b.total_count - b.data_count for b in blocks]
        assert np.bincount(layout.block).tolist() == [b.total_count for b in blocks]
        for block, (ec, _) in enumerate(layout.blocks):  # each block's codewords, in order, are a Reed-Solomon codeword
            words = [stream[k] for k in np.flatnonzero(layout.block == block)]
            generator = qrcode.base.Polynomial([1], 0)
            for i in range(ec):
                generator = generator * qrcode.base.Polynomial([1, qrcode.base.gexp(i)], 0)
            remainder = qrcode.base.Polynomial(words, 0) % generator
            assert not any(remainder[i] for i in range(len(remainder)))

    def test_it_keeps_misdecode_protection_for_the_smallest_codes(self):
        assert grading.codeword_layout(1, "L").blocks == [(7, 3)]
        assert grading.codeword_layout(4, "H").blocks == [(16, 0)] * 4
