"""Calibration of the scan verifier on people's labels: fit its decision model, and say how well the fit generalises.

Plain Python (numpy only), importable without Django. The input is a table of verifier features (one mapping per
label, as `scan.ScanResult.features` gives them) and whether a person's phone read the image; the output is a
`decision.DecisionModel` fitted to every label (`decision.fit_weights`: class-balanced, non-negative logistic) and
figures that say what to expect of it on images it has not seen:

- k-fold cross-validation, stratified by label with a fixed seed: the model is fitted k times, each time without
  one fold, and predicts that fold; the figures (accuracy, balanced accuracy, ROC AUC, from
  `generator.core.evals.alignment`) are computed once over all the pooled out-of-fold probabilities, which is
  steadier than averaging k small folds;
- the current model's figures on the same labels, so a new model is judged against what it would replace.

Labels of one image (several phones scanning the same code) can share a group: a group stays in one fold, so the
model is never tested on an image it was trained on.

Labels are scarce (a labeling sitting gives a few hundred at best), so the rules are explicit: fewer than
`MIN_PER_CLASS` labels of either class fit nothing (`TooFewLabels`); fewer than `FULL_PER_CLASS` fit and report
with a warning (`Calibration.warning`), and the Django layer refuses to activate such a model unless forced. Labels
of fewer than `FULL_PER_CLASS` distinct images of a class (one image scanned by several phones) are warned about too.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from generator.core.codes import decision, scan
from generator.core.evals import alignment

MIN_PER_CLASS = 15  # below this, a fit of five weights and a bias mostly learns noise: nothing is fitted
FULL_PER_CLASS = 30  # below this, the figures are too wide to trust blindly: a warning, and activation needs force
DEFAULT_FOLDS = 5
SEED = 0  # the folds' shuffle: the same labels always give the same folds, figures and model


class TooFewLabels(ValueError):
    """Fewer than `MIN_PER_CLASS` labels of a class: nothing can be fitted."""


@dataclass(frozen=True)
class Figures:
    """Agreement with people's labels at the pass threshold (NaN where undefined)."""

    accuracy: float
    balanced_accuracy: float
    roc_auc: float

    def to_dict(self) -> dict[str, float | None]:
        """A JSON-ready dict; NaN becomes None (JSON has no NaN)."""
        return {k: None if math.isnan(v) else round(v, 4) for k, v in
                (("accuracy", self.accuracy), ("balanced_accuracy", self.balanced_accuracy),
                 ("roc_auc", self.roc_auc))}


def figures(probabilities: Sequence[float], labels: Sequence[bool], threshold: float) -> Figures:
    """Accuracy, balanced accuracy and ROC AUC of probabilities against labels, passing at `threshold`."""
    scores = np.asarray(probabilities, dtype=float)
    truth = np.asarray([bool(v) for v in labels], dtype=float)
    return Figures(*alignment.agreement((scores >= threshold).astype(float), scores, truth))


def label_warning(labels: Sequence[bool], groups: Sequence[Hashable] | None = None) -> str:
    """The warning for a class below `FULL_PER_CLASS` labels ("" when both have enough), and for labels that come
    from fewer distinct images (`groups`: a key per label, as `calibrate` takes them) than that: ten images scanned
    by three phones each are thirty labels but ten images' worth of pictures, so the figures are rougher than the
    count says. Only the label counts decide what is refused.

    Raises:
        TooFewLabels: a class has fewer than `MIN_PER_CLASS` labels.
    """
    truth = [bool(v) for v in labels]
    scanned = sum(truth)
    not_scanned = len(truth) - scanned
    counts = f"{scanned} scanned and {not_scanned} not scanned"
    if min(scanned, not_scanned) < MIN_PER_CLASS:
        raise TooFewLabels(f"Calibration needs at least {MIN_PER_CLASS} labels of each class (scanned and not "
                           f"scanned); these have {counts}.")
    warnings = []
    if min(scanned, not_scanned) < FULL_PER_CLASS:
        warnings.append(f"Only {counts}: fewer than {FULL_PER_CLASS} of a class, so the figures are rough; such a "
                        "model is activated only when forced.")
    images = images_per_class(truth, groups)
    if min(images) < FULL_PER_CLASS and images != (scanned, not_scanned):
        warnings.append(f"The labels are of {images[0]} scanned and {images[1]} not scanned distinct images (several "
                        f"labels of one image, from several phones): fewer than {FULL_PER_CLASS} images of a class, "
                        "so the figures are rougher than the label counts say.")
    return " ".join(warnings)


