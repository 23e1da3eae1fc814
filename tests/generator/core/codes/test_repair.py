from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.core.codes import grids, qr, repair, robust, scan
from tests.generator.core.codes.code_art import SIZE, URL, blended, corrupted

ROOT = Path(__file__).resolve().parents[4]


def chroma(pixels: np.ndarray) -> np.ndarray:
    """The colour offset from grey at the same luminance: its direction is the hue."""
    rgb = pixels.astype(np.float64)
    return rgb - (rgb @ repair.LUMA)[..., None]


def changed_pixels(result: repair.RepairResult, original: Image.Image) -> np.ndarray:
    return (np.asarray(result.image) != np.asarray(original.convert("RGB"))).any(axis=-1)


@pytest.fixture(scope="module")
def art_repair() -> tuple[qr.QRCode, Image.Image, repair.RepairResult]:
    code, image = blended(0)
    return code, image, repair.repair(image, grids.grid_from_code(code, SIZE, 4), URL)


@pytest.fixture(scope="module")
def corrupted_repair() -> tuple[qr.QRCode, Image.Image, set[tuple[int, int]], repair.RepairResult]:
    code, image, flipped = corrupted(1)
    return code, image, flipped, repair.repair(image, grids.grid_from_code(code, SIZE, 4), URL)


class TestSetLuminance:
    def test_it_reaches_the_luminance_and_keeps_the_hue(self):
        rng = np.random.default_rng(0)
        rgb = rng.uniform(0, 255, (500, 3))
        target = rng.uniform(0, 255, 500)
        out = repair.set_luminance(rgb, target)
        assert out @ repair.LUMA == pytest.approx(target, abs=1e-6)
        before, after = chroma(rgb), chroma(out)
        # Same direction (hue), shrunk only where the colour would leave the gamut.
        scale = (after * before).sum(axis=1) / (before * before).sum(axis=1)
        assert np.allclose(after, scale[:, None] * before, atol=1e-6)
        assert ((scale >= -1e-9) & (scale <= 1 + 1e-9)).all()


class TestPushCentres:
    def test_it_pushes_pattern_modules_no_further_than_their_cap(self):
        code = qr.encode(URL)
        grid = grids.grid_from_code(code, SIZE, 4)
        grey = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
        finder = (3, 3)  # the top-left finder's centre, dark
        data = next((int(r), int(c)) for r, c in np.argwhere(code.matrix & ~code.function_mask))
        pushed = np.asarray(repair.push_centres(grey, grid, [finder, data], 128).convert("L"), np.float64)
        threshold = grids.local_threshold(grey, grid)
        xs, ys = grid.centres()

        def centre(module: tuple[int, int]) -> float:
            return pushed[int(ys[module]), int(xs[module])]

        assert centre(finder) == pytest.approx(threshold[finder] - repair.FUNCTION_MARGIN_MAX, abs=1)
        assert centre(data) == pytest.approx(threshold[data] - 128, abs=1)


class TestSsim:
    def test_it_is_one_for_identical_images(self):
        _, image = blended(0)
        assert repair.ssim(image, image.copy()) == pytest.approx(1.0)

    def test_it_matches_the_formula_on_flat_images(self):
        # Flat images have no variance, so SSIM is the luminance term alone.
        a, b = Image.new("L", (64, 64), 100), Image.new("L", (64, 64), 150)
        c1 = (0.01 * 255) ** 2
        assert repair.ssim(a, b) == pytest.approx((2 * 100 * 150 + c1) / (100**2 + 150**2 + c1))

    def test_it_falls_with_noise(self):
        _, image = blended(0)
        pixels = np.asarray(image).astype(float)
        rng = np.random.default_rng(0)
        slight = Image.fromarray(np.clip(pixels + rng.normal(0, 3, pixels.shape), 0, 255).astype(np.uint8))
        heavy = Image.fromarray(np.clip(pixels + rng.normal(0, 30, pixels.shape), 0, 255).astype(np.uint8))
        assert 1.0 > repair.ssim(image, slight) > repair.ssim(image, heavy) > 0.0


