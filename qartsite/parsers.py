"""The API's request parsers: DRF's, with their faults fixed. No application imports: DRF loads these by name early."""

from __future__ import annotations

import codecs
import io
import json
import math
import re
import urllib.parse

from django.conf import settings
from django.http import multipartparser
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json as drf_json

from generator.core.codes.echoes import echo

# No field of the API holds more: database ids and every count are 64-bit at most.
LARGEST = 2**63 - 1
NUMBERS_RULE = f"numbers must be finite (no NaN or Infinity) and at most {LARGEST} in size."
OUT_OF_RANGE = f"JSON parse error - a number is out of range: {NUMBERS_RULE}"
LONE_SURROGATE = ("JSON parse error - a string holds an unpaired surrogate escape (such as \\ud800), which is no "
                  "character: send text as UTF-8, or escape a character outside the BMP as its surrogate pair.")


# No body of the API nests deeper; Python's parser recurses once per level and fails near 1,000.
MAX_DEPTH = 200
TOO_DEEP = "JSON parse error - the body is nested too deeply."
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class DuplicateKey(ValueError):
    """An object of the body names one key twice."""


class TooManyDigits(Exception):
    """An integer of a JSON text has more digits than any number a field holds. No ValueError: DRF's and Django's JSON
    fields take one for text that is not JSON ("Value must be valid JSON."), where the number is what is wrong."""


def integer(digits: str) -> int:
    """json's parse_int: the integer, refusing one longer than the largest any field holds (`TooManyDigits`) before
    Python reads it. Past 4,300 digits Python refuses to, in words meant for its programmer ("use
    sys.set_int_max_str_digits() to increase the limit"): the API's answer, and a 500 in the admin."""
    if len(digits.lstrip("-")) > len(str(LARGEST)):
        raise TooManyDigits
    return int(digits)


class BoundedDecoder(json.JSONDecoder):
    """json's decoder, reading integers with `integer`: for JSON sent as a field's text (a form body's rules, the
    admin's JSON fields), whose fields catch `TooManyDigits`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**{**kwargs, "parse_int": integer})


def unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """json's object_pairs_hook: the object, refusing a key it names twice (`DuplicateKey`)."""
    made = dict(pairs)
    if len(made) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise DuplicateKey(f"the key “{echo(key)}” appears twice in one object: send each key once.")
            seen.add(key)
    return made


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with four faults fixed, each a 400 with one message:

    - a body nested too deeply (50,000 "[" are 50 KB): refused before parsing. Python's parser would recurse to its
      limit and fail with a RecursionError; on the way, a garbage collection that runs there calls finalizers with
      no stack left, whose errors go unreported (seen once in the suite, on PostgreSQL);
    - a number no field can hold: Python reads 1e400 as infinity and 2**70 as an int that SQLite and PostgreSQL
      cannot compare with an id (OverflowError), e.g. `{"team": 1e400}`, and refuses an int of 5,000 digits in
      words about its own settings (`integer`);
    - a string (or key) with an unpaired surrogate escape, `"\\ud800"`: Python's parser takes it, and every answer
      that repeats it (a choice's or an unknown field's message) failed to encode as UTF-8;
    - a key named twice in one object, `{"destination": "a", "destination": "b"}`: Python keeps the last one without
      a word, which another reader of the same body (a proxy, a log, the client's own code) may not.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        # A byte-order mark, as some Windows tools write one: JSON's own rules let a parser ignore it
        body = body.removeprefix(codecs.BOM_UTF8)
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            # Python's words ("'utf-8' codec can't decode byte 0xff in position 0") name nothing a client can act on
            raise ParseError(f"JSON parse error - the body is not {encoding.upper()} text (send JSON as UTF-8).") \
                from None
        if too_deep(body):
            raise ParseError(TOO_DEEP)
        try:
            # DRF's own parse, with the hook: json.load, its constants (NaN, Infinity) refused as DRF refuses them
            data = json.loads(body.decode(encoding), object_pairs_hook=unique_keys, parse_int=integer,
                              parse_constant=drf_json.strict_constant if self.strict else None)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        except TooManyDigits:
            raise ParseError(OUT_OF_RANGE) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if not numbers_in_range(data):
            raise ParseError(OUT_OF_RANGE)
        if not text_encodable(data):
            raise ParseError(LONE_SURROGATE)
        return data


def text_encodable(data) -> bool:
    """Whether every string of parsed JSON, keys included, can be written as UTF-8 (no unpaired surrogate), walked
    without recursion."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return False
    return True


def numbers_in_range(data) -> bool:
    """Whether every number in parsed JSON is finite and within 64 bits (walked without recursion). The API's parser
    and the admin's JSON fields (`qartsite.scoped_admin.FiniteJSONField`) both hold to it."""
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


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether a JSON body's arrays and objects nest deeper than `limit`, counted without parsing it (the brackets
    outside its strings, in one pass that stops at the first level past the limit)."""
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


JSON_AS_FORM = ("The body is JSON, but its Content-Type says a form (application/x-www-form-urlencoded, what `curl -d` "
                "sends unless told otherwise): send it with the header `Content-Type: application/json`.")


class FormParser(parsers.FormParser):
    """DRF's form parser, refusing a JSON body sent with a form's content type (`JSON_AS_FORM`, a 400): `curl -d
    '{"name": "Spring"}'` without a header read the whole JSON as the name of one unknown field, and a body-less
    action's answer (`{}` to cancel) named the field "{}". No form this API reads starts with a bracket: its field
    names are words, and a browser escapes brackets (%7B).

    A form whose bytes, once unescaped, are not text in its charset (UTF-8 unless it names another) is a 400 too:
    Django's reading put U+FFFD in place of each bad byte, and `name=%ff` made a campaign named "\ufffd"."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        if body.lstrip()[:1] in (b"{", b"["):
            raise ParseError(JSON_AS_FORM)
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            urllib.parse.unquote_to_bytes(body).decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(f"Form parse error - the form is not {encoding.upper()} text (send it as UTF-8).") \
                from None
        return super().parse(io.BytesIO(body), media_type, parser_context)


# Django reads at most 1,024 bytes of headers for each part of a multipart body (`MAX_TOTAL_HEADER_SIZE`): a file name
# of several hundred characters (a script's: file systems keep them to 255 bytes) passes that, and the whole body is
# refused with words no one can act on. Nothing of the request was read or stored.
PART_HEADERS_TOO_LONG = "Request max total header size exceeded."
FILE_NAME_TOO_LONG = (f"A file's name is too long to be read: a part of a form holds at most "
                      f"{multipartparser.MAX_TOTAL_HEADER_SIZE:,} bytes of headers, its file name included. Rename "
                      "the file shorter (255 characters is plenty) and send it again; nothing was saved.")


def file_name_too_long(exc: Exception) -> bool:
    """Whether a multipart body was refused for a part's headers, in practice a file's very long name."""
    return isinstance(exc, multipartparser.MultiPartParserError) and str(exc) == PART_HEADERS_TOO_LONG


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, whose refusal of a file name too long to read says so (`FILE_NAME_TOO_LONG`), as the
    pages do (`qartsite.views.bad_request_message`), rather than "Request max total header size exceeded."."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError as exc:
            if file_name_too_long(exc.__context__):
                raise ParseError(FILE_NAME_TOO_LONG) from None
            raise
