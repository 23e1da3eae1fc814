"""The verifier's decision: the features it counts, the shipped decision model and its fit, and the margins the
grading gives it."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from generator.core.codes import decision, decoders, grading, qr, scan, synthetic

URL = "https://qart.example/r/AbC123"
FEATURES = Path(__file__).parent / "data" / "verifier_features.csv"


@pytest.fixture(scope="module")
def clean_code() -> np.ndarray:
    return np.asarray(qr.render_control_image(qr.encode(URL), 512, style="rounded").convert("L"))


def test_probability_never_falls_when_a_decoder_reads_more():
    views = ["original"] + [f"capture-{i}" for i in range(1, 7)]
    best = dict.fromkeys(decision.MARGIN_FEATURES, 1.0)  # a symbol graded A everywhere, as a clean code is

    def p(reads: list[decoders.Read], margins: dict) -> float:
        return decision.probability({**decision.features(reads, "x"), **margins})

    none = [decoders.Read(v, d, []) for v in views for d in decision.DECODERS]
    assert p(none, dict.fromkeys(decision.MARGIN_FEATURES, 0.0)) < 0.05
    everything = [decoders.Read(v, d, ["x"]) for v in views for d in decision.DECODERS]
    assert p(everything, best) > 0.95
    # Turning reads on one at a time never lowers the probability.
    reads = list(none)
    last = p(reads, best)
    for i in range(len(reads)):
        reads[i] = decoders.Read(reads[i].view, reads[i].decoder, ["x"])
        now = p(reads, best)
        assert now >= last
        last = now


def test_probability_never_falls_as_a_margin_grows():
    views = ("original", "capture-1")
    reads = [decoders.Read(v, d, ["x"] if v == "original" else []) for v in views for d in decision.DECODERS]
    margins = dict.fromkeys(decision.MARGIN_FEATURES, 0.0)
    last = p0 = decision.probability({**decision.features(reads, "x"), **margins})
    for name in decision.MARGIN_FEATURES:
        margins[name] = 1.0
        now = decision.probability({**decision.features(reads, "x"), **margins})
        assert now >= last
        last = now
    assert last > p0  # the margins carry weight: reads alone are not the verdict


def test_features_count_reads_per_decoder_and_per_view():
    views = ["original", "capture-1", "capture-2"]
    reads = [decoders.Read(v, d, ["x"] if (d == "zxing" or v == "capture-1") else [])
             for v in views for d in decision.DECODERS]
    rates = decision.features(reads, "x")
    assert rates["o_zxing"] == 1.0 and rates["f_zxing"] == 1.0
    assert rates["o_wechat"] == 0.0 and rates["f_wechat"] == 0.5
    assert rates["o_any"] == 1.0 and rates["o_share"] == pytest.approx(1 / 3)
    assert rates["f_any"] == 1.0 and rates["f_share"] == pytest.approx((1 + 1 / 3) / 2)
    assert rates["f_max"] == 1.0 and rates["o_pair"] == 0.0  # zxing read the original, WeChat did not
    assert decision.features(reads, "y")["f_any"] == 0.0  # another text is not a read


def test_features_count_a_decoder_only_on_the_views_it_ran_on():
    # WeChat reads only the original: its capture rate is 0, and the captures' shares count zxing and zbar alone.
    views = ["original", "capture-1", "capture-2"]
    reads = [decoders.Read(v, d, ["x"]) for v in views for d in ("zxing", "zbar")]
    reads.append(decoders.Read("original", "wechat", ["x"]))
    rates = decision.features(reads, "x")
    assert rates["o_wechat"] == 1.0 and rates["f_wechat"] == 0.0 and rates["o_pair"] == 1.0
    assert rates["o_share"] == 1.0 and rates["f_share"] == 1.0


class TestModel:
    def test_its_id_names_the_weights(self):
        assert decision.MODEL == decision.model_id(decision.BIAS, decision.WEIGHTS, decision.FORM)
        assert decision.MODEL.startswith("logistic-v3-")
        assert decision.model_id(-4.5, decision.WEIGHTS, decision.FORM) != decision.MODEL
        assert decision.model_id(decision.BIAS, {**decision.WEIGHTS, "f_max": 0.1}, decision.FORM) != decision.MODEL

    def test_the_shipped_weights_are_the_fit_of_the_committed_table(self):
        # bench/calibrate_verifier.py --per-family 60 --near 240 --table ... wrote this table (the calibration plan's
        # samples, then 240 near-decodable art samples), and decision.BIAS and decision.WEIGHTS
        # are its fit: refit it and they must agree, so hand-edited or drifted weights fail here.
        with open(FEATURES, newline="") as table:
            rows = list(csv.DictReader(line for line in table if not line.startswith("#")))
        planned = [family for family, _, _ in synthetic.calibration_plan(60, 1)]
        assert len(planned) == 60 * (len(synthetic.FAMILIES) - 1) + 60 * synthetic.FAMILY_SHARE["art"]
        assert [row["family"] for row in rows] == planned + ["art-near"] * 240
        assert list(rows[0])[3:] == list(decision.WEIGHTS)  # the table has exactly the shipped model's features
        names = list(decision.WEIGHTS)
        x = np.array([[float(row[name]) for name in names] for row in rows])
        y = np.array([float(row["label"]) for row in rows])
        fitted = decision.fit_weights(x, y)
        assert fitted[0] == pytest.approx(decision.BIAS, abs=1e-6)
        assert dict(zip(names, fitted[1:], strict=True)) == pytest.approx(decision.WEIGHTS, abs=1e-6)

    def test_a_decision_model_round_trips_and_judges(self, clean_code):
        model = decision.DecisionModel.from_dict(decision.DEFAULT_MODEL.to_dict())
        assert model == decision.DEFAULT_MODEL and model.id == decision.MODEL
        # A model that never passes anything: the verdict and the result's model id follow the model passed in.
        never = decision.DecisionModel(-50.0, (("o_any", 1.0),), form="logistic-test")
        result = scan.verify(clean_code, URL, model=never)
        assert result.verdict == "fail" and result.model == never.id and result.model.startswith("logistic-test-")
        assert scan.verify(clean_code, URL).passed

    @pytest.mark.parametrize("data", [{}, {"bias": "x", "weights": {}}, {"bias": 0, "weights": {"a": float("nan")}},
                                      {"bias": 0, "weights": [1, 2]}, {"bias": float("inf"), "weights": {}}])
    def test_a_bad_decision_model_is_one_clear_error(self, data):
        with pytest.raises(ValueError, match="decision model"):
            decision.DecisionModel.from_dict(data)

    def test_the_fit_keeps_weights_non_negative(self):
        rng = np.random.default_rng(0)
        x = rng.random((200, 2))
        y = (x[:, 0] + 0.1 * rng.normal(size=200) > 0.5).astype(float)
        x[:, 1] = 1 - x[:, 0]  # a feature that only ever argues against a read
        bias, good, bad = decision.fit_weights(x, y)
        assert good > 1 and bad == 0.0


class TestMargins:
    """The full-resolution grading margins the shipped model weighs, on constructed images."""

    def test_a_clean_code_has_every_margin(self, clean_code):
        margins = {k: v for k, v in scan.verify(clean_code, URL).features.items() if k in decision.MARGIN_FEATURES}
        assert margins == pytest.approx(dict.fromkeys(decision.MARGIN_FEATURES, 1.0), abs=0.01)

    def test_noise_has_none(self):
        noise = np.random.default_rng(0).integers(0, 256, (768, 768), dtype=np.uint8)
        result = scan.verify(noise, URL)
        assert all(result.features[name] == 0.0 for name in decision.MARGIN_FEATURES)

    def test_a_painted_finder_has_no_finder_margin_and_fails(self):
        gray = np.asarray(qr.render_control_image(qr.encode(URL), 768).convert("L")).copy()
        gray[70:210, 70:210] = 255
        result = scan.verify(gray, URL)
        assert result.features["g_finders"] == 0.0 and result.features["g_finders_clear"] == 0.0
        assert result.verdict == "fail"

    def test_modules_a_phone_cannot_resolve_have_no_margins(self):
        # Drawn one pixel a module, a code grades A (the pixels are exact), but no phone resolves it.
        code = qr.encode(URL)
        tiny = np.asarray(qr.render_control_image(code, code.size + 8).convert("L"))
        result = scan.verify(tiny, URL)
        assert all(result.features[name] == 0.0 for name in decision.MARGIN_FEATURES) and result.verdict == "fail"
        assert grading.grade(tiny, URL).measures["module_pixels"] == pytest.approx(1.0, abs=0.05)

    def test_a_missing_quiet_zone_has_no_quiet_margin(self):
        gray = np.asarray(qr.render_control_image(qr.encode(URL), 768, border=0).convert("L"))
        assert scan.verify(gray, URL).features["g_quiet"] == 0.0

    def test_a_code_every_decoder_reads_with_its_error_correction_spent_fails(self):
        # Eight codewords spoilt in every block of sixteen error-correction codewords: every decoder still reads it
        # (eight are correctable), but a phone that misreads one module more does not. The lenient verifier passed it.
        code = qr.encode(URL)
        gray = np.asarray(qr.render_control_image(code, 768).convert("L")).copy()
        layout = grading.codeword_layout(code.version, code.ecc)
        pitch = 768 / (code.size + 8)
        for block in range(len(layout.blocks)):
            for word in np.flatnonzero(layout.block == block)[:8]:
                row, col = np.argwhere(layout.codeword == word)[0]
                centre = (int((4 + col + 0.5) * pitch), int((4 + row + 0.5) * pitch))
                cv2.circle(gray, centre, int(pitch * 0.32), 255 if code.matrix[row, col] else 0, -1)
        result = scan.verify(gray, URL)
        assert result.features["o_zxing"] == 1.0 and result.features["o_wechat"] == 1.0
        assert result.features["g_unused_ec"] == 0.0 and result.features["g_spare"] == 0.0
        lenient = decision.DecisionModel(-5.7383012, (("o_any", 0.98149407), ("f_share", 9.77219657)))  # logistic-v1
        assert lenient.probability(result.features) >= 0.5
        assert result.verdict == "fail"