class TestRepair:
    def test_it_makes_failing_art_pass(self, art_repair):
        _, _, result = art_repair
        assert result.before.verdict == "fail" and result.after.verdict == "pass" and result.passed
        assert result.after.scan_probability > result.before.scan_probability
        assert result.after.decoded == [URL]

    def test_it_changes_little(self, art_repair):
        _, image, result = art_repair
        assert 0.0 < result.pixels_changed_fraction < 0.15
        assert result.pixels_changed_fraction == pytest.approx(changed_pixels(result, image).mean())
        assert result.ssim > 0.85  # it stops at a robust margin, past the pass line
        assert result.ssim == pytest.approx(repair.ssim(image, result.image))

    def test_it_changes_only_the_spots_of_the_modules_it_lists(self, art_repair):
        code, image, result = art_repair
        pitch = SIZE / (code.size + 8)
        ys, xs = np.nonzero(changed_pixels(result, image))
        cols, rows = np.floor((xs + 0.5) / pitch - 4).astype(int), np.floor((ys + 0.5) / pitch - 4).astype(int)
        listed = set(result.modules)
        assert {(int(r), int(c)) for r, c in zip(rows, cols, strict=True)} <= listed
        # Data modules only at their centre: within the feathered spot's radius.
        inside = (rows >= 0) & (rows < code.size) & (cols >= 0) & (cols < code.size)
        data = inside.copy()
        data[inside] = ~code.function_mask[rows[inside], cols[inside]]
        dx = (xs[data] + 0.5) - (4 + cols[data] + 0.5) * pitch
        dy = (ys[data] + 0.5) - (4 + rows[data] + 0.5) * pitch
        assert data.any() and (np.hypot(dx, dy) <= repair.SPOT_EDGE * pitch + 0.75).all()

    def test_it_lists_function_modules_first(self, art_repair):
        code, _, result = art_repair
        ringed = grids.grid_from_code(code, SIZE, 4).with_quiet_ring().function_mask
        function = [bool(ringed[r + 1, c + 1]) for r, c in result.modules]
        assert any(function) and function == sorted(function, reverse=True)

    def test_it_keeps_the_hue(self, art_repair):
        _, image, result = art_repair
        changed = changed_pixels(result, image)
        before, after = chroma(np.asarray(image)[changed]), chroma(np.asarray(result.image)[changed])
        coloured = (np.linalg.norm(before, axis=1) > 20) & (np.linalg.norm(after, axis=1) > 10)
        cosine = (before * after).sum(axis=1) / np.linalg.norm(before, axis=1) / np.linalg.norm(after, axis=1)
        assert coloured.sum() > 1000
        assert np.degrees(np.arccos(np.clip(cosine[coloured], -1, 1))).max() < 3.0

    def test_it_repairs_only_the_corrupted_centres(self, corrupted_repair):
        code, image, flipped, result = corrupted_repair
        assert result.before.verdict == "fail" and result.after.verdict == "pass"
        assert result.modules and set(result.modules) <= flipped
        assert result.pixels_changed_fraction < 0.05 and result.ssim > 0.9

    def test_it_returns_a_passing_image_unchanged(self):
        code = qr.encode(URL)
        image = qr.render_control_image(code, SIZE, 4, "dots")
        result = repair.repair(image, grids.grid_from_code(code, SIZE, 4), URL)
        assert result.before.verdict == result.after.verdict == "pass"
        assert result.robust.passed and result.passed
        assert result.modules == [] and result.pixels_changed_fraction == 0.0 and result.ssim == 1.0
        assert np.array_equal(np.asarray(result.image), np.asarray(image))

    def test_it_goes_on_past_the_pass_line_until_the_margin_holds(self, monkeypatch):
        # The verifier passes every round, but the robust margin holds only from its third check on (the image as
        # given is checked first when the verifier passes it): repair must not stop at the verifier's line.
        code, image, _ = corrupted(1)
        checks = []

        def hold_from_the_third(candidate, expected, **kwargs):
            checks.append(1)
            return robust.Margin({"zxing": True, "wechat": True}, [], 4, 4, passed=len(checks) >= 3)

        monkeypatch.setattr(robust, "check", hold_from_the_third)
        result = repair.repair(image, grids.grid_from_code(code, SIZE, 4), URL)
        rounds = repair.MARGINS.index(result.margin) + 1
        assert len(checks) == 3 and result.passed and rounds == 3 - result.before.passed

    def test_it_holds_the_margin_on_captures_of_the_whole_image_too(self, monkeypatch):
        code, image, _ = corrupted(1)
        real, asked = robust.check, []
        monkeypatch.setattr(robust, "check", lambda *a, **k: asked.append(k) or real(*a, **k))
        result = repair.repair(image, grids.grid_from_code(code, SIZE, 4), URL)
        assert asked and all(k["whole_needed"] == robust.WHOLE_NEEDED for k in asked)
        assert result.passed and result.robust.whole_read >= robust.WHOLE_NEEDED

    def test_it_says_when_the_margin_does_not_hold(self, monkeypatch):
        code, image, _ = corrupted(1)
        real = robust.check
        monkeypatch.setattr(robust, "check", lambda *a, **k: dataclasses.replace(real(*a, **k), passed=False))
        result = repair.repair(image, grids.grid_from_code(code, SIZE, 4), URL, margins=(8, 16))
        assert result.after.passed and not result.robust.passed and not result.passed
        assert result.margin == 16  # the last round tried

    def test_it_reports_failure_honestly(self):
        code = qr.encode(URL)
        flat = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
        result = repair.repair(flat, grids.grid_from_code(code, SIZE, 4), URL, margins=(8,))
        assert result.before.verdict == "fail" and result.after.verdict == "fail" and not result.passed
        assert result.after.verdict == scan.verify(result.image, URL).verdict
        assert result.margin == 8 and result.modules_changed > 0

    def test_it_trusts_a_verdict_the_caller_already_has(self, monkeypatch):
        code = qr.encode(URL)
        image = qr.render_control_image(code, SIZE, 4, "dots")
        passing = scan.verify(image, URL, captures_count=1)
        monkeypatch.setattr(scan, "verify", lambda *a, **k: pytest.fail("verified again"))
        result = repair.repair(image, grids.grid_from_code(code, SIZE, 4), URL, before=passing)
        assert result.before is passing and result.modules == [] and result.robust.passed
        assert np.array_equal(np.asarray(result.image), np.asarray(image))

    def test_it_refuses_modules_too_small_to_repair(self):
        code = qr.encode(URL)
        with pytest.raises(grids.RepairError, match="too small"):
            repair.repair(Image.new("RGB", (90, 90)), grids.grid_from_code(code, 90, 4), URL)
