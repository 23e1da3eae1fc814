from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from PIL import Image

from generator.core.codes import grids, qr, repair, scan
from generator.core.engines import parameters, ranking
from tests.generator.core.codes.code_art import SIZE, blended, corrupted
from tests.generator.core.codes.code_art import URL as ART_URL

URL = "https://qart.example/r/AbC123"
FAST = parameters.GenerationParams(prompt="a koi pond", steps=2, size=256)


def fake_scan(passed: bool, p: float = 0.9) -> scan.ScanResult:
    return scan.ScanResult(URL, [], [URL] if passed else [], passed, False, p if passed else 0.01,
                           "pass" if passed else "fail", 0.1)


def candidate(index: int, passed: bool, aesthetic: float | None, p: float = 0.9) -> ranking.RankedImage:
    return ranking.RankedImage(index, 0, index, Image.new("RGB", (8, 8)), fake_scan(passed, p), aesthetic)


def halftone_candidate(index: int, p: float, fidelity: float, colour: float,
                       reasons: list | None = None) -> ranking.RankedImage:
    """A passing halftone candidate: no aesthetic score, a fidelity and colour error, grading notes if given."""
    c = replace(candidate(index, True, None, p), fidelity_ssim=fidelity, color_error=colour)
    return replace(c, scan=replace(c.scan, reasons=reasons or []))


class TestRank:
    def test_it_puts_scannable_first_then_prettiest(self):
        ordered = ranking.rank([
            candidate(0, False, 9.0), candidate(1, True, 5.0), candidate(2, True, 7.0), candidate(3, False, 3.0),
        ])
        assert [c.index for c in ordered] == [2, 1, 0, 3]
        assert [c.rank for c in ordered] == [1, 2, 3, 4]

    def test_an_excellent_scan_ranks_above_a_good_one_that_looks_better(self):
        # 0.85 is "good" on the card, 0.99 "excellent": the prettier good one must not be shown above it.
        ordered = ranking.rank([candidate(0, True, 9.0, 0.85), candidate(1, True, 4.0, 0.99),
                                candidate(2, True, 6.0, 0.95), candidate(3, False, 10.0)])
        assert [c.index for c in ordered] == [2, 1, 0, 3]
        bands = [ranking.scan_band(c.passed, c.scan.scan_probability, c.scan.misread) for c in ordered]
        assert bands == ["excellent", "excellent", "good", "poor"]

    def test_the_band_is_poor_for_a_misread_or_a_fail_whatever_the_probability(self):
        assert ranking.scan_band(True, 0.99, misread=True) == "poor"
        assert ranking.scan_band(False, 0.99) == "poor"
        assert ranking.scan_band(True, ranking.EXCELLENT_SCAN) == "excellent"
        assert ranking.scan_band(True, 0.5) == "good"

    def test_a_pass_with_a_reason_to_be_careful_is_good_not_excellent(self):
        # The card said "excellent" beside "uses 75 % of its error correction, leaving little room".
        caution = [{"code": "little_ec_left", "text": "The code uses 75 % of its error correction."}]
        assert ranking.scan_band(True, 0.99, cautioned=True) == "good"
        careful = candidate(0, True, 9.0, 0.99)
        careful = replace(careful, scan=replace(careful.scan, reasons=caution))
        ordered = ranking.rank([careful, candidate(1, True, 4.0, 0.95)])
        assert [c.index for c in ordered] == [1, 0]  # the clean excellent one first, as the words say

    def test_without_aesthetic_scores_it_orders_by_likeness_colour_included(self):
        grey = replace(candidate(0, True, None, 0.99), fidelity_ssim=0.67, color_error=56.1)
        colour = replace(candidate(1, True, None, 0.99), fidelity_ssim=0.61, color_error=2.55)
        assert [c.index for c in ranking.rank([grey, colour])] == [1, 0]
        assert ranking.likeness(0.67, 56.1) == pytest.approx(0.45)
        assert ranking.likeness(0.61, 2.55) == pytest.approx(0.60)
        assert ranking.likeness(0.1, 200.0) < ranking.likeness(0.1, 100.0) < 0  # unclipped: still ordered
        assert ranking.likeness(None, 3.0) is None and ranking.likeness(0.5, None) == 0.5

    def test_a_grading_note_does_not_bury_a_far_more_faithful_halftone_code(self):
        # A job's four dithered copies (likeness -0.19, clean "excellent") took every shown place; the plain ones at
        # 62 % and 53 %, of the same scan probability but "good" for one brightness note, sat under "Show all".
        dim = [{"code": "low_modulation", "text": "Some modules are close in brightness to the middle."}]
        dithered = [halftone_candidate(i, 0.99, 0.026, 54.9) for i in range(4)]
        plain = [halftone_candidate(4, 0.99, 0.6189, 0.0, dim), halftone_candidate(5, 0.99, 0.5336, 0.0, dim)]
        ordered = ranking.rank(dithered + plain)
        assert [c.index for c in ordered[:2]] == [4, 5]
        assert [c.index for c in ordered[2:]] == [0, 1, 2, 3]

    def test_between_near_equal_halftone_codes_the_safer_band_wins(self):
        dim = [{"code": "low_modulation", "text": "Some modules are close in brightness to the middle."}]
        cautioned = halftone_candidate(0, 0.99, 0.60, 0.0, dim)
        clean = halftone_candidate(1, 0.99, 0.55, 0.0)
        likely = halftone_candidate(2, 0.7, 0.57, 0.0)  # "good" by its probability: the same cost
        # 0.60 less a band step (0.50) is below a clean 0.55; "good" by its probability pays the same step (0.47)
        assert [c.index for c in ranking.rank([cautioned, clean, likely])] == [1, 0, 2]

    def test_a_failing_halftone_code_never_outranks_a_passing_one(self):
        failing = replace(halftone_candidate(0, 0.99, 0.95, 0.0), scan=fake_scan(False))
        misread = halftone_candidate(1, 0.99, 0.9, 0.0)
        misread = replace(misread, scan=replace(misread.scan, misread=True))
        poor_copy = halftone_candidate(2, 0.51, -0.5, 90.0)
        assert [c.index for c in ranking.rank([failing, misread, poor_copy])] == [2, 0, 1]

    def test_it_breaks_aesthetic_ties_by_scan_probability(self):
        ordered = ranking.rank([candidate(0, True, None, 0.6), candidate(1, True, None, 0.95)])
        assert [c.index for c in ordered] == [1, 0]


