"""The API's query filters, strict where DRF and django-filter are lenient: a yes/no filter takes `true` or `false`
(`TrueFalseFilter`) and an ordering names a field there is (`StrictOrderingFilter`, every list's through
`REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]`); anything else answers 400 saying what would do, where they would list
everything or the default order without a word. A value refused is quoted shortened (`FilterBackend`), an id is
written in ASCII digits (`IdFilter`; a refused team names the caller's teams: `TeamFilter`), and so is a page's
number (`PageNumbers`).

This module imports no app: the settings name `StrictOrderingFilter` and `PageNumbers`, and DRF resolves them while
its own views load.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters
from django_filters.constants import EMPTY_VALUES
from django_filters.fields import ChoiceField, ModelChoiceField
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, NotFound
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import PageNumberPagination

from generator.core.codes.echoes import echo
from qartsite.form_fields import plain_id, refuse_unless
from qartsite.numbers import plainly_written


def true_or_false() -> list[tuple[str, str]]:
    return [("true", "true"), ("false", "false")]


# What django-filter's BooleanFilter read (`requests` sends Python's True as "True"), kept so those clients still work.
TRUE_FALSE_SPELLINGS = {"true": "true", "1": "true", "false": "false", "0": "false"}


class TrueFalseField(ChoiceField):
    """`true`/`false` in any case, or `1`/`0`, read as "true"/"false"; anything else fails as a choice."""

    def to_python(self, value):
        value = super().to_python(value)
        return TRUE_FALSE_SPELLINGS.get(value.lower(), value)


class TrueFalseFilter(filters.ChoiceFilter):
    """A boolean filter that takes `true` or `false` (any case, or 1 and 0) and answers anything else with 400.
    django-filter's BooleanFilter reads `maybe` as unset and lists everything without a word."""

    field_class = TrueFalseField

    def __init__(self, *args, **kwargs) -> None:
        # Choices from a function: drf-spectacular then documents the model field's type (a boolean, which a query
        # string writes true or false) instead of a boolean with an enum of strings.
        super().__init__(*args, choices=true_or_false, **kwargs)

    def filter(self, qs, value):
        if value in EMPTY_VALUES:  # not given
            return qs
        return super().filter(qs, value == "true")


class IdField(ModelChoiceField):
    """django-filter's ModelChoiceField, reading an id as the pages' forms read one (`qartsite.form_fields.plain_id`:
    ASCII digits only). Django's lookup reads it with `int()`: `?campaign=١` (Arabic-Indic) and `?campaign=1_0`
    filtered by campaigns 1 and 10. Refused as an id there is not."""

    def to_python(self, value):
        refuse_unless(plain_id(self, value), self, "invalid_choice")
        return super().to_python(value)


class IdFilter(filters.ModelChoiceFilter):
    """A filter by an object's id (`?campaign=12`), in ASCII digits (`IdField`): every filter set's, where
    django-filter's ModelChoiceFilter would read "١" as 1."""

    field_class = IdField


class TeamField(IdField):
    """An `IdField` of teams, whose refusal says how a team is given and which ones the caller can use
    (`choosable`): "Select a valid choice." alone left a client that sent `?team=Acme` to guess."""

    LISTED = 20  # teams named in a refusal at most; a person in more is told how many more

    def choosable(self) -> str:
        """What to send instead: a team's number (id), and the caller's teams that would do (this field's queryset,
        the filter's scope for the requesting user: naming them tells nobody of another team's)."""
        teams = list(self.queryset.order_by("pk").values_list("pk", "name")[:self.LISTED + 1])
        if not teams:
            return "A team is given by its number (id); you have no team to use here."
        listed = ", ".join(f"{pk} ({echo(name)})" for pk, name in teams[:self.LISTED])
        more = self.queryset.count() - self.LISTED if len(teams) > self.LISTED else 0
        return f"A team is given by its number (id): {listed}{f', and {more} more' if more else ''}."


class TeamFilter(IdFilter):
    """A filter by team (`?team=3`): an `IdFilter` whose refusal names the caller's teams (`TeamField`)."""

    field_class = TeamField


