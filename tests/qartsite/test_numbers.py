"""One rule for whole numbers from query strings and forms: what int() reads, within a database id."""

from __future__ import annotations

import pytest

from qartsite.numbers import LARGEST, whole


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("42", 42), ("007", 7), ("٣٠٠", 300), (str(LARGEST), LARGEST),
                                              ("0" * 40 + "5", 5)])
def test_it_reads_decimal_digits_of_any_script(text, number):
    assert whole(text) == number


@pytest.mark.parametrize("text", ["", None, "²", "12²", "-1", "+1", " 1", "1.0", "1e3", "abc", "9" * 5000,
                                  str(LARGEST + 1)])
def test_anything_else_is_none_never_an_error(text):
    assert whole(text) is None


def test_it_keeps_within_the_largest_asked_for():
    assert whole("999", largest=999) == 999 and whole("1000", largest=999) is None
