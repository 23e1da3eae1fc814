"""ASGI entry point."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
application = get_asgi_application()

# As under WSGI: a page's query stuck behind a lock ends in the outage page (qartsite.outage).
from qartsite import outage  # noqa: E402

outage.limit_web_statements()
