"""The admin's lists read the numbers of their query strings as the rest of the site does (`qartsite.numbers`):
page numbers (`?p=`), column orderings (`?o=`), and filters on ids, counts and dates (`?team__id__exact=`,
`?id=`, `?time__year=`).

Django's `ChangeList` reads them with Python's `int()`: `?p=２` (full width) showed page 2, `?team__id__exact=١`
(Arabic-Indic) team 1's rows, `?o=１` sorted by the second column, `?p=1_0` page 10; and an id past 64 bits in a
foreign key's filter was an OverflowError's 500 on SQLite. Here such a query is one Django already refuses: the list
is shown whole, with one message saying why (`PlainChangeList`). Every admin of the project gets it from
`qartsite.scoped_admin.PlainFields`.
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import (
    ALL_VAR,
    ERROR_FLAG,
    IS_FACETS_VAR,
    IS_POPUP_VAR,
    ORDER_VAR,
    PAGE_VAR,
    SEARCH_VAR,
    TO_FIELD_VAR,
    ChangeList,
)
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.constants import LOOKUP_SEP

from qartsite.numbers import in_ascii, whole

# What a list's query string holds besides its filters.
NOT_FILTERS = {ALL_VAR, ERROR_FLAG, IS_FACETS_VAR, IS_POPUP_VAR, ORDER_VAR, PAGE_VAR, SEARCH_VAR, TO_FIELD_VAR,
               "_changelist_filters"}
# Lookups that read their value as the field's number; others (isnull, contains, ...) read text or a boolean.
NUMBER_LOOKUPS = {"exact", "in", "gt", "gte", "lt", "lte", "range"}
REFUSED = "This list has no such page, ordering or filter (numbers are written in digits 0-9): here it is whole."
_COLUMN = re.compile(r"-?[0-9]+")  # one column of `?o=`, e.g. "-2"


def whole_or_negative(text: str) -> bool:
    """Whether `text` is a whole number, negative or not, written as `qartsite.numbers.whole` reads one ("-1" is a
    vote's value)."""
    return whole(text.removeprefix("-")) is not None


def target_of(model: type[models.Model], path: str) -> tuple[models.Field | None, str]:
    """The field a filter's `path` ends on (a relation's: its target's primary key) and its lookup ("exact" when
    none is named); (None, "") for a path that names no field."""
    field, lookup = None, "exact"
    for index, part in enumerate(path.split(LOOKUP_SEP)):
        if model is None:
            lookup = part
            break
        try:
            field = model._meta.pk if part == "pk" else model._meta.get_field(part)
        except FieldDoesNotExist:
            if field is None or index != len(path.split(LOOKUP_SEP)) - 1:
                return None, ""
            lookup = part
            break
        model = field.related_model if field.is_relation else None
    if field is not None and field.is_relation and field.related_model is not None:
        field = field.related_model._meta.pk
    return field, lookup


def plainly_asked(model: type[models.Model], query) -> bool:
    """Whether a list's `query` (request.GET) writes its page number, ordering and filters' numbers and dates as
    `qartsite.numbers` reads them."""
    page = query.get(PAGE_VAR)
    if page is not None and not (whole(page) or 0) >= 1:
        return False
    if any(column and not _COLUMN.fullmatch(column) for column in query.get(ORDER_VAR, "").split(".")):
        return False
    for path, values in query.lists():
        if path in NOT_FILTERS:
            continue
        field, lookup = target_of(model, path)
        if isinstance(field, models.DateField | models.TimeField):  # DateTimeField is a DateField
            if not all(in_ascii(value) for value in values):
                return False  # "２０２６" read as the year 2026
        elif isinstance(field, models.IntegerField) and lookup in NUMBER_LOOKUPS:  # ids (AutoField) included
            numbers = [n for value in values for n in (value.split(",") if lookup in ("in", "range") else [value])]
            if not all(whole_or_negative(n) for n in numbers):
                return False
    return True


class PlainChangeList(ChangeList):
    """Django's list, refusing a query whose numbers `plainly_asked` does not read, as Django refuses a filter it
    cannot apply (the list shown whole); either says why in one message."""

    def __init__(self, request, model, *args, **kwargs):
        try:
            if not plainly_asked(model, request.GET):
                raise IncorrectLookupParameters(REFUSED)
            super().__init__(request, model, *args, **kwargs)
        except IncorrectLookupParameters:
            # Django answers with the bare list (`?e=1`) and no word of why.
            messages.error(request, REFUSED)
            raise
