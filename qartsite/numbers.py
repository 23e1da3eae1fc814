"""Whole numbers from query strings, forms and stored text: one rule for every page.

`str.isdigit()` is true of characters `int()` refuses ("²" is a digit but not a decimal), and `int()` refuses more
than 4,300 digits: both made pages answer 500 or show Python's own error. A database id is also at most 64 bits:
PostgreSQL refuses a larger one in a lookup. No application imports: any module may use it.
"""

from __future__ import annotations

LARGEST = 2**63 - 1  # a database id (bigint) and every count qart stores
_DIGITS = len(str(LARGEST))


def whole(text: object, largest: int = LARGEST) -> int | None:
    """`text` as a non-negative whole number no larger than `largest`, else None.

    Decimal digits of any script count, as `int()` reads them ("٣" is 3); signs, spaces, fractions, superscripts and
    anything longer than `largest` do not.
    """
    text = str(text) if text is not None else ""
    if not text.isdecimal() or len(text.lstrip("0")) > _DIGITS:
        return None
    number = int(text)
    return number if number <= largest else None