class FilterBackend(filters.DjangoFilterBackend):
    """django-filter's backend (every list's, through `REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"]`), whose refusal of
    a value quotes it shortened (`echo`): `?kind=` with 3,000 characters came back whole in "Select a
    valid choice. … is not one of the available choices."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            # django_filters.utils.translate_validation, with the value shortened
            raise serializers.ValidationError({
                name: [ErrorDetail(filter_message(filterset.form.fields.get(name), error), code=error.code)
                       for error in errors]
                for name, errors in filterset.errors.as_data().items()})
        return filterset.qs


def filter_message(field: forms.Field | None, error: ValidationError) -> str:
    """A filter's refusal, the value sent quoted shortened; a choice's names the choices there are, as the README
    promises of every such message: "Select a valid choice. no is not one of the available choices." left a client
    to guess `false` (`?active=`), a placement's kinds (`?kind=`) or an event's name (`?event=`). An id's does not
    (`IdFilter`: ids of other teams' objects must not be named), but a team's names the caller's own (`TeamField`)."""
    message = error.message % (shortened(error.params) if error.params else ())
    if error.code == "invalid_choice" and isinstance(field, TeamField):
        return f"{message} {field.choosable()}"
    if error.code == "invalid_choice" and isinstance(field, forms.ChoiceField) and \
            not isinstance(field, forms.ModelChoiceField):
        values = [str(value) for value, _ in field.choices if value not in EMPTY_VALUES]
        message = f"{message} Choose one of: {', '.join(values)}."
    return message


def shortened(params: dict) -> dict:
    """A Django error's parameters with the value sent (`value`) as a message may quote it (`echo`)."""
    return {name: echo(value) if name == "value" else value for name, value in params.items()}


class StrictOrderingFilter(OrderingFilter):
    """DRF's ordering, answering an unknown field with 400 naming the ones there are: DRF drops it without a word, and
    `?ordering=nmae` came back in the default order, looking sorted."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        fields = [term for term in fields if term]  # `?ordering=name,` has an empty last term: not a mistake
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        # Lists only: one object's request (its `get_object` filters the queryset too) orders nothing.
        if len(valid) != len(fields) and not getattr(view, "detail", False):
            names = ", ".join(name for name, _ in self.get_valid_fields(queryset, view, {"request": request}))
            wrong = echo(", ".join(term for term in fields if term not in valid))
            raise serializers.ValidationError({self.ordering_param: [
                f"Cannot order by {wrong}: order by {names}, with a leading - for descending."]})
        return valid

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        names = getattr(view, "ordering_fields", None)
        if isinstance(names, list | tuple):
            parameters[0]["description"] = (f"Comma-separated: {', '.join(names)}; a leading - orders descending. "
                                            "Another field is a 400.")
        return parameters


class PageNumbers(PageNumberPagination):
    """DRF's page numbers, with `?page=` in ASCII digits without underscores (`qartsite.numbers.plainly_written`), as
    the API's integer fields read theirs: Django's paginator reads it with `int()`, and "１" (full width) was page 1,
    "1_0" page 10. Such a page number is a 404, as "one" and a page past the last are, whose message says which pages
    there are (`no_such_page`): DRF's "Invalid page." left a client to guess."""

    def get_paginated_response_schema(self, schema: dict) -> dict:
        """DRF's page, with `next` and `previous` required: every page has both, null at either end."""
        page = super().get_paginated_response_schema(schema)
        page["required"] = sorted({*page.get("required", ()), "next", "previous"})
        return page

    def get_page_number(self, request, paginator):
        number = super().get_page_number(request, paginator)
        if not plainly_written(number):
            raise NotFound(self.invalid_page_message.format(page_number=number, message=""))
        return number

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:
            # Counted again only on this error's way: the paginator that counted is DRF's local.
            size = self.get_page_size(request)
            pages = self.django_paginator_class(queryset, size).num_pages
            raise NotFound(no_such_page(request.query_params.get(self.page_query_param, ""), pages, size)) from None


def no_such_page(asked: str, pages: int, size: int) -> str:
    """A bad `?page=`'s message: the page asked for (shortened) and the pages there are.

    Args:
        asked: `?page=` as sent.
        pages: how many pages the list has (1 for an empty list: its one page is empty).
        size: results per page.

    Returns:
        "Invalid page “9”: this list has pages 1 to 2 (50 results a page) …".
    """
    there = "page 1" if pages == 1 else f"pages 1 to {pages}"
    return (f"Invalid page “{echo(asked)}”: this list has {there} ({size} results a page), numbered in ASCII digits; "
            "each answer's `next` links the page after it.")
