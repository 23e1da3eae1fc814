from __future__ import annotations

import json
import math

import numpy as np
import pytest

from generator.core.evals import alignment


class TestAlign:
    def test_it_scores_a_perfect_verifier(self):
        report = alignment.align([0.9, 0.8, 0.2, 0.1], [True, True, False, False])
        assert report.confusion == alignment.Confusion(true_positive=2, false_positive=0, false_negative=0,
                                                       true_negative=2)
        assert (report.accuracy, report.balanced_accuracy, report.roc_auc) == (1.0, 1.0, 1.0)
        assert report.count == 4 and report.scanned == 2

    def test_it_scores_an_inverted_verifier(self):
        report = alignment.align([0.1, 0.2, 0.8, 0.9], [True, True, False, False])
        assert report.confusion == alignment.Confusion(0, 2, 2, 0)
        assert (report.accuracy, report.balanced_accuracy, report.roc_auc) == (0.0, 0.0, 0.0)

    def test_it_counts_ties_as_half_in_the_auc(self):
        assert alignment.align([0.5, 0.5, 0.5], [True, False, True]).roc_auc == 0.5
        # pairs (pos, neg): 0.6>0.3, 0.6<0.7, 0.3=0.3, 0.3<0.7 -> (1 + 0.5) / 4
        assert alignment.auc(np.array([0.6, 0.3, 0.3, 0.7]), np.array([1, 1, 0, 0])) == 1.5 / 4

    def test_it_balances_accuracy_over_uneven_classes(self):
        # three readable (all passed), one unreadable (passed too): accuracy 0.75, balanced 0.5
        report = alignment.align([0.9, 0.9, 0.9, 0.9], [True, True, True, False])
        assert report.accuracy == 0.75 and report.balanced_accuracy == 0.5

    def test_it_finds_the_threshold_with_the_best_balanced_accuracy(self):
        # at 0.5 the readable image at 0.3 fails; at 0.3 everything agrees
        report = alignment.align([0.9, 0.3, 0.2, 0.1], [True, True, False, False], threshold=0.5)
        assert report.balanced_accuracy == 0.75
        assert report.best_threshold == 0.3 and report.best_balanced_accuracy == 1.0

    def test_it_has_no_best_threshold_with_one_class(self):
        report = alignment.align([0.9, 0.4], [True, True])
        assert report.best_threshold is None and math.isnan(report.roc_auc)
        assert report.to_dict()["roc_auc"] is None and report.to_dict()["balanced_accuracy"] is None

    def test_it_bins_probabilities_for_calibration(self):
        report = alignment.align([0.05, 0.15, 0.12, 0.95, 1.0], [False, True, False, True, True], bins=10)
        bins = report.calibration
        assert len(bins) == 10 and [b.count for b in bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
        assert bins[1].mean_predicted == pytest.approx(0.135) and bins[1].observed_rate == 0.5
        assert bins[2].mean_predicted is None and bins[9].low == 0.9 and bins[9].observed_rate == 1.0

    def test_it_breaks_figures_down_by_group(self):
        report = alignment.align([0.9, 0.1, 0.9, 0.1], [True, False, False, True],
                                 groups=["iPhone", "iPhone", "Pixel", "Pixel"])
        by_name = {g.group: g for g in report.groups}
        assert list(by_name) == ["Pixel", "iPhone"]
        assert by_name["iPhone"].accuracy == 1.0 and by_name["Pixel"].accuracy == 0.0
        assert by_name["Pixel"].count == 2 and by_name["Pixel"].scanned == 1

    def test_it_serialises_to_json(self):
        data = alignment.align([0.9, 0.1], [True, False], groups=["a", "b"]).to_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["confusion"]["true_positive"] == 1 and data["groups"][0]["group"] == "a"

    @pytest.mark.parametrize("args, kwargs, message", [
        (([0.5], [True, False]), {}, "1 probabilities but 2 labels"),
        (([1.5], [True]), {}, "must lie in [0, 1]"),
        (([0.5], [True]), {"threshold": 2.0}, "threshold must lie"),
        (([0.5], [True], ["a", "b"]), {}, "group labels"),
    ])
    def test_it_rejects_bad_inputs(self, args, kwargs, message):
        with pytest.raises(ValueError) as exc:
            alignment.align(*args, **kwargs)
        assert message in str(exc.value)


class TestAgreement:
    def test_it_matches_the_bench_figures(self):
        acc, bal, roc = alignment.agreement(np.array([1.0, 0.0, 1.0]), np.array([0.8, 0.2, 0.6]),
                                            np.array([1.0, 0.0, 0.0]))
        assert acc == pytest.approx(2 / 3) and bal == 0.75 and roc == 1.0
