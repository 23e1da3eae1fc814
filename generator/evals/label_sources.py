"""Where people's scan labels come from, each with the image that was scanned: labelling sessions, a labels CSV, or a
folder sorted by hand into valid/ and invalid/. Shared by `qart_alignment` and `qart_calibrate`.

A source that cannot be used at all (no such session, file or folder) raises `LabelSourceError` with one message; a
bad row or image is reported by the caller and left out, so one typo costs one label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath

from django.db.models.fields.files import FieldFile
from PIL import Image

from generator.core.codes import images
from generator.evals import label_csv
from generator.models import HumanScanResult, LabelingItem, LabelingSession

FOLDERS = {"valid": True, "invalid": False}


class LabelSourceError(ValueError):
    """A source of labels that cannot be used at all; the message says why."""


@dataclass(frozen=True)
class LabelledImage:
    """One label: whether a person's phone read an image, and where that image is."""

    ref: str  # the label, for reports and the stored model's record: "result 12", "labels.csv line 4", a path
    scanned: bool
    key: str  # the image: labels of one image (several phones) share it
    expected: str | None = None  # the exact text the code carries, where known; else any read counts
    group: str = ""  # "device / app" where known
    path: Path | None = None  # a file on disk ...
    stored: FieldFile | None = None  # ... or an image in the site's storage

    @property
    def name(self) -> str:
        return str(self.path) if self.path is not None else self.stored.name

    def load(self, max_pixels: int) -> Image.Image:
        """The image, opened as `images.open_image` opens it.

        Raises:
            images.ImageError: missing, unreadable or not an image; the message names it.
        """
        if self.path is not None:
            return images.open_image(self.path, max_pixels=max_pixels)
        try:
            with self.stored.open("rb") as stored:
                data = stored.read()
        except OSError:
            raise images.ImageError(f"{self.name}: missing from storage") from None
        try:
            return images.open_image(data, max_pixels=max_pixels)
        except images.ImageError as exc:
            raise images.ImageError(f"{self.name}: {str(exc).removeprefix('the upload: ')}") from None


def sessions_by_id(ids: list[int]) -> list[LabelingSession]:
    """The sessions with these ids, in the order given, each once.

    Raises:
        LabelSourceError: an id that no session has.
    """
    # An id past the database's integer range names no session (the query would overflow).
    found = {s.pk: s for s in LabelingSession.objects.filter(pk__in=[i for i in ids if 0 < i < 2**63])}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise LabelSourceError(f"no labelling session with id {', '.join(missing)}")
    return [found[i] for i in dict.fromkeys(ids)]


def describe_sessions(sessions: list[LabelingSession]) -> str:
    return "sessions " + ", ".join(f"#{s.pk} {s.name}" for s in sessions)


def folder_labels(root: Path) -> list[LabelledImage]:
    """Every file under root/valid (scanned) and root/invalid (not scanned), in name order; hidden files skipped.

    Raises:
        LabelSourceError: no such folder (or a file there), or either subfolder missing.
    """
    if not root.is_dir():
        # "no such folder" for a file that is there sent people looking for a typo in the name.
        raise LabelSourceError(f"{root}: is a file, not a folder" if root.exists() else f"{root}: no such folder")
    missing = [name for name in FOLDERS if not (root / name).is_dir()]
    if missing:
        raise LabelSourceError(f"{root}: missing subfolder(s) {', '.join(missing)}; expected valid/ and invalid/")
    return [LabelledImage(ref=str(path), scanned=scanned, key=str(path), path=path)
            for name, scanned in FOLDERS.items()
            for path in sorted(p for p in (root / name).iterdir() if p.is_file() and not p.name.startswith("."))]


def session_labels(sessions: list[LabelingSession]) -> tuple[list[LabelledImage], int]:
    """Every stored result of these sessions, with the image the phone was shown.

    That is the labeling item's re-rendered image where it has one (it carries the item's one-time link, so any
    read counts), else the candidate's own (carrying the job's content).

    Returns:
        (labels, how many results were left out because no image of theirs is stored: rows imported from a
        sheet that named an image that is no stored candidate's).
    """
    results = (HumanScanResult.objects.filter(session__in=sessions)
               .select_related("candidate__job", "labeling_item").order_by("pk"))
    labels, without_image = [], 0
    for r in results:
        group = f"{r.device or 'unknown device'} / {r.app or 'unknown app'}"
        try:
            item = r.labeling_item
        except LabelingItem.DoesNotExist:
            item = None
        if item is not None and item.image:
            labels.append(LabelledImage(ref=f"result {r.pk}", scanned=r.scanned, key=f"item {item.pk}",
                                        group=group, stored=item.image))
        elif r.candidate is not None and r.candidate.image:
            labels.append(LabelledImage(ref=f"result {r.pk}", scanned=r.scanned, key=f"candidate {r.candidate_id}",
                                        expected=r.candidate.job.content, group=group, stored=r.candidate.image))
        else:
            without_image += 1
    return labels, without_image


def csv_labels(path: Path) -> tuple[list[LabelledImage], list[str]]:
    """The labels of a CSV (image,scanned[,device,app,seconds,notes]), read without storing anything.

    `image` is a file, relative to the CSV's folder (or absolute), or else the file name of a stored candidate's
    image (as `qart_alignment --csv-import` matches them).

    Returns:
        (labels, one "FILE: line N: why" per bad row).

    Raises:
        LabelSourceError: no such file, a folder, not UTF-8 text, or a required column missing.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            rows, errors = label_csv.read_rows(stream)
    except FileNotFoundError:
        raise LabelSourceError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LabelSourceError(f"{path}: is a folder, not a CSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelSourceError(f"{path}: cannot read it as UTF-8 CSV ({exc})") from None
    if not rows and errors and errors[0].startswith("missing column"):
        raise LabelSourceError(f"{path}: {errors[0]}")
    errors = [f"{path}: {e}" for e in errors]
    files = {row.line: path.parent / row.image for row in rows}
    beside = {line for line, file in files.items() if is_file(file)}
    stored = label_csv.candidates_by_file_name(PurePath(row.image).name for row in rows if row.line not in beside)
    labels = []
    for row in rows:
        group = f"{row.device or 'unknown device'} / {row.app or 'unknown app'}"
        ref = f"{path.name} line {row.line}"
        candidate = stored.get(PurePath(row.image).name)
        if row.line in beside:
            file = files[row.line]
            labels.append(LabelledImage(ref=ref, scanned=row.scanned, key=str(file.resolve()), group=group, path=file))
        elif candidate is not None:
            labels.append(LabelledImage(ref=ref, scanned=row.scanned, key=f"candidate {candidate.pk}",
                                        expected=candidate.job.content, group=group, stored=candidate.image))
        else:
            errors.append(f"{path}: line {row.line}: {row.image} is neither a file beside the CSV nor a stored "
                          "candidate's image")
    return labels, errors


def is_file(path: Path) -> bool:
    """Whether `path` is a file; False for a name the system refuses (too long, say) rather than an error."""
    try:
        return path.is_file()
    except OSError:
        return False
