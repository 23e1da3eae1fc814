"""Alignment of the scan verifier with people: does `scan_probability` agree with whether a phone read it?

Plain Python (numpy only), importable without Django. The input is pairs (scan_probability, human_scanned)
with optional group labels (the phone or app that made the attempt); the output is the usual agreement
figures - confusion matrix, accuracy, balanced accuracy, ROC AUC - plus the threshold that would have
agreed best, a calibration table and a per-group breakdown.

`auc` and `agreement` are also what `bench/calibrate_verifier.py` reports against synthetic labels, so the
bench and the human evals measure agreement the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

DEFAULT_BINS = 10


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by pairwise comparison (ties count half).

    Args:
        scores (np.ndarray): the verifier's scores; higher means more likely readable.
        labels (np.ndarray): 1 where readable, 0 where not.

    Returns:
        The probability that a random readable item outscores a random unreadable one; NaN without both.
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, float)
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def agreement(pred: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Accuracy, balanced accuracy and ROC AUC of predictions against labels.

    Args:
        pred (np.ndarray): 1 where the verifier says readable, 0 where not.
        scores (np.ndarray): the scores the predictions came from (for the AUC).
        labels (np.ndarray): 1 where readable, 0 where not.

    Returns:
        (accuracy, balanced accuracy, ROC AUC); balanced accuracy is NaN unless both labels occur.
    """
    pred, labels = np.asarray(pred, float), np.asarray(labels, float)
    accuracy = float((pred == labels).mean()) if len(labels) else float("nan")
    tpr = float(pred[labels == 1].mean()) if (labels == 1).any() else float("nan")
    tnr = float((1 - pred[labels == 0]).mean()) if (labels == 0).any() else float("nan")
    return accuracy, (tpr + tnr) / 2, auc(scores, labels)


@dataclass(frozen=True)
class Confusion:
    """Counts at one threshold; "positive" means readable."""

    true_positive: int  # verifier passes, person scanned it
    false_positive: int  # verifier passes, person could not scan it: the costly error
    false_negative: int  # verifier fails, person scanned it
    true_negative: int  # verifier fails, person could not scan it


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of the calibration table: items whose probability lies in [low, high)."""

    low: float
    high: float
    count: int
    mean_predicted: float | None  # None for an empty bin
    observed_rate: float | None


@dataclass(frozen=True)
class GroupAlignment:
    """The headline figures for one group (a device or an app)."""

    group: str
    count: int
    scanned: int
    accuracy: float
    balanced_accuracy: float
    roc_auc: float


@dataclass
class AlignmentReport:
    """How well the verifier's probabilities agree with human scans (see the module docstring)."""

    count: int
    scanned: int
    threshold: float
    confusion: Confusion
    accuracy: float
    balanced_accuracy: float
    roc_auc: float
    best_threshold: float | None  # None when there is nothing to search
    best_balanced_accuracy: float
    calibration: list[CalibrationBin] = field(default_factory=list)
    groups: list[GroupAlignment] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict; NaN becomes None (JSON has no NaN)."""
        return _without_nan(asdict(self))


def _without_nan(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nan(v) for v in value]
    return value


def confusion(scores: np.ndarray, labels: np.ndarray, threshold: float) -> Confusion:
    """The confusion matrix when the verifier passes items with score >= threshold.

    Args:
        scores (np.ndarray): scan probabilities.
        labels (np.ndarray): 1 where a person scanned the item, 0 where not.
        threshold (float): the pass threshold.

    Returns:
        A `Confusion`.
    """
    pred, labels = np.asarray(scores) >= threshold, np.asarray(labels) == 1
    return Confusion(
        true_positive=int((pred & labels).sum()),
        false_positive=int((pred & ~labels).sum()),
        false_negative=int((~pred & labels).sum()),
        true_negative=int((~pred & ~labels).sum()),
    )


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float | None, float]:
    """The threshold (one of the distinct scores) that maximises balanced accuracy; the lowest on ties.

    Args:
        scores (np.ndarray): scan probabilities.
        labels (np.ndarray): 1 where a person scanned the item, 0 where not.

    Returns:
        (threshold, its balanced accuracy); (None, NaN) without both labels, since balanced accuracy
        is then undefined.
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, float)
    if not ((labels == 1).any() and (labels == 0).any()):
        return None, float("nan")
    best, best_bal = None, -1.0
    for candidate in np.unique(scores):
        _, bal, _ = agreement((scores >= candidate).astype(float), scores, labels)
        if bal > best_bal + 1e-12:
            best, best_bal = float(candidate), bal
    return best, best_bal


