"""What a client sent, as a message repeats it (`generator.core.codes.echoes`)."""

from __future__ import annotations

from generator.core.codes.echoes import ECHO_CHARS, echo


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
