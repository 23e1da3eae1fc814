"""Captures of the whole image at phone size: the model repair's margin and the benches' captures share."""

from __future__ import annotations

import numpy as np

from generator.core.codes import qr, whole_captures


def rgb_code() -> np.ndarray:
    return np.asarray(qr.render_control_image(qr.encode("whole"), 768).convert("RGB"))


def test_it_shrinks_the_whole_image_to_phone_size_on_a_background():
    params = whole_captures.draw(np.random.default_rng(1), level=1.0)
    view = whole_captures.capture(rgb_code(), params)
    assert view.dtype == np.uint8 and view.ndim == 2
    assert params.long_side == 260 and params.sigma == 1.5 and params.quality == 50  # the ramp's hardest corner
    assert 260 < max(view.shape) < 400  # the image's longer side, and the background around it


def test_it_ramps_from_mild_to_hard():
    mild, hard = (whole_captures.draw(np.random.default_rng(2), level) for level in (0.0, 1.0))
    assert (mild.long_side, mild.tilt_deg, mild.sigma) == (400, 5.0, 0.5)
    assert (hard.long_side, hard.tilt_deg, hard.sigma) == (260, 25.0, 1.5)


def test_it_is_reproducible_per_params():
    params = whole_captures.draw(np.random.default_rng(3))
    assert np.array_equal(whole_captures.capture(rgb_code(), params), whole_captures.capture(rgb_code(), params))


def test_it_takes_a_grey_image_as_grey_rgb():
    params = whole_captures.draw(np.random.default_rng(4))
    gray = rgb_code()[..., 0]
    assert np.array_equal(whole_captures.capture(gray, params), whole_captures.capture(rgb_code(), params))