@dataclass
class ScriptedEngine:
    """Stands in for the diffusion model to test the orchestration: batch k returns `plan[k]`, where
    True is a clean, scannable code and False a blank image."""

    plan: list[list[bool]]
    calls: list[list[int]] = field(default_factory=list)
    spec: parameters.ModelSpec = field(default_factory=lambda: parameters.ModelSpec(tiny=True))

    returned: int = 0  # calls that have returned

    def generate(self, control, params, seeds, init_image=None, on_step=None, on_decoded=None):
        batch = self.plan[len(self.calls)]
        self.calls.append(list(seeds))
        for step in range(1, params.steps + 1):
            if on_step:
                on_step(step, params.steps)
        blank = Image.new("RGB", control.size, (128, 128, 128))
        images = [control.copy() if ok else blank.copy() for ok in batch]
        for image in images:  # one at a time, as `Engine.decode_group` 1 hands them over
            if on_decoded:
                on_decoded([image])
        self.returned += 1
        return images

    def score_aesthetics(self, images):
        return [float(i) for i in range(len(images))]


class TestBestOfN:
    def test_it_stops_after_the_first_batch_with_a_scannable_code(self):
        engine = ScriptedEngine([[False, True, False, True], [True] * 4])
        result = ranking.best_of_n(engine, URL, FAST, ranking.BestOfNConfig(n=4, seed=10, repair=False))
        assert engine.calls == [[10, 11, 12, 13]]
        assert result.batches == 1 and result.scannable
        assert [c.seed for c in result.candidates[:2]] == [13, 11]  # passing, prettiest first
        assert result.message == "2 of 4 candidates scan."

    def test_it_spends_the_budget_then_says_so_plainly(self):
        engine = ScriptedEngine([[False] * 2, [False] * 2, [False] * 2])
        config = ranking.BestOfNConfig(n=2, max_batches=3, seed=0, repair=False)
        result = ranking.best_of_n(engine, URL, FAST, config)
        assert len(engine.calls) == 3 and result.batches == 3 and not result.scannable
        assert len(result.candidates) == 6 and [c.seed for c in sorted(result.candidates, key=lambda c: c.index)] \
            == list(range(6))
        assert result.message.startswith("No scannable code after 3 batch(es) of 2")
        # what to do in the page's own words first: its "More scannable" look, not only the advanced settings
        assert "Try the More scannable look, a simpler prompt, or a shorter link" in result.message

    def test_it_generates_another_batch_only_when_none_passes(self):
        engine = ScriptedEngine([[False, False], [False, True]])
        result = ranking.best_of_n(engine, URL, FAST, ranking.BestOfNConfig(n=2, seed=5, repair=False))
        assert engine.calls == [[5, 6], [7, 8]]
        assert result.candidates[0].seed == 8 and result.candidates[0].rank == 1

    def test_it_repairs_before_paying_for_another_batch(self):
        # A real failing candidate: a clean code with a fifth of its module centres flipped.
        engine = ScriptedEngine([[True, True]])
        code = qr.encode(URL)
        control = qr.render_control_image(code, 256)
        rng = np.random.default_rng(0)
        broken = np.asarray(control).copy()
        pitch = 256 / (code.size + 8)
        for r, c in zip(*np.nonzero((rng.random(code.matrix.shape) < 0.2) & ~code.function_mask), strict=True):
            y, x = int((r + 4.5) * pitch), int((c + 4.5) * pitch)
            broken[y - 1 : y + 2, x - 1 : x + 2] = 0 if not code.matrix[r, c] else 255
        broken_image = Image.fromarray(broken)
        assert not scan.verify(broken_image, URL).passed

        def generate(control, params, seeds, init_image=None, on_step=None, on_decoded=None):
            engine.calls.append(list(seeds))
            return [broken_image.copy() for _ in seeds]  # hands nothing over as it decodes: verified after

        engine.generate = generate
        result = ranking.best_of_n(engine, URL, FAST, ranking.BestOfNConfig(n=2, seed=1, max_batches=2))
        assert len(engine.calls) == 1, "repair should have spared the second batch"
        best = result.candidates[0]
        assert best.repaired and best.passed and 0 < best.pixels_changed < 0.2 and best.ssim > 0.5

    def test_it_reports_progress_through_every_stage(self):
        seen: list[tuple[str, float]] = []
        engine = ScriptedEngine([[True]])
        ranking.best_of_n(engine, URL, FAST, ranking.BestOfNConfig(n=1, seed=0),
                          on_progress=lambda stage, f: seen.append((stage, f)))
        stages = [s for s, _ in seen]
        assert stages[0] == "generating" and "scoring" in stages and stages[-1] == "done"
        fractions = [f for _, f in seen]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0

    def test_it_hands_each_candidate_over_and_verifies_it_as_soon_as_it_is_decoded(self, monkeypatch):
        engine = ScriptedEngine([[False, False], [True, False]])
        events = []  # (kind, images, engine calls returned so far)
        calls = []  # engine calls made when images were handed over
        verify = ranking.submit_verify
        monkeypatch.setattr(ranking, "submit_verify", lambda images, *a, **k: events.append(
            ("verify", images, engine.returned)) or verify(images, *a, **k))
        result = ranking.best_of_n(engine, URL, FAST, ranking.BestOfNConfig(n=2, seed=0, repair=False),
                                   on_images=lambda images: events.append(("drawn", images, engine.returned))
                                   or calls.append(len(engine.calls)))
        # the control image first, before the engine is called (its PNG is encoded meanwhile), then the candidates
        control, *events = events
        assert control == ("drawn", [result.control], 0) and calls[0] == 0
        assert [kind for kind, *_ in events] == ["drawn", "verify"] * 4
        assert all(events[i][1] is events[i + 1][1] and len(events[i][1]) == 1 for i in range(0, 8, 2))
        # each batch's candidates are verified while the engine is still decoding the rest of it
        assert [returned for *_, returned in events] == [0, 0, 0, 0, 1, 1, 1, 1]
        assert {id(c.image) for c in result.candidates} == {id(image) for _, images, _ in events for image in images}
        assert [c.passed for c in sorted(result.candidates, key=lambda c: c.index)] == [False, False, True, False]

    def test_it_refuses_bad_requests(self):
        engine = ScriptedEngine([[True]])
        with pytest.raises(qr.ContentError, match="too long"):
            ranking.best_of_n(engine, "x" * 200, FAST)
        with pytest.raises(ValueError, match="Candidates per batch"):
            ranking.best_of_n(engine, URL, FAST, ranking.BestOfNConfig(n=0))
        assert engine.calls == []


