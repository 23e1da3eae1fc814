"""Logging settings' helpers (`settings.LOGGING`)."""

from __future__ import annotations

import logging


class ClientErrorsBrief(logging.Filter):
    """`django.request`'s 4xx records as one line, without the traceback Django attaches: every viewer's 403 (a
    PermissionDenied raised on purpose) wrote a whole traceback to the web log, burying the 5xx ones that matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info, record.exc_text = None, None
        return True