def images_per_class(labels: Sequence[bool], groups: Sequence[Hashable] | None = None) -> tuple[int, int]:
    """How many distinct images (`groups`' keys; each label its own without them) were labelled scanned, and how
    many not scanned."""
    keys = range(len(labels)) if groups is None else groups
    scanned = {key for key, label in zip(keys, labels, strict=True) if label}
    not_scanned = {key for key, label in zip(keys, labels, strict=True) if not label}
    return len(scanned), len(not_scanned)


def stratified_folds(
    labels: Sequence[bool], folds: int, groups: Sequence[Hashable] | None = None, seed: int = SEED
) -> np.ndarray:
    """A fold number per label: each class spread evenly over the folds, each group kept in one fold.

    Args:
        labels: 1/True where a person's phone read the image.
        folds: how many folds, at least 2.
        groups: a key per label; labels sharing a key (one image, several phones) land in the same fold. Without
            it every label is its own group.
        seed: seeds the shuffle of the groups within each class.

    Returns:
        An int array, a fold in 0..folds-1 per label.

    Raises:
        ValueError: fewer than 2 folds, lengths differ, or a class has fewer groups (images) than folds, which
            would leave a fold with nothing of it to learn from or test.
    """
    truth = np.asarray([bool(v) for v in labels])
    keys = list(range(len(truth))) if groups is None else list(groups)
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    if len(keys) != len(truth):
        raise ValueError(f"{len(truth)} labels but {len(keys)} group keys")
    # A group's class is its majority label (ties count as scanned): a group is one image, labelled alike by most.
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    by_class = {True: [], False: []}
    for key, rows in members.items():
        by_class[bool(truth[rows].mean() >= 0.5)].append(key)
    fewest = min(len(v) for v in by_class.values())
    if fewest < folds:
        raise ValueError(f"{folds} folds need at least {folds} images of each class; the labels have {fewest} "
                         "of one class. Use fewer folds.")
    rng = np.random.default_rng(seed)
    out = np.empty(len(truth), dtype=int)
    dealt = 0  # the second class continues where the first stopped, so the folds end up the same size
    for cls in (True, False):
        for position in rng.permutation(len(by_class[cls])):
            out[members[by_class[cls][position]]] = dealt % folds
            dealt += 1
    return out


def fit_model(
    x: np.ndarray, y: np.ndarray, names: Sequence[str], form: str, l2: float = 0.1, iterations: int = 50
) -> decision.DecisionModel:
    """`decision.fit_weights` on a feature table, as a `decision.DecisionModel` named by `names` (the columns of `x`).

    Raises:
        ValueError: the fit gave no finite weights (it did not converge).
    """
    try:
        w = decision.fit_weights(np.asarray(x, float), np.asarray(y, float), l2=l2, iterations=iterations)
    except np.linalg.LinAlgError:
        raise ValueError("the fit did not converge (the features do not vary enough among these labels)") from None
    if not np.isfinite(w).all():
        raise ValueError("the fit did not converge (its weights are not finite numbers)")
    return decision.DecisionModel(float(w[0]), tuple((n, float(v)) for n, v in zip(names, w[1:], strict=True)), form)


def out_of_fold(
    x: np.ndarray, y: np.ndarray, fold: np.ndarray, names: Sequence[str], form: str, l2: float = 0.1,
    iterations: int = 50,
) -> np.ndarray:
    """Each label's probability from the model fitted without its fold."""
    probabilities = np.empty(len(y))
    for f in np.unique(fold):
        held = fold == f
        model = fit_model(x[~held], y[~held], names, form, l2, iterations)
        probabilities[held] = [model.probability(dict(zip(names, row, strict=True))) for row in x[held]]
    return probabilities