def test_best_of_eight_with_the_tiny_model(tiny_engine):
    config = ranking.BestOfNConfig(n=8, max_batches=1, seed=42, repair=False)
    result = ranking.best_of_n(tiny_engine, URL, FAST, config)
    assert len(result.candidates) == 8
    assert sorted(c.seed for c in result.candidates) == list(range(42, 50))
    assert [c.rank for c in result.candidates] == list(range(1, 9))
    assert all(c.aesthetic is not None for c in result.candidates)
    again = ranking.best_of_n(tiny_engine, URL, FAST, config)
    assert [c.seed for c in again.candidates] == [c.seed for c in result.candidates]


class TestVerifierPool:
    def test_it_gives_the_inline_verdicts_in_input_order(self):
        code = qr.encode(URL)
        clean = qr.render_control_image(code, 300)
        blank = Image.new("RGB", (300, 300), "white")
        images = [clean, blank, clean, blank]
        inline = ranking.verify_many(images, code.content, 0.5, workers=1)
        pooled = ranking.verify_many(images, code.content, 0.5, workers=2)
        assert [r.verdict for r in pooled] == ["pass", "fail", "pass", "fail"]
        assert [r.scan_probability for r in pooled] == [r.scan_probability for r in inline]

    def test_with_two_three_or_six_processes_an_image_it_splits_each_verdict_and_gives_the_same(self, monkeypatch):
        code = qr.encode(URL)
        clean = qr.render_control_image(code, 300)
        blank = Image.new("RGB", (300, 300), "white")
        parts: list = []
        monkeypatch.setattr(ranking, "_submit", _counting(ranking._submit, parts))
        inline = ranking.verify_many([clean, blank], code.content, 0.5, workers=1)
        halves = ranking.verify_many([clean, blank], code.content, 0.5, workers=5)
        thirds = ranking.verify_many([clean, blank], code.content, 0.5, workers=6)
        # a CUDA engine's hand-over, one image at a time on a 16-core host
        one_image = [ranking.verify_many([image], code.content, 0.5, workers=16)[0] for image in (clean, blank)]
        # one task an image inline, two an image with five processes for two images, three with six, six with 16
        assert parts == [2, 4, 6, 6, 6]
        assert [r.verdict for r in thirds] == [r.verdict for r in one_image] == ["pass", "fail"]
        for split in (halves, thirds, one_image):
            assert [{**r.to_dict(), "seconds": 0} for r in split] == [{**r.to_dict(), "seconds": 0} for r in inline]

    def test_its_processes_load_the_readers_as_they_start(self, monkeypatch):
        # Whatever a process is given first: with a verdict in six parts, a process whose first WeChat part came in a
        # job loaded WeChat's nets there (the first timed job's last verdict on an H100, 0.143 s against ~0.065 s).
        from generator.core.codes import decoders

        monkeypatch.setattr(ranking, "_pool", None)  # a pool of new processes, put back afterwards
        monkeypatch.setattr(ranking, "_pool_size", 0)
        pool = ranking.verifier_pool(2)
        try:
            assert pool.submit(decoders.wechat_loaded).result() is True
        finally:
            pool.shutdown()

    def test_its_processes_run_opencv_on_one_thread(self):
        import cv2

        assert ranking.verifier_pool(2).submit(cv2.getNumThreads).result() == 1

    def test_its_processes_exit_when_the_process_that_made_them_is_killed(self, tmp_path):
        import os
        import signal
        import subprocess
        import sys
        import time
        from pathlib import Path

        script = tmp_path / "pool_owner.py"
        script.write_text(
            "import os, sys, time\n"
            "from generator.core.engines import ranking\n"
            "if __name__ == '__main__':\n"
            "    pool = ranking.verifier_pool(2)\n"
            "    pids = {pool.submit(os.getpid).result() for _ in range(8)}\n"
            "    print(' '.join(map(str, sorted(pids))), flush=True)\n"
            "    time.sleep(120)\n"
        )
        root = Path(__file__).resolve().parents[4]
        owner = subprocess.Popen([sys.executable, str(script)], cwd=root, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(root)})
        try:
            pids = [int(pid) for pid in owner.stdout.readline().split()]
            assert pids and owner.pid not in pids
            owner.send_signal(signal.SIGKILL)  # no atexit, no pool shutdown: as when the OOM killer strikes
            owner.wait(10)
            deadline = time.monotonic() + 15
            alive = pids
            while alive and time.monotonic() < deadline:
                time.sleep(0.5)
                alive = [pid for pid in pids if _running(pid)]
            assert alive == []
        finally:
            owner.kill()


    def test_its_processes_outlive_a_stop_signalled_to_the_workers_process_group(self, tmp_path):
        # make run stops the worker's process group (SIGTERM, after which the worker finishes its job): that signal
        # killed the pool's processes, and the job verifying its candidates failed with BrokenProcessPool.
        import os
        import signal
        import subprocess
        import sys
        from pathlib import Path

        script = tmp_path / "pool_owner.py"
        script.write_text(
            "import os, signal, time\n"
            "from generator.core.engines import ranking\n"
            "if __name__ == '__main__':\n"
            "    signal.signal(signal.SIGTERM, lambda *_: None)  # RQ's warm stop: the job goes on\n"
            "    pool = ranking.verifier_pool(2)\n"
            "    list(pool.map(time.sleep, [0.01, 0.01]))  # both processes started, as warm_verifier does\n"
            "    futures = [pool.submit(time.sleep, 3) for _ in range(2)]  # a job verifying\n"
            "    print('verifying', flush=True)\n"
            "    try:\n"
            "        print([future.result() for future in futures], flush=True)\n"
            "    except Exception as exc:\n"
            "        print(type(exc).__name__, flush=True)\n"
        )
        root = Path(__file__).resolve().parents[4]
        owner = subprocess.Popen([sys.executable, str(script)], cwd=root, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "PYTHONPATH": str(root)}, start_new_session=True)
        try:
            assert owner.stdout.readline().strip() == "verifying"
            os.killpg(owner.pid, signal.SIGTERM)
            assert owner.stdout.readline().strip() == "[None, None]"
            owner.wait(10)
        finally:
            owner.kill()


