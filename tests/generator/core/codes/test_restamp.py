"""Restamp: art re-rendered to carry a labeling link, as hard to scan as before."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from generator.core.codes import decoders, grids, qr, restamp, scan, synthetic

CONTENT = "https://qart.example/r/AbC12345"
PREFIX = "http://127.0.0.1:8000/l/"
TOKEN = "AbCdEfGhIjKl"
SIZE = 512


@pytest.fixture(scope="module")
def code() -> qr.QRCode:
    return qr.encode(CONTENT, "H")


@pytest.fixture(scope="module")
def link(code) -> str:
    return restamp.fit_link(PREFIX, TOKEN, "H", code.version)


def blended(code: qr.QRCode, strength: float, seed: int) -> Image.Image:
    """The code blended into a seeded texture, like the verifier's calibration set: 0 is clean, 1 is gone."""
    rng = np.random.default_rng(seed)
    base = np.asarray(qr.render_control_image(code, SIZE).convert("L"), np.float32)
    alpha = np.clip((1 - strength) * synthetic.centre_weights(code, SIZE, 4), 0, 1)
    gray = synthetic.texture(rng, SIZE) * (1 - alpha) + base * alpha
    return Image.fromarray(np.clip(gray + 0.5, 0, 255).astype(np.uint8)).convert("RGB")


class TestFitLink:
    def test_it_keeps_the_whole_token_when_it_fits(self):
        assert restamp.fit_link(PREFIX, TOKEN, "L", 4) == PREFIX + TOKEN

    def test_it_shortens_the_token_to_the_versions_room(self, code):
        link = restamp.fit_link(PREFIX, TOKEN, "H", code.version)
        assert link.startswith(PREFIX) and TOKEN.startswith(link.removeprefix(PREFIX))
        assert restamp.MIN_TOKEN_LENGTH <= len(link) - len(PREFIX) < len(TOKEN)
        assert qr.encode(link, "H").version <= code.version
        assert qr.encode(link + "x", "H").version > code.version  # nothing more would fit

    def test_it_gives_up_when_the_token_cannot_fit(self):
        assert restamp.fit_link(PREFIX, TOKEN, "H", 1) is None


class TestEncodeAtVersion:
    def test_it_keeps_a_larger_version_than_the_content_needs(self):
        assert restamp.encode_at_version("hi", "H", 5).version == 5
        assert restamp.encode_at_version("hi", "H", 5).size == 37

    def test_it_picks_the_mask_that_flips_fewest_modules(self, code, link):
        chosen = restamp.encode_at_version(link, "H", code.version, like=code.matrix)
        by_penalty = restamp.encode_at_version(link, "H", code.version)
        assert (chosen.matrix != code.matrix).sum() <= (by_penalty.matrix != code.matrix).sum()
        assert decoders.read_zxing(np.asarray(qr.render_control_image(chosen, 300).convert("L"))) == [link]

    def test_it_refuses_content_that_does_not_fit(self):
        with pytest.raises(restamp.RestampError) as refused:
            restamp.encode_at_version("x" * 40, "H", 1)
        # said on the placement page: how many fit, not "a version-1 level-H code"
        assert str(refused.value) == ("The link's 40 characters do not fit in this picture's code, which holds at "
                                      "most 7 characters like these.")


class TestRestamp:
    def test_it_makes_a_clean_code_carry_the_new_link_only(self, code, link):
        result = restamp.restamp(qr.render_control_image(code, SIZE), CONTENT, link, ecc="H")
        assert result.code.version == code.version and result.modules_changed > 0
        assert decoders.read_zxing(np.asarray(result.image.convert("L"))) == [link]
        verdict = scan.verify(result.image, link)
        assert verdict.passed and not verdict.misread  # no reader still sees the old link

    def test_a_link_that_needs_a_smaller_version_is_checked_at_the_codes_version(self, code):
        # Art made for a lower-case link (version 4) restamped with its placement's link in capitals (alone it
        # needs version 3): the check found no code of version 3 in it and failed every such restamp.
        # Dots at 256 px, as art made from a control image: zxing-cpp locates the symbol there without decoding it.
        capitals = "HTTPS://QART.EXAMPLE/R/K7QW2M9XHT"
        assert qr.encode(capitals).version < code.version
        grid = grids.grid_from_control(qr.render_control_image(code, 256))
        made = restamp.restamp(qr.render_control_image(code, 256, style="dots"), CONTENT, capitals, ecc="H", grid=grid)
        assert made.code.version == code.version
        result = scan.verify(made.image, capitals)
        assert result.passed and result.features["g_found"] == 1.0

    def test_it_uses_the_grid_of_a_control_image(self, code, link):
        control = qr.render_control_image(code, 600, border=2, style="dots")
        grid = grids.grid_from_control(control)
        result = restamp.restamp(control.resize((400, 400)), CONTENT, link, grid=grid)
        assert decoders.read_zxing(np.asarray(result.image.convert("L"))) == [link]

    def test_it_keeps_a_weak_image_weak(self, code, link):
        art = blended(code, 0.8, seed=3)
        before = scan.verify(art, CONTENT)
        assert not before.passed  # the premise: people would struggle with this one
        after = scan.verify(restamp.restamp(art, CONTENT, link).image, link)
        assert after.scan_probability < scan.DEFAULT_THRESHOLD

    def test_it_keeps_a_strong_image_strong(self, code, link):
        art = blended(code, 0.6, seed=3)
        assert scan.verify(art, CONTENT).passed
        assert scan.verify(restamp.restamp(art, CONTENT, link).image, link).passed

    def test_it_leaves_the_pixels_of_unchanged_modules_alone(self, code, link):
        art = blended(code, 0.6, seed=3)
        result = restamp.restamp(art, CONTENT, link)
        grid = grids.grid_from_code(code, SIZE, 4)
        moved = np.abs(grids.module_luminance(result.image, grid) - grids.module_luminance(art, grid)) > 1
        assert (moved == (result.code.matrix != code.matrix)).all()

    def test_it_refuses_a_grid_of_another_code(self, link):
        other = grids.grid_from_control(qr.render_control_image(qr.encode("https://other.example/r/zz"), 300))
        with pytest.raises(restamp.RestampError, match="does not carry the code"):
            restamp.restamp(Image.new("RGB", (300, 300), "white"), CONTENT, link, grid=other)

    def test_it_refuses_a_link_too_long_for_the_version(self, code):
        with pytest.raises(restamp.RestampError, match="do not fit"):
            restamp.restamp(qr.render_control_image(code, 300), CONTENT, PREFIX + "x" * 80)
