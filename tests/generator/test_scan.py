from __future__ import annotations

import numpy as np
import pytest

from generator import qr, scan, synthetic

URL = "https://qart.example/r/AbC123"


@pytest.fixture(scope="module")
def clean_code() -> np.ndarray:
    return np.asarray(qr.render_control_image(qr.encode(URL), 512, style="rounded").convert("L"))


class TestVerify:
    def test_it_passes_a_clean_code_with_the_expected_text(self, clean_code):
        result = scan.verify(clean_code, URL)
        assert result.verdict == "pass" and result.passed
        assert result.expected_match is True and result.misread is False
        assert result.decoded == [URL]
        assert result.scan_probability > 0.9
        assert {r.decoder for r in result.reads} >= {"zxing", "wechat", "zbar"}
        assert len({r.view for r in result.reads}) == scan.FULL_CAPTURES + 1

    def test_it_catches_a_misread(self, clean_code):
        result = scan.verify(clean_code, "https://qart.example/r/OTHER1")
        assert result.misread is True
        assert result.expected_match is False
        assert result.verdict == "fail"
        assert result.decoded == [URL]

    def test_it_fails_a_misread_even_at_high_probability(self):
        # Two different codes side by side: the expected one reads everywhere, so the probability is high,
        # but a phone may open the other one.
        a = np.asarray(qr.render_control_image(qr.encode(URL), 400).convert("L"))
        b = np.asarray(qr.render_control_image(qr.encode("https://evil.example/x"), 400).convert("L"))
        result = scan.verify(np.hstack([a, b]), URL)
        assert result.misread is True and result.verdict == "fail"
        assert "https://evil.example/x" in result.decoded

    def test_it_counts_any_text_without_an_expectation(self, clean_code):
        result = scan.verify(clean_code)
        assert result.expected_match is None and result.misread is False
        assert result.verdict == "pass"

    def test_it_fails_a_blank_image(self):
        result = scan.verify(np.full((300, 300), 255, np.uint8), URL)
        assert result.decoded == [] and result.verdict == "fail"
        assert result.scan_probability < 0.05

    def test_it_is_reproducible(self, clean_code):
        blurred = synthetic.make_sample("blended", 0.6, seed=11).gray
        a, b = scan.verify(blurred, URL), scan.verify(blurred, URL)
        assert a.reads == b.reads and a.scan_probability == b.scan_probability

    def test_it_honours_the_threshold(self, clean_code):
        assert scan.verify(clean_code, URL, threshold=1.0).verdict == "fail"
        with pytest.raises(ValueError, match="threshold"):
            scan.verify(clean_code, URL, threshold=1.5)

    def test_it_lowers_the_probability_as_corruption_rises(self):
        means = []
        for strength in (0.0, 0.3, 0.6, 1.0):
            samples = [synthetic.make_sample("corrupted", strength, seed=100 + i) for i in range(4)]
            means.append(np.mean([scan.verify(s.gray, s.content).scan_probability for s in samples]))
        assert means == sorted(means, reverse=True), means
        assert means[0] > 0.9 and means[-1] < 0.2

    def test_it_lowers_the_probability_as_the_code_fades_into_a_picture(self):
        means = []
        for strength in (0.0, 0.5, 0.95):
            samples = [synthetic.make_sample("blended", strength, seed=200 + i) for i in range(4)]
            means.append(np.mean([scan.verify(s.gray, s.content).scan_probability for s in samples]))
        assert means[0] > means[1] > means[2], means
        assert means[0] > 0.9 and means[2] < 0.2


class TestRankingScore:
    def test_it_orders_clean_above_corrupted(self, clean_code):
        broken = synthetic.make_sample("corrupted", 1.0, seed=5)
        assert scan.ranking_score(clean_code, URL) > 0.9
        assert scan.ranking_score(broken.gray, broken.content) < 0.2

    def test_it_scores_a_misread_zero(self, clean_code):
        assert scan.ranking_score(clean_code, "something else") == 0.0


def test_probability_rises_with_every_decoder_vote():
    base = {f"{k}_{d}": 0.0 for k in ("o", "f") for d in scan.DECODERS}
    assert scan.probability(base) < 0.05
    full = {key: 1.0 for key in base}
    assert scan.probability(full) > 0.95
    for decoder in scan.DECODERS:
        more = dict(base, **{f"f_{decoder}": 1.0})
        assert scan.probability(more) > scan.probability(base)
