"""The API's request parsers: DRF's, with two faults fixed. No application imports: DRF loads these by name early."""

from __future__ import annotations

import math

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# No field of the API holds more: database ids and every count are 64-bit at most.
LARGEST = 2**63 - 1
NUMBERS_RULE = f"numbers must be finite (no NaN or Infinity) and at most {LARGEST} in size."
OUT_OF_RANGE = f"JSON parse error - a number is out of range: {NUMBERS_RULE}"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with two faults fixed, each a 400 with one message instead of a 500:

    - a body nested too deeply for Python's parser (50,000 "[" are 50 KB): a RecursionError;
    - a number no field can hold: Python reads 1e400 as infinity and 2**70 as an int that SQLite and PostgreSQL
      cannot compare with an id (OverflowError), e.g. `{"team": 1e400}`.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        if not numbers_in_range(data):
            raise ParseError(OUT_OF_RANGE)
        return data


def numbers_in_range(data) -> bool:
    """Whether every number in parsed JSON is finite and within 64 bits (walked without recursion). The API's parser
    and the admin's JSON fields (`qartsite.admin.FiniteJSONField`) both hold to it."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, float) and not math.isfinite(value) or (
                isinstance(value, int) and not isinstance(value, bool) and abs(value) > LARGEST):
            return False
    return True
