"""WSGI entry point (gunicorn qartsite.wsgi)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
from qartsite import web_process  # noqa: E402
from qartsite.heads import HeadWithoutBody  # noqa: E402
from qartsite.limits import ChunkedBodies, WholeBodies  # noqa: E402 (imports settings)

application = web_process.load(lambda: HeadWithoutBody(WholeBodies(ChunkedBodies(get_wsgi_application()))))
