"""What a client sent, as a message repeats it: shortened, so a mistake's answer stays the size of a message, and
with the characters no line of text shows written as escapes, so the message stays one readable line (and a
backslash written twice, so that an escape and the same characters typed read differently).

A choice field's refusal quotes the value ("“…” is not a valid choice."): 5,000 characters sent as a placement's
`kind` came back whole in the 400, and a NUL sent as a team's time zone came back raw in its message. In the core,
importing only the standard library, so that the core's own messages (`print_specs`, `downloads`) quote as the site's
do, and the site (the API's fields, its query filters, the models, the web process's first middleware, and the
settings, which load before any application can) may import it.
"""

from __future__ import annotations

import re
import unicodedata

ECHO_CHARS = 60  # enough to recognise a misspelt word or a pasted address by its start

# Characters that break a line or turn the text round (right-to-left overrides and isolates): "exe.pdf" can be made to
# show as "fdp.exe". Joiners stay: emoji sequences and several scripts need them.
REORDERING = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

HIDDEN = "***"  # what a message shows in place of a password
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# A query parameter that can carry a secret: redis-py reads a socket's password from `?password=`, libpq from its own.
# Its name starts after a "?" or "&" and stops at the "="; no "/", ":", "?" or "@" in it, so that a host or a path that
# merely holds such a word ("redis://keystore.internal:6379/0?db=1", "https://passport.example/x?a=1") is no name,
# and the first parameter after it shows.
SECRET_PARAMETER = re.compile(r"(?P<name>(?:^|[?&])[^=&#?/:@]*(?:pass|secret|token|key)[^=&#?/:@]*=)[^&#]*",
                              re.IGNORECASE)


def breaks_a_line(char: str) -> bool:
    """Whether `char` is a control character, a line or paragraph separator, or one that turns the text round
    (`REORDERING`): what one line of text refuses (`qartsite.models.OneLine`), and what `echo` writes as an escape."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in REORDERING


def _escaped(char: str) -> str:
    if char == "\\":
        # Written twice, as JSON writes it: else "a\u000ab" typed would read as the "a", newline, "b" that was sent.
        return "\\\\"
    return f"\\u{ord(char):04x}" if breaks_a_line(char) else char


def echo(value: object, limit: int | None = ECHO_CHARS) -> str:
    """`value` as a message quotes it, as JSON writes a string's characters: one reading for each text sent.

    Args:
        value: what was sent (its `str`).
        limit (`int`, *optional*, defaults to `ECHO_CHARS`): the characters shown before "…"; None for all of them,
            where the whole text is what the reader came for (`qart_scan`'s decoded texts).

    Returns:
        Its first `limit` characters and "…" when longer, each character that `breaks_a_line` written as its
        escape (a NUL as \\u0000, a tab as \\u0009) and a backslash as two (\\\\), so that a backslash typed before
        "u0000" cannot pass for an escape.
    """
    text = str(value)
    shown = text if limit is None or len(text) <= limit else f"{text[:limit]}…"
    return "".join(_escaped(char) for char in shown)


def without_password(url: str) -> str:
    """`url` with whatever could be a password in it replaced by `HIDDEN`, however badly the URL is written.

    Args:
        url: a URL as set (a start-up message quotes the one that is wrong, so it may not parse).

    Returns:
        `url` with the user part's password hidden (everything before the last "@": a password may hold an unescaped
        "@", "/" or "?"; a user part without a colon, all of it, as some clients take a lone name for the password)
        and the value of each query parameter whose name speaks of a password, secret, token or key.
    """
    scheme = SCHEME.match(url)
    head, rest = (url[:scheme.end()], url[scheme.end():]) if scheme else ("", url)
    user_part, at, host = rest.rpartition("@")
    if at:
        name, colon, _ = user_part.partition(":")
        rest = f"{name}:{HIDDEN}@{host}" if colon else f"{HIDDEN}@{host}"
    return head + SECRET_PARAMETER.sub(lambda found: found["name"] + HIDDEN, rest)


def echo_url(url: str) -> str:
    """`echo` of `url` without its password (`without_password`): a start-up line or a log must not hand a password
    to whoever reads it. Hidden first, then shortened, so that a cut can never leave part of a password showing."""
    return echo(without_password(url))
