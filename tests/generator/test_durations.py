"""generator.durations: seconds in the words generate.js writes."""

from __future__ import annotations

from generator.durations import seconds_in_words, seconds_in_words_or_nothing


def test_it_says_seconds_under_a_minute_and_a_half_and_minutes_after():
    assert seconds_in_words(89.4) == "89 s" and seconds_in_words(90) == "1 min 30 s"
    assert seconds_in_words(1361) == "22 min 41 s" and seconds_in_words(0) == "0 s"


def test_it_says_nothing_for_no_time():
    assert seconds_in_words_or_nothing(None) == "" and seconds_in_words_or_nothing(0) == "0 s"
    assert seconds_in_words_or_nothing(93) == "1 min 33 s"
