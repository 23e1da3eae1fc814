"""python manage.py qart_calibrate: fit the scan verifier's decision model to people's labels.

    qart_calibrate --session 3 --session 4          # the results of labelling sessions
    qart_calibrate --csv labels.csv                 # image,scanned[,device,app,...]: files beside it or candidates
    qart_calibrate --images-dir DIR                 # DIR/valid and DIR/invalid, as sorted by people on paper
        [--folds 5] [--json] [--user NAME] [--activate [--force]]
    qart_calibrate --rollback --user NAME           # back to the model active before (or the shipped default)

Every labelled image is verified (its features), the model is fitted (`generator.core.evals.calibration`) and
cross-validated beside the model in use, and stored as a `VerifierModel` row. Only `--activate` (by a superuser,
named with --user) makes it the model that jobs and pages use; `--rollback` undoes the last activation (the admin
has the same two actions).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator import verifier_models
from generator.core.codes import decision, images, scan
from generator.core.evals import calibration
from generator.evals import label_sources
from generator.evals.label_sources import LabelledImage


class Command(BaseCommand):
    help = (
        "Fit the scan verifier's decision model to people's labels (sessions, a CSV or a sorted folder), report "
        "its cross-validated accuracy, balanced accuracy and ROC AUC beside the current model's, and store it. "
        "--activate makes it the model every job uses. Exit 2 on bad inputs (one message each)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--session", type=int, action="append", default=[], metavar="ID",
                            help="a labelling session's id (repeatable)")
        source.add_argument("--csv", metavar="FILE", help="labels: image,scanned[,device,app,seconds,notes]")
        source.add_argument("--images-dir", metavar="DIR", help="a folder with valid/ and invalid/ subfolders")
        source.add_argument("--rollback", action="store_true",
                            help="re-activate the model active before the active one (or the shipped default)")
        parser.add_argument("--folds", type=int, default=calibration.DEFAULT_FOLDS,
                            help=f"cross-validation folds (default {calibration.DEFAULT_FOLDS})")
        parser.add_argument("--json", action="store_true", help="one JSON document instead of a report")
        parser.add_argument("--user", metavar="NAME", help="who calibrates (recorded); a superuser to --activate")
        parser.add_argument("--activate", action="store_true", help="make the fitted model the one jobs use")
        parser.add_argument("--force", action="store_true",
                            help=f"activate even with fewer than {calibration.FULL_PER_CLASS} labels of a class")

    def handle(self, *args, **options) -> None:
        if options["rollback"]:
            return self.rollback(self.user(options["user"]))
        # 1. Check inputs: everything that can be refused is refused before any image is verified
        if not (options["session"] or options["csv"] or options["images_dir"]):
            raise CommandError("say which labels: --session ID, --csv FILE or --images-dir DIR (or --rollback)",
                               returncode=2)
        if options["folds"] < 2:
            raise CommandError(f"--folds must be at least 2, got {options['folds']}", returncode=2)
        if options["force"] and not options["activate"]:
            raise CommandError("--force only goes with --activate", returncode=2)
        user = self.user(options["user"])
        if options["activate"] and (user is None or not user.is_superuser):
            raise CommandError("--activate needs --user naming a superuser: every team's jobs use the active model",
                               returncode=2)

        # 2. The labels, and the images they were given for
        try:
            source, labels, left_out = self.labels(options)
        except label_sources.LabelSourceError as exc:
            raise CommandError(str(exc), returncode=2) from None
        loaded = self.load(labels)
        left_out += len(labels) - len(loaded)
        scanned, keys = [label.scanned for label, _ in loaded], [label.key for label, _ in loaded]
        try:
            calibration.label_warning(scanned, keys)
            calibration.stratified_folds(scanned, options["folds"], keys)
        except ValueError as exc:  # too few labels, or too few images for the folds
            raise CommandError(f"{str(exc).rstrip('.')}. Nothing was stored.", returncode=2) from None

        # 3. Verify each image once, fit, cross-validate, store
        features = self.features(loaded)
        current = verifier_models.active_model()
        try:
            result = calibration.calibrate(
                [features[key] for key in keys], scanned,
                current=current, template=decision.DEFAULT_MODEL, folds=options["folds"],
                threshold=settings.QART["SCAN_THRESHOLD"], groups=keys,
            )
        except ValueError as exc:
            raise CommandError(f"{str(exc).rstrip('.')}. Nothing was stored.", returncode=2) from None
        row = verifier_models.store(result, user, source, [label.ref for label, _ in loaded])

        # 4. Activate when asked (the row stays stored either way), then report
        refusal = ""
        if options["activate"]:
            try:
                verifier_models.activate(row, user, force=options["force"])
            except (PermissionDenied, ValueError) as exc:
                refusal = str(exc)
        row.refresh_from_db()
        if result.warning:
            self.stderr.write(f"warning: {result.warning}")
        self.stdout.write(self.report(source, result, row, left_out, options["json"]))
        if refusal:
            hint = " --activate --force activates it anyway." if verifier_models.activation_refusal(row) else ""
            raise CommandError(f"not activated: {refusal}{hint}", returncode=2)

    def rollback(self, user) -> None:
        try:
            restored = verifier_models.rollback(user)
        except (PermissionDenied, ValueError) as exc:
            hint = " (name one with --user)" if user is None else ""
            raise CommandError(f"{exc}{hint}", returncode=2) from None
        now = f"verifier model #{restored.pk} ({restored.model_id})" if restored else f"the shipped {decision.MODEL}"
        self.stdout.write(f"Rolled back: {now} judges again.")

    @staticmethod
    def user(name: str | None):
        if name is None:
            return None
        found = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: name}).first()
        if found is None:
            raise CommandError(f"no user named {name}", returncode=2)
        return found

    def labels(self, options: dict) -> tuple[str, list[LabelledImage], int]:
        """(what the labels are, the labels, how many were left out already)."""
        if options["session"]:
            sessions = label_sources.sessions_by_id(options["session"])
            labels, without_image = label_sources.session_labels(sessions)
            if without_image:
                self.stderr.write(f"{without_image} result(s) left out: no image of theirs is stored")
            return label_sources.describe_sessions(sessions), labels, without_image
        if options["csv"]:
            labels, errors = label_sources.csv_labels(Path(options["csv"]))
            for error in errors:
                self.stderr.write(error)
            return f"labels in {options['csv']}", labels, len(errors)
        root = Path(options["images_dir"])
        return f"images in {root}", label_sources.folder_labels(root), 0

    def load(self, labels: list[LabelledImage]) -> list[tuple[LabelledImage, object]]:
        """Each label with its image (opened once per image); labels whose image cannot be read are reported and
        left out."""
        opened: dict[str, object] = {}
        loaded = []
        for label in labels:
            if label.key not in opened:
                try:
                    opened[label.key] = label.load(settings.QART["MAX_IMAGE_PIXELS"])
                except images.ImageError as exc:
                    self.stderr.write(str(exc))
                    opened[label.key] = None
            if opened[label.key] is not None:
                loaded.append((label, opened[label.key]))
        return loaded

    @staticmethod
    def features(loaded: list[tuple[LabelledImage, object]]) -> dict[str, dict[str, float]]:
        """The verifier's features per image, every one of them: graded too, since some features come from the
        symbol's grades and the current model may weigh features the fitted one does not."""
        features: dict[str, dict[str, float]] = {}
        for label, image in loaded:
            if label.key not in features:
                features[label.key] = scan.verify(image, label.expected).features
        return features

    @staticmethod
    def report(source: str, result: calibration.Calibration, row, left_out: int, as_json: bool) -> str:
        if as_json:
            return json.dumps({**result.to_dict(), "source": source, "stored": row.pk, "active": row.is_active,
                               "bias": result.model.bias, "weights": dict(result.model.weights),
                               "left_out": left_out}, ensure_ascii=False)
        current, fitted = result.current.to_dict(), result.cross_validated.to_dict()
        lines = [
            f"Calibration of the scan verifier on {result.labels} labels ({result.scanned} scanned, "
            f"{result.labels - result.scanned} not) from {source}",
            f"{result.folds}-fold cross-validation, threshold {result.threshold:.2f}"
            + (f"; {left_out} label(s) left out" if left_out else ""),
            "",
            f"{'':33}" + " ".join(f"{heading:>9}" for heading in ("accuracy", "balanced", "ROC AUC")),
            f"current  {result.current_model:<24}" + _row(current),
            f"fitted   {result.model.id:<24}" + _row(fitted) + "  (out of fold)",
            "",
            "weights: " + ", ".join([f"bias {result.model.bias:.4f}"]
                                    + [f"{name} {w:.4f}" for name, w in result.model.weights]),
            f"stored as verifier model #{row.pk}: "
            + ("active, every job now uses it" if row.is_active else "not active (activate this row in the admin's "
                                                                     "verifier models: running this again stores "
                                                                     "another)"),
        ]
        return "\n".join(lines)


def _row(figures: dict) -> str:
    return " ".join(f"{'n/a' if figures[k] is None else format(figures[k], '.3f'):>9}"
                    for k in ("accuracy", "balanced_accuracy", "roc_auc"))
