#!/usr/bin/env python
"""Django's command-line utility for qart."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        _ = settings.INSTALLED_APPS  # reads the environment now: a bad setting is one line, not a traceback
    except ImproperlyConfigured as exc:
        sys.exit(f"qart: {exc}")

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
