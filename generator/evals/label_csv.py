"""Human scan labels in and out of CSV, shared by the `qart_alignment` and `qart_calibrate` commands and the admin
export action.

Import columns: image,scanned[,device,app,seconds,notes]. A bad row is reported by its line number and
skipped; the good rows are kept, so one typo in a 200-row sheet costs one row, not the sitting. A row of an export
(it has the export's `id` and `labeler`) equal to a label already stored (its session, labeler, image, answer,
seconds, device, app and notes) is skipped and counted: an export imported again counts no label twice, while two
people's identical hand-made sheets are both kept. Text cells an export quoted against formulas ("'=...") read
back as they were.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TextIO

from django.db.models import QuerySet

from generator.core.codes.echoes import echo
from generator.evals import sessions
from generator.models import Candidate, HumanScanResult, LabelingSession
from qartsite.spreadsheets import csv_cell, csv_value

REQUIRED_COLUMNS = ("image", "scanned")
IMAGE_NAME_LENGTH = HumanScanResult._meta.get_field("image_name").max_length
EXPORT_COLUMNS = ("id", "session", "candidate", "image", "labeler", "device", "app", "scanned", "seconds",
                  "aesthetic_vote", "scan_probability", "notes", "created")
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}


@dataclass(frozen=True)
class LabelRow:
    """One good row of a labels CSV."""

    line: int
    image: str
    scanned: bool
    seconds: float | None
    device: str
    app: str
    notes: str
    exported: bool = False  # a row of an export (it names its stored label's id)
    labeler: str = ""  # the export's labeler column


@dataclass
class ImportOutcome:
    created: list[HumanScanResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "line N: why", one per bad row
    already_stored: int = 0  # rows equal to a stored label, skipped


def label_key(session_id: int | None, labeler: str, image: str, scanned: bool, seconds: float | None, device: str,
              app: str, notes: str) -> tuple:
    """What makes two labels the same label: the rows an export writes read back to the stored label's key."""
    return (session_id, labeler, PurePath(image).name, scanned, None if seconds is None else round(seconds, 3),
            device, app, notes)


def stored_keys(session: LabelingSession | None) -> set[tuple]:
    """`label_key` of every label stored in `session` (labels without a session, when None)."""
    results = HumanScanResult.objects.filter(session=session).select_related("candidate", "labeler")
    return {label_key(r.session_id, r.labeler.get_username() if r.labeler else "",
                      r.image_name or (r.candidate.image.name if r.candidate else ""), r.scanned, r.seconds, r.device,
                      r.app, r.notes) for r in results}


def parse_scanned(value: str) -> bool:
    """yes/no/true/false/1/0 (any case) as a bool; ValueError otherwise."""
    text = value.strip().lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise ValueError(f"scanned must be yes/no/true/false/1/0, got “{echo(value)}”")


def candidates_by_file_name(names: Iterable[str], team=None) -> dict[str, Candidate]:
    """Stored candidates whose image file name (without folders) is one of `names`; with `team`, that team's only (a
    session's labels name its team's codes: another team's candidate of the same file name is not one of them)."""
    wanted = set(names)
    found: dict[str, Candidate] = {}
    candidates = Candidate.objects.all() if team is None else Candidate.objects.filter(job__team=team)
    # Image paths hold the job id as a folder, so match on the last part; few candidates per sheet.
    for name in wanted:
        for candidate in candidates.filter(image__endswith=f"/{name}").select_related("job"):
            if PurePath(candidate.image.name).name == name:
                found.setdefault(name, candidate)
    return found


def seconds_of(text: str) -> float | None:
    """A row's seconds to scan: empty, or a finite number of at least 0 (ValueError saying so otherwise)."""
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"seconds must be a number, got “{echo(text)}”") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a number of at least 0, got “{echo(text)}”")
    return seconds


