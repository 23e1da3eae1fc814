"""WSGI entry point (gunicorn qartsite.wsgi)."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
application = get_wsgi_application()
