from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from generator.core.codes import grids, qr, synthetic

URL = "https://qart.example/r/AbC123"
SIZE = 400
CONTENTS = {  # content -> the version it encodes to at level H
    "hi": 1,
    "https://x.ex/a": 2,
    "https://qart.example/r/1": 3,
    URL: 4,
    "https://qart.example/r/AbC123456789": 5,
    "https://qart.example/r/AbC123456789AbC123456789abc": 6,
}


class TestGridFromControl:
    @pytest.mark.parametrize(
        ("border", "style", "background"), list(itertools.product((0, 2, 4, 6), qr.STYLES, qr.BACKGROUNDS))
    )
    def test_it_recovers_the_matrix_of_any_render(self, border, style, background):
        # Cycle versions and sizes through the combinations so every one is met without a full product.
        index = (border // 2) * 6 + qr.STYLES.index(style) * 2 + list(qr.BACKGROUNDS).index(background)
        content = list(CONTENTS)[index % 6]
        size = (300, 512, 768, 1000)[index % 4]
        code = qr.encode(content)
        grid = grids.grid_from_control(qr.render_control_image(code, size, border, style, background))
        assert grid.version == CONTENTS[content] == code.version
        assert np.array_equal(grid.matrix, code.matrix)
        assert np.array_equal(grid.function_mask, code.function_mask)
        expected = grids.grid_from_code(code, size, border)
        assert abs(grid.pitch - expected.pitch) * code.size < 1.5  # the code's width to within 1.5 px
        assert abs(grid.origin_x - expected.origin_x) <= 0.75 and abs(grid.origin_y - expected.origin_y) <= 0.75

    @pytest.mark.parametrize("content", list(CONTENTS))
    def test_it_reads_versions_1_to_6(self, content):
        code = qr.encode(content)
        grid = grids.grid_from_control(qr.render_control_image(code, 512, 4, "dots", "grey"))
        assert (grid.version, grid.size) == (CONTENTS[content], 17 + 4 * CONTENTS[content])
        assert np.array_equal(grid.matrix, code.matrix)

    def test_it_fits_the_grid_to_a_smaller_image(self):
        code = qr.encode(URL)
        grid = grids.grid_from_control(qr.render_control_image(code, 768, 4)).fitted_to(512, 512)
        expected = grids.grid_from_code(code, 512, 4)
        assert (grid.width, grid.height) == (512, 512)
        assert grid.pitch == pytest.approx(expected.pitch, abs=0.02)
        assert grid.origin_x == pytest.approx(expected.origin_x, abs=0.5)

    def test_it_refuses_an_image_of_another_shape(self):
        grid = grids.grid_from_code(qr.encode(URL), 768, 4)
        with pytest.raises(grids.RepairError, match="must have the same shape"):
            grid.fitted_to(512, 300)

    def test_it_refuses_a_blank_image(self):
        with pytest.raises(grids.RepairError, match="no dark pixels"):
            grids.grid_from_control(Image.new("RGB", (300, 300), "white"))

    def test_it_refuses_a_black_square(self):
        image = Image.new("RGB", (300, 300), "white")
        image.paste((0, 0, 0), (50, 50, 250, 250))
        with pytest.raises(grids.RepairError, match="no QR version"):
            grids.grid_from_control(image)

    def test_it_refuses_a_picture(self):
        picture = synthetic.texture(np.random.default_rng(0), 300).astype(np.uint8)
        with pytest.raises(grids.RepairError, match="QR"):
            grids.grid_from_control(Image.fromarray(picture))

    def test_it_refuses_a_code_with_broken_timing(self):
        code = qr.encode(URL)
        image = qr.render_control_image(code, 330, 0)  # 10 px modules
        image.paste((0, 0, 0), (90, 60, 100, 70))  # row 6, col 9: a light timing module painted dark
        with pytest.raises(grids.RepairError, match="timing patterns"):
            grids.grid_from_control(image)


class TestGrid:
    def test_it_adds_a_light_quiet_ring_marked_next_to_the_finders(self):
        grid = grids.grid_from_code(qr.encode(URL), SIZE, 4)
        ringed = grid.with_quiet_ring()
        n = grid.size
        assert ringed.size == n + 2 and not ringed.matrix[0].any() and not ringed.matrix[:, -1].any()
        assert ringed.function_mask[0, :9].all() and ringed.function_mask[0, n - 7 :].all()
        assert not ringed.function_mask[-1, 10:].any()  # no finder in the bottom-right corner
        assert ringed.centres()[0][0, 1] == pytest.approx(grid.centres()[0][0, 0])


class TestModuleLuminance:
    def test_it_samples_each_module_centre(self):
        code = qr.encode(URL)
        image = qr.render_control_image(code, SIZE, 4, "dots", "grey")
        luminance = grids.module_luminance(image, grids.grid_from_code(code, SIZE, 4))
        assert (luminance[code.matrix] < 10).all() and (luminance[~code.matrix] > 245).all()
