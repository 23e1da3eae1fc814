"""What a client sent, as a message repeats it (`qartsite.echoes`)."""

from __future__ import annotations

from qartsite.echoes import ECHO_CHARS, echo


def test_it_cuts_a_long_value_to_its_start_and_an_ellipsis():
    assert echo("k" * 5000) == "k" * ECHO_CHARS + "…"


def test_a_value_within_the_limit_is_repeated_as_sent():
    assert echo("p" * ECHO_CHARS) == "p" * ECHO_CHARS
    assert echo(12) == "12" and echo(None) == "None"
