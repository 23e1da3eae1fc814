"""Media that no row names any more (orphans), found and deleted.

A file outlives its row when a job, team or labeling session is deleted, when a job is run again after its worker
died (the first attempt's control image stays), when an upload's second file fails to store, or when two requests
draw the same labeling item at once. Nothing serves an orphan (`qartsite.media` answers 404 for a file no row
names), but the storage grows for ever. So the folders that row-named files live in are listed and compared with
every name a file field holds (`qartsite.media.named_files`); an orphan is deleted once it is older than
`MIN_AGE` (a file is stored a moment before the row that names it commits: a younger one may be on its way).

The worker's daily upkeep sweeps (`campaigns.maintenance`); `manage.py qart_media_sweep` lists or deletes by hand.
The upkeep deletes nothing when orphans are more than `SAFE_SHARE` of the files or the database names none: a process
pointed at another (or an empty) database sees every file as an orphan, and the person who runs the command by hand
decides then. On a bucket the folders are listed flat, 1,000 keys a request with their times: the upkeep runs in a
GPU worker's maintenance, between jobs. The bucket is asked first, briefly (`S3MediaStorage.reachable`, asking now):
one that does not answer stops the sweep in a couple of seconds, not after the listing's tries.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.files.storage import Storage
from django.utils import timezone

from qartsite.media import named_files

# The top folders of the file fields in `qartsite.media.OWNERS` (tests/qartsite/test_media_sweep.py checks every
# field stores under one). Print files have their own upkeep (`campaigns.print_builds.forget_old_files`).
FOLDERS = ("generations", "labeling")
MIN_AGE = timedelta(days=1)
# The upkeep deletes nothing when orphans are over this share of the files, or the database names none: what a
# process on another (or an empty) database sees. A team deleted with most of the media is swept by hand then.
SAFE_SHARE = 0.5


@dataclass
class Swept:
    """What a sweep found: `files` looked at, `orphans` (old enough to delete) and `young` ones left for a later
    sweep; `deleted` the orphans it deleted; `held` why it deleted nothing, when it held back."""

    files: int = 0
    orphans: list[str] = field(default_factory=list)
    young: int = 0
    deleted: int = 0
    held: str = ""

    def __str__(self) -> str:
        said = (f"{self.files:,} media files, {len(self.orphans):,} named by no row and older than a day "
                f"({self.young:,} younger left for later); {self.deleted:,} deleted.")
        return f"{said} {self.held}" if self.held else said


def stored_files(storage: Storage, folder: str) -> Iterator[tuple[str, datetime]]:
    """(name, last modified) of every file under `folder` in `storage`: flat listings on a bucket
    (`S3MediaStorage.files_under`), else a walk of the folders; nothing for a folder that is not there."""
    if hasattr(storage, "files_under"):
        yield from storage.files_under(folder)
        return
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in sorted(files):
        path = posixpath.join(folder, name)
        try:
            yield path, storage.get_modified_time(path)
        except FileNotFoundError:
            continue  # deleted meanwhile
    for sub in sorted(folders):
        yield from stored_files(storage, posixpath.join(folder, sub))


def sweep(storage: Storage, delete: bool, *, guard: bool = True, now: datetime | None = None) -> Swept:
    """Find the orphans of `storage` and, with `delete`, delete them.

    Args:
        storage: the media storage (the file fields' own).
        delete: delete the orphans found; False lists them only.
        guard: hold back when orphans are more than `SAFE_SHARE` of the files (the daily upkeep); the command run
            by a person passes False.
        now: the time ages are measured from (tests).

    Returns:
        A `Swept`.

    Raises:
        MediaUnavailable: the storage cannot be reached (nothing more is deleted).
    """
    now = now or timezone.now()
    reachable = getattr(storage, "reachable", None)
    if reachable is not None:
        # A bucket that does not answer is found within a probe's timeout: the listing's tries waited 20 s and more on
        # a frozen one before the command's one line (a fault drill).
        reachable(ask_now=True)
    named = named_files()  # before listing: a file stored after this and named meanwhile is young anyway
    swept = Swept()
    for folder in FOLDERS:
        for name, modified in stored_files(storage, folder):
            swept.files += 1
            if name in named:
                continue
            if now - modified < MIN_AGE:
                swept.young += 1
            else:
                swept.orphans.append(name)
    if guard and swept.orphans and (not named or len(swept.orphans) > SAFE_SHARE * swept.files):
        share = "the database names no file at all" if not named else f"more than {SAFE_SHARE:.0%} of them"
        swept.held = (f"Held back: {len(swept.orphans):,} of {swept.files:,} files are named by no row, and {share}; "
                      "is this process on the right database? Run `manage.py qart_media_sweep` to list them, and "
                      "with --delete to delete them.")
        return swept
    if delete:
        for name in swept.orphans:
            storage.delete(name)
            swept.deleted += 1
    return swept
