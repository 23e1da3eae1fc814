"""Logging settings' helpers (`settings.LOGGING`), and what Django's error reports show of the settings
(`DEFAULT_EXCEPTION_REPORTER_FILTER`)."""

from __future__ import annotations

import logging

from django.views.debug import SafeExceptionReporterFilter

from generator.core.codes.echoes import without_password


class ClientErrorsBrief(logging.Filter):
    """`django.request`'s 4xx records as one line, without the traceback Django attaches: every viewer's 403 (a
    PermissionDenied raised on purpose) wrote a whole traceback to the web log, burying the 5xx ones that matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info, record.exc_text = None, None
        return True


class SettingsWithoutPasswords(SafeExceptionReporterFilter):
    """Django's error reports (DEBUG's error page, the 500 e-mails) list the settings, hiding those whose names speak
    of a secret (`SECRET_KEY`, `DATABASES`' `PASSWORD`), not a password inside a URL's value: `REDIS_URL`,
    `CACHE_URL`, the queues' URLs (`RQ_QUEUES`). Each URL is shown with its password hidden
    (`echoes.without_password`)."""

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str) and "://" in cleansed:
            return without_password(cleansed)
        return cleansed
