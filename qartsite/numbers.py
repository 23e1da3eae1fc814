"""Whole numbers and dates from query strings, forms and stored text: one rule for every page, and the API's numbers'
digits.

`str.isdigit()` is true of characters `int()` refuses ("²" is a digit but not a decimal), and `int()` refuses more
than 4,300 digits: both made pages answer 500 or show Python's own error. A database id is also at most 64 bits:
PostgreSQL refuses a larger one in a lookup. No application imports: any module may use it.
"""

from __future__ import annotations

import re
from datetime import date

LARGEST = 2**63 - 1  # a database id (bigint) and every count qart stores
_DIGITS = len(str(LARGEST))
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # [0-9], not \d: that is any script's digits


def in_ascii(text: object) -> bool:
    """Whether a number or date sent as text is written in ASCII, as every client writes one (JSON's numbers are).

    Python's `int()`, `float()` and `Decimal()` also read other scripts' digits and spaces: "１２３" (full width) was
    stored as 123, "٣" (Arabic-Indic) as 3; Django's `parse_date` read "２０２６-０５-０１" as 2026-05-01. Numbers
    are checked by `plainly_written`, which refuses underscores too; dates, the forms' and the API's, by `plain_date`;
    times by this. Anything not text (a JSON number) passes.
    """
    return not isinstance(text, str) or text.isascii()


def plainly_written(text: object) -> bool:
    """Whether a number sent as text is written as clients write one: in ASCII (`in_ascii`), without underscores.

    Python's `int()`, `float()` and `Decimal()` read an underscore between digits as a grouping mark: "1_000" was
    stored as 1000, `?campaign=1_0` picked campaign 10. The API's number fields (`qartsite.api.plainly_written_only`),
    its page numbers (`qartsite.filters.PageNumbers`), `whole` (the pages' query strings, the API's id filters, the
    admin's lists: `qartsite.changelists`) and the forms' fields (`qartsite.form_fields`) refuse such text. Anything
    not text (a JSON number) passes.
    """
    return in_ascii(text) and not (isinstance(text, str) and "_" in text)


def whole(text: object, largest: int = LARGEST) -> int | None:
    """`text` as a non-negative whole number no larger than `largest`, else None.

    Decimal digits 0-9 only (`in_ascii`); signs, spaces, fractions, superscripts, other scripts' digits and anything
    longer than `largest` do not count.
    """
    text = str(text) if text is not None else ""
    if not text.isdecimal() or not in_ascii(text) or len(text.lstrip("0")) > _DIGITS:
        return None
    number = int(text)
    return number if number <= largest else None


def plain_date(text: object) -> date | None:
    """`text` as a date written YYYY-MM-DD in ASCII digits (what a date input and every client send), else None.

    Python 3.11's `date.fromisoformat`, and Django's `parse_date` that tries it first, read other ISO 8601 forms no
    page offers: "20260501" and "2026-W18-5" were 1 May 2026; `parse_date` also took "2026-5-1". The dashboard's
    from/to (`campaigns.stats.parse_day`), the API's dates (`qartsite.api.AsciiDateField`) and the forms' and the
    admin's (`qartsite.form_fields.written_as_a_day`) read dates with this.
    """
    if not isinstance(text, str) or not _DAY.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2026-02-30, year 0000
        return None
