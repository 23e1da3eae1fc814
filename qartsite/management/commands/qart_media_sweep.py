"""List, or delete, the media files no row names any more (`qartsite.media_sweep`).

    python manage.py qart_media_sweep            # list the orphans older than a day
    python manage.py qart_media_sweep --delete   # and delete them

The worker's daily upkeep does the same, but holds back when orphans are a large share of the files (a process on
the wrong database would see every file as one); run by a person, the command does what it is told.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from qartsite import media_sweep
from qartsite.storage import MediaUnavailable


class Command(BaseCommand):
    help = "List the media files no row names (older than a day); --delete deletes them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--delete", action="store_true", help="delete the orphans found (default: list them)")

    def handle(self, *args, delete: bool, **options) -> None:
        try:
            swept = media_sweep.sweep(default_storage, delete, guard=False)
        except MediaUnavailable as exc:
            raise CommandError(f"{exc} Nothing more was deleted; run it again once the storage answers.") from None
        for name in swept.orphans:
            self.stdout.write(name)
        self.stdout.write(str(swept) + ("" if delete or not swept.orphans else " Run with --delete to delete them."))
