"""The session store: Django's database sessions, taking no cookie that cannot be a session's key.

Set as SESSION_ENGINE. A session cookie with a NUL in it (the development server, `make run`'s, passes one on;
gunicorn refuses the request) reached PostgreSQL, which refuses a NUL in text: every page that reads the signed-in
user, the short link's 404 included, answered 500. Such a key is no key: the request has no session, as with a
cookie that names none.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        return bool(super()._validate_session_key(key)) and "\x00" not in key
