from __future__ import annotations

import numpy as np
import pytest

from generator.core.codes import decision
from generator.core.evals import calibration

# A model over two features, standing in for the shipped one (whose features another change may rename).
TEMPLATE = decision.DecisionModel(-3.0, (("reads", 1.0), ("noise", 1.0)), "test-form")


def table(scanned: int, not_scanned: int, seed: int = 1, overlap: float = 0.0) -> tuple[list[dict], list[bool]]:
    """A labelled feature table: `reads` separates the classes (less so with `overlap`), `noise` says nothing."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for label, count in ((True, scanned), (False, not_scanned)):
        for _ in range(count):
            centre = 0.5 + (0.35 - overlap) * (1 if label else -1)
            rows.append({"reads": float(np.clip(centre + rng.normal(0, 0.1), 0, 1)), "noise": float(rng.random())})
            labels.append(label)
    return rows, labels


class TestStratifiedFolds:
    def test_it_spreads_each_class_evenly_over_the_folds(self):
        labels = [True] * 20 + [False] * 10
        folds = calibration.stratified_folds(labels, 5)
        for f in range(5):
            assert (folds[:20] == f).sum() == 4 and (folds[20:] == f).sum() == 2

    def test_it_gives_the_same_folds_for_the_same_seed(self):
        labels = [True] * 12 + [False] * 12
        assert (calibration.stratified_folds(labels, 4) == calibration.stratified_folds(labels, 4)).all()
        assert (calibration.stratified_folds(labels, 4) != calibration.stratified_folds(labels, 4, seed=9)).any()

    def test_it_keeps_one_images_labels_in_one_fold(self):
        # Three phones per image, one of them disagreeing: the image still lands in one fold.
        labels = [True, True, False] * 6 + [False, False, True] * 6
        groups = [i // 3 for i in range(len(labels))]
        folds = calibration.stratified_folds(labels, 3, groups)
        for image in range(12):
            assert len(set(folds[image * 3:(image + 1) * 3])) == 1
        # six scanned images and six not, two of each per fold
        assert sorted(np.bincount(folds[::3][:6])) == [2, 2, 2]

    @pytest.mark.parametrize("labels, folds, message", [
        ([True] * 5 + [False] * 3, 4, "4 folds need at least 4 images of each class"),
        ([True] * 5 + [False] * 5, 1, "at least 2 folds"),
    ])
    def test_it_refuses_folds_the_labels_cannot_fill(self, labels, folds, message):
        with pytest.raises(ValueError, match=message):
            calibration.stratified_folds(labels, folds)


class TestCalibrate:
    def test_it_fits_the_templates_features_and_form(self):
        rows, labels = table(40, 40)
        result = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE)
        assert result.model.form == "test-form"
        assert [name for name, _ in result.model.weights] == ["reads", "noise"]
        weights = dict(result.model.weights)
        assert weights["reads"] > 1.0 and weights["noise"] < weights["reads"] / 5
        assert result.labels == 80 and result.scanned == 40 and result.warning == ""

    def test_it_cross_validates_a_separable_table_perfectly(self):
        rows, labels = table(30, 30)
        result = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE)
        assert result.cross_validated == calibration.Figures(1.0, 1.0, 1.0)

    def test_it_reports_the_current_model_on_the_same_labels(self):
        rows, labels = table(30, 30)
        # Passes everything: accuracy is the share scanned, balanced accuracy a half.
        lenient = decision.DecisionModel(5.0, (("reads", 0.0),))
        result = calibration.calibrate(rows, labels, current=lenient, template=TEMPLATE)
        assert result.current_model == lenient.id
        assert (result.current.accuracy, result.current.balanced_accuracy) == (0.5, 0.5)

    def test_it_pools_out_of_fold_predictions_below_the_in_sample_fit(self):
        # Overlapping classes: a model tested on its own training labels looks better than out of fold.
        rows, labels = table(30, 30, overlap=0.3)
        result = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE)
        in_sample = calibration.figures([result.model.probability(r) for r in rows], labels, 0.5)
        assert 0.5 < result.cross_validated.roc_auc <= in_sample.roc_auc
        assert result.cross_validated.accuracy < 1.0

    def test_it_is_reproducible(self):
        rows, labels = table(30, 20, overlap=0.25)
        first = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE)
        again = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE)
        assert first == again

    def test_it_refuses_fewer_than_15_labels_of_a_class(self):
        rows, labels = table(40, 14)
        with pytest.raises(calibration.TooFewLabels, match="14 not scanned"):
            calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE)

    def test_it_warns_below_30_labels_of_a_class(self):
        rows, labels = table(29, 40)
        result = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE)
        assert "29 scanned" in result.warning and "forced" in result.warning

    def test_it_warns_when_the_labels_are_of_few_distinct_images(self):
        rows, labels = table(30, 30)
        groups = [i // 3 for i in range(60)]  # each image labelled by three phones: 10 scanned, 10 not
        result = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE, groups=groups)
        assert "10 scanned and 10 not scanned distinct images" in result.warning and "Only" not in result.warning
        assert result.to_dict()["images"] == {"scanned": 10, "not_scanned": 10}
        one_each = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE)
        assert one_each.warning == "" and one_each.to_dict()["images"] == {"scanned": 30, "not_scanned": 30}

    def test_it_counts_a_missing_feature_as_zero(self):
        rows, labels = table(20, 20)
        for row in rows:
            del row["noise"]
        result = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE)
        assert dict(result.model.weights)["noise"] == 0.0

    def test_it_gives_json_ready_figures(self):
        rows, labels = table(20, 20)
        data = calibration.calibrate(rows, labels, current=TEMPLATE, template=TEMPLATE, folds=4).to_dict()
        assert {"labels", "current", "cross_validated", "model"} <= set(data)
        assert data["current"]["model"] == TEMPLATE.id and data["folds"] == 4
        assert set(data["cross_validated"]) == {"accuracy", "balanced_accuracy", "roc_auc"}
        assert data["warning"].startswith("Only 20 scanned")

    def test_it_gives_none_for_an_undefined_figure(self):
        assert calibration.Figures(1.0, float("nan"), float("nan")).to_dict() == {
            "accuracy": 1.0, "balanced_accuracy": None, "roc_auc": None}

    def test_it_refuses_mismatched_lengths(self):
        rows, labels = table(20, 20)
        with pytest.raises(ValueError, match="40 feature rows but 39 labels"):
            calibration.calibrate(rows, labels[:-1], current=TEMPLATE, template=TEMPLATE)