def calibration(scores: np.ndarray, labels: np.ndarray, bins: int = DEFAULT_BINS) -> list[CalibrationBin]:
    """Mean predicted probability against the observed scan rate, in equal-width bins over [0, 1].

    Args:
        scores (np.ndarray): scan probabilities in [0, 1].
        labels (np.ndarray): 1 where a person scanned the item, 0 where not.
        bins (int, *optional*, defaults to 10): how many bins; the last one includes 1.0.

    Returns:
        One `CalibrationBin` per bin, empty bins included (count 0, means None).
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels, float)
    index = np.clip((scores * bins).astype(int), 0, bins - 1)
    table = []
    for i in range(bins):
        sel = index == i
        count = int(sel.sum())
        table.append(CalibrationBin(
            low=i / bins, high=(i + 1) / bins, count=count,
            mean_predicted=float(scores[sel].mean()) if count else None,
            observed_rate=float(labels[sel].mean()) if count else None,
        ))
    return table


def align(
    scan_probabilities: Sequence[float],
    scanned: Sequence[bool],
    groups: Sequence[str] | None = None,
    *,
    threshold: float = 0.5,
    bins: int = DEFAULT_BINS,
) -> AlignmentReport:
    """Measure how well scan probabilities agree with human scans.

    Args:
        scan_probabilities (Sequence[float]): the verifier's probability per item, each in [0, 1].
        scanned (Sequence[bool]): whether a person's phone read the item.
        groups (Sequence[str], *optional*): a label per item (device or app) for the per-group breakdown.
        threshold (float, *optional*, defaults to 0.5): the pass threshold for the confusion matrix,
            accuracy and balanced accuracy.
        bins (int, *optional*, defaults to 10): calibration bins.

    Returns:
        An `AlignmentReport`.

    Raises:
        ValueError: lengths differ, a probability or the threshold lies outside [0, 1], or bins < 1.
    """
    # 1. Check inputs
    scores = np.asarray(list(scan_probabilities), dtype=float)
    labels = np.asarray([bool(s) for s in scanned], dtype=float)
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} probabilities but {len(labels)} labels")
    if groups is not None and len(groups) != len(scores):
        raise ValueError(f"{len(scores)} probabilities but {len(groups)} group labels")
    if ((scores < 0) | (scores > 1) | np.isnan(scores)).any():
        raise ValueError("scan probabilities must lie in [0, 1]")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")

    # 2. Headline figures at the threshold
    pred = (scores >= threshold).astype(float)
    accuracy, balanced, roc = agreement(pred, scores, labels)

    # 3. Threshold search, calibration, groups
    best, best_bal = best_threshold(scores, labels)
    per_group = []
    if groups is not None:
        names = np.asarray([str(g) for g in groups])
        for name in sorted(set(names.tolist())):
            sel = names == name
            acc, bal, auc_ = agreement(pred[sel], scores[sel], labels[sel])
            per_group.append(GroupAlignment(group=name, count=int(sel.sum()), scanned=int(labels[sel].sum()),
                                            accuracy=acc, balanced_accuracy=bal, roc_auc=auc_))
    return AlignmentReport(
        count=len(scores), scanned=int(labels.sum()), threshold=threshold,
        confusion=confusion(scores, labels, threshold), accuracy=accuracy, balanced_accuracy=balanced,
        roc_auc=roc, best_threshold=best, best_balanced_accuracy=best_bal,
        calibration=calibration(scores, labels, bins), groups=per_group,
    )