def read_rows(stream: TextIO) -> tuple[list[LabelRow], list[str]]:
    """The good rows of a labels CSV and one "line N: why" per bad row; stores nothing.

    A missing required column is a single error, and no row is read.
    """
    reader = csv.DictReader(stream)
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        return [], [f"missing column(s) {', '.join(missing)}; need image,scanned[,device,app,seconds,notes]"]
    reader.fieldnames = columns
    rows, errors = [], []
    for row in reader:
        line = reader.line_num
        row = {k: (v or "").strip() for k, v in row.items() if k is not None}
        try:
            if not row["image"]:
                raise ValueError("image is empty")
            scanned = parse_scanned(row["scanned"])
            seconds = seconds_of(row.get("seconds", ""))
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        text = {name: csv_value(row.get(name, "")) for name in ("image", "device", "app", "notes", "labeler")}
        rows.append(LabelRow(line=line, image=text["image"], scanned=scanned, seconds=seconds,
                             device=text["device"][:80], app=text["app"][:80], notes=text["notes"],
                             exported=bool(row.get("id")), labeler=text["labeler"]))
    return rows, errors


def import_csv(stream: TextIO, session: LabelingSession | None = None, labeler=None) -> ImportOutcome:
    """Create a `HumanScanResult` per good row of a labels CSV.

    Args:
        stream: the CSV text, with a header row.
        session: the labelling session the rows belong to, if any.
        labeler: the user who labelled, if known.

    Returns:
        An `ImportOutcome`: the rows created and one message per bad row. A missing required column is a
        single error and nothing is created.
    """
    rows, errors = read_rows(stream)
    outcome = ImportOutcome(errors=errors)
    by_name = candidates_by_file_name((PurePath(row.image).name for row in rows), session.team if session else None)
    stored = stored_keys(session)
    for row in rows:
        if len(row.image) > IMAGE_NAME_LENGTH:  # the stored name's column: the database refused the whole file
            outcome.errors.append(f"line {row.line}: image is {len(row.image):,} characters long; give the image's "
                                  f"file name (at most {IMAGE_NAME_LENGTH})")
            continue
        key = label_key(session.pk if session else None, row.labeler, row.image, row.scanned, row.seconds,
                        row.device, row.app, row.notes)
        if row.exported and key in stored:
            outcome.already_stored += 1
            continue
        result = HumanScanResult.objects.create(
            session=session, labeler=labeler, image_name=row.image, candidate=by_name.get(PurePath(row.image).name),
            scanned=row.scanned, seconds=row.seconds, device=row.device, app=row.app, notes=row.notes,
        )
        sessions.attach_to_item(result)  # a session's label answers its item, as a button press does
        outcome.created.append(result)
    return outcome


def export_csv(results: Iterable[HumanScanResult], stream: TextIO) -> int:
    """Write results as CSV (EXPORT_COLUMNS), text that would run as a formula quoted; returns how many rows."""
    writer = csv.writer(stream)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for r in results:
        image = r.image_name or (PurePath(r.candidate.image.name).name if r.candidate else "")
        # Every cell through csv_cell: image names, devices, apps and notes were typed by people (or a spreadsheet).
        writer.writerow([csv_cell(value) for value in (
            r.pk, r.session_id, r.candidate_id, image, r.labeler.get_username() if r.labeler else "",
            r.device, r.app, "yes" if r.scanned else "no", r.seconds, r.aesthetic_vote,
            r.candidate.scan_probability if r.candidate else "", r.notes, r.created.isoformat(),
        )])
        count += 1
    return count


def alignment_pairs(results: QuerySet[HumanScanResult]) -> list[dict]:
    """What the alignment report compares, per result with a stored candidate: the verifier's scan probability,
    whether the person scanned it, and a device / app group. Shared by `qart_alignment --session` and the staff
    alignment page."""
    results = results.filter(candidate__isnull=False).select_related("candidate").order_by("pk")
    return [{"result": r.pk, "candidate": r.candidate_id, "scanned": r.scanned,
             "scan_probability": r.candidate.scan_probability,
             "group": f"{r.device or 'unknown device'} / {r.app or 'unknown app'}"} for r in results]
