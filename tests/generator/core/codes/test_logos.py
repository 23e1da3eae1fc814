"""A logo in the centre of a code: level H, a bounded share, clear of every function pattern."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from generator.core.codes import grids, logos, qr

URL = "https://qart.example/r/AbC12345"


@pytest.fixture(scope="module")
def code() -> qr.QRCode:
    return qr.encode(URL, ecc="H")


class TestPlate:
    @pytest.mark.parametrize("share", [logos.MIN_SHARE, logos.DEFAULT_SHARE, logos.MAX_SHARE])
    def test_it_is_centred_within_the_share_and_clear_of_function_patterns(self, code, share):
        plate = logos.plate_for(code, share)
        n = code.matrix.shape[0]
        assert plate.first * 2 + plate.side == n  # centred on whole modules
        assert plate.share <= share and plate.side >= logos.MIN_PLATE_MODULES
        assert not (logos.protected(code) & plate.modules()).any()

    def test_protected_modules_include_the_timing_patterns(self, code):
        keep = logos.protected(code)
        assert keep[6, :].all() and keep[:, 6].all() and keep[:7, :7].all()

    def test_it_takes_the_largest_plate_the_share_allows(self, code):
        assert logos.plate_for(code, logos.MAX_SHARE).side > logos.plate_for(code, logos.DEFAULT_SHARE).side

    def test_it_needs_level_h(self):
        with pytest.raises(logos.LogoError, match="level H"):
            logos.plate_for(qr.encode(URL, ecc="M"))

    @pytest.mark.parametrize("share", [0.0, 0.35])
    def test_it_refuses_a_share_out_of_range(self, code, share):
        with pytest.raises(logos.LogoError, match="between 6% and 20%"):
            logos.plate_for(code, share)

    def test_a_version_with_an_alignment_pattern_in_the_centre_has_no_room(self):
        long = qr.encode(URL + "/" + "x" * 40, ecc="H", max_version=40)
        assert long.version >= 7
        with pytest.raises(logos.LogoError) as refused:
            logos.plate_for(long)
        assert str(refused.value) == (
            "No room for a logo: this link makes a code so large that it has a fixed marker in its centre, where the "
            "logo would go. Use a shorter link (a campaign placement's tracked short link fits), or no logo.")


class TestDraw:
    def test_it_draws_a_white_plate_with_the_logo_inside_its_margin(self, code):
        size, border = 396, 4
        grid = grids.grid_from_code(code, size, border)
        plate = logos.plate_for(code)
        image = qr.render_control_image(code, size, border)
        drawn = np.asarray(logos.draw(image, grid, plate, Image.new("RGB", (50, 20), (200, 0, 0))))
        left, top, right, bottom = logos.plate_box(grid, plate)
        inset = round(logos.MARGIN_MODULES * grid.pitch)
        box = drawn[top:bottom, left:right]
        red = (box[..., 0] > 150) & (box[..., 1] < 60)
        assert red.any() and (box[~red] >= 200).all()  # the logo on white, nothing of the code left
        rows, cols = np.nonzero(red)
        assert cols.min() >= inset and cols.max() < right - left - inset  # the margin is white
        assert rows.min() >= inset and rows.max() < bottom - top - inset
        outside = ~logos.plate_pixels(grid, plate)
        assert np.array_equal(drawn[outside], np.asarray(image.convert("RGB"))[outside])  # nothing else touched
