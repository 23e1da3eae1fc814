"""WSGI entry point (gunicorn qartsite.wsgi)."""

from __future__ import annotations

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
from qartsite.heads import HeadWithoutBody  # noqa: E402
from qartsite.limits import ChunkedBodies, WholeBodies  # noqa: E402 (imports settings)

# gunicorn's "worker failed to boot" status: the master stops with the one line, instead of starting workers that
# fail the same way forever while the port accepts connections that nothing answers.
BOOT_ERROR = 3

try:
    application = HeadWithoutBody(WholeBodies(ChunkedBodies(get_wsgi_application())))
    # The URL patterns, and so every view module, now rather than on each worker's first request (1.6-6 s: a scan
    # arriving then waited for the imports).
    get_resolver().url_patterns  # noqa: B018
except ImproperlyConfigured as exc:  # one line in the server's log, not a traceback
    print(f"qart: {exc}", file=sys.stderr, flush=True)
    sys.exit(BOOT_ERROR)

# A page's query stuck behind a lock ends in the outage page, not in gunicorn killing the worker (qartsite.outage).
from qartsite import outage  # noqa: E402

outage.limit_web_statements()

# Web processes look scanners' countries up (campaigns.geo): load the country database now, in the background, rather
# than on the first scan, which would then be counted without a country and share the CPU with the load.
from campaigns import geo  # noqa: E402 (needs the application set up first)

geo.countries.start()
