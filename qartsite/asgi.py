"""ASGI entry point (uvicorn or daphne qartsite.asgi).

Django's ASGI handler reads a request's whole body before any middleware runs, so `ASGIBodies` (qartsite.limits)
stands in front of it: a body over the cap is refused from its length, or once it passes the cap, before it is read
to its end. What the WSGI entry point's other wrappers do is the server's work here: an ASGI server ends a body at its
Content-Length and reports a client that went away before then as a disconnect, which Django answers with nothing
(`WholeBodies`' 400), and uvicorn and daphne drop the body of an answer to HEAD (`HeadWithoutBody`).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qartsite.settings")
from qartsite import web_process  # noqa: E402
from qartsite.limits import ASGIBodies  # noqa: E402 (imports settings)

application = web_process.load(lambda: ASGIBodies(get_asgi_application()))
