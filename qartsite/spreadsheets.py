"""Cells for CSV exports that people open in spreadsheets (the campaign scan export, the human labels export).

A spreadsheet runs a cell that starts like a formula (`=`, `+`, `-`, `@`, or a tab or carriage return before one),
and what we export was typed by strangers: referers come from anyone who scans a code, devices and notes from
labelers. OWASP's CSV injection advice: prefix such a cell with a single quote, which spreadsheets show as text.
`csv_value` undoes it for files that are read back (the placements' import reads its own export).
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """`value` as a safe CSV cell: None as "", numbers as they are, text with a leading quote where it would run.

    Numbers pass unchanged: a vote of -1 or a negative score is data, and no spreadsheet reads a number as a formula.
    """
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_value(text: str) -> str:
    """The inverse of `csv_cell` for text read back from a CSV: "'=1+1" -> "=1+1"; a quote before anything else stays.
    """
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text
