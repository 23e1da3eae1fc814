"""One rule for whole numbers and dates from query strings and forms: ASCII digits, within a database id; dates
YYYY-MM-DD."""

from __future__ import annotations

from datetime import date

import pytest

from qartsite.numbers import LARGEST, in_ascii, plain_date, plainly_written, whole


@pytest.mark.parametrize(("text", "number"), [("0", 0), ("42", 42), ("007", 7), (str(LARGEST), LARGEST),
                                              ("0" * 40 + "5", 5)])
def test_it_reads_ascii_decimal_digits(text, number):
    assert whole(text) == number


# "٣٠٠" (Arabic-Indic) and "１２" (full width) were read as int() reads them: 300 and 12.
@pytest.mark.parametrize("text", ["", None, "²", "12²", "-1", "+1", " 1", "1.0", "1e3", "abc", "9" * 5000,
                                  str(LARGEST + 1), "٣٠٠", "１２"])
def test_anything_else_is_none_never_an_error(text):
    assert whole(text) is None


def test_a_number_sent_as_text_is_in_ascii_and_a_json_number_always():
    assert in_ascii("-1.5e3") and in_ascii(12) and in_ascii(1.5) and in_ascii(None)
    assert not in_ascii("１２") and not in_ascii("٣") and not in_ascii("\u00a012")


def test_a_number_written_plainly_has_no_underscores():
    # int(), float() and Decimal() read "1_000" as 1000.
    assert plainly_written("-1.5e3") and plainly_written(1000) and plainly_written(None)
    assert not plainly_written("1_000") and not plainly_written("1_0.5") and not plainly_written("１２")


def test_it_keeps_within_the_largest_asked_for():
    assert whole("999", largest=999) == 999 and whole("1000", largest=999) is None


def test_a_date_is_read_as_yyyy_mm_dd():
    assert plain_date("2026-05-01") == date(2026, 5, 1) and plain_date("2000-02-29") == date(2000, 2, 29)


# date.fromisoformat read "20260501", "2026-W18-5" and "2026W185" as 1 May 2026; Django's parse_date also "2026-5-1".
@pytest.mark.parametrize("text", ["20260501", "2026-W18-5", "2026W185", "2026-5-1", "２０２６-０５-０１", "2026-0٥-01",
                                  " 2026-05-01", "2026-05-01T00:00", "2026-02-30", "0000-01-01", "", None, 20260501])
def test_any_other_date_is_none_never_an_error(text):
    assert plain_date(text) is None
