"""The sweep report's figures on constructed examples: every number checked against a hand computation."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from generator.core.evals import statistics

PNG = b"\x89PNG\r\n\x1a\n"


def sample(config: dict, passes: int, candidates: int, aesthetic: float | None = 5.0, prompt: str = "a forest",
           status: str = "done", seconds: float | None = 10.0) -> dict:
    key = ",".join(f"{k}={v}" for k, v in sorted(config.items()))
    scores = [{"index": i, "verdict": "pass" if i < passes else "fail", "aesthetic_score": aesthetic,
               "image": f"{key}/{prompt}/{i}.png"} for i in range(candidates)]
    return {"prompt": prompt, "config": config, "config_key": key, "status": status,
            "scores": scores if status == "done" else [], "total_seconds": seconds}


def test_it_computes_the_wilson_interval():
    # 8 of 10: the textbook Wilson interval (0.4902, 0.9433).
    low, high = statistics.wilson_interval(8, 10)
    assert low == pytest.approx(0.49016, abs=1e-5)
    assert high == pytest.approx(0.94332, abs=1e-5)


def test_it_keeps_the_wilson_interval_wide_at_zero_passes():
    # At 0/n the upper bound is z^2 / (n + z^2), not 0 as the normal approximation would say.
    z2 = 1.959963984540054 ** 2
    assert statistics.wilson_interval(0, 10) == pytest.approx((0.0, z2 / (10 + z2)))
    assert all(math.isnan(v) for v in statistics.wilson_interval(0, 0))


def test_it_measures_batch_rates_from_the_stored_candidates():
    # 2 of 4 fail: a random pair is all failures in C(2,2)/C(4,2) = 1/6 of the draws.
    assert statistics.batch_scan_rate(4, 2, 2) == pytest.approx(5 / 6)
    assert statistics.batch_scan_rate(4, 2, 3) == 1.0
    assert statistics.batch_scan_rate(4, 4, 4) == 0.0
    with pytest.raises(ValueError, match="Batch size 5"):
        statistics.batch_scan_rate(4, 1, 5)


def test_it_averages_batch_rates_over_samples():
    # Samples (4 candidates, 2 fail) and (4, 3 fail):
    # k=1: (2/4 + 1/4)/2; k=2: (1 - 1/6 + 1 - 3/6)/2; k=3: (1 + 1 - 1/4)/2; k=4: 1; k=5: no sample that big.
    rates = statistics.measured_batch_rates([(4, 2), (4, 3)], sizes=(1, 2, 3, 4, 5))
    assert rates[:4] == pytest.approx([0.375, 2 / 3, 0.875, 1.0])
    assert math.isnan(rates[4])


def test_it_puts_the_independence_model_beside_the_measurement():
    assert statistics.model_batch_rates(3 / 8, sizes=(1, 2, 3)) == pytest.approx([3 / 8, 39 / 64, 1 - 125 / 512])


def test_it_marks_the_pareto_front():
    points = [(0.9, 5.0), (0.8, 6.0), (0.7, 5.5), (0.9, 4.0), (0.5, None), (0.8, 6.0)]
    # (0.7, 5.5) loses to (0.8, 6.0); (0.9, 4.0) to (0.9, 5.0); the unscored one to everything; equal points tie.
    assert statistics.pareto_front(points) == [True, True, False, False, False, True]
    assert statistics.pareto_front([(0.95, None), (0.5, 6.0)]) == [True, True]


def test_it_summarizes_each_configuration():
    a, b = {"conditioning_scale": 1.5}, {"conditioning_scale": 1.0}
    samples = [sample(a, 2, 4, aesthetic=4.0, seconds=10.0), sample(a, 1, 4, aesthetic=5.0, prompt="a koi",
                                                                        seconds=20.0),
               sample(b, 4, 4, aesthetic=6.0), sample(b, 0, 0, status="failed"), sample(b, 0, 0, status="queued")]
    first, second = statistics.summarize(samples, sizes=(1, 2))
    assert first.config_key == "conditioning_scale=1.0"  # grid order, by value
    assert (first.samples, first.failed, first.candidates, first.passes, first.scan_rate) == (1, 1, 4, 4, 1.0)
    assert (second.samples, second.candidates, second.passes) == (2, 8, 3)
    assert second.scan_rate == 3 / 8
    assert (second.scan_low, second.scan_high) == pytest.approx(statistics.wilson_interval(3, 8))
    assert second.batch_measured == pytest.approx([0.375, 2 / 3])
    assert second.batch_model == pytest.approx([0.375, 39 / 64])
    assert second.aesthetic_mean == 4.5 and second.aesthetic_median == 4.5
    assert (second.aesthetic_low, second.aesthetic_high) == (4.0, 5.0)
    assert second.latency_mean == 15.0 and second.latency_p95 == pytest.approx(19.5)
    assert (first.pareto, second.pareto) == (True, False)


def test_it_chooses_the_best_looking_configuration_that_scans_enough():
    samples = [sample({"cs": 1.0}, 3, 4, aesthetic=6.0), sample({"cs": 1.3}, 19, 20, aesthetic=5.5),
               sample({"cs": 1.6}, 20, 20, aesthetic=4.0)]
    summaries = statistics.summarize(samples)
    choice = statistics.choose(summaries, 0.9)
    assert choice.summary.config_key == "cs=1.3" and choice.met_target
    assert "best mean aesthetic" in choice.reason


def test_it_falls_back_to_the_highest_scan_rate_and_says_so():
    samples = [sample({"cs": 1.0}, 3, 4, aesthetic=6.0), sample({"cs": 1.6}, 7, 8, aesthetic=4.0)]
    summaries = statistics.summarize(samples)
    choice = statistics.choose(summaries, 0.95)
    assert choice.summary.config_key == "cs=1.6" and not choice.met_target
    assert choice.reason.startswith("no configuration scans at least 95%")


def test_it_builds_the_toast_grid_for_one_prompt():
    samples = [sample({"cs": cs, "start": st, "steps": 20}, p, 4, prompt=prompt)
               for cs, st, p in ((1.0, 0.0, 1), (1.0, 0.3, 2), (1.6, 0.0, 3), (1.6, 0.3, 4))
               for prompt in ("a forest", "a koi")]
    samples.append(sample({"cs": 1.0, "start": 0.0, "steps": 40}, 0, 4))  # another steps value: held out
    grid = statistics.toast_grid(samples, "a forest", "cs", "start", fixed={"cs": 9, "steps": 20})
    assert (grid.row_values, grid.col_values, grid.fixed) == ([1.0, 1.6], [0.0, 0.3], {"steps": 20})
    assert [[c.scan_rate for c in row] for row in grid.cells] == [[0.25, 0.5], [0.75, 1.0]]
    assert grid.cells[0][0].image == "cs=1.0,start=0.0,steps=20/a forest/0.png"


def test_it_shows_an_empty_toast_cell_when_nothing_finished_there():
    grid = statistics.toast_grid([sample({"cs": 1.0}, 1, 2), sample({"cs": 1.6}, 0, 0, status="queued")],
                             "a forest", "cs", None)
    assert [row[0].scan_rate for row in grid.cells] == [0.5, None]
    assert grid.cells[1][0].image is None


def test_it_draws_every_plot_as_png():
    summaries = statistics.summarize([sample({"cs": 1.0}, 1, 4), sample({"cs": 1.6}, 4, 4, aesthetic=None)])
    for draw in statistics.PLOTS.values():
        assert draw(summaries).startswith(PNG)


def test_it_draws_the_toast_plot_with_images_from_the_callable():
    grid = statistics.toast_grid([sample({"cs": 1.0}, 1, 2), sample({"cs": 1.6}, 2, 2)], "a forest", "cs", None)
    asked = []

    def load(name: str) -> Image.Image | None:
        asked.append(name)
        return Image.new("RGB", (32, 32), "red") if name.startswith("cs=1.0") else None  # one is missing

    assert statistics.toast_plot(grid, load).startswith(PNG)
    assert asked == ["cs=1.0/a forest/0.png", "cs=1.6/a forest/0.png"]
