from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from generator.core.codes import decision, decoders, grading, qr, scan, synthetic

URL = "https://qart.example/r/AbC123"
VERDICTS = Path(__file__).parent / "data" / "verdicts_logistic_v3.json"
# A verdict in six parts, as `ranking.SPLITS` makes it with six processes an image
ALL = scan.ORIGINAL_PIECES
SIX_PARTS = ((range(0, 1), ("fast",)), (range(0, 1), ("slow",)), (range(0, 1), ("grade",)),
             (range(1, 3), ALL), (range(3, 5), ALL), (range(5, 7), ALL))


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

    def test_it_reads_a_small_code_in_a_large_photo(self):
        code = np.asarray(qr.render_control_image(qr.encode(URL), 700).convert("L"))
        photo = np.full((2400, 3200), 235, np.uint8)
        photo[900:1600, 1200:1900] = code
        result = scan.verify(photo, URL)
        assert result.expected_match is True and result.verdict == "pass"

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


class TestWhy:
    def test_it_grades_a_clean_code_a_with_no_reasons(self, clean_code):
        result = scan.verify(clean_code, URL)
        assert result.grades == dict.fromkeys(grading.GRADE_NAMES, "A")
        assert result.reasons == [] and result.model == decision.MODEL
        assert set(result.to_dict()) >= {"grades", "reasons", "model"}

    def test_it_says_why_a_damaged_code_fails(self):
        code = qr.encode(URL)
        gray = np.asarray(qr.render_control_image(code, 768).convert("L")).copy()
        gray[70:210, 70:210] = 255  # the top-left finder painted over: no phone finds this code
        result = scan.verify(gray, URL)
        assert result.verdict == "fail"
        assert [r["code"] for r in result.reasons] == ["finder_damaged"]
        assert result.grades["fixed_pattern"] == "F"

    def test_it_says_not_found_for_noise(self):
        noise = np.random.default_rng(0).integers(0, 256, (768, 768), dtype=np.uint8)
        result = scan.verify(noise, URL)
        assert result.verdict == "fail" and result.decoded == []
        assert [r["code"] for r in result.reasons] == ["not_found"]
        assert set(result.grades.values()) == {"F"}

    def test_the_ranking_score_grades_only_for_a_model_that_weighs_margins(self, clean_code, monkeypatch):
        graded = []
        real = grading.grade
        monkeypatch.setattr(grading, "grade", lambda *a, **k: graded.append(1) or real(*a, **k))
        assert scan.ranking_score(clean_code, URL) > 0.9 and graded == [1]  # the shipped model weighs them
        reads_only = decision.DecisionModel(-4.0, (("o_any", 2.0), ("f_share", 6.0)), form="logistic-v1")
        assert scan.ranking_score(clean_code, URL, model=reads_only) > 0.9 and graded == [1]


class TestSlowDecoders:
    def spy(self, calls: list):
        def read_slowly(gray: np.ndarray) -> list[str]:
            calls.append(gray.shape)
            return decoders.read_wechat(gray)

        return read_slowly

    @pytest.mark.parametrize("kind", ["uniform", "blotchy"])
    def test_they_do_not_run_where_no_view_shows_a_finder_pattern(self, kind):
        rng = np.random.default_rng(1)
        noise = rng.integers(0, 256, (768, 768), dtype=np.uint8)
        if kind == "blotchy":
            smooth = cv2.GaussianBlur(rng.normal(0, 1, (768, 768)).astype(np.float32), (0, 0), 4)
            noise = np.clip(128 + smooth / smooth.std() * 120, 0, 255).astype(np.uint8)
        calls: list = []
        result = scan.verify(noise, URL, readers={"zxing": decoders.read_zxing, "wechat": self.spy(calls)})
        assert calls == []
        assert [r.texts for r in result.reads if r.decoder == "wechat"] == [[]]

    def test_a_part_without_the_originals_fast_decoders_runs_them_only_where_it_shows_a_code(self, clean_code):
        # The "slow" piece does not wait for the "fast" one: it asks itself whether the original shows a code
        calls: list = []
        readers = {"zxing": decoders.read_zxing, "wechat": self.spy(calls), "zbar": decoders.read_zbar}
        noise = np.random.default_rng(2).integers(0, 256, (400, 400), dtype=np.uint8)
        part = scan.verify_part(noise, URL, range(0, 1), pieces=("slow",), readers=readers)
        assert calls == [] and not part.finder_seen and not part.slow_read
        part = scan.verify_part(clean_code, URL, range(0, 1), pieces=("slow",), readers=readers)
        assert calls == [clean_code.shape] and part.slow_read and part.graded is None
        assert part.texts == {("original", "wechat"): [URL]}  # the fast decoders' reads are the "fast" piece's
        blended = synthetic.make_sample("blended", 0.5, seed=4)  # zxing misses it: the finder check lets WeChat read
        part = scan.verify_part(blended.gray, blended.content, range(0, 1), pieces=("slow",), readers=readers)
        assert part.texts == {("original", "wechat"): [blended.content]}

    def test_they_read_only_the_original_of_a_code_the_fast_decoders_miss(self):
        # A code painted into a picture: WeChat reads it where zxing reads nothing. Phones see the image at about
        # its own resolution, so the original is the view that counts; WeChat on six captures cost up to a second.
        sample = synthetic.make_sample("blended", 0.5, seed=4)
        calls: list = []
        result = scan.verify(sample.gray, sample.content, readers={"zxing": lambda g: [], "wechat": self.spy(calls)})
        assert calls == [sample.gray.shape]
        assert result.expected_match is True and result.features["o_wechat"] == 1.0
        assert [r.view for r in result.reads if r.decoder == "wechat"] == ["original"]


