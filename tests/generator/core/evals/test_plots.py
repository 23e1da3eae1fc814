"""Plots: matplotlib figures into PNG bytes, for the eval pages and reports."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from generator.core.evals import alignment, plots


def png_size(fig) -> tuple[int, int]:
    return Image.open(io.BytesIO(plots.to_png(fig))).size


class TestRocPoints:
    def test_it_walks_the_threshold_down_through_every_score(self):
        fpr, tpr = plots.roc_points([0.9, 0.8, 0.7, 0.6], [True, False, True, False])
        assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
        assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]

    def test_it_encloses_the_area_alignment_reports(self):
        scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1, 0.4]
        labels = [True, True, False, True, True, False, False, False, False]
        fpr, tpr = plots.roc_points(scores, labels)
        area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoids: ties count half
        assert abs(area - alignment.auc(np.array(scores), np.array(labels, float))) < 1e-12

    def test_it_is_empty_without_both_labels(self):
        fpr, tpr = plots.roc_points([0.9, 0.2], [True, True])
        assert len(fpr) == 0 and len(tpr) == 0


class TestAlignmentFigures:
    def test_it_draws_the_calibration_plot(self):
        report = alignment.align([0.9, 0.8, 0.3, 0.1], [True, False, False, False])
        fig = plots.calibration_figure(report.calibration)
        assert png_size(fig) == (500, 420)
        assert len(fig.axes[0].collections) == 1  # one dot per filled bin, in one scatter

    def test_it_draws_the_roc_curve_with_its_area(self):
        fig = plots.roc_figure([0.9, 0.8, 0.3, 0.1], [True, False, True, False], auc=0.75)
        assert png_size(fig) == (500, 420)
        assert "AUC 0.750" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()][1]

    def test_it_says_what_is_missing_without_both_labels(self):
        fig = plots.roc_figure([0.9, 0.8], [True, True])
        assert "needs codes that scanned and codes that did not" in [t.get_text() for t in fig.axes[0].texts]