def _running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


class TestRepairMany:
    def test_rounds_tried_at_once_give_what_rounds_one_by_one_give(self):
        code, art = blended(0)
        _, broken, _ = corrupted(1)
        grid = grids.grid_from_code(code, SIZE, 4)
        befores = [scan.verify(image, ART_URL) for image in (art, broken)]
        assert not any(b.passed for b in befores)
        one_by_one = [repair.repair(image, grid, ART_URL, before=b) for image, b in zip((art, broken), befores,
                                                                                       strict=True)]
        # Neither holds the margin at the first round, so waves of two (4 processes, 2 images) hold failing rounds.
        assert all(r.passed and r.margin > repair.MARGINS[0] for r in one_by_one)
        for workers in (1, 4):
            at_once = ranking.repair_many([art, broken], befores, grid, ART_URL, 0.5, workers)
            for a, b in zip(at_once, one_by_one, strict=True):
                assert a.passed and a.margin == b.margin and a.modules == b.modules
                assert a.image.tobytes() == b.image.tobytes()

    def test_an_image_no_margin_fixes_keeps_its_strongest_attempt(self):
        code = qr.encode(URL)
        grid = grids.grid_from_code(code, 256, 4)
        noise = Image.fromarray(np.random.default_rng(3).integers(0, 256, (256, 256), dtype=np.uint8)).convert("RGB")
        before = scan.verify(noise, URL)
        [result] = ranking.repair_many([noise], [before], grid, URL, 0.5, 4, margins=(8, 16))
        assert result.margin == 16 and not result.after.passed


def _counting(submit, counts: list):
    """`ranking._submit`, noting how many tasks each call hands over."""

    def counted(tasks, workers):
        counts.append(len(tasks))
        return submit(tasks, workers)

    return counted
