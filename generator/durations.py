"""Durations in the words the pages' scripts use (generate.js writes the same): the one home of `seconds_in_words`,
for views and, through the `durations` template filter (`generator.templatetags.durations`), for templates."""

from __future__ import annotations


def seconds_in_words(seconds: float) -> str:
    """ "45 s" under a minute and a half, else "22 min 41 s"."""
    seconds = round(seconds)
    if seconds < 90:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


def seconds_in_words_or_nothing(seconds: float | None) -> str:
    """The job page's times as first drawn, before its script takes over, so the page does not jump from "1361 s" to
    "22 min 41 s"; "" for no time."""
    return "" if seconds is None else seconds_in_words(seconds)
