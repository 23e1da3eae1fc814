"""Preflight: camera geometry, the capture at N preview pixels per module, and the predicted scanning range."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from generator.core.codes import captures, preflight, qr, scan

CONTENT = "https://qart.example/r/AbC12345"


@pytest.fixture(scope="module")
def code() -> qr.QRCode:
    return qr.encode(CONTENT, max_version=40)


@pytest.fixture(scope="module")
def plain(code) -> Image.Image:
    return qr.render_control_image(code, 768)


@pytest.fixture(scope="module")
def poster(plain, code) -> preflight.Preflight:
    return preflight.preflight(plain, CONTENT, code=code, width_m=0.2, distance_m=1.5)


def jargon(report: preflight.Preflight) -> list[str]:
    """The warnings a person would have to be a QR engineer to read."""
    return [w for w in report.warnings if "module" in w.lower() or "quiet zone" in w.lower()]


class TestGeometry:
    def test_it_counts_preview_pixels_per_module_from_the_field_of_view(self):
        # 1920 px over 69 degrees: 1920 / (2 tan 34.5 degrees) = 1396.8 px per metre at 1 m.
        expected = 0.2 / 41 * 1920 / (2 * math.tan(math.radians(34.5))) / 1.0
        assert preflight.pixels_per_module(0.2, 41, 1.0) == pytest.approx(expected)
        assert expected == pytest.approx(6.81, abs=0.01)

    def test_farthest_and_min_width_invert_it(self):
        far = preflight.farthest(0.2, 41, 2.5)
        assert preflight.pixels_per_module(0.2, 41, far) == pytest.approx(2.5)
        width = preflight.min_width(far, 41, 2.5)
        assert width == pytest.approx(0.2)

    def test_the_nearest_distance_is_close_focus_or_where_the_code_fills_the_frame(self):
        assert preflight.nearest(0.01) == preflight.PHONE.close_focus_m
        big = preflight.nearest(1.0)
        px = 1.0 * preflight.PHONE.pixels_per_metre_at_1m / big
        assert px == pytest.approx(preflight.PHONE.fill * preflight.PHONE.short_px)


class TestSimulatedCapture:
    def test_it_holds_the_code_at_exactly_n_pixels_per_module(self, plain):
        frame = preflight.simulate_capture(plain, 41, 2.0)
        pad = (captures.MAX_SIDE - 82) // 2
        assert frame.shape == (82 + 2 * pad, 82 + 2 * pad)
        inner = frame[pad : pad + 82, pad : pad + 82]
        # The finder's dark ring sits 4 modules in, one module (2 px) wide.
        assert inner[8:22, 9].mean() < 100 and inner[0:6, 0:6].mean() > 200

    def test_a_large_code_is_not_padded(self, plain):
        assert preflight.simulate_capture(plain, 41, 12.0).shape == (492, 492)


class TestPreflight:
    def test_a_poster_scans_from_its_distance_with_a_stated_range(self, poster):
        assert poster.scans_at_distance and poster.near_m <= 1.5 <= poster.far_m
        assert poster.summary == f"scans from {poster.near_m:.2g} m to {poster.far_m:.3g} m at 20 cm wide"
        assert poster.module_mm == pytest.approx(200 / 41, abs=0.01) and poster.modules == 41
        assert poster.warnings == [] and poster.contrast > 0.9
        assert "1920x1080 preview frame over a 69 degree" in poster.assumptions

    def test_the_range_ends_where_the_verifier_stops_passing(self, poster):
        passed = [c.pixels_per_module for c in poster.checks if c.passed]
        failed = [c.pixels_per_module for c in poster.checks if not c.passed]
        assert poster.min_ppm == min(passed) and failed and max(failed) < poster.min_ppm
        assert poster.far_m == pytest.approx(preflight.farthest(0.2, 41, poster.min_ppm), abs=0.01)

    def test_a_small_print_far_away_names_the_width_it_needs(self, plain, code):
        report = preflight.preflight(plain, CONTENT, code=code, width_m=0.03, distance_m=1.5)
        assert not report.scans_at_distance and report.far_m < 1.5
        assert report.min_width_m > 0.03 and any("print it at least" in w for w in report.warnings)

    def test_past_the_range_it_does_not_scan_there_even_where_the_one_capture_passed(self, plain, code, poster,
                                                                                     monkeypatch):
        # The capture simulated at 1.5 m passes while the range ends short of it: the page said "scans from there" in
        # green beside "this print is too small" in orange. The cautious answer wins.
        shorter = poster.min_ppm * poster.far_m / 1.25  # pixels a module fall with distance: the range ends at 1.25 m
        monkeypatch.setattr(preflight, "smallest_scanning_ppm", lambda *args, **kwargs: (shorter, []))
        report = preflight.preflight(plain, CONTENT, code=code, width_m=0.2, distance_m=1.5)
        assert report.far_m < 1.5 and report.scan_probability_at_distance >= 0.5
        assert not report.scans_at_distance and any("print it at least" in w for w in report.warnings)

    def test_within_the_range_a_failing_capture_is_said_and_counts(self, plain, code, poster, monkeypatch):
        monkeypatch.setattr(preflight, "smallest_scanning_ppm", lambda *args, **kwargs: (poster.min_ppm, []))
        failing = scan.ScanResult(expected=CONTENT, reads=[], decoded=[], expected_match=False, misread=False,
                                  scan_probability=0.2, verdict="fail", seconds=0.0, features={})
        monkeypatch.setattr(preflight.scan, "verify", lambda *args, **kwargs: failing)
        report = preflight.preflight(plain, CONTENT, code=code, width_m=0.2, distance_m=1.5)
        assert report.near_m <= 1.5 <= report.far_m and not report.scans_at_distance
        assert any(w.startswith("A phone's view simulated from 1.5 m fails the scan check") for w in report.warnings)

    def test_art_that_does_not_scan_scans_at_no_distance(self, code):
        blank = Image.new("RGB", (768, 768), "white")
        report = preflight.preflight(blank, CONTENT, code=code, width_m=0.2, distance_m=1.5)
        assert report.summary == "does not scan at any distance at 20 cm wide"
        assert report.far_m is None and report.min_width_m is None and report.min_ppm is None

    def test_art_that_carries_another_code_says_so_not_that_it_does_not_scan(self, code):
        # Art drawn over someone's uploaded code: captures read the other link, and the report said only "the art
        # itself does not scan", hiding that a phone could open the other link.
        other = qr.render_control_image(qr.encode("https://elsewhere.example/x"), 768)
        report = preflight.preflight(other, CONTENT, code=code, width_m=0.2, distance_m=1.5)
        assert report.warnings[0] == ("A reader found another code in the art: it read “https://elsewhere.example/x”, "
                                      "not this code's text. Phones could open that instead: do not print this art.")
        assert not any("the art itself does not scan" in w for w in report.warnings)
        assert any(check.misread == "https://elsewhere.example/x" for check in report.checks)

    def test_it_warns_about_low_contrast_and_a_busy_quiet_zone(self, plain, code):
        gray = np.asarray(plain.convert("L"), dtype=np.float32)
        faint = 90 + gray * (60 / 255)  # modules 90 and 150: 24 % contrast
        rng = np.random.default_rng(1)
        faint[:60, :] = rng.uniform(60, 200, size=(60, 768))  # a picture running into the quiet zone
        art = Image.fromarray(faint.astype(np.uint8)).convert("RGB")
        report = preflight.preflight(art, CONTENT, code=code, width_m=0.2, distance_m=1.5)
        assert any(w.startswith("Low contrast: the code's dark and light squares differ by only ") for w in
                   report.warnings)
        assert ("The white border around the code is not plain and light: keep a border 4 squares wide around the "
                "code free of picture, text and frames, or phones may not find it.") in report.warnings
        assert jargon(report) == []

    @pytest.mark.parametrize(("border", "said"), [
        (2, "The white border around the code is only 2 squares wide"),
        (1, "The white border around the code is only 1 square wide"),
        (0, "The code has no white border around it"),
    ])
    def test_it_says_a_narrow_white_border_in_plain_words(self, code, border, said, monkeypatch):
        # People who print codes read these on the placement page and in the API's `warnings`: "the quiet zone is
        # 2 modules" meant nothing to them.
        monkeypatch.setattr(preflight, "smallest_scanning_ppm", lambda *args, **kwargs: (2.0, []))
        art = qr.render_control_image(code, 768, border=border)
        report = preflight.preflight(art, CONTENT, code=code, width_m=0.2, distance_m=1.5, border=border)
        assert f"{said}: phones need 4 squares of plain light border to find it." in report.warnings
        assert jargon(report) == []

    def test_a_print_too_small_to_focus_on_names_the_size_of_its_squares(self, plain, code, monkeypatch):
        # 8 pixels a square needed: at 1 cm wide the range would end before the phone's close focus (10 cm)
        monkeypatch.setattr(preflight, "smallest_scanning_ppm", lambda *args, **kwargs: (8.0, []))
        report = preflight.preflight(plain, CONTENT, code=code, width_m=0.01, distance_m=0.3)
        assert report.summary.startswith("too small to scan at 1 cm wide")
        assert "At 1 cm wide each square of the code is only 0.24 mm: print it larger." in report.warnings
        assert jargon(report) == []

    def test_it_refuses_a_width_or_distance_of_zero(self, plain, code):
        with pytest.raises(ValueError, match="more than 0"):
            preflight.preflight(plain, CONTENT, code=code, width_m=0.0, distance_m=1.5)

    def test_a_code_too_big_for_the_frame_is_judged_as_framed_without_a_giant_capture(self, plain, code,
                                                                                      monkeypatch):
        # 5 m wide at 5 cm: 78 GB of capture asked for once. People step back until the code fits the frame.
        sides: list[int] = []
        simulate = preflight.simulate_capture
        monkeypatch.setattr(preflight, "simulate_capture",
                            lambda image, modules, ppm: sides.append(round(modules * ppm)) or simulate(image, modules,
                                                                                                       ppm))
        report = preflight.preflight(plain, CONTENT, code=code, width_m=5.0, distance_m=0.05)
        assert report.scans_at_distance and max(sides) <= preflight.PHONE.fill * preflight.PHONE.short_px + 1
        assert report.ppm_at_distance > 3000  # the geometry is still reported as it is
        assert any("does not fit the phone's frame" in w for w in report.warnings)

    def test_a_capture_larger_than_any_frame_is_refused(self, plain):
        with pytest.raises(ValueError, match="larger than any phone's preview frame"):
            preflight.simulate_capture(plain, 41, 200.0)
