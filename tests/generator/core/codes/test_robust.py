"""The robust margin: two independent decoders read the exact text on the image and on phone-like captures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from generator.core.codes import decision, decoders, grids, qr, repair, robust, scan, synthetic, whole_captures

URL = "https://qart.example/r/AbC123"
# The weights of the verifier before logistic-v2 (on today's features): it passed codes at its line that phones
# then missed.
LENIENT = decision.DecisionModel(-5.7383012, (("o_any", 0.98149407), ("f_share", 9.77219657)))


@pytest.fixture(scope="module")
def lenient_pass() -> synthetic.Sample:
    """A code blended into a photo that the lenient verifier passes just over its line (p = 0.53): WeChat reads
    it, zxing does not."""
    sample = synthetic.make_sample("blended", 0.45, seed=3)
    assert scan.verify(sample.gray, sample.content, model=LENIENT, grade=False).scan_probability == pytest.approx(
        0.53, abs=0.01)
    return sample


def test_a_clean_code_holds_the_margin():
    gray = np.asarray(qr.render_control_image(qr.encode(URL), 400).convert("L"))
    held = robust.check(gray, URL)
    assert held.passed and held.image == {"zxing": True, "wechat": True}
    assert held.captures_read == held.needed == robust.NEEDED
    assert held.to_dict()["passed"] is True


def test_a_lenient_pass_does_not_hold_it(lenient_pass):
    held = robust.check(lenient_pass.gray, lenient_pass.content)
    assert not held.passed and held.image == {"zxing": False, "wechat": True}
    assert held.captures == []  # the image itself does not read: no capture is worth the time


def test_a_repaired_lenient_pass_holds_it_on_captures_repair_never_saw(lenient_pass):
    code, border = lenient_pass.code, lenient_pass.border
    grid = grids.grid_from_code(code, lenient_pass.gray.shape[0], border)
    result = repair.repair(Image.fromarray(lenient_pass.gray).convert("RGB"), grid, lenient_pass.content)
    assert result.passed and result.robust.passed and result.after.passed
    held = robust.check(result.image, lenient_pass.content, seed=99)  # other captures than repair's own
    assert held.passed
    assert result.pixels_changed_fraction < 0.15


def test_another_text_is_not_a_read():
    gray = np.asarray(qr.render_control_image(qr.encode(URL), 400).convert("L"))
    held = robust.check(gray, "https://qart.example/r/OTHER1")
    assert not held.passed and held.image == {"zxing": False, "wechat": False}


def test_it_needs_the_captures(monkeypatch):
    # A decoder that reads only the full-size image: the image reads, no capture does.
    gray = np.asarray(qr.render_control_image(qr.encode(URL), 400).convert("L"))

    def full_size_only(view: np.ndarray) -> list[str]:
        return decoders.read_zxing(view) if view.shape == gray.shape else []

    held = robust.check(gray, URL, readers={"zxing": full_size_only, "wechat": decoders.read_wechat})
    assert held.image == {"zxing": True, "wechat": True}
    assert not held.passed and held.captures_read == 0
    assert len(held.captures) == robust.CAPTURES - robust.NEEDED + 1  # stops once it cannot pass


def test_without_a_margin_decoder_nothing_passes():
    gray = np.asarray(qr.render_control_image(qr.encode(URL), 400).convert("L"))
    assert not robust.check(gray, URL, readers={"zbar": decoders.read_zbar}).passed


@pytest.mark.parametrize(("kwargs", "message"), [({"needed": 5}, "needed must be between 0 and 4")])
def test_it_refuses_bad_settings(kwargs, message):
    gray = np.zeros((50, 50), np.uint8)
    with pytest.raises(ValueError, match=message):
        robust.check(gray, URL, **kwargs)


def test_it_refuses_colour_arrays():
    with pytest.raises(ValueError, match="2-D uint8"):
        robust.check(np.zeros((10, 10, 3), np.uint8), URL)


def test_it_takes_one_severity_per_capture():
    gray = np.asarray(qr.render_control_image(qr.encode(URL), 400).convert("L"))
    assert robust.check(gray, URL, severities=robust.HARD_SEVERITIES).passed  # a clean code holds hard captures
    for bad in ((1.0, 1.0), (0.4, 0.6, 0.8, 1.5)):
        with pytest.raises(ValueError, match="severities must be 4 values between 0 and 1"):
            robust.check(gray, URL, severities=bad)


def test_it_needs_the_whole_image_captures_where_asked():
    # A decoder that reads only square views: the code's captures keep the image's shape, the whole image's are
    # tilted onto a background and are not square.
    gray = np.asarray(qr.render_control_image(qr.encode(URL), 400).convert("L"))

    def square_only(view: np.ndarray) -> list[str]:
        return decoders.read_zxing(view) if view.shape[0] == view.shape[1] else []

    readers = {"zxing": square_only, "wechat": decoders.read_wechat}
    assert robust.check(gray, URL, readers=readers).passed  # not asked: not read
    held = robust.check(gray, URL, readers=readers, whole_needed=robust.WHOLE_NEEDED)
    assert held.captures_read >= robust.NEEDED and not held.passed and held.whole_read == 0
    assert len(held.whole_captures) == robust.WHOLE_CAPTURES - robust.WHOLE_NEEDED + 1  # stops once it cannot pass


def test_a_clean_code_holds_the_whole_image_captures():
    gray = np.asarray(qr.render_control_image(qr.encode(URL), 768).convert("L"))
    held = robust.check(gray, URL, whole_needed=robust.WHOLE_CAPTURES)
    assert held.passed and held.whole_read == robust.WHOLE_CAPTURES and held.to_dict()["whole_needed"] == 8


def test_the_whole_image_captures_depend_on_the_text_and_seed_not_the_pixels(monkeypatch):
    seen = []
    real = whole_captures.capture
    monkeypatch.setattr(whole_captures, "capture", lambda rgb, params: seen.append(params) or real(rgb, params))
    for style in ("square", "dots"):
        robust.check(qr.render_control_image(qr.encode(URL), 400, 4, style), URL, whole_needed=robust.WHOLE_NEEDED)
    squares, dots = seen[: len(seen) // 2], seen[len(seen) // 2:]
    assert squares == dots == robust.whole_params(URL, 0)[: len(squares)]
    assert robust.whole_params(URL, 0) != robust.whole_params(URL, 1) != robust.whole_params("https://qart.example/r/x")
    levels = [p.long_side for p in robust.whole_params(URL, 0)[:4]]
    assert levels == sorted(levels, reverse=True) and levels[-1] == 260  # a ramp down to the hardest corner


def test_it_refuses_more_whole_image_captures_than_it_takes():
    with pytest.raises(ValueError, match="whole_needed must be between 0 and 8"):
        robust.check(np.zeros((50, 50), np.uint8), URL, whole_needed=9)
