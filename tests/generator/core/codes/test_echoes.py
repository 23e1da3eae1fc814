"""What a client sent, as a message repeats it (`generator.core.codes.echoes`)."""

from __future__ import annotations

import pytest

from generator.core.codes.echoes import ECHO_CHARS, echo, echo_url, without_password


def test_it_cuts_a_long_value_to_its_start_and_an_ellipsis():
    assert echo("k" * 5000) == "k" * ECHO_CHARS + "…"


def test_a_value_within_the_limit_is_repeated_as_sent():
    assert echo("p" * ECHO_CHARS) == "p" * ECHO_CHARS
    assert echo(12) == "12" and echo(None) == "None"


def test_it_writes_what_breaks_a_line_as_its_escape():
    # A NUL sent as a team's time zone came back raw in the message that quoted it.
    assert echo("Europe/Pa\x00ris\t\u2028\u202eexe") == "Europe/Pa\\u0000ris\\u0009\\u2028\\u202eexe"
    assert echo("Design 👩\u200d🎨") == "Design 👩\u200d🎨"  # a joiner is part of the emoji


def test_it_cuts_before_it_escapes():
    assert echo("\x01" * 5000) == "\\u0001" * ECHO_CHARS + "…"


def test_it_writes_a_backslash_twice_so_no_text_sent_reads_as_an_escape():
    # "a\u000ab" typed, backslash and all, read the same as "a", a line feed and "b" sent.
    typed, sent = echo("a\\u000ab"), echo("a\nb")
    assert typed == "a\\\\u000ab" and sent == "a\\u000ab" and typed != sent
    assert echo("C:\\new\\table") == "C:\\\\new\\\\table"


def test_it_cuts_before_it_doubles_a_backslash():
    assert echo("\\" * 5000) == "\\\\" * ECHO_CHARS + "…"


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@redis.internal:6379/0", "redis://:***@redis.internal:6379/0"),
    ("postgres://qart:s3cret@db:5432/qart", "postgres://qart:***@db:5432/qart"),
    ("redis://s3cret@redis.internal", "redis://***@redis.internal"),  # a lone name: redis-py's password for some
    # Written wrong (why a message quotes it): an unescaped "@", "/" or "?" in the password, a scheme without "://".
    ("postgres://qart:p@ss/w?rd@db/qart", "postgres://qart:***@db/qart"),
    ("redis//:s3cret@host:6379", "redis//:***@host:6379"),
    ("unix:///run/redis.sock?db=0&password=s3cret", "unix:///run/redis.sock?db=0&password=***"),
    ("postgres://db/qart?sslmode=require&PASSWORD=s3;cret#x", "postgres://db/qart?sslmode=require&PASSWORD=***#x"),
    ("https://qart.example/app", "https://qart.example/app"),
    ("localhost:6379", "localhost:6379"),
    # A host or a path holding "key", "pass", "token" or "secret" hid the first query parameter's value with it.
    ("redis://keystore.internal:6379/0?db=1", "redis://keystore.internal:6379/0?db=1"),
    ("https://passport.example/x?a=1", "https://passport.example/x?a=1"),
    ("https://tokens.example/secret/x?a=1&api_key=k3y", "https://tokens.example/secret/x?a=1&api_key=***"),
    ("redis://:s3cret@keystore:6379/0?db=1&Token=t0k", "redis://:***@keystore:6379/0?db=1&Token=***"),
])
def test_it_hides_what_could_be_a_password_in_a_url(url, shown):
    assert without_password(url) == shown


def test_it_hides_the_password_before_it_cuts():
    # Cut first, a password past the 60th character would lose its "@" and show its start.
    url = f"redis://{'u' * 30}:{'s3cret' * 20}@{'h' * 40}"
    assert echo_url(url) == f"redis://{'u' * 30}:***@{'h' * 40}"[:ECHO_CHARS] + "…"


def test_it_shows_a_text_whole_when_asked():
    text = "x" * 70 + "\n"
    assert echo(text) == "x" * ECHO_CHARS + "…"
    assert echo(text, limit=None) == "x" * 70 + "\\u000a"
