"""Copy the media the database names from the filesystem into the S3 bucket (or back), checking every copy.

    python manage.py qart_media_copy --to s3           # MEDIA_ROOT -> the bucket of MEDIA_S3_*
    python manage.py qart_media_copy --to filesystem   # the bucket -> MEDIA_ROOT (the way back)

Every file that a row names (the file fields of `qartsite.media.OWNERS`) is read from the source and its MD5 taken,
then stored in the destination under the same name, unless the destination already holds those very bytes there:
so a second run copies nothing (idempotent), and a run that was stopped picks up where it was (resumable). Each copy
is then checked against the MD5: the server's own checksum (an S3 ETag) when it reports a matching one, else the
bytes read back. Should the destination hold other bytes under a name, the copy gets a new name, and only once it is
checked do the rows that named the old one name the new one: no row changes before its object is verified. A copy
that fails the check is deleted and its rows are left alone; the command then ends non-zero, naming it. When the
destination cannot be reached, the command stops at once: running it again later goes on from there.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.core.files.storage import Storage, storages
from django.core.management.base import BaseCommand, CommandError

from qartsite.media import MediaOwner, named_files
from qartsite.plurals import counted
from qartsite.storage import MediaUnavailable, holds, md5_of

STORAGE_NAMES = ("s3", "filesystem")


@dataclass(frozen=True)
class Copied:
    """What became of one file: `outcome` is copied, present (already there), renamed (copied under `stored_as`),
    missing (not in the source), mismatch (the copy's bytes differ) or failed (`error` says why)."""

    name: str
    outcome: str
    stored_as: str = ""
    error: str = ""


def copy_file(source: Storage, destination: Storage, name: str, max_length: int | None) -> Copied:
    """Copy `name` from `source` to `destination` and check the copy (see the module docstring).

    Raises:
        MediaUnavailable: either storage cannot be reached.
    """
    try:
        md5 = md5_of(source, name)
    except FileNotFoundError:
        return Copied(name, "missing")
    if destination.exists(name) and holds(destination, name, md5):
        return Copied(name, "present")
    with source.open(name, "rb") as stored:
        # Never over another file: a name taken by other bytes gets a new one (the storage's get_available_name).
        stored_as = destination.save(name, stored, max_length=max_length)
    if not holds(destination, stored_as, md5):
        destination.delete(stored_as)
        return Copied(name, "mismatch", stored_as)
    return Copied(name, "copied" if stored_as == name else "renamed", stored_as)


class Command(BaseCommand):
    help = "Copy the media files the database names into the S3 bucket (--to s3) or back (--to filesystem)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--to", required=True, choices=STORAGE_NAMES, dest="target",
                            help="s3: from MEDIA_ROOT into the bucket of MEDIA_S3_*; filesystem: the way back")
        parser.add_argument("--jobs", type=int, default=4, help="files copied at once (default 4)")

    def handle(self, *args, target: str, jobs: int, **options) -> None:
        if not storages.backends["s3"]["OPTIONS"]["bucket_name"]:
            raise CommandError("Set MEDIA_S3_BUCKET (and MEDIA_S3_ENDPOINT_URL, the keys...) first: see .env.example.")
        if jobs < 1:
            raise CommandError("--jobs must be 1 or more.")
        source_name = next(name for name in STORAGE_NAMES if name != target)
        source, destination = storages[source_name], storages[target]
        names = named_files()
        self.stdout.write(f"{counted(len(names), 'file')} named in the database, from {source_name} to {target}.")

        counts: dict[str, int] = defaultdict(int)
        problems: list[str] = []
        unreachable = threading.Event()

        def copy_one(name: str, owners: list[MediaOwner]) -> Copied | None:
            if unreachable.is_set():
                return None  # not started: a storage that is away fails every file, slowly
            try:
                return copy_file(source, destination, name, min(self.max_length(owner) for owner in owners))
            except MediaUnavailable:
                unreachable.set()
                raise

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(copy_one, name, owners) for name, owners in names.items()]
            for future, (name, owners) in zip(futures, names.items(), strict=True):
                try:
                    copied = future.result()
                except MediaUnavailable as exc:
                    raise CommandError(f"{exc}\nStopped: no more files were started. Run the command again once the "
                                       f"storage is back; what it copied is kept and not copied again.") from None
                except OSError as exc:
                    copied = Copied(name, "failed", error=str(exc))
                if copied is None:
                    continue
                counts[copied.outcome] += 1
                if copied.outcome == "renamed":
                    # Verified: now, and only now, the rows name the copy.
                    for owner in owners:
                        owner.model._default_manager.filter(**{owner.field: name}).update(
                            **{owner.field: copied.stored_as})
                    self.stdout.write(f"{name}: {target} held other bytes under this name; copied as "
                                      f"{copied.stored_as}, and the rows now name that")
                elif copied.outcome == "missing":
                    self.stderr.write(f"{name}: not in {source_name}; its rows are unchanged")
                elif copied.outcome in ("mismatch", "failed"):
                    problems.append(name)
                    why = copied.error or "the copy's checksum differs from the original's (the copy was deleted)"
                    self.stderr.write(f"{name}: not copied: {why}; its rows are unchanged")
                if options["verbosity"] > 1:
                    self.stdout.write(f"{name}: {copied.outcome}")

        self.stdout.write(
            f"Done: {counts['copied']} copied, {counts['present']} already there, {counts['renamed']} copied under a "
            f"new name, {counts['missing']} missing from {source_name}, {len(problems)} not copied."
        )
        if problems:
            raise CommandError(f"{counted(len(problems), 'file')} could not be copied (listed above); run the command "
                               "again.")

    @staticmethod
    def max_length(owner: MediaOwner) -> int | None:
        return owner.model._meta.get_field(owner.field).max_length