class TestVerifyInParts:
    """`verify_part` on two ranges of views, then `combine`: what `verify` gives, for a process pool to split."""

    @staticmethod
    def same(a: scan.ScanResult, b: scan.ScanResult) -> bool:
        return {**a.to_dict(), "seconds": 0} == {**b.to_dict(), "seconds": 0}

    @pytest.mark.parametrize("split", [1, 2, 4, 6])
    @pytest.mark.parametrize("expected", [URL, None])
    def test_two_parts_give_the_whole_verdict(self, clean_code, expected, split):
        art = synthetic.make_sample("art", 0.3, seed=1003)
        noise = np.random.default_rng(2).integers(0, 256, (400, 400), dtype=np.uint8)
        for gray in (clean_code, art.gray, noise):
            parts = [scan.verify_part(gray, expected, views) for views in (range(0, split), range(split, 7))]
            assert self.same(scan.combine(gray, expected, parts), scan.verify(gray, expected))

    @pytest.mark.parametrize("expected", [URL, None])
    def test_three_parts_give_the_whole_verdict(self, clean_code, expected):
        # the image alone and the captures in halves, as a pool of three processes an image reads them
        art = synthetic.make_sample("art", 0.3, seed=1003)
        for gray in (clean_code, art.gray):
            parts = [scan.verify_part(gray, expected, views) for views in (range(0, 1), range(1, 4), range(4, 7))]
            assert self.same(scan.combine(gray, expected, parts), scan.verify(gray, expected))

    @pytest.mark.parametrize("expected", [URL, None])
    def test_the_originals_pieces_apart_give_the_whole_verdict(self, clean_code, expected):
        # six processes an image: the original's fast decoders, its slow decoders and its grading apart, the captures
        # in pairs; on a code, art, a blend and noise (where no part may run WeChat: nothing shows a code)
        art = synthetic.make_sample("art", 0.3, seed=1003)
        blended = synthetic.make_sample("blended", 0.5, seed=4)
        noise = np.random.default_rng(2).integers(0, 256, (400, 400), dtype=np.uint8)
        for gray in (clean_code, art.gray, blended.gray, noise):
            parts = [scan.verify_part(gray, expected, views, pieces=pieces) for views, pieces in SIX_PARTS]
            assert self.same(scan.combine(gray, expected, parts), scan.verify(gray, expected))

    def test_both_ways_give_the_pinned_verdicts(self, clean_code):
        # Pinned: the verdicts `verify` gave when model logistic-v3 was fitted (the file beside this test; until
        # then the verdicts of commit 792d348, before `verify` was made of `verify_part` and `combine`), so a fault
        # shared by both ways (the order of reads, a decoder's key) still fails. Rewrite it only with a new model.
        golden = json.loads(VERDICTS.read_text())
        art = synthetic.make_sample("art", 0.3, seed=1003)
        blended = synthetic.make_sample("blended", 0.5, seed=4)
        noise = np.random.default_rng(2).integers(0, 256, (400, 400), dtype=np.uint8)
        cases = {"clean": (clean_code, URL), "clean-any": (clean_code, None),
                 "clean-misread": (clean_code, "https://elsewhere.example/"), "art": (art.gray, art.content),
                 "blended": (blended.gray, blended.content), "noise": (noise, URL)}
        assert sorted(cases) == sorted(golden)

        def plain(result: scan.ScanResult) -> dict:
            return json.loads(json.dumps({k: v for k, v in result.to_dict().items() if k != "seconds"}))

        for name, (gray, expected) in cases.items():
            parts = [scan.verify_part(gray, expected, views) for views in (range(0, 2), range(2, 7))]
            assert plain(scan.verify(gray, expected)) == golden[name], name
            assert plain(scan.combine(gray, expected, parts)) == golden[name], name
            parts = [scan.verify_part(gray, expected, views, pieces=pieces) for views, pieces in SIX_PARTS]
            assert plain(scan.combine(gray, expected, parts)) == golden[name], name

    def test_a_misread_and_a_threshold_carry_through(self, clean_code):
        parts = [scan.verify_part(clean_code, "https://elsewhere.example/", views) for views in (range(2), range(2, 7))]
        combined = scan.combine(clean_code, "https://elsewhere.example/", parts)
        assert combined.misread and combined.verdict == "fail"
        strict = scan.combine(clean_code, URL, [scan.verify_part(clean_code, URL, range(7))], threshold=1.0)
        assert self.same(strict, scan.verify(clean_code, URL, threshold=1.0)) and strict.verdict == "fail"

    def test_a_finder_seen_only_in_a_capture_gets_the_slow_reads_and_the_grading(self, clean_code):
        # Rare on real images (the original shows what its captures show), so the parts are made by hand: the
        # original's part saw nothing, a capture's part read the code. `combine` reads and grades as `verify` would.
        calls: list = []

        def wechat(gray: np.ndarray) -> list[str]:
            calls.append(gray.shape)
            return [URL]

        views = ["original"] + [f"capture-{i}" for i in range(1, 7)]
        settings = (6, 0, True, decision.DEFAULT_MODEL.id)
        nothing = scan.Part(range(0, 2), {(v, "zxing"): [] for v in views[:2]}, False, False, None, settings, 0.01)
        read = scan.Part(range(2, 7), {(v, "zxing"): [URL] for v in views[2:]}, True, False, None, settings, 0.02)
        result = scan.combine(clean_code, URL, [nothing, read], readers={"zxing": decoders.read_zxing,
                                                                         "wechat": wechat})
        assert calls == [clean_code.shape]
        assert result.features["o_wechat"] == 1.0 and result.features["o_zxing"] == 0.0
        assert result.grades["contrast"] == "A" and result.reasons == []

    def test_parts_that_miss_or_repeat_a_view_are_one_clear_error(self, clean_code):
        first = scan.verify_part(clean_code, URL, range(0, 3))
        with pytest.raises(ValueError, match="cover views 0-6 once each"):
            scan.combine(clean_code, URL, [first])
        with pytest.raises(ValueError, match="cover views 0-6 once each"):
            scan.combine(clean_code, URL, [first, scan.verify_part(clean_code, URL, range(2, 7))])
        with pytest.raises(ValueError, match="view indices must be within 0-6"):
            scan.verify_part(clean_code, URL, range(5, 9))
        # parts of one verdict made with other captures' seed than the verdict's
        other_seed = scan.verify_part(clean_code, URL, range(3, 7), seed=5)
        with pytest.raises(ValueError, match="made with other settings"):
            scan.combine(clean_code, URL, [first, other_seed])
        # the original's pieces: one missing, one twice
        rest = scan.verify_part(clean_code, URL, range(1, 7))
        fast, slow = (scan.verify_part(clean_code, URL, range(0, 1), pieces=(p,)) for p in ("fast", "slow"))
        with pytest.raises(ValueError, match="cover views 0-6 once each"):
            scan.combine(clean_code, URL, [fast, slow, rest])
        with pytest.raises(ValueError, match="cover views 0-6 once each"):
            scan.combine(clean_code, URL, [dataclasses.replace(first, views=range(0, 1)), slow, rest])
        with pytest.raises(ValueError, match="pieces must be some of"):
            scan.verify_part(clean_code, URL, range(0, 1), pieces=("wechat",))

    def test_a_verdict_from_parts_takes_the_slowest_parts_time(self, clean_code):
        parts = [scan.verify_part(clean_code, URL, views) for views in (range(0, 2), range(2, 7))]
        parts[1].seconds = 5.0  # as if its process had been slow
        assert 5.0 <= scan.combine(clean_code, URL, parts).seconds < 6.0