@dataclass(frozen=True)
class Calibration:
    """A fitted decision model and the figures that judge it (see the module docstring)."""

    model: decision.DecisionModel  # fitted to every label
    labels: int
    scanned: int
    folds: int
    threshold: float
    current_model: str  # the id of the model it is compared with
    current: Figures  # that model on the same labels
    cross_validated: Figures  # the fit, pooled over out-of-fold predictions
    warning: str  # "" with at least FULL_PER_CLASS labels, and images, of each class
    scanned_images: int = 0  # distinct images labelled scanned (`images_per_class`)
    not_scanned_images: int = 0

    def to_dict(self) -> dict:
        """The figures as `qart_calibrate --json` gives them (and the stored model row keeps)."""
        return {
            "labels": self.labels, "scanned": self.scanned, "not_scanned": self.labels - self.scanned,
            "folds": self.folds, "threshold": self.threshold,
            "current": {"model": self.current_model, **self.current.to_dict()},
            "cross_validated": self.cross_validated.to_dict(),
            "model": self.model.id, "warning": self.warning or None,
            "images": {"scanned": self.scanned_images, "not_scanned": self.not_scanned_images},
        }


def calibrate(
    features: Sequence[Mapping[str, float]],
    labels: Sequence[bool],
    *,
    current: decision.DecisionModel = decision.DEFAULT_MODEL,
    template: decision.DecisionModel = decision.DEFAULT_MODEL,
    folds: int = DEFAULT_FOLDS,
    threshold: float = scan.DEFAULT_THRESHOLD,
    groups: Sequence[Hashable] | None = None,
    seed: int = SEED,
    l2: float = 0.1,
    iterations: int = 50,
) -> Calibration:
    """Fit the verifier's decision model to people's labels and cross-validate the fit.

    Args:
        features (Sequence[Mapping[str, float]]): the verifier's features per label (`ScanResult.features`);
            a feature a row lacks counts 0, as `decision.DecisionModel.probability` counts it.
        labels (Sequence[bool]): whether a person's phone read the image, per row.
        current (`decision.DecisionModel`, *optional*, defaults to the shipped model): the model in use, measured
            on the same labels for comparison.
        template (`decision.DecisionModel`, *optional*, defaults to the shipped model): whose feature names are
            fitted and whose `form` the new model keeps.
        folds (int, *optional*, defaults to 5): cross-validation folds.
        threshold (float, *optional*, defaults to 0.5): the pass threshold for accuracy and balanced accuracy.
        groups (Sequence[Hashable], *optional*): a key per row; rows of one key (one image) share a fold.
        seed (int, *optional*, defaults to 0): the folds' shuffle.
        l2, iterations: `decision.fit_weights`'s ridge penalty and Newton steps.

    Returns:
        A `Calibration`.

    Raises:
        TooFewLabels: fewer than `MIN_PER_CLASS` labels of a class.
        ValueError: lengths differ, a threshold outside [0, 1], or folds that the labels cannot fill.
    """
    # 1. Check inputs
    truth = np.asarray([bool(v) for v in labels], dtype=float)
    if len(features) != len(truth):
        raise ValueError(f"{len(features)} feature rows but {len(truth)} labels")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    scanned = int(truth.sum())
    warning = label_warning(truth, groups)
    scanned_images, not_scanned_images = images_per_class(truth, groups)
    fold = stratified_folds(truth, folds, groups, seed)

    # 2. The feature table, in the template's order
    names = [name for name, _ in template.weights]
    x = np.asarray([[float(row.get(name, 0.0)) for name in names] for row in features], dtype=float)

    # 3. Cross-validate, then fit on everything
    pooled = out_of_fold(x, truth, fold, names, template.form, l2, iterations)
    model = fit_model(x, truth, names, template.form, l2, iterations)
    return Calibration(
        model=model, labels=len(truth), scanned=scanned, folds=folds, threshold=threshold,
        current_model=current.id, current=figures([current.probability(row) for row in features], truth, threshold),
        cross_validated=figures(pooled, truth, threshold), warning=warning, scanned_images=scanned_images,
        not_scanned_images=not_scanned_images,
    )
