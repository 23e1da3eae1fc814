"""WSGI entry point (gunicorn qartsite.wsgi)."""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
from qartsite.limits import ChunkedBodies  # noqa: E402 (imports settings)

try:
    application = ChunkedBodies(get_wsgi_application())
except ImproperlyConfigured as exc:  # one line in the server's log, not a traceback
    sys.exit(f"qart: {exc}")

# Web processes look scanners' countries up (campaigns.geo): load the country database now, in the background, rather
# than on the first scan, which would then be counted without a country and share the CPU with the load.
from campaigns import geo  # noqa: E402 (needs the application set up first)

geo.countries.start()
