"""python manage.py qart_alignment: how well does the scan verifier agree with people's phones?

    qart_alignment --images-dir DIR          # DIR/valid and DIR/invalid, as sorted by people on paper
    qart_alignment --session 3 --session 4   # stored HumanScanResult rows of these sessions
    qart_alignment --csv-import labels.csv [--session 3]   # store labels (into the one session given)
    qart_alignment --csv-export results.csv  # every stored result
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator import verifier_models
from generator.core.codes import decoders, images, scan
from generator.core.evals import alignment
from generator.evals import label_csv, label_sources
from generator.models import HumanScanResult, LabelingSession
from qartsite.plurals import counted


class Command(BaseCommand):
    help = (
        "Report the agreement between the verifier's scan probability and human scans: from a folder of "
        "valid/ and invalid/ images, or from stored labelling sessions. Imports and exports labels as CSV. "
        "Exit 2 on bad inputs (one message each)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--session", type=int, action="append", default=[], metavar="ID",
                            help="a labelling session's id (repeatable)")
        parser.add_argument("--images-dir", metavar="DIR", help="a folder with valid/ and invalid/ subfolders")
        parser.add_argument("--threshold", type=float, default=None, help="scan probability needed to pass")
        parser.add_argument("--json", action="store_true", help="one JSON document instead of a report")
        parser.add_argument("--csv-import", metavar="FILE", help="store labels: image,scanned[,device,app,...]")
        parser.add_argument("--csv-export", metavar="FILE", help="write every stored result as CSV")

    def handle(self, *args, **options) -> None:
        threshold = options["threshold"] if options["threshold"] is not None else settings.QART["SCAN_THRESHOLD"]
        if not 0.0 <= threshold <= 1.0:
            raise CommandError(f"--threshold must be between 0 and 1, got {threshold}", returncode=2)
        if not (options["images_dir"] or options["session"] or options["csv_import"] or options["csv_export"]):
            raise CommandError("nothing to do: give --images-dir, --session, --csv-import or --csv-export",
                               returncode=2)
        sessions = self.sessions(options["session"])
        bad = 0
        if options["csv_import"]:
            bad += self.import_labels(options["csv_import"], sessions)
        if options["csv_export"]:
            self.export_labels(options["csv_export"])

        if options["images_dir"]:
            source = f"images in {options['images_dir']}"
            items, skipped = self.folder_pairs(Path(options["images_dir"]), threshold)
            bad += skipped
        elif sessions:
            source = label_sources.describe_sessions(sessions)
            items = self.session_pairs(sessions)
        else:
            items = None
        if items is not None:
            if not items:
                raise CommandError(f"no labelled images with a scan probability in {source}", returncode=2)
            report = alignment.align([i["scan_probability"] for i in items], [i["scanned"] for i in items],
                                     [i["group"] for i in items] if "group" in items[0] else None,
                                     threshold=threshold)
            if options["json"]:
                self.stdout.write(json.dumps({"source": source, **report.to_dict(), "items": items},
                                             ensure_ascii=False))
            else:
                self.stdout.write(format_report(source, report))
        if bad:
            raise CommandError(f"{bad} input(s) could not be used", returncode=2)

    @staticmethod
    def sessions(ids: list[int]) -> list[LabelingSession]:
        try:
            return label_sources.sessions_by_id(ids)
        except label_sources.LabelSourceError as exc:
            raise CommandError(str(exc), returncode=2) from None

    def import_labels(self, path: str, sessions: list[LabelingSession]) -> int:
        if len(sessions) > 1:
            raise CommandError("--csv-import stores into at most one --session", returncode=2)
        try:
            with open(path, newline="", encoding="utf-8-sig") as stream:
                outcome = label_csv.import_csv(stream, session=sessions[0] if sessions else None)
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file", returncode=2) from None
        except IsADirectoryError:
            raise CommandError(f"{path}: is a folder, not a CSV file", returncode=2) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path}: cannot read it as UTF-8 CSV ({exc})", returncode=2) from None
        if not (outcome.created or outcome.errors or outcome.already_stored):
            # "imported 0 label(s)" and exit 0 read as success: a sheet saved before its rows were typed in.
            raise CommandError(f"{path}: the file has no rows under its header, nothing to import", returncode=2)
        for error in outcome.errors:
            self.stderr.write(f"{path}: {error}")
        matched = sum(r.candidate_id is not None for r in outcome.created)
        self.stderr.write(f"{path}: imported {len(outcome.created)} label(s), {matched} matched a stored "
                          f"candidate, {len(outcome.errors)} bad row(s) skipped, {outcome.already_stored} already "
                          "stored (skipped)")
        return len(outcome.errors)

    def export_labels(self, path: str) -> None:
        results = HumanScanResult.objects.select_related("candidate", "labeler").order_by("pk")
        try:
            with open(path, "w", newline="", encoding="utf-8") as stream:
                count = label_csv.export_csv(results, stream)
        except IsADirectoryError:
            raise CommandError(f"{path}: is a folder; give the name of the CSV file to write", returncode=2) from None
        except OSError as exc:
            raise CommandError(f"{path}: cannot write it ({exc.strerror})", returncode=2) from None
        self.stderr.write(f"{path}: exported {count} result(s)")

    def folder_pairs(self, root: Path, threshold: float) -> tuple[list[dict], int]:
        """Verify every image under root/valid and root/invalid; any decoded text counts as a read."""
        try:
            labels = label_sources.folder_labels(root)
        except label_sources.LabelSourceError as exc:
            raise CommandError(str(exc), returncode=2) from None
        readers = decoders.available_readers(settings.QART["QREADER_WEIGHTS"])
        model = verifier_models.active_model()  # the verifier as jobs judge now
        items, bad = [], 0
        for label in labels:
            try:
                image = label.load(settings.QART["MAX_IMAGE_PIXELS"])
            except images.ImageError as exc:
                self.stderr.write(str(exc))
                bad += 1
                continue
            result = scan.verify(image, None, threshold=threshold, readers=readers, model=model)
            items.append({"path": label.name, "scanned": label.scanned, "scan_probability": result.scan_probability,
                          "verdict": result.verdict})
        return items, bad

    @staticmethod
    def session_pairs(sessions: list[LabelingSession]) -> list[dict]:
        """(candidate.scan_probability, scanned) per stored result with a candidate, grouped by device/app."""
        return label_csv.alignment_pairs(HumanScanResult.objects.filter(session__in=sessions))


def _figure(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def format_report(source: str, report: alignment.AlignmentReport) -> str:
    """The readable report: headline figures, confusion matrix, calibration and per-group tables."""
    c = report.confusion
    lines = [
        f"Alignment of the scan verifier with human scans ({source})",
        f"{counted(report.count, 'image')}, {report.scanned} scanned by people, threshold {report.threshold:.2f}",
        "",
        "                    person scanned   person did not",
        f"verifier pass       {c.true_positive:>14}   {c.false_positive:>14}",
        f"verifier fail       {c.false_negative:>14}   {c.true_negative:>14}",
        "",
        f"accuracy            {_figure(report.accuracy)}",
        f"balanced accuracy   {_figure(report.balanced_accuracy)}",
        f"ROC AUC             {_figure(report.roc_auc)}",
        f"best threshold      {_figure(report.best_threshold)} "
        f"(balanced accuracy {_figure(report.best_balanced_accuracy)})",
        "",
        "calibration: probability bin, images, mean predicted, observed scan rate",
    ]
    for b in report.calibration:
        if b.count:
            lines.append(f"  {b.low:.1f}-{b.high:.1f}  {b.count:>6}  {_figure(b.mean_predicted):>7}  "
                         f"{_figure(b.observed_rate):>7}")
    if report.groups:
        lines += ["", "per group: images, scanned, accuracy, balanced accuracy, ROC AUC"]
        for g in report.groups:
            lines.append(f"  {g.group}: {g.count}, {g.scanned}, {_figure(g.accuracy)}, "
                         f"{_figure(g.balanced_accuracy)}, {_figure(g.roc_auc)}")
    return "\n".join(lines)
