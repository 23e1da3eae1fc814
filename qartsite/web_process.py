"""What every web process does as it loads the application, under gunicorn (`qartsite.wsgi`) or an ASGI server
(`qartsite.asgi`): both entry points call `load`, so neither can fall behind the other."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.urls import get_resolver

from qartsite import outage, queues, storage

Application = TypeVar("Application")

# gunicorn's "worker failed to boot" status: the master stops with the one line, instead of starting workers that
# fail the same way forever while the port accepts connections that nothing answers.
BOOT_ERROR = 3


def load(make_application: Callable[[], Application]) -> Application:
    """The application `make_application` builds (it sets Django up), with the web process started around it.

    Args:
        make_application: builds the WSGI or ASGI application; the settings are read here, so a bad one shows.

    Returns:
        The application. A bad setting (ImproperlyConfigured) prints one line, `qart: ...`, and exits BOOT_ERROR.
    """
    try:
        application = make_application()
        # The URL patterns, and so every view module, now rather than on each worker's first request (1.6-6 s: a
        # scan arriving then waited for the imports).
        get_resolver().url_patterns  # noqa: B018
    except ImproperlyConfigured as exc:  # one line in the server's log, not a traceback
        print(f"qart: {exc}", file=sys.stderr, flush=True)
        sys.exit(BOOT_ERROR)

    # A page's query stuck behind a lock ends in the outage page, not in the server killing the worker; a bucket or a
    # Redis that does not answer holds a page for seconds (a second), not the short links behind it.
    outage.limit_web_statements()
    storage.limit_web_requests()
    queues.limit_web_redis()

    from campaigns import geo  # needs the application set up first

    # Web processes look scanners' countries up (campaigns.geo): load the country database now, in the background,
    # rather than on the first scan, which would then be counted without a country and share the CPU with the load.
    geo.countries.start()
    return application
