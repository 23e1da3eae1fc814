"""Plots for the eval pages and reports, drawn with matplotlib into PNG bytes.

Plain Python, importable without Django. Modules that draw call `figure()`, draw on its axes, and hand it to
`to_png()`; pages embed the bytes (a view returns them, or a report writes them beside its HTML). Figures are made
without pyplot, so nothing global is kept between requests and no screen is needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from generator.core.evals import alignment


def figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A new figure of `width` x `height` inches at 100 dpi, laid out so labels are not cut off."""
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# Alignment of the scan verifier with human scans (the staff alignment page) ----------------------------------

def roc_points(scores: Sequence[float], labels: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve: false- and true-positive rates as the pass threshold falls through every distinct score.

    Args:
        scores (Sequence[float]): the verifier's scan probabilities.
        labels (Sequence[bool]): whether a person scanned each item.

    Returns:
        (false-positive rates, true-positive rates), both starting at 0 and ending at 1; empty arrays unless
        both labels occur.
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if not positives or not negatives:
        return np.array([]), np.array([])
    thresholds = np.unique(scores)[::-1]
    tpr = [0.0] + [float((labels & (scores >= t)).sum() / positives) for t in thresholds]
    fpr = [0.0] + [float((~labels & (scores >= t)).sum() / negatives) for t in thresholds]
    return np.array(fpr), np.array(tpr)


def calibration_figure(bins: Sequence[alignment.CalibrationBin]) -> Figure:
    """Mean scan probability against the observed scan rate per bin, each dot sized by its count.

    Args:
        bins (Sequence[CalibrationBin]): `alignment.calibration` output; empty bins are left out.

    Returns:
        The figure; a perfectly calibrated verifier puts every dot on the diagonal.
    """
    fig = figure(5.0, 4.2)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", linewidth=1, label="perfect calibration")
    full = [b for b in bins if b.count]
    if full:
        largest = max(b.count for b in full)
        ax.scatter([b.mean_predicted for b in full], [b.observed_rate for b in full],
                   s=[30 + 270 * b.count / largest for b in full], color="#5b3df5", alpha=0.8, zorder=3)
        ax.plot([b.mean_predicted for b in full], [b.observed_rate for b in full], color="#5b3df5", linewidth=1)
        for b in full:
            ax.annotate(str(b.count), (b.mean_predicted, b.observed_rate), textcoords="offset points",
                        xytext=(6, -12), fontsize=8, color="#5f6368")
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), xlabel="verifier's scan probability",
           ylabel="observed scan rate (people)", title="Calibration")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return fig


def roc_figure(scores: Sequence[float], labels: Sequence[bool], auc: float | None = None) -> Figure:
    """The ROC curve of the scan probability as a predictor of a person's scan.

    Args:
        scores (Sequence[float]): the verifier's scan probabilities.
        labels (Sequence[bool]): whether a person scanned each item.
        auc (float, *optional*): the area under the curve, shown in the legend.

    Returns:
        The figure; without both labels it says so instead of drawing a curve.
    """
    fig = figure(5.0, 4.2)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999999", linewidth=1, label="chance")
    fpr, tpr = roc_points(scores, labels)
    if len(fpr):
        label = "verifier" if auc is None or auc != auc else f"verifier (AUC {auc:.3f})"
        ax.plot(fpr, tpr, color="#5b3df5", linewidth=2, label=label)  # ties rise diagonally
    else:
        ax.text(0.5, 0.5, "needs codes that scanned and codes that did not", ha="center", va="center",
                color="#5f6368")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="false-positive rate (passes people could not scan)",
           ylabel="true-positive rate", title="ROC")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return fig
