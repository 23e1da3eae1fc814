"""DRF's `drf_create_token`, retired: it would store a plain-text token that nothing accepts any more.

API tokens are knox's now, made by `manage.py qart_token USER`. This command shadows DRF's (qartsite comes before
`rest_framework.authtoken` in INSTALLED_APPS) so that old habits and old notes get a pointer instead.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Retired: make API tokens with `manage.py qart_token USER`."

    def add_arguments(self, parser) -> None:
        parser.add_argument("args", nargs="*")
        parser.add_argument("-r", "--reset", action="store_true")

    def handle(self, *args, **options) -> None:
        raise CommandError("drf_create_token is retired: API tokens are stored hashed now. "
                           "Make one with `python manage.py qart_token USER` (it is shown once).")
