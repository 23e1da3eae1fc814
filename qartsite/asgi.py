"""ASGI entry point (uvicorn or daphne qartsite.asgi)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
from qartsite import web_process  # noqa: E402

application = web_process.load(get_asgi_application)
