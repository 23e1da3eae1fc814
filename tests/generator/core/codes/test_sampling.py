from __future__ import annotations

import numpy as np
import pytest

from generator.core.codes import qr, sampling

URL = "https://qart.example/r/AbC123"
SIZE, BORDER = 768, 4


@pytest.fixture(scope="module")
def code() -> qr.QRCode:
    return qr.encode(URL)


def render(code: qr.QRCode, border: int = BORDER) -> np.ndarray:
    return np.asarray(qr.render_control_image(code, SIZE, border=border).convert("L")).copy()


def corners(located: sampling.Located) -> np.ndarray:
    n = located.code.size
    return sampling._map(located.homography, np.array([[0, 0], [n, 0], [n, n], [0, n]]))


class TestLocate:
    def test_it_places_the_grid_by_zxings_corners(self, code):
        located = sampling.locate(render(code), URL)
        pitch = SIZE / (code.size + 2 * BORDER)
        edge = BORDER * pitch - 0.5  # pixel centres: pixel i covers [i - 0.5, i + 0.5)
        assert located.located_by == "zxing"
        assert located.code.version == code.version and located.code.mask == code.mask
        far = SIZE - 1 - edge
        np.testing.assert_allclose(corners(located), [[edge, edge], [far, edge], [far, far], [edge, far]], atol=0.6)

    def test_it_matches_the_matrix_where_no_decoder_locates_the_code(self, code):
        gray = render(code)
        gray[70:210, 70:210] = 255  # the top-left finder painted over
        located = sampling.locate(gray, URL)
        assert located.located_by == "match"
        np.testing.assert_allclose(corners(located), corners(sampling.locate(render(code), URL)), atol=1.0)
        assert not (located.sampled.read_dark[7:, 7:] != code.matrix[7:, 7:]).any()  # every other module reads right

    def test_it_reads_every_module_of_a_clean_code(self, code):
        sampled = sampling.locate(render(code), URL).sampled
        assert (sampled.read_dark == code.matrix).all()
        assert sampled.contrast == pytest.approx(1.0) and sampled.threshold == pytest.approx(0.5)
        assert not sampled.inverted and sampled.inside.all()

    def test_it_inverts_a_light_on_dark_code(self, code):
        sampled = sampling.locate(255 - render(code), URL).sampled
        assert sampled.inverted and (sampled.read_dark == code.matrix).all()

    def test_it_finds_nothing_in_noise_or_for_another_text(self, code):
        assert sampling.locate(np.random.default_rng(0).integers(0, 256, (SIZE, SIZE), dtype=np.uint8), URL) is None
        assert sampling.locate(render(code), "something else entirely") is None

    def test_it_refuses_text_no_qr_code_carries(self, code):
        assert sampling.locate(render(code), "x" * 5000) is None
        assert sampling.encodings("x" * 5000) == []

    def test_it_measures_a_square_grid_as_uniform(self, code):
        grid = sampling.locate(render(code), URL).grid
        assert grid.axial < 0.01 and grid.deviation < 0.1


class TestQuietMargin:
    @pytest.mark.parametrize("border", [0, 1, 2, 3, 4, 6])
    def test_it_counts_clear_modules_up_to_four(self, code, border):
        assert sampling.locate(render(code, border), URL).sampled.quiet_margin()[0] == min(border, 4)

    def test_it_names_the_narrowest_side(self, code):
        gray = np.full((SIZE, SIZE + 300), 255, np.uint8)
        gray[:, 300:] = render(code)
        gray[:, :300] = 0  # a dark picture left of the code, right up to its quiet zone
        pitch = SIZE / (code.size + 2 * BORDER)
        gray[:, : 300 + round(2 * pitch)] = 0  # ...and two modules into it
        assert sampling.locate(gray, URL).sampled.quiet_margin() == (2, "left")
